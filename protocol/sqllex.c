/*
 * sqllex.c - a glance at SQL text: the first words of a statement, split the
 * way PostgreSQL's own lexer splits them (see sqllex.h).
 */
#include "protocol/sqllex.h"

#include <stdbool.h>

/* Blanks as the PostgreSQL lexer counts them. */
static bool sql_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Characters that may continue an unquoted identifier or keyword. */
static bool sql_ident_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '$' || ch >= 0x80;
}

/* Skip blanks and comments from off; returns the offset of the next token. */
static size_t sql_skip(const uint8_t *sql, size_t len, size_t off)
{
	while (off < len) {
		if (sql_blank(sql[off])) {
			off++;
		} else if (sql[off] == '-' && off + 1 < len && sql[off + 1] == '-') {
			while (off < len && sql[off] != '\n')
				off++;
		} else if (sql[off] == '/' && off + 1 < len && sql[off + 1] == '*') {
			int depth = 1;

			off += 2;
			while (off < len && depth > 0) {
				if (sql[off] == '*' && off + 1 < len && sql[off + 1] == '/') {
					depth--;
					off += 2;
				} else if (sql[off] == '/' && off + 1 < len && sql[off + 1] == '*') {
					depth++;
					off += 2;
				} else {
					off++;
				}
			}
		} else {
			break;
		}
	}
	return off;
}

enum sqllex_tok sqllex_token(const uint8_t *sql, size_t len, size_t *off, char *out, size_t outlen)
{
	size_t i = sql_skip(sql, len, *off), n = 0;

	if (outlen == 0)
		return SQLLEX_OTHER;
	out[0] = '\0';
	if (i >= len || sql[i] == '\0') {
		*off = i;
		return SQLLEX_END;
	}
	if (sql[i] == '"') {
		bool fits = true;

		for (i++; i < len && sql[i] != '\0'; i++) {
			if (sql[i] == '"') {
				if (i + 1 < len && sql[i + 1] == '"') {
					i++;
				} else {
					break;
				}
			}
			if (n + 1 < outlen)
				out[n++] = (char)sql[i];
			else
				fits = false;
		}
		out[n] = '\0';
		if (i >= len || sql[i] != '"') {
			*off = i;
			return SQLLEX_END; /* cut off inside the quotes */
		}
		*off = i + 1;
		return fits ? SQLLEX_QUOTED : SQLLEX_OTHER;
	}
	if (!sql_ident_char(sql[i]) || (sql[i] >= '0' && sql[i] <= '9')) {
		out[0] = (char)sql[i];
		if (outlen > 1)
			out[1] = '\0';
		*off = i + 1;
		return SQLLEX_OTHER;
	}
	for (; i < len && sql_ident_char(sql[i]); i++) {
		if (n + 1 >= outlen) {
			while (i < len && sql_ident_char(sql[i]))
				i++;
			*off = i;
			out[0] = '\0';
			return SQLLEX_OTHER;
		}
		out[n++] = (char)(sql[i] >= 'A' && sql[i] <= 'Z' ? sql[i] + ('a' - 'A') : sql[i]);
	}
	out[n] = '\0';
	*off = i;
	return SQLLEX_WORD;
}

/*
 * listen_sql.c - split a query into statements and classify each for the
 * notifications it concerns (see listen_sql.h).
 *
 * A small lexer of its own: unlike sqllex.h, which reads only the first
 * words of a statement, this one walks whole queries, so it must know where
 * strings, quoted identifiers, dollar-quoted bodies and comments end, or a
 * ';' or an "UNLISTEN" inside a literal would be taken for SQL.
 */
#include "proxy/listen_sql.h"

#include <string.h>

/* What lex() found. */
enum tok {
	TOK_END,
	TOK_WORD,    /* an unquoted word, folded to lower case into the token's text */
	TOK_QUOTED,  /* a "quoted identifier", undoubled into the token's text */
	TOK_LITERAL, /* a string, a dollar-quoted body, a number or a $n parameter */
	TOK_OTHER,   /* one other character */
};

/* Longest word or identifier kept (longer ones are cut, which is all names need). */
#define TOK_TEXT 80

struct token {
	enum tok type;
	char text[TOK_TEXT]; /* TOK_WORD, TOK_QUOTED: the name; TOK_OTHER: the character */
	size_t len;          /* bytes in text */
};

static bool is_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool ident_start(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool ident_char(uint8_t ch)
{
	return ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

/* Skip blanks and (nested) comments. */
static size_t skip_blanks(const uint8_t *s, size_t len, size_t i)
{
	while (i < len) {
		if (is_blank(s[i])) {
			i++;
		} else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			int depth = 1;

			for (i += 2; i < len && depth > 0;) {
				if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else {
					i++;
				}
			}
		} else {
			break;
		}
	}
	return i;
}

/* Past a '...' string starting at i (the quote); backslashes escape in an E'' string. */
static size_t skip_string(const uint8_t *s, size_t len, size_t i, bool escapes)
{
	for (i++; i < len; i++) {
		if (escapes && s[i] == '\\') {
			i++;
		} else if (s[i] == '\'') {
			if (i + 1 < len && s[i + 1] == '\'')
				i++;
			else
				return i + 1;
		}
	}
	return len;
}

/*
 * A dollar quote's opening tag at i ("$$" or "$tag$"): its length, or 0 when
 * there is none there.
 */
static size_t dollar_tag(const uint8_t *s, size_t len, size_t i)
{
	size_t j = i + 1;

	if (j < len && s[j] == '$')
		return 2;
	if (j >= len || !ident_start(s[j]))
		return 0;
	while (j < len && ident_char(s[j]) && s[j] != '$')
		j++;
	return j < len && s[j] == '$' ? j + 1 - i : 0;
}

/* Read the token at *off. */
static void lex(const uint8_t *s, size_t len, size_t *off, struct token *t)
{
	size_t i = skip_blanks(s, len, *off), n = 0;

	t->len = 0;
	t->text[0] = '\0';
	if (i >= len || s[i] == '\0') {
		t->type = TOK_END;
		*off = len;
		return;
	}
	if (s[i] == '\'') {
		t->type = TOK_LITERAL;
		*off = skip_string(s, len, i, false);
		return;
	}
	if (s[i] == '"') {
		t->type = TOK_QUOTED;
		for (i++; i < len; i++) {
			if (s[i] == '"') {
				if (i + 1 < len && s[i + 1] == '"')
					i++;
				else
					break;
			}
			if (n + 1 < sizeof(t->text))
				t->text[n++] = (char)s[i];
		}
		t->text[n] = '\0';
		t->len = n;
		*off = i < len ? i + 1 : len;
		return;
	}
	if (s[i] == '$') {
		size_t tag = dollar_tag(s, len, i);

		t->type = TOK_LITERAL;
		if (tag == 0) {
			/* $1, or a stray dollar */
			for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
				;
			*off = i;
			return;
		}
		for (size_t j = i + tag; j + tag <= len; j++) {
			if (memcmp(s + j, s + i, tag) == 0) {
				*off = j + tag;
				return;
			}
		}
		*off = len;
		return;
	}
	if (s[i] >= '0' && s[i] <= '9') {
		t->type = TOK_LITERAL;
		while (i < len && (ident_char(s[i]) || s[i] == '.'))
			i++;
		*off = i;
		return;
	}
	if (ident_start(s[i])) {
		size_t start = i;

		t->type = TOK_WORD;
		for (; i < len && ident_char(s[i]); i++) {
			if (n + 1 < sizeof(t->text))
				t->text[n++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A')
										 : s[i]);
		}
		t->text[n] = '\0';
		t->len = n;
		/* E'...': a string with backslash escapes */
		if (i - start == 1 && (s[start] == 'e' || s[start] == 'E') && i < len &&
		    s[i] == '\'') {
			t->type = TOK_LITERAL;
			i = skip_string(s, len, i, true);
		}
		*off = i;
		return;
	}
	t->type = TOK_OTHER;
	t->text[0] = (char)s[i];
	t->text[1] = '\0';
	t->len = 1;
	*off = i + 1;
}

size_t listen_sql_next(const uint8_t *sql, size_t len, size_t off)
{
	struct token t;
	int depth = 0;

	for (;;) {
		lex(sql, len, &off, &t);
		if (t.type == TOK_END)
			return len;
		if (t.type != TOK_OTHER)
			continue;
		if (t.text[0] == '(')
			depth++;
		else if (t.text[0] == ')' && depth > 0)
			depth--;
		else if (t.text[0] == ';' && depth == 0)
			return off;
	}
}

/* Cut a name as PostgreSQL does (truncate_identifier): LISTEN_NAME_MAX bytes, whole characters. */
static void cut_name(char *name, size_t n)
{
	if (n > LISTEN_NAME_MAX) {
		n = LISTEN_NAME_MAX;
		/* a UTF-8 continuation byte at the cut: drop the whole character */
		while (n > 0 && ((uint8_t)name[n] & 0xC0) == 0x80)
			n--;
	}
	name[n] = '\0';
}

enum listen_stmt listen_sql_classify(const uint8_t *sql, size_t len, char *name, size_t namelen)
{
	struct token t, prev;
	size_t off = 0;

	name[0] = '\0';
	lex(sql, len, &off, &t);
	if (t.type != TOK_WORD)
		return LS_OTHER;
	if (strcmp(t.text, "listen") == 0)
		return LS_LISTEN;
	if (strcmp(t.text, "notify") == 0)
		return LS_NOTIFY;
	if (strcmp(t.text, "discard") == 0) {
		/* DISCARD ALL includes an UNLISTEN * */
		lex(sql, len, &off, &t);
		return t.type == TOK_WORD && strcmp(t.text, "all") == 0 ? LS_UNLISTEN_ALL : LS_OTHER;
	}
	if (strcmp(t.text, "unlisten") == 0) {
		lex(sql, len, &off, &t);
		if (t.type == TOK_OTHER && t.text[0] == '*')
			return LS_UNLISTEN_ALL;
		if ((t.type != TOK_WORD && t.type != TOK_QUOTED) || t.len == 0 ||
		    namelen < LISTEN_NAME_MAX + 1)
			return LS_OTHER;
		cut_name(t.text, t.len);
		memcpy(name, t.text, strlen(t.text) + 1);
		return LS_UNLISTEN;
	}
	/* anything else that calls pg_notify(): SELECT pg_notify(...), ... RETURNING pg_notify(...) */
	for (prev = t;; prev = t) {
		lex(sql, len, &off, &t);
		if (t.type == TOK_END)
			return LS_OTHER;
		if (t.type == TOK_OTHER && t.text[0] == '(' && prev.type == TOK_WORD &&
		    strcmp(prev.text, "pg_notify") == 0)
			return LS_NOTIFY;
	}
}

void listen_sql_scan(const uint8_t *sql, size_t len,
		     void (*fn)(void *arg, enum listen_stmt kind, const char *name), void *arg)
{
	char name[LISTEN_NAME_MAX + 1];
	size_t off = 0;

	while (off < len) {
		size_t end = listen_sql_next(sql, len, off);
		enum listen_stmt kind =
			listen_sql_classify(sql + off, end - off, name, sizeof(name));

		if (kind != LS_OTHER)
			fn(arg, kind, name);
		off = end;
	}
}

bool listen_sql_parse_notification(const uint8_t *body, size_t len, uint32_t *pid,
				   const char **channel, const char **payload)
{
	const uint8_t *nul, *p;

	if (len < 6)
		return false;
	*pid = (uint32_t)body[0] << 24 | (uint32_t)body[1] << 16 | (uint32_t)body[2] << 8 | body[3];
	p = body + 4;
	nul = memchr(p, '\0', len - 4);
	if (nul == NULL)
		return false;
	*channel = (const char *)p;
	p = nul + 1;
	if (p >= body + len)
		return false;
	nul = memchr(p, '\0', (size_t)(body + len - p));
	if (nul == NULL || nul + 1 != body + len)
		return false;
	*payload = (const char *)p;
	return true;
}

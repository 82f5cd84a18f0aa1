/*
 * sqltok.c - SQL tokens, split as PostgreSQL's lexer (scan.l) splits them
 * (see sqltok.h).  Every loop is bounded by the text's length.
 */
#include "protocol/sqltok.h"

#include <string.h>

static bool tok_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool tok_ident_start(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool tok_ident_char(uint8_t ch)
{
	return tok_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

static bool tok_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

/* Characters operators are made of (scan.l's op_chars). */
static bool tok_op_char(uint8_t ch)
{
	return ch != '\0' && strchr("~!@#^&|`?+-*/%<>=", ch) != NULL;
}

/* Skip blanks and comments from off; the offset of what follows. */
static size_t tok_skip(const uint8_t *sql, size_t len, size_t off)
{
	while (off < len) {
		if (tok_blank(sql[off])) {
			off++;
		} else if (sql[off] == '-' && off + 1 < len && sql[off + 1] == '-') {
			while (off < len && sql[off] != '\n' && sql[off] != '\0')
				off++;
		} else if (sql[off] == '/' && off + 1 < len && sql[off + 1] == '*') {
			unsigned depth = 1;

			off += 2;
			while (off < len && depth > 0 && sql[off] != '\0') {
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

/*
 * A quoted run from sql[i] (the opening quote) to its closing quote; a
 * doubled quote stays inside, and with 'backslash' a backslash escapes the
 * next byte.  Returns the offset past the closing quote (len when cut).
 */
static size_t tok_quoted(const uint8_t *sql, size_t len, size_t i, uint8_t q, bool backslash,
			 struct sqltok *t)
{
	t->body = i + 1;
	for (i++; i < len && sql[i] != '\0'; i++) {
		if (backslash && sql[i] == '\\') {
			i++;
			continue;
		}
		if (sql[i] != q)
			continue;
		if (i + 1 < len && sql[i + 1] == q) {
			i++;
			continue;
		}
		t->body_len = i - t->body;
		return i + 1;
	}
	if (i > len)
		i = len;
	t->body_len = i - t->body;
	t->cut = true;
	return i;
}

/* "$tag$" at sql[i]: the length of the delimiter, or 0 when it is not one. */
static size_t tok_dollar_tag(const uint8_t *sql, size_t len, size_t i)
{
	size_t j = i + 1;

	if (j < len && sql[j] == '$')
		return 2;
	if (j >= len || !tok_ident_start(sql[j]))
		return 0;
	while (j < len && tok_ident_char(sql[j]) && sql[j] != '$')
		j++;
	return j < len && sql[j] == '$' ? j - i + 1 : 0;
}

/* A dollar-quoted string whose delimiter of 'tag' bytes starts at sql[i]. */
static size_t tok_dollar(const uint8_t *sql, size_t len, size_t i, size_t tag, struct sqltok *t)
{
	size_t j;

	t->body = i + tag;
	for (j = i + tag; j + tag <= len; j++) {
		if (sql[j] == '\0')
			break;
		if (sql[j] == '$' && memcmp(sql + j, sql + i, tag) == 0) {
			t->body_len = j - t->body;
			return j + tag;
		}
	}
	while (j < len && sql[j] != '\0')
		j++;
	t->body_len = j - t->body;
	t->cut = true;
	return j;
}

/* A number: digits, a fraction, an exponent; 0x/0o/0b and '_' separators too. */
static size_t tok_number(const uint8_t *sql, size_t len, size_t i)
{
	if (sql[i] == '0' && i + 2 < len && strchr("xXoObB", sql[i + 1]) && sql[i + 1] != '\0') {
		i += 2;
		while (i < len && (tok_ident_char(sql[i]) && sql[i] != '$'))
			i++;
		return i;
	}
	while (i < len && (tok_digit(sql[i]) || sql[i] == '_'))
		i++;
	if (i < len && sql[i] == '.' && !(i + 1 < len && sql[i + 1] == '.')) {
		i++;
		while (i < len && (tok_digit(sql[i]) || sql[i] == '_'))
			i++;
	}
	if (i < len && (sql[i] == 'e' || sql[i] == 'E')) {
		size_t j = i + 1;

		if (j < len && (sql[j] == '+' || sql[j] == '-'))
			j++;
		if (j < len && tok_digit(sql[j])) {
			i = j;
			while (i < len && tok_digit(sql[i]))
				i++;
		}
	}
	return i;
}

/*
 * An operator from sql[i]: a run of operator characters that stops before a
 * comment; a run that ends in + or - loses them unless it also holds one of
 * ~ ! @ # % ^ & | ` ? (so "=-1" is "=" then "-" then 1, as in PostgreSQL).
 */
static size_t tok_operator(const uint8_t *sql, size_t len, size_t i)
{
	size_t start = i;
	bool special = false;

	while (i < len && tok_op_char(sql[i])) {
		/* a comment starts here: the operator ends before it */
		if (i > start && i + 1 < len &&
		    ((sql[i] == '-' && sql[i + 1] == '-') || (sql[i] == '/' && sql[i + 1] == '*')))
			break;
		if (strchr("~!@#%^&|`?", sql[i]))
			special = true;
		i++;
	}
	if (i == start)
		i = start + 1;
	while (!special && i - start > 1 && (sql[i - 1] == '+' || sql[i - 1] == '-'))
		i--;
	return i;
}

/* Copy [p, p + n) into t->word, lower-cased when fold; "" when it does not fit. */
static void tok_set_word(struct sqltok *t, const uint8_t *p, size_t n, bool fold)
{
	if (n > SQLTOK_WORD_MAX) {
		t->word[0] = '\0';
		return;
	}
	for (size_t k = 0; k < n; k++)
		t->word[k] = (char)(fold && p[k] >= 'A' && p[k] <= 'Z' ? p[k] + ('a' - 'A') : p[k]);
	t->word[n] = '\0';
}

/* The text of a quoted identifier, "" undoubled, into t->word. */
static void tok_set_ident(struct sqltok *t, const uint8_t *sql)
{
	size_t n = 0;

	for (size_t k = 0; k < t->body_len; k++) {
		if (sql[t->body + k] == '"' && k + 1 < t->body_len && sql[t->body + k + 1] == '"')
			k++;
		if (n == SQLTOK_WORD_MAX) {
			t->word[0] = '\0';
			return;
		}
		t->word[n++] = (char)sql[t->body + k];
	}
	t->word[n] = '\0';
}

/* A string prefix letter (E, N, B, X) or U& right before a quote at sql[i + n]. */
static size_t tok_string_prefix(const uint8_t *sql, size_t len, size_t i)
{
	uint8_t c = (uint8_t)(sql[i] | 0x20);

	if (i + 1 < len && sql[i + 1] == '\'' && (c == 'e' || c == 'n' || c == 'b' || c == 'x'))
		return 1;
	if (c == 'u' && i + 2 < len && sql[i + 1] == '&' &&
	    (sql[i + 2] == '\'' || sql[i + 2] == '"'))
		return 2;
	return 0;
}

enum sqltok_kind sqltok_next(const uint8_t *sql, size_t len, size_t *off, struct sqltok *t)
{
	size_t i = tok_skip(sql, len, *off), end, pre;
	uint8_t ch;

	memset(t, 0, sizeof(*t));
	t->start = i;
	if (i >= len || sql[i] == '\0') {
		*off = i;
		t->kind = SQLTOK_END;
		return SQLTOK_END;
	}
	ch = sql[i];
	pre = tok_ident_start(ch) ? tok_string_prefix(sql, len, i) : 0;
	if (pre > 0) {
		uint8_t q = sql[i + pre];

		end = tok_quoted(sql, len, i + pre, q, q == '\'' && (ch | 0x20) == 'e', t);
		t->kind = q == '"' ? SQLTOK_IDENT : SQLTOK_STRING;
		if (t->kind == SQLTOK_IDENT)
			tok_set_ident(t, sql);
	} else if (ch == '\'') {
		end = tok_quoted(sql, len, i, '\'', false, t);
		t->kind = SQLTOK_STRING;
	} else if (ch == '"') {
		end = tok_quoted(sql, len, i, '"', false, t);
		t->kind = SQLTOK_IDENT;
		tok_set_ident(t, sql);
	} else if (tok_ident_start(ch)) {
		for (end = i; end < len && tok_ident_char(sql[end]); end++)
			;
		t->kind = SQLTOK_WORD;
		tok_set_word(t, sql + i, end - i, true);
	} else if (tok_digit(ch) || (ch == '.' && i + 1 < len && tok_digit(sql[i + 1]))) {
		end = tok_number(sql, len, i);
		t->kind = SQLTOK_NUMBER;
	} else if (ch == '$' && i + 1 < len && tok_digit(sql[i + 1])) {
		for (end = i + 1; end < len && tok_digit(sql[end]); end++)
			;
		t->kind = SQLTOK_PARAM;
		tok_set_word(t, sql + i + 1, end - i - 1, false);
	} else if (ch == '$' && (pre = tok_dollar_tag(sql, len, i)) > 0) {
		end = tok_dollar(sql, len, i, pre, t);
		t->kind = SQLTOK_STRING;
	} else if (ch == ':' && i + 1 < len && sql[i + 1] == ':') {
		end = i + 2;
		t->kind = SQLTOK_PUNCT;
		tok_set_word(t, sql + i, 2, false);
	} else if (tok_op_char(ch)) {
		end = tok_operator(sql, len, i);
		t->kind = SQLTOK_OP;
		tok_set_word(t, sql + i, end - i > 3 ? 3 : end - i, false);
	} else {
		end = i + 1;
		t->kind = SQLTOK_PUNCT;
		tok_set_word(t, sql + i, 1, false);
	}
	if (end > len)
		end = len;
	t->len = end - i;
	*off = end;
	return t->kind;
}

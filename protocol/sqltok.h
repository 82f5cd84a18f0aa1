/*
 * sqltok.h - SQL text split into tokens the way PostgreSQL's lexer splits
 * it: words, quoted identifiers, string constants of every form ('...',
 * E'...', U&'...', B'...', X'...', N'...', $tag$...$tag$), numbers,
 * parameters ($1), operators and punctuation, with blanks and (nested)
 * comments skipped.
 *
 * It never parses: the fingerprint (fingerprint.h) and the statement
 * classifier (sqlclass.h) read a statement's tokens, not its grammar.
 * Text cut off in the middle (a string never closed) ends the scan with the
 * token marked cut.  A NUL byte ends the text, as it ends a query string.
 *
 * Pure like the rest of protocol/: libc only, no I/O, no global state.
 */
#ifndef PGCUTOVER_SQLTOK_H
#define PGCUTOVER_SQLTOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest word kept in struct sqltok.word (NAMEDATALEN - 1). */
#define SQLTOK_WORD_MAX 63

enum sqltok_kind {
	SQLTOK_END,    /* nothing but blanks and comments left */
	SQLTOK_WORD,   /* an unquoted identifier or keyword */
	SQLTOK_IDENT,  /* a "quoted identifier" (or U&"...") */
	SQLTOK_STRING, /* a string constant of any form */
	SQLTOK_NUMBER, /* a numeric constant */
	SQLTOK_PARAM,  /* $n */
	SQLTOK_OP,     /* an operator: a run of + - * / < > = ~ ! @ # % ^ & | ` ? */
	SQLTOK_PUNCT,  /* ( ) [ ] , ; : :: . $ or any other single character */
};

struct sqltok {
	enum sqltok_kind kind;
	size_t start; /* the token's bytes in the text: [start, start + len) */
	size_t len;
	size_t body; /* STRING and IDENT: what is between the quotes (escapes kept) */
	size_t body_len;
	/*
	 * WORD: lower-cased, "" when longer than SQLTOK_WORD_MAX; IDENT: as
	 * written ("" undoubled), "" when too long; PUNCT and OP: the characters
	 * (the first 3); PARAM: its number's digits; empty otherwise.
	 */
	char word[SQLTOK_WORD_MAX + 1];
	bool cut; /* the text ended inside this token */
};

/*
 * Read the next token of sql[0..len) from *off (blanks and comments are
 * skipped first); *off moves past it.  Returns its kind (SQLTOK_END at the
 * end, or at a NUL byte).
 */
enum sqltok_kind sqltok_next(const uint8_t *sql, size_t len, size_t *off, struct sqltok *t);

/* The token is this word (lower case) / this punctuation. */
static inline bool sqltok_is(const struct sqltok *t, const char *word)
{
	const char *a = t->word;

	if (t->kind != SQLTOK_WORD)
		return false;
	while (*a && *a == *word) {
		a++;
		word++;
	}
	return *a == '\0' && *word == '\0';
}

static inline bool sqltok_punct(const struct sqltok *t, char ch)
{
	return t->kind == SQLTOK_PUNCT && t->word[0] == ch && t->word[1] == '\0';
}

#endif /* PGCUTOVER_SQLTOK_H */

/*
 * sqllex.h - a glance at SQL text: the first words of a statement.
 *
 * The proxy never parses SQL; it only looks at the first words of a statement
 * to see whether it may change session state (SET, LISTEN, PREPARE...), the
 * way PostgreSQL's own lexer splits words.
 *
 * Pure like the rest of protocol/: libc only, no I/O, no global state.
 */
#ifndef PGCUTOVER_SQLLEX_H
#define PGCUTOVER_SQLLEX_H

#include <stddef.h>
#include <stdint.h>

/* What sqllex_token() found. */
enum sqllex_tok {
	SQLLEX_END,    /* nothing but blanks and comments left */
	SQLLEX_WORD,   /* an unquoted word: out holds it folded to lower case */
	SQLLEX_QUOTED, /* a "quoted identifier": out holds it as written, "" undoubled */
	SQLLEX_OTHER,  /* any other character (out holds it), or a word too long for out */
};

/*
 * Read the next token of sql[0..len) from *off, skipping blanks, -- comments
 * and (nested) block comments; *off moves past it.  Words longer than
 * outlen - 1 bytes come back as SQLLEX_OTHER.  Text cut off in the middle (a
 * prefix of a longer query) simply ends the scan.
 */
enum sqllex_tok sqllex_token(const uint8_t *sql, size_t len, size_t *off, char *out, size_t outlen);

#endif /* PGCUTOVER_SQLLEX_H */

/*
 * fingerprint.h - a statement's fingerprint: its text with the constants
 * removed, the way pg_stat_statements normalises a query, so that every
 * execution of one statement with other values counts as one.
 *
 * String and numeric constants become $N, numbered after the highest $n the
 * text itself uses; unquoted words are folded to lower case; blanks and
 * comments collapse to single spaces; a trailing semicolon goes.  The hash
 * covers the whole normalised token stream, so two statements that differ
 * only in their constants, their blanks, the case of their keywords or
 * their comments have the same fingerprint; the text shown is cut at
 * FINGERPRINT_TEXT_MAX - 1 bytes (ending in "...").
 *
 * Pure like the rest of protocol/.
 */
#ifndef PGCUTOVER_FINGERPRINT_H
#define PGCUTOVER_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of normalised text kept (with its NUL). */
#define FINGERPRINT_TEXT_MAX 512

struct fingerprint {
	uint64_t hash;                   /* of the normalised tokens: the identity */
	unsigned constants;              /* how many constants were replaced */
	bool cut;                        /* the text was cut (the hash was not) */
	char text[FINGERPRINT_TEXT_MAX]; /* the normalised text, cut with "..." */
};

/* Fingerprint sql[0..len) (a NUL ends it earlier). */
void fingerprint_sql(const uint8_t *sql, size_t len, struct fingerprint *fp);

#endif /* PGCUTOVER_FINGERPRINT_H */

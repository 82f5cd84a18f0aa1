/*
 * sqlquote.h - quoting of values and names pasted into the SQL pgcutover
 * sends itself: control queries, and the statements that restore a session
 * on a new server.  The one place in pgcutover that quotes SQL.
 *
 * libpq's PQescapeLiteral and PQescapeIdentifier need a connection, and the
 * control queries are built before one exists; these do the same for the
 * UTF-8 / SQL_ASCII-compatible encodings PostgreSQL servers use, so that no
 * configured name (replication_slot, marker_table), session setting or
 * generated value is ever pasted into SQL unquoted.  Pure string handling,
 * unit-tested.
 */
#ifndef PGCUTOVER_SQLQUOTE_H
#define PGCUTOVER_SQLQUOTE_H

#include <stdbool.h>
#include <stddef.h>

struct pq_buf;

/*
 * 's' as a string literal: 'it''s'.  Like PQescapeLiteral, a value holding
 * a backslash becomes E'...' with the backslashes doubled, which reads the
 * same whatever standard_conforming_strings is.  False when it does not fit
 * in 'out' (then out is "").
 */
bool sqlquote_literal(const char *s, char *out, size_t outlen) __attribute__((warn_unused_result));

/* 's' as a quoted identifier: "a""b".  False when it does not fit. */
bool sqlquote_ident(const char *s, char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * A configured name, "name" or "schema.name", as SQL would read it unquoted:
 * each part folded to lower case, then quoted ("schema"."name").  False when
 * it does not fit, or when a part is empty or there are more than two.
 */
bool sqlquote_qualified(const char *name, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Append 's' to a statement being built in 'b' as a string literal, always in
 * the E'...' form with quotes and backslashes doubled (the form the session
 * restore has always sent), whatever s holds.  Running out of memory fails b
 * (its sticky flag), like any other put.
 */
void sqlquote_put_literal(struct pq_buf *b, const char *s);

/* Append 's' to 'b' as a quoted identifier: "a""b". */
void sqlquote_put_ident(struct pq_buf *b, const char *s);

#endif /* PGCUTOVER_SQLQUOTE_H */

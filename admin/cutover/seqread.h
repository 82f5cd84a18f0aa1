/*
 * seqread.h - reading a side's sequences: the queries and the arithmetic
 * that SHOW SEQUENCES and the SWITCH's sequence sync share, and the reader of
 * the sync's answers (seq_value_row()), which the pre-advance
 * (sequences_ahead.c) and the sync inside the pause (sequences.c) both use.
 *
 * pg_sequences shows last_value only when is_called is true (NULL for a
 * sequence never used, or after ALTER SEQUENCE ... RESTART or setval(v,
 * false)), and a role without SELECT on the sequence also sees NULL.  The
 * value nextval() returns next therefore needs the sequence relation itself:
 * last_value + increment when is_called, else last_value.  Reading is in two
 * steps: SEQ_LIST_SQL lists the sequences, then seq_raw_append() builds one
 * UNION ALL query over the relations of those that need it.
 */
#ifndef PGCUTOVER_SEQREAD_H
#define PGCUTOVER_SEQREAD_H

#include <libpq-fe.h>
#include <stdbool.h>

struct pq_buf;
struct seq_ahead;
struct seq_entry;

/* Columns of SEQ_LIST_SQL. */
enum {
	SEQ_LIST_QNAME,     /* "schema"."name", quoted with quote_ident */
	SEQ_LIST_NAME,      /* schema.name, as the configuration names it */
	SEQ_LIST_LAST,      /* pg_sequences.last_value: NULL unless is_called */
	SEQ_LIST_INCREMENT, /* increment_by */
};
extern const char SEQ_LIST_SQL[];

/* Columns of the query seq_raw_append() builds. */
enum {
	SEQ_RAW_QNAME,
	SEQ_RAW_NAME,
	SEQ_RAW_LAST,   /* the relation's last_value, never NULL */
	SEQ_RAW_CALLED, /* is_called: "t" or "f" */
	SEQ_RAW_INCREMENT,
};

/*
 * Append to 'sql' (a query being built, not NUL-terminated yet) the part that
 * reads sequence 'qname' (a SEQ_LIST_QNAME value) from its relation, joined
 * to what 'sql' already holds by UNION ALL.  Failure is sql->failed.
 */
void seq_raw_append(struct pq_buf *sql, const char *qname, long long increment);

/* A whole number the server printed (last_value, increment_by), strictly parsed. */
bool seq_parse_int(const char *text, long long *out) __attribute__((warn_unused_result));

/* The value nextval() hands out next; past the bigint range it saturates. */
long long seq_next_value(long long last, bool is_called, long long increment);

/*
 * Whether a sequence whose next value is 'behind_next' would hand out values
 * the one at 'ahead_next' (same direction, 'increment') already reached: for an
 * ascending sequence a lower next value, for a descending one a higher.
 */
bool seq_is_behind(long long behind_next, long long ahead_next, long long increment);

/*
 * Row i of a seq_values_sql() answer (seqsql.h): the sequence of 'sa' it is
 * about, and the values it read in *last and *called.  The entry itself is
 * left alone: the pre-advance takes the values, the sync inside the pause
 * first compares them with what it set.  NULL when the row does not parse or
 * names a sequence 'sa' does not hold: the query cannot answer that, so the
 * caller fails the switch rather than guess.
 */
struct seq_entry *seq_value_row(struct seq_ahead *sa, const PGresult *res, int i, long long *last,
				bool *called) __attribute__((warn_unused_result));

#endif

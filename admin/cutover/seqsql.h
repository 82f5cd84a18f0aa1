/*
 * seqsql.h - the SQL of the sequence sync at scale (seqsql.c): pure text
 * building, no I/O, unit-tested.
 *
 * A switch brings the sequences of the side switched to ahead in two steps
 * (sequences_ahead.c, sequences.c): before the pause every selected sequence
 * is read on the old side and set on the new side; inside the pause only the
 * sequences that moved since that read are read again and set.  Three
 * queries do it, each one round trip whatever the number of sequences:
 *
 *   SEQ_CATALOG_SQL   the old side's sequences from the catalog: no
 *                     sequence relation is opened
 *   seq_values_sql()  their values (last_value, is_called), optionally only
 *                     those that differ from values read before
 *   seq_apply_sql()   on the new side: each sequence set at or beyond the
 *                     old side's next value plus sequence_margin, never
 *                     backwards (one DO block)
 *
 * Reading a value: pg_sequence_last_value() costs about a microsecond per
 * sequence but shows NULL for a sequence whose is_called is false (never
 * used, RESTART, setval(v, false)); only those are read from their relation
 * (an EXECUTE each, ~15 us), inside a DO block that hands its rows to the
 * query after it through a session setting.  A UNION ALL over the relations
 * would plan in time quadratic in their number (20 s for 5 000).
 */
#ifndef PGCUTOVER_SEQSQL_H
#define PGCUTOVER_SEQSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pq_buf;

/* Columns of SEQ_CATALOG_SQL (one row per sequence, ordered by oid). */
enum {
	SEQ_CAT_OID,       /* the sequence's oid on that side */
	SEQ_CAT_QNAME,     /* "schema"."name", quoted with quote_ident */
	SEQ_CAT_NAME,      /* schema.name, as sequence_sync names it */
	SEQ_CAT_INCREMENT, /* increment_by */
};
extern const char SEQ_CATALOG_SQL[];

/* Columns of the query seq_values_sql() builds. */
enum {
	SEQ_VAL_OID,
	SEQ_VAL_LAST,   /* the relation's last_value */
	SEQ_VAL_CALLED, /* is_called: "t" or "f" */
};

/*
 * The query that reads the values of the n sequences 'oids' (NUL-terminated
 * in b; failure is b->failed).  With known == NULL it answers a row for each;
 * otherwise known[i] is the last_value read before for a sequence whose
 * is_called was true then (known_set[i]), and a sequence whose
 * is_called is still true with that same last_value gives no row: what comes
 * back is what moved, plus every sequence whose is_called is false now (the
 * caller compares those).
 */
void seq_values_sql(struct pq_buf *b, const uint32_t *oids, const long long *known,
		    const bool *known_set, size_t n);

/* One sequence to set on the new side: the old side's values. */
struct seq_apply_item {
	const char *qname; /* SEQ_CAT_QNAME: the same name on the new side */
	long long last;    /* the old side's last_value, */
	bool called;       /* is_called */
	long long inc;     /* and increment */
};

/*
 * The DO block that sets each sequence on the new side so that its next
 * value is max(its own next value, the old side's next value + margin)
 * (descending: min, - margin): never backwards, untouched when already far
 * enough, arithmetic in numeric so that a bound does not overflow (past its
 * bound a sequence is set exhausted).  A sequence missing on the new side
 * fails the block with 42P01; setval() is not transactional, so the ones set
 * before it stay set.
 */
void seq_apply_sql(struct pq_buf *b, const struct seq_apply_item *items, size_t n, int64_t margin);

#endif /* PGCUTOVER_SEQSQL_H */

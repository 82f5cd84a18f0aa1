/*
 * seqstate.h - what the sequence pre-advance (sequences_ahead.c) leaves for
 * the sequence sync inside the pause (sequences.c): every selected sequence
 * of the side switched from, with the values it had when it was read and
 * set on the new side before the pause.
 */
#ifndef PGCUTOVER_SEQSTATE_H
#define PGCUTOVER_SEQSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One selected sequence of the old side. */
struct seq_entry {
	uint32_t oid;  /* on the old side */
	char *qname;   /* "schema"."name": the same name on the new side */
	long long inc; /* increment_by on the old side */
	long long last;
	bool called; /* last_value and is_called when read before the pause */
};

struct seq_ahead {
	size_t n;
	struct seq_entry *e; /* ordered by oid */
};

/* The entry for oid, or NULL (seqread.c, with the reader of the values). */
struct seq_entry *seq_ahead_find(struct seq_ahead *sa, uint32_t oid);
void seq_ahead_free(struct seq_ahead *sa);

#endif /* PGCUTOVER_SEQSTATE_H */

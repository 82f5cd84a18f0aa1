/*
 * htab.h - the chained hash table under every intern table and map
 * (parameter lists, statement texts, a client's statement names, a server's
 * prepared statements).  Intrusive: an entry embeds a struct hnode and is
 * found back with htab_entry(); the table only holds bucket heads.  The
 * caller hashes (hash.h) and compares keys; the table keeps each node's hash
 * so that growing never hashes again.  Buckets are a power of two, doubled
 * when the table holds as many entries as buckets.
 */
#ifndef PGCUTOVER_HTAB_H
#define PGCUTOVER_HTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/list.h"

struct hnode {
	struct hnode *next; /* bucket chain */
	uint64_t hash;
};

struct htab {
	struct hnode **buckets; /* NULL until the first entry */
	uint32_t nbuckets;
	uint32_t count;
};

/* The struct that embeds node 'ptr' as its member 'member'. */
#define htab_entry(ptr, type, member) list_entry(ptr, type, member)

/* The chain where entries of hash 'h' are: walk it with ->next, compare ->hash first. */
static inline struct hnode *htab_chain(const struct htab *t, uint64_t h)
{
	return t->nbuckets ? t->buckets[h & (t->nbuckets - 1)] : NULL;
}

/*
 * Room for one more entry: the buckets double (the first time, 'initial',
 * a power of two) when count has reached them.  False when out of memory.
 */
bool htab_reserve(struct htab *t, uint32_t initial) __attribute__((warn_unused_result));

/* Link n under hash h (after htab_reserve). */
void htab_insert(struct htab *t, struct hnode *n, uint64_t h);

/* Unlink n, which is in the table. */
void htab_remove(struct htab *t, struct hnode *n);

/* Give the buckets back (the entries are the caller's); the table is empty again. */
void htab_free(struct htab *t);

#endif /* PGCUTOVER_HTAB_H */

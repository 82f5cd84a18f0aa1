/*
 * htab.c - the chained hash table (see htab.h).
 */
#include "proxy/core/htab.h"

#include <stdlib.h>

bool htab_reserve(struct htab *t, uint32_t initial)
{
	uint32_t n;
	struct hnode **nb;

	if (t->count < t->nbuckets)
		return true;
	n = t->nbuckets ? t->nbuckets * 2 : initial;
	if (n == 0 || (nb = calloc(n, sizeof(*nb))) == NULL)
		return false;
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		struct hnode *e = t->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
	return true;
}

void htab_insert(struct htab *t, struct hnode *n, uint64_t h)
{
	struct hnode **b = &t->buckets[h & (t->nbuckets - 1)];

	n->hash = h;
	n->next = *b;
	*b = n;
	t->count++;
}

void htab_remove(struct htab *t, struct hnode *n)
{
	for (struct hnode **p = &t->buckets[n->hash & (t->nbuckets - 1)]; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			t->count--;
			return;
		}
	}
}

void htab_free(struct htab *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

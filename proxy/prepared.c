/*
 * prepared.c - statement registry, client maps, server caches, answer queues
 * (see prepared.h).
 *
 * Everything here is chained hash tables that double when they fill up, and
 * one ring buffer; no structure grows without a bound the caller controls.
 */
#include "proxy/prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/core/hash.h"

/* ---- hashing ---- */

static uint32_t hash_ptr(const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;

	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (uint32_t)v;
}

/* ---- the statement registry ---- */

static struct htab registry;

size_t ps_stmt_count(void)
{
	return registry.count;
}

struct ps_stmt *ps_stmt_get(const uint8_t *body, size_t len, uint8_t kind)
{
	uint64_t h = hash_bytes(body, len);
	struct ps_stmt *st;

	for (struct hnode *n = htab_chain(&registry, h); n; n = n->next) {
		st = htab_entry(n, struct ps_stmt, hnode);
		if (n->hash == h && st->len == len && memcmp(st->body, body, len) == 0) {
			st->refs++;
			return st;
		}
	}
	if (len > UINT32_MAX || !htab_reserve(&registry, 256))
		return NULL;
	st = malloc(sizeof(*st) + len);
	if (st == NULL)
		return NULL;
	st->refs = 1;
	st->kind = kind;
	st->len = (uint32_t)len;
	memcpy(st->body, body, len);
	htab_insert(&registry, &st->hnode, h);
	return st;
}

void ps_stmt_ref(struct ps_stmt *st)
{
	st->refs++;
}

void ps_stmt_put(struct ps_stmt *st)
{
	if (st == NULL || --st->refs > 0)
		return;
	htab_remove(&registry, &st->hnode);
	free(st);
	if (registry.count == 0)
		htab_free(&registry); /* the last one: the table goes too (leak checkers stay quiet) */
}

/* ---- a client's names ---- */

/*
 * PostgreSQL keys prepared statements by the first NAMEDATALEN - 1 (63)
 * bytes of their name: a Parse of a longer name and a DEALLOCATE, Bind or
 * Close of its first 63 bytes name the same statement.  The client's map
 * compares names the same way.
 */
#define PS_NAME_SIGNIFICANT 63

static uint64_t name_hash(const char *name)
{
	return hash_bytes(name, strnlen(name, PS_NAME_SIGNIFICANT));
}

static bool name_eq(const char *a, const char *b)
{
	return strncmp(a, b, PS_NAME_SIGNIFICANT) == 0;
}

void ps_map_init(struct ps_map *m)
{
	memset(m, 0, sizeof(*m));
}

static void entry_free(struct ps_map *m, struct ps_entry *e)
{
	if (e->epoch != m->epoch)
		m->missing--;
	if (e->stmt->kind != 0)
		m->stateful--;
	htab_remove(&m->tab, &e->hnode);
	ps_stmt_put(e->stmt);
	free(e);
}

void ps_map_clear(struct ps_map *m)
{
	for (uint32_t i = 0; i < m->tab.nbuckets; i++)
		while (m->tab.buckets[i])
			entry_free(m, htab_entry(m->tab.buckets[i], struct ps_entry, hnode));
}

void ps_map_free(struct ps_map *m)
{
	ps_map_clear(m);
	htab_free(&m->tab);
}

struct ps_entry *ps_map_find(const struct ps_map *m, const char *name)
{
	uint64_t h = name_hash(name);

	for (struct hnode *n = htab_chain(&m->tab, h); n; n = n->next) {
		struct ps_entry *e = htab_entry(n, struct ps_entry, hnode);

		if (n->hash == h && name_eq(e->name, name))
			return e;
	}
	return NULL;
}

struct ps_entry *ps_map_set(struct ps_map *m, const char *name, struct ps_stmt *st, bool present)
{
	size_t nlen = strlen(name);
	struct ps_entry *e;

	ps_stmt_ref(st); /* first: the entry replaced may hold the last other reference */
	ps_map_remove(m, name);
	if (!htab_reserve(&m->tab, 16)) {
		ps_stmt_put(st);
		return NULL;
	}
	e = malloc(sizeof(*e) + nlen + 1);
	if (e == NULL) {
		ps_stmt_put(st);
		return NULL;
	}
	memcpy(e->name, name, nlen + 1);
	e->stmt = st;
	e->gen = st->gen;
	e->epoch = present ? m->epoch : m->epoch - 1;
	if (!present)
		m->missing++;
	if (st->kind != 0)
		m->stateful++;
	htab_insert(&m->tab, &e->hnode, name_hash(name));
	return e;
}

bool ps_map_remove(struct ps_map *m, const char *name)
{
	struct ps_entry *e = ps_map_find(m, name);

	if (e == NULL)
		return false;
	entry_free(m, e);
	return true;
}

static void unwrap_epoch(struct ps_entry *e, void *arg)
{
	const struct ps_map *m = arg;

	if (e->epoch == m->epoch)
		e->epoch = m->epoch - 1;
}

void ps_map_new_server(struct ps_map *m)
{
	m->epoch++;
	m->missing = m->tab.count;
	/* an entry whose epoch wrapped around to the new value is not really there */
	ps_map_each(m, unwrap_epoch, m);
}

void ps_map_mark(struct ps_map *m, struct ps_entry *e, bool present)
{
	if (present && e->epoch != m->epoch) {
		e->epoch = m->epoch;
		m->missing--;
	} else if (!present && e->epoch == m->epoch) {
		e->epoch = m->epoch - 1;
		m->missing++;
	}
}

void ps_map_each(const struct ps_map *m, void (*fn)(struct ps_entry *e, void *arg), void *arg)
{
	for (uint32_t i = 0; i < m->tab.nbuckets; i++)
		for (struct hnode *n = m->tab.buckets[i]; n; n = n->next)
			fn(htab_entry(n, struct ps_entry, hnode), arg);
}

/* ---- a server's statements (transaction pooling) ---- */

void ps_cache_init(struct ps_cache *c)
{
	memset(c, 0, sizeof(*c));
}

static void lru_unlink(struct ps_cache *c, struct ps_cached *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct ps_cache *c, struct ps_cached *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* The entry for st, or NULL. */
static struct ps_cached *cache_lookup(const struct ps_cache *c, const struct ps_stmt *st)
{
	uint64_t h = hash_ptr(st);

	for (struct hnode *n = htab_chain(&c->tab, h); n; n = n->next) {
		struct ps_cached *e = htab_entry(n, struct ps_cached, hnode);

		if (e->stmt == st)
			return e;
	}
	return NULL;
}

struct ps_cached *ps_cache_find(struct ps_cache *c, const struct ps_stmt *st)
{
	struct ps_cached *e = cache_lookup(c, st);

	if (e && c->head != e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	return e;
}

struct ps_cached *ps_cache_add(struct ps_cache *c, struct ps_stmt *st)
{
	struct ps_cached *e;

	if (!htab_reserve(&c->tab, 32))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	ps_stmt_ref(st);
	e->stmt = st;
	e->sname = c->next_sname++;
	e->gen = st->gen;
	htab_insert(&c->tab, &e->hnode, hash_ptr(st));
	lru_push_front(c, e);
	return e;
}

/* Unhash and free one entry. */
static void cache_drop(struct ps_cache *c, struct ps_cached *e)
{
	htab_remove(&c->tab, &e->hnode);
	lru_unlink(c, e);
	ps_stmt_put(e->stmt);
	free(e);
}

void ps_cache_remove(struct ps_cache *c, const struct ps_stmt *st)
{
	struct ps_cached *e = cache_lookup(c, st);

	if (e)
		cache_drop(c, e);
}

bool ps_cache_evict(struct ps_cache *c, const struct ps_stmt *keep, uint32_t *sname)
{
	struct ps_cached *e = c->tail;

	if (e && e->stmt == keep)
		e = e->prev;
	if (e == NULL)
		return false;
	*sname = e->sname;
	cache_drop(c, e);
	return true;
}

void ps_cache_clear(struct ps_cache *c)
{
	while (c->head)
		cache_drop(c, c->head);
}

void ps_cache_free(struct ps_cache *c)
{
	ps_cache_clear(c);
	htab_free(&c->tab);
}

void ps_server_name(uint32_t sname, char *buf, size_t len)
{
	snprintf(buf, len, PS_SERVER_PREFIX "%u", (unsigned)sname);
}

/* ---- answers still to come ---- */

void ps_queue_init(struct ps_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void ps_queue_free(struct ps_queue *q)
{
	while (q->count)
		ps_queue_pop(q);
	free(q->items);
	q->items = NULL;
	q->cap = 0;
}

bool ps_queue_push(struct ps_queue *q, enum ps_pending_kind kind, uint32_t sync_no, uint32_t skip,
		   struct ps_stmt *st, const char *name)
{
	struct ps_pending *it;

	if (q->count >= PS_QUEUE_MAX)
		return false;
	if (q->count == q->cap) {
		uint32_t n = q->cap ? q->cap * 2 : 16;
		struct ps_pending *ni = malloc(n * sizeof(*ni));

		if (ni == NULL)
			return false;
		for (uint32_t i = 0; i < q->count; i++)
			ni[i] = q->items[(q->head + i) & (q->cap - 1)];
		free(q->items);
		q->items = ni;
		q->head = 0;
		q->cap = n;
	}
	it = &q->items[(q->head + q->count) & (q->cap - 1)];
	it->kind = (uint8_t)kind;
	it->sync_no = sync_no;
	it->skip = skip;
	it->stmt = st;
	it->name = NULL;
	it->prev = NULL;
	it->prev_present = false;
	if (name) {
		it->name = strdup(name);
		if (it->name == NULL)
			return false;
	}
	if (st)
		ps_stmt_ref(st);
	q->count++;
	return true;
}

void ps_queue_pop(struct ps_queue *q)
{
	struct ps_pending *it;

	if (q->count == 0)
		return;
	it = &q->items[q->head];
	ps_stmt_put(it->stmt);
	ps_stmt_put(it->prev);
	free(it->name);
	it->stmt = NULL;
	it->prev = NULL;
	it->name = NULL;
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
}

void ps_pending_set_prev(struct ps_pending *it, struct ps_stmt *prev, bool present)
{
	if (prev)
		ps_stmt_ref(prev);
	ps_stmt_put(it->prev);
	it->prev = prev;
	it->prev_present = present;
}

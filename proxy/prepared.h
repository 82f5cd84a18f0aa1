/*
 * prepared.h - named prepared statements: who prepared what, and where.
 *
 * Four structures, all plain data (no I/O), so that the forwarding code in
 * client.c and server.c only decides and this module only remembers:
 *
 *   struct ps_stmt   a statement text (what a Parse carries after its name),
 *                    interned: clients that prepare the same text share one;
 *   struct ps_map    a client's names -> statements, so a statement can be
 *                    prepared again on whatever server the client lands on
 *                    (session pooling after a switch; every transaction in
 *                    transaction pooling);
 *   struct ps_cache  in transaction pooling, the statements one server has
 *                    prepared under names of pgcutover's own, bounded, least
 *                    recently used first out;
 *   struct ps_queue  the Parse and Close messages a server has not answered
 *                    yet, in order, with what to do with each answer: pass it,
 *                    swallow it (pgcutover's own), or turn it into the
 *                    ParseComplete the client expects.
 */
#ifndef PGCUTOVER_PREPARED_H
#define PGCUTOVER_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/htab.h"

/*
 * Whether a server's copy made at generation 'copy' may serve a client that
 * parsed at generation 'client' (counters wrap: compared as a difference).
 */
static inline bool ps_gen_serves(uint32_t copy, uint32_t client)
{
	return (int32_t)(copy - client) >= 0;
}

/* Prefix of the names pgcutover gives statements on servers in transaction pooling. */
#define PS_SERVER_PREFIX "pgcutover_"

/* A statement text, shared by every client (and server cache) that holds it. */
struct ps_stmt {
	struct hnode hnode; /* in the registry, by the hash of body */
	uint32_t refs;      /* client map entries, cache entries and queue items holding it */
	uint8_t kind; /* enum session_kind of its first keyword: may executing it change state */
	/*
	 * Bumped by every client's Parse of this text (transaction pooling).  A
	 * server's copy made before a client's own Parse may predate a schema
	 * change that Parse saw (ALTER TABLE ... TYPE): it is never used for
	 * that client, which gets a copy prepared at or after its Parse, as a
	 * direct connection would (see struct ps_entry.gen, ps_cached.gen).
	 */
	uint32_t gen;
	uint32_t len;   /* bytes in body */
	uint8_t body[]; /* query NUL, int16 parameter count, int32 type oids */
};

/*
 * The interned statement for this Parse body, with one more reference;
 * NULL when out of memory.
 */
struct ps_stmt *ps_stmt_get(const uint8_t *body, size_t len, uint8_t kind);
/* Take a reference / drop one (the last frees it). */
void ps_stmt_ref(struct ps_stmt *st);
void ps_stmt_put(struct ps_stmt *st);
/* Statements alive (SHOW-style counters, tests). */
size_t ps_stmt_count(void);

/* One of a client's names. */
struct ps_entry {
	struct hnode hnode;   /* in the map, by the hash of the name */
	struct ps_stmt *stmt; /* a reference */
	uint32_t epoch;       /* == map.epoch: prepared on the client's current server */
	uint32_t gen;         /* stmt->gen when the client parsed it: the oldest copy it may use */
	char name[];          /* as the client spelled it */
};

struct ps_map {
	struct htab tab;   /* the names (tab.count of them) */
	uint32_t epoch;    /* bumped when the client's session moves to a new server */
	uint32_t missing;  /* names not prepared on the current server (lazy restore) */
	uint32_t stateful; /* names whose statement may change session state */
};

void ps_map_init(struct ps_map *m);
void ps_map_free(struct ps_map *m);
/* Names compare on their first 63 bytes, as PostgreSQL's (NAMEDATALEN - 1). */
struct ps_entry *ps_map_find(const struct ps_map *m, const char *name);
/*
 * Name 'name' -> 'st' (a new reference is taken), replacing an older meaning;
 * 'present' says whether the current server has it.  NULL when out of memory.
 */
struct ps_entry *ps_map_set(struct ps_map *m, const char *name, struct ps_stmt *st, bool present);
/* Forget a name (false when unknown). */
bool ps_map_remove(struct ps_map *m, const char *name);
void ps_map_clear(struct ps_map *m);
/* The session got a new server: nothing is prepared there yet. */
void ps_map_new_server(struct ps_map *m);
/* The current server now has / no longer has this entry's statement. */
void ps_map_mark(struct ps_map *m, struct ps_entry *e, bool present);
static inline bool ps_map_present(const struct ps_map *m, const struct ps_entry *e)
{
	return e->epoch == m->epoch;
}
/* Call fn for every entry (fn must not change the map). */
void ps_map_each(const struct ps_map *m, void (*fn)(struct ps_entry *e, void *arg), void *arg);

/* One statement prepared on a server (transaction pooling). */
struct ps_cached {
	struct hnode hnode;     /* in the cache, keyed by stmt */
	struct ps_cached *prev; /* LRU list: head is the most recently used */
	struct ps_cached *next;
	struct ps_stmt *stmt; /* a reference */
	uint32_t sname;       /* the server knows it as PS_SERVER_PREFIX "<sname>" */
	uint32_t gen;         /* stmt->gen when it was prepared there */
};

struct ps_cache {
	struct htab tab; /* the statements (tab.count of them) */
	struct ps_cached *head, *tail;
	/*
	 * Next server-side name.  Names are never reused on one connection, so
	 * a statement pgcutover believes gone but the server kept (a Close lost
	 * to an error) can never collide with a new Parse.
	 */
	uint32_t next_sname;
};

void ps_cache_init(struct ps_cache *c);
void ps_cache_free(struct ps_cache *c);
/* The server's entry for st, moved to the front of the LRU; NULL when not prepared there. */
struct ps_cached *ps_cache_find(struct ps_cache *c, const struct ps_stmt *st);
/* Record st as prepared under a fresh name, as of st->gen; NULL when out of memory. */
struct ps_cached *ps_cache_add(struct ps_cache *c, struct ps_stmt *st);
/* Forget st (no-op when absent). */
void ps_cache_remove(struct ps_cache *c, const struct ps_stmt *st);
/*
 * Forget the least recently used statement, except 'keep'; its server name
 * in *sname.  False when there is nothing else to evict.
 */
bool ps_cache_evict(struct ps_cache *c, const struct ps_stmt *keep, uint32_t *sname);
void ps_cache_clear(struct ps_cache *c);
/* Write PS_SERVER_PREFIX "<sname>" into buf (at least 24 bytes). */
void ps_server_name(uint32_t sname, char *buf, size_t len);

/* What to do with the server's answer to a queued Parse or Close. */
enum ps_pending_kind {
	PS_PARSE_FWD,     /* the client's Parse: pass the ParseComplete */
	PS_PARSE_HIDDEN,  /* a Parse pgcutover injected: swallow the ParseComplete */
	PS_CLOSE_FWD,     /* the client's Close of one of its names: pass the CloseComplete */
	PS_CLOSE_HIDDEN,  /* a Close pgcutover injected (eviction): swallow it */
	PS_PARSE_DEALLOC, /* the client's unnamed Parse of a DEALLOCATE of one of its names,
			     rewritten (transaction pooling): pass the ParseComplete */
	PS_PARSE_DUP,     /* the client's Parse of a name it has, sent under the server name of
			     that statement (transaction pooling): the server's 42P05 is told
			     with the client's name */
};

struct ps_pending {
	uint8_t kind;         /* enum ps_pending_kind */
	bool prev_present;    /* prev was prepared on the client's current server */
	uint32_t sync_no;     /* which Sync-delimited batch it belongs to (see server.h) */
	uint32_t skip;        /* answers to pass first: Parse/Close forwarded untracked before it */
	struct ps_stmt *stmt; /* a reference, or NULL (client Close, DEALLOCATE, placeholder) */
	char *name;           /* the client's name, for undoing; NULL otherwise */
	uint32_t sname;       /* PS_PARSE_DUP: the server name the Parse went under */
	/*
	 * PS_PARSE_FWD, PS_CLOSE_FWD, PS_PARSE_DEALLOC: what
	 * 'name' meant before this message changed it (a reference; NULL: no
	 * statement).  When the server skips the message (an error earlier in
	 * the batch) or rejects it (42P05, a syntax error), the name means that
	 * again, as it does on the server: PostgreSQL keeps a statement whose
	 * re-Parse failed, and one whose Close it never ran.
	 */
	struct ps_stmt *prev;
};

struct ps_queue {
	struct ps_pending *items; /* ring */
	uint32_t head;            /* index of the oldest */
	uint32_t count;
	uint32_t cap; /* a power of two, or 0 */
};

/* Most Parse/Close messages one server may have unanswered (the client is paused beyond). */
#define PS_QUEUE_MAX 65536

void ps_queue_init(struct ps_queue *q);
void ps_queue_free(struct ps_queue *q);
/* Append (stmt gets a reference, name is copied); false when out of memory or full. */
bool ps_queue_push(struct ps_queue *q, enum ps_pending_kind kind, uint32_t sync_no, uint32_t skip,
		   struct ps_stmt *st, const char *name) __attribute__((warn_unused_result));
static inline struct ps_pending *ps_queue_head(struct ps_queue *q)
{
	return q->count ? &q->items[q->head] : NULL;
}
/* Drop the oldest item, releasing what it holds. */
void ps_queue_pop(struct ps_queue *q);
/* The newest item (NULL when empty). */
static inline struct ps_pending *ps_queue_tail(struct ps_queue *q)
{
	return q->count ? &q->items[(q->head + q->count - 1) & (q->cap - 1)] : NULL;
}
/* The i-th oldest item (i < count). */
static inline struct ps_pending *ps_queue_at(struct ps_queue *q, uint32_t i)
{
	return &q->items[(q->head + i) & (q->cap - 1)];
}
/* Record on an item what its name meant before (takes a new reference to prev). */
void ps_pending_set_prev(struct ps_pending *it, struct ps_stmt *prev, bool present);

#endif /* PGCUTOVER_PREPARED_H */

/*
 * shadow_int.h - INTERNAL to shadow reads (proxy/shadow*.c): what their
 * files share.  The interface is shadow.h.
 *
 *   shadow_capture.c  the copy of a sampled transaction, from its client's
 *                     messages and the source's answers
 *   shadow_replay.c   replay connections, the replay on the target (and the
 *                     recheck on the source), the verdict
 *   shadow_books.c    a database's books: its samples by state, the wait
 *                     for the target's position, the statements and
 *                     differences behind SHOW SHADOW, the timer
 *
 * A sample moves through explicit states, each with its list in the
 * database's books; only shadow_set_state() moves it:
 *
 *   CAPTURE -> WAIT_POS -> READY -> TARGET -> done
 *                                        \-> RECHECK -> SOURCE -> done
 *
 * and from any state to done with an outcome (inconclusive, dropped).
 */
#ifndef PGCUTOVER_SHADOW_INT_H
#define PGCUTOVER_SHADOW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/pq_build.h"
#include "protocol/pqdigest.h"
#include "proxy/core/list.h"
#include "proxy/core/params.h"
#include "proxy/shadow.h"

struct event;
struct pool;

/* After a failed login or connection, a side is not tried again for this long. */
#define SHADOW_RETRY_MS 5000

enum shadow_state {
	SMP_CAPTURE,  /* being copied from its client */
	SMP_WAIT_POS, /* waiting for the target to apply the source's position */
	SMP_READY,    /* waiting for a replay connection to the target */
	SMP_TARGET,   /* running on the target */
	SMP_RECHECK,  /* waiting for a connection to the source, to read it again */
	SMP_SOURCE,   /* running again on the source */
	SMP_NSTATES,
};

/* One request of a sampled transaction: a Query, or extended messages up to a Sync. */
struct shadow_req {
	struct pq_buf msgs; /* what the replay sends for it (empty: nothing, a BEGIN or COMMIT) */
	struct pq_buf text; /* the statements it runs, "; "-joined, for the fingerprint */
	bool compared;      /* its answers are compared */
	bool ordered;       /* every statement has a top-level ORDER BY */
	bool shape_only;    /* only errors and columns can be compared */
	bool open;          /* extended messages were copied and its Sync not yet */
	uint64_t sent_us;   /* source: its first message was forwarded */
	uint64_t source_us; /* source: how long until its ReadyForQuery */
	uint64_t target_us; /* the same on the target */
	struct pqdigest_result src, tgt, src2; /* the source, the target, the source again */
	unsigned diff;                         /* pqdigest_compare() of src and tgt */
};

struct shadow_sample {
	struct list_node node; /* on its database's list of its state */
	struct shadow_db *sdb;
	enum shadow_state state;
	struct client *client;       /* CAPTURE: whom it copies */
	char *user;                  /* the client's user */
	struct params_snap *startup; /* its startup parameters (a reference) */
	uint8_t client_key[32];      /* its pool's SCRAM ClientKey, to log in with a SCRAM secret */
	bool have_key;
	char *settings; /* the session's settings as set_config() calls ("" when none) */
	char *begin;    /* its BEGIN ... READ ONLY; NULL: one read outside a transaction */
	struct shadow_req *reqs;
	unsigned nreqs, reqcap;
	size_t bytes; /* bytes of requests held, bounded by SHADOW_TXN_BYTES_MAX */
	bool closed;  /* the transaction's last request was copied */
	bool ending;  /* its COMMIT or ROLLBACK is being copied (extended protocol) */
	/*
	 * The queue was full: the copy only finds the first statement the
	 * transaction runs, counts it as dropped and goes (it holds no place in
	 * the queue).  A Parse that nothing executes counts as nothing.
	 */
	bool dropping;
	unsigned answered;   /* requests whose answers are complete */
	struct pqdigest dig; /* the answers being read (the source's, then a replay's) */
	/* the extended protocol while copying */
	uint8_t *unnamed; /* the unnamed statement's Parse body after its name (query, types) */
	size_t unnamed_len;
	char *bound;     /* the query of the statement bound last (for the fingerprint) */
	bool skipping;   /* the messages of a BEGIN or COMMIT statement are not replayed */
	char portal[64]; /* the portal bound last ("" unnamed) */
	/* the wait for the target */
	uint64_t end_us; /* when the source's last answer came */
	uint64_t pos;    /* the source's position after it */
	bool pos_known;
	uint64_t queued_us; /* when it entered its current state */
	/* a replay */
	struct server *server; /* TARGET, SOURCE: the connection it runs on */
	unsigned step;         /* ReadyForQuery seen on it */
	unsigned steps;        /* ... of this many */
	uint64_t step_us;      /* when the previous step ended */
};

/* A replay connection pool: one user's connections to one side. */
struct shadow_pool {
	struct list_node node; /* in the database's books */
	struct pool *pool;     /* owned (pool_new_owned): not among the database's pools */
	struct shadow_db *sdb;
	enum route_side side;
	char last_error[200]; /* why its last login or connection failed, "" when none */
	uint64_t failed_us;   /* when: no new attempt for SHADOW_RETRY_MS */
};

struct shadow_db {
	struct list_node node; /* in the list of every database's books */
	struct database *db;
	struct list_node samples[SMP_NSTATES]; /* by state */
	int held;                              /* samples in any state: the queue */
	struct list_node pools;                /* struct shadow_pool */
	bool asking;                           /* the position hook was called and not answered */
	struct event *timer;                   /* expiries, idle connections (shadow_books.c) */
	struct shadow_stmt *stmts;             /* SHADOW_STATEMENTS_MAX + 1 (the last: the rest) */
	size_t nstmts;
	struct shadow_diff *diffs; /* a ring of SHADOW_DIFFS_MAX */
	size_t diff_first, ndiffs;
	struct shadow_totals totals;
	uint64_t random;  /* xorshift state of the per-transaction draw */
	unsigned pass;    /* shadow_dispatch() passes, to claim connections being opened */
	bool dispatching; /* shadow_dispatch() runs: a nested call only asks for another pass */
	bool again;
};

/* ---- shadow_books.c ---- */

/* db's books, created on first use; NULL when out of memory. */
struct shadow_db *shadow_db_get(struct database *db);
/* Move a sample to another state (and list); checks the transition. */
void shadow_set_state(struct shadow_sample *smp, enum shadow_state st);
/* A new sample of c in CAPTURE, counted in the queue; NULL when out of memory. */
struct shadow_sample *shadow_sample_new(struct shadow_db *sdb, struct client *c);
/* Free a sample (it leaves the queue); nothing is recorded. */
void shadow_sample_free(struct shadow_sample *smp);
/* The copy is complete: wait for the target's position (or run at once). */
void shadow_sample_captured(struct shadow_sample *smp);
/* The statement row of a fingerprint (the shared last row when the table is full). */
struct shadow_stmt *shadow_stmt_get(struct shadow_db *sdb, const struct fingerprint *fp,
				    const char *query);
/* The statement row of a fingerprint, or NULL when it has none. */
struct shadow_stmt *shadow_stmt_find(struct shadow_db *sdb, const struct fingerprint *fp);
/* Record a sample's outcome for each of its compared requests, then free it. */
enum shadow_outcome {
	SHADOW_COMPARED,     /* the verdicts are in the requests (shadow_replay.c) */
	SHADOW_INCONCLUSIVE, /* not compared: 'why' */
	SHADOW_DROPPED,      /* not replayed: 'why' */
};
void shadow_sample_done(struct shadow_sample *smp, enum shadow_outcome outcome, const char *why);
/* Per compared request, after a comparison: record the verdict in its statement's row. */
void shadow_record_request(struct shadow_db *sdb, struct shadow_req *r, unsigned diff,
			   bool inconclusive, const char *why);
/* Record a differing request in the ring of SHOW SHADOW DIFFS. */
void shadow_record_diff(struct shadow_db *sdb, const struct shadow_stmt *st,
			const struct shadow_req *r, const char *reason,
			const struct pqdigest_result *target);
/* A per-transaction draw: true with probability 'rate'. */
bool shadow_draw(struct shadow_db *sdb, double rate);
/* Make sure the books' timer runs (there is something to watch). */
void shadow_arm_timer(struct shadow_db *sdb);

/* ---- shadow_replay.c ---- */

/* Start what can start: samples READY on the target, RECHECK on the source. */
void shadow_dispatch(struct shadow_db *sdb);
/* Close the books' idle replay connections unused for SHADOW_IDLE_MS (all with force). */
void shadow_close_idle(struct shadow_db *sdb, bool force);
/* A replay ran longer than its bound: its connection is closed. */
void shadow_cut_replay(struct shadow_sample *smp);
/* Free a replay pool (its connections are closed). */
void shadow_pool_free(struct shadow_pool *sp);

#endif /* PGCUTOVER_SHADOW_INT_H */

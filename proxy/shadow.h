/*
 * shadow.h - shadow reads: a sample of the read-only transactions a
 * database runs on its source is replayed on its target and the two
 * answers are compared, per statement fingerprint (docs/validation.md,
 * "Shadow reads").
 *
 * The copy is taken while the client's messages are forwarded
 * (shadow_on_header) and the source's answers are digested as they pass
 * to the client (shadow_observe); nothing the client sends or receives is
 * held back or changed.  A finished sample waits until the target has
 * applied the source's position at the time of the read (the position
 * poller of admin/cutover/shadow_pos.c answers through shadow_position()),
 * then runs on pgcutover's own connection to the target, as the client's
 * user with the client's startup parameters and session settings, inside
 * a read-only transaction that is rolled back.  When only the rows differ,
 * the sample runs again on the source, after the target's read: the target
 * is reported as different only when the source gave the same answer
 * before and after it.
 *
 * Everything is bounded: the samples a database holds (shadow_queue, each
 * at most SHADOW_TXN_BYTES_MAX of requests), the statements it tracks, the
 * differences it keeps, and the connections it opens.
 */
#ifndef PGCUTOVER_SHADOW_H
#define PGCUTOVER_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "protocol/fingerprint.h"
#include "proxy/core/route.h"
#include "proxy/relay.h"

struct client;
struct database;
struct evbuffer;
struct server;

/* Bytes of requests one sampled transaction may hold (a larger one is dropped). */
#define SHADOW_TXN_BYTES_MAX (64 * 1024)
/* Requests (queries, or extended-protocol runs up to a Sync) per sampled transaction. */
#define SHADOW_REQUESTS_MAX 64
/* Statements tracked per database; the rest share one row, "(other statements)". */
#define SHADOW_STATEMENTS_MAX 500
/* Differing samples kept per database for SHOW SHADOW DIFFS (the oldest go first). */
#define SHADOW_DIFFS_MAX 100
/* Connections a database opens for replays: to its target, and to its source for rechecks. */
#define SHADOW_TARGET_CONNS 4
#define SHADOW_SOURCE_CONNS 2
/*
 * A replayed statement that runs longer is cancelled by the target
 * (statement_timeout): an error the source did not have, so a difference.  A
 * replay still running this long plus 5 s is cut and its sample inconclusive.
 */
#define SHADOW_STATEMENT_TIMEOUT_MS 30000
/* A replay connection idle this long is closed. */
#define SHADOW_IDLE_MS 60000
/* A sample is "slower" on the target when it took this many times the source's time... */
#define SHADOW_SLOWER_FACTOR 2
/* ... and at least this many milliseconds more. */
#define SHADOW_SLOWER_MIN_MS 10
/* Bytes of an example query kept per statement and per difference. */
#define SHADOW_QUERY_MAX 512
/* Buckets of a time histogram: 8 per doubling, from 1 microsecond to about 70 minutes. */
#define SHADOW_HIST_BUCKETS 256

/* A histogram of durations (p50, p99). */
struct shadow_hist {
	uint32_t bucket[SHADOW_HIST_BUCKETS];
	uint64_t count;
};

/* One statement fingerprint of a database: a row of SHOW SHADOW. */
struct shadow_stmt {
	uint64_t hash;                          /* the fingerprint's */
	char fingerprint[FINGERPRINT_TEXT_MAX]; /* the text with its constants removed */
	char query[SHADOW_QUERY_MAX];           /* the latest sampled text, constants and all */
	uint64_t samples;       /* sampled: matched + differed + inconclusive + dropped + pending */
	uint64_t matched;       /* the target answered as the source did */
	uint64_t differed;      /* the target answered otherwise */
	uint64_t target_errors; /* of those: the target failed (or with another SQLSTATE) */
	uint64_t inconclusive;  /* not compared: the target did not catch up, the source's answer
				   changed meanwhile, a replay could not run */
	uint64_t dropped;       /* not replayed: the queue was full, or the transaction too large */
	uint64_t slower;        /* answered alike, but the target took much longer */
	struct shadow_hist source_time, target_time;
	bool shape_only; /* only errors and columns are compared (now(), pg_* ...) */
	bool writes; /* it wrote on the source (the read-only replay said so): not sampled again */
	char last_difference[200]; /* the latest difference or reason, "" when none */
};

/* One differing sample: a row of SHOW SHADOW DIFFS. */
struct shadow_diff {
	struct timespec when; /* wall clock, when it was compared */
	char fingerprint[200];
	char query[SHADOW_QUERY_MAX];
	char reason[48]; /* error, columns, rows, data, order, slower */
	char source[200];
	char target[200];
	double source_ms, target_ms;
};

/* A database's shadow counters (metrics). */
struct shadow_totals {
	uint64_t samples, matched, differed, target_errors, inconclusive, dropped, slower;
};

/* ---- the data path ---- */

/*
 * A client message at the head of its direction (client_forward.c), for a
 * client that is being copied or whose database samples: RELAY_PASS, or
 * RELAY_STOP with c->stop = STOP_NEED_MORE until a message to copy has
 * arrived whole.
 */
enum relay_verdict shadow_on_header(struct client *c, struct server *s, struct evbuffer *in,
				    size_t off, size_t avail, uint8_t type, uint32_t len);
/*
 * The last 'moved' bytes of 'out' are answers just forwarded to c, which is
 * being copied (server_forward.c).
 */
void shadow_observe(struct client *c, struct evbuffer *out, size_t moved);
/* The client is going: its sample is dropped. */
void shadow_client_gone(struct client *c);

/* ---- positions (admin/cutover/shadow_pos.c) ---- */

/*
 * Who is told that a database has samples waiting for the target to catch
 * up and no position is being asked for (called on the loop, never from
 * inside shadow_position()).
 */
void shadow_set_position_hook(void (*want)(struct database *db));
/*
 * A position read of db, asked at 'asked_us' (rt_now_us()): the source's
 * position then ('insert') and how far the target has applied ('applied'),
 * in the same units (LSNs, or marker numbers); ok false when it failed
 * (error says why).  Returns whether samples still wait.
 */
bool shadow_position(struct database *db, uint64_t asked_us, bool ok, uint64_t insert,
		     uint64_t applied, const char *error);
/* How long the oldest sample of db has waited for the target, in ms (0: none waits). */
uint64_t shadow_oldest_wait_ms(const struct database *db);

/* ---- the views ---- */

struct shadow_db;

/* db's shadow books, or NULL when it never sampled. */
const struct shadow_db *shadow_books(const struct database *db);
size_t shadow_stmt_count(const struct shadow_db *sdb);
const struct shadow_stmt *shadow_stmt_at(const struct shadow_db *sdb, size_t i);
/* Differences, oldest first. */
size_t shadow_diff_count(const struct shadow_db *sdb);
const struct shadow_diff *shadow_diff_at(const struct shadow_db *sdb, size_t i);
void shadow_totals(const struct shadow_db *sdb, struct shadow_totals *out);
/* Samples held now (the queue), and replay connections open to a side. */
int shadow_held(const struct shadow_db *sdb);
int shadow_connections(const struct shadow_db *sdb, enum route_side side);
/* The q-quantile (0.5, 0.99) of a histogram in milliseconds; -1 when empty. */
double shadow_hist_ms(const struct shadow_hist *h, double q);

/* The process IDs of db's replay connections to a side (a fence spares them); how many. */
/* Server connections of db's replays, on either side (a bound for shadow_server_pids). */
size_t shadow_server_count(const struct database *db);
size_t shadow_server_pids(const struct database *db, enum route_side side, uint32_t *out,
			  size_t max);
/* Free every database's shadow books and close their connections (exit). */
void shadow_shutdown(void);

#endif /* PGCUTOVER_SHADOW_H */

/*
 * verify_int.h - inside VERIFY (internal to admin/cutover/verify*.c): a
 * run, its tables, the ranges being compared (tasks), and what the files
 * share.
 *
 *   verify.c        a run: start, stop, the listing of the tables, the
 *                   connections and the scheduler, the views
 *   verify_sql.c    the text of every query (pure; unit-tested)
 *   verify_task.c   one range's machine: pass, re-check, narrowing, rows
 *   verify_wait.c   "the new side has applied the old side's position"
 *   verify_pause.c  switch_verify: the pending ranges re-checked in a pause
 *
 * A task is one key range of one table.  Its steps:
 *
 *   PASS     both sides summarise the range at once (count, hash; the old
 *            side with its position); equal: settled.  Else a range with a
 *            key is narrowed: small enough, row by row (ROWS_*); else cut
 *            into VERIFY_FANOUT ranges (SPLIT for keys other than one
 *            integer: boundaries read from the side with more rows), each a PASS once
 *            the new side has applied the position of this read.  A whole
 *            table (no key) goes on to the sandwich:
 *   OLD_A    the old side again, with its row versions and its position
 *   (wait)   until the new side has applied that position
 *   NEW_B    the new side, then OLD_B the old side again: if the old side's
 *            versions did not move, the new side's summary is the verdict;
 *            else try again from OLD_B's position, a few rounds, then the
 *            table stays pending
 *   ROWS_*   a small differing range compared row by row with the same
 *            sandwich: each key decided twice before it is reported
 *
 * Tables without a primary key are one task over the whole table, never
 * narrowed: a difference there is reported for the table as a whole.
 */
#ifndef PGCUTOVER_VERIFY_INT_H
#define PGCUTOVER_VERIFY_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/cutover/verify.h"
#include "proxy/core/list.h"

struct control_conn;
struct control_result;
struct event;
struct pq_buf;
struct config;
struct database;
struct db_config;

/* Rows per first-pass range (an estimate for keys that are not integers: exact). */
#define VERIFY_CHUNK_ROWS 25000
/* A differing range is cut into this many. */
#define VERIFY_FANOUT 16
/* A differing range of at most this many rows is compared row by row. */
#define VERIFY_ROWS_MAX 2000
/* Re-check rounds before a range written to every time stays pending. */
#define VERIFY_ROUNDS 6
/* Ranges kept per run as pending (more are counted, not kept). */
#define VERIFY_PENDING_MAX 4096
/* Columns of a key, at most. */
#define VERIFY_KEY_MAX 8
/* The time limit of one VERIFY query (a large range of a wide table). */
#define VERIFY_QUERY_TIMEOUT_MS (5 * 60 * 1000)

/* What a table's rows are compared by. */
enum verify_key_kind {
	VK_NONE,    /* no primary key: the whole table, count and hash */
	VK_INTEGER, /* one column of smallint, integer or bigint: ranges cut by arithmetic */
	VK_GENERAL, /* anything else: boundaries read from the old side */
};

/* A column of a table as both sides must have it. */
struct verify_column {
	char *name; /* quoted identifier */
	char *type; /* format_type(), schema-qualified */
	bool is_float;
};

struct verify_run;

struct verify_table {
	struct list_node node; /* in run->tables */
	struct verify_run *run;
	char *schema, *name; /* raw names */
	char *qname;         /* "schema"."name" */
	char *label;         /* schema.name for the views */
	struct verify_column *cols;
	int ncols;
	int key[VERIFY_KEY_MAX]; /* indexes into cols of the primary key's columns, in order */
	int nkey;
	enum verify_key_kind kind;
	char *rowhash; /* the row's 64-bit hash, a bigint expression (verify_sql.c) */
	enum verify_table_state state;
	char why[200]; /* skipped, failed: why */
	/* first pass: the next range to hand out */
	bool started, generated;        /* ranges being made; the last one made */
	int64_t next_lo, max_key, step; /* VK_INTEGER: the old side's max, the range width */
	int64_t type_min, type_max;     /* VK_INTEGER: the key type's bounds: "unbounded" */
	int64_t first_lo;               /* VK_INTEGER: the old side's minimum */
	char **cursor;    /* VK_GENERAL: the last boundary (text values), NULL at start */
	bool bounding;    /* VK_GENERAL: a boundary query runs */
	int64_t estimate; /* rows expected (reltuples) */
	/* counters of SHOW VERIFY */
	int64_t rows_checked, chunks_matched, chunks_mismatched, chunks_pending;
	int64_t rows_seen; /* the old side's rows in every first-pass range finished */
	int64_t rows_missing, rows_extra, rows_different;
	int tasks; /* tasks of the table not finished */
};

/* A bound of a range: the key's values as text (NULL: unbounded). */
struct verify_bound {
	char **v; /* nkey values, or NULL for unbounded */
};

/* Steps of a task (see the top). */
enum verify_step {
	VS_PASS,
	VS_OLD_A,
	VS_NEW_B,
	VS_OLD_B,
	VS_SPLIT,
	VS_ROWS_OLD_A,
	VS_ROWS_NEW_B,
	VS_ROWS_OLD_B,
	VS_DONE,
};

/* What the old side said of a range at one read. */
struct verify_summary_read {
	char count[24];
	char hash[48];
	char version[48];
	char pos[32]; /* the position to wait for (lsn, or a read number for marker) */
};

/* A key met in a row-by-row comparison. */
struct verify_rowkey {
	char **v; /* the key's values */
	char *old_hash_a, *old_ver_a, *old_hash_b, *old_ver_b, *new_hash;
	bool in_old_a, in_old_b, in_new;
	int confirmed; /* rounds that found the same difference */
	int kind;      /* 0 missing, 1 extra, 2 different: of the last confirmation */
	bool decided;
};

/*
 * A first-pass range and everything cut from it: counted as one chunk of
 * SHOW VERIFY (matched, mismatched or pending) once its last task ends.
 */
struct verify_chunk {
	int open;     /* its tasks not finished */
	bool diff;    /* a difference was found in it */
	bool pending; /* part of it could not be settled */
	int64_t rows; /* the old side's rows in it */
};

struct verify_task {
	struct list_node node; /* in the run's ready or waiting list */
	struct verify_table *t;
	struct verify_chunk *chunk; /* the first-pass range it belongs to */
	bool first;                 /* it is that range itself (its counts are the chunk's) */
	struct verify_bound lo, hi; /* (lo, hi]; VK_INTEGER keeps them as numbers too */
	int64_t ilo, ihi;           /* VK_INTEGER: [ilo, ihi] */
	enum verify_step step;
	int round;
	int64_t old_count, new_count;
	struct verify_summary_read a, b;
	char new_hash[48], new_count_s[24];
	uint64_t wait_for; /* position to wait for before the next step (0: none) */
	uint64_t pass_pos; /* the old side's position at its PASS read: its pieces wait for it */
	/* row-by-row */
	struct verify_rowkey *keys;
	int nkeys, cap_keys;
	int *slot;      /* an open-addressing index of keys (index + 1; 0: empty) */
	int nslot;      /* a power of two, at least twice nkeys */
	int round_keys; /* keys known before the round's first read (in its IN list) */
	bool queued;    /* in the ready or waiting list */
	int pair;       /* the worker running it (-1: none) */
};

/*
 * A query of a step in flight: its worker, its task, its side, and what to
 * do with the answer.  A worker has at most one query out per side (a step
 * sends one to each side at most, or a boundary read to the old side), so
 * these live in the worker: nothing to free when a stop drops them.
 */
struct verify_query {
	struct verify_run *run;
	struct verify_task *task;
	struct verify_table *table; /* a boundary read: its table (task NULL) */
	int worker, side;
	void (*cb)(struct verify_run *run, struct verify_task *k, int side, const PGresult *res,
		   const char *error);
};

/* A pair of control connections: one to each side. */
struct verify_worker {
	struct control_conn *ctl[2];
	struct verify_task *task;   /* running, or NULL */
	int outstanding;            /* queries of the step not answered */
	struct verify_query out[2]; /* the query out on each side */
};

struct verify_diff {
	char *table, *key, *kind, *found_at;
};

struct verify_pending {
	struct verify_table *t;
	struct verify_bound lo, hi;
	int64_t ilo, ihi;
};

struct verify_run {
	struct list_node node; /* in the list of runs (one per database) */
	char *dbname;
	struct database *db;
	struct config *cfg; /* a reference, while it runs */
	const struct db_config *dc;
	enum route_side old_side, new_side; /* old: the side routed to */
	bool running, stopping;
	char started[32];
	uint64_t t_start;                   /* us */
	char **named_schema, **named_table; /* VERIFY db t1, t2 */
	int nnamed;
	struct list_node tables;
	struct list_node ready;   /* tasks with a step to run */
	struct list_node waiting; /* tasks waiting for a position */
	struct verify_worker *workers;
	int nworkers;
	struct control_conn *coord[2]; /* listing and position polls */
	int coord_pending;
	bool listing; /* the listing queries run */
	PGresult *list[2];
	/* positions (verify_wait.c) */
	uint64_t applied;   /* the new side has applied everything up to here */
	uint64_t reads;     /* marker: a counter of old-side reads */
	bool polling;       /* a position poll runs */
	struct event *poll; /* the next poll */
	char marker_id[64];
	uint64_t marker_covers;
	int idle_polls;
	/* results */
	struct verify_diff *diffs;
	int ndiffs;
	struct verify_pending *pending;
	int npending, pending_dropped;
	char error[300];
	struct event *kick; /* zero-delay: schedule again outside callbacks */
};

/* ---- verify_sql.c ---- */

/* The SET commands every VERIFY query starts with (canonical output on both sides). */
extern const char VERIFY_SESSION_SQL[];
/* The listing of tables and columns (one row per column). */
void verify_sql_list(struct pq_buf *b);
/* Build rowhash, qname and label of a table from its columns; false when out of memory. */
bool verify_sql_table(struct verify_table *t);
/* The range predicate "(k) > lo AND (k) <= hi" (TRUE for the whole table). */
void verify_sql_range(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k);
/*
 * A summary of the task's range: count, hash (and, with versions, the
 * version sum), with the position for the old side when lsn.
 */
void verify_sql_summary(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
			bool versions, bool position);
/* The rows of the range (or the keys listed): key text, hash (, xmin), position. */
void verify_sql_rows(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
		     bool versions, bool position);
/* The next first-pass boundary after the cursor (VK_GENERAL). */
void verify_sql_boundary(struct pq_buf *b, const struct verify_table *t);
/* Boundaries cutting the range into about n parts of 'every' rows (VK_GENERAL). */
void verify_sql_split(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
		      int64_t every);
/* min and max of an integer key. */
void verify_sql_minmax(struct pq_buf *b, const struct verify_table *t);
/* A key's values as text: "(42)" or "(1,x)" (malloc'd). */
char *verify_key_text(const struct verify_table *t, char *const *v);
/* An LSN as written by PostgreSQL ("16/B374D848") to a number; 0 when it does not parse. */
uint64_t verify_parse_lsn(const char *s);

/* ---- verify_task.c ---- */

/* Run the task's current step on a worker (its queries go out). */
void verify_task_step(struct verify_run *run, struct verify_task *k, int worker);
/* A task of chunk c (NULL: a first-pass range, with a chunk of its own); NULL when out of memory. */
struct verify_task *verify_task_new(struct verify_table *t, struct verify_chunk *c);
void verify_task_free(struct verify_task *k);
/* A copy of n text values (a bound); NULL when out of memory. */
char **verify_values_dup(char *const *v, int n);
void verify_values_free(char **v, int n);

/* ---- verify.c ---- */

/* Now, UTC, as the views write it. */
void verify_now_text(char *buf, size_t len);
/* Schedule again from a zero-delay event. */
void verify_schedule_soon(struct verify_run *run);
/* A query on the run's coordination connection to one side (counted in coord_pending). */
void verify_coord_query(struct verify_run *run, int side, const char *sql,
			void (*cb)(void *arg, const struct control_result *r), void *arg);
/* Drop every task (a stop). */
void verify_tasks_drop(struct verify_run *run);

/* The step's queries are all back: the worker is free again. */
void verify_worker_done(struct verify_run *run, int worker);
/* The task's step is over: queue its next one (ready, or waiting for wait_for). */
void verify_task_next(struct verify_run *run, struct verify_task *k);
/* The task is finished: count it in its table, free it. */
void verify_task_finished(struct verify_run *run, struct verify_task *k);
/* A row difference found (kind: missing, extra, different). */
void verify_add_diff(struct verify_run *run, struct verify_table *t, const char *key,
		     const char *kind);
/* A range left pending. */
void verify_add_pending(struct verify_run *run, struct verify_task *k);
/* A query of a step failed: the table fails with why. */
void verify_table_failed(struct verify_run *run, struct verify_table *t, const char *why);
/* Run a query on a worker's side for a task's step (counted in the worker). */
bool verify_query(struct verify_run *run, int worker, int side, const char *sql,
		  void (*cb)(struct verify_run *run, struct verify_task *k, int side,
			     const PGresult *res, const char *error));
/* The position (lsn as a number, or the marker read count) a read ended at. */
uint64_t verify_read_position(struct verify_run *run, const PGresult *res, int col);

/* ---- verify_run.c ---- */

/* The last VERIFY of a database, or NULL. */
const struct verify_run *verify_last_run(const struct database *db);
/* The run is over (why: NULL when it ran to its end): connections closed, the rest kept. */
void verify_run_end(struct verify_run *run, const char *why);

/* ---- verify_wait.c ---- */

/* Wake the waiting tasks whose position has been applied; poll if any is left. */
void verify_wait_service(struct verify_run *run);
void verify_wait_stop(struct verify_run *run);

#endif /* PGCUTOVER_VERIFY_INT_H */

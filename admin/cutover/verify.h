/*
 * verify.h - VERIFY: the data of a database compared between its two sides,
 * online, in the background (docs/validation.md, "VERIFY").
 *
 * Every table with a primary key is cut into ranges of its key.  For each
 * range both servers compute a count and an order-independent hash of the
 * rows (the sum of a 64-bit hash of each row's canonical text), so that
 * nothing but those two numbers crosses the network.  A range whose
 * summaries differ is cut into smaller ones, read again only once the new
 * side has applied the position the old side was at when it was read, down
 * to its rows; a row is declared different only from a read of the new
 * side, once it has applied the old side's position, between two reads of
 * the old side that show the row unchanged (its xmin): a live workload with
 * lag produces no difference that is not there.  The keys found are the
 * differences: missing (on the side routed to only), extra (on the other
 * side only) or different.  A table without a primary key is compared whole
 * (count and hash, with the same sandwich of reads), without narrowing.  A
 * range written to every time it is read stays "pending": SWITCH re-checks
 * those in its pause with switch_verify = on (verify_pause.c).
 *
 * One VERIFY runs per database at a time, with at most verify_jobs queries
 * per side at once, on control connections of its own.  The last VERIFY of
 * each database is kept (for SHOW VERIFY, SHOW VERIFY DIFFS, CHECK and the
 * switch) until the next one of that database starts.
 */
#ifndef PGCUTOVER_VERIFY_H
#define PGCUTOVER_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/route.h"

struct database;
struct pq_buf;

/* Differences SHOW VERIFY DIFFS keeps per database (the counters go on beyond). */
#define VERIFY_DIFFS_MAX 1000

/* The state of a table's comparison. */
enum verify_table_state {
	VT_QUEUED,  /* not started */
	VT_RUNNING, /* ranges being compared */
	VT_DONE,    /* every range settled or left pending */
	VT_SKIPPED, /* cannot be compared (the detail says why) */
	VT_FAILED,  /* a query failed */
	VT_STOPPED, /* VERIFY db STOP */
};

/* One row of SHOW VERIFY. */
struct verify_table_view {
	const char *db;
	const char *table; /* schema.table */
	const char *state; /* queued, running, done, "skipped: ...", "failed: ...", stopped */
	int64_t rows_checked, rows_total;
	int64_t chunks_matched, chunks_mismatched, chunks_pending;
	int64_t rows_missing, rows_extra, rows_different;
	const char *started;
	int64_t eta_s; /* seconds left, -1 when unknown or done */
};

/* One row of SHOW VERIFY DIFFS. */
struct verify_diff_view {
	const char *table;
	const char *key;  /* "(42)" or "(1,x)": the primary key as text */
	const char *kind; /* missing, extra, different */
	const char *found_at;
};

/* What CHECK and the metrics read of a database's last VERIFY. */
struct verify_summary {
	bool running;
	char started[32];
	int tables;
	int64_t rows_checked, rows_total;
	int64_t chunks_matched, chunks_mismatched, chunks_pending;
	int64_t pending;     /* ranges not settled (chunks_pending over every table) */
	int64_t differences; /* rows missing + extra + different */
	int64_t missing, extra, different;
	int failed, stopped, skipped; /* tables not compared to their end, by why */
	char error[300];              /* why the run ended early, or left ranges pending; "" */
};

/*
 * VERIFY db [table, ...]: start comparing (every table with NULL names);
 * schemas[i] may be "" for an unqualified name.  False with a message when
 * it cannot start (one runs already, no such database side...).
 */
bool verify_start(struct database *db, const char *const *schemas, const char *const *names, int n,
		  char *errbuf, size_t errlen) __attribute__((warn_unused_result));
/* VERIFY db STOP; false with a message when none runs. */
bool verify_stop(struct database *db, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
/* The last VERIFY of db; false when none ran since start. */
bool verify_summary(const struct database *db, struct verify_summary *out);
/* Call fn for each table of the last VERIFY of db (every database with NULL). */
void verify_each_table(const struct database *db,
		       void (*fn)(void *arg, const struct verify_table_view *v), void *arg);
/* Call fn for each difference the last VERIFY of db kept. */
void verify_each_diff(const struct database *db,
		      void (*fn)(void *arg, const struct verify_diff_view *v), void *arg);
/* A reload or an exit: forget the databases removed (none left at exit). */
void verify_shutdown(void);

/*
 * The switch's re-check (verify_pause.c, switch_verify): the ranges the last
 * VERIFY of db from side 'from' left pending, as batches of at most
 * max_ranges ranges, each one query (the same on both sides) answering
 * (range number, count, hash) per range.  False when no VERIFY of db from
 * that side has finished.  Freed with verify_pause_free().
 */
struct verify_pause_plan {
	int nranges;   /* ranges to re-check */
	int nqueries;  /* batches */
	char **sql;    /* nqueries queries */
	char **label;  /* a name per range, for messages ("public.t (aid 1 to 25000)") */
	bool complete; /* the VERIFY covered every table (else part of the data is unchecked) */
};
bool verify_pause_plan(const struct database *db, enum route_side from, int max_ranges,
		       struct verify_pause_plan *out);
void verify_pause_free(struct verify_pause_plan *p);

#endif /* PGCUTOVER_VERIFY_H */

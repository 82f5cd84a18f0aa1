/*
 * check.h - CHECK: every check a switch of a database to one side runs
 * before anything is held (docs/validation.md lists them and how to fix
 * what they report).  CHECK db answers with the rows; SWITCH runs them as
 * its preflight and refuses on any fail; DRY RUN reports them.
 *
 * A run opens its own control connections to both sides (and logs in as the
 * application users for the login check), never blocks the loop, and ends
 * with exactly one callback, from the loop, never from inside check_start(),
 * unless it is cancelled.  Each check is one row: its name, ok, warn or
 * fail, and a detail that names the tables, users, sessions or privileges
 * concerned.  A check that cannot run (a side that does not answer, a query
 * refused, a time limit) is a fail that says why, never an ok.
 */
#ifndef PGCUTOVER_CHECK_H
#define PGCUTOVER_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/route.h"

struct database;
struct config;
struct db_config;

/* The checks, in the order of their rows. */
enum check_id {
	CHECK_REACHABLE,      /* both sides answer as control_user; the new side accepts writes */
	CHECK_PRIVILEGES,     /* control_user may do everything the switch will do */
	CHECK_REPLICATION,    /* slot active, subscription streaming, tables synced, lag */
	CHECK_PUBLICATION,    /* every table of the old side is replicated (or ignored) */
	CHECK_REPLICA_ID,     /* tables without a replica identity */
	CHECK_SCHEMA,         /* tables, columns, types, primary keys, sequences alike */
	CHECK_INDEXES,        /* indexes alike (warn) */
	CHECK_NOT_REPLICATED, /* large objects, unlogged tables, materialized views */
	CHECK_LOGINS,         /* every application user logs in to the new side */
	CHECK_BYPASS,         /* sessions on the old side that do not come through pgcutover */
	CHECK_TARGET_WRITES,  /* sessions writing on the new side */
	CHECK_LONG_XACTS,     /* transactions on the old side older than drain_timeout */
	CHECK_DDL,            /* a schema change running on the old side */
	CHECK_FENCE,          /* the fence state of both sides */
	CHECK_SWITCH_BACK,    /* lag_method none: the side left was written to since */
	CHECK_VERIFY,         /* what the last VERIFY found */
	CHECK_COUNT
};

enum check_status {
	CHECK_STATUS_OK,
	CHECK_STATUS_WARN,
	CHECK_STATUS_FAIL,
};

/* One row. */
struct check_row {
	enum check_status status;
	char sqlstate[6]; /* a fail: the SQLSTATE a refused switch reports */
	char detail[1200];
	/*
	 * A fail: the sentence a refused SWITCH reports for it (the preflight's
	 * words of before CHECK existed, so scripts that read them still work).
	 */
	char error[480];
};

/* What a run found. */
struct check_report {
	struct check_row rows[CHECK_COUNT];
	enum route_side from, to;
	int64_t lag;    /* bytes behind, as measured (-1 unknown) */
	int nsequences; /* sequences the sequence sync would set */
	int nok, nwarn, nfail;
};

typedef void (*check_done_fn)(void *arg, const struct check_report *rep);

struct check_run;

/*
 * Check a switch of db from side 'from' to side 'to' under configuration
 * cfg (held by a reference while the run lasts) and its section dc.  force:
 * SWITCH ... FORCE (the switch back check only warns).  NULL when out of
 * memory.
 */
struct check_run *check_start(struct database *db, struct config *cfg, const struct db_config *dc,
			      enum route_side from, enum route_side to, bool force,
			      check_done_fn done, void *arg);

/* Stop a run; its callback will not come.  Safe inside any callback. */
void check_cancel(struct check_run *run);

/* The name of a check ("reachable", "schema"...) and of a status. */
const char *check_name(enum check_id id);
const char *check_status_name(enum check_status st);

/*
 * Whether ignore_tables leaves schema.table out of CHECK and VERIFY (names
 * compared as SQL reads unquoted ones; "schema.*" takes a whole schema, a
 * name without a schema that table in every schema).
 */
bool check_table_ignored(const struct db_config *dc, const char *schema, const char *table);

/*
 * The checks the last preflight of db ran (a SWITCH or a DRY RUN), or NULL
 * (preflight.c): DRY RUN answers with them.
 */
const struct check_report *cutover_last_checks(const struct database *db);
void cutover_checks_free(void);

/* Cancel every run (exit). */
void check_shutdown(void);

#endif /* PGCUTOVER_CHECK_H */

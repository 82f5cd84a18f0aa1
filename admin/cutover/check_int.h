/*
 * check_int.h - inside CHECK (internal to admin/cutover/check*.c): the
 * state of one run, the catalog queries it reads, and what its files share.
 *
 *   check.c         the run: control connections, the steps, the end
 *   check_sql.c     the text of every query (pure; unit-tested)
 *   check_eval.c    the rows from the answers: reachability, privileges,
 *                   replication, publication, replica identity, objects
 *                   not replicated, fence, switch back, verify
 *   check_sessions.c  the rows from pg_stat_activity: bypass, writes on the
 *                   new side, long transactions, schema changes
 *   check_schema.c  schema differences (pure comparison; unit-tested)
 *   check_logins.c  the login check: real logins as every application user
 *
 * A run goes: REACH (one query per side: can control_user get in, what it
 * is) -> READ (the catalog queries, both sides at once) -> LOGINS (the
 * login probes, a few at a time) -> the rows -> the callback.
 */
#ifndef PGCUTOVER_CHECK_INT_H
#define PGCUTOVER_CHECK_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/cutover/check.h"

struct control_conn;
struct event;
struct pq_buf;
struct login_probe;

/* The queries of a run; each runs on one or both sides (check_sql.c says which). */
enum check_query {
	QR_REACH,   /* version, recovery, control_user's attributes and roles */
	QR_PRIV,    /* function, marker table and table privileges */
	QR_SEQ,     /* sequences and control_user's privileges on them */
	QR_SCHEMA,  /* tables, columns, primary keys, indexes, sequences */
	QR_TABLES,  /* old side: persistence, replica identity, publications of each table */
	QR_PUBS,    /* old side, lsn: what each publication publishes */
	QR_SLOT,    /* old side, lsn: the slot that feeds the new side */
	QR_SUB,     /* new side, lsn: the subscription that applies it */
	QR_SUBREL,  /* new side, lsn: the tables it subscribes and their state */
	QR_LO,      /* large objects */
	QR_SESS,    /* the database's sessions */
	QR_FENCE,   /* fence state (fence_sql.h) */
	QR_MARKER,  /* marker: marker_table exists */
	QR_WRITTEN, /* lag_method none, switch back: written to since? */
	QR_COUNT
};

/* Columns of QR_REACH. */
enum {
	R_VERSION_NUM,
	R_VERSION,
	R_RECOVERY,
	R_SUPER,
	R_CREATEROLE,
	R_REPLICATION,
	R_SIGNAL,
	R_READ_STATS,
	R_DB_CREATE,
	R_USER,
	R_COLLATE,
};

/* Columns of QR_PRIV. */
enum {
	P_EMIT,          /* EXECUTE on pg_logical_emit_message */
	P_TERMINATE,     /* EXECUTE on pg_terminate_backend(int, bigint) (NULL: absent) */
	P_MARKER_INSERT, /* NULL when marker_table does not exist there (or no marker) */
	P_MARKER_SELECT,
	P_UNREADABLE, /* tables control_user cannot SELECT (VERIFY), a list */
	P_UNREADABLE_COUNT,
};

/* Columns of QR_SEQ: name (schema.name), SELECT, UPDATE. */
enum { SQ_NAME, SQ_SELECT, SQ_UPDATE };

/* Columns of QR_SCHEMA: kind (t c k i s), schema, table, item, detail, flags. */
enum { SC_KIND, SC_SCHEMA, SC_TABLE, SC_ITEM, SC_DETAIL, SC_FLAGS };

/* Columns of QR_TABLES. */
enum {
	TB_SCHEMA,
	TB_NAME,
	TB_KIND,        /* r, p, m */
	TB_PERSISTENCE, /* p, u */
	TB_REPLIDENT,   /* d, n, f, i */
	TB_HAS_PK,
	TB_HAS_RI_INDEX,
	TB_PUBS,      /* comma list of the publications that carry it (or an ancestor) */
	TB_ROWFILTER, /* one of them filters its rows (PostgreSQL 15) */
	TB_PARTITION, /* it is a partition */
};

/* Columns of QR_PUBS. */
enum { PB_NAME, PB_ALL, PB_INSERT, PB_UPDATE, PB_DELETE, PB_TRUNCATE };

/* Columns of QR_SLOT. */
enum { SL_ACTIVE, SL_LAG, SL_WAL_STATUS, SL_DATABASE };

/* Columns of QR_SUB. */
enum { SB_NAME, SB_ENABLED, SB_PUBS, SB_WORKERS, SB_APPLY_ERRORS, SB_SYNC_ERRORS };

/* Columns of QR_SUBREL: schema, table, state. */
enum { SR_SCHEMA, SR_TABLE, SR_STATE };

/* Columns of QR_SESS. */
enum {
	SS_PID,
	SS_USER,
	SS_APP,
	SS_ADDR,
	SS_WRITING,  /* holds a transaction ID and a ROW EXCLUSIVE lock: it writes rows */
	SS_XACT_AGE, /* milliseconds its transaction has been open (NULL: none, or hidden) */
	SS_STATE,
	SS_HIDDEN,   /* control_user may not see its details (pg_read_all_stats) */
	SS_SUPER,    /* its role is a superuser */
	SS_DDL_LOCK, /* holds an ACCESS EXCLUSIVE lock on a relation */
	SS_QUERY,    /* its statement, shortened */
	SS_CONTROL,  /* it is control_user's */
};

/* Where a run is. */
enum check_step {
	CHECK_STEP_REACH,
	CHECK_STEP_READ,
	CHECK_STEP_LOGINS,
	CHECK_STEP_DONE,
};

/* One application user of the login check. */
struct check_login {
	char user[2][64]; /* the login on each side (a conninfo's user may differ) */
	const char *secret[2];
	int outcome[2]; /* enum login_probe_outcome, -1 while not known */
	char message[2][200];
	char sqlstate[2][6];
};

/* A query's context: which run, which query, which side. */
struct check_qctx {
	struct check_run *run;
	enum check_query q;
	enum route_side side;
};

struct check_run {
	struct check_run *next; /* in the list of runs */
	struct database *db;
	char dbname[64];
	struct config *cfg; /* a reference held while the run lasts */
	const struct db_config *dc;
	enum route_side from, to;
	bool force;
	check_done_fn done;
	void *arg;
	enum check_step step;
	struct control_conn *ctl[2]; /* by side */
	int pending;                 /* queries (or probes) not answered yet */
	struct event *finish;        /* the zero-delay event that reports and frees */
	/* answers, by side and query; NULL when not run or failed */
	PGresult *res[2][QR_COUNT];
	bool ran[2][QR_COUNT]; /* queued */
	struct check_qctx qctx[2][QR_COUNT];
	char err[2][QR_COUNT][300]; /* a failed query's message ("" when none) */
	char errstate[2][QR_COUNT][6];
	int version[2]; /* server_version_num of each side, once reached */
	/* the login check */
	struct check_login *logins;
	int nlogins, next_login, logins_running;
	struct login_probe **probes; /* running, by login index * 2 + side */
	void *probe_ctx;             /* check_logins.c's contexts, same index */
	struct check_report rep;
};

/* ---- check_sql.c: the text of each query (NUL-terminated in b; failure is b->failed) ---- */

/* Whether query q runs on side 'side' of this run. */
bool check_query_runs(const struct check_run *run, enum check_query q, enum route_side side);
/* Build query q for side 'side'. */
void check_query_sql(const struct check_run *run, enum check_query q, enum route_side side,
		     struct pq_buf *b);

/* ---- check_eval.c ---- */

/* Fill every row but the session rows and the logins from the answers. */
void check_eval(struct check_run *run);
/*
 * The answer of q on side, or NULL after recording in row 'row' that it
 * could not be read (a fail that says why); NULL too when it did not run.
 */
const PGresult *check_need(struct check_run *run, enum check_id row, enum route_side side,
			   enum check_query q, const char *what);
/* Set a row (detail printf-style); a fail gets SQLSTATE 55000 unless one is set. */
void check_set(struct check_run *run, enum check_id id, enum check_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Append "; " + text to a row's detail (bounded), raising its status to st. */
void check_add(struct check_run *run, enum check_id id, enum check_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* snprintf into dst, truncating quietly (texts of rows are bounded on purpose). */
void check_text(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether ignore_tables leaves out schema.table. */
bool check_ignored(const struct db_config *dc, const char *schema, const char *table);
/* A value of row r, column c, or NULL for SQL NULL (or no such row). */
const char *check_val(const PGresult *res, int r, int c);
/* A "t" value. */
bool check_true(const PGresult *res, int r, int c);

/* ---- check_sessions.c ---- */

void check_eval_sessions(struct check_run *run);

/* ---- check_schema.c ---- */

void check_eval_schema(struct check_run *run);

/* ---- check_logins.c ---- */

/* Start the login probes; false when there are none to run (the step is over). */
bool check_logins_start(struct check_run *run);
/* The row from the probes' outcomes. */
void check_eval_logins(struct check_run *run);
/* Cancel the probes still running and free their state. */
void check_logins_free(struct check_run *run);

/* ---- check.c ---- */

/* A probe or query of the run ended: the step is over once none is pending. */
void check_settle(struct check_run *run);

#endif /* PGCUTOVER_CHECK_INT_H */

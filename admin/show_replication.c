/*
 * show_replication.c - SHOW REPLICATION [db]: both directions of each
 * database that uses PostgreSQL logical replication (lag_method lsn), read
 * from both sides over control connections: the forward direction (the
 * operator's subscription on the target, the slot replication_slot on the
 * source) and the reverse one pgcutover creates (replication_names.h).
 *
 * state: streaming (the subscription is enabled, its worker runs and its
 * slot is active), disabled (it exists, disabled: the way back between
 * switches), failing (enabled but not streaming: its worker cannot start
 * or connect), missing (the subscription or the slot does not exist), or
 * unknown (a side could not be read).  lag_bytes is the publisher's insert
 * position minus what the slot has confirmed; retained_bytes the WAL the
 * slot keeps on the publisher (a disabled slot keeps all of it).
 */
#include "admin/show_replication.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/console.h"
#include "admin/cutover/control.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/replication_names.h"
#include "admin/job.h"
#include "admin/resultset.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Databases one SHOW REPLICATION reports on, at most. */
#define REPL_SHOW_MAX 64

/* Columns of each side's answer. */
enum {
	T_FWD_SUB,     /* the forward subscription's name (NULL: none) */
	T_FWD_ENABLED, /* subenabled */
	T_FWD_WORKER,  /* its apply worker runs: count */
	T_FWD_PUBS,    /* its publications */
	T_REV_PUB,     /* the reverse publication exists: count */
	T_REV_ACTIVE,  /* the reverse slot: active (NULL: missing) */
	T_REV_LAG,
	T_REV_RETAINED,
	T_NCOLS
};
enum {
	S_FWD_ACTIVE, /* the forward slot: active (NULL: missing) */
	S_FWD_LAG,
	S_FWD_RETAINED,
	S_REV_ENABLED, /* the reverse subscription: subenabled (NULL: missing) */
	S_REV_WORKER,
	S_NCOLS
};

/* One database's two readings. */
struct repl_db {
	const struct database *db;
	char name[64];
	struct repl_names n;
	PGresult *side[2]; /* by route_side; NULL when it could not be read */
};

struct repl_show {
	struct repl_db dbs[REPL_SHOW_MAX];
	int ndbs;
};

/* One query's context: which database, which side. */
struct repl_query {
	struct admin_job *job;
	struct repl_db *rd;
	enum route_side side;
};

static void repl_show_free(void *data)
{
	struct repl_show *d = data;

	for (int i = 0; d && i < d->ndbs; i++) {
		PQclear(d->dbs[i].side[0]);
		PQclear(d->dbs[i].side[1]);
	}
	free(d);
}

static const char *val(const PGresult *r, int col)
{
	return r && PQntuples(r) == 1 && !PQgetisnull(r, 0, col) ? PQgetvalue(r, 0, col) : NULL;
}

/* The state of a direction from its subscription's and its slot's readings. */
static const char *state_of(bool read, const char *enabled, const char *worker,
			    const char *slot_active)
{
	if (!read)
		return "unknown";
	if (enabled == NULL || slot_active == NULL)
		return "missing";
	if (strcmp(enabled, "t") != 0)
		return "disabled";
	if (worker && strcmp(worker, "0") != 0 && strcmp(slot_active, "t") == 0)
		return "streaming";
	return "failing";
}

static const char *const repl_cols[] = {
	"db",    "direction", "publication",    "slot",  "subscription",
	"state", "lag_bytes", "retained_bytes", "error",
};

static void repl_complete(struct admin_job *j)
{
	struct repl_show *d = admin_job_data(j);

	for (int i = 0; i < d->ndbs; i++) {
		struct repl_db *rd = &d->dbs[i];
		const PGresult *t = rd->side[SIDE_TARGET], *s = rd->side[SIDE_SOURCE];
		const char *fwd[9], *rev[9];
		bool read = t && s;

		fwd[0] = rd->name;
		fwd[1] = "forward";
		fwd[2] = val(t, T_FWD_PUBS);
		fwd[3] = rd->db->cfg ? rd->db->cfg->replication_slot : NULL;
		fwd[4] = val(t, T_FWD_SUB);
		fwd[5] = state_of(read, val(t, T_FWD_ENABLED), val(t, T_FWD_WORKER),
				  val(s, S_FWD_ACTIVE));
		fwd[6] = val(s, S_FWD_LAG);
		fwd[7] = val(s, S_FWD_RETAINED);
		fwd[8] = NULL;
		admin_rs_row(admin_job_rs(j), fwd);
		rev[0] = rd->name;
		rev[1] = "reverse";
		rev[2] = val(t, T_REV_PUB) && strcmp(val(t, T_REV_PUB), "0") != 0 ? rd->n.rev : NULL;
		rev[3] = val(t, T_REV_ACTIVE) ? rd->n.rev : NULL;
		rev[4] = val(s, S_REV_ENABLED) ? rd->n.rev : NULL;
		rev[5] = state_of(read, val(s, S_REV_ENABLED), val(s, S_REV_WORKER),
				  val(t, T_REV_ACTIVE));
		rev[6] = val(t, T_REV_LAG);
		rev[7] = val(t, T_REV_RETAINED);
		rev[8] = cutover_replication_error(rd->db);
		admin_rs_row(admin_job_rs(j), rev);
	}
}

static void repl_cb(void *arg, const struct control_result *r)
{
	struct repl_query *q = arg;

	if (r->ok && r->res)
		q->rd->side[q->side] = PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	else if (!r->ok)
		log_warning("SHOW REPLICATION %s: the %s: %s", q->rd->name,
			    route_side_name(q->side), r->error ? r->error : "failed");
	admin_job_release(q->job);
	free(q);
}

/* The query of one side of a database, into sql. */
static void side_sql(const struct repl_names *n, enum route_side side, char *sql, size_t len)
{
	if (side == SIDE_TARGET)
		snprintf(sql, len,
			 "SELECT f.name, s.subenabled, (SELECT count(*) FROM pg_catalog.pg_stat_subscription w"
			 " WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL),"
			 " pg_catalog.array_to_string(s.subpublications, ','),"
			 " (SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = %s),"
			 " rs.active, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(),"
			 " rs.confirmed_flush_lsn)::bigint, pg_catalog.pg_wal_lsn_diff("
			 "pg_catalog.pg_current_wal_insert_lsn(), rs.restart_lsn)::bigint"
			 " FROM (SELECT %s AS name) f"
			 " LEFT JOIN (pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d"
			 " ON d.oid = s.subdbid AND d.datname = pg_catalog.current_database())"
			 " ON s.subname = f.name"
			 " LEFT JOIN pg_catalog.pg_replication_slots rs ON rs.slot_name = %s",
			 n->rev_lit, n->fwd_sub_query, n->rev_lit);
	else
		snprintf(sql, len,
			 "SELECT fs.active, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(),"
			 " fs.confirmed_flush_lsn)::bigint, pg_catalog.pg_wal_lsn_diff("
			 "pg_catalog.pg_current_wal_insert_lsn(), fs.restart_lsn)::bigint,"
			 " s.subenabled, (SELECT count(*) FROM pg_catalog.pg_stat_subscription w"
			 " WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL)"
			 " FROM (SELECT 1) x"
			 " LEFT JOIN pg_catalog.pg_replication_slots fs ON fs.slot_name = %s"
			 " LEFT JOIN (pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d"
			 " ON d.oid = s.subdbid AND d.datname = pg_catalog.current_database())"
			 " ON s.subname = %s",
			 n->fwd_slot_lit, n->rev_lit);
}

void admin_show_replication(struct client *c, const char *name)
{
	struct admin_job *j;
	struct repl_show *d;
	struct list_node *n;

	if (name[0] && db_find(name) == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	j = admin_job_new(c, ADMIN_NCOLS(repl_cols), repl_cols);
	if (j == NULL) {
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	d = calloc(1, sizeof(*d));
	admin_job_set_data(j, d, repl_show_free, repl_complete);
	if (d == NULL)
		admin_job_fail(j, "out of memory");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct repl_db *rd;

		if (d == NULL || db->removed || db->cfg == NULL ||
		    db->cfg->d.lag_method != LAG_LSN || (name[0] && strcmp(db->name, name) != 0))
			continue;
		if (d->ndbs == REPL_SHOW_MAX)
			break;
		rd = &d->dbs[d->ndbs];
		if (!replication_names(db->cfg, NULL, &rd->n))
			continue;
		d->ndbs++;
		rd->db = db;
		snprintf(rd->name, sizeof(rd->name), "%s", db->name);
		for (int side = 0; side < 2; side++) {
			struct repl_query *q = calloc(1, sizeof(*q));
			struct control_conn *cc =
				q ? admin_job_ctl(j, db, (enum route_side)side) : NULL;
			char sql[2400];

			if (cc == NULL) {
				free(q);
				continue;
			}
			q->job = j;
			q->rd = rd;
			q->side = (enum route_side)side;
			side_sql(&rd->n, (enum route_side)side, sql, sizeof(sql));
			admin_job_hold(j);
			if (!control_conn_query(cc, sql, CONTROL_QUERY_TIMEOUT_MS, repl_cb, q)) {
				admin_job_release(j);
				free(q);
			}
		}
	}
	admin_job_release(j);
}

bool admin_show_replication_columns(int *ncols, const char *const **cols)
{
	*ncols = ADMIN_NCOLS(repl_cols);
	*cols = repl_cols;
	return true;
}

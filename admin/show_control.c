/*
 * show_control.c - SHOW LAG and SHOW SEQUENCES (see show_control.h): jobs
 * of control queries to one or more databases' sides, answered once all of
 * them are back.
 */
#include "admin/show_control.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "admin/console.h"
#include "admin/cutover/replication_names.h"
#include "admin/job.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/seqread.h"
#include "admin/resultset.h"
#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* ---- SHOW LAG ---- */

/* One SHOW LAG query's context. */
struct lag_query {
	struct admin_job *job;     /* the job it belongs to */
	const struct database *db; /* whose lag it measures */
	char name[64];             /* the database's name, for the row */
	char method[16];           /* its lag_method, for the row */
};

/* A database's slot positions: its row (NULLs when the query failed). */
static void lag_cb(void *arg, const struct control_result *r)
{
	struct lag_query *q = arg;
	struct admin_job *j = q->job;
	const char *vals[6] = {q->name, q->method, NULL, NULL, NULL, NULL};

	if (r->ok && r->res && PQntuples(r->res) > 0) {
		for (int i = 0; i < 4; i++)
			vals[2 + i] = PQgetisnull(r->res, 0, i) ? NULL : PQgetvalue(r->res, 0, i);
		if (vals[4])
			cutover_record_lag(q->db, strtoll(vals[4], NULL, 10));
	} else if (!r->ok) {
		log_warning("SHOW LAG %s: %s", q->name, r->error ? r->error : "failed");
	}
	admin_rs_row(admin_job_rs(j), vals);
	free(q);
	admin_job_release(j);
}

static const char *const lag_cols[] = {
	"db", "method", "source_position", "target_position", "lag_bytes", "measured_at",
};

void admin_show_lag(struct client *c, const char *name)
{
	struct admin_job *j;
	struct list_node *n;
	int found = 0;

	if (name[0] && db_find(name) == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	j = admin_job_new(c, ADMIN_NCOLS(lag_cols), lag_cols);
	if (j == NULL) {
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const char *method;

		if (db->removed || (name[0] && strcmp(db->name, name) != 0))
			continue;
		found++;
		method = config_lag_method_name(db->cfg->d.lag_method);
		if (db->cfg->d.lag_method == LAG_LSN) {
			struct lag_query *q = calloc(1, sizeof(*q));
			struct control_conn *cc = q ? admin_job_ctl(j, db, db->route) : NULL;
			char sql[600], slot[160], rev[64];
			const char *slot_name = db->cfg->replication_slot;

			/* routed to the target with reverse replication: the way back's slot there */
			if (db->route == SIDE_TARGET && db->cfg->d.reverse_replication) {
				replication_reverse_name(db->name, rev, sizeof(rev));
				slot_name = rev;
			}
			/* replication_slot is a checked name (config.c): it always fits */
			if (cc == NULL || !sqlquote_literal(slot_name, slot, sizeof(slot))) {
				free(q);
				continue;
			}
			q->job = j;
			q->db = db;
			snprintf(q->name, sizeof(q->name), "%s", db->name);
			snprintf(q->method, sizeof(q->method), "%s", method);
			snprintf(sql, sizeof(sql),
				 "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, confirmed_flush_lsn::text,"
				 " pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), confirmed_flush_lsn)::bigint::text,"
				 " pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
				 " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
				 slot);
			admin_job_hold(j);
			if (!control_conn_query(cc, sql, CONTROL_QUERY_TIMEOUT_MS, lag_cb, q)) {
				admin_job_release(j);
				free(q);
			}
		} else {
			const char *vals[6] = {db->name, method, NULL, NULL, NULL, NULL};

			admin_rs_row(admin_job_rs(j), vals);
		}
	}
	(void)found;
	admin_job_release(j);
}

/* ---- SHOW SEQUENCES ---- */

/*
 * SHOW SEQUENCES reads each side in the two steps of seqread.h, every
 * sequence from its relation (so is_called is known for all of them), and
 * compares the values nextval() would return next.
 */
struct seq_query {
	struct admin_job *job;   /* the job it belongs to */
	struct control_conn *cc; /* the side's connection: step 2 goes on it too */
	int side;                /* the side read (enum route_side), index of job->seq */
};

/* What SHOW SEQUENCES gathers: each side's sequences, by route_side. */
struct seq_data {
	PGresult *seq[2];
};

static void seq_data_free(void *data)
{
	struct seq_data *d = data;

	if (d == NULL)
		return;
	PQclear(d->seq[0]);
	PQclear(d->seq[1]);
	free(d);
}

/* A row of the target's SEQ_RAW_* result, sorted by name for lookups. */
struct seq_row {
	const char *name; /* the sequence's qualified name, in the result */
	int row;          /* its row number */
};

static int seq_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct seq_row *)a)->name, ((const struct seq_row *)b)->name);
}

/* The next value of row k of a SEQ_RAW_* result; false when it does not parse. */
static bool seq_row_next(const PGresult *res, int k, long long *next, long long *inc)
{
	long long last;

	if (!seq_parse_int(PQgetvalue(res, k, SEQ_RAW_LAST), &last) ||
	    !seq_parse_int(PQgetvalue(res, k, SEQ_RAW_INCREMENT), inc))
		return false;
	*next = seq_next_value(last, strcmp(PQgetvalue(res, k, SEQ_RAW_CALLED), "t") == 0, *inc);
	return true;
}

/* Both sides are read: one row per source sequence, compared with the target's. */
static void seq_complete(struct admin_job *j)
{
	struct seq_data *d = admin_job_data(j);
	PGresult *src = d->seq[SIDE_SOURCE], *tgt = d->seq[SIDE_TARGET];
	int ntgt = tgt ? PQntuples(tgt) : 0;
	/* the target's rows by name: a fleet database may have thousands of sequences */
	struct seq_row *by_name = ntgt ? malloc((size_t)ntgt * sizeof(*by_name)) : NULL;

	if (ntgt && by_name == NULL) {
		admin_job_fail(j, "out of memory");
		return;
	}
	for (int k = 0; k < ntgt; k++)
		by_name[k] = (struct seq_row){PQgetvalue(tgt, k, SEQ_RAW_NAME), k};
	if (ntgt)
		qsort(by_name, (size_t)ntgt, sizeof(*by_name), seq_row_cmp);
	for (int i = 0; src && i < PQntuples(src); i++) {
		struct seq_row key = {PQgetvalue(src, i, SEQ_RAW_NAME), -1};
		const char *name = key.name;
		const struct seq_row *hit =
			ntgt ? bsearch(&key, by_name, (size_t)ntgt, sizeof(*by_name), seq_row_cmp)
			     : NULL;
		int k = hit ? hit->row : -1;
		long long s_next, t_next, inc, t_inc;
		const char *vals[4];
		bool behind = true; /* missing on the target */

		if (!seq_row_next(src, i, &s_next, &inc))
			continue;
		if (k >= 0 && seq_row_next(tgt, k, &t_next, &t_inc))
			behind = seq_is_behind(t_next, s_next, inc);
		vals[0] = name;
		vals[1] = PQgetvalue(src, i, SEQ_RAW_LAST);
		vals[2] = k >= 0 ? PQgetvalue(tgt, k, SEQ_RAW_LAST) : NULL;
		vals[3] = behind ? "yes" : "no";
		admin_rs_row(admin_job_rs(j), vals);
	}
	free(by_name);
}

/* Keep the first failure as the job's error, naming the side. */
static void seq_failed(struct seq_query *q, const struct control_result *r)
{
	admin_job_fail(q->job, "could not read sequences on the %s: %s",
		       route_side_name((enum route_side)q->side), r->error ? r->error : "failed");
}

/* Step 2: each sequence from its own relation. */
static void seq_raw_cb(void *arg, const struct control_result *r)
{
	struct seq_query *q = arg;
	struct admin_job *j = q->job;

	if (!r->ok)
		seq_failed(q, r);
	else if (r->res) /* the result is only ours during the callback: keep a copy */
		((struct seq_data *)admin_job_data(j))->seq[q->side] =
			PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	free(q);
	admin_job_release(j);
}

/* Step 1: the list; step 2 is queued on the same connection. */
static void seq_list_cb(void *arg, const struct control_result *r)
{
	struct seq_query *q = arg;
	struct admin_job *j = q->job;
	struct pq_buf raw;

	if (!r->ok) {
		seq_failed(q, r);
		free(q);
		admin_job_release(j);
		return;
	}
	pq_buf_init(&raw);
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		long long inc;

		if (seq_parse_int(PQgetvalue(r->res, i, SEQ_LIST_INCREMENT), &inc))
			seq_raw_append(&raw, PQgetvalue(r->res, i, SEQ_LIST_QNAME), inc);
	}
	/* no sequence: the side's result stays NULL, which reads as no rows */
	if (raw.len == 0 && !raw.failed) {
		pq_buf_free(&raw);
		free(q);
		admin_job_release(j);
		return;
	}
	pq_put_bytes(&raw, " ORDER BY 2", 11);
	pq_put_u8(&raw, 0);
	if (raw.failed || !control_conn_query(q->cc, (const char *)raw.data,
					      CONTROL_QUERY_TIMEOUT_MS, seq_raw_cb, q)) {
		admin_job_fail(j, "out of memory");
		free(q);
		admin_job_release(j);
	}
	pq_buf_free(&raw);
}

static const char *const sequences_cols[] = {
	"sequence",
	"source_value",
	"target_value",
	"target_behind",
};

void admin_show_sequences(struct client *c, const char *name)
{
	struct database *db = db_find(name);
	struct admin_job *j;

	if (db == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	j = admin_job_new(c, ADMIN_NCOLS(sequences_cols), sequences_cols);
	if (j == NULL) {
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	admin_job_set_data(j, calloc(1, sizeof(struct seq_data)), seq_data_free, seq_complete);
	if (admin_job_data(j) == NULL)
		admin_job_fail(j, "out of memory");
	for (int side = 0; side < 2 && !admin_job_failed(j); side++) {
		struct seq_query *q = calloc(1, sizeof(*q));
		struct control_conn *cc = q ? admin_job_ctl(j, db, (enum route_side)side) : NULL;

		if (cc == NULL) {
			free(q);
			admin_job_fail(j, "out of memory");
			continue;
		}
		q->job = j;
		q->cc = cc;
		q->side = side;
		admin_job_hold(j);
		if (!control_conn_query(cc, SEQ_LIST_SQL, CONTROL_QUERY_TIMEOUT_MS, seq_list_cb, q)) {
			admin_job_release(j);
			free(q);
		}
	}
	admin_job_release(j);
}

/* ---- the console's side ---- */

bool admin_show_control_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
	switch (kind) {
	case ADMIN_CMD_SHOW_LAG:
		*ncols = ADMIN_NCOLS(lag_cols);
		*cols = lag_cols;
		return true;
	case ADMIN_CMD_SHOW_SEQUENCES:
		*ncols = ADMIN_NCOLS(sequences_cols);
		*cols = sequences_cols;
		return true;
	default:
		return false;
	}
}

/*
 * admin.c - the admin console.
 *
 * Speaks the simple query protocol: each Query carries one command, answered
 * with a result set (all columns text) or an ErrorResponse, then
 * ReadyForQuery.  A malformed or unknown command gets 42601 with a hint
 * pointing at SHOW HELP; the session goes on.
 */
#include "admin/admin.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_cmd.h"
#include "admin/control.h"
#include "admin/cutover.h"
#include "protocol/pq.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "proxy/userlist.h"
#include "proxy/version.h"

#include <libpq-fe.h>

/* Admin queries are short; a longer one is refused. */
#define ADMIN_QUERY_MAX 8192

/* Per admin session: whether a command is still being answered. */
struct admin_session {
	bool busy;   /* an asynchronous command runs: later queries wait */
	bool in_run; /* inside admin_run(): a reply made now is finished by the caller */
};

/*
 * An asynchronous SHOW (LAG, SEQUENCES): control queries to one or more
 * databases, answered once all of them are back.
 */
struct admin_job {
	struct client *requester;   /* NULL once the admin client left */
	int pending;                /* control queries still out */
	bool sequences;             /* SHOW SEQUENCES (else SHOW LAG) */
	struct admin_rs *rs;        /* rows so far */
	struct control_conn *ctl[64];
	int nctl;
	PGresult *seq[2];           /* SHOW SEQUENCES: each side's list */
	char seq_error[300];
	struct admin_job *next;
};

static struct admin_job *jobs;

static void admin_continue(struct client *c);

bool admin_init(char *errbuf, size_t errlen)
{
	(void)errbuf;
	(void)errlen;
	return true;
}

static void job_free(struct admin_job *j);

void admin_shutdown(void)
{
	while (jobs) {
		struct admin_job *j = jobs;

		jobs = j->next;
		job_free(j);
	}
	cutover_shutdown();
}

void admin_client_free(struct client *c)
{
	cutover_forget_client(c);
	for (struct admin_job *j = jobs; j; j = j->next)
		if (j->requester == c)
			j->requester = NULL;
	free(c->admin);
	c->admin = NULL;
}

static bool admin_busy(const struct client *c)
{
	const struct admin_session *a = c->admin;

	return a && a->busy;
}

static void admin_set_busy(struct client *c, bool busy)
{
	struct admin_session *a = c->admin;

	if (a)
		a->busy = busy;
}

void admin_close_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &rt.admin_clients)
		client_close(list_entry(n, struct client, node), "shutdown");
}

/* ---- result sets ---- */

/* A result set being built: the row description, rows, then the tag. */
struct admin_rs {
	struct pq_buf b;
	int ncols;
	int nrows;
};

static void rs_begin(struct admin_rs *rs, int ncols, const char *const *names)
{
	pq_buf_init(&rs->b);
	rs->ncols = ncols;
	rs->nrows = 0;
	pq_build_row_description(&rs->b, ncols, names);
}

static void rs_row(struct admin_rs *rs, const char *const *values)
{
	pq_build_data_row(&rs->b, rs->ncols, values);
	rs->nrows++;
}

/* Finish with "SHOW" (PgBouncer's tag for its SHOW commands) and send. */
static void rs_send(struct client *c, struct admin_rs *rs)
{
	pq_build_command_complete(&rs->b, "SHOW");
	if (rs->b.failed || !client_send(c, rs->b.data, rs->b.len))
		client_close(c, "could not send");
	pq_buf_free(&rs->b);
}

static void send_simple(struct client *c, const char *tag)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_command_complete(&b, tag);
	if (b.failed || !client_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

static void send_error(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_error(&b, "ERROR", sqlstate, msg, NULL, hint);
	if (b.failed || !client_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

static void send_ready(struct client *c)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_ready(&b, 'I');
	if (b.failed || !client_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

/* ---- asynchronous replies ---- */

/* A command that was answered later: send ReadyForQuery and take the next query. */
static void admin_done(struct client *c)
{
	struct admin_session *a = c->admin;

	admin_set_busy(c, false);
	if (a && a->in_run)
		return; /* answered before admin_run() returned: it sends ReadyForQuery */
	if (c->state == CL_ACTIVE) {
		send_ready(c);
		admin_continue(c);
	}
}

void admin_reply_command(struct client *c, const char *tag)
{
	send_simple(c, tag);
	admin_done(c);
}

void admin_reply_error(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	send_error(c, sqlstate, msg, hint);
	admin_done(c);
}

static const char *const switch_cols[] = {
	"db", "from", "to", "started", "result", "paused_ms", "drain_ms", "lag_wait_ms",
	"sequence_sync_ms", "sequences_synced", "sessions_moved", "sessions_closed", "error",
};
#define SWITCH_NCOLS 13

static void switch_row(struct admin_rs *rs, const struct switch_record *r)
{
	char v[7][24];
	const char *vals[SWITCH_NCOLS];

	snprintf(v[0], 24, "%" PRId64, r->ms_paused);
	snprintf(v[1], 24, "%" PRId64, r->ms_drain);
	snprintf(v[2], 24, "%" PRId64, r->ms_lag);
	snprintf(v[3], 24, "%" PRId64, r->ms_sequences);
	snprintf(v[4], 24, "%d", r->sequences_synced);
	snprintf(v[5], 24, "%d", r->sessions_moved);
	snprintf(v[6], 24, "%d", r->sessions_closed);
	vals[0] = r->db;
	vals[1] = route_side_name(r->from);
	vals[2] = route_side_name(r->to);
	vals[3] = r->started;
	vals[4] = r->result;
	for (int i = 0; i < 7; i++)
		vals[5 + i] = v[i];
	vals[12] = r->error[0] ? r->error : NULL;
	rs_row(rs, vals);
}

void admin_reply_switch(struct client *c, const struct switch_record *rec)
{
	struct admin_rs rs;

	rs_begin(&rs, SWITCH_NCOLS, switch_cols);
	switch_row(&rs, rec);
	rs_send(c, &rs);
	admin_done(c);
}

/* ---- commands ---- */

static const char *side_name(enum route_side s)
{
	return s == SIDE_SOURCE ? "source" : "target";
}

static void addr_text(const struct backend_addr *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d/%s", a->host, a->port, a->dbname ? a->dbname : "");
}

static int count_list(const struct list_node *head)
{
	const struct list_node *n;
	int k = 0;

	list_for_each(n, head)
		k++;
	return k;
}

static void show_databases(struct client *c)
{
	static const char *const cols[] = {"name",   "route",   "state",           "source",
					   "target", "clients", "waiting_clients", "servers"};
	struct admin_rs rs;
	struct list_node *n, *p;

	rs_begin(&rs, 8, cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		char src[300], tgt[300], ncl[16], nwait[16], nsv[16];
		int clients = 0, waiting = 0, servers = 0;
		const char *vals[8];

		if (db->removed)
			continue;
		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);

			clients += pool->nclients;
			waiting += count_list(&pool->waiting_clients);
			servers += pool->nservers;
		}
		addr_text(&db->addr[SIDE_SOURCE], src, sizeof(src));
		addr_text(&db->addr[SIDE_TARGET], tgt, sizeof(tgt));
		snprintf(ncl, sizeof(ncl), "%d", clients);
		snprintf(nwait, sizeof(nwait), "%d", waiting);
		snprintf(nsv, sizeof(nsv), "%d", servers);
		vals[0] = db->name;
		vals[1] = side_name(db->route);
		vals[2] = db->on_progress_owner ? "switching" : pool_db_paused(db) ? "paused" : "running";
		vals[3] = src;
		vals[4] = tgt;
		vals[5] = ncl;
		vals[6] = nwait;
		vals[7] = nsv;
		rs_row(&rs, vals);
	}
	rs_send(c, &rs);
}

static void show_pools(struct client *c)
{
	static const char *const cols[] = {"database",  "user",      "cl_active", "cl_waiting",
					   "cl_idle",   "sv_active", "sv_idle",   "sv_login",
					   "pool_mode", "pool_size"};
	struct admin_rs rs;
	struct list_node *n, *p;

	rs_begin(&rs, 10, cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			char v[7][16];
			const char *vals[10];

			snprintf(v[0], 16, "%d", count_list(&pool->active_clients));
			snprintf(v[1], 16, "%d", count_list(&pool->waiting_clients));
			snprintf(v[2], 16, "%d", count_list(&pool->idle_clients));
			snprintf(v[3], 16, "%d", count_list(&pool->active_servers));
			snprintf(v[4], 16, "%d", count_list(&pool->idle_servers));
			snprintf(v[5], 16, "%d", count_list(&pool->new_servers));
			snprintf(v[6], 16, "%d", db->pool_size);
			vals[0] = db->name;
			vals[1] = pool->user;
			for (int i = 0; i < 6; i++)
				vals[2 + i] = v[i];
			vals[8] = config_pool_mode_name((enum pool_mode)db->pool_mode);
			vals[9] = v[6];
			rs_row(&rs, vals);
		}
	}
	rs_send(c, &rs);
}

static void client_row(struct admin_rs *rs, struct client *cl)
{
	char since[32], pid[16];
	const char *vals[8];
	uint64_t age = (rt_now_us() - cl->connect_time_us) / 1000000u;

	snprintf(since, sizeof(since), "%" PRIu64, age);
	snprintf(pid, sizeof(pid), "%u", cl->server ? (unsigned)cl->server->be_pid : 0u);
	vals[0] = cl->user ? cl->user : "";
	vals[1] = cl->dbname ? cl->dbname : "";
	vals[2] = client_state_name(cl->state);
	vals[3] = cl->addr;
	vals[4] = since;
	vals[5] = cl->server ? pid : NULL;
	vals[6] = cl->is_admin ? "admin" : "client";
	vals[7] = sock_tls_version(&cl->sock); /* NULL: plaintext */
	rs_row(rs, vals);
}

static void show_clients(struct client *c)
{
	static const char *const cols[] = {"user",        "database",    "state", "addr",
					   "connected_s", "backend_pid", "type",  "tls"};
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, 8, cols);
	list_for_each(m, &rt.login_clients)
		client_row(&rs, list_entry(m, struct client, node));
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			struct list_node *lists[3] = {&pool->active_clients, &pool->waiting_clients,
						      &pool->idle_clients};

			for (int i = 0; i < 3; i++)
				list_for_each(m, lists[i])
					client_row(&rs, list_entry(m, struct client, node));
		}
	}
	list_for_each(m, &rt.admin_clients)
		client_row(&rs, list_entry(m, struct client, node));
	rs_send(c, &rs);
}

static void show_servers(struct client *c)
{
	static const char *const cols[] = {"user",  "database",    "side",   "state",
					   "addr",  "backend_pid", "client", "tls"};
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, 8, cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			struct list_node *lists[3] = {&pool->active_servers, &pool->idle_servers,
						      &pool->new_servers};

			for (int i = 0; i < 3; i++) {
				list_for_each(m, lists[i]) {
					struct server *s = list_entry(m, struct server, node);
					const struct backend_addr *a = &db->addr[s->side];
					char addr[300], pid[16];
					const char *vals[8];

					snprintf(addr, sizeof(addr), "%s:%d", a->host, a->port);
					snprintf(pid, sizeof(pid), "%u", (unsigned)s->be_pid);
					vals[0] = pool->user;
					vals[1] = db->name;
					vals[2] = side_name(s->side);
					vals[3] = server_state_name(s->state);
					vals[4] = addr;
					vals[5] = pid;
					vals[6] = s->client ? s->client->addr : NULL;
					vals[7] = sock_tls_version(&s->sock);
					rs_row(&rs, vals);
				}
			}
		}
	}
	rs_send(c, &rs);
}

static void show_stats(struct client *c)
{
	static const char *const cols[] = {"database",       "total_xact_count", "total_query_count",
					   "total_received", "total_sent",       "avg_xact_time_us",
					   "avg_query_time_us"};
	struct admin_rs rs;
	struct list_node *n;

	rs_begin(&rs, 7, cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct db_stats *st = &db->stats;
		char v[6][24];
		const char *vals[7];

		snprintf(v[0], 24, "%" PRIu64, st->xact_count);
		snprintf(v[1], 24, "%" PRIu64, st->query_count);
		snprintf(v[2], 24, "%" PRIu64, st->bytes_in);
		snprintf(v[3], 24, "%" PRIu64, st->bytes_out);
		snprintf(v[4], 24, "%" PRIu64, st->xact_count ? st->xact_time_us / st->xact_count : 0);
		snprintf(v[5], 24, "%" PRIu64, st->query_count ? st->query_time_us / st->query_count : 0);
		vals[0] = db->name;
		for (int i = 0; i < 6; i++)
			vals[1 + i] = v[i];
		rs_row(&rs, vals);
	}
	rs_send(c, &rs);
}

static void config_row(void *arg, const char *key, const char *value)
{
	const char *vals[2] = {key, value};

	rs_row(arg, vals);
}

static void show_config(struct client *c)
{
	static const char *const cols[] = {"key", "value"};
	struct admin_rs rs;

	rs_begin(&rs, 2, cols);
	config_dump(rt.cfg, config_row, &rs);
	rs_send(c, &rs);
}

static void show_help(struct client *c)
{
	static const char *const cols[] = {"command", "description"};
	struct admin_rs rs;

	rs_begin(&rs, 2, cols);
	for (int i = 0; admin_cmd_help[i][0]; i++)
		rs_row(&rs, admin_cmd_help[i]);
	rs_send(c, &rs);
}

static void show_version(struct client *c)
{
	static const char *const cols[] = {"version"};
	const char *vals[1] = {"pgcutover " PGCUTOVER_VERSION};
	struct admin_rs rs;

	rs_begin(&rs, 1, cols);
	rs_row(&rs, vals);
	rs_send(c, &rs);
}

/* KILL db: disconnect every client of the database, close its servers. */
static void kill_db(struct client *c, const char *name)
{
	struct database *db = pool_find_db(name);
	struct list_node *p, *m, *tmp;
	char msg[200];

	if (db == NULL) {
		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, "3D000", msg, "SHOW DATABASES lists the databases");
		return;
	}
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);
		struct list_node *lists[3] = {&pool->active_clients, &pool->waiting_clients,
					      &pool->idle_clients};

		for (int i = 0; i < 3; i++)
			list_for_each_safe(m, tmp, lists[i])
				client_disconnect(list_entry(m, struct client, node), "57P01",
						  "terminating connection: database \"%s\" was killed from the admin console",
						  db->name);
		list_for_each_safe(m, tmp, &pool->idle_servers)
			server_close(list_entry(m, struct server, node), "KILL from the admin console");
	}
	log_info("admin %s: KILL %s", c->addr, db->name);
	send_simple(c, "KILL");
}

static void show_switches(struct client *c)
{
	struct admin_rs rs;
	const struct switch_record *h;
	int n;
	struct list_node *m;

	rs_begin(&rs, SWITCH_NCOLS, switch_cols);
	h = cutover_history(&n);
	for (int i = 0; i < n; i++)
		switch_row(&rs, &h[i]);
	list_for_each(m, &rt.databases) {
		const struct switch_record *r = cutover_running(list_entry(m, struct database, node));

		if (r)
			switch_row(&rs, r);
	}
	rs_send(c, &rs);
}

/* -- SHOW LAG / SHOW SEQUENCES: asynchronous -- */

static void job_free(struct admin_job *j)
{
	for (int i = 0; i < j->nctl; i++)
		control_conn_free(j->ctl[i]);
	if (j->rs) {
		pq_buf_free(&j->rs->b);
		free(j->rs);
	}
	PQclear(j->seq[0]);
	PQclear(j->seq[1]);
	free(j);
}

static void job_unlink(struct admin_job *j)
{
	for (struct admin_job **pp = &jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
}

/* Deferred free: a job may end inside a control callback. */
static void job_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_free(arg);
}

static void job_finish(struct admin_job *j)
{
	struct client *c = j->requester;

	job_unlink(j);
	if (c) {
		if (j->seq_error[0]) {
			admin_reply_error(c, "08006", j->seq_error, "check that control_user can log in to both sides");
		} else {
			rs_send(c, j->rs);
			admin_done(c);
		}
		/* rs_send freed the buffer */
		if (!j->seq_error[0]) {
			free(j->rs);
			j->rs = NULL;
		}
	}
	for (int i = 0; i < j->nctl; i++)
		control_conn_reset(j->ctl[i]);
	event_base_once(rt.base, -1, EV_TIMEOUT, job_free_cb, j, NULL);
}

static struct admin_job *job_new(struct client *c, bool sequences, int ncols, const char *const *cols)
{
	struct admin_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->rs = calloc(1, sizeof(*j->rs))) == NULL) {
		free(j);
		return NULL;
	}
	j->requester = c;
	j->sequences = sequences;
	rs_begin(j->rs, ncols, cols);
	j->next = jobs;
	jobs = j;
	return j;
}

static struct control_conn *job_ctl(struct admin_job *j, const struct database *db, enum route_side side)
{
	const char *base = side == SIDE_SOURCE ? db->cfg->source : db->cfg->target;
	const char *user = db->cfg->d.control_user;
	const char *secret = userlist_secret(rt.users, user);
	char *ci, label[100];
	struct control_conn *cc;

	if (j->nctl == (int)(sizeof(j->ctl) / sizeof(j->ctl[0])))
		return NULL;
	if (secret && auth_secret_kind(secret) != AUTH_SECRET_PLAIN)
		secret = NULL;
	ci = control_conninfo_with_user(base, user, secret);
	if (ci == NULL)
		return NULL;
	snprintf(label, sizeof(label), "%s %s", db->name, route_side_name(side));
	cc = control_conn_new(rt.base, rt.dns, ci, label);
	free(ci);
	if (cc)
		j->ctl[j->nctl++] = cc;
	return cc;
}

/* One SHOW LAG query's context. */
struct lag_query {
	struct admin_job *job;
	const struct database *db;
	char name[64];
	char method[16];
};

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
	rs_row(j->rs, vals);
	free(q);
	if (--j->pending == 0)
		job_finish(j);
}

static void show_lag(struct client *c, const char *name)
{
	static const char *const cols[] = {"db", "method", "source_position", "target_position",
					   "lag_bytes", "measured_at"};
	struct admin_job *j;
	struct list_node *n;
	int found = 0;

	if (name[0] && pool_find_db(name) == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, "3D000", msg, "SHOW DATABASES lists the databases");
		return;
	}
	j = job_new(c, false, 6, cols);
	if (j == NULL) {
		send_error(c, "53200", "out of memory", NULL);
		return;
	}
	j->pending = 1;
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const char *method;

		if (db->removed || (name[0] && strcmp(db->name, name) != 0))
			continue;
		found++;
		method = config_lag_method_name(db->cfg->d.lag_method);
		if (db->cfg->d.lag_method == LAG_LSN) {
			struct lag_query *q = calloc(1, sizeof(*q));
			struct control_conn *cc = q ? job_ctl(j, db, db->route) : NULL;
			char sql[600];

			if (cc == NULL) {
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
				 " FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
				 db->cfg->replication_slot);
			j->pending++;
			if (!control_conn_query(cc, sql, 10000, lag_cb, q)) {
				j->pending--;
				free(q);
			}
		} else {
			const char *vals[6] = {db->name, method, NULL, NULL, NULL, NULL};

			rs_row(j->rs, vals);
		}
	}
	(void)found;
	admin_set_busy(c, true);
	if (--j->pending == 0)
		job_finish(j);
}

static const char SEQ_SQL[] =
	"SELECT schemaname || '.' || sequencename, last_value::text FROM pg_catalog.pg_sequences ORDER BY 1";

/* Which side a SHOW SEQUENCES callback belongs to. */
struct seq_query {
	struct admin_job *job;
	int side;
};

static void seq_finish(struct admin_job *j)
{
	PGresult *src = j->seq[SIDE_SOURCE], *tgt = j->seq[SIDE_TARGET];

	for (int i = 0; src && tgt && i < PQntuples(src); i++) {
		const char *name = PQgetvalue(src, i, 0);
		const char *sv = PQgetisnull(src, i, 1) ? NULL : PQgetvalue(src, i, 1);
		const char *tv = NULL;
		const char *vals[4];

		for (int k = 0; k < PQntuples(tgt); k++) {
			if (strcmp(PQgetvalue(tgt, k, 0), name) == 0) {
				tv = PQgetisnull(tgt, k, 1) ? NULL : PQgetvalue(tgt, k, 1);
				break;
			}
		}
		vals[0] = name;
		vals[1] = sv;
		vals[2] = tv;
		vals[3] = sv && (tv == NULL || strtoll(tv, NULL, 10) < strtoll(sv, NULL, 10)) ? "yes" : "no";
		rs_row(j->rs, vals);
	}
	job_finish(j);
}

static void seq_cb(void *arg, const struct control_result *r)
{
	struct seq_query *q = arg;
	struct admin_job *j = q->job;

	if (!r->ok) {
		if (!j->seq_error[0])
			snprintf(j->seq_error, sizeof(j->seq_error), "could not read sequences on the %s: %s",
				 route_side_name((enum route_side)q->side), r->error ? r->error : "failed");
	} else if (r->res) {
		/* the result is only ours during the callback: keep a copy */
		j->seq[q->side] = PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	}
	free(q);
	if (--j->pending == 0) {
		if (j->seq_error[0])
			job_finish(j);
		else
			seq_finish(j);
	}
}

static void show_sequences(struct client *c, const char *name)
{
	static const char *const cols[] = {"sequence", "source_value", "target_value", "target_behind"};
	struct database *db = pool_find_db(name);
	struct admin_job *j;

	if (db == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, "3D000", msg, "SHOW DATABASES lists the databases");
		return;
	}
	j = job_new(c, true, 4, cols);
	if (j == NULL) {
		send_error(c, "53200", "out of memory", NULL);
		return;
	}
	for (int side = 0; side < 2; side++) {
		struct seq_query *q = calloc(1, sizeof(*q));
		struct control_conn *cc = q ? job_ctl(j, db, (enum route_side)side) : NULL;

		if (cc == NULL) {
			free(q);
			snprintf(j->seq_error, sizeof(j->seq_error), "out of memory");
			continue;
		}
		q->job = j;
		q->side = side;
		j->pending++;
		if (!control_conn_query(cc, SEQ_SQL, 10000, seq_cb, q)) {
			j->pending--;
			free(q);
		}
	}
	admin_set_busy(c, true);
	if (j->pending == 0)
		job_finish(j);
}

/* -- PAUSE, RESUME, SWITCH, ABORT -- */

/* The database an argument names; on error the reply is sent and NULL returned. */
static struct database *need_db(struct client *c, const char *name)
{
	struct database *db = pool_find_db(name);

	if (db == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, "3D000", msg, "SHOW DATABASES lists the databases");
	}
	return db;
}

static void do_pause(struct client *c, const char *name)
{
	struct database *db = NULL;

	if (name[0] && (db = need_db(c, name)) == NULL)
		return;
	log_info("admin %s: PAUSE %s", c->addr, name[0] ? name : "(all)");
	admin_set_busy(c, true);
	cutover_pause(db, c);
}

static void do_resume(struct client *c, const char *name)
{
	struct database *db = NULL;

	if (name[0] && (db = need_db(c, name)) == NULL)
		return;
	log_info("admin %s: RESUME %s", c->addr, name[0] ? name : "(all)");
	cutover_resume(db);
	send_simple(c, "RESUME");
}

static void do_switch(struct client *c, const struct admin_cmd *cmd)
{
	struct database *db = need_db(c, cmd->db);
	char err[300];

	if (db == NULL)
		return;
	log_info("admin %s: SWITCH %s TO %s%s", c->addr, db->name, cmd->to_source ? "source" : "target",
		 cmd->dry_run ? " DRY RUN" : "");
	admin_set_busy(c, true);
	if (!cutover_start(db, cmd->to_source ? SIDE_SOURCE : SIDE_TARGET, cmd->dry_run, c, err,
			   sizeof(err))) {
		admin_set_busy(c, false);
		send_error(c, "55000", err, "SHOW DATABASES and SHOW SWITCHES show where each database is");
	}
}

static void do_abort(struct client *c, const char *name)
{
	struct database *db = need_db(c, name);
	char err[300];

	if (db == NULL)
		return;
	log_info("admin %s: ABORT %s", c->addr, db->name);
	if (cutover_abort(db, err, sizeof(err)))
		send_simple(c, "ABORT");
	else
		send_error(c, "55000", err, "ABORT stops a switch before its flip (preflight, drain, lag wait, sequence sync)");
}

static void admin_run(struct client *c, const char *query, size_t len)
{
	struct admin_cmd cmd;
	char err[256];

	if (!admin_cmd_parse(query, len, &cmd, err, sizeof(err))) {
		send_error(c, "42601", err, "SHOW HELP lists the commands");
		return;
	}
	switch (cmd.kind) {
	case ADMIN_CMD_EMPTY: {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_empty_query(&b);
		if (b.failed || !client_send(c, b.data, b.len))
			client_close(c, "could not send");
		pq_buf_free(&b);
		break;
	}
	case ADMIN_CMD_SHOW_HELP:
		show_help(c);
		break;
	case ADMIN_CMD_SHOW_VERSION:
		show_version(c);
		break;
	case ADMIN_CMD_SHOW_DATABASES:
		show_databases(c);
		break;
	case ADMIN_CMD_SHOW_CLIENTS:
		show_clients(c);
		break;
	case ADMIN_CMD_SHOW_SERVERS:
		show_servers(c);
		break;
	case ADMIN_CMD_SHOW_POOLS:
		show_pools(c);
		break;
	case ADMIN_CMD_SHOW_STATS:
		show_stats(c);
		break;
	case ADMIN_CMD_SHOW_CONFIG:
		show_config(c);
		break;
	case ADMIN_CMD_RELOAD:
		log_info("admin %s: RELOAD", c->addr);
		if (rt_reload(err, sizeof(err)))
			send_simple(c, "RELOAD");
		else
			send_error(c, "F0000", err, "fix the configuration file and run RELOAD again");
		break;
	case ADMIN_CMD_SHUTDOWN:
		log_info("admin %s: SHUTDOWN", c->addr);
		send_simple(c, "SHUTDOWN");
		rt_begin_shutdown();
		break;
	case ADMIN_CMD_KILL:
		kill_db(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SWITCHES:
		show_switches(c);
		break;
	case ADMIN_CMD_SHOW_LAG:
		show_lag(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SEQUENCES:
		show_sequences(c, cmd.db);
		break;
	case ADMIN_CMD_PAUSE:
		do_pause(c, cmd.db);
		break;
	case ADMIN_CMD_RESUME:
		do_resume(c, cmd.db);
		break;
	case ADMIN_CMD_SWITCH:
		do_switch(c, &cmd);
		break;
	case ADMIN_CMD_ABORT:
		do_abort(c, cmd.db);
		break;
	}
}

static void admin_continue(struct client *c)
{
	if (sock_in_len(&c->sock) > 0)
		admin_handle_input(c);
}

void admin_handle_input(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);

	while (c->state == CL_ACTIVE && !admin_busy(c)) {
		uint8_t hdr[PQ_HEADER_SIZE], type;
		uint32_t len;
		const uint8_t *msg;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (pq_read_header(hdr, sizeof(hdr), &type, &len, ADMIN_QUERY_MAX) != PQ_OK) {
			client_disconnect(c, "08P01", "invalid message length %u on the admin console (at most %d)",
					  (unsigned)len, ADMIN_QUERY_MAX);
			return;
		}
		if (evbuffer_get_length(in) < (size_t)len + 1)
			return;
		msg = evbuffer_pullup(in, (ssize_t)len + 1);
		if (type == 'X') {
			client_close(c, "admin session ended");
			return;
		}
		if (type != 'Q') {
			client_disconnect(c, "0A000",
					  "the admin console supports only the simple query protocol (got %s)",
					  pq_msg_name(type, false));
			return;
		}
		{
			/* copy the query out and consume it before running: replies may recurse */
			char q[ADMIN_QUERY_MAX];
			size_t qlen = len - 4;

			memcpy(q, msg + PQ_HEADER_SIZE, qlen);
			evbuffer_drain(in, len + 1);
			if (qlen == 0 || q[qlen - 1] != '\0') {
				client_disconnect(c, "08P01", "invalid Query message");
				return;
			}
			((struct admin_session *)c->admin)->in_run = true;
			admin_run(c, q, strlen(q));
			if (c->admin)
				((struct admin_session *)c->admin)->in_run = false;
		}
		if (c->state == CL_ACTIVE && !admin_busy(c))
			send_ready(c);
	}
}

void admin_client_start(struct client *c)
{
	static const char *const params[][2] = {
		{"server_version", "15.0 (pgcutover " PGCUTOVER_VERSION ")"},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"application_name", "pgcutover"},
	};
	struct pq_buf b;

	if (!config_is_admin(rt.cfg, c->user)) {
		client_disconnect(c, "28000",
				  "user \"%s\" is not allowed to use the admin console: only admin_users may", c->user);
		return;
	}
	pq_buf_init(&b);
	pq_build_auth(&b, PQ_AUTH_OK, NULL, 0);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		pq_build_param_status(&b, params[i][0], params[i][1]);
	pq_build_backend_key(&b, 0, 0);
	pq_build_ready(&b, 'I');
	if (b.failed || !client_send(c, b.data, b.len)) {
		pq_buf_free(&b);
		client_close(c, "could not send");
		return;
	}
	pq_buf_free(&b);
	c->admin = calloc(1, sizeof(struct admin_session));
	if (c->admin == NULL) {
		client_close(c, "out of memory");
		return;
	}
	client_set_state(c, CL_ACTIVE);
	log_info("admin %s: %s logged in to the admin console", c->addr, c->user);
	if (sock_in_len(&c->sock) > 0)
		admin_handle_input(c);
}

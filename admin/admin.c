/*
 * admin.c - the admin console.
 *
 * Speaks the simple query protocol: each Query carries one command, answered
 * with a result set (all columns text) or an ErrorResponse, then
 * ReadyForQuery.  A malformed or unknown command gets 42601 with a hint
 * pointing at SHOW HELP; the session goes on.
 *
 * And the extended protocol, so that drivers work with their defaults:
 * Parse checks the command and keeps its text under the statement name,
 * Bind makes a portal of it (no parameters: the commands take none), Describe
 * answers from the command's fixed columns, Execute runs the command then
 * (never earlier: PAUSE or SWITCH must not run at Describe), Sync answers
 * ReadyForQuery.  After an error every message up to the next Sync is
 * ignored, as PostgreSQL does.
 */
#include "admin/admin.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_cmd.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/seqread.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/core/route.h"
#include "proxy/server.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/version.h"
#include "proxy/io/sock_tls.h"

#include <libpq-fe.h>

/* Columns of a result set, from its static array of names. */
#define NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Admin queries are short; a longer one is refused. */
#define ADMIN_QUERY_MAX 8192

/* Prepared statements and portals one admin session may hold (extended protocol). */
#define ADMIN_STMT_MAX   64
#define ADMIN_PORTAL_MAX 16

/* A prepared statement or a portal: its name ("" = the unnamed one) and command text. */
struct admin_named {
	char *name;
	char *query;
};

/* Per admin session: whether a command is still being answered, and the extended protocol's state. */
struct admin_session {
	bool busy;     /* an asynchronous command runs: later queries wait */
	bool in_run;   /* inside admin_run(): a reply made now is finished by the caller */
	bool ext_exec; /* an Execute runs the command: its RowDescription is not sent */
	bool ext_skip; /* an extended-protocol message failed: ignore everything until Sync */
	struct admin_named stmts[ADMIN_STMT_MAX]; /* Parse'd, until Close or the end */
	int nstmts;
	struct admin_named portals[ADMIN_PORTAL_MAX]; /* Bind'ed, until Close or Sync */
	int nportals;
};

/*
 * An asynchronous SHOW (LAG, SEQUENCES): control queries to one or more
 * databases, answered once all of them are back.
 */
struct admin_job {
	struct client *requester; /* NULL once the admin client left */
	int pending;              /* control queries still out */
	bool sequences;           /* SHOW SEQUENCES (else SHOW LAG) */
	struct admin_rs *rs;      /* rows so far */
	struct control_conn *ctl[64];
	int nctl;
	PGresult *seq[2]; /* SHOW SEQUENCES: each side's list */
	char seq_error[300];
	struct admin_job *next;
};

static struct admin_job *jobs;

static void admin_continue(struct client *c);
static const struct client_kind admin_kind;
static void admin_handle_input(struct client *c);
static void named_clear(struct admin_named *set, int *n);

bool admin_init(char *errbuf, size_t errlen)
{
	cutover_init();
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

static void admin_client_free(struct client *c)
{
	cutover_forget(c);
	for (struct admin_job *j = jobs; j; j = j->next)
		if (j->requester == c)
			j->requester = NULL;
	if (c->kind_data) {
		struct admin_session *a = c->kind_data;

		named_clear(a->stmts, &a->nstmts);
		named_clear(a->portals, &a->nportals);
	}
	free(c->kind_data);
	c->kind_data = NULL;
}

static bool admin_busy(const struct client *c)
{
	const struct admin_session *a = c->kind_data;

	return a && a->busy;
}

static void admin_set_busy(struct client *c, bool busy)
{
	struct admin_session *a = c->kind_data;

	if (a)
		a->busy = busy;
}

void admin_close_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &rt.kind_clients) {
		struct client *c = list_entry(n, struct client, node);

		if (c->kind == &admin_kind)
			client_close(c, "shutdown");
	}
}

/* ---- output ---- */

/*
 * Every reply of the console goes through here.  While an Execute runs, the
 * command's RowDescription is dropped (the extended protocol sends it at
 * Describe, never at Execute), and an ErrorResponse starts the state that
 * ignores messages until Sync.  The buffers are our own, well formed.
 */
static bool admin_send(struct client *c, const uint8_t *data, size_t len)
{
	struct admin_session *a = c->kind_data;
	size_t off = 0, keep = 0;

	if (a == NULL || !a->ext_exec)
		return client_send(c, data, len);
	while (off + PQ_HEADER_SIZE <= len) {
		uint8_t type = data[off];
		uint32_t mlen = (uint32_t)data[off + 1] << 24 | (uint32_t)data[off + 2] << 16 |
				(uint32_t)data[off + 3] << 8 | data[off + 4];

		if (type == 'E')
			a->ext_skip = true;
		if (type == 'T') {
			if (off > keep && !client_send(c, data + keep, off - keep))
				return false;
			keep = off + 1 + mlen;
		}
		off += 1 + (size_t)mlen;
	}
	return keep >= len || client_send(c, data + keep, len - keep);
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
	if (rs->b.failed || !admin_send(c, rs->b.data, rs->b.len))
		client_close(c, "could not send");
	pq_buf_free(&rs->b);
}

static void send_simple(struct client *c, const char *tag)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_command_complete(&b, tag);
	if (b.failed || !admin_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

static void send_error(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_error(&b, "ERROR", sqlstate, msg, NULL, hint);
	if (b.failed || !admin_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

static void send_ready(struct client *c)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_ready(&b, 'I');
	if (b.failed || !admin_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

/* ---- asynchronous replies ---- */

/*
 * A command has been answered: a Query ends with ReadyForQuery, an Execute
 * without (Sync sends it).
 */
static void admin_command_end(struct client *c)
{
	struct admin_session *a = c->kind_data;

	if (a && a->ext_exec)
		a->ext_exec = false;
	else
		send_ready(c);
}

/* A command that was answered later: end it and take the next message. */
static void admin_done(struct client *c)
{
	struct admin_session *a = c->kind_data;

	admin_set_busy(c, false);
	if (a && a->in_run)
		return; /* answered before admin_run() returned: the caller ends it */
	if (c->state == CL_ACTIVE) {
		admin_command_end(c);
		admin_continue(c);
	}
}

static void admin_reply_error(struct client *c, const char *sqlstate, const char *msg,
			      const char *hint)
{
	send_error(c, sqlstate, msg, hint);
	admin_done(c);
}

/* PAUSE has drained (cutover_paused_fn). */
static void admin_paused(void *who, const char *sqlstate, const char *message)
{
	struct client *c = who;

	if (sqlstate)
		admin_reply_error(c, sqlstate, message, NULL);
	else {
		send_simple(c, "PAUSE");
		admin_done(c);
	}
}

static const char *const switch_cols[] = {
	"db",
	"from",
	"to",
	"started",
	"result",
	"paused_ms",
	"drain_ms",
	"lag_wait_ms",
	"sequence_sync_ms",
	"sequences_synced",
	"sessions_moved",
	"sessions_closed",
	"error",
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

/* A SWITCH ended (cutover_reply_fn): its row, or the error. */
static void admin_switched(void *who, const struct switch_record *rec, const char *sqlstate)
{
	struct client *c = who;
	struct admin_rs rs;

	if (sqlstate) {
		admin_reply_error(c, sqlstate, rec->error,
				  "SHOW SWITCHES has the timings; the database stays on its old side");
		return;
	}
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

static const char *const databases_cols[] = {
	"name", "route", "state", "source", "target", "clients", "waiting_clients", "servers",
};

static void show_databases(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p;

	rs_begin(&rs, NCOLS(databases_cols), databases_cols);
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
			waiting += pool_waiting_clients(pool);
			servers += pool->nservers;
		}
		addr_text(&db->addr[SIDE_SOURCE], src, sizeof(src));
		addr_text(&db->addr[SIDE_TARGET], tgt, sizeof(tgt));
		snprintf(ncl, sizeof(ncl), "%d", clients);
		snprintf(nwait, sizeof(nwait), "%d", waiting);
		snprintf(nsv, sizeof(nsv), "%d", servers);
		vals[0] = db->name;
		vals[1] = side_name(db->route);
		vals[2] = cutover_running(db) ? "switching" : db_paused(db) ? "paused" : "running";
		vals[3] = src;
		vals[4] = tgt;
		vals[5] = ncl;
		vals[6] = nwait;
		vals[7] = nsv;
		rs_row(&rs, vals);
	}
	rs_send(c, &rs);
}

static const char *const pools_cols[] = {
	"database",  "user",    "cl_active", "cl_waiting", "cl_idle",
	"sv_active", "sv_idle", "sv_login",  "pool_mode",  "pool_size",
};

static void show_pools(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p;

	rs_begin(&rs, NCOLS(pools_cols), pools_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			char v[7][16];
			const char *vals[10];

			int waiting = pool_waiting_clients(pool);

			/* a held client (session pooling) counts as waiting, not active */
			snprintf(v[0], 16, "%d",
				 count_list(&pool->active_clients) -
					 (waiting - count_list(&pool->waiting_clients)));
			snprintf(v[1], 16, "%d", waiting);
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
	char since[32], pid[16], nstmts[16];
	const char *vals[10];
	uint64_t age = (rt_now_us() - cl->connect_time_us) / 1000000u;

	snprintf(since, sizeof(since), "%" PRIu64, age);
	snprintf(pid, sizeof(pid), "%u", cl->server ? (unsigned)cl->server->be_pid : 0u);
	vals[0] = cl->user ? cl->user : "";
	vals[1] = cl->dbname ? cl->dbname : "";
	vals[2] = client_state_name(cl->state);
	vals[3] = cl->addr;
	vals[4] = since;
	vals[5] = cl->server ? pid : NULL;
	vals[6] = cl->kind ? "admin" : "client";
	vals[7] = sock_tls_version(&cl->sock); /* NULL: plaintext */
	/* named prepared statements it holds (protocol and SQL level), and whether it could move */
	snprintf(nstmts, sizeof(nstmts), "%u",
		 (unsigned)(cl->sess.stmts.tab.count + session_st(&cl->sess)->sql_stmts.count));
	vals[8] = nstmts;
	vals[9] = cl->kind ? "no" : client_movable(cl);
	rs_row(rs, vals);
}

static const char *const clients_cols[] = {
	"user",    "database",    "state",
	"addr",    "connected_s", "backend_pid",
	"type",    "tls",         "prepared_statements",
	"movable",
};

static void show_clients(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, NCOLS(clients_cols), clients_cols);
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
	list_for_each(m, &rt.kind_clients)
		client_row(&rs, list_entry(m, struct client, node));
	rs_send(c, &rs);
}

static const char *const servers_cols[] = {
	"user", "database", "side", "state", "addr", "backend_pid", "client", "tls",
};

static void show_servers(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, NCOLS(servers_cols), servers_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			struct list_node *lists[3] = {&pool->active_servers, &pool->idle_servers,
						      &pool->new_servers};

			for (int i = 0; i < 3; i++) {
				list_for_each(m, lists[i]) {
					struct server *s = list_entry(m, struct server, node);
					const struct backend_addr *a = &s->addr;
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

static const char *const stats_cols[] = {
	"database",   "total_xact_count", "total_query_count", "total_received",
	"total_sent", "avg_xact_time_us", "avg_query_time_us",
};

static void show_stats(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n;

	rs_begin(&rs, NCOLS(stats_cols), stats_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct db_stats *st = &db->stats;
		char v[6][24];
		const char *vals[7];

		snprintf(v[0], 24, "%" PRIu64, st->xact_count);
		snprintf(v[1], 24, "%" PRIu64, st->query_count);
		snprintf(v[2], 24, "%" PRIu64, st->bytes_in);
		snprintf(v[3], 24, "%" PRIu64, st->bytes_out);
		snprintf(v[4], 24, "%" PRIu64,
			 st->xact_count ? st->xact_time_us / st->xact_count : 0);
		snprintf(v[5], 24, "%" PRIu64,
			 st->query_count ? st->query_time_us / st->query_count : 0);
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

static const char *const config_cols[] = {
	"key",
	"value",
};

static void show_config(struct client *c)
{
	struct admin_rs rs;

	rs_begin(&rs, NCOLS(config_cols), config_cols);
	config_dump(rt.cfg, config_row, &rs);
	rs_send(c, &rs);
}

static const char *const help_cols[] = {
	"command",
	"description",
};

static void show_help(struct client *c)
{
	struct admin_rs rs;

	rs_begin(&rs, NCOLS(help_cols), help_cols);
	for (int i = 0; admin_cmd_help[i][0]; i++)
		rs_row(&rs, admin_cmd_help[i]);
	rs_send(c, &rs);
}

static const char *const version_cols[] = {
	"version",
};

static void show_version(struct client *c)
{
	const char *vals[1] = {"pgcutover " PGCUTOVER_VERSION};
	struct admin_rs rs;

	rs_begin(&rs, NCOLS(version_cols), version_cols);
	rs_row(&rs, vals);
	rs_send(c, &rs);
}

/* KILL db: disconnect every client of the database, close its servers. */
static void kill_db(struct client *c, const char *name)
{
	struct database *db = db_find(name);
	struct list_node *p, *m, *tmp;
	char msg[200];

	if (db == NULL) {
		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, SQLSTATE_INVALID_CATALOG_NAME, msg,
			   "SHOW DATABASES lists the databases");
		return;
	}
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);
		struct list_node *lists[3] = {&pool->active_clients, &pool->waiting_clients,
					      &pool->idle_clients};

		for (int i = 0; i < 3; i++)
			list_for_each_safe(m, tmp, lists[i])
				client_disconnect(list_entry(m, struct client, node),
						  SQLSTATE_ADMIN_SHUTDOWN,
						  "terminating connection: database \"%s\" was killed from the admin console",
						  db->name);
		list_for_each_safe(m, tmp, &pool->idle_servers)
			server_close(list_entry(m, struct server, node),
				     "KILL from the admin console");
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
		const struct switch_record *r =
			cutover_running(list_entry(m, struct database, node));

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
			admin_reply_error(c, SQLSTATE_CONNECTION_FAILURE, j->seq_error,
					  "check that control_user can log in to both sides");
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

static struct admin_job *job_new(struct client *c, bool sequences, int ncols,
				 const char *const *cols)
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

static struct control_conn *job_ctl(struct admin_job *j, const struct database *db,
				    enum route_side side)
{
	struct control_conn *cc;

	if (j->nctl == (int)(sizeof(j->ctl) / sizeof(j->ctl[0])))
		return NULL;
	cc = control_open(rt.cfg, rt.users, db->cfg, side);
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

static const char *const lag_cols[] = {
	"db", "method", "source_position", "target_position", "lag_bytes", "measured_at",
};

static void show_lag(struct client *c, const char *name)
{
	struct admin_job *j;
	struct list_node *n;
	int found = 0;

	if (name[0] && db_find(name) == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, SQLSTATE_INVALID_CATALOG_NAME, msg,
			   "SHOW DATABASES lists the databases");
		return;
	}
	j = job_new(c, false, NCOLS(lag_cols), lag_cols);
	if (j == NULL) {
		send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
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
			char sql[600], slot[160];

			/* replication_slot is a checked name (config.c): it always fits */
			if (cc == NULL ||
			    !sqlquote_literal(db->cfg->replication_slot, slot, sizeof(slot))) {
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

/*
 * SHOW SEQUENCES reads each side in the two steps of seqread.h, every
 * sequence from its relation (so is_called is known for all of them), and
 * compares the values nextval() would return next.
 */
struct seq_query {
	struct admin_job *job;
	struct control_conn *cc;
	int side;
};

/* A row of the target's SEQ_RAW_* result, sorted by name for lookups. */
struct seq_row {
	const char *name;
	int row;
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

static void seq_finish(struct admin_job *j)
{
	PGresult *src = j->seq[SIDE_SOURCE], *tgt = j->seq[SIDE_TARGET];
	int ntgt = tgt ? PQntuples(tgt) : 0;
	/* the target's rows by name: a fleet database may have thousands of sequences */
	struct seq_row *by_name = ntgt ? malloc((size_t)ntgt * sizeof(*by_name)) : NULL;

	if (ntgt && by_name == NULL) {
		snprintf(j->seq_error, sizeof(j->seq_error), "out of memory");
		job_finish(j);
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
		rs_row(j->rs, vals);
	}
	free(by_name);
	job_finish(j);
}

static void seq_done(struct admin_job *j)
{
	if (--j->pending == 0) {
		if (j->seq_error[0])
			job_finish(j);
		else
			seq_finish(j);
	}
}

static void seq_failed(struct seq_query *q, const struct control_result *r)
{
	struct admin_job *j = q->job;

	if (!j->seq_error[0])
		snprintf(j->seq_error, sizeof(j->seq_error),
			 "could not read sequences on the %s: %s",
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
		j->seq[q->side] = PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	free(q);
	seq_done(j);
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
		seq_done(j);
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
		seq_done(j);
		return;
	}
	pq_put_bytes(&raw, " ORDER BY 2", 11);
	pq_put_u8(&raw, 0);
	if (raw.failed || !control_conn_query(q->cc, (const char *)raw.data, 10000, seq_raw_cb, q)) {
		if (!j->seq_error[0])
			snprintf(j->seq_error, sizeof(j->seq_error), "out of memory");
		free(q);
		seq_done(j);
	}
	pq_buf_free(&raw);
}

static const char *const sequences_cols[] = {
	"sequence",
	"source_value",
	"target_value",
	"target_behind",
};

static void show_sequences(struct client *c, const char *name)
{
	struct database *db = db_find(name);
	struct admin_job *j;

	if (db == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, SQLSTATE_INVALID_CATALOG_NAME, msg,
			   "SHOW DATABASES lists the databases");
		return;
	}
	j = job_new(c, true, NCOLS(sequences_cols), sequences_cols);
	if (j == NULL) {
		send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
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
		q->cc = cc;
		q->side = side;
		j->pending++;
		if (!control_conn_query(cc, SEQ_LIST_SQL, 10000, seq_list_cb, q)) {
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
	struct database *db = db_find(name);

	if (db == NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
		send_error(c, SQLSTATE_INVALID_CATALOG_NAME, msg,
			   "SHOW DATABASES lists the databases");
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
	cutover_pause(db, admin_paused, c);
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
	log_info("admin %s: SWITCH %s TO %s%s", c->addr, db->name,
		 cmd->to_source ? "source" : "target", cmd->dry_run ? " DRY RUN" : "");
	admin_set_busy(c, true);
	if (!cutover_start(db, cmd->to_source ? SIDE_SOURCE : SIDE_TARGET, cmd->dry_run,
			   admin_switched, c, err, sizeof(err))) {
		admin_set_busy(c, false);
		send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
			   "SHOW DATABASES and SHOW SWITCHES show where each database is");
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
		send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
			   "ABORT stops a switch before its flip (preflight, drain, lag wait, sequence sync)");
}

static void admin_run(struct client *c, const char *query, size_t len)
{
	struct admin_cmd cmd;
	char err[256];

	if (!admin_cmd_parse(query, len, &cmd, err, sizeof(err))) {
		send_error(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	switch (cmd.kind) {
	case ADMIN_CMD_EMPTY: {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_empty_query(&b);
		if (b.failed || !admin_send(c, b.data, b.len))
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
		switch (rt_reload(err, sizeof(err))) {
		case RT_RELOAD_OK:
			send_simple(c, "RELOAD");
			break;
		case RT_RELOAD_PARTIAL:
			send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				   "a switch works on the settings it started with: run RELOAD again once it has ended (SHOW SWITCHES)");
			break;
		case RT_RELOAD_FAILED:
			send_error(c, SQLSTATE_CONFIG_FILE_ERROR, err,
				   "fix the configuration file and run RELOAD again");
			break;
		}
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

/* -- extended query protocol -- */

static int named_find(const struct admin_named *set, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(set[i].name, name) == 0)
			return i;
	return -1;
}

static void named_remove(struct admin_named *set, int *n, int i)
{
	free(set[i].name);
	free(set[i].query);
	set[i] = set[--*n];
}

static void named_clear(struct admin_named *set, int *n)
{
	while (*n > 0)
		named_remove(set, n, *n - 1);
}

/* Store name -> query; an unnamed one replaces its predecessor, a named one must be new. */
static bool named_put(struct client *c, struct admin_named *set, int *n, int max, const char *name,
		      const char *query, const char *what, const char *dup_state)
{
	int i = named_find(set, *n, name);
	char msg[200];
	char *nm, *q;

	if (i >= 0 && name[0]) {
		snprintf(msg, sizeof(msg), "%s \"%s\" already exists", what, name);
		send_error(c, dup_state, msg, "Close it first, or use another name");
		return false;
	}
	if (i >= 0)
		named_remove(set, n, i);
	if (*n == max) {
		snprintf(msg, sizeof(msg), "too many %ss on this admin session (at most %d)", what,
			 max);
		send_error(c, SQLSTATE_PROGRAM_LIMIT_EXCEEDED, msg,
			   "Close the ones no longer needed");
		return false;
	}
	nm = strdup(name);
	q = strdup(query);
	if (nm == NULL || q == NULL) {
		free(nm);
		free(q);
		send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return false;
	}
	set[*n].name = nm;
	set[*n].query = q;
	++*n;
	return true;
}

/* A one-byte reply without a body: ParseComplete, BindComplete, CloseComplete, NoData. */
static void send_bare(struct client *c, uint8_t type)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_msg_begin(&b, type);
	pq_msg_end(&b);
	if (b.failed || !admin_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

/* The result columns of a command (false: it returns no rows). */
static bool command_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
#define COLS(a)                    \
	do {                       \
		*ncols = NCOLS(a); \
		*cols = (a);       \
		return true;       \
	} while (0)
	switch (kind) {
	case ADMIN_CMD_SHOW_HELP:
		COLS(help_cols);
	case ADMIN_CMD_SHOW_VERSION:
		COLS(version_cols);
	case ADMIN_CMD_SHOW_DATABASES:
		COLS(databases_cols);
	case ADMIN_CMD_SHOW_CLIENTS:
		COLS(clients_cols);
	case ADMIN_CMD_SHOW_SERVERS:
		COLS(servers_cols);
	case ADMIN_CMD_SHOW_POOLS:
		COLS(pools_cols);
	case ADMIN_CMD_SHOW_STATS:
		COLS(stats_cols);
	case ADMIN_CMD_SHOW_CONFIG:
		COLS(config_cols);
	case ADMIN_CMD_SHOW_LAG:
		COLS(lag_cols);
	case ADMIN_CMD_SHOW_SEQUENCES:
		COLS(sequences_cols);
	case ADMIN_CMD_SHOW_SWITCHES:
	case ADMIN_CMD_SWITCH:
		COLS(switch_cols);
	default:
		return false;
	}
#undef COLS
}

/* Fail an extended-protocol message: the error, then nothing until Sync. */
static void ext_fail(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	send_error(c, sqlstate, msg, hint);
	((struct admin_session *)c->kind_data)->ext_skip = true;
}

static void ext_bad_message(struct client *c, uint8_t type)
{
	char msg[100];

	snprintf(msg, sizeof(msg), "invalid %s message", pq_msg_name(type, false));
	ext_fail(c, SQLSTATE_PROTOCOL_VIOLATION, msg, NULL);
}

/* Parse: name, query, parameter types. */
static void ext_parse(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct pq_cursor cur;
	const char *name, *query;
	uint16_t ntypes;
	struct admin_cmd cmd;
	char err[256];

	pq_cursor_init(&cur, body, len);
	name = pq_get_str(&cur);
	query = pq_get_str(&cur);
	ntypes = pq_get_u16(&cur);
	for (uint16_t i = 0; i < ntypes; i++)
		(void)pq_get_u32(&cur);
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'P');
		return;
	}
	if (ntypes > 0) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "admin console commands take no parameters",
			 "Write the values into the command text");
		return;
	}
	if (!admin_cmd_parse(query, strlen(query), &cmd, err, sizeof(err))) {
		ext_fail(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	if (!named_put(c, a->stmts, &a->nstmts, ADMIN_STMT_MAX, name, query, "prepared statement",
		       SQLSTATE_DUPLICATE_PREPARED_STATEMENT)) {
		a->ext_skip = true;
		return;
	}
	send_bare(c, '1');
}

/* Bind: portal, statement, parameter formats, parameters, result formats. */
static void ext_bind(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct pq_cursor cur;
	const char *portal, *stmt;
	uint16_t nfmt, nparams, nres;
	bool binary = false;
	int i;
	char msg[200];

	pq_cursor_init(&cur, body, len);
	portal = pq_get_str(&cur);
	stmt = pq_get_str(&cur);
	nfmt = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nfmt; k++)
		(void)pq_get_u16(&cur);
	nparams = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nparams && !cur.failed; k++) {
		int32_t plen = pq_get_i32(&cur);

		if (plen > 0)
			(void)pq_get_bytes(&cur, (size_t)plen);
	}
	nres = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nres; k++)
		binary |= pq_get_u16(&cur) != 0;
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'B');
		return;
	}
	i = named_find(a->stmts, a->nstmts, stmt);
	if (i < 0) {
		snprintf(msg, sizeof(msg), "prepared statement \"%s\" does not exist", stmt);
		ext_fail(c, SQLSTATE_INVALID_SQL_STATEMENT_NAME, msg, NULL);
		return;
	}
	if (nparams > 0) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "admin console commands take no parameters",
			 "Write the values into the command text");
		return;
	}
	if (binary) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "the admin console sends its results in text format only", NULL);
		return;
	}
	if (!named_put(c, a->portals, &a->nportals, ADMIN_PORTAL_MAX, portal, a->stmts[i].query,
		       "portal", SQLSTATE_DUPLICATE_CURSOR)) {
		a->ext_skip = true;
		return;
	}
	send_bare(c, '2');
}

/* Describe: 'S' statement (ParameterDescription, then columns) or 'P' portal (columns). */
static void ext_describe(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct pq_cursor cur;
	uint8_t what;
	const char *name;
	const struct admin_named *n = NULL;
	struct admin_cmd cmd;
	const char *const *cols;
	int ncols, i;
	struct pq_buf b;
	char err[256];

	pq_cursor_init(&cur, body, len);
	what = pq_get_u8(&cur);
	name = pq_get_str(&cur);
	if (!pq_cursor_done(&cur) || (what != 'S' && what != 'P')) {
		ext_bad_message(c, 'D');
		return;
	}
	if (what == 'S' && (i = named_find(a->stmts, a->nstmts, name)) >= 0)
		n = &a->stmts[i];
	else if (what == 'P' && (i = named_find(a->portals, a->nportals, name)) >= 0)
		n = &a->portals[i];
	if (n == NULL) {
		snprintf(err, sizeof(err), "%s \"%s\" does not exist",
			 what == 'S' ? "prepared statement" : "portal", name);
		ext_fail(c,
			 what == 'S' ? SQLSTATE_INVALID_SQL_STATEMENT_NAME
				     : SQLSTATE_INVALID_CURSOR_NAME,
			 err, NULL);
		return;
	}
	/* checked at Parse already */
	if (!admin_cmd_parse(n->query, strlen(n->query), &cmd, err, sizeof(err))) {
		ext_fail(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	pq_buf_init(&b);
	if (what == 'S') {
		pq_msg_begin(&b, 't');
		pq_put_u16(&b, 0);
		pq_msg_end(&b);
	}
	if (command_columns(cmd.kind, &ncols, &cols)) {
		pq_build_row_description(&b, ncols, cols);
	} else {
		pq_msg_begin(&b, 'n');
		pq_msg_end(&b);
	}
	if (b.failed || !admin_send(c, b.data, b.len))
		client_close(c, "could not send");
	pq_buf_free(&b);
}

/* Execute: portal, row limit (the console's results are small: always sent whole). */
static void ext_execute(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct pq_cursor cur;
	const char *portal;
	char q[ADMIN_QUERY_MAX];
	int i;

	pq_cursor_init(&cur, body, len);
	portal = pq_get_str(&cur);
	(void)pq_get_i32(&cur);
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'E');
		return;
	}
	i = named_find(a->portals, a->nportals, portal);
	if (i < 0) {
		snprintf(q, sizeof(q), "portal \"%s\" does not exist", portal);
		ext_fail(c, SQLSTATE_INVALID_CURSOR_NAME, q, NULL);
		return;
	}
	/* a copy: the command may end the session, and with it the portal */
	snprintf(q, sizeof(q), "%s", a->portals[i].query);
	a->ext_exec = true;
	a->in_run = true;
	admin_run(c, q, strlen(q));
	if (c->kind_data) {
		((struct admin_session *)c->kind_data)->in_run = false;
		if (c->state == CL_ACTIVE && !admin_busy(c))
			admin_command_end(c);
	}
}

/* Close: 'S' statement or 'P' portal; closing one that does not exist is no error. */
static void ext_close(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct pq_cursor cur;
	uint8_t what;
	const char *name;
	int i;

	pq_cursor_init(&cur, body, len);
	what = pq_get_u8(&cur);
	name = pq_get_str(&cur);
	if (!pq_cursor_done(&cur) || (what != 'S' && what != 'P')) {
		ext_bad_message(c, 'C');
		return;
	}
	if (what == 'S' && (i = named_find(a->stmts, a->nstmts, name)) >= 0)
		named_remove(a->stmts, &a->nstmts, i);
	else if (what == 'P' && (i = named_find(a->portals, a->nportals, name)) >= 0)
		named_remove(a->portals, &a->nportals, i);
	send_bare(c, '3');
}

/* Sync: the end of the (implicit) transaction: portals go, errors are forgotten. */
static void ext_sync(struct client *c)
{
	struct admin_session *a = c->kind_data;

	a->ext_skip = false;
	named_clear(a->portals, &a->nportals);
	send_ready(c);
}

/* One extended-protocol message (its body copied out of the input buffer). */
static void ext_message(struct client *c, uint8_t type, const uint8_t *body, size_t len)
{
	switch (type) {
	case 'P':
		ext_parse(c, body, len);
		break;
	case 'B':
		ext_bind(c, body, len);
		break;
	case 'D':
		ext_describe(c, body, len);
		break;
	case 'E':
		ext_execute(c, body, len);
		break;
	case 'C':
		ext_close(c, body, len);
		break;
	case 'H':
		/* Flush: every reply is already on its way out */
		break;
	case 'S':
		ext_sync(c);
		break;
	default:
		break;
	}
}

static void admin_handle_input(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);

	while (c->state == CL_ACTIVE && !admin_busy(c)) {
		struct admin_session *a = c->kind_data;
		uint8_t hdr[PQ_HEADER_SIZE], type;
		uint32_t len;
		const uint8_t *msg;
		/* a copy of the message body: replies may recurse, the input buffer moves */
		uint8_t body[ADMIN_QUERY_MAX];
		size_t blen;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (pq_read_header(hdr, sizeof(hdr), &type, &len, ADMIN_QUERY_MAX) != PQ_OK) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
					  "invalid message length %u on the admin console (at most %d)",
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
		if (strchr("QPBDECHS", type) == NULL || type == '\0') {
			client_disconnect(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
					  "the admin console does not support %s messages",
					  pq_msg_name(type, false));
			return;
		}
		blen = len - 4;
		memcpy(body, msg + PQ_HEADER_SIZE, blen);
		evbuffer_drain(in, len + 1);
		if (a->ext_skip && type != 'S')
			continue; /* after an error, everything up to Sync is ignored */
		if (type != 'Q') {
			ext_message(c, type, body, blen);
			continue;
		}
		if (blen == 0 || body[blen - 1] != '\0') {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Query message");
			return;
		}
		a->in_run = true;
		admin_run(c, (const char *)body, strlen((const char *)body));
		if (c->kind_data)
			((struct admin_session *)c->kind_data)->in_run = false;
		if (c->state == CL_ACTIVE && !admin_busy(c))
			send_ready(c);
	}
}

static void admin_client_start(struct client *c)
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
		client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
				  "user \"%s\" is not allowed to use the admin console: only admin_users may",
				  c->user);
		return;
	}
	pq_buf_init(&b);
	pq_build_auth(&b, PQ_AUTH_OK, NULL, 0);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		pq_build_param_status(&b, params[i][0], params[i][1]);
	pq_build_backend_key(&b, 0, 0);
	pq_build_ready(&b, 'I');
	if (b.failed || !admin_send(c, b.data, b.len)) {
		pq_buf_free(&b);
		client_close(c, "could not send");
		return;
	}
	pq_buf_free(&b);
	c->kind_data = calloc(1, sizeof(struct admin_session));
	if (c->kind_data == NULL) {
		client_close(c, "out of memory");
		return;
	}
	client_set_state(c, CL_ACTIVE);
	log_info("admin %s: %s logged in to the admin console", c->addr, c->user);
	if (sock_in_len(&c->sock) > 0)
		admin_handle_input(c);
}

static const struct client_kind admin_kind = {
	.name = "admin console",
	.always_password = true,
	.logged_in = admin_client_start,
	.input = admin_handle_input,
	.freed = admin_client_free,
};

const struct client_kind *admin_client_kind(void)
{
	return &admin_kind;
}

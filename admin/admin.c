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
#include <event2/bufferevent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_cmd.h"
#include "protocol/pq.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/version.h"

/* Admin queries are short; a longer one is refused. */
#define ADMIN_QUERY_MAX 8192

bool admin_init(char *errbuf, size_t errlen)
{
	(void)errbuf;
	(void)errlen;
	return true;
}

void admin_shutdown(void)
{
}

void admin_client_free(struct client *c)
{
	(void)c;
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
		vals[2] = "running";
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
	const char *vals[7];
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
	rs_row(rs, vals);
}

static void show_clients(struct client *c)
{
	static const char *const cols[] = {"user",        "database",    "state", "addr",
					   "connected_s", "backend_pid", "type"};
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, 7, cols);
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
	static const char *const cols[] = {"user",  "database",    "side",  "state",
					   "addr",  "backend_pid", "client"};
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	rs_begin(&rs, 7, cols);
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
					const char *vals[7];

					snprintf(addr, sizeof(addr), "%s:%d", a->host, a->port);
					snprintf(pid, sizeof(pid), "%u", (unsigned)s->be_pid);
					vals[0] = pool->user;
					vals[1] = db->name;
					vals[2] = side_name(s->side);
					vals[3] = server_state_name(s->state);
					vals[4] = addr;
					vals[5] = pid;
					vals[6] = s->client ? s->client->addr : NULL;
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
	}
}

void admin_handle_input(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (c->state == CL_ACTIVE) {
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
			/* the query text without its terminator */
			size_t qlen = len - 4;
			const char *q = (const char *)msg + PQ_HEADER_SIZE;

			if (qlen == 0 || q[qlen - 1] != '\0') {
				client_disconnect(c, "08P01", "invalid Query message");
				return;
			}
			admin_run(c, q, strlen(q));
		}
		evbuffer_drain(in, len + 1);
		if (c->state == CL_ACTIVE)
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
	client_set_state(c, CL_ACTIVE);
	log_info("admin %s: %s logged in to the admin console", c->addr, c->user);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		admin_handle_input(c);
}

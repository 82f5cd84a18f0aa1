/*
 * show.c - the admin console's SHOW views answered at once, and KILL (see
 * show.h).  Every view walks the runtime's lists (rt.databases, their pools,
 * rt.login_clients, rt.kind_clients) or the switch history and sends one
 * result set; all columns are text.
 */
#include "admin/show.h"

#include <inttypes.h>
#include <stdio.h>

#include "admin/cutover/cutover.h"
#include "admin/resultset.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/auth/userlist.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/core/version.h"
#include "proxy/database.h"
#include "proxy/io/sock_tls.h"
#include "proxy/listen_client.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

/* ---- switches: SHOW SWITCHES and the reply of SWITCH ---- */

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
	"fence_ms",
	"replication_ms",
	"prepare_ms",
	"instances",
	"instances_acked",
};
#define SWITCH_NCOLS 18

void admin_switch_begin(struct admin_rs *rs)
{
	admin_rs_begin(rs, SWITCH_NCOLS, switch_cols);
}

void admin_switch_row(struct admin_rs *rs, const struct switch_record *r)
{
	char v[12][24];
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
	snprintf(v[7], 24, "%" PRId64, r->ms_fence);
	snprintf(v[8], 24, "%" PRId64, r->ms_replication);
	vals[13] = v[7];
	vals[14] = v[8];
	snprintf(v[9], 24, "%" PRId64, r->ms_prepare);
	vals[15] = v[9];
	snprintf(v[10], 24, "%d", r->instances);
	snprintf(v[11], 24, "%d", r->instances_acked);
	vals[16] = v[10];
	vals[17] = v[11];
	admin_rs_row(rs, vals);
}

/* ---- the views ---- */

/* host:port/dbname of a side, for SHOW DATABASES. */
static void addr_text(const struct backend_addr *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d/%s", a->host, a->port, a->dbname ? a->dbname : "");
}

/* The length of a list (the pools keep no counts of most of theirs). */
static int count_list(const struct list_node *head)
{
	const struct list_node *n;
	int k = 0;

	list_for_each(n, head)
		k++;
	return k;
}

/*
 * The first eight columns are pgcutover's own; the rest are those of
 * PgBouncer's SHOW DATABASES, with its meanings, for the tools that read
 * them (prometheus-pgbouncer-exporter takes database, pool_size and
 * reserve_pool): host, port and database are the side routed to now.
 */
static const char *const databases_cols[] = {
	"name",
	"route",
	"state",
	"source",
	"target",
	"clients",
	"waiting_clients",
	"servers",
	"host",
	"port",
	"database",
	"force_user",
	"pool_size",
	"min_pool_size",
	"reserve_pool",
	"pool_mode",
	"max_connections",
	"current_connections",
	"paused",
	"disabled",
};

/* One database as a row of SHOW DATABASES. */
static void database_row(struct admin_rs *rs, struct database *db)
{
	struct list_node *p;
	const struct backend_addr *now = &db->addr[db->route];
	char src[300], tgt[300], v[7][16];
	int clients = 0, waiting = 0, servers = 0;
	const char *vals[ADMIN_NCOLS(databases_cols)];

	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		clients += pool->nclients;
		waiting += pool_waiting_clients(pool);
		servers += pool->nservers;
	}
	addr_text(&db->addr[SIDE_SOURCE], src, sizeof(src));
	addr_text(&db->addr[SIDE_TARGET], tgt, sizeof(tgt));
	snprintf(v[0], 16, "%d", clients);
	snprintf(v[1], 16, "%d", waiting);
	snprintf(v[2], 16, "%d", servers);
	snprintf(v[3], 16, "%d", now->port);
	snprintf(v[4], 16, "%d", db->pool_size);
	snprintf(v[5], 16, "%d", db->cfg ? db->cfg->d.max_db_connections : 0);
	snprintf(v[6], 16, "%d", db_paused(db) ? 1 : 0);
	vals[0] = db->name;
	vals[1] = route_side_name(db->route);
	vals[2] = cutover_running(db) ? "switching" : db_paused(db) ? "paused" : "running";
	vals[3] = src;
	vals[4] = tgt;
	vals[5] = v[0];
	vals[6] = v[1];
	vals[7] = v[2];
	/* PgBouncer's columns */
	vals[8] = now->host;
	vals[9] = v[3];
	vals[10] = now->dbname ? now->dbname : db->name;
	vals[11] = now->user ? now->user : db->cfg && db->cfg->user ? db->cfg->user : NULL;
	vals[12] = v[4];
	vals[13] = "0"; /* no minimum: servers open on demand */
	vals[14] = "0"; /* no reserve pool */
	vals[15] = config_pool_mode_name((enum pool_mode)db->pool_mode);
	vals[16] = v[5];
	vals[17] = v[2];
	vals[18] = v[6];
	vals[19] = "0"; /* a database is never disabled; a removed one is not listed */
	admin_rs_row(rs, vals);
}

void admin_show_databases(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n;

	admin_rs_begin(&rs, ADMIN_NCOLS(databases_cols), databases_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (!db->removed)
			database_row(&rs, db);
	}
	admin_rs_send(c, &rs);
}

static const char *const pools_cols[] = {
	"database",  "user",    "cl_active", "cl_waiting", "cl_idle",
	"sv_active", "sv_idle", "sv_login",  "pool_mode",  "pool_size",
};

void admin_show_pools(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p;

	admin_rs_begin(&rs, ADMIN_NCOLS(pools_cols), pools_cols);
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
			admin_rs_row(&rs, vals);
		}
	}
	admin_rs_send(c, &rs);
}

/* One client as a row of SHOW CLIENTS. */
static void client_row(struct admin_rs *rs, struct client *cl)
{
	char since[32], pid[16], nstmts[16], nlisten[16];
	const char *vals[11];
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
	/* transaction pooling: the channels pgcutover's listener listens on for it */
	snprintf(nlisten, sizeof(nlisten), "%u", (unsigned)listen_client_nchannels(cl));
	vals[10] = cl->kind == NULL && cl->db && cl->db->pool_mode == POOL_TRANSACTION ? nlisten
										       : NULL;
	admin_rs_row(rs, vals);
}

static const char *const clients_cols[] = {
	"user",
	"database",
	"state",
	"addr",
	"connected_s",
	"backend_pid",
	"type",
	"tls",
	"prepared_statements",
	"movable",
	"listen_channels",
};

void admin_show_clients(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	admin_rs_begin(&rs, ADMIN_NCOLS(clients_cols), clients_cols);
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
	admin_rs_send(c, &rs);
}

static const char *const servers_cols[] = {
	"user", "database", "side", "state", "addr", "backend_pid", "client", "tls",
};

void admin_show_servers(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p, *m;

	admin_rs_begin(&rs, ADMIN_NCOLS(servers_cols), servers_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			struct list_node *lists[4] = {&pool->active_servers, &pool->idle_servers,
						      &pool->new_servers, &pool->listen_servers};

			for (int i = 0; i < 4; i++) {
				list_for_each(m, lists[i]) {
					struct server *s = list_entry(m, struct server, node);
					const struct backend_addr *a = &s->addr;
					char addr[300], pid[16];
					const char *vals[8];

					snprintf(addr, sizeof(addr), "%s:%d", a->host, a->port);
					snprintf(pid, sizeof(pid), "%u", (unsigned)s->be_pid);
					vals[0] = pool->user;
					vals[1] = db->name;
					vals[2] = route_side_name(s->side);
					vals[3] = server_state_name(s->state);
					vals[4] = addr;
					vals[5] = pid;
					vals[6] = s->client ? s->client->addr : NULL;
					vals[7] = sock_tls_version(&s->sock);
					admin_rs_row(&rs, vals);
				}
			}
		}
	}
	admin_rs_send(c, &rs);
}

/*
 * The first seven columns are pgcutover's own; total_xact_time and
 * total_query_time are PgBouncer's, and total_requests is the name
 * PgBouncer gave total_query_count before 1.8, which
 * prometheus-pgbouncer-exporter still reads.
 */
static const char *const stats_cols[] = {
	"database",         "total_xact_count", "total_query_count", "total_received",
	"total_sent",       "avg_xact_time_us", "avg_query_time_us", "total_xact_time",
	"total_query_time", "total_requests",
};

void admin_show_stats(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n;

	admin_rs_begin(&rs, ADMIN_NCOLS(stats_cols), stats_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct db_stats *st = &db->stats;
		char v[9][24];
		const char *vals[ADMIN_NCOLS(stats_cols)];

		snprintf(v[0], 24, "%" PRIu64, st->xact_count);
		snprintf(v[1], 24, "%" PRIu64, st->query_count);
		snprintf(v[2], 24, "%" PRIu64, st->bytes_in);
		snprintf(v[3], 24, "%" PRIu64, st->bytes_out);
		snprintf(v[4], 24, "%" PRIu64,
			 st->xact_count ? st->xact_time_us / st->xact_count : 0);
		snprintf(v[5], 24, "%" PRIu64,
			 st->query_count ? st->query_time_us / st->query_count : 0);
		snprintf(v[6], 24, "%" PRIu64, st->xact_time_us);
		snprintf(v[7], 24, "%" PRIu64, st->query_time_us);
		snprintf(v[8], 24, "%" PRIu64, st->query_count);
		vals[0] = db->name;
		for (int i = 0; i < 9; i++)
			vals[1 + i] = v[i];
		admin_rs_row(&rs, vals);
	}
	admin_rs_send(c, &rs);
}

static const char *const lists_cols[] = {
	"list",
	"items",
};

/*
 * PgBouncer's SHOW LISTS, row for row, so that its exporters find every
 * name they ask for.  pgcutover keeps no free lists of client or server
 * objects and no DNS cache (evdns asks every time), so those rows are 0.
 */
void admin_show_lists(struct client *c)
{
	struct admin_rs rs;
	struct list_node *n, *p;
	int databases = 0, pools = 0, login = 0, servers = 0;
	char v[6][24];

	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (!db->removed)
			databases++;
		list_for_each(p, &db->pools) {
			pools++;
			servers += list_entry(p, struct pool, node)->nservers;
		}
	}
	list_for_each(n, &rt.login_clients)
		login++;
	snprintf(v[0], 24, "%d", databases);
	snprintf(v[1], 24, "%zu", rt.users ? userlist_count(rt.users) : (size_t)0);
	snprintf(v[2], 24, "%d", pools);
	snprintf(v[3], 24, "%d", rt.nclients);
	snprintf(v[4], 24, "%d", login);
	snprintf(v[5], 24, "%d", servers);
	{
		const char *rows[][2] = {
			{"databases", v[0]},   {"users", v[1]},        {"pools", v[2]},
			{"free_clients", "0"}, {"used_clients", v[3]}, {"login_clients", v[4]},
			{"free_servers", "0"}, {"used_servers", v[5]}, {"dns_names", "0"},
			{"dns_zones", "0"},    {"dns_queries", "0"},   {"dns_pending", "0"},
		};

		admin_rs_begin(&rs, ADMIN_NCOLS(lists_cols), lists_cols);
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			admin_rs_row(&rs, rows[i]);
	}
	admin_rs_send(c, &rs);
}

/* config_dump()'s callback: one key as a row of SHOW CONFIG. */
static void config_row(void *arg, const char *key, const char *value)
{
	const char *vals[2] = {key, value};

	admin_rs_row(arg, vals);
}

static const char *const config_cols[] = {
	"key",
	"value",
};

void admin_show_config(struct client *c)
{
	struct admin_rs rs;

	admin_rs_begin(&rs, ADMIN_NCOLS(config_cols), config_cols);
	config_dump(rt.cfg, config_row, &rs);
	admin_rs_send(c, &rs);
}

static const char *const help_cols[] = {
	"command",
	"description",
};

void admin_show_help(struct client *c)
{
	struct admin_rs rs;

	admin_rs_begin(&rs, ADMIN_NCOLS(help_cols), help_cols);
	for (int i = 0; admin_cmd_help[i][0]; i++)
		admin_rs_row(&rs, admin_cmd_help[i]);
	admin_rs_send(c, &rs);
}

static const char *const version_cols[] = {
	"version",
};

void admin_show_version(struct client *c)
{
	const char *vals[1] = {"pgcutover " PGCUTOVER_VERSION};
	struct admin_rs rs;

	admin_rs_begin(&rs, ADMIN_NCOLS(version_cols), version_cols);
	admin_rs_row(&rs, vals);
	admin_rs_send(c, &rs);
}

void admin_kill(struct client *c, const char *name)
{
	struct database *db = db_find(name);
	struct list_node *p, *m, *tmp;

	if (db == NULL) {
		admin_send_no_db(c, name);
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
	admin_send_tag(c, "KILL");
}

void admin_show_switches(struct client *c)
{
	struct admin_rs rs;
	const struct switch_record *h;
	int n;
	struct list_node *m;

	admin_switch_begin(&rs);
	h = cutover_history(&n);
	for (int i = 0; i < n; i++)
		admin_switch_row(&rs, &h[i]);
	list_for_each(m, &rt.databases) {
		const struct switch_record *r =
			cutover_running(list_entry(m, struct database, node));

		if (r)
			admin_switch_row(&rs, r);
	}
	admin_rs_send(c, &rs);
}

bool admin_show_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
#define COLS(a)                          \
	do {                             \
		*ncols = ADMIN_NCOLS(a); \
		*cols = (a);             \
		return true;             \
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
	case ADMIN_CMD_SHOW_LISTS:
		COLS(lists_cols);
	case ADMIN_CMD_SHOW_CONFIG:
		COLS(config_cols);
	case ADMIN_CMD_SHOW_SWITCHES:
	case ADMIN_CMD_SWITCH:
		COLS(switch_cols);
	default:
		return false;
	}
#undef COLS
}

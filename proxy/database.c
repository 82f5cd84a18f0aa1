/*
 * database.c - the logical databases: one per [database "name"] section,
 * each routed to its source or its target.  Created and refreshed from the
 * configuration (a reload that moves a side retires the servers at the old
 * address), held and released for PAUSE and SWITCH, and the API through
 * which a switch checks and moves a database's sessions.
 */
#include "proxy/database.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/listen.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/relocate.h"
#include "proxy/server.h"
#include "proxy/shadow.h"
#include "proxy/switch_gap.h"

struct database *db_find(const char *name)
{
	struct list_node *n;

	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (!db->removed && strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

static struct database *find_any_db(const char *name)
{
	struct list_node *n;

	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

/*
 * A reload moved one side of a database elsewhere: its idle servers close
 * now, busy ones when they are released (server_current() fails for them),
 * and what the old servers reported at login no longer welcomes clients.
 */
static void retire_side(struct database *db, enum route_side side)
{
	struct list_node *p, *m, *tmp;

	db->addr_gen[side]++;
	log_info("database %s: its %s is now %s:%d/%s; server connections to the old address are retired",
		 db->name, route_side_name(side), db->addr[side].host, db->addr[side].port,
		 db->addr[side].dbname ? db->addr[side].dbname : db->name);
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		pool_forget_welcomes(pool, side);
		list_for_each_safe(m, tmp, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (!server_current(s))
				server_close(s, "its address changed in a reload");
		}
		/* a listener there reconnects to the new address */
		if (pool->listener && side == db->route)
			listen_reopen(pool->listener);
	}
}

/* strcmp() that takes NULL as the empty value. */
static bool same_text(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * The keys a running switch depends on, where the new section differs from
 * the one the database runs with: their names, comma-separated, in 'keys'.
 * False when none differs.
 */
static bool switch_keys_differ(const struct db_config *a, const struct db_config *b, char *keys,
			       size_t len)
{
	struct {
		const char *name;
		bool same;
	} k[] = {
		{"source", same_text(a->source, b->source)},
		{"target", same_text(a->target, b->target)},
		{"replication_slot", same_text(a->replication_slot, b->replication_slot)},
		{"lag_method", a->d.lag_method == b->d.lag_method},
		{"marker_table", same_text(a->d.marker_table, b->d.marker_table)},
		{"sequence_sync", same_text(a->d.sequence_sync, b->d.sequence_sync)},
		{"sequence_margin", a->d.sequence_margin == b->d.sequence_margin},
	};
	size_t used = 0;

	keys[0] = '\0';
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		int n;

		if (k[i].same)
			continue;
		n = snprintf(keys + used, len - used, "%s%s", used ? ", " : "", k[i].name);
		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
	}
	return used > 0;
}

/* Append a database whose switch keeps its settings to the refusal message. */
/* Told of each database a reload adds (db_set_added_hook). */
static void (*added_hook)(struct database *db);

void db_set_added_hook(void (*hook)(struct database *db))
{
	added_hook = hook;
}

static void note_refused(char *refused, size_t len, const char *db, const char *keys)
{
	size_t used = strlen(refused);

	snprintf(refused + used, len - used,
		 "%sdatabase \"%s\" is switching: %s keep%s their old values until a RELOAD after the switch",
		 used ? "; " : "", db, keys, strchr(keys, ',') ? "" : "s");
}

bool db_apply_config(char *errbuf, size_t errlen, char *refused, size_t refusedlen)
{
	const struct config *cfg = rt.cfg;
	struct backend_addr(*addrs)[2];
	enum route_side *routes;
	struct route_state *recorded; /* what the route files say, for databases seen first */
	struct list_node *n;

	/* a database in the middle of a switch cannot go away under it */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->busy && config_find_db(cfg, db->name) == NULL) {
			snprintf(errbuf, errlen,
				 "database \"%s\" is switching and cannot be removed now", db->name);
			return false;
		}
	}
	/* parse every conninfo first, so a bad one changes nothing */
	addrs = calloc(cfg->ndbs ? cfg->ndbs : 1, sizeof(*addrs));
	if (addrs == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	routes = calloc(cfg->ndbs ? cfg->ndbs : 1, sizeof(*routes));
	recorded = calloc(cfg->ndbs ? cfg->ndbs : 1, sizeof(*recorded));
	if (routes == NULL || recorded == NULL) {
		free(routes);
		free(recorded);
		free(addrs);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < cfg->ndbs; i++) {
		char e[512];
		struct route_state st;
		bool found = false;

		/* a database seen for the first time starts where its route file says */
		routes[i] = SIDE_SOURCE;
		memset(&recorded[i], 0, sizeof(recorded[i]));
		recorded[i].side = SIDE_SOURCE;
		if (find_any_db(cfg->dbs[i].name) == NULL) {
			if (!route_load(cfg->state_dir, cfg->dbs[i].name, &st, &found, e,
					sizeof(e))) {
				snprintf(errbuf, errlen, "%s", e);
				for (size_t j = 0; j < i; j++) {
					conninfo_free_addr(&addrs[j][SIDE_SOURCE]);
					conninfo_free_addr(&addrs[j][SIDE_TARGET]);
				}
				free(addrs);
				free(routes);
				free(recorded);
				return false;
			}
			if (found) {
				routes[i] = st.side;
				recorded[i] = st;
				log_info("database %s: routed to its %s by %s/%s.route (switched at %s)",
					 cfg->dbs[i].name, route_side_name(st.side), cfg->state_dir,
					 cfg->dbs[i].name,
					 st.switched_at[0] ? st.switched_at : "an unknown time");
			}
		}
		if (!conninfo_parse(cfg->dbs[i].source, &addrs[i][SIDE_SOURCE], e, sizeof(e)) ||
		    !conninfo_parse(cfg->dbs[i].target, &addrs[i][SIDE_TARGET], e, sizeof(e))) {
			snprintf(errbuf, errlen, "database \"%s\": %s", cfg->dbs[i].name, e);
			free(routes);
			free(recorded);
			for (size_t j = 0; j <= i; j++) {
				conninfo_free_addr(&addrs[j][SIDE_SOURCE]);
				conninfo_free_addr(&addrs[j][SIDE_TARGET]);
			}
			free(addrs);
			return false;
		}
	}
	refused[0] = '\0';
	/* sections that went away: existing sessions go on, new clients are refused */
	list_for_each(n, &rt.databases)
		list_entry(n, struct database, node)->removed = true;
	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_config *dc = &cfg->dbs[i];
		struct database *db = find_any_db(dc->name);
		bool changed[2] = {false, false};
		char keys[160];

		if (db && db->busy && db->cfg &&
		    switch_keys_differ(db->cfg, dc, keys, sizeof(keys))) {
			/*
			 * A switch runs on this database: what it depends on may not
			 * change under it, so the database keeps its whole section (and
			 * the config it lives in) until a RELOAD after the switch.
			 */
			db->removed = false;
			note_refused(refused, refusedlen, db->name, keys);
			conninfo_free_addr(&addrs[i][SIDE_SOURCE]);
			conninfo_free_addr(&addrs[i][SIDE_TARGET]);
			continue;
		}
		if (db == NULL) {
			db = calloc(1, sizeof(*db));
			if (db == NULL || (db->name = strdup(dc->name)) == NULL) {
				free(db);
				snprintf(errbuf, errlen, "out of memory");
				conninfo_free_addr(&addrs[i][SIDE_SOURCE]);
				conninfo_free_addr(&addrs[i][SIDE_TARGET]);
				continue;
			}
			list_init(&db->pools);
			db->added = true;
			db->route = routes[i];
			db->recorded = recorded[i];
			list_append(&rt.databases, &db->node);
		} else {
			for (int side = 0; side < 2; side++) {
				if (!conninfo_addr_equal(&db->addr[side], &addrs[i][side]))
					changed[side] = true;
				conninfo_free_addr(&db->addr[side]);
			}
		}
		db->addr[SIDE_SOURCE] = addrs[i][SIDE_SOURCE];
		db->addr[SIDE_TARGET] = addrs[i][SIDE_TARGET];
		for (int side = 0; side < 2; side++)
			if (changed[side])
				retire_side(db, (enum route_side)side);
		db->cfg = dc;
		config_free(db->cfg_owner);
		db->cfg_owner = config_ref(rt.cfg);
		db->removed = false;
		db->pool_size = dc->d.pool_size;
		db->pool_mode = dc->d.pool_mode;
		db->shadow_rate = dc->d.shadow;
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->removed) {
			db->cfg = NULL;
			config_free(db->cfg_owner);
			db->cfg_owner = NULL;
		}
	}
	free(addrs);
	free(routes);
	free(recorded);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->added) {
			db->added = false;
			if (added_hook && db->cfg)
				added_hook(db);
		}
	}
	/* a larger pool may serve waiting clients now */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct list_node *p;

		list_for_each(p, &db->pools)
			pool_service(list_entry(p, struct pool, node));
	}
	return true;
}

int db_in_flight(const struct database *db)
{
	const struct list_node *p, *m;
	int n = 0;

	list_for_each(p, &db->pools) {
		const struct pool *pool = list_entry(p, struct pool, node);

		list_for_each(m, &pool->active_servers) {
			const struct server *s = list_entry(m, struct server, node);

			/*
			 * an internal query (session check) is pgcutover's own, not a
			 * transaction; a hand-over of LISTENs finishes its client's
			 */
			if (s->listen_flow || (!server_at_boundary(s) && s->internal_cb == NULL))
				n++;
		}
	}
	return n;
}

/* The cutover engine's ear (db_set_progress_hook). */
static void (*progress_hook)(struct database *db);

void db_set_progress_hook(void (*hook)(struct database *db))
{
	progress_hook = hook;
}

void db_note_progress(struct database *db)
{
	if (db_paused(db) && progress_hook)
		progress_hook(db);
}

void db_hold(struct database *db, unsigned why)
{
	if ((why & DB_HOLD_SWITCH) && !(db->holds & DB_HOLD_SWITCH))
		db_gap_reset(db);
	db->holds |= why;
}

/*
 * A switch releases db on its new side: count every client it held
 * (switch_gap.h) before any of them is released, so that none can finish
 * the count early.
 */
static void db_gap_mark_held(struct database *db)
{
	struct list_node *p, *m;

	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);
		const struct list_node *lists[3] = {&pool->waiting_clients, &pool->active_clients,
						    &pool->idle_clients};

		for (int i = 0; i < 3; i++) {
			list_for_each(m, lists[i]) {
				struct client *c = list_entry(m, struct client, node);

				/* a request is waiting (a LISTEN session waiting for a server has none) */
				if ((c->held || c->state == CL_IDLE) && sock_in_len(&c->sock) > 0)
					db_gap_mark(c);
			}
		}
	}
}

/* Release held clients: forward what they sent meanwhile. */
static void db_resume(struct database *db)
{
	struct list_node *p, *m, *tmp;

	if (db->gap.armed)
		db_gap_mark_held(db);
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		/* session pooling: clients held at a boundary with their server */
		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->held) {
				c->held = false;
				client_forward(c);
			}
		}
		/* clients without a server that sent something meanwhile */
		list_for_each_safe(m, tmp, &pool->idle_clients) {
			struct client *c = list_entry(m, struct client, node);

			log_debug("client %s: resumed (idle, %zu bytes pending)", c->addr,
				  sock_in_len(&c->sock));
			c->held = false;
			client_request_server(c);
		}
		pool_service(pool);
	}
	db_gap_armed_done(db);
}

void db_release(struct database *db, unsigned why)
{
	db->holds &= ~why;
	if (!db_paused(db))
		db_resume(db);
}

/* ---- sessions at a switch ---- */

static void db_check_done(struct client *c, void *arg)
{
	struct database *db = arg;
	void (*done)(void *) = db->checks.done;

	(void)c;
	if (--db->checks.pending > 0 || done == NULL)
		return;
	db->checks.done = NULL;
	done(db->checks.arg);
}

size_t db_server_pids(const struct database *db, enum route_side side, uint32_t *out, size_t max)
{
	const struct list_node *p, *m;
	size_t n = 0;

	list_for_each(p, &db->pools) {
		const struct pool *pool = list_entry(p, struct pool, node);
		const struct list_node *lists[3] = {&pool->active_servers, &pool->idle_servers,
						    &pool->new_servers};

		for (int i = 0; i < 3; i++) {
			list_for_each(m, lists[i]) {
				const struct server *s = list_entry(m, struct server, node);

				if (s->side == side && s->be_pid != 0 && n < max)
					out[n++] = s->be_pid;
			}
		}
		/* the pool's listener (transaction pooling's LISTEN) is pgcutover's own too */
		if (pool->listener)
			n += listen_server_pids(pool->listener, side, out + n, max - n);
	}
	/* and those shadow reads replay on */
	return n + shadow_server_pids(db, side, out + n, max - n);
}

size_t db_server_count(const struct database *db)
{
	const struct list_node *p;
	size_t n = 0;

	list_for_each(p, &db->pools) {
		const struct pool *pool = list_entry(p, const struct pool, node);

		n += (size_t)pool->nservers;
		if (pool->listener) /* its connections are not in nservers */
			n += LISTEN_CONNS;
	}
	return n + shadow_server_count(db);
}

int db_check_sessions(struct database *db, enum route_side side, void (*done)(void *arg), void *arg)
{
	struct list_node *p, *m, *tmp;

	db->checks.done = done;
	db->checks.arg = arg;
	db->checks.pending = 1; /* every check counted in before any can answer */
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		/* listeners get ready on the other side meanwhile (listen.h) */
		if (pool->listener)
			listen_prepare_move(pool->listener,
					    side == SIDE_SOURCE ? SIDE_TARGET : SIDE_SOURCE);

		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			/*
			 * Only sessions with a transaction waiting are checked in the
			 * pause; idle ones move after the resume (relocate.h), so that
			 * thousands of idle sessions cost the pause nothing.
			 */
			if (c->server == NULL || c->server->side != side || !c->held)
				continue;
			db->checks.pending++;
			if (!client_check_movable(c, db_check_done, db))
				db->checks.pending--;
		}
	}
	if (--db->checks.pending == 0)
		db->checks.done = NULL;
	return db->checks.pending;
}

void db_cancel_checks(struct database *db)
{
	struct list_node *p, *m;

	db->checks.done = NULL;
	db->checks.arg = NULL;
	db->checks.pending = 0;
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		if (pool->listener)
			listen_cancel_move(pool->listener);

		list_for_each(m, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->move_done == db_check_done) {
				c->move_done = NULL;
				c->move_arg = NULL;
			}
			if (c->move != MOVE_CHECKING || c->check_deferred) {
				c->check_deferred = false;
				c->move = MOVE_UNKNOWN;
			}
		}
	}
}

void db_move_sessions(struct database *db, int *moved, int *closed)
{
	struct list_node *p, *m, *tmp;

	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		/* sessions without a server move by themselves (counted before the moves add to them) */
		*moved += list_count(&pool->idle_clients) + list_count(&pool->waiting_clients);
		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->server && c->server->side == db->route)
				continue;
			/* not checked in the pause (idle): it moves after the resume (relocate.h) */
			if (c->server && c->move == MOVE_UNKNOWN)
				continue;
			if (client_apply_move(c))
				(*moved)++;
			else
				(*closed)++;
		}
		/* the old side's idle servers go now; busy ones go when released */
		list_for_each_safe(m, tmp, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (s->side != db->route)
				server_close(s, "the database switched sides");
		}
		/*
		 * its listener takes over on the new side; until it listens there,
		 * the database stays held, so that no notification is sent there
		 * before it can be received
		 */
		if (pool->listener && !listen_finish_move(pool->listener)) {
			if (db->listen_moves++ == 0)
				db_hold(db, DB_HOLD_LISTEN);
		}
	}
}

void db_listener_moved(struct database *db)
{
	if (db->listen_moves > 0 && --db->listen_moves == 0)
		db_release(db, DB_HOLD_LISTEN);
}

int db_max_connections(const struct database *db)
{
	/* a database dropped from the config keeps the [pgcutover] default */
	return db->cfg ? db->cfg->d.max_db_connections : rt.cfg->defaults.max_db_connections;
}

void db_free_all(void)
{
	struct list_node *n, *tmp, *p, *ptmp;

	db_relocate_free();
	list_for_each_safe(n, tmp, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each_safe(p, ptmp, &db->pools)
			pool_free(list_entry(p, struct pool, node));
		list_remove(&db->node);
		conninfo_free_addr(&db->addr[SIDE_SOURCE]);
		conninfo_free_addr(&db->addr[SIDE_TARGET]);
		config_free(db->cfg_owner);
		free(db->name);
		free(db);
	}
}

/*
 * pool.c - databases, pools, and the matching of clients with servers.
 *
 * A server connection carries the startup parameters it was opened with (its
 * fingerprint).  It is handed only to a client whose startup parameters are
 * the same, so a client's session always starts exactly as if it had
 * connected directly: RESET of any startup setting returns the client's own
 * value.  When the pool is full and the only idle servers were opened for
 * other parameters, one of them is closed and a new one opened.
 *
 * Opening a server is also bounded by max_db_connections (per database,
 * across its users' pools) and max_user_connections (per user, across
 * databases): above them an idle server of another pool that counts
 * against the same limit is closed to make room, as PgBouncer does, or the
 * client waits until a server frees up; and by server_login_retry: after a
 * connection error the pool waits before its next attempt.
 */
#include "proxy/pool.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

/* ---- databases ---- */

struct database *pool_find_db(const char *name)
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

static void welcomes_drop_side(struct pool *pool, enum route_side side);

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

		welcomes_drop_side(pool, side);
		list_for_each_safe(m, tmp, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (!server_current(s))
				server_close(s, "its address changed in a reload");
		}
	}
}

bool pool_apply_config(char *errbuf, size_t errlen)
{
	const struct config *cfg = rt.cfg;
	struct backend_addr(*addrs)[2];
	enum route_side *routes;
	struct list_node *n;

	/* a database in the middle of a switch cannot go away under it */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->on_progress_owner && config_find_db(cfg, db->name) == NULL) {
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
	if (routes == NULL) {
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
				return false;
			}
			if (found) {
				routes[i] = st.side;
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
			for (size_t j = 0; j <= i; j++) {
				conninfo_free_addr(&addrs[j][SIDE_SOURCE]);
				conninfo_free_addr(&addrs[j][SIDE_TARGET]);
			}
			free(addrs);
			return false;
		}
	}
	/* sections that went away: existing sessions go on, new clients are refused */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		db->cfg = NULL;
		db->removed = true;
	}
	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_config *dc = &cfg->dbs[i];
		struct database *db = find_any_db(dc->name);
		bool changed[2] = {false, false};

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
			db->route = routes[i];
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
		db->removed = false;
		db->pool_size = dc->d.pool_size;
		db->pool_mode = dc->d.pool_mode;
	}
	free(addrs);
	free(routes);
	/* a larger pool may serve waiting clients now */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct list_node *p;

		list_for_each(p, &db->pools)
			pool_service(list_entry(p, struct pool, node));
	}
	return true;
}

/* ---- pools ---- */

/* server_login_retry is over: try again for the clients still waiting. */
static void pool_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool *pool = arg;
	const struct list_node *n;
	int waiting = 0;

	(void)fd;
	(void)what;
	list_for_each(n, &pool->waiting_clients)
		waiting++;
	if (waiting > 0)
		log_info("pool %s/%s: server_login_retry is over: trying again for %d waiting clients",
			 pool->db->name, pool->user, waiting);
	pool_service(pool);
}

struct pool *pool_get(struct database *db, const char *user)
{
	struct list_node *n;
	struct pool *pool;

	list_for_each(n, &db->pools) {
		pool = list_entry(n, struct pool, node);
		if (strcmp(pool->user, user) == 0)
			return pool;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL || (pool->user = strdup(user)) == NULL ||
	    (pool->retry_timer = evtimer_new(rt.base, pool_retry_cb, pool)) == NULL) {
		if (pool)
			free(pool->user);
		free(pool);
		return NULL;
	}
	pool->db = db;
	list_init(&pool->idle_servers);
	list_init(&pool->active_servers);
	list_init(&pool->new_servers);
	list_init(&pool->waiting_clients);
	list_init(&pool->active_clients);
	list_init(&pool->idle_clients);
	list_append(&db->pools, &pool->node);
	return pool;
}

static void welcome_free(struct pool_welcome *w)
{
	params_snap_put(w->startup);
	params_snap_put(w->params);
	free(w);
}

static void welcomes_drop_side(struct pool *pool, enum route_side side)
{
	struct pool_welcome *w, **pp;

	for (pp = &pool->welcomes; (w = *pp) != NULL;) {
		if (w->side == side) {
			*pp = w->next;
			welcome_free(w);
		} else {
			pp = &w->next;
		}
	}
}

void pool_remember_welcome(struct pool *pool, struct server *s)
{
	struct pool_welcome *w, **pp;
	int n = 0;

	/* a server opened before a reload moved its side speaks for the old address */
	if (!server_current(s))
		return;
	pool->last_error[0] = '\0'; /* the side answers again */
	/* drop an older entry for the same parameters, and the oldest beyond the bound */
	for (pp = &pool->welcomes; (w = *pp) != NULL;) {
		if ((w->side == s->side && w->startup == s->startup) || ++n >= POOL_WELCOME_MAX) {
			*pp = w->next;
			welcome_free(w);
			continue;
		}
		pp = &w->next;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return;
	w->side = s->side;
	w->startup = params_snap_ref(s->startup);
	w->params = params_snap_ref(server_reported(s));
	if (w->params == NULL) {
		welcome_free(w);
		return;
	}
	w->next = pool->welcomes;
	pool->welcomes = w;
}

struct params_snap *pool_find_welcome(const struct pool *pool, const struct client *c)
{
	for (const struct pool_welcome *w = pool->welcomes; w; w = w->next)
		if (w->side == pool->db->route && w->startup == c->startup)
			return w->params;
	return NULL;
}

void pool_request_server(struct client *c)
{
	pool_service(c->pool);
}

static bool same_fp(const struct server *s, const struct client *c)
{
	return s->startup == c->startup;
}

/* The first waiting client whose startup parameters this server was opened with. */
static struct client *first_waiter_for(struct pool *pool, const struct server *s)
{
	struct list_node *n;

	list_for_each(n, &pool->waiting_clients) {
		struct client *c = list_entry(n, struct client, node);

		if (same_fp(s, c))
			return c;
	}
	return NULL;
}

/* Link idle servers to waiting clients; true when it linked one. */
static bool pool_assign_one(struct pool *pool)
{
	struct list_node *n, *tmp;

	/* the common case after every transaction: nobody waits, nothing to walk */
	if (list_empty(&pool->waiting_clients))
		return false;
	list_for_each_safe(n, tmp, &pool->idle_servers) {
		struct server *s = list_entry(n, struct server, node);
		struct client *c;

		if (s->side != pool->db->route)
			continue;
		if (!server_current(s)) {
			/* idle again after a reload moved its side (transaction pooling) */
			server_close(s, "its address changed in a reload");
			continue;
		}
		c = first_waiter_for(pool, s);
		if (c == NULL)
			continue;
		server_link(s, c);
		client_server_ready(c);
		return true;
	}
	return false;
}

/* ---- room for another server ---- */

/* Why a pool may not open another server now. */
enum pool_room {
	ROOM_OK,
	ROOM_POOL_FULL, /* the pool holds pool_size servers */
	ROOM_DB_FULL,   /* its database holds max_db_connections */
	ROOM_USER_FULL, /* its user holds max_user_connections */
};

int pool_db_max_connections(const struct database *db)
{
	/* a database dropped from the config keeps the [pgcutover] default */
	return db->cfg ? db->cfg->d.max_db_connections : rt.cfg->defaults.max_db_connections;
}

/* Servers in any state of every pool of db. */
static int db_nservers(const struct database *db)
{
	const struct list_node *p;
	int n = 0;

	list_for_each(p, &db->pools)
		n += list_entry(p, const struct pool, node)->nservers;
	return n;
}

/* Servers in any state of every pool of this user, over all databases. */
static int user_nservers(const char *user)
{
	const struct list_node *n, *p;
	int count = 0;

	list_for_each(n, &rt.databases) {
		const struct database *db = list_entry(n, const struct database, node);

		list_for_each(p, &db->pools) {
			const struct pool *pool = list_entry(p, const struct pool, node);

			if (strcmp(pool->user, user) == 0)
				count += pool->nservers;
		}
	}
	return count;
}

static enum pool_room pool_room(const struct pool *pool)
{
	int max_db = pool_db_max_connections(pool->db);
	int max_user = rt.cfg->max_user_connections;

	if (pool->nservers >= pool->db->pool_size)
		return ROOM_POOL_FULL;
	if (max_db > 0 && db_nservers(pool->db) >= max_db)
		return ROOM_DB_FULL;
	if (max_user > 0 && user_nservers(pool->user) >= max_user)
		return ROOM_USER_FULL;
	return ROOM_OK;
}

/* Whether closing a server of 'other' makes room of kind 'why' for 'pool'. */
static bool counts_against(const struct pool *pool, const struct pool *other, enum pool_room why)
{
	if (other == pool)
		return true;
	if (why == ROOM_DB_FULL)
		return other->db == pool->db;
	if (why == ROOM_USER_FULL)
		return strcmp(other->user, pool->user) == 0;
	return false;
}

/*
 * The idle server to close so that 'pool' may open one: its own oldest idle
 * server first (nobody waiting in it wants that one: pool_assign_one() ran),
 * else the longest idle of another pool under the same limit.  NULL when
 * there is none: the client waits for a server to free up.
 */
static struct server *room_victim(struct pool *pool, enum pool_room why)
{
	struct server *best = NULL;
	const struct list_node *n, *p;

	if (!list_empty(&pool->idle_servers))
		return list_entry(list_last(&pool->idle_servers), struct server, node);
	if (why == ROOM_POOL_FULL)
		return NULL;
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *other = list_entry(p, struct pool, node);
			struct server *s;

			if (!counts_against(pool, other, why) || list_empty(&other->idle_servers))
				continue;
			/* idle lists are stacks (server_set_state): the last waited longest */
			s = list_entry(list_last(&other->idle_servers), struct server, node);
			if (best == NULL || s->idle_since_us < best->idle_since_us)
				best = s;
		}
	}
	return best;
}

/* Close idle servers until 'pool' may open one; false when it must wait instead. */
static bool pool_make_room(struct pool *pool)
{
	static const char *const why_text[] = {
		[ROOM_POOL_FULL] = "replaced by a server for other startup parameters",
		[ROOM_DB_FULL] = "closed to make room for another user under max_db_connections",
		[ROOM_USER_FULL] =
			"closed to make room for another database under max_user_connections",
	};

	for (;;) {
		enum pool_room why = pool_room(pool);
		struct server *victim;

		if (why == ROOM_OK)
			return true;
		victim = room_victim(pool, why);
		if (victim == NULL) {
			if (why != ROOM_POOL_FULL)
				log_debug("pool %s/%s: waiting for a server to free up (%s reached)",
					  pool->db->name, pool->user,
					  why == ROOM_DB_FULL ? "max_db_connections"
							      : "max_user_connections");
			return false;
		}
		/* one fewer server each time round: this ends; an idle server is at a boundary */
		server_terminate(victim, why_text[why]);
	}
}

/*
 * Open servers for the clients still waiting: each waiting client is covered
 * by a server that is being opened or reset for its parameters, or gets a new
 * one while there is room (pool_make_room()).  Nothing is opened while the
 * side waits out server_login_retry.
 */
static void pool_launch_needed(struct pool *pool)
{
	struct list_node *n, *m;
	unsigned gen = ++pool->claim_gen;

	if (pool_retry_pending(pool))
		return;
	list_for_each(n, &pool->waiting_clients) {
		struct client *c = list_entry(n, struct client, node);
		struct server *s = NULL;
		bool covered = false;

		list_for_each(m, &pool->new_servers) {
			s = list_entry(m, struct server, node);
			if (s->claim_gen != gen && same_fp(s, c) && server_current(s)) {
				s->claim_gen = gen;
				covered = true;
				break;
			}
		}
		if (covered)
			continue;
		if (!pool_make_room(pool))
			break;
		s = server_launch(pool, c->startup);
		if (s == NULL) {
			log_error("pool %s/%s: could not open a server connection: out of memory",
				  pool->db->name, pool->user);
			break;
		}
		s->claim_gen = gen;
	}
}

/* One pool_service() pass over one pool. */
static void pool_service_pass(struct pool *pool)
{
	/* a paused database starts no new transaction, so it hands out no server */
	if (rt.exiting || pool_db_paused(pool->db))
		return;
	if (pool->in_service) {
		pool->service_again = true;
		return;
	}
	pool->in_service = true;
	do {
		pool->service_again = false;
		while (pool_assign_one(pool))
			;
		pool_launch_needed(pool);
	} while (pool->service_again);
	pool->in_service = false;
}

/* Nesting of pool_service(): only the outermost call services the siblings. */
static int service_depth;

/*
 * Under max_db_connections or max_user_connections, what frees up in one
 * pool (a server that closes, or turns idle with nobody in its pool waiting)
 * may be what clients of another pool under the same limit wait for: give
 * those pools a pass too.  Only pools with waiting clients, and only when a
 * limit is set, so the common case costs nothing.
 */
static void pool_service_siblings(struct pool *pool)
{
	bool by_db = pool_db_max_connections(pool->db) > 0;
	bool by_user = rt.cfg->max_user_connections > 0;
	struct list_node *n, *p;

	if (!by_db && !by_user)
		return;
	service_depth++;
	if (by_db) {
		list_for_each(p, &pool->db->pools) {
			struct pool *other = list_entry(p, struct pool, node);

			if (other != pool && !list_empty(&other->waiting_clients))
				pool_service_pass(other);
		}
	}
	if (by_user) {
		list_for_each(n, &rt.databases) {
			struct database *db = list_entry(n, struct database, node);

			if (by_db && db == pool->db)
				continue; /* done above */
			list_for_each(p, &db->pools) {
				struct pool *other = list_entry(p, struct pool, node);

				if (other != pool && !list_empty(&other->waiting_clients) &&
				    strcmp(other->user, pool->user) == 0)
					pool_service_pass(other);
			}
		}
	}
	service_depth--;
}

void pool_service(struct pool *pool)
{
	service_depth++;
	pool_service_pass(pool);
	service_depth--;
	if (service_depth == 0 && !rt.exiting)
		pool_service_siblings(pool);
}

void pool_login_failed(struct pool *pool, const struct params_snap *startup, const char *sqlstate,
		       const char *message)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &pool->waiting_clients) {
		struct client *c = list_entry(n, struct client, node);

		if (startup && c->startup == startup)
			client_disconnect(c, sqlstate, "%s", message);
	}
}

void pool_connect_failed(struct pool *pool, enum route_side side, const char *message)
{
	int64_t ms = rt.cfg->server_login_retry_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	snprintf(pool->last_error, sizeof(pool->last_error), "%s", message);
	pool->retry_side = side;
	/* counted from the latest failure */
	evtimer_add(pool->retry_timer, &tv);
}

bool pool_retry_pending(const struct pool *pool)
{
	return pool->retry_side == pool->db->route &&
	       event_pending(pool->retry_timer, EV_TIMEOUT, NULL);
}

int pool_db_in_flight(const struct database *db)
{
	const struct list_node *p, *m;
	int n = 0;

	list_for_each(p, &db->pools) {
		const struct pool *pool = list_entry(p, struct pool, node);

		list_for_each(m, &pool->active_servers) {
			const struct server *s = list_entry(m, struct server, node);

			/* an internal query (session check) is pgcutover's own, not a transaction */
			if (!server_at_boundary(s) && s->internal_cb == NULL)
				n++;
		}
	}
	return n;
}

void pool_note_progress(struct database *db)
{
	if (pool_db_paused(db) && db->on_progress)
		db->on_progress(db);
}

void pool_db_resume(struct database *db)
{
	struct list_node *p, *m, *tmp;

	if (pool_db_paused(db))
		return;
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
}

void pool_free_all(void)
{
	struct list_node *n, *tmp, *p, *ptmp;

	list_for_each_safe(n, tmp, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each_safe(p, ptmp, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);

			list_remove(&pool->node);
			while (pool->welcomes) {
				struct pool_welcome *w = pool->welcomes;

				pool->welcomes = w->next;
				welcome_free(w);
			}
			event_free(pool->retry_timer);
			free(pool->user);
			free(pool);
		}
		list_remove(&db->node);
		conninfo_free_addr(&db->addr[SIDE_SOURCE]);
		conninfo_free_addr(&db->addr[SIDE_TARGET]);
		free(db->name);
		free(db);
	}
}

/*
 * pool.c - the server connection pools of each (database, user), and the
 * matching of clients with servers.
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
#include "proxy/client_forward.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/listen.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

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

/* A new pool of (db, user), on no list; NULL when out of memory. */
static struct pool *pool_alloc(struct database *db, const char *user)
{
	struct pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL || (pool->user = strdup(user)) == NULL ||
	    (pool->retry_timer = evtimer_new(rt.base, pool_retry_cb, pool)) == NULL) {
		if (pool)
			free(pool->user);
		free(pool);
		return NULL;
	}
	pool->db = db;
	list_init(&pool->node);
	list_init(&pool->idle_servers);
	list_init(&pool->active_servers);
	list_init(&pool->new_servers);
	list_init(&pool->listen_servers);
	list_init(&pool->waiting_clients);
	list_init(&pool->active_clients);
	list_init(&pool->idle_clients);
	return pool;
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
	pool = pool_alloc(db, user);
	if (pool)
		list_append(&db->pools, &pool->node);
	return pool;
}

struct pool *pool_new_owned(struct database *db, const char *user, const struct pool_owner *owner,
			    void *arg)
{
	struct pool *pool = pool_alloc(db, user);

	if (pool) {
		pool->owner = owner;
		pool->owner_arg = arg;
	}
	return pool;
}

static void welcome_free(struct pool_welcome *w)
{
	params_snap_put(w->startup);
	params_snap_put(w->params);
	free(w);
}

void pool_forget_welcomes(struct pool *pool, enum route_side side)
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
	int max_db = db_max_connections(pool->db);
	int max_user = rt.cfg->max_user_connections;

	if (pool->nservers >= pool->db->pool_size)
		return ROOM_POOL_FULL;
	if (max_db > 0 && db_nservers(pool->db) >= max_db)
		return ROOM_DB_FULL;
	if (max_user > 0 && user_nservers(pool->user) >= max_user)
		return ROOM_USER_FULL;
	return ROOM_OK;
}

bool pool_can_open(const struct pool *pool)
{
	return pool_room(pool) == ROOM_OK;
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
	if (rt.exiting || db_paused(pool->db))
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
	bool by_db = db_max_connections(pool->db) > 0;
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
	if (pool->owner) {
		pool->owner->service(pool);
		return;
	}
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

	if (pool->owner) {
		pool->owner->login_failed(pool, sqlstate, message);
		return;
	}
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

int pool_waiting_clients(const struct pool *pool)
{
	const struct list_node *m;
	int n = 0;

	list_for_each(m, &pool->waiting_clients)
		n++;
	/* session pooling: a client held at a boundary keeps its server, and waits all the same */
	list_for_each(m, &pool->active_clients)
		if (list_entry(m, struct client, node)->held)
			n++;
	return n;
}

void pool_free(struct pool *pool)
{
	listen_free(pool->listener);
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

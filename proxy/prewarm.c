/*
 * prewarm.c - server connections opened early for a switch, on the side it
 * goes to (see prewarm.h for why and when they serve).
 */
#include "proxy/prewarm.h"

#include <string.h>

#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/server.h"

/* What a client was told of default_transaction_read_only: 1 on, 0 off, -1 unknown. */
static signed char client_ro(const struct client *c)
{
	const char *v =
		c->reported ? params_get(&c->reported->p, "default_transaction_read_only") : NULL;

	return v == NULL ? -1 : strcmp(v, "on") == 0 ? 1 : 0;
}

/* Whether an early server logged in as its client expects (not read-only by a fence). */
static bool prewarm_fit(const struct server *s)
{
	const char *v = params_get(&s->reported, "default_transaction_read_only");

	return v != NULL && s->prewarm_ro >= 0 && (strcmp(v, "on") == 0) == (s->prewarm_ro == 1);
}

/* An early server on 'side' for these startup parameters not promised in pass 'gen' yet. */
static struct server *unclaimed(struct pool *pool, enum route_side side,
				const struct params_snap *startup, unsigned gen)
{
	struct list_node *lists[2] = {&pool->idle_servers, &pool->new_servers};
	struct list_node *m;

	for (int i = 0; i < 2; i++) {
		list_for_each(m, lists[i]) {
			struct server *s = list_entry(m, struct server, node);

			if (s->side == side && s->startup == startup && s->claim_gen != gen) {
				s->claim_gen = gen;
				return s;
			}
		}
	}
	return NULL;
}

/*
 * Room for one more server in the pool: in transaction pooling the old
 * side's idle servers go first (the database is held: nothing runs on them
 * until the resume, after which they would be closed anyway).
 */
static bool make_room(struct pool *pool, enum route_side side)
{
	while (!pool_can_open(pool)) {
		struct server *victim = NULL;
		struct list_node *m;

		list_for_each(m, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (s->side != side)
				victim = s; /* the last one: idle the longest */
		}
		if (victim == NULL)
			return false;
		server_terminate(victim, "closed to make room on the other side for a switch");
	}
	return true;
}

/*
 * One early server for client c, unless one is there for its parameters;
 * false: no room.  Only inside the pause ('evict') are idle servers of the
 * other side closed to make room: before it, they are still serving.
 */
static bool prewarm_one(struct pool *pool, struct client *c, enum route_side side, unsigned gen,
			bool evict, int *opened)
{
	struct server *s;

	if (unclaimed(pool, side, c->startup, gen))
		return true;
	if (evict ? !make_room(pool, side) : !pool_can_open(pool))
		return false;
	s = server_launch_side(pool, c->startup, side);
	if (s == NULL)
		return false;
	s->claim_gen = gen;
	s->prewarmed = true;
	s->prewarm_ro = client_ro(c);
	(*opened)++;
	return true;
}

static int pool_prewarm(struct pool *pool, enum route_side side)
{
	unsigned gen = ++pool->claim_gen;
	struct list_node *m;
	int opened = 0;

	if (pool_retry_pending(pool))
		return 0;
	/* transaction pooling: held clients wait for a server */
	list_for_each(m, &pool->waiting_clients) {
		struct client *c = list_entry(m, struct client, node);

		if (c->state == CL_WAIT && !prewarm_one(pool, c, side, gen, true, &opened))
			return opened;
	}
	/* session pooling: held sessions keep their old server until they move */
	if (pool->db->pool_mode == POOL_SESSION) {
		list_for_each(m, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->held && c->server && c->server->side != side &&
			    !prewarm_one(pool, c, side, gen, true, &opened))
				return opened;
		}
	}
	return opened;
}

int db_prewarm(struct database *db, enum route_side side)
{
	struct list_node *p;
	int opened = 0;

	list_for_each(p, &db->pools)
		opened += pool_prewarm(list_entry(p, struct pool, node), side);
	if (opened > 0)
		log_debug("database %s: %d server connections opening early on the %s", db->name,
			  opened, route_side_name(side));
	return opened;
}

/*
 * Before the pause: one early server per client in a transaction now (on a
 * server of the other side), and per client waiting for one, without
 * closing anything.  These are the clients the pause will most likely hold;
 * their servers log in while the switch prepares, so that the pause does
 * not share the machine with a burst of backend forks (in session pooling,
 * one per session).  The pass at the drain opens what is still missing.
 */
static int pool_prewarm_ahead(struct pool *pool, enum route_side side)
{
	unsigned gen = ++pool->claim_gen;
	struct list_node *m;
	int opened = 0;

	if (pool_retry_pending(pool))
		return 0;
	list_for_each(m, &pool->active_clients) {
		struct client *c = list_entry(m, struct client, node);

		if (c->server == NULL || c->server->side == side || server_at_boundary(c->server))
			continue; /* an idle session moves after the resume, in the background */
		if (!prewarm_one(pool, c, side, gen, false, &opened))
			return opened;
	}
	list_for_each(m, &pool->waiting_clients) {
		struct client *c = list_entry(m, struct client, node);

		if (c->state == CL_WAIT && !prewarm_one(pool, c, side, gen, false, &opened))
			return opened;
	}
	return opened;
}

int db_prewarm_ahead(struct database *db, enum route_side side)
{
	struct list_node *p;
	int opened = 0;

	list_for_each(p, &db->pools)
		opened += pool_prewarm_ahead(list_entry(p, struct pool, node), side);
	if (opened > 0)
		log_debug("database %s: %d server connections opening early on the %s, ahead of "
			  "the pause",
			  db->name, opened, route_side_name(side));
	return opened;
}

void db_prewarm_drop(struct database *db, enum route_side side)
{
	struct list_node *p, *m, *tmp;

	if (db->route == side)
		return;
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);
		struct list_node *lists[2] = {&pool->idle_servers, &pool->new_servers};

		for (int i = 0; i < 2; i++) {
			list_for_each_safe(m, tmp, lists[i]) {
				struct server *s = list_entry(m, struct server, node);

				if (s->prewarmed && s->side == side)
					server_close(s, "the switch it was opened for failed");
			}
		}
	}
}

void db_prewarm_settle(struct database *db)
{
	struct list_node *p, *m, *tmp;

	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		list_for_each_safe(m, tmp, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (s->prewarmed && s->side == db->route && !prewarm_logged_in(s))
				continue; /* unfit: closed */
		}
	}
}

bool prewarm_early(const struct server *s)
{
	return s->prewarmed && s->side != s->pool->db->route;
}

bool prewarm_logged_in(struct server *s)
{
	if (!s->prewarmed || s->side != s->pool->db->route)
		return true;
	s->prewarmed = false;
	if (prewarm_fit(s))
		return true;
	log_info("server %s: opened early for a switch, it logged in read-only (a fence was still up): closed",
		 s->label);
	server_close(s, "opened early while its side was fenced");
	return false;
}

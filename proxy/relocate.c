/*
 * relocate.c - the idle sessions still on the old side after a switch move
 * in the background (see relocate.h).
 */
#include "proxy/relocate.h"

#include <event2/event.h>
#include <stdlib.h>

#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/client_session.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

/* One database's background move. */
struct sweep {
	struct sweep *next;
	struct database *db;
	struct event *tick; /* starts more checks from the loop, never from a callback */
	int inflight;       /* checks running */
	int moved, closed;
	void (*done)(struct database *db, int moved, int closed);
};

static struct sweep *sweeps;

static struct sweep *find_sweep(const struct database *db)
{
	for (struct sweep *sw = sweeps; sw; sw = sw->next)
		if (sw->db == db)
			return sw;
	return NULL;
}

static void sweep_free(struct sweep *sw)
{
	for (struct sweep **pp = &sweeps; *pp; pp = &(*pp)->next) {
		if (*pp == sw) {
			*pp = sw->next;
			break;
		}
	}
	event_free(sw->tick);
	free(sw);
}

/* A session left on the old side that a check may start on now. */
static bool candidate(const struct client *c, const struct database *db)
{
	const struct server *s = c->server;

	return c->state == CL_ACTIVE && s && s->side != db->route && c->move != MOVE_CHECKING &&
	       s->internal_cb == NULL && server_at_boundary(s);
}

static void sweep_schedule(struct sweep *sw)
{
	struct timeval now = {0, 0};

	evtimer_add(sw->tick, &now);
}

/* A check answered: move or close the session, as the resume would have. */
static void sweep_check_done(struct client *c, void *arg)
{
	struct sweep *sw = find_sweep(arg);

	if (sw == NULL)
		return;
	sw->inflight--;
	if (client_apply_move(c)) {
		sw->moved++;
		/* what it sent meanwhile goes to a server on the new side */
		if (c->state == CL_IDLE && sock_in_len(&c->sock) > 0) {
			c->held = false;
			client_request_server(c);
		}
	} else {
		sw->closed++;
	}
	sweep_schedule(sw);
}

/* Start checks up to RELOCATE_PARALLEL; report when nothing is left. */
static void sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *sw = arg;
	struct database *db = sw->db;
	struct list_node *p, *m, *tmp;
	bool more = false;
	bool foreign = false; /* a session moving by itself (client_relocate): awaited too */

	(void)fd;
	(void)what;
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->server && c->server->side != db->route && c->move == MOVE_CHECKING &&
			    c->move_done != sweep_check_done)
				foreign = true;
			if (!candidate(c, db))
				continue;
			if (sw->inflight >= RELOCATE_PARALLEL) {
				more = true;
				break;
			}
			sw->inflight++;
			if (!client_check_movable(c, sweep_check_done, db)) {
				/* could not ask: closed as at the resume ("its server was busy") */
				sw->inflight--;
				if (client_apply_move(c))
					sw->moved++;
				else
					sw->closed++;
			}
		}
	}
	if (more || foreign || sw->inflight > 0)
		return;
	log_debug("database %s: %d idle sessions moved after the switch, %d closed", db->name,
		  sw->moved, sw->closed);
	{
		void (*done)(struct database *, int, int) = sw->done;
		int moved = sw->moved, closed = sw->closed;

		sweep_free(sw);
		if (done)
			done(db, moved, closed);
	}
}

bool db_relocate_start(struct database *db, void (*done)(struct database *db, int moved, int closed))
{
	struct list_node *p, *m;
	struct sweep *sw;
	bool any = false;

	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		list_for_each(m, &pool->active_clients) {
			const struct client *c = list_entry(m, struct client, node);

			if (c->server && c->server->side != db->route) {
				any = true;
				break;
			}
		}
		if (any)
			break;
	}
	if (!any || find_sweep(db))
		return false;
	sw = calloc(1, sizeof(*sw));
	if (sw == NULL || (sw->tick = evtimer_new(rt.base, sweep_tick, sw)) == NULL) {
		free(sw);
		log_error("database %s: out of memory: its idle sessions move at their next request",
			  db->name);
		return false;
	}
	sw->db = db;
	sw->done = done;
	sw->next = sweeps;
	sweeps = sw;
	sweep_schedule(sw);
	return true;
}

void db_relocate_note(struct client *c, bool moved)
{
	struct sweep *sw = c->db ? find_sweep(c->db) : NULL;

	if (sw == NULL)
		return;
	if (moved)
		sw->moved++;
	else
		sw->closed++;
	sweep_schedule(sw);
}

void db_relocate_free(void)
{
	while (sweeps)
		sweep_free(sweeps);
}

int db_relocate_left(const struct database *db)
{
	const struct sweep *sw = find_sweep(db);

	return sw ? sw->inflight : 0;
}

/*
 * pause.c - PAUSE and RESUME from the admin console: hold a database's (or
 * every database's) new transactions, tell the one who asked once the
 * transactions in flight have finished, and release them again.
 */
#include <stdlib.h>

#include "admin/cutover/engine.h"
#include "protocol/sqlstate.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

/* A PAUSE waiting for its database (or all of them) to drain. */
struct pause_wait {
	cutover_paused_fn done; /* NULL once its requester went away */
	void *who;
	struct database *db; /* NULL = every database */
	struct pause_wait *next;
};

static struct pause_wait *pause_waits;

static bool drained(const struct database *db)
{
	return db_in_flight(db) == 0;
}

static bool all_drained(void)
{
	struct list_node *n;

	list_for_each(n, &rt.databases)
		if (!drained(list_entry(n, struct database, node)))
			return false;
	return true;
}

void cutover_pause_check(void)
{
	struct pause_wait **pp = &pause_waits;

	while (*pp) {
		struct pause_wait *w = *pp;
		bool done =
			w->db ? (drained(w->db) || !(w->db->holds & DB_HOLD_PAUSE)) : all_drained();

		if (done) {
			*pp = w->next;
			if (w->done)
				w->done(w->who, NULL, NULL);
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void cutover_pause(struct database *db, cutover_paused_fn done, void *who)
{
	struct pause_wait *w = calloc(1, sizeof(*w));
	struct list_node *n;

	if (db)
		db_hold(db, DB_HOLD_PAUSE);
	else
		list_for_each(n, &rt.databases)
			db_hold(list_entry(n, struct database, node), DB_HOLD_PAUSE);
	if (w == NULL) {
		done(who, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	w->done = done;
	w->who = who;
	w->db = db;
	w->next = pause_waits;
	pause_waits = w;
	cutover_pause_check();
}

void cutover_resume(struct database *db)
{
	struct list_node *n;

	if (db)
		db_release(db, DB_HOLD_PAUSE);
	else
		list_for_each(n, &rt.databases)
			db_release(list_entry(n, struct database, node), DB_HOLD_PAUSE);
	/* PAUSE requests still waiting are answered: nothing is paused any more */
	cutover_pause_check();
}

void cutover_forget(void *who)
{
	for (struct pause_wait *w = pause_waits; w; w = w->next)
		if (w->who == who)
			w->done = NULL;
	cutover_forget_switches(who);
	cutover_fence_forget(who);
	cutover_finish_forget(who);
}

void cutover_pause_free(void)
{
	while (pause_waits) {
		struct pause_wait *w = pause_waits;

		pause_waits = w->next;
		free(w);
	}
}

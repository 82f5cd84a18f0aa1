/*
 * flip.c - the flip and the resume.  FLIP records the new route durably
 * (state_dir/<db>.route, written and fsynced on a worker thread) and only
 * then changes where the database's connections go; RESUME moves the
 * sessions over (proxy/pool.h) and lets the held transactions run there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/pool.h"
#include "proxy/prewarm.h"
#include "proxy/relocate.h"
#include "proxy/runtime.h"

static void flip_done(void *arg, bool ok, const char *errmsg)
{
	struct cutover *co = arg;

	if (!ok && co->fleet_decided) {
		/* the fleet decided: it is the truth, and a restart follows it over this file */
		log_error("switch %s: could not record the new route in the route file (%s); the fleet decided, so the %s serves",
			  co->db->name, errmsg, route_side_name(co->to));
		ok = true;
	}
	if (!ok) {
		/*
		 * The worker left the file as it was whenever it could (see
		 * route_replace_sync); the message says what it did.
		 */
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not record the new route durably: %s",
			     errmsg);
		return;
	}
	co->db->route = co->to;
	co->db->recorded = co->flipped;
	log_info("switch %s: route is now %s (recorded in %s)", co->db->name,
		 route_side_name(co->to), co->config->state_dir);
	cutover_phase_done(co);
}

void cutover_flip_enter(struct cutover *co)
{
	struct route_state *st = &co->flipped;

	memset(st, 0, sizeof(*st));
	st->side = co->to;
	route_now(st);
	snprintf(st->source_lsn, sizeof(st->source_lsn), "%s", co->goal_lsn);
	if (!route_store_async(rt.base, co->config->state_dir, co->db->name, st, flip_done, co))
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not start writing the route file");
}

/* Write st as db's route file in the background, logging a failure (for what is not urgent). */
static void store_later(const char *state_dir, const char *db, const struct route_state *st,
			route_done_cb done)
{
	char *name = strdup(db);

	if (name == NULL || !route_store_async_owned(rt.base, state_dir, name, st, done, name)) {
		log_warning("database %s: could not start writing its route file", db);
		free(name);
	}
}

/* The route file again, with the new side's transaction ID (cutover_record_xid). */
static void xid_stored(void *arg, bool ok, const char *errmsg)
{
	char *db = arg;

	if (!ok)
		log_warning("database %s: could not record the target's transaction ID in its route file: %s;"
			    " a switch back with lag_method none will need FORCE",
			    db, errmsg);
	free(db);
}

void cutover_record_xid(struct cutover *co)
{
	if (co->new_side_xid[0] == '\0')
		return;
	co->flipped.side = co->to;
	snprintf(co->flipped.new_side_xid, sizeof(co->flipped.new_side_xid), "%s", co->new_side_xid);
	co->db->recorded = co->flipped;
	store_later(co->config->state_dir, co->db->name, &co->flipped, xid_stored);
}

static void intent_cleared(void *arg, bool ok, const char *errmsg)
{
	char *db = arg;

	if (!ok)
		log_warning("database %s: could not clear the switch under way from its route file: %s;"
			    " the next start will check its side for a fence first",
			    db, errmsg);
	free(db);
}

void cutover_forget_switch_under_way(struct database *db)
{
	struct route_state st = db->recorded;

	if (st.side != db->route) {
		memset(&st, 0, sizeof(st));
		st.side = db->route;
	}
	st.switching = false;
	db->recorded = st;
	if (db->cfg_owner)
		store_later(db->cfg_owner->state_dir, db->name, &st, intent_cleared);
}

void cutover_clear_intent(struct cutover *co)
{
	cutover_forget_switch_under_way(co->db);
}

void cutover_resume_enter(struct cutover *co)
{
	/* the servers opened early on this side serve now, unless a fence made them read-only */
	db_prewarm_settle(co->db);
	db_move_sessions(co->db, &co->rec.sessions_moved, &co->rec.sessions_closed);
	/* the idle sessions left on the old side move now, outside the pause */
	co->relocating = db_relocate_start(co->db, cutover_relocated);
	cutover_phase_done(co);
}

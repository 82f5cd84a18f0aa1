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
#include "proxy/runtime.h"

static void flip_done(void *arg, bool ok, const char *errmsg)
{
	struct cutover *co = arg;

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
	log_info("switch %s: route is now %s (recorded in %s)", co->db->name,
		 route_side_name(co->to), co->config->state_dir);
	cutover_phase_done(co);
}

void cutover_flip_enter(struct cutover *co)
{
	struct route_state st;

	memset(&st, 0, sizeof(st));
	st.side = co->to;
	route_now(&st);
	snprintf(st.source_lsn, sizeof(st.source_lsn), "%s", co->goal_lsn);
	if (!route_store_async(rt.base, co->config->state_dir, co->db->name, &st, flip_done, co))
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not start writing the route file");
}

void cutover_resume_enter(struct cutover *co)
{
	db_move_sessions(co->db, &co->rec.sessions_moved, &co->rec.sessions_closed);
	cutover_phase_done(co);
}

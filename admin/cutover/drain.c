/*
 * drain.c - the phase where the pause begins: new transactions of the
 * database are held (not refused) and the ones in flight run to their end,
 * bounded by drain_timeout.  The pools tell the engine whenever one ends
 * (db_set_progress_hook); the phase is over when none is left.
 */
#include <event2/event.h>

#include "admin/cutover/engine.h"
#include "protocol/sqlstate.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

/*
 * How often the drain looks for itself whether it is over, besides being
 * told: a server that reaches its boundary by a path that does not tell the
 * progress hook must not keep the switch waiting until drain_timeout.
 */
#define DRAIN_TICK_MS 10

void cutover_drain_progress(struct cutover *co)
{
	if (co->phase != CO_DRAIN || db_in_flight(co->db) > 0)
		return;
	if (co->drain_tick)
		evtimer_del(co->drain_tick);
	co->rec.ms_drain = cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

static void drain_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;
	struct timeval tv = {0, DRAIN_TICK_MS * 1000};

	(void)fd;
	(void)what;
	if (co->phase != CO_DRAIN)
		return;
	if (db_in_flight(co->db) == 0) {
		cutover_drain_progress(co);
		return;
	}
	evtimer_add(co->drain_tick, &tv);
}

void cutover_drain_enter(struct cutover *co)
{
	struct database *db = co->db;

	co->t_pause = co->t_phase;
	db_hold(db, DB_HOLD_SWITCH);
	log_info("switch %s: draining (%d transactions open)", db->name, db_in_flight(db));
	if (db_in_flight(db) == 0) {
		cutover_drain_progress(co);
		return;
	}
	co->drain_tick = evtimer_new(rt.base, drain_tick_cb, co);
	if (co->drain_tick == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	drain_tick_cb(-1, 0, co);
}

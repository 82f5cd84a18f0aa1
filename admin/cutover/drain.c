/*
 * drain.c - the phase where the pause begins: new transactions of the
 * database are held (not refused) and the ones in flight run to their end,
 * bounded by drain_timeout.  The pools tell the engine whenever one ends
 * (db_set_progress_hook); the phase is over when none is left.
 */
#include "admin/cutover/engine.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

void cutover_drain_progress(struct cutover *co)
{
	/*
	 * Once: what the end of the drain starts (session checks, servers opened
	 * early on the new side, which may close idle ones) reports progress too.
	 */
	if (co->drained || db_in_flight(co->db) > 0)
		return;
	co->drained = true;
	co->rec.ms_drain = cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

void cutover_drain_enter(struct cutover *co)
{
	struct database *db = co->db;

	co->t_pause = co->t_phase;
	db_hold(db, DB_HOLD_SWITCH);
	log_info("switch %s: draining (%d transactions open)", db->name, db_in_flight(db));
	cutover_drain_progress(co);
}

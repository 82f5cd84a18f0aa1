/*
 * engine.c - the switch machine: its phase table, the move from one phase to
 * the next, failure, the end of a switch, and the entry points SWITCH and
 * ABORT (see cutover.h for the picture, engine.h for the parts).
 *
 * Every wait is bounded by the phase's deadline, every failure before FLIP
 * goes through cutover_fail(), which resumes traffic on the old side and
 * reports the phase, and the phases only ever move forward: an illegal
 * change is logged as "illegal phase change", which the integration
 * harness treats as a test failure.
 */
#include "admin/cutover/engine.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/fleet.h"
#include "admin/cutover/replication_names.h"
#include "admin/cutover/seqstate.h"
#include "admin/cutover/verify.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/pool.h"
#include "proxy/prewarm.h"
#include "proxy/runtime.h"
#include "proxy/switch_gap.h"

/*
 * The phases in order.  A switch enters each in turn (a dry run stops after
 * PREFLIGHT; a phase with nothing to do for this database ends at once);
 * traffic is held from DRAIN to the end of RESUME.  After a failure the
 * switch is in CO_ROLLBACK, outside this table (cutover_fail).
 */
const struct cutover_phase_def cutover_phases[CO_NPHASES] = {
	[CO_PREFLIGHT] = {"preflight", cutover_preflight_enter, CO_DEADLINE_NONE, false,
			  "nothing: each query has its own time limit"},
	[CO_PREPARE] = {"preparation", cutover_prepare_enter, CO_DEADLINE_LAG, false,
			"nothing: traffic still runs on the old side"},
	[CO_SEQ_AHEAD] = {"sequences ahead", cutover_seq_ahead_enter, CO_DEADLINE_LAG, false,
			  "nothing: traffic still runs on the old side"},
	[CO_FLEET_PAUSE] = {"fleet pause", cutover_fleet_pause_enter, CO_DEADLINE_NONE, false,
			    "nothing: the other instances start to drain"},
	[CO_DRAIN] = {"drain", cutover_drain_enter, CO_DEADLINE_DRAIN, false,
		      "the other instances' drains; session checks start when it ends"},
	[CO_FLEET_DRAIN] = {"fleet drain", cutover_fleet_drain_enter, CO_DEADLINE_DRAIN, false,
			    "session checks"},
	[CO_FENCE] = {"fence", cutover_fence_enter, CO_DEADLINE_LAG, false, "session checks"},
	[CO_WAIT_LAG] = {"lag wait", cutover_lag_enter, CO_DEADLINE_LAG, false, "session checks"},
	[CO_STOP_REPLICATION] = {"replication stop", cutover_stop_replication_enter,
				 CO_DEADLINE_LAG, false, "session checks"},
	[CO_VERIFY] = {"verify", cutover_verify_enter, CO_DEADLINE_NONE, false,
		       "session checks (verify_budget bounds it)"},
	[CO_SYNC_SEQUENCES] = {"sequence sync", cutover_sequences_enter, CO_DEADLINE_LAG, false,
			       "session checks (lag_timeout bounds both)"},
	[CO_DECIDE] = {"decision", cutover_decide_enter, CO_DEADLINE_NONE, true,
		       "nothing: retried until the fleet database answers"},
	[CO_FLIP] = {"flip", cutover_flip_enter, CO_DEADLINE_NONE, false,
		     "nothing: the route file is written on a worker thread"},
	[CO_START_REPLICATION] = {"replication start", cutover_start_replication_enter,
				  CO_DEADLINE_NONE, false, "nothing"},
	[CO_UNFENCE] = {"unfence", cutover_unfence_enter, CO_DEADLINE_NONE, false, "nothing"},
	[CO_RESUME] = {"resume", cutover_resume_enter, CO_DEADLINE_NONE, false, "nothing"},
};

/* The name of a phase, the rollback included. */
static const char *phase_name(enum cutover_phase p)
{
	return p < CO_NPHASES ? cutover_phases[p].name : "rollback";
}

/* Switches running now (one per database at most; few at a time). */
static struct cutover *running;

static struct cutover *find_switch(const struct database *db)
{
	for (struct cutover *co = running; co; co = co->next)
		if (co->db == db)
			return co;
	return NULL;
}

const struct db_config *cutover_cfg(const struct cutover *co)
{
	return co->dc;
}

int64_t cutover_ms_since(uint64_t t_us)
{
	return (int64_t)((rt_now_us() - t_us) / 1000);
}

const struct switch_record *cutover_running(const struct database *db)
{
	struct cutover *co = find_switch(db);

	return co ? &co->rec : NULL;
}

const char *cutover_phase_name(const struct database *db)
{
	struct cutover *co = find_switch(db);

	return co ? phase_name(co->phase) : "";
}

/* ---- deadlines ---- */

static void cutover_finish(struct cutover *co, bool ok);
static void arm_deadline(struct cutover *co, enum cutover_deadline which);

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	switch (co->phase) {
	case CO_DRAIN:
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "drain_timeout expired with %d transactions still open; they were not interrupted",
			     db_in_flight(co->db));
		break;
	case CO_WAIT_LAG:
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "lag_timeout expired before the %s caught up", route_side_name(co->to));
		break;
	case CO_SYNC_SEQUENCES:
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "the sequence sync and the session checks did not finish within lag_timeout (%d checks left)",
			     co->checks_pending);
		break;
	case CO_FLEET_DRAIN:
		cutover_fleet_drain_expired(co);
		break;
	case CO_RESUME:
		/* a held client that never reached the new side: the row goes without a gap */
		if (co->rec.ms_gap < 0)
			log_warning("switch %s: %d held transactions had not started on the %s after %d ms: no gap_ms",
				    co->db->name, db_gap_pending(co->db), route_side_name(co->to),
				    CUTOVER_GAP_WAIT_MS);
		if (co->relocating)
			log_warning("switch %s: idle sessions still moving after %d ms: the row counts those moved so far",
				    co->db->name, CUTOVER_GAP_WAIT_MS);
		co->relocating = false; /* its end is logged (cutover_relocated) */
		co->settle_waiting = false;
		cutover_finish(co, true);
		break;
	case CO_PREPARE:
	case CO_SEQ_AHEAD:
	case CO_FENCE:
	case CO_STOP_REPLICATION:
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "%s did not finish within lag_timeout",
			     phase_name(co->phase));
		break;
	default:
		log_error("switch %s: a deadline fired in phase %s, which has none", co->db->name,
			  phase_name(co->phase));
		break;
	}
}

static void arm_deadline(struct cutover *co, enum cutover_deadline which)
{
	const struct db_config *dc = cutover_cfg(co);
	int64_t ms;
	struct timeval tv;

	evtimer_del(co->deadline);
	switch (which) {
	case CO_DEADLINE_DRAIN:
		ms = dc->d.drain_timeout_ms;
		break;
	case CO_DEADLINE_LAG:
		ms = dc->d.lag_timeout_ms;
		break;
	case CO_DEADLINE_GAP:
		ms = CUTOVER_GAP_WAIT_MS;
		break;
	default:
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(co->deadline, &tv);
}

/* ---- moving between phases ---- */

static void enter_phase(struct cutover *co, enum cutover_phase next)
{
	if (next <= co->phase || next >= CO_NPHASES)
		log_error("switch %s: illegal phase change %s -> %s", co->db->name,
			  phase_name(co->phase), phase_name(next));
	co->phase = next;
	co->t_phase = rt_now_us();
	arm_deadline(co, cutover_phases[next].deadline);
	log_debug("switch %s: %s", co->db->name, cutover_phases[next].name);
	cutover_phases[next].enter(co);
}

/* The session checks have all answered (db_check_sessions). */
static void checks_done(void *arg)
{
	struct cutover *co = arg;

	co->checks_pending = 0;
	if (!co->waiting_checks)
		return;
	co->waiting_checks = false;
	if (co->aborting) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	enter_phase(co, CO_FLIP);
}

void cutover_phase_done(struct cutover *co)
{
	enum cutover_phase next = (enum cutover_phase)(co->phase + 1);

	if (co->phase >= CO_NPHASES) {
		log_error("switch %s: illegal phase change rollback -> %s", co->db->name,
			  phase_name(next));
		return;
	}
	if (co->aborting && co->phase < CO_DECIDE) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	if (co->phase == CO_PREFLIGHT && co->dry_run) {
		snprintf(co->rec.result, sizeof(co->rec.result),
			 "dry run: ok (lag %" PRId64 " bytes, %d sequences to sync)",
			 co->preflight_lag < 0 ? 0 : co->preflight_lag, co->nsequences);
		co->rec.sequences_synced = 0;
		cutover_finish(co, true);
		return;
	}
	if (co->phase == CO_PREFLIGHT)
		(void)db_prewarm_ahead(co->db, co->to); /* log in while the switch prepares */
	if (co->phase == CO_DRAIN) {
		/* the session checks run beside the next phases; FLIP joins them */
		co->checks_pending = db_check_sessions(co->db, co->from, checks_done, co);
		/* the held transactions' servers on the new side log in meanwhile (prewarm.h) */
		if (db_prewarm(co->db, co->to) > 0)
			log_debug("switch %s: new-side servers opening during the pause",
				  co->db->name);
	}
	if (next == CO_NPHASES) {
		cutover_finish(co, true);
		return;
	}
	if (cutover_phases[next].joins_checks && co->checks_pending > 0) {
		co->waiting_checks = true; /* checks_done() enters it */
		return;
	}
	enter_phase(co, next);
}

/* ---- phase queries ---- */

bool cutover_query(struct cutover *co, enum route_side side, const char *sql, int64_t timeout_ms,
		   control_cb cb)
{
	co->pending++;
	if (!control_conn_query(co->ctl[side], sql, timeout_ms, cb, co)) {
		co->pending--;
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	return true;
}

void cutover_query_failed(struct cutover *co, const struct control_result *r, const char *what)
{
	if (co->failed)
		return;
	co->failed = true;
	snprintf(co->fail_state, sizeof(co->fail_state), "%s",
		 r->sqlstate[0] ? r->sqlstate : SQLSTATE_INTERNAL_ERROR);
	snprintf(co->fail_msg, sizeof(co->fail_msg), "%s: %s", what,
		 r->error ? r->error : "unknown error");
}

bool cutover_query_settle(struct cutover *co)
{
	if (--co->pending > 0)
		return false;
	if (co->failed) {
		cutover_fail(co, co->fail_state, "%s", co->fail_msg);
		return false;
	}
	return true;
}

bool cutover_answer(struct cutover *co, const struct control_result *r, enum cutover_phase phase,
		    const char *what, enum route_side side)
{
	co->pending--;
	if (co->phase != phase)
		return false;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s on the %s: %s", what,
			     route_side_name(side), r->error);
		return false;
	}
	return true;
}

/* ---- the end ---- */

static void cutover_free(struct cutover *co)
{
	if (co->check)
		check_cancel(co->check);
	cutover_verify_free(co);
	for (int side = 0; side < 2; side++)
		if (co->ctl[side])
			control_conn_free(co->ctl[side]);
	if (co->deadline)
		event_free(co->deadline);
	if (co->poll)
		event_free(co->poll);
	if (co->guard_wait)
		event_free(co->guard_wait);
	if (co->drain_tick)
		event_free(co->drain_tick);
	cutover_fleet_free(co);
	if (co->intent_ticket)
		co->intent_ticket->co = NULL; /* its answer frees it */
	seq_ahead_free(co->seq_ahead);
	config_free(co->config);
	free(co);
}

static void unlink_switch(struct cutover *co)
{
	for (struct cutover **pp = &running; *pp; pp = &(*pp)->next) {
		if (*pp == co) {
			*pp = co->next;
			break;
		}
	}
	co->db->busy = false;
}

/* Leave the database running (on whichever side it is routed to) and report. */
static void cutover_finish(struct cutover *co, bool ok)
{
	struct database *db = co->db;

	evtimer_del(co->deadline);
	evtimer_del(co->poll);
	if (co->settling)
		goto report; /* the second time: the gap is known, or its wait is over */
	if (co->t_pause)
		co->rec.ms_paused = cutover_ms_since(co->t_pause);
	cutover_fleet_end(co);
	if (!ok && co->intent_written)
		cutover_clear_intent(co);
	if (!ok)
		db_prewarm_drop(db, co->to);
	if (ok && !co->dry_run) {
		snprintf(co->rec.result, sizeof(co->rec.result), "ok");
		cutover_record_xid(co);
		/* the way back streams from the new side: its slot there */
		if (co->dc->d.reverse_replication && co->dc->d.lag_method == LAG_LSN &&
		    cutover_replication_error(db) == NULL)
			cutover_watch_way_back(db, co->config, co->dc, co->to,
					       co->to == SIDE_TARGET ? co->rev_slot
								     : co->dc->replication_slot);
		/*
		 * The pause ends: the held transactions go to the new side.  The
		 * row waits until they all started there (cutover_gap_cb), bounded.
		 */
		co->settling = true;
		db_gap_arm(db);
		db_release(db, DB_HOLD_SWITCH);
		cutover_pause_check();
		if (co->rec.ms_gap < 0 || co->relocating) {
			co->settle_waiting = true;
			arm_deadline(co, CO_DEADLINE_GAP);
			return;
		}
	}
report:
	unlink_switch(co);
	cutover_history_add(db, &co->rec, ok);
	log_info("switch %s %s -> %s: %s (paused %" PRId64 " ms, drain %" PRId64 " ms, lag %" PRId64
		 " ms, sequences %" PRId64 " ms, %d moved, %d closed)%s%s",
		 db->name, route_side_name(co->rec.from), route_side_name(co->rec.to),
		 co->rec.result, co->rec.ms_paused, co->rec.ms_drain, co->rec.ms_lag,
		 co->rec.ms_sequences, co->rec.sessions_moved, co->rec.sessions_closed,
		 co->rec.error[0] ? ": " : "", co->rec.error);
	if (co->reply)
		co->reply(co->who, &co->rec, ok ? NULL : co->fail_state);
	/* control connections may be inside a callback: free once it returns */
	for (int side = 0; side < 2; side++)
		control_conn_reset(co->ctl[side]);
	if (db->holds & DB_HOLD_SWITCH)
		db_release(db, DB_HOLD_SWITCH);
	cutover_pause_check();
	cutover_free(co);
}

/* The held transactions of a database all started on its new side (switch_gap.h). */
static void cutover_gap_cb(struct database *db, int64_t gap_ms)
{
	struct cutover *co = find_switch(db);

	if (co == NULL || !co->settling)
		return;
	co->rec.ms_gap = gap_ms;
	if (co->settle_waiting && !co->relocating) {
		co->settle_waiting = false;
		cutover_finish(co, true);
	}
}

void cutover_relocated(struct database *db, int moved, int closed)
{
	struct cutover *co = find_switch(db);

	if (co == NULL || co->phase != CO_RESUME) {
		log_info("database %s: %d idle sessions moved after its switch, %d closed",
			 db->name, moved, closed);
		return;
	}
	co->relocating = false;
	co->rec.sessions_moved += moved;
	co->rec.sessions_closed += closed;
	if (co->settle_waiting && co->rec.ms_gap >= 0) {
		co->settle_waiting = false;
		cutover_finish(co, true);
	}
}

void cutover_fail(struct cutover *co, const char *sqlstate, const char *fmt, ...)
{
	char msg[480], state[6];
	va_list ap;

	if (co->phase >= CO_NPHASES)
		return; /* already rolling back: the first failure is the one reported */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* sqlstate may be co->fail_state itself: copy before overwriting */
	snprintf(state, sizeof(state), "%s",
		 sqlstate && strlen(sqlstate) == 5 ? sqlstate : SQLSTATE_INTERNAL_ERROR);
	memcpy(co->fail_state, state, sizeof(state));
	snprintf(co->rec.error, sizeof(co->rec.error), "%s failed: %s", phase_name(co->phase), msg);
	/* a dry run's result says it was one, whatever its outcome */
	snprintf(co->rec.result, sizeof(co->rec.result), "%s%s", co->dry_run ? "dry run: " : "",
		 co->aborting ? "aborted" : "failed");
	log_warning("switch %s: %s; traffic resumes on the %s", co->db->name, co->rec.error,
		    route_side_name(co->db->route));
	/* the sessions stay where they are */
	db_cancel_checks(co->db);
	if (co->check) {
		check_cancel(co->check);
		co->check = NULL;
	}
	co->waiting_checks = false;
	/*
	 * The rollback: what the switch changed on the servers is undone before
	 * traffic resumes on the old side (the incoming direction started again,
	 * the old side's fence lifted); the phase's own queries in flight are
	 * dropped (their callbacks never come).
	 */
	co->phase = CO_ROLLBACK;
	evtimer_del(co->deadline);
	evtimer_del(co->poll);
	if (co->guard_wait)
		evtimer_del(co->guard_wait);
	for (int side = 0; side < 2; side++)
		control_conn_reset(co->ctl[side]);
	co->rollback_step = 0;
	co->attempts = 0;
	cutover_rollback_next(co);
}

/*
 * The rollback's steps, in order: in a fleet, take the abort over first
 * (so that no decision can follow), then enable the incoming replication
 * again, lift the old side's fence, and in a fleet record the abort (or
 * wait until whoever took it over has): only then does traffic resume on
 * the old side.  Each step calls back here when it is done.
 */
void cutover_rollback_next(struct cutover *co)
{
	co->attempts = 0;
	for (;;) {
		switch (co->rollback_step++) {
		case 0:
			if (co->fleet_began) {
				cutover_fleet_claim(co);
				return;
			}
			break;
		case 1:
			if (co->stopped_in) {
				cutover_rollback_replication(co);
				return;
			}
			break;
		case 2:
			if (co->fenced_from) {
				cutover_rollback_unfence(co);
				return;
			}
			break;
		case 3:
			if (co->fleet_began) {
				cutover_fleet_mark_aborted(co);
				return;
			}
			break;
		default:
			if (co->rollback_err[0]) {
				size_t n = strlen(co->rec.error);

				snprintf(co->rec.error + n, sizeof(co->rec.error) - n, "; %s",
					 co->rollback_err);
				log_error("switch %s: %s", co->db->name, co->rollback_err);
			}
			cutover_finish(co, false);
			return;
		}
	}
}

/* ---- entry points ---- */

static bool open_controls(struct cutover *co)
{
	for (int side = 0; side < 2; side++) {
		co->ctl[side] =
			control_open(co->config, rt.users, cutover_cfg(co), (enum route_side)side);
		if (co->ctl[side] == NULL)
			return false;
	}
	return true;
}

/* The progress hook of the pools: a transaction of a held database ended. */
static void cutover_progress(struct database *db)
{
	struct cutover *co = find_switch(db);

	if (co && co->phase == CO_DRAIN)
		cutover_drain_progress(co);
	fleet_progress(db);
	cutover_pause_check();
}

void cutover_init(void)
{
	struct list_node *n;

	db_set_progress_hook(cutover_progress);
	db_set_gap_hook(cutover_gap_cb);
	db_set_added_hook(cutover_guard);
	fleet_start(); /* before the guards: in a fleet they leave fences to the fleet */
	/* the databases of the configuration pgcutover started with */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (!db->removed)
			cutover_guard(db);
	}
}

bool cutover_start(struct database *db, enum route_side to, bool dry_run, bool force,
		   cutover_reply_fn reply, void *who, char *errbuf, size_t errlen)
{
	struct cutover *co;
	struct route_state now;

	if (find_switch(db)) {
		snprintf(errbuf, errlen, "database \"%s\" is already switching (phase: %s)",
			 db->name, cutover_phase_name(db));
		return false;
	}
	if (db->cfg == NULL) {
		snprintf(errbuf, errlen, "database \"%s\" is no longer configured", db->name);
		return false;
	}
	if (db->route == to && !dry_run) {
		snprintf(errbuf, errlen, "database \"%s\" is already routed to its %s", db->name,
			 route_side_name(to));
		return false;
	}
	co = calloc(1, sizeof(*co));
	if (co == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	co->db = db;
	co->config = config_ref(db->cfg_owner);
	co->dc = db->cfg;
	co->reply = reply;
	co->who = who;
	co->from = db->route;
	co->to = to;
	co->dry_run = dry_run;
	co->force = force;
	co->preflight_lag = -1;
	co->rec.ms_gap = -1;
	replication_reverse_name(db->name, co->rev_slot, sizeof(co->rev_slot));
	co->deadline = evtimer_new(rt.base, deadline_cb, co);
	co->poll = evtimer_new(rt.base, cutover_lag_poll_cb, co);
	if (co->deadline == NULL || co->poll == NULL || !open_controls(co)) {
		cutover_free(co);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	snprintf(co->rec.db, sizeof(co->rec.db), "%s", db->name);
	co->rec.from = co->from;
	co->rec.to = to;
	co->rec.instances = 1;
	co->rec.instances_acked = 1;
	co->rec.dry_run = dry_run;
	route_now(&now);
	snprintf(co->rec.started, sizeof(co->rec.started), "%s", now.switched_at);
	snprintf(co->rec.result, sizeof(co->rec.result), "running");
	co->next = running;
	running = co;
	db->busy = true;
	log_info("switch %s: %s -> %s%s started", db->name, route_side_name(co->from),
		 route_side_name(to), dry_run ? " (dry run)" : "");
	co->phase = CO_PREFLIGHT;
	co->t_phase = rt_now_us();
	cutover_preflight_enter(co);
	return true;
}

bool cutover_abort(struct database *db, char *errbuf, size_t errlen)
{
	struct cutover *co = find_switch(db);

	if (co == NULL) {
		snprintf(errbuf, errlen, "database \"%s\" is not switching", db->name);
		return false;
	}
	if (co->phase == CO_ROLLBACK) {
		snprintf(errbuf, errlen, "the switch of database \"%s\" has already failed",
			 db->name);
		return false;
	}
	if (co->phase >= CO_DECIDE) {
		snprintf(errbuf, errlen,
			 "the switch of database \"%s\" has already flipped the route", db->name);
		return false;
	}
	check_shutdown();
	cutover_checks_free();
	verify_shutdown();
	co->aborting = true;
	/* a drain or lag wait ends now; a running query ends at its callback */
	if (co->phase == CO_DRAIN || (co->phase == CO_WAIT_LAG && co->pending == 0))
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
	return true;
}

void cutover_forget_switches(void *who)
{
	for (struct cutover *co = running; co; co = co->next)
		if (co->who == who)
			co->reply = NULL;
}

void cutover_shutdown(void)
{
	while (running) {
		struct cutover *co = running;

		unlink_switch(co);
		cutover_free(co);
	}
	cutover_pause_free();
	cutover_fence_free();
	cutover_finish_free();
	cutover_watch_free();
	fleet_stop();
	cutover_history_free();
	route_shutdown();
}

/*
 * fleet_follow.c - one database's follower (see fleet_int.h for its
 * states): its reaction to the epoch another instance coordinates, as each
 * poll of the fleet database reads it (fleet.c).  It holds, drains,
 * captures the sessions and acknowledges; then flips on the decision, or
 * resumes on the old side on the abort, or takes the abort over from a
 * coordinator whose lease expired (claim, lift the old side's fence, mark
 * it aborted).
 *
 * The rules of docs/fleet.md: the route changes only through a decision in
 * the fleet database; a held database resumes on the old side only after
 * the abort is read, and stays held while the fleet database cannot be
 * read.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/fleet.h"
#include "admin/cutover/fleet_int.h"
#include "admin/cutover/fleet_sql.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/relocate.h"
#include "proxy/runtime.h"

/* A fence lift that failed is tried again after this. */
#define FLEET_RETRY_MS 500
/* Old-side server process IDs an ack carries, at most. */
#define FLEET_PIDS_MAX 4096

static const char *const fd_names[] = {
	[FD_NONE] = "none",       [FD_DRAINING] = "draining", [FD_CHECKING] = "checking",
	[FD_ACKED] = "acked",     [FD_FLIPPING] = "flipping", [FD_CLAIMING] = "claiming",
	[FD_LIFTING] = "lifting", [FD_MARKING] = "marking",
};

static void fdb_timer_cb(evutil_socket_t fd, short what, void *arg);

struct fdb *fdb_new(struct database *db)
{
	struct fdb *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->db = db;
	f->epoch = -1;
	f->held_epoch = -1;
	f->timer = evtimer_new(rt.base, fdb_timer_cb, f);
	if (f->timer == NULL) {
		free(f);
		return NULL;
	}
	return f;
}

void fdb_free(struct fdb *f)
{
	if (f->timer)
		event_free(f->timer);
	if (f->side)
		control_conn_free(f->side);
	free(f);
}

void fdb_hold(struct fdb *f)
{
	if (!f->held) {
		f->held = true;
		f->t_hold = rt_now_us();
		db_hold(f->db, DB_HOLD_FLEET);
	}
}

void fdb_release(struct fdb *f)
{
	evtimer_del(f->timer);
	if (f->side) {
		control_conn_free(f->side);
		f->side = NULL;
	}
	f->st = FD_NONE;
	f->db->hold_times_out = false;
	if (f->held) {
		f->held = false;
		db_release(f->db, DB_HOLD_FLEET);
	}
}

static void set_state(struct fdb *f, enum fd_state st)
{
	log_debug("fleet: database %s: %s -> %s (epoch %" PRId64 ")", f->db->name, fd_names[f->st],
		  fd_names[st], f->held_epoch);
	f->st = st;
}

/* ---- the follower's steps ---- */

/* SHOW SWITCHES on a follower: the switch it follows, as it lived it. */
static void begin_record(struct fdb *f)
{
	struct route_state now;

	memset(&f->rec, 0, sizeof(f->rec));
	f->rec.ms_gap = -1; /* the gap is the coordinator's to measure */
	snprintf(f->rec.db, sizeof(f->rec.db), "%s", f->db->name);
	f->rec.from = f->from;
	f->rec.to = f->to;
	route_now(&now);
	snprintf(f->rec.started, sizeof(f->rec.started), "%s", now.switched_at);
	snprintf(f->rec.result, sizeof(f->rec.result), "running");
	/* instances: 0 says it followed another instance's switch (the coordinator counts) */
}

static void end_record(struct fdb *f, bool ok, const char *error)
{
	if (f->rec.db[0] == '\0')
		return; /* it did not follow this switch from its start */
	f->rec.ms_paused = (int64_t)((rt_now_us() - f->t_hold) / 1000);
	f->rec.ms_drain = f->t_acked ? (int64_t)((f->t_acked - f->t_hold) / 1000) : 0;
	snprintf(f->rec.result, sizeof(f->rec.result), "%s", ok ? "ok" : "aborted");
	snprintf(f->rec.error, sizeof(f->rec.error), "%s", error ? error : "");
	cutover_history_add(f->db, &f->rec, ok);
	f->rec.db[0] = '\0';
}

static void ack(struct fdb *f);

static void checks_done(void *arg)
{
	struct fdb *f = arg;

	if (f->st != FD_CHECKING)
		return;
	f->ack_ok = true;
	f->ack_detail[0] = '\0';
	ack(f);
}

/* Drained: capture the sessions' state (session pooling), then ack. */
static void drained(struct fdb *f)
{
	evtimer_del(f->timer);
	set_state(f, FD_CHECKING);
	if (db_check_sessions(f->db, f->from, checks_done, f) == 0)
		checks_done(f);
}

void fleet_progress(struct database *db)
{
	struct fdb *f = fleet_on() ? fdb_find(db) : NULL;

	if (f && f->st == FD_DRAINING && db_in_flight(db) == 0)
		drained(f);
}

static void ack_cb(void *arg, const struct control_result *r)
{
	struct fdb *f = arg;

	if (f->st != FD_CHECKING)
		return;
	if (!r->ok) {
		/* tried again at the next poll (the fleet database may be down) */
		log_warning("fleet: database %s: could not acknowledge the pause of epoch %" PRId64
			    ": %s",
			    f->db->name, f->held_epoch, r->error);
		return;
	}
	set_state(f, FD_ACKED);
	f->t_acked = rt_now_us();
	log_info("fleet: database %s: paused for the switch to its %s (epoch %" PRId64 ")%s%s",
		 f->db->name, route_side_name(f->to), f->held_epoch,
		 f->ack_ok ? "" : ", but could not drain: ", f->ack_detail);
}

static void ack(struct fdb *f)
{
	uint32_t *pids = calloc(FLEET_PIDS_MAX, sizeof(*pids));
	size_t n = pids ? db_server_pids(f->db, f->from, pids, FLEET_PIDS_MAX) : 0;
	struct pq_buf b;

	pq_buf_init(&b);
	if (pids == NULL ||
	    !fleet_ack_sql(&b, f->db->name, f->held_epoch, fleet_me(), f->ack_ok, f->ack_detail,
			   pids, n) ||
	    !fleet_send(&b, ack_cb, f))
		log_error("fleet: database %s: out of memory acknowledging the pause", f->db->name);
	free(pids);
}

/* Another instance's switch of this database begins: hold, drain, capture, ack. */
static void follow_pause(struct fdb *f, int64_t epoch, enum route_side to)
{
	struct timeval tv;
	int64_t ms = f->db->cfg ? f->db->cfg->d.drain_timeout_ms : 10000;

	if (f->st != FD_NONE)
		db_cancel_checks(f->db);
	evtimer_del(f->timer);
	f->held_epoch = epoch;
	f->from = f->db->route;
	f->to = to;
	fdb_hold(f);
	f->t_acked = 0;
	begin_record(f);
	set_state(f, FD_DRAINING);
	log_info("fleet: database %s: another instance switches it to its %s (epoch %" PRId64
		 "): holding new transactions",
		 f->db->name, route_side_name(to), epoch);
	if (db_in_flight(f->db) == 0) {
		drained(f);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(f->timer, &tv);
}

/* The decision was read: record the route, move the sessions, resume there. */
static void flip_stored(void *arg, bool ok, const char *errmsg);

static void follow_flip(struct fdb *f, enum route_side to)
{
	struct route_state st;
	char *name;

	fdb_hold(f);
	f->to = to;
	set_state(f, FD_FLIPPING);
	memset(&st, 0, sizeof(st));
	st.side = to;
	route_now(&st);
	name = strdup(f->db->name);
	if (name == NULL ||
	    !route_store_async(rt.base, rt.cfg->state_dir, name, &st, flip_stored, f)) {
		free(name);
		flip_stored(f, false, "could not start writing the route file");
		return;
	}
	free(name);
}

/* A follower's idle sessions have moved to the new side (relocate.h). */
static void follower_relocated(struct database *db, int moved, int closed)
{
	log_info("fleet: database %s: %d idle sessions moved after the switch, %d closed", db->name,
		 moved, closed);
}

static void flip_stored(void *arg, bool ok, const char *errmsg)
{
	struct fdb *f = arg;
	int moved = 0, closed = 0;

	if (f->st != FD_FLIPPING)
		return;
	if (!ok)
		/* the fleet is the truth: a restart follows it over the stale file */
		log_error("fleet: database %s: could not record the route in its route file (%s); serving the %s as the fleet decided",
			  f->db->name, errmsg, route_side_name(f->to));
	f->db->route = f->to;
	if (ok) {
		memset(&f->db->recorded, 0, sizeof(f->db->recorded));
		f->db->recorded.side = f->to;
		route_now(&f->db->recorded);
	}
	db_move_sessions(f->db, &moved, &closed);
	/* the idle sessions left on the old side move now, in the background */
	db_relocate_start(f->db, follower_relocated);
	f->rec.sessions_moved = moved;
	f->rec.sessions_closed = closed;
	end_record(f, true, NULL);
	log_info("fleet: database %s: routed to its %s as the fleet decided (held %" PRId64
		 " ms, %d sessions moved, %d closed)",
		 f->db->name, route_side_name(f->to), (int64_t)((rt_now_us() - f->t_hold) / 1000),
		 moved, closed);
	fdb_release(f);
}

/* The abort was read: resume on the old side. */
static void follow_abort(struct fdb *f)
{
	log_info("fleet: database %s: the switch of epoch %" PRId64
		 " was aborted: resuming on its %s",
		 f->db->name, f->held_epoch, route_side_name(f->db->route));
	db_cancel_checks(f->db);
	{
		char why[160];

		snprintf(why, sizeof(why),
			 "fleet failed: the switch of fleet epoch %" PRId64
			 " was aborted (SHOW SWITCHES on its coordinator says why)",
			 f->held_epoch);
		end_record(f, false, why);
	}
	fdb_release(f);
}

/* ---- taking an abort over ---- */

static void claim_cb(void *arg, const struct control_result *r);
static void lift(struct fdb *f);

/* The timer of f in FLEET_RETRY_MS (the lift's and the mark's next try). */
static void retry_soon(struct fdb *f)
{
	struct timeval tv = {0, FLEET_RETRY_MS * 1000};

	evtimer_add(f->timer, &tv);
}

/* Take the abort of epoch over ('lost': the fleet database no longer has it). */
static void claim(struct fdb *f, int64_t epoch, bool lost)
{
	bool ok;

	struct pq_buf b;

	if (!f->held) {
		/* not held for it (it started before this instance came): hold, then abort */
		f->from = f->db->route;
		fdb_hold(f);
	}
	f->held_epoch = epoch;
	set_state(f, FD_CLAIMING);
	pq_buf_init(&b);
	if (lost) {
		log_warning("fleet: database %s: the fleet database has lost fleet epoch %" PRId64
			    " (restored, or failed over?): this instance takes its abort over",
			    f->db->name, epoch);
		ok = fleet_reclaim_lost_sql(&b, f->db->name, route_side_name(f->from), epoch,
					    fleet_me(), rt.cfg->fleet_lease_ms);
	} else {
		ok = fleet_claim_abort_sql(&b, f->db->name, epoch, fleet_me(),
					   rt.cfg->fleet_lease_ms);
	}
	if (!ok || !fleet_send(&b, claim_cb, f))
		log_error("fleet: database %s: out of memory taking the abort over", f->db->name);
}

static void claim_cb(void *arg, const struct control_result *r)
{
	struct fdb *f = arg;

	if (f->st != FD_CLAIMING)
		return;
	if (!r->ok || r->res == NULL || PQntuples(r->res) != 1) {
		/* someone else holds it, or the fleet is away: the next poll says */
		set_state(f, FD_ACKED);
		if (!r->ok)
			log_warning("fleet: database %s: could not take the abort over: %s",
				    f->db->name, r->error);
		return;
	}
	log_warning("fleet: database %s: the coordinator of epoch %" PRId64
		    " is gone (its lease expired): this instance aborts the switch, lifting the %s's fence first",
		    f->db->name, f->held_epoch, route_side_name(f->from));
	set_state(f, FD_LIFTING);
	lift(f);
}

static void marked_cb(void *arg, const struct control_result *r)
{
	struct fdb *f = arg;

	if (f->st != FD_MARKING)
		return;
	if (!r->ok) {
		log_warning("fleet: database %s: could not record the abort: %s (trying again)",
			    f->db->name, r->error);
		set_state(f, FD_LIFTING);
		retry_soon(f);
		return;
	}
	/* the poll that reads 'aborted' resumes it */
	set_state(f, FD_ACKED);
	fleet_poll_soon();
}

static void mark(struct fdb *f)
{
	struct pq_buf b;

	set_state(f, FD_MARKING);
	pq_buf_init(&b);
	if (!fleet_aborted_sql(&b, f->db->name, f->held_epoch, fleet_me()) ||
	    !fleet_send(&b, marked_cb, f))
		log_error("fleet: database %s: out of memory recording the abort", f->db->name);
}

static void lift_cb(void *arg, const struct control_result *r)
{
	struct fdb *f = arg;

	if (f->st != FD_LIFTING)
		return;
	if (!r->ok) {
		log_warning("fleet: database %s: could not lift the fence of its %s: %s (trying again every %d ms)",
			    f->db->name, route_side_name(f->from), r->error, FLEET_RETRY_MS);
		retry_soon(f);
		return;
	}
	mark(f);
}

/* Lift the old side's fence (only fenced roles are touched; nothing to do without a fence). */
static void lift(struct fdb *f)
{
	struct pq_buf b;

	if (f->db->cfg == NULL || !f->db->cfg->d.fence) {
		mark(f);
		return;
	}
	if (f->side == NULL)
		f->side = control_open(rt.cfg, rt.users, f->db->cfg, f->from);
	pq_buf_init(&b);
	if (f->side == NULL ||
	    !cutover_fence_statement(f->db, f->db->cfg, rt.users, f->from, false, false, NULL, 0,
				     &b) ||
	    !control_conn_query(f->side, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS, lift_cb,
				f)) {
		log_error("fleet: database %s: out of memory lifting a fence", f->db->name);
		retry_soon(f);
	}
	pq_buf_free(&b);
}

static void fdb_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fdb *f = arg;

	(void)fd;
	(void)what;
	switch (f->st) {
	case FD_DRAINING:
		/* drain_timeout: say so; the coordinator aborts, which resumes it */
		snprintf(f->ack_detail, sizeof(f->ack_detail),
			 "drain_timeout expired with %d transactions still open",
			 db_in_flight(f->db));
		f->ack_ok = false;
		db_cancel_checks(f->db);
		set_state(f, FD_CHECKING);
		ack(f);
		break;
	case FD_LIFTING:
		lift(f);
		break;
	default:
		break;
	}
}

/* ---- what a poll says ---- */

/* A switch is pausing the database: follow it, or take its abort over. */
static void follow_pausing(struct fdb *f, const struct fleet_row *r)
{
	bool mine = strcmp(r->coordinator, fleet_me()) == 0;
	bool busy = f->st != FD_NONE; /* a follower's switch of some epoch is under way */

	if (mine || (busy && r->epoch == f->held_epoch && r->expired)) {
		/*
		 * This instance coordinated it before a restart, or its
		 * coordinator's lease expired: abort it (fence first).
		 */
		if (f->st != FD_CLAIMING)
			claim(f, r->epoch, false);
		return;
	}
	if (!busy || r->epoch > f->held_epoch) {
		if (r->has_switch_to && r->route == f->db->route)
			follow_pause(f, r->epoch, r->switch_to);
		else if (!f->held)
			/* a switch from a side this instance does not serve: wait for its end */
			fdb_hold(f);
	}
}

/* No switch in flight for the database: serve the fleet's route. */
static void follow_settled(struct fdb *f, const struct fleet_row *r)
{
	if (r->route != f->db->route) {
		if (f->st != FD_NONE && f->st != FD_ACKED && f->st != FD_DRAINING &&
		    f->st != FD_CHECKING && f->st != FD_CLAIMING)
			return;
		if (f->st != FD_ACKED)
			db_cancel_checks(f->db); /* not captured in time: those sessions close */
		follow_flip(f, r->route);
		return;
	}
	if (f->held) {
		if (f->st != FD_NONE)
			follow_abort(f);
		else
			fdb_release(f); /* the start-up wait, or a switch from a side not served */
	}
}

void fdb_follow(struct fdb *f, const struct fleet_row *r)
{
	bool busy = f->st != FD_NONE; /* a follower's switch of some epoch is under way */

	if (r)
		f->epoch = r->epoch;
	if (cutover_running(f->db))
		return; /* this instance coordinates: the engine deals with the row */
	if (f->st == FD_FLIPPING || f->st == FD_MARKING || f->st == FD_LIFTING)
		return; /* finishing a step already decided */
	if (busy && f->held && fleet_epoch_at(r, f->held_epoch) == FLEET_EPOCH_LOST) {
		/* the fleet database lost the epoch held for: abort it (fence first) */
		if (f->st != FD_CLAIMING)
			claim(f, f->held_epoch, true);
		return;
	}
	if (r == NULL)
		return; /* no row, nothing held for it: its route file stands */
	switch (r->state) {
	case FLEET_PAUSING:
		follow_pausing(f, r);
		break;
	case FLEET_ABORTING:
		if (r->expired && f->st != FD_CLAIMING)
			claim(f, r->epoch, false);
		else if (!f->held)
			fdb_hold(f); /* its old side may still be fenced: wait for 'aborted' */
		break;
	case FLEET_IDLE:
	case FLEET_DECIDED:
	case FLEET_ABORTED:
	case FLEET_OTHER:
		follow_settled(f, r);
		break;
	}
}

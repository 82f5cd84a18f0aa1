/*
 * fleet.c - what every member of a fleet does (see fleet.h): the heartbeat
 * and poll of the fleet database, and the follower's side of a switch that
 * another instance coordinates.
 *
 * One control connection to the fleet database carries everything, one
 * query at a time: the schema at start, then every beat a single round
 * trip that LISTENs, upserts this instance's row and reads every
 * database's row.  A NOTIFY on the channel polls at once; while anything
 * is in flight (a switch, a database held) the beat is fast.
 *
 * A follower, per database (struct fdb), moves through:
 *
 *   NONE -> DRAINING (held; its own transactions run to their end, at most
 *   drain_timeout) -> CHECKING (the session-pooled sessions' state is
 *   captured, as a switch does) -> ACKED (the ack is in the fleet database,
 *   with the process IDs of its old-side servers, which the coordinator's
 *   fence spares) -> FLIPPING (on the decision: the route file is written,
 *   the sessions move, traffic resumes on the new side) -> NONE; or back to
 *   NONE on the abort, resuming on the old side.  A follower whose
 *   coordinator's lease expired takes the abort over: CLAIMING (the row is
 *   set to aborting under its own lease) -> LIFTING (the old side's fence
 *   is lifted, retried until it is) -> MARKING (aborted) -> NONE.
 *
 * The rules of docs/fleet.md: the route changes only through a decision in
 * the fleet database; a held database resumes on the old side only after
 * the abort is read, and stays held while the fleet database cannot be
 * read; at start every database waits for the fleet's route (at most
 * fleet_lease).
 */
#include "admin/cutover/fleet.h"

#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/fleet_sql.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/list.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/relocate.h"
#include "proxy/runtime.h"

/* The beat while nothing is in flight, at most (and at most a fifth of the lease). */
#define FLEET_BEAT_MS 1000
/* The beat while a switch is in flight somewhere or a database is held. */
#define FLEET_FAST_MS 50
/* A fence lift that failed is tried again after this. */
#define FLEET_RETRY_MS 500
/* Old-side server process IDs an ack carries, at most. */
#define FLEET_PIDS_MAX 4096

enum fd_state {
	FD_NONE,
	FD_DRAINING,
	FD_CHECKING,
	FD_ACKED,
	FD_FLIPPING,
	FD_CLAIMING,
	FD_LIFTING,
	FD_MARKING,
};

static const char *const fd_names[] = {
	[FD_NONE] = "none",       [FD_DRAINING] = "draining", [FD_CHECKING] = "checking",
	[FD_ACKED] = "acked",     [FD_FLIPPING] = "flipping", [FD_CLAIMING] = "claiming",
	[FD_LIFTING] = "lifting", [FD_MARKING] = "marking",
};

/* A database as this instance follows the fleet. */
struct fdb {
	struct fdb *next;
	struct database *db; /* databases live until exit */
	enum fd_state st;
	bool held;   /* DB_HOLD_FLEET is this module's */
	bool synced; /* the fleet's row (or its absence) was read once */
	bool seen;   /* the last poll had a row for it */
	bool ack_ok; /* what the ack says */
	char ack_detail[200];
	int64_t epoch;      /* the last epoch seen in the fleet database */
	int64_t held_epoch; /* the switch it holds for (DRAINING .. MARKING) */
	enum route_side from, to;
	uint64_t t_hold;
	uint64_t t_acked;          /* when it had drained (for SHOW SWITCHES' drain_ms) */
	struct switch_record rec;  /* what SHOW SWITCHES will say of the switch it follows */
	struct event *timer;       /* drain_timeout, then the lift's retries */
	struct control_conn *side; /* the old side, to lift a fence when taking an abort over */
};

static struct {
	bool on;
	char me[128];
	char address[300];
	char started[40];
	struct control_conn *cc;
	struct event *beat;
	bool schema_done;
	bool polling;       /* a poll is in flight */
	bool poll_again;    /* a wake-up arrived meanwhile */
	uint64_t t_start;   /* when the membership started (us) */
	uint64_t t_ok;      /* the last successful poll (us); 0 before any */
	int live;           /* live instances at the last poll */
	bool sync_given_up; /* the start-up wait for the fleet's routes expired */
	struct fdb *dbs;
} fl;

bool fleet_on(void)
{
	return fl.on;
}

const char *fleet_me(void)
{
	return fl.me;
}

const char *fleet_conninfo(void)
{
	return rt.cfg->fleet;
}

int64_t fleet_lease_ms(void)
{
	return rt.cfg->fleet_lease_ms;
}

int fleet_live_instances(void)
{
	return fl.t_ok ? fl.live : -1;
}

int64_t fleet_heartbeat_age_ms(void)
{
	return fl.t_ok ? (int64_t)((rt_now_us() - fl.t_ok) / 1000) : -1;
}

static struct fdb *fdb_find(const struct database *db)
{
	for (struct fdb *f = fl.dbs; f; f = f->next)
		if (f->db == db)
			return f;
	return NULL;
}

int64_t fleet_epoch(const struct database *db)
{
	struct fdb *f = fdb_find(db);

	return f && f->synced ? f->epoch : -1;
}

static void fdb_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct fdb *fdb_get(struct database *db)
{
	struct fdb *f = fdb_find(db);

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
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
	f->next = fl.dbs;
	fl.dbs = f;
	return f;
}

static void fdb_hold(struct fdb *f)
{
	if (!f->held) {
		f->held = true;
		f->t_hold = rt_now_us();
		db_hold(f->db, DB_HOLD_FLEET);
	}
}

static void fdb_release(struct fdb *f)
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

/* ---- the beat ---- */

static bool any_in_flight(void)
{
	for (struct fdb *f = fl.dbs; f; f = f->next)
		if (f->held || f->st != FD_NONE || cutover_running(f->db))
			return true;
	return false;
}

static void beat_later(void)
{
	int64_t ms = rt.cfg->fleet_lease_ms / 5;
	struct timeval tv;

	if (ms > FLEET_BEAT_MS)
		ms = FLEET_BEAT_MS;
	if (any_in_flight())
		ms = FLEET_FAST_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(fl.beat, &tv);
}

static void poll_now(void);

void fleet_poll_soon(void)
{
	struct timeval tv = {0, 0};

	if (!fl.on)
		return;
	if (fl.polling) {
		fl.poll_again = true;
		return;
	}
	evtimer_add(fl.beat, &tv);
}

static void notify_cb(void *arg, const char *channel, const char *payload)
{
	(void)arg;
	(void)payload;
	if (strcmp(channel, FLEET_CHANNEL) == 0)
		fleet_poll_soon();
}

/* A query of this module on the fleet connection, with f as its argument; false: out of memory. */
static bool fleet_send(struct pq_buf *b, control_cb cb, void *arg)
{
	bool ok = !b->failed && control_conn_query(fl.cc, (const char *)b->data,
						   CONTROL_QUERY_TIMEOUT_MS, cb, arg);

	pq_buf_free(b);
	return ok;
}

bool fleet_query(const char *sql, control_cb cb, void *arg)
{
	return fl.on && control_conn_query(fl.cc, sql, CONTROL_QUERY_TIMEOUT_MS, cb, arg);
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
	    !fleet_ack_sql(&b, f->db->name, f->held_epoch, fl.me, f->ack_ok, f->ack_detail, pids,
			   n) ||
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
		ok = fleet_reclaim_lost_sql(&b, f->db->name, route_side_name(f->from), epoch, fl.me,
					    rt.cfg->fleet_lease_ms);
	} else {
		ok = fleet_claim_abort_sql(&b, f->db->name, epoch, fl.me, rt.cfg->fleet_lease_ms);
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
	if (!fleet_aborted_sql(&b, f->db->name, f->held_epoch, fl.me) ||
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

/* One databases row, as this instance reads it. */
struct fleet_row {
	const char *db;
	enum route_side route;
	int64_t epoch;
	const char *state;
	enum route_side switch_to;
	bool has_switch_to;
	const char *coordinator;
	bool expired;
};

static void follow(struct fdb *f, const struct fleet_row *r)
{
	bool mine = strcmp(r->coordinator, fl.me) == 0;
	bool busy = f->st != FD_NONE; /* a follower's switch of some epoch is under way */

	f->epoch = r->epoch;
	if (cutover_running(f->db))
		return; /* this instance coordinates: the engine deals with the row */
	if (f->st == FD_FLIPPING || f->st == FD_MARKING || f->st == FD_LIFTING)
		return; /* finishing a step already decided */
	if (busy && f->held && r->epoch < f->held_epoch) {
		/* the epoch held for is gone from the fleet: abort it (fence first) */
		if (f->st != FD_CLAIMING)
			claim(f, f->held_epoch, true);
		return;
	}
	if (strcmp(r->state, "pausing") == 0) {
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
		return;
	}
	if (strcmp(r->state, "aborting") == 0) {
		if (r->expired && f->st != FD_CLAIMING)
			claim(f, r->epoch, false);
		else if (!f->held)
			fdb_hold(f); /* its old side may still be fenced: wait for 'aborted' */
		return;
	}
	/* idle, decided, aborted: no switch in flight for this database */
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

static bool parse_side(const char *s, enum route_side *out)
{
	if (strcmp(s, "source") == 0)
		*out = SIDE_SOURCE;
	else if (strcmp(s, "target") == 0)
		*out = SIDE_TARGET;
	else
		return false;
	return true;
}

static void poll_cb(void *arg, const struct control_result *r)
{
	bool again = fl.poll_again;

	(void)arg;
	fl.polling = false;
	fl.poll_again = false;
	/* held for the fleet while it cannot be read: query_wait_timeout counts */
	for (struct fdb *f = fl.dbs; f; f = f->next)
		f->db->hold_times_out = !r->ok && (f->held || cutover_running(f->db));
	if (!r->ok) {
		log_warning("fleet: could not reach the fleet database: %s%s", r->error,
			    any_in_flight() ? " (held databases stay held)" : "");
	} else {
		const PGresult *res = r->res;
		int n = res ? PQntuples(res) : 0;

		fl.t_ok = rt_now_us();
		for (struct fdb *f = fl.dbs; f; f = f->next)
			f->seen = false;
		for (int i = 0; i < n; i++) {
			struct fleet_row row = {0};
			struct database *db = db_find(PQgetvalue(res, i, 0));
			struct fdb *f;

			row.db = PQgetvalue(res, i, 0);
			row.epoch = strtoll(PQgetvalue(res, i, 2), NULL, 10);
			row.state = PQgetvalue(res, i, 3);
			row.has_switch_to = parse_side(PQgetvalue(res, i, 4), &row.switch_to);
			row.coordinator = PQgetvalue(res, i, 5);
			row.expired = strcmp(PQgetvalue(res, i, 6), "t") == 0;
			if (i == 0)
				fl.live = atoi(PQgetvalue(res, 0, 7));
			if (db == NULL || db->cfg == NULL ||
			    !parse_side(PQgetvalue(res, i, 1), &row.route))
				continue;
			f = fdb_get(db);
			if (f == NULL)
				continue;
			f->synced = true;
			f->seen = true;
			follow(f, &row);
		}
		if (n == 0)
			fl.live = 1;
		/* databases the fleet has no row for: their route files stand */
		for (struct fdb *f = fl.dbs; f; f = f->next) {
			if (!f->synced) {
				f->synced = true;
				if (f->held && f->st == FD_NONE)
					fdb_release(f);
			} else if (!f->seen && f->held && !cutover_running(f->db) &&
				   (f->st == FD_DRAINING || f->st == FD_CHECKING ||
				    f->st == FD_ACKED)) {
				/* held for a switch whose row the fleet has lost: abort it (fence first) */
				claim(f, f->held_epoch, true);
			}
		}
	}
	if (!fl.sync_given_up &&
	    (rt_now_us() - fl.t_start) / 1000 > (uint64_t)rt.cfg->fleet_lease_ms) {
		fl.sync_given_up = true;
		for (struct fdb *f = fl.dbs; f; f = f->next) {
			if (!f->synced && f->held && f->st == FD_NONE) {
				log_error("fleet: database %s: the fleet database could not be read within fleet_lease: serving the %s its route file names until it can",
					  f->db->name, route_side_name(f->db->route));
				fdb_release(f);
			}
		}
	}
	if (again)
		fleet_poll_soon();
	else
		beat_later();
}

static void schema_cb(void *arg, const struct control_result *r)
{
	(void)arg;
	fl.polling = false;
	if (r->ok) {
		fl.schema_done = true;
		log_info("fleet: member %s of the fleet at %s", fl.me, control_conn_label(fl.cc));
		poll_now();
		return;
	}
	log_warning("fleet: could not prepare the fleet database (schema pgcutover): %s", r->error);
	beat_later();
}

static void poll_now(void)
{
	struct fleet_db_state *st;
	struct list_node *n;
	size_t k = 0, count = 0;
	struct pq_buf b;

	if (fl.polling)
		return;
	if (!fl.schema_done) {
		fl.polling = true;
		if (!control_conn_query(fl.cc, fleet_schema_sql(), CONTROL_QUERY_TIMEOUT_MS,
					schema_cb, NULL)) {
			fl.polling = false;
			beat_later();
		}
		return;
	}
	list_for_each(n, &rt.databases)
		count++;
	st = calloc(count ? count : 1, sizeof(*st));
	if (st == NULL) {
		beat_later();
		return;
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->removed)
			continue;
		st[k].name = db->name;
		st[k].route = route_side_name(db->route);
		st[k].paused = db_paused(db);
		k++;
	}
	pq_buf_init(&b);
	if (fleet_poll_sql(&b, fl.me, fl.address, fl.started, st, k, rt.cfg->fleet_lease_ms)) {
		fl.polling = true;
		if (!fleet_send(&b, poll_cb, NULL)) {
			fl.polling = false;
			beat_later();
		}
	} else {
		pq_buf_free(&b);
		beat_later();
	}
	free(st);
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	poll_now();
}

/* ---- start and stop ---- */

void fleet_start(void)
{
	struct list_node *n;
	time_t now = time(NULL);
	struct tm tm;

	if (rt.cfg->fleet == NULL || rt.cfg->fleet[0] == '\0')
		return;
	if (rt.cfg->instance_name) {
		snprintf(fl.me, sizeof(fl.me), "%s", rt.cfg->instance_name);
	} else {
		char host[100] = "";

		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "localhost");
		snprintf(fl.me, sizeof(fl.me), "%s:%d", host, rt.cfg->listen_port);
	}
	snprintf(fl.address, sizeof(fl.address), "%s:%d", rt.cfg->listen_addr, rt.cfg->listen_port);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(fl.started, sizeof(fl.started), "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		snprintf(fl.started, sizeof(fl.started), "now");
	fl.cc = control_conn_new(rt.base, rt.dns, rt.cfg->fleet, "fleet");
	fl.beat = evtimer_new(rt.base, beat_cb, NULL);
	if (fl.cc == NULL || fl.beat == NULL) {
		log_error("fleet: out of memory: not a member of the fleet");
		return;
	}
	control_conn_on_notify(fl.cc, notify_cb, NULL);
	fl.on = true;
	fl.t_start = rt_now_us();
	/* every database waits for the fleet's route before its first transaction */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct fdb *f = db->removed ? NULL : fdb_get(db);

		if (f)
			fdb_hold(f);
	}
	poll_now();
}

void fleet_added(struct database *db)
{
	struct fdb *f = fdb_get(db);

	if (f == NULL || f->synced)
		return;
	fdb_hold(f);
	fleet_poll_soon();
}

void fleet_stop(void)
{
	while (fl.dbs) {
		struct fdb *f = fl.dbs;

		fl.dbs = f->next;
		if (f->timer)
			event_free(f->timer);
		if (f->side)
			control_conn_free(f->side);
		free(f);
	}
	if (fl.beat)
		event_free(fl.beat);
	if (fl.cc)
		control_conn_free(fl.cc);
	memset(&fl, 0, sizeof(fl));
}

/*
 * fleet_switch.c - the coordinator's side of a fleet's switch: the phases
 * FLEET_PAUSE, FLEET_DRAIN and DECIDE of the engine (engine.h), the lease,
 * and the fleet's part of the rollback.  Without a fleet each phase ends
 * at once.
 *
 *   FLEET_PAUSE  on this switch's own session to the fleet database: the
 *                database's advisory lock, the epoch bumped, the row set to
 *                pausing under a lease (fleet_sql.h); the other live
 *                instances are named, to be waited for.
 *   DRAIN        this instance's own drain, while the others drain theirs.
 *   FLEET_DRAIN  until every instance named has acknowledged (drained,
 *                sessions captured), bounded by drain_timeout; one that
 *                could not fails the switch.  Their old-side servers are
 *                spared by the fence.
 *   FENCE        (fence.c) after a renewal of the lease, with a statement
 *                timeout of half the lease.
 *   DECIDE       the commit point: the row says decided and the new route.
 *                Tried again until the fleet database answers: nobody
 *                resumes on either side without a decision or an abort.
 *
 * The lease is renewed every third of fleet_lease while the switch runs; a
 * renewal that finds the row no longer ours means another instance took
 * the abort over: the switch fails (and its rollback waits for that abort).
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/fleet.h"
#include "admin/cutover/fleet_sql.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How often the acks are read while the others drain. */
#define ACK_POLL_MS 5
/* A fleet query that could not reach the fleet database is tried again after this. */
#define RETRY_MS 100
/* Old-side server process IDs the acks may name, at most. */
#define PIDS_MAX 8192

static int64_t lease(const struct cutover *co)
{
	return co->config->fleet_lease_ms;
}

/* Send a fleet query of the switch; false (and the switch failed) when out of memory. */
static bool fleet_send_co(struct cutover *co, struct pq_buf *b, control_cb cb)
{
	bool ok = !b->failed && control_conn_query(co->fleet_ctl, (const char *)b->data,
						   CONTROL_QUERY_TIMEOUT_MS, cb, co);

	pq_buf_free(b);
	if (!ok && co->phase < CO_NPHASES)
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return ok;
}

static void retry_later(struct cutover *co, event_callback_fn fn)
{
	struct timeval tv = {0, RETRY_MS * 1000};

	if (co->fleet_timer)
		event_free(co->fleet_timer);
	co->fleet_timer = evtimer_new(rt.base, fn, co);
	if (co->fleet_timer)
		evtimer_add(co->fleet_timer, &tv);
}

/* ---- the lease ---- */

static void renew_timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_renewal(struct cutover *co)
{
	int64_t ms = lease(co) / 3;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (co->fleet_renew == NULL)
		co->fleet_renew = evtimer_new(rt.base, renew_timer_cb, co);
	if (co->fleet_renew)
		evtimer_add(co->fleet_renew, &tv);
}

static void renewed_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	void (*next)(struct cutover *) = co->fleet_next;

	co->fleet_next = NULL;
	if (co->phase >= CO_DECIDE)
		return; /* decided, or rolling back: the lease no longer matters */
	if (r->ok && r->res && PQntuples(r->res) == 1) {
		arm_renewal(co);
		if (next)
			next(co);
		return;
	}
	if (r->ok) {
		/* the rollback's abort says which (another instance's, or a lost row: record_abort) */
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "the fleet database no longer has this switch as pausing under fleet epoch %" PRId64
			     ": its lease expired and another instance aborted it, or the fleet database lost it",
			     co->fleet_epoch);
		return;
	}
	if (next) {
		/* a fence waits for a renewal: without one it may not go ahead */
		cutover_fail(co, r->sqlstate,
			     "could not renew the switch's lease in the fleet database: %s",
			     r->error);
		return;
	}
	log_warning("switch %s: could not renew its lease in the fleet database: %s", co->db->name,
		    r->error);
	arm_renewal(co);
}

void cutover_fleet_renew(struct cutover *co, void (*next)(struct cutover *co))
{
	struct pq_buf b;

	if (!co->fleet_began) {
		if (next)
			next(co);
		return;
	}
	co->fleet_next = next;
	pq_buf_init(&b);
	if (!fleet_renew_sql(&b, co->db->name, co->fleet_epoch, fleet_me(), lease(co))) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	(void)fleet_send_co(co, &b, renewed_cb);
}

static void renew_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->fleet_began && co->phase < CO_DECIDE && co->fleet_next == NULL)
		cutover_fleet_renew(co, NULL);
}

/* ---- FLEET_PAUSE ---- */

static void why_not_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct fleet_row buf;
	const struct fleet_row *row;

	if (co->phase != CO_FLEET_PAUSE)
		return;
	row = r->ok ? fleet_state_read(&buf, r->res) : NULL;
	if (row == NULL) {
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "the fleet database did not let this instance start the switch%s%s",
			     r->ok ? "" : ": ", r->ok ? "" : r->error);
		return;
	}
	if (row->route != co->from) {
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "the fleet says database \"%s\" is routed to its %s: this instance has not followed it yet; try again in a moment",
			     co->db->name, route_side_name(row->route));
		return;
	}
	cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		     "instance %s is switching database \"%s\" (fleet state %s, epoch %" PRId64 ")",
		     row->coordinator, co->db->name, fleet_state_name(row->state), row->epoch);
}

static void begin_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct pq_buf b;

	if (co->phase != CO_FLEET_PAUSE)
		return;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate,
			     "could not start the switch in the fleet database: %s", r->error);
		return;
	}
	if (r->res == NULL || PQntuples(r->res) != 1) {
		/* not ours: give the lock back (it may have been taken) and say why */
		pq_buf_init(&b);
		pq_put_bytes(&b, fleet_unlock_sql(), strlen(fleet_unlock_sql()));
		pq_put_bytes(&b, "; ", 2);
		if (!fleet_state_sql(&b, co->db->name)) {
			pq_buf_free(&b);
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		(void)fleet_send_co(co, &b, why_not_cb);
		return;
	}
	co->fleet_epoch = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
	co->fleet_began = true;
	if (PQgetvalue(r->res, 0, 1)[0] != '\0') {
		co->fleet_wait = strdup(PQgetvalue(r->res, 0, 1));
		if (co->fleet_wait == NULL) {
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		co->rec.instances = 2;
		for (const char *p = co->fleet_wait; *p; p++)
			co->rec.instances += *p == '\n';
	}
	log_info("switch %s: fleet epoch %" PRId64 ": asked %d other instance%s to pause%s%s",
		 co->db->name, co->fleet_epoch, co->rec.instances - 1,
		 co->rec.instances == 2 ? "" : "s", co->fleet_wait ? ": " : "",
		 co->fleet_wait ? co->fleet_wait : "");
	arm_renewal(co);
	fleet_poll_soon();
	cutover_phase_done(co);
}

void cutover_fleet_pause_enter(struct cutover *co)
{
	struct pq_buf b;

	if (!fleet_on() || co->dry_run) {
		cutover_phase_done(co);
		return;
	}
	co->fleet_ctl = control_conn_new(rt.base, rt.dns, fleet_conninfo(), "fleet switch");
	if (co->fleet_ctl == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	pq_buf_init(&b);
	if (!fleet_begin_sql(&b, co->db->name, fleet_me(), route_side_name(co->from),
			     route_side_name(co->to), lease(co))) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	(void)fleet_send_co(co, &b, begin_cb);
}

/* ---- FLEET_DRAIN ---- */

/* Is name among the instances waited for? */
static bool waited_for(const struct cutover *co, const char *name, size_t len)
{
	const char *p = co->fleet_wait;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n == len && memcmp(p, name, n) == 0)
			return true;
		p = nl ? nl + 1 : p + n;
	}
	return false;
}

static void acks_poll(struct cutover *co);

static void acks_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase == CO_FLEET_DRAIN)
		acks_poll(co);
}

static void acks_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	int n, acked = 0, waiting = co->rec.instances - 1;

	co->fleet_querying = false;
	if (co->phase != CO_FLEET_DRAIN)
		return;
	if (co->aborting) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	if (!r->ok) {
		/* the deadline (drain_timeout) bounds the tries */
		log_warning("switch %s: could not read the fleet's acknowledgements: %s",
			    co->db->name, r->error);
		retry_later(co, acks_timer_cb);
		return;
	}
	n = r->res ? PQntuples(r->res) : 0;
	co->nfleet_pids = 0;
	for (int i = 0; i < n; i++) {
		const char *name = PQgetvalue(r->res, i, 0);
		const char *pids = PQgetvalue(r->res, i, 3);

		if (strcmp(PQgetvalue(r->res, i, 1), "t") != 0) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "instance %s could not pause: %s", name,
				     PQgetvalue(r->res, i, 2));
			return;
		}
		if (waited_for(co, name, strlen(name)))
			acked++;
		/* every instance that paused keeps its old-side servers through the fence */
		while (*pids && co->nfleet_pids < PIDS_MAX) {
			char *end;
			unsigned long v = strtoul(pids, &end, 10);

			if (end == pids)
				break;
			co->fleet_pids[co->nfleet_pids++] = (uint32_t)v;
			pids = *end == ',' ? end + 1 : end;
		}
	}
	co->rec.instances_acked = 1 + acked;
	if (acked < waiting) {
		struct timeval tv = {0, ACK_POLL_MS * 1000};

		if (co->fleet_timer)
			event_free(co->fleet_timer);
		co->fleet_timer = evtimer_new(rt.base, acks_timer_cb, co);
		if (co->fleet_timer == NULL || evtimer_add(co->fleet_timer, &tv) != 0)
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	log_info("switch %s: every instance paused (%d)", co->db->name, co->rec.instances);
	co->rec.ms_drain += cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

static void acks_poll(struct cutover *co)
{
	struct pq_buf b;

	if (co->fleet_querying)
		return;
	pq_buf_init(&b);
	if (!fleet_acks_sql(&b, co->db->name, co->fleet_epoch)) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	co->fleet_querying = true;
	if (!fleet_send_co(co, &b, acks_cb))
		co->fleet_querying = false;
}

void cutover_fleet_drain_enter(struct cutover *co)
{
	if (!co->fleet_began) {
		cutover_phase_done(co);
		return;
	}
	if (co->fleet_pids == NULL)
		co->fleet_pids = calloc(PIDS_MAX, sizeof(*co->fleet_pids));
	if (co->fleet_pids == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	acks_poll(co);
}

void cutover_fleet_drain_expired(struct cutover *co)
{
	char missing[400] = "";
	const char *p = co->fleet_wait;

	/* the instances named that have not acknowledged (the last read's view) */
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p), used = strlen(missing);

		snprintf(missing + used, sizeof(missing) - used, "%s%.*s", used ? ", " : "", (int)n,
			 p);
		p = nl ? nl + 1 : p + n;
	}
	cutover_fail(co, SQLSTATE_QUERY_CANCELED,
		     "drain_timeout expired before every instance paused (%d of %d did; waited for %s)",
		     co->rec.instances_acked, co->rec.instances, missing);
}

/* ---- DECIDE ---- */

static void decide_send(struct cutover *co);

static void decide_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	decide_send(arg);
}

static void decided_state_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct fleet_row buf;
	const struct fleet_row *row;

	if (co->phase != CO_DECIDE)
		return;
	if (!r->ok) {
		log_warning("switch %s: could not read the fleet's decision: %s (trying again)",
			    co->db->name, r->error);
		retry_later(co, decide_timer_cb);
		return;
	}
	row = fleet_state_read(&buf, r->res);
	switch (fleet_epoch_at(row, co->fleet_epoch)) {
	case FLEET_EPOCH_LOST:
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "the fleet database has lost this switch (fleet epoch %" PRId64
			     "): was it restored or failed over?",
			     co->fleet_epoch);
		return;
	case FLEET_EPOCH_CURRENT:
		if (row->state == FLEET_DECIDED && row->route == co->to) {
			/* an earlier try committed, its answer was lost */
			co->fleet_decided = true;
			fleet_poll_soon();
			cutover_phase_done(co);
			return;
		}
		break;
	case FLEET_EPOCH_PASSED:
		break;
	}
	/* the row is no longer this switch's: another instance took the abort over */
	cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		     "this switch's lease in the fleet database expired and another instance aborted it");
}

static void decide_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct pq_buf b;

	if (co->phase != CO_DECIDE)
		return;
	if (r->ok && r->res && PQntuples(r->res) == 1) {
		co->fleet_decided = true;
		log_info("switch %s: fleet epoch %" PRId64 ": decided, route %s", co->db->name,
			 co->fleet_epoch, route_side_name(co->to));
		fleet_poll_soon();
		cutover_phase_done(co);
		return;
	}
	if (!r->ok)
		log_warning("switch %s: could not commit the decision in the fleet database: %s (asking again)",
			    co->db->name, r->error);
	/* no row, or no answer: what does the row say now? */
	pq_buf_init(&b);
	if (!fleet_state_sql(&b, co->db->name)) {
		pq_buf_free(&b);
		retry_later(co, decide_timer_cb);
		return;
	}
	if (!r->ok) {
		pq_buf_free(&b);
		retry_later(co, decide_timer_cb);
		return;
	}
	(void)fleet_send_co(co, &b, decided_state_cb);
}

static void decide_send(struct cutover *co)
{
	struct pq_buf b;

	if (co->phase != CO_DECIDE)
		return;
	pq_buf_init(&b);
	if (!fleet_decide_sql(&b, co->db->name, co->fleet_epoch, fleet_me(),
			      route_side_name(co->to))) {
		pq_buf_free(&b);
		retry_later(co, decide_timer_cb);
		return;
	}
	if (!control_conn_query(co->fleet_ctl, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
				decide_cb, co))
		retry_later(co, decide_timer_cb);
	pq_buf_free(&b);
}

void cutover_decide_enter(struct cutover *co)
{
	if (!co->fleet_began) {
		cutover_phase_done(co);
		return;
	}
	decide_send(co);
}

/* ---- the rollback ---- */

static void claim_send(struct cutover *co);
static void mark_send(struct cutover *co);

static void claim_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	claim_send(arg);
}

static void mark_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mark_send(arg);
}

static void claim_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (co->phase != CO_ROLLBACK || co->rollback_step != 1)
		return;
	if (!r->ok) {
		/* no instance resumes on the old side without the abort recorded */
		log_warning("switch %s: could not record the abort in the fleet database: %s (trying again, traffic held)",
			    co->db->name, r->error);
		retry_later(co, claim_timer_cb);
		return;
	}
	co->fleet_claimed = r->res && PQntuples(r->res) == 1;
	if (!co->fleet_claimed)
		log_info("switch %s: another instance holds the abort of fleet epoch %" PRId64,
			 co->db->name, co->fleet_epoch);
	cutover_rollback_next(co);
}

static void claim_send(struct cutover *co)
{
	struct pq_buf b;

	pq_buf_init(&b);
	if (!fleet_claim_abort_sql(&b, co->db->name, co->fleet_epoch, fleet_me(), lease(co)) ||
	    !control_conn_query(co->fleet_ctl, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
				claim_cb, co))
		retry_later(co, claim_timer_cb);
	pq_buf_free(&b);
}

void cutover_fleet_claim(struct cutover *co)
{
	if (co->fleet_renew)
		evtimer_del(co->fleet_renew);
	claim_send(co);
}

static void recorded_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (co->phase != CO_ROLLBACK || co->rollback_step != 4)
		return;
	if (!r->ok) {
		log_warning("switch %s: could not record the abort in the fleet database: %s (trying again, traffic held)",
			    co->db->name, r->error);
		retry_later(co, mark_timer_cb);
		return;
	}
	log_info("switch %s: fleet epoch %" PRId64 " recorded as aborted", co->db->name,
		 co->fleet_epoch);
	fleet_poll_soon();
	cutover_rollback_next(co);
}

/*
 * The fleet database no longer has this switch (no row, or an older epoch):
 * it was restored, or failed over to a replica that had not received it.
 * Nobody else can hold its abort then: record it, so that the instances
 * holding for it resume.
 */
static void record_abort(struct cutover *co)
{
	struct pq_buf b;

	log_warning("switch %s: the fleet database has lost fleet epoch %" PRId64
		    " (restored, or failed over?): recording its abort",
		    co->db->name, co->fleet_epoch);
	pq_buf_init(&b);
	if (!fleet_record_abort_sql(&b, co->db->name, route_side_name(co->from), co->fleet_epoch,
				    fleet_me()) ||
	    !control_conn_query(co->fleet_ctl, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
				recorded_cb, co))
		retry_later(co, mark_timer_cb);
	pq_buf_free(&b);
}

static void mark_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (co->phase != CO_ROLLBACK || co->rollback_step != 4)
		return;
	if (!r->ok) {
		log_warning("switch %s: could not read or record the fleet's abort: %s (trying again, traffic held)",
			    co->db->name, r->error);
		retry_later(co, mark_timer_cb);
		return;
	}
	if (!co->fleet_claimed) {
		struct fleet_row buf;
		const struct fleet_row *row = fleet_state_read(&buf, r->res);

		/*
		 * Lost: nobody else can hold its abort, record it.  Else someone
		 * else's abort: resume once it says aborted (or a newer epoch began).
		 */
		switch (fleet_epoch_at(row, co->fleet_epoch)) {
		case FLEET_EPOCH_LOST:
			record_abort(co);
			return;
		case FLEET_EPOCH_CURRENT:
			if (row->state != FLEET_ABORTED) {
				retry_later(co, mark_timer_cb);
				return;
			}
			break;
		case FLEET_EPOCH_PASSED:
			break;
		}
	}
	log_info("switch %s: fleet epoch %" PRId64 " aborted", co->db->name, co->fleet_epoch);
	fleet_poll_soon();
	cutover_rollback_next(co);
}

static void mark_send(struct cutover *co)
{
	struct pq_buf b;
	bool ok;

	pq_buf_init(&b);
	ok = co->fleet_claimed ? fleet_aborted_sql(&b, co->db->name, co->fleet_epoch, fleet_me())
			       : fleet_state_sql(&b, co->db->name);
	if (!ok || !control_conn_query(co->fleet_ctl, (const char *)b.data,
				       CONTROL_QUERY_TIMEOUT_MS, mark_cb, co))
		retry_later(co, mark_timer_cb);
	pq_buf_free(&b);
}

void cutover_fleet_mark_aborted(struct cutover *co)
{
	mark_send(co);
}

/* ---- the end ---- */

void cutover_fleet_end(struct cutover *co)
{
	co->db->hold_times_out = false;
	if (co->fleet_timer)
		evtimer_del(co->fleet_timer);
	if (co->fleet_renew)
		evtimer_del(co->fleet_renew);
	/* the lock goes with the session */
	if (co->fleet_ctl) {
		control_conn_free(co->fleet_ctl);
		co->fleet_ctl = NULL;
	}
	if (co->fleet_began)
		fleet_poll_soon();
}

void cutover_fleet_free(struct cutover *co)
{
	cutover_fleet_end(co);
	if (co->fleet_timer)
		event_free(co->fleet_timer);
	if (co->fleet_renew)
		event_free(co->fleet_renew);
	co->fleet_timer = NULL;
	co->fleet_renew = NULL;
	free(co->fleet_wait);
	free(co->fleet_pids);
	co->fleet_wait = NULL;
	co->fleet_pids = NULL;
}

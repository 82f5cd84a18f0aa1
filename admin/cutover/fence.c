/*
 * fence.c - fencing: the old side of a switch refuses application writes.
 *
 * In a switch (fence = on): right after the drain, the side being left is
 * fenced (fence_sql.h: its application roles read-only there, their other
 * sessions ended), so that a client that bypasses pgcutover (a cron job, a
 * second proxy, an application with the old address) cannot write where
 * nobody will read, and nothing written after the lag goal is read can still
 * be on its way.  Just before traffic resumes on the new side, any fence
 * there is lifted; that must succeed, so it is retried.  A switch that fails
 * after fencing lifts the old side's fence again before resuming there (the
 * rollback).  FENCE and UNFENCE on the console do the same by hand
 * (cutover_fence()).
 */
#include <event2/event.h>
#include <libpq-fe.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control_open.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/fence_sql.h"
#include "admin/cutover/fleet.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/*
 * Lifting a fence before traffic resumes on a side must succeed: it is
 * tried again every FENCE_RETRY_MS, traffic held meanwhile, for as long as
 * it takes (a fence lifted by hand counts: only fenced roles are touched).
 * The first FENCE_LOG_FIRST failures are logged, then one in FENCE_LOG_EVERY.
 */
#define FENCE_RETRY_MS  500
#define FENCE_LOG_FIRST 5
#define FENCE_LOG_EVERY 20

/*
 * The statement that fences (on) or unfences one side of a database, for
 * the roles pgcutover logs in to it as.  False when out of memory.
 */
bool cutover_fence_statement(struct database *db, const struct db_config *dc,
			     const struct userlist *users, enum route_side side, bool on,
			     bool state_only, const uint32_t *also, size_t nalso, struct pq_buf *out)
{
	size_t n = dc->user ? 1 : userlist_count(users), nkeep;
	/* every server connection pgcutover holds to the database is spared (session
	 * pooling: one per idle client, thousands of them) */
	size_t keep_max = db_server_count(db) + 1;
	const char **roles = calloc(n ? n : 1, sizeof(*roles));
	uint32_t *keep = calloc(keep_max + nalso, sizeof(*keep));
	struct fence_spec spec;

	if (roles == NULL || keep == NULL) {
		free(roles);
		free(keep);
		return false;
	}
	/* the section's user, or every auth_file user (the roles clients log in as) */
	if (dc->user)
		roles[0] = dc->user;
	else
		for (size_t i = 0; i < n; i++)
			roles[i] = userlist_user(users, i);
	nkeep = db_server_pids(db, side, keep, keep_max);
	/* the other instances' servers there (a fleet's acks) */
	for (size_t i = 0; i < nalso; i++)
		keep[nkeep++] = also[i];
	spec = (struct fence_spec){.roles = roles,
				   .nroles = n,
				   .control_user = dc->d.control_user,
				   .keep_pids = keep,
				   .nkeep = nkeep};
	if (state_only)
		fence_state_sql(out, &spec);
	else
		fence_sql(out, &spec, on);
	free(roles);
	free(keep);
	return !out->failed;
}

/* What the unfence of the new side reads last: the side's next transaction ID. */
static const char NEXT_XID_SQL[] =
	"SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())::text";

/*
 * Run the fence statement for one side on the switch's control connection
 * (lifting the new side's fence reads its next transaction ID after it, in
 * the same round trip: NEXT_XID_SQL; without a fence, only that).  False
 * when out of memory (cb will not be called).
 */
static bool fence_query(struct cutover *co, enum route_side side, bool on, control_cb cb)
{
	struct pq_buf b;
	bool ok, read_xid = !on && side == co->to;

	pq_buf_init(&b);
	if (on && co->fleet_began) {
		/*
		 * A fleet's coordinator fences within its lease: the statement
		 * either ends within half of it or not at all, so that it cannot
		 * land after the lease expired and another instance took the
		 * abort over (and lifted the fence) meanwhile.
		 */
		char set[80];

		snprintf(set, sizeof(set), "SET LOCAL statement_timeout = '%" PRId64 "ms'; ",
			 co->config->fleet_lease_ms / 2);
		pq_put_bytes(&b, set, strlen(set));
	}
	if (cutover_cfg(co)->d.fence &&
	    !cutover_fence_statement(co->db, cutover_cfg(co), rt.users, side, on, false,
				     co->fleet_pids, co->nfleet_pids, &b)) {
		pq_buf_free(&b);
		return false;
	}
	if (read_xid) {
		if (b.len > 0)
			b.len--; /* the statement's NUL: the SELECT follows */
		pq_put_bytes(&b, " ", 1);
		pq_put_bytes(&b, NEXT_XID_SQL, strlen(NEXT_XID_SQL));
		pq_put_u8(&b, 0);
	}
	if (b.failed) {
		pq_buf_free(&b);
		return false;
	}
	co->pending++;
	ok = control_conn_query(co->ctl[side], (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS, cb,
				co);
	pq_buf_free(&b);
	if (!ok)
		co->pending--;
	return ok;
}

/* ---- fencing the old side ---- */

static void fence_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_FENCE)
		return;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate,
			     "could not fence the %s: %s (control_user needs CREATEROLE and pg_signal_backend)",
			     route_side_name(co->from), r->error);
		return;
	}
	co->rec.ms_fence += cutover_ms_since(co->t_fence);
	if (r->res && PQntuples(r->res) == 1) {
		const char *untouched = PQgetvalue(r->res, 0, 1);

		log_info("switch %s: the %s is fenced (%s sessions ended)", co->db->name,
			 route_side_name(co->from), PQgetvalue(r->res, 0, 0));
		if (strcmp(untouched, "0") != 0)
			log_warning("switch %s: %s superuser sessions on the %s could not be ended: control_user is not a superuser",
				    co->db->name, untouched, route_side_name(co->from));
	}
	cutover_phase_done(co);
}

/* The fence itself, once a fleet's coordinator has renewed its lease. */
static void fence_go(struct cutover *co)
{
	co->fenced_from = true;
	if (!fence_query(co, co->from, true, fence_cb))
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

void cutover_fence_enter(struct cutover *co)
{
	co->t_fence = co->t_phase;
	if (!cutover_cfg(co)->d.fence || co->dry_run) {
		cutover_phase_done(co);
		return;
	}
	/*
	 * Counted as fenced from the moment the statement leaves: an answer lost
	 * to a timeout may hide a fence that took, and the rollback's lift
	 * touches only fenced roles.
	 */
	cutover_fleet_renew(co, fence_go);
}

/* ---- lifting a fence, with retries ---- */

static void unfence_retry_cb(evutil_socket_t fd, short what, void *arg);

/* Try again in FENCE_RETRY_MS: the switch's poll timer is free in both uses. */
static void unfence_later(struct cutover *co)
{
	struct timeval tv = {0, FENCE_RETRY_MS * 1000};

	event_free(co->poll);
	co->poll = evtimer_new(rt.base, unfence_retry_cb, co);
	if (co->poll == NULL || evtimer_add(co->poll, &tv) != 0)
		unfence_retry_cb(-1, 0, co); /* out of memory: try at once */
}

static void unfence_new_cb(void *arg, const struct control_result *r);
static void unfence_old_cb(void *arg, const struct control_result *r);
static void cutover_unfence_try(struct cutover *co);

static void unfence_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase == CO_UNFENCE)
		cutover_unfence_try(co);
	else if (co->phase == CO_ROLLBACK)
		cutover_rollback_unfence(co);
}

/* A failed try at lifting a fence, logged (not every time) with what to do. */
static void unfence_failed(struct cutover *co, enum route_side side, const struct control_result *r)
{
	if (co->attempts > FENCE_LOG_FIRST && co->attempts % FENCE_LOG_EVERY != 0)
		return;
	log_error("switch %s: could not lift the fence of the %s (try %d, again every %d ms, traffic held meanwhile): %s; fix it, or lift it by hand there as a superuser: ALTER ROLE ... IN DATABASE ... RESET default_transaction_read_only",
		  co->db->name, route_side_name(side), co->attempts, FENCE_RETRY_MS, r->error);
}

static void unfence_new_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	bool fence = cutover_cfg(co)->d.fence;

	co->pending--;
	if (co->phase != CO_UNFENCE)
		return;
	if (!r->ok && fence) {
		/* the route is flipped: traffic goes there once no fence is left */
		co->attempts++;
		unfence_failed(co, co->to, r);
		unfence_later(co);
		return;
	}
	if (r->ok && r->res && PQntuples(r->res) == 1 && PQnfields(r->res) == 1)
		snprintf(co->new_side_xid, sizeof(co->new_side_xid), "%s", PQgetvalue(r->res, 0, 0));
	if (!r->ok) {
		/* unknown: a switch back with lag_method none then needs FORCE */
		log_warning("switch %s: could not read the next transaction ID of the %s: %s",
			    co->db->name, route_side_name(co->to), r->error);
	}
	if (fence)
		co->rec.ms_fence += cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

/* One try at lifting the new side's fence (an out-of-memory try counts as failed). */
static void cutover_unfence_try(struct cutover *co)
{
	struct control_result oom = {.ok = false,
				     .sqlstate = SQLSTATE_OUT_OF_MEMORY,
				     .error = "out of memory"};

	if (!fence_query(co, co->to, false, unfence_new_cb)) {
		co->pending++;
		unfence_new_cb(co, &oom);
	}
}

void cutover_unfence_enter(struct cutover *co)
{
	co->attempts = 0;
	cutover_unfence_try(co);
}

static void unfence_old_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_ROLLBACK)
		return;
	if (!r->ok) {
		/* traffic resumes on the old side once no fence is left there */
		co->attempts++;
		unfence_failed(co, co->from, r);
		unfence_later(co);
		return;
	}
	co->fenced_from = false;
	log_info("switch %s: the fence of the %s is lifted again", co->db->name,
		 route_side_name(co->from));
	cutover_rollback_next(co);
}

void cutover_rollback_unfence(struct cutover *co)
{
	struct control_result oom = {.ok = false,
				     .sqlstate = SQLSTATE_OUT_OF_MEMORY,
				     .error = "out of memory"};

	if (!fence_query(co, co->from, false, unfence_old_cb)) {
		co->pending++;
		unfence_old_cb(co, &oom);
	}
}

/* ---- FENCE and UNFENCE on the console ---- */

/* One FENCE or UNFENCE by hand: its control connection and whom to tell. */
struct fence_job {
	struct fence_job *next;
	struct control_conn *ctl;
	cutover_done_fn done; /* NULL once its requester went away */
	void *who;
	char db[64];
	struct database *guarded; /* the guard at first sight: released when done */
	enum route_side side;
	bool on;
};

static struct fence_job *fence_jobs;

static void fence_job_unlink(struct fence_job *j)
{
	for (struct fence_job **pp = &fence_jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
}

static void fence_job_cb(void *arg, const struct control_result *r)
{
	struct fence_job *j = arg;
	char msg[400];

	fence_job_unlink(j);
	if (j->guarded) {
		/* the side routed to carries no fence now: traffic may start */
		if (r->ok) {
			log_info("database %s: a switch to its %s was cut short; any fence it left on its %s is lifted",
				 j->db, route_side_name(j->guarded->recorded.switching_to),
				 route_side_name(j->side));
			cutover_forget_switch_under_way(j->guarded);
		} else
			log_error("database %s: could not make sure that its %s carries no fence left by a switch cut short (%s): if its clients cannot write, run UNFENCE %s %s",
				  j->db, route_side_name(j->side), r->error, j->db,
				  route_side_name(j->side));
		db_release(j->guarded, DB_HOLD_GUARD);
	} else if (r->ok) {
		log_info("database %s: %s %s", j->db,
			 j->on ? "fenced its" : "lifted the fence of its", route_side_name(j->side));
		if (j->done)
			j->done(j->who, NULL, j->on ? "FENCE" : "UNFENCE");
	} else {
		snprintf(msg, sizeof(msg), "could not %s the %s of database \"%s\": %s",
			 j->on ? "fence" : "lift the fence of", route_side_name(j->side), j->db,
			 r->error);
		log_warning("%s", msg);
		if (j->done)
			j->done(j->who, r->sqlstate[0] ? r->sqlstate : SQLSTATE_INTERNAL_ERROR, msg);
	}
	control_conn_free(j->ctl); /* safe inside its callback */
	free(j);
}

/* Start one fence job on a side of db; false when out of memory. */
static bool fence_job_start(struct database *db, enum route_side side, bool on,
			    cutover_done_fn done, void *who, bool guard)
{
	struct fence_job *j = calloc(1, sizeof(*j));
	struct pq_buf b;

	if (j == NULL)
		return false;
	pq_buf_init(&b);
	j->ctl = control_open(rt.cfg, rt.users, db->cfg, side);
	if (j->ctl == NULL ||
	    !cutover_fence_statement(db, db->cfg, rt.users, side, on, false, NULL, 0, &b) ||
	    !control_conn_query(j->ctl, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
				fence_job_cb, j)) {
		pq_buf_free(&b);
		if (j->ctl)
			control_conn_free(j->ctl);
		free(j);
		return false;
	}
	pq_buf_free(&b);
	snprintf(j->db, sizeof(j->db), "%s", db->name);
	j->side = side;
	j->on = on;
	j->done = done;
	j->who = who;
	if (guard) {
		j->guarded = db;
		db_hold(db, DB_HOLD_GUARD);
	}
	j->next = fence_jobs;
	fence_jobs = j;
	return true;
}

bool cutover_fence(struct database *db, enum route_side side, bool on, cutover_done_fn done,
		   void *who, char *errbuf, size_t errlen)
{
	if (db->cfg == NULL) {
		snprintf(errbuf, errlen, "database \"%s\" is no longer configured", db->name);
		return false;
	}
	if (cutover_running(db)) {
		snprintf(errbuf, errlen,
			 "database \"%s\" is switching: its switch fences and lifts fences itself",
			 db->name);
		return false;
	}
	if (on && db->route == side) {
		snprintf(errbuf, errlen,
			 "database \"%s\" is routed to its %s: a fence there would make every new session of its clients read-only",
			 db->name, route_side_name(side));
		return false;
	}
	if (!fence_job_start(db, side, on, done, who, false)) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	return true;
}

/*
 * A database seen for the first time whose route file says a switch was
 * under way (switching_to): it was cut short (a crash, a kill) before its
 * flip, maybe after its fence, which leaves the side the database is still
 * routed to read-only for its clients.  Before any transaction runs there,
 * any such fence is lifted (only roles fenced now are touched).  New
 * transactions are held meanwhile, for at most one control query's time; a
 * failure is logged and traffic goes on.
 */
void cutover_guard(struct database *db)
{
	if (fleet_on())
		fleet_added(db);
	if (db->cfg == NULL || !db->recorded.switching || db->recorded.side != db->route)
		return;
	if (fleet_on()) {
		/*
		 * In a fleet the fleet database says how that switch ended: an
		 * abort (which lifts the fence first) or a decision (after which
		 * the fence must stay); fleet_follow.c follows it.  The mark goes.
		 */
		cutover_forget_switch_under_way(db);
		return;
	}
	if (db->cfg->d.reverse_replication)
		log_warning("database %s: a switch to its %s was cut short: the replication that feeds it may be left disabled (SHOW REPLICATION %s; ALTER SUBSCRIPTION ... ENABLE)",
			    db->name, route_side_name(db->recorded.switching_to), db->name);
	if (!db->cfg->d.fence) {
		cutover_forget_switch_under_way(db);
		return;
	}
	if (!fence_job_start(db, db->route, false, NULL, NULL, true))
		log_error("database %s: out of memory: its %s was not checked for a fence",
			  db->name, route_side_name(db->route));
}

bool cutover_guarding(const struct database *db)
{
	return (db->holds & DB_HOLD_GUARD) != 0;
}

void cutover_fence_forget(void *who)
{
	for (struct fence_job *j = fence_jobs; j; j = j->next)
		if (j->who == who)
			j->done = NULL;
}

void cutover_fence_free(void)
{
	while (fence_jobs) {
		struct fence_job *j = fence_jobs;

		fence_jobs = j->next;
		control_conn_free(j->ctl);
		free(j);
	}
}

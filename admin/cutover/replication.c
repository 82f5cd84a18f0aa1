/*
 * replication.c - reverse replication: a switch that can be undone with
 * nothing lost (reverse_replication = on, lag_method = lsn, PostgreSQL
 * logical replication).
 *
 * Two directions, never running at once on PostgreSQL 15 (changes an apply
 * worker writes are published again, so two running directions would loop):
 *
 *   forward: the operator's subscription on the target (subscription, or the
 *            one whose slot is replication_slot) from the source's slot;
 *   reverse: created by pgcutover, all named replication_name(): a
 *            publication FOR ALL TABLES and a slot on the target, a
 *            subscription on the source (owned by control_user).
 *
 * In a switch the direction that feeds the side switched to is "incoming",
 * the other one is "the way back".  PREPARE (outside the pause) makes sure
 * the way back exists, disabled, with nothing copied.  STOP_REPLICATION
 * (after the lag wait) disables the incoming subscription, waits for its
 * worker to stop and reads the new side's insert position.  After the flip,
 * START_REPLICATION advances the way back's replication origin to that
 * position and enables it: everything written on the new side after the
 * flip, and nothing the incoming direction wrote before, goes back.  On
 * PostgreSQL 16 and later the subscriptions pgcutover creates say origin =
 * none as well.  The rollback enables the incoming subscription again.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control_conninfo.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/replication_names.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How often the stop of the incoming worker is polled. */
#define REPL_POLL_MS 10

static bool reverse_on(const struct cutover *co)
{
	return cutover_cfg(co)->d.reverse_replication && cutover_cfg(co)->d.lag_method == LAG_LSN;
}

/* ---- one query at a time ---- */

/* Run sql on a side; false (and the switch failed) when it could not be queued. */
static bool repl_query(struct cutover *co, enum route_side side, const char *sql, control_cb cb)
{
	co->pending++;
	if (control_conn_query(co->ctl[side], sql, CONTROL_QUERY_TIMEOUT_MS, cb, co))
		return true;
	co->pending--;
	cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

/* ---- PREPARE: the way back exists, disabled, nothing copied ---- */

static void prepare_step(struct cutover *co);

/* One answer of the preparation: the readings of steps 0 and 1, then on. */
static void prepare_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	int step = co->repl_step;
	enum route_side side = step == 1 || step == 4 ? SIDE_SOURCE : SIDE_TARGET;

	if (!cutover_answer(co, r, CO_PREPARE,
			    step <= 1 ? "read the replication state" : "create the way back", side))
		return;
	if (step == 0 && r->res && PQntuples(r->res) == 1) {
		co->repl_target_version = atoi(PQgetvalue(r->res, 0, 0));
		co->repl_has_rev_pub = strcmp(PQgetvalue(r->res, 0, 1), "0") != 0;
		co->repl_has_rev_slot = strcmp(PQgetvalue(r->res, 0, 2), "0") != 0;
		if (PQgetisnull(r->res, 0, 3)) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "no subscription on the target replicates from slot \"%s\": set subscription",
				     cutover_cfg(co)->replication_slot);
			return;
		}
		snprintf(co->fwd_sub, sizeof(co->fwd_sub), "%s", PQgetvalue(r->res, 0, 3));
		co->repl_fwd_enabled = strcmp(PQgetvalue(r->res, 0, 4), "t") == 0;
	} else if (step == 1 && r->res && PQntuples(r->res) == 1) {
		co->repl_source_version = atoi(PQgetvalue(r->res, 0, 0));
		co->repl_has_rev_sub = strcmp(PQgetvalue(r->res, 0, 1), "0") != 0;
		co->repl_rev_enabled = strcmp(PQgetvalue(r->res, 0, 2), "t") == 0;
		co->repl_has_fwd_slot = strcmp(PQgetvalue(r->res, 0, 3), "0") != 0;
	}
	co->repl_step++;
	prepare_step(co);
}

/*
 * The preparation, one statement at a time:
 *   0  the target: its version, the reverse publication and slot, the
 *      forward subscription (its name, whether it is enabled);
 *   1  the source: its version, the reverse subscription (enabled?), the
 *      forward slot;
 *   2  going to the target (the way back is the reverse direction): the
 *      reverse publication, if missing;
 *   3  ...the reverse subscription, disabled, nothing copied, with its slot
 *      if that is missing too;
 *   4  ...or the slot alone (a subscription left whose slot was dropped);
 *      going back to the source (the way back is forward): the forward
 *      slot on the source, if missing;
 *   5  done.
 * A way back that is enabled while the other direction streams would make
 * the two loop: that fails the switch, before anything is held.
 */
static void prepare_step(struct cutover *co)
{
	const struct db_config *dc = cutover_cfg(co);
	bool to_target = co->to == SIDE_TARGET;
	struct repl_names n;
	char sql[2400];

	if (!replication_names(dc, co->fwd_sub, &n)) {
		cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE, "a replication name is too long");
		return;
	}
	switch (co->repl_step) {
	case 0:
		snprintf(sql, sizeof(sql),
			 "SELECT current_setting('server_version_num')::int,"
			 " (SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = %s),"
			 " (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = %s),"
			 " f.name, (SELECT s.subenabled FROM pg_catalog.pg_subscription s"
			 " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
			 " WHERE d.datname = pg_catalog.current_database() AND s.subname = f.name)"
			 " FROM (SELECT %s AS name) f",
			 n.rev_lit, n.rev_lit, n.fwd_sub_query);
		(void)repl_query(co, SIDE_TARGET, sql, prepare_cb);
		return;
	case 1:
		snprintf(sql, sizeof(sql),
			 "SELECT current_setting('server_version_num')::int,"
			 " (SELECT count(*) FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d"
			 " ON d.oid = s.subdbid WHERE d.datname = pg_catalog.current_database()"
			 " AND s.subname = %s),"
			 " (SELECT bool_or(s.subenabled) FROM pg_catalog.pg_subscription s"
			 " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
			 " WHERE d.datname = pg_catalog.current_database() AND s.subname = %s),"
			 " (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = %s)",
			 n.rev_lit, n.rev_lit, n.fwd_slot_lit);
		(void)repl_query(co, SIDE_SOURCE, sql, prepare_cb);
		return;
	case 2:
		if (to_target && co->repl_has_rev_sub && co->repl_rev_enabled) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "subscription %s on the source is enabled while the forward direction streams: the two would loop (disable it, or FINISH %s first)",
				     n.rev_ident, co->db->name);
			return;
		}
		if (!to_target && co->repl_fwd_enabled) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "the forward subscription %s on the target is enabled while the reverse direction streams: the two would loop (disable it)",
				     n.fwd_sub_ident);
			return;
		}
		if (!to_target) {
			co->repl_step = co->repl_has_fwd_slot ? 5 : 4;
			prepare_step(co);
			return;
		}
		if (co->repl_has_rev_pub) {
			co->repl_step = 3;
			prepare_step(co);
			return;
		}
		snprintf(sql, sizeof(sql), "CREATE PUBLICATION %s FOR ALL TABLES", n.rev_ident);
		(void)repl_query(co, SIDE_TARGET, sql, prepare_cb);
		return;
	case 3: {
		char *ci, lit[1200];
		const char *secret = userlist_secret(rt.users, dc->d.control_user);

		if (co->repl_has_rev_sub) {
			co->repl_step = co->repl_has_rev_slot ? 5 : 4;
			prepare_step(co);
			return;
		}
		if (secret && auth_secret_kind(secret) != AUTH_SECRET_PLAIN)
			secret = NULL;
		ci = dc->reverse_connection
			     ? strdup(dc->reverse_connection)
			     : control_conninfo_with_user(dc->target, dc->d.control_user, secret);
		if (ci == NULL || !sqlquote_literal(ci, lit, sizeof(lit))) {
			free(ci);
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "the reverse connection string does not parse or is too long");
			return;
		}
		free(ci);
		snprintf(sql, sizeof(sql),
			 "CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (enabled = false,"
			 " copy_data = false, create_slot = %s, slot_name = %s%s)",
			 n.rev_ident, lit, n.rev_ident, co->repl_has_rev_slot ? "false" : "true",
			 n.rev_lit, co->repl_source_version >= 160000 ? ", origin = none" : "");
		co->repl_step = 4; /* prepare_cb moves on to 5: the slot came with it */
		(void)repl_query(co, SIDE_SOURCE, sql, prepare_cb);
		return;
	}
	case 4:
		/* the way back's slot, alone: the reverse one on the target, the forward one on the source */
		snprintf(sql, sizeof(sql),
			 "SELECT pg_catalog.pg_create_logical_replication_slot(%s, 'pgoutput')",
			 to_target ? n.rev_lit : n.fwd_slot_lit);
		(void)repl_query(co, to_target ? SIDE_TARGET : SIDE_SOURCE, sql, prepare_cb);
		return;
	default:
		co->rec.ms_prepare += cutover_ms_since(co->t_phase);
		log_info("switch %s: the way back (%s replication) is ready, disabled",
			 co->db->name, to_target ? "reverse" : "forward");
		cutover_phase_done(co);
		return;
	}
}

/* The route file says a switch is under way: now the way back, if any. */
static void intent_stored(void *arg, bool ok, const char *errmsg)
{
	struct cutover_ticket *t = arg;
	struct cutover *co = t->co;

	free(t);
	if (co == NULL)
		return; /* the switch is over: it failed meanwhile */
	co->intent_ticket = NULL;
	if (co->phase != CO_PREPARE)
		return;
	if (!ok) {
		cutover_fail(co, SQLSTATE_IO_ERROR,
			     "could not record in the route file that a switch is under way: %s",
			     errmsg);
		return;
	}
	if (!reverse_on(co)) {
		cutover_phase_done(co);
		return;
	}
	co->repl_step = 0;
	prepare_step(co);
}

void cutover_prepare_enter(struct cutover *co)
{
	struct route_state st;

	if (co->dry_run || (!cutover_cfg(co)->d.fence && !reverse_on(co))) {
		cutover_phase_done(co);
		return;
	}
	/*
	 * Before anything is fenced or stopped, the route file says so (durably, outside
	 * the pause): a pgcutover that dies before the flip finds it at its
	 * next start and lifts the fence of the side it is still routed to.
	 */
	st = co->db->recorded;
	if (st.side != co->from) {
		memset(&st, 0, sizeof(st));
		st.side = co->from;
	}
	st.switching = true;
	st.switching_to = co->to;
	co->intent_ticket = calloc(1, sizeof(*co->intent_ticket));
	if (co->intent_ticket == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	co->intent_ticket->co = co;
	/* counted as written from here: a failed switch rewrites the file either way */
	co->intent_written = true;
	if (!route_store_async(rt.base, co->config->state_dir, co->db->name, &st, intent_stored,
			       co->intent_ticket)) {
		free(co->intent_ticket);
		co->intent_ticket = NULL;
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not start writing the route file");
	}
}

/* ---- STOP_REPLICATION: the incoming direction stops ---- */

static void stop_poll(struct cutover *co);

static void stop_lsn_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!cutover_answer(co, r, CO_STOP_REPLICATION, "read the WAL position", co->to))
		return;
	if (r->res == NULL || PQntuples(r->res) != 1) {
		cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
			     "could not read the WAL position of the %s", route_side_name(co->to));
		return;
	}
	snprintf(co->stop_lsn, sizeof(co->stop_lsn), "%s", PQgetvalue(r->res, 0, 0));
	co->rec.ms_replication += cutover_ms_since(co->t_phase);
	log_info("switch %s: incoming replication stopped; the %s is at %s", co->db->name,
		 route_side_name(co->to), co->stop_lsn);
	cutover_phase_done(co);
}

static void stop_wait_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!cutover_answer(co, r, CO_STOP_REPLICATION, "watch the subscription's worker", co->to))
		return;
	if (r->res && PQntuples(r->res) == 1 && strcmp(PQgetvalue(r->res, 0, 0), "0") != 0) {
		stop_poll(co); /* still running */
		return;
	}
	(void)repl_query(co, co->to, "SELECT pg_catalog.pg_current_wal_insert_lsn()::text",
			 stop_lsn_cb);
}

static void stop_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;
	struct repl_names n;
	char sql[600];

	(void)fd;
	(void)what;
	if (co->phase != CO_STOP_REPLICATION)
		return;
	if (!replication_names(cutover_cfg(co), co->fwd_sub, &n)) {
		cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE, "a replication name is too long");
		return;
	}
	/*
	 * A disabled subscription's worker notices only when it next wakes up,
	 * which an idle one does once a second: it is ended instead (it holds
	 * nothing a restart would not redo; the subscription stays disabled).
	 * The answer counts the workers that were still there.
	 */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM (SELECT pg_catalog.pg_terminate_backend(pid)"
		 " FROM pg_catalog.pg_stat_subscription WHERE subname = %s"
		 " AND pid IS NOT NULL) w",
		 co->to == SIDE_TARGET ? n.fwd_sub_lit : n.rev_lit);
	(void)repl_query(co, co->to, sql, stop_wait_cb);
}

static void stop_poll(struct cutover *co)
{
	struct timeval tv = {0, REPL_POLL_MS * 1000};

	event_free(co->poll);
	co->poll = evtimer_new(rt.base, stop_poll_cb, co);
	if (co->poll == NULL || evtimer_add(co->poll, &tv) != 0)
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

static void stop_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!cutover_answer(co, r, CO_STOP_REPLICATION, "disable the incoming subscription", co->to))
		return;
	stop_poll_cb(-1, 0, co);
}

void cutover_stop_replication_enter(struct cutover *co)
{
	struct repl_names n;
	char sql[400];

	if (!reverse_on(co)) {
		cutover_phase_done(co);
		return;
	}
	if (!replication_names(cutover_cfg(co), co->fwd_sub, &n)) {
		cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE, "a replication name is too long");
		return;
	}
	snprintf(sql, sizeof(sql), "ALTER SUBSCRIPTION %s DISABLE",
		 co->to == SIDE_TARGET ? n.fwd_sub_ident : n.rev_ident);
	/* from here the rollback enables it again: an answer lost may hide a DISABLE that took */
	co->stopped_in = true;
	(void)repl_query(co, co->to, sql, stop_cb);
}

/* ---- START_REPLICATION: the way back starts from the flip ---- */

static void start_enable_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_START_REPLICATION)
		return;
	if (!r->ok) {
		/*
		 * The route is flipped and recorded: the switch stands.  The new
		 * side's writes wait in its slot; a switch back is refused until
		 * the way back streams (SHOW REPLICATION).
		 */
		snprintf(co->rec.error, sizeof(co->rec.error),
			 "replication start failed: the way back to the %s did not start: %s;"
			 " a switch back is refused until it streams (SHOW REPLICATION)",
			 route_side_name(co->from), r->error);
		log_error("switch %s: %s", co->db->name, co->rec.error);
		cutover_note_replication_error(co->db, co->rec.error);
	} else {
		cutover_note_replication_error(co->db, NULL);
		log_info("switch %s: replication back to the %s starts at %s", co->db->name,
			 route_side_name(co->from), co->stop_lsn);
	}
	co->rec.ms_replication += cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

void cutover_start_replication_enter(struct cutover *co)
{
	struct repl_names n;
	char sql[1200], lsn[80];
	const char *sub_lit, *sub_ident;

	if (!reverse_on(co)) {
		cutover_phase_done(co);
		return;
	}
	if (!replication_names(cutover_cfg(co), co->fwd_sub, &n) ||
	    !sqlquote_literal(co->stop_lsn, lsn, sizeof(lsn))) {
		struct control_result f = {.ok = false, .error = "a replication name is too long"};

		co->pending++;
		start_enable_cb(co, &f);
		return;
	}
	/* the way back feeds the side switched from */
	sub_lit = co->from == SIDE_SOURCE ? n.rev_lit : n.fwd_sub_lit;
	sub_ident = co->from == SIDE_SOURCE ? n.rev_ident : n.fwd_sub_ident;
	snprintf(sql, sizeof(sql),
		 "SELECT pg_catalog.pg_replication_origin_advance('pg_' || s.oid, %s::pg_lsn)"
		 " FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d"
		 " ON d.oid = s.subdbid WHERE d.datname = pg_catalog.current_database()"
		 " AND s.subname = %s; ALTER SUBSCRIPTION %s ENABLE",
		 lsn, sub_lit, sub_ident);
	co->pending++;
	if (!control_conn_query(co->ctl[co->from], sql, CONTROL_QUERY_TIMEOUT_MS, start_enable_cb,
				co)) {
		struct control_result f = {.ok = false, .error = "out of memory"};

		start_enable_cb(co, &f);
	}
}

/* ---- the rollback: the incoming direction runs again ---- */

static void rollback_enable_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_ROLLBACK)
		return;
	if (r->ok) {
		co->stopped_in = false;
		log_info("switch %s: incoming replication enabled again", co->db->name);
	} else {
		snprintf(co->rollback_err, sizeof(co->rollback_err),
			 "the incoming subscription on the %s could not be enabled again (%s):"
			 " run ALTER SUBSCRIPTION ... ENABLE there",
			 route_side_name(co->to), r->error);
	}
	cutover_rollback_next(co);
}

void cutover_rollback_replication(struct cutover *co)
{
	struct repl_names n;
	char sql[400];
	struct control_result f = {.ok = false, .error = "out of memory"};

	if (!replication_names(cutover_cfg(co), co->fwd_sub, &n)) {
		co->pending++;
		rollback_enable_cb(co, &f);
		return;
	}
	snprintf(sql, sizeof(sql), "ALTER SUBSCRIPTION %s ENABLE",
		 co->to == SIDE_TARGET ? n.fwd_sub_ident : n.rev_ident);
	co->pending++;
	if (!control_conn_query(co->ctl[co->to], sql, CONTROL_QUERY_TIMEOUT_MS, rollback_enable_cb,
				co))
		rollback_enable_cb(co, &f);
}

/* The slot the lag wait watches: the one that feeds the side switched to. */
const char *cutover_lag_slot(const struct cutover *co)
{
	if (co->to == SIDE_SOURCE && reverse_on(co))
		return co->rev_slot;
	return cutover_cfg(co)->replication_slot;
}

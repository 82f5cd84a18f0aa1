/*
 * lag.c - the lag wait: with traffic held and drained, wait until the side
 * switched to has everything the side switched from committed, bounded by
 * lag_timeout.
 *
 *   lsn     read the insert position of the side switched from (it covers
 *           every acknowledged commit) and poll replication_slot's
 *           confirmed_flush_lsn until it reaches that position
 *   marker  insert a unique row into marker_table on the side switched
 *           from and poll for it on the other side (any CDC tool)
 *   none    the operator vouches for the lag: nothing to wait for
 */
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/auth/crypto.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/pool.h"

/*
 * How often the replication position is polled once the first
 * LAG_FAST_ROUNDS rounds went by without reaching the goal.  The first rounds
 * poll again as soon as the nudges have answered: with the lag near zero the
 * subscriber's feedback arrives within a round trip or two of the nudges, and
 * a fixed sleep there was most of the wait (a round took 5 ms plus three
 * queries; the goal is usually reached in the second or third).  A large lag
 * then backs off to LAG_POLL_MS, so that two synchronous commits per round do
 * not run back to back for seconds.
 */
#define LAG_POLL_MS     5
#define LAG_FAST_ROUNDS 20

/*
 * A transaction that writes WAL (a transactional logical message, which
 * subscribers ignore) and commits synchronously: it flushes the WAL up to
 * itself and wakes the walsenders.  An xid alone is not enough: a
 * transaction that wrote no WAL of its own commits asynchronously.
 */
const char cutover_lag_nudge_sql[] =
	"SET synchronous_commit = on; SELECT pg_catalog.pg_logical_emit_message(true, 'pgcutover', 'flush')";
#define LAG_NUDGE_SQL cutover_lag_nudge_sql

/*
 * The marker method's query 'fmt' (a table, then the marker id, both as %s)
 * with marker_table and co->marker_id quoted into it.  False when the table
 * name does not quote: the switch has failed then.
 */
static bool lag_marker_sql(struct cutover *co, const char *fmt, char *sql, size_t len)
{
	const char *marker = cutover_cfg(co)->d.marker_table;
	char table[300], id[100];

	if (!sqlquote_qualified(marker, table, sizeof(table)) ||
	    !sqlquote_literal(co->marker_id, id, sizeof(id))) {
		cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
			     "marker_table \"%s\" is not a valid [schema.]table name", marker);
		return false;
	}
	snprintf(sql, len, fmt, table, id);
	return true;
}

/* Whether an answer still concerns a running lag wait. */
static bool lag_current(const struct cutover *co)
{
	return co->phase == CO_WAIT_LAG && !co->lag_done;
}

static void lag_finished(struct cutover *co)
{
	co->lag_done = true;
	co->rec.ms_lag = cutover_ms_since(co->t_phase);
	evtimer_del(co->poll);
	cutover_record_lag(co->db, 0);
	cutover_phase_done(co);
}

static void schedule_poll(struct cutover *co)
{
	struct timeval tv = {0, co->lag_rounds++ < LAG_FAST_ROUNDS ? 0 : LAG_POLL_MS * 1000};

	evtimer_add(co->poll, &tv);
}

/*
 * Run one query of the wait on a side.  The answers of the nudges are not
 * awaited by the phase, so these queries are counted in co->pending only
 * for ABORT (which fails at once when none is out).  False when it could
 * not be queued (out of memory): the caller decides what happens then.
 */
static bool lag_query(struct cutover *co, enum route_side side, const char *sql, control_cb cb)
{
	co->pending++;
	if (!control_conn_query(co->ctl[side], sql, CONTROL_QUERY_TIMEOUT_MS, cb, co)) {
		co->pending--;
		return false;
	}
	return true;
}

/*
 * The subscriber applies with synchronous_commit = off and reports its flush
 * position only when something wakes it, so confirmed_flush_lsn can trail by
 * a wal_writer_delay plus a feedback round (~1 s measured).  A nudge makes it
 * current: a synchronous commit on the receiving side flushes what it applied,
 * and one on the sending side wakes the walsender, whose keepalive makes the
 * subscriber report that flush at once.  Errors are ignored: the poll and the
 * deadline decide.
 */
static void nudge_from_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	(void)r;
	co->pending--;
	if (lag_current(co))
		schedule_poll(co);
}

static void nudge_to_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	(void)r;
	co->pending--;
	if (!lag_current(co))
		return;
	if (!lag_query(co, co->from, LAG_NUDGE_SQL, nudge_from_cb))
		schedule_poll(co);
}

static void lag_nudge(struct cutover *co)
{
	if (!lag_query(co, co->to, LAG_NUDGE_SQL, nudge_to_cb))
		schedule_poll(co);
}

static void lag_check_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	const struct db_config *dc = cutover_cfg(co);

	co->pending--;
	if (!lag_current(co))
		return;
	if (co->aborting) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not poll replication progress: %s", r->error);
		return;
	}
	if (dc->d.lag_method != LAG_LSN) {
		if (r->res && PQntuples(r->res) > 0)
			lag_finished(co);
		else
			schedule_poll(co);
		return;
	}
	if (r->res == NULL || PQntuples(r->res) == 0) {
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "replication slot \"%s\" disappeared", cutover_lag_slot(co));
		return;
	}
	if (strcmp(PQgetvalue(r->res, 0, 1), "t") != 0) {
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "replication slot \"%s\" became inactive: the %s or its subscription is down",
			     cutover_lag_slot(co), route_side_name(co->to));
		return;
	}
	if (!PQgetisnull(r->res, 0, 2))
		cutover_record_lag(co->db, strtoll(PQgetvalue(r->res, 0, 2), NULL, 10));
	if (strcmp(PQgetvalue(r->res, 0, 0), "t") == 0)
		lag_finished(co);
	else
		lag_nudge(co);
}

void cutover_lag_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;
	const struct db_config *dc = cutover_cfg(co);
	char sql[600];

	(void)fd;
	(void)what;
	if (dc->d.lag_method == LAG_LSN) {
		char slot[160], goal[80];

		/* both were quoted once already (preflight, lag goal): they fit */
		if (!sqlquote_literal(cutover_lag_slot(co), slot, sizeof(slot)) ||
		    !sqlquote_literal(co->goal_lsn, goal, sizeof(goal))) {
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "replication_slot is too long");
			return;
		}
		snprintf(sql, sizeof(sql),
			 "SELECT confirmed_flush_lsn >= %s::pg_lsn, active,"
			 " pg_catalog.pg_wal_lsn_diff(%s::pg_lsn, confirmed_flush_lsn)::bigint"
			 " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
			 goal, goal, slot);
		(void)lag_query(co, co->from, sql, lag_check_cb);
	} else {
		if (!lag_marker_sql(co, "SELECT 1 FROM %s WHERE id = %s", sql, sizeof(sql)))
			return;
		(void)lag_query(co, co->to, sql, lag_check_cb);
	}
}

static void lag_goal_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	bool lsn = cutover_cfg(co)->d.lag_method == LAG_LSN;

	co->pending--;
	if (co->phase != CO_WAIT_LAG)
		return;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s on the %s: %s",
			     lsn ? "read the WAL position" : "insert the marker row",
			     route_side_name(co->from), r->error);
		return;
	}
	if (lsn) {
		if (r->res == NULL || PQntuples(r->res) == 0) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR, "could not read the WAL position");
			return;
		}
		snprintf(co->goal_lsn, sizeof(co->goal_lsn), "%s", PQgetvalue(r->res, 0, 0));
		log_debug("switch %s: waiting for the slot to reach %s", co->db->name, co->goal_lsn);
	}
	cutover_lag_poll_cb(-1, 0, co);
}

/* The row the marker method waits for: the database name and 12 random bytes. */
static bool lag_marker_id(struct cutover *co)
{
	uint8_t raw[12];
	char hex[25];

	if (!auth_random_bytes(raw, sizeof(raw)))
		return false;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	snprintf(co->marker_id, sizeof(co->marker_id), "%s-%s", co->db->name, hex);
	return true;
}

void cutover_lag_enter(struct cutover *co)
{
	const struct db_config *dc = cutover_cfg(co);
	char sql[600];

	co->lag_rounds = 0;
	if (dc->d.lag_method == LAG_NONE) {
		lag_finished(co);
		return;
	}
	if (dc->d.lag_method == LAG_LSN) {
		/*
		 * The insert position covers every commit acknowledged so far (the
		 * flush position can trail it with synchronous_commit = off); the
		 * logical message makes this transaction write WAL and commit
		 * synchronously, which flushes everything before it, so the
		 * walsender sends it at once instead of after a wal_writer_delay.
		 */
		snprintf(sql, sizeof(sql),
			 "SET synchronous_commit = on; SELECT pg_catalog.pg_current_wal_insert_lsn()::text,"
			 " pg_catalog.pg_logical_emit_message(true, 'pgcutover', 'lag wait')");
	} else {
		if (!lag_marker_id(co)) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR, "could not generate a marker id");
			return;
		}
		if (!lag_marker_sql(co, "INSERT INTO %s (id) VALUES (%s)", sql, sizeof(sql)))
			return;
	}
	if (!lag_query(co, co->from, sql, lag_goal_cb))
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

/*
 * preflight.c - the first phase of a switch: can it succeed?  Both sides
 * answer as control_user; then, together: the replication slot exists, is
 * active and its lag is under max_switch_lag (lag_method = lsn), or the
 * marker table exists on both sides (marker); and the sequences to sync are
 * counted.  Nothing is held yet; a DRY RUN ends here.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/seqread.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How often a switch waiting for the guard of a database just added looks again. */
#define GUARD_POLL_MS 10

static void preflight_checks(struct cutover *co);

/* Each side's "SELECT 1": the second step starts once both answered. */
static void reach_cb(void *arg, const struct control_result *r, enum route_side side)
{
	struct cutover *co = arg;
	char what[64];

	if (!r->ok) {
		snprintf(what, sizeof(what), "the %s does not answer", route_side_name(side));
		cutover_query_failed(co, r, what);
	}
	if (cutover_query_settle(co)) {
		co->reached = true;
		preflight_checks(co);
	}
}

static void reach_source_cb(void *arg, const struct control_result *r)
{
	reach_cb(arg, r, SIDE_SOURCE);
}

static void reach_target_cb(void *arg, const struct control_result *r)
{
	reach_cb(arg, r, SIDE_TARGET);
}

/* A check of the second step failed for a reason of our own (not a query error). */
static void check_failed(struct cutover *co, const char *what, const char *why)
{
	struct control_result f = {.ok = false,
				   .sqlstate = SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE};

	f.error = why;
	cutover_query_failed(co, &f, what);
}

static void slot_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	const struct db_config *dc = cutover_cfg(co);

	if (!r->ok) {
		cutover_query_failed(co, r, "could not read the replication slot");
	} else if (r->res == NULL || PQntuples(r->res) == 0) {
		check_failed(co, "replication slot check",
			     "it does not exist on the side being switched from");
	} else if (strcmp(PQgetvalue(r->res, 0, 0), "t") != 0) {
		check_failed(co, "replication slot check",
			     "it is not active: is the subscription on the other side enabled and connected?");
	} else {
		co->preflight_lag = PQgetisnull(r->res, 0, 1)
					    ? -1
					    : strtoll(PQgetvalue(r->res, 0, 1), NULL, 10);
		cutover_record_lag(co->db, co->preflight_lag);
		if (co->preflight_lag > dc->d.max_switch_lag) {
			char msg[200];

			snprintf(msg, sizeof(msg),
				 "lag is %" PRId64 " bytes, above max_switch_lag (%" PRId64 ")",
				 co->preflight_lag, dc->d.max_switch_lag);
			check_failed(co, "replication lag check", msg);
		}
	}
	if (cutover_query_settle(co))
		cutover_phase_done(co);
}

static void marker_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		cutover_query_failed(co, r, "marker_table check");
	else if (r->res == NULL || PQntuples(r->res) == 0 ||
		 strcmp(PQgetvalue(r->res, 0, 0), "t") != 0)
		check_failed(co, "marker_table check", "marker_table does not exist on both sides");
	if (cutover_query_settle(co))
		cutover_phase_done(co);
}

static void seq_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		cutover_query_failed(co, r, "could not read sequences");
	else if (r->res && co->nsequences == 0) {
		for (int i = 0; i < PQntuples(r->res); i++)
			if (cutover_seq_selected(cutover_cfg(co), PQgetvalue(r->res, i, 1)))
				co->nsequences++;
	}
	if (cutover_query_settle(co))
		cutover_phase_done(co);
}

/*
 * A switch back with lag_method none: nothing carries what was written on
 * the side being left back to the side switched to, so if anything was
 * written there since the switch to it (its next transaction ID moved past
 * the one recorded when that switch was over), switching back loses it.
 * Transaction IDs are the cluster's: a write in another database counts
 * too (FORCE says the operator knows better); pg_stat_database's row counts
 * of this database go into the message.
 */
static void written_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	const char *recorded = co->db->recorded.new_side_xid;

	if (!r->ok) {
		cutover_query_failed(co, r,
				     "could not tell whether the side being left was written to");
	} else if (r->res && PQntuples(r->res) == 1) {
		const char *now = PQgetvalue(r->res, 0, 0);
		const char *rows = PQgetisnull(r->res, 0, 1) ? "?" : PQgetvalue(r->res, 0, 1);
		char msg[400];

		if (recorded[0] == '\0') {
			snprintf(msg, sizeof(msg),
				 "what was written on the %s since the switch to it cannot be told (no transaction ID was recorded then) and lag_method none carries nothing back: switching back may lose it (SWITCH ... FORCE if you know it was not written to)",
				 route_side_name(co->from));
			check_failed(co, "switch back check", msg);
		} else if (strtoull(now, NULL, 10) > strtoull(recorded, NULL, 10)) {
			snprintf(msg, sizeof(msg),
				 "the %s was written to since the switch to it (transaction IDs %s to %s; %s rows written in this database since its statistics were reset) and lag_method none carries nothing back: switching back would lose those writes (replicate them back first, or SWITCH ... FORCE)",
				 route_side_name(co->from), recorded, now, rows);
			check_failed(co, "switch back check", msg);
		}
	}
	if (cutover_query_settle(co))
		cutover_phase_done(co);
}

/* Second step: both sides answered; now the replication and the sequences. */
static void preflight_checks(struct cutover *co)
{
	const struct db_config *dc = cutover_cfg(co);
	char sql[600];

	/* count every query in before any can complete */
	co->pending = 1;
	if (dc->d.lag_method == LAG_LSN) {
		char slot[160];

		if (!sqlquote_literal(cutover_lag_slot(co), slot, sizeof(slot))) {
			co->pending = 0;
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "replication_slot is too long");
			return;
		}
		snprintf(sql, sizeof(sql),
			 "SELECT active, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(),"
			 " confirmed_flush_lsn)::bigint FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
			 slot);
		if (!cutover_query(co, co->from, sql, CONTROL_QUERY_TIMEOUT_MS, slot_cb))
			return;
	} else if (dc->d.lag_method == LAG_MARKER) {
		char table[300], lit[340];

		if (!sqlquote_qualified(dc->d.marker_table, table, sizeof(table)) ||
		    !sqlquote_literal(table, lit, sizeof(lit))) {
			co->pending = 0;
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "marker_table \"%s\" is not a valid [schema.]table name",
				     dc->d.marker_table);
			return;
		}
		snprintf(sql, sizeof(sql), "SELECT pg_catalog.to_regclass(%s) IS NOT NULL", lit);
		if (!cutover_query(co, co->from, sql, CONTROL_QUERY_TIMEOUT_MS, marker_cb))
			return;
		if (!cutover_query(co, co->to, sql, CONTROL_QUERY_TIMEOUT_MS, marker_cb))
			return;
	}
	if (dc->d.lag_method == LAG_NONE && !co->force && co->to == SIDE_SOURCE &&
	    co->db->recorded.switched_at[0] && co->db->recorded.side == co->from &&
	    !cutover_query(co, co->from,
			   "SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())::text,"
			   " (SELECT tup_inserted + tup_updated + tup_deleted FROM pg_catalog.pg_stat_database"
			   " WHERE datname = pg_catalog.current_database())::text",
			   CONTROL_QUERY_TIMEOUT_MS, written_cb))
		return;
	if (strcmp(dc->d.sequence_sync, "none") != 0) {
		if (!cutover_query(co, co->from, SEQ_LIST_SQL, CONTROL_QUERY_TIMEOUT_MS, seq_cb))
			return;
		if (!cutover_query(co, co->to, SEQ_LIST_SQL, CONTROL_QUERY_TIMEOUT_MS, seq_cb))
			return;
	}
	if (cutover_query_settle(co))
		cutover_phase_done(co);
}

/*
 * First step: both sides answer as control_user, within
 * server_connect_timeout.  Only then are the other checks queued, so that
 * an unreachable side costs one timeout, not one per queued query.
 */
static void guard_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase != CO_PREFLIGHT)
		return;
	if (co->aborting)
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
	else
		cutover_preflight_enter(co);
}

void cutover_preflight_enter(struct cutover *co)
{
	/*
	 * A database just added is checked for a fence left on the side it is
	 * routed to (fence.c, cutover_guard): the switch waits for that, so
	 * that the check's lift can never land after this switch's fence.
	 */
	if (cutover_guarding(co->db)) {
		struct timeval tv = {0, GUARD_POLL_MS * 1000};

		if (co->guard_wait == NULL)
			co->guard_wait = evtimer_new(rt.base, guard_wait_cb, co);
		if (co->guard_wait == NULL || evtimer_add(co->guard_wait, &tv) != 0)
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	co->pending = 1;
	if (!cutover_query(co, SIDE_SOURCE, "SELECT 1", co->config->server_connect_timeout_ms,
			   reach_source_cb))
		return;
	if (!cutover_query(co, SIDE_TARGET, "SELECT 1", co->config->server_connect_timeout_ms,
			   reach_target_cb))
		return;
	if (cutover_query_settle(co)) {
		co->reached = true;
		preflight_checks(co);
	}
}

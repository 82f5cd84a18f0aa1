/*
 * preflight.c - the first phase of a switch: can it succeed?  Both sides
 * answer as control_user; then, together: the replication slot exists, is
 * active and its lag is under max_switch_lag (lag_method = lsn), or the
 * marker table exists on both sides (marker); and the sequences to sync are
 * counted.  Nothing is held yet; a DRY RUN ends here.
 */
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
#include "proxy/runtime.h"

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

/* Second step: both sides answered; now the replication and the sequences. */
static void preflight_checks(struct cutover *co)
{
	const struct db_config *dc = cutover_cfg(co);
	char sql[600];

	/* count every query in before any can complete */
	co->pending = 1;
	if (dc->d.lag_method == LAG_LSN) {
		char slot[160];

		if (!sqlquote_literal(dc->replication_slot, slot, sizeof(slot))) {
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
void cutover_preflight_enter(struct cutover *co)
{
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

/*
 * check.c - a CHECK run (see check.h and check_int.h): its control
 * connections, its three steps and its end.
 *
 *   REACH   one query per side (server_connect_timeout bounds the login):
 *           a side that does not answer ends the run there, every other
 *           check failing "not checked", so an unreachable side costs one
 *           timeout, not one per query
 *   READ    the catalog queries, queued on both sides at once (each side's
 *           connection runs its queue in order)
 *   LOGINS  the login probes, after the session queries have run (so that
 *           the bypass check never sees them)
 *
 * Then the rows are made from the answers (check_eval*.c) and reported from
 * a zero-delay event, never from inside check_start().
 */
#include "admin/cutover/check.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check_int.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/engine.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

static const char *const check_names[CHECK_COUNT] = {
	[CHECK_REACHABLE] = "reachable",
	[CHECK_PRIVILEGES] = "privileges",
	[CHECK_REPLICATION] = "replication",
	[CHECK_PUBLICATION] = "publication",
	[CHECK_REPLICA_ID] = "replica_identity",
	[CHECK_SCHEMA] = "schema",
	[CHECK_INDEXES] = "indexes",
	[CHECK_NOT_REPLICATED] = "not_replicated",
	[CHECK_LOGINS] = "logins",
	[CHECK_BYPASS] = "bypass",
	[CHECK_TARGET_WRITES] = "target_writes",
	[CHECK_LONG_XACTS] = "long_transactions",
	[CHECK_DDL] = "ddl",
	[CHECK_FENCE] = "fence",
	[CHECK_SWITCH_BACK] = "switch_back",
	[CHECK_VERIFY] = "verify",
};

const char *check_name(enum check_id id)
{
	return id < CHECK_COUNT ? check_names[id] : "?";
}

const char *check_status_name(enum check_status st)
{
	return st == CHECK_STATUS_OK ? "ok" : st == CHECK_STATUS_WARN ? "warn" : "fail";
}

/* Runs not reported yet. */
static struct check_run *runs;

static void run_free(struct check_run *run)
{
	for (struct check_run **pp = &runs; *pp; pp = &(*pp)->next) {
		if (*pp == run) {
			*pp = run->next;
			break;
		}
	}
	for (int side = 0; side < 2; side++) {
		if (run->ctl[side])
			control_conn_free(run->ctl[side]);
		for (int q = 0; q < QR_COUNT; q++)
			PQclear(run->res[side][q]);
	}
	check_logins_free(run);
	if (run->finish)
		event_free(run->finish);
	config_free(run->cfg);
	free(run);
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_run *run = arg;

	(void)fd;
	(void)what;
	run->done(run->arg, &run->rep);
	run_free(run);
}

/* The sequences the sequence sync would set (the old side's, selected). */
static int count_sequences(const struct check_run *run)
{
	const PGresult *s = run->res[run->from][QR_SEQ];
	int n = 0;

	if (strcmp(run->dc->d.sequence_sync, "none") == 0)
		return 0;
	for (int i = 0; s && i < PQntuples(s); i++)
		if (check_val(s, i, SQ_NAME) &&
		    cutover_seq_selected(run->dc, check_val(s, i, SQ_NAME)))
			n++;
	return n;
}

/* Every answer is in: the rows, then the report from the loop. */
static void run_end(struct check_run *run)
{
	struct timeval now = {0, 0};

	run->step = CHECK_STEP_DONE;
	if (run->res[run->from][QR_REACH] && run->res[run->to][QR_REACH]) {
		check_eval(run);
		check_eval_schema(run);
		check_eval_sessions(run);
		check_eval_logins(run);
		run->rep.nsequences = count_sequences(run);
	}
	for (int i = 0; i < CHECK_COUNT; i++) {
		enum check_status st = run->rep.rows[i].status;

		run->rep.nok += st == CHECK_STATUS_OK;
		run->rep.nwarn += st == CHECK_STATUS_WARN;
		run->rep.nfail += st == CHECK_STATUS_FAIL;
	}
	/* the connections are not needed any more: close them before the callback */
	for (int side = 0; side < 2; side++)
		control_conn_reset(run->ctl[side]);
	evtimer_add(run->finish, &now);
}

static void query_cb(void *arg, const struct control_result *r)
{
	struct check_qctx *qc = arg;
	struct check_run *run = qc->run;

	if (r->ok && r->res)
		run->res[qc->side][qc->q] =
			PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	if (!r->ok || (r->res && run->res[qc->side][qc->q] == NULL)) {
		snprintf(run->err[qc->side][qc->q], sizeof(run->err[0][0]), "%s",
			 r->ok      ? "out of memory"
			 : r->error ? r->error
				    : "failed");
		snprintf(run->errstate[qc->side][qc->q], sizeof(run->errstate[0][0]), "%s",
			 r->ok ? SQLSTATE_OUT_OF_MEMORY : r->sqlstate);
	}
	check_settle(run);
}

/* Queue query q on a side (counted in pending); a failure to queue is its error. */
static void queue(struct check_run *run, enum check_query q, enum route_side side, int64_t timeout)
{
	struct check_qctx *qc = &run->qctx[side][q];
	struct pq_buf b;

	*qc = (struct check_qctx){run, q, side};
	run->ran[side][q] = true;
	pq_buf_init(&b);
	check_query_sql(run, q, side, &b);
	run->pending++;
	if (b.failed ||
	    !control_conn_query(run->ctl[side], (const char *)b.data, timeout, query_cb, qc)) {
		run->pending--;
		snprintf(run->err[side][q], sizeof(run->err[0][0]), "out of memory");
		memcpy(run->errstate[side][q], SQLSTATE_OUT_OF_MEMORY, 6);
	}
	pq_buf_free(&b);
}

/* REACH is over and a side did not answer: every check says so. */
static void unreachable(struct check_run *run)
{
	enum route_side bad = run->res[run->to][QR_REACH] == NULL ? run->to : run->from;
	struct check_row *reach = &run->rep.rows[CHECK_REACHABLE];

	snprintf(reach->error, sizeof(reach->error), "the %s does not answer: %s",
		 route_side_name(bad), run->err[bad][QR_REACH]);
	snprintf(reach->sqlstate, sizeof(reach->sqlstate), "%s",
		 run->errstate[bad][QR_REACH][0] ? run->errstate[bad][QR_REACH]
						 : SQLSTATE_CONNECTION_FAILURE);
	reach->status = CHECK_STATUS_FAIL;
	snprintf(reach->detail, sizeof(reach->detail), "%s", reach->error);
	for (int i = CHECK_REACHABLE + 1; i < CHECK_COUNT; i++)
		check_set(run, (enum check_id)i, CHECK_STATUS_FAIL,
			  "not checked: the %s does not answer", route_side_name(bad));
}

void check_settle(struct check_run *run)
{
	if (--run->pending > 0 || run->step == CHECK_STEP_DONE)
		return;
	switch (run->step) {
	case CHECK_STEP_REACH:
		if (run->res[run->from][QR_REACH] == NULL || run->res[run->to][QR_REACH] == NULL ||
		    PQntuples(run->res[run->from][QR_REACH]) != 1 ||
		    PQntuples(run->res[run->to][QR_REACH]) != 1) {
			unreachable(run);
			run_end(run);
			return;
		}
		for (int side = 0; side < 2; side++)
			run->version[side] =
				atoi(check_val(run->res[side][QR_REACH], 0, R_VERSION_NUM));
		run->step = CHECK_STEP_READ;
		run->pending = 1; /* count every query in before any can complete */
		for (int q = QR_REACH + 1; q < QR_COUNT; q++)
			for (int side = 0; side < 2; side++)
				if (check_query_runs(run, (enum check_query)q,
						     (enum route_side)side))
					queue(run, (enum check_query)q, (enum route_side)side,
					      CONTROL_QUERY_TIMEOUT_MS);
		check_settle(run);
		return;
	case CHECK_STEP_READ:
		run->step = CHECK_STEP_LOGINS;
		run->pending = 1;
		if (!check_logins_start(run)) {
			run_end(run);
			return;
		}
		check_settle(run);
		return;
	case CHECK_STEP_LOGINS:
		run_end(run);
		return;
	case CHECK_STEP_DONE:
		return;
	}
}

struct check_run *check_start(struct database *db, struct config *cfg, const struct db_config *dc,
			      enum route_side from, enum route_side to, bool force,
			      check_done_fn done, void *arg)
{
	struct check_run *run = calloc(1, sizeof(*run));

	if (run == NULL)
		return NULL;
	run->db = db;
	snprintf(run->dbname, sizeof(run->dbname), "%s", db->name);
	run->cfg = config_ref(cfg);
	run->dc = dc;
	run->from = from;
	run->to = to;
	run->force = force;
	run->done = done;
	run->arg = arg;
	run->rep.from = from;
	run->rep.to = to;
	run->rep.lag = -1;
	run->finish = evtimer_new(rt.base, finish_cb, run);
	for (int side = 0; side < 2; side++)
		run->ctl[side] = control_open(cfg, rt.users, dc, (enum route_side)side);
	if (run->finish == NULL || run->ctl[0] == NULL || run->ctl[1] == NULL) {
		run_free(run);
		return NULL;
	}
	run->next = runs;
	runs = run;
	run->step = CHECK_STEP_REACH;
	run->pending = 1;
	for (int side = 0; side < 2; side++)
		queue(run, QR_REACH, (enum route_side)side, cfg->server_connect_timeout_ms);
	/* an answer cannot come from inside this call: control.h promises it */
	check_settle(run);
	return run;
}

void check_cancel(struct check_run *run)
{
	run_free(run);
}

void check_shutdown(void)
{
	while (runs)
		run_free(runs);
}

/*
 * cutover.c - PAUSE/RESUME and the SWITCH state machine.
 *
 * Every step that talks to a database goes through a control connection
 * (admin/cutover/control.c: libpq's non-blocking API on the loop), every wait is
 * bounded by a timer, and every failure before FLIP goes through
 * cutover_fail(), which resumes traffic on the old side and reports the
 * phase.  The route file is written on a worker thread (proxy/core/route.c) and
 * the route changes only once that write is durable.
 */
#include "admin/cutover/cutover.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_conninfo.h"
#include "admin/cutover/seqread.h"
#include "protocol/sqlquote.h"
#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/auth/userlist.h"

/* How often the replication position is polled during the lag wait. */
#define LAG_POLL_MS 5
/* Time limit of each preflight or sequence query. */
#define CONTROL_QUERY_TIMEOUT_MS 10000
/*
 * Switches remembered for SHOW SWITCHES (the oldest go first); the metrics
 * count every switch in db->stats.switches, not in this list.
 */
#define HISTORY_MAX 256

enum cutover_phase {
	CO_PREFLIGHT,
	CO_DRAIN,
	CO_WAIT_LAG,
	CO_SYNC_SEQUENCES,
	CO_FLIP,
	CO_RESUME,
};

static const char *const phase_names[] = {
	[CO_PREFLIGHT] = "preflight",          [CO_DRAIN] = "drain", [CO_WAIT_LAG] = "lag wait",
	[CO_SYNC_SEQUENCES] = "sequence sync", [CO_FLIP] = "flip",   [CO_RESUME] = "resume",
};

/* A switch in progress; one per database at most. */
struct cutover {
	struct database *db;
	struct client *requester; /* admin client waiting for the row; NULL if gone */
	enum cutover_phase phase;
	enum route_side from;
	enum route_side to;
	bool dry_run;
	bool aborting;               /* ABORT arrived: fail at the next step */
	struct control_conn *ctl[2]; /* control connections, indexed by side */
	struct event *deadline;      /* drain_timeout / lag_timeout */
	struct event *poll;          /* next lag poll */
	int pending;                 /* outstanding control queries of the phase */
	bool failed;                 /* a query of the phase failed (first error kept) */
	char fail_state[6];
	char fail_msg[300];
	uint64_t t_phase;      /* when the current phase started (us) */
	uint64_t t_pause;      /* when new transactions started being held (us) */
	char goal_lsn[32];     /* lsn: insert position after the drain */
	char marker_id[48];    /* marker: the row we wait for */
	bool reached;          /* preflight: both sides answered */
	bool lag_done;         /* the lag wait finished */
	bool seq_done;         /* sequences synced */
	int checks_pending;    /* session state checks still running */
	int64_t preflight_lag; /* bytes, from preflight (-1 unknown) */
	int nsequences;        /* sequences found at preflight */
	struct pq_buf seq_sql; /* sequence sync: the setval batch for the side switched to */
	struct switch_record rec;
};

/* A PAUSE waiting for its database (or all of them) to drain. */
struct pause_wait {
	struct client *requester;
	struct database *db; /* NULL = every database */
	struct pause_wait *next;
};

static struct switch_record history[HISTORY_MAX];
static int nhistory;
static struct pause_wait *pause_waits;

/* Last measured lag per database name (small table; databases are few). */
struct lag_entry {
	char db[64];
	int64_t lag;
};
static struct lag_entry lags[256];
static int nlags;

static void cutover_next(struct cutover *co);
static void cutover_fail(struct cutover *co, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pause_check(void);
static void pause_progress(struct database *db);

static struct cutover *db_cutover(const struct database *db)
{
	return db->on_progress_owner;
}

static uint64_t ms_since(uint64_t t_us)
{
	return (rt_now_us() - t_us) / 1000;
}

void cutover_record_lag(const struct database *db, int64_t lag)
{
	for (int i = 0; i < nlags; i++) {
		if (strcmp(lags[i].db, db->name) == 0) {
			lags[i].lag = lag;
			return;
		}
	}
	if (nlags < (int)(sizeof(lags) / sizeof(lags[0]))) {
		snprintf(lags[nlags].db, sizeof(lags[nlags].db), "%s", db->name);
		lags[nlags++].lag = lag;
	}
}

int64_t cutover_last_lag(const struct database *db)
{
	for (int i = 0; i < nlags; i++)
		if (strcmp(lags[i].db, db->name) == 0)
			return lags[i].lag;
	return -1;
}

const struct switch_record *cutover_history(int *count)
{
	*count = nhistory;
	return history;
}

const struct switch_record *cutover_running(const struct database *db)
{
	struct cutover *co = db_cutover(db);

	return co ? &co->rec : NULL;
}

const char *cutover_phase_name(const struct database *db)
{
	struct cutover *co = db_cutover(db);

	return co ? phase_names[co->phase] : "";
}

static void history_add(const struct switch_record *rec)
{
	if (nhistory == HISTORY_MAX) {
		memmove(history, history + 1, sizeof(history[0]) * (HISTORY_MAX - 1));
		nhistory--;
	}
	history[nhistory++] = *rec;
}

/* ---- control connections ---- */

/*
 * The conninfo of one side, logged in as control_user, with the TLS settings
 * pgcutover's own server connections use (server_tls_*), so that the
 * preflight and lag queries reach a TLS-only server the same way; what the
 * conninfo sets itself wins.  The CA file goes only with verify-ca and
 * verify-full: libpq verifies the chain in require mode too once it has one.
 */
static char *control_conninfo(const struct database *db, enum route_side side)
{
	const char *base = side == SIDE_SOURCE ? db->cfg->source : db->cfg->target;
	const char *user = db->cfg->d.control_user;
	const char *secret = userlist_secret(rt.users, user);
	const struct config *cfg = rt.cfg;
	enum tls_sslmode mode = cfg->server_tls_sslmode;
	const char *defaults[9];
	char *ci, *out;
	size_t n = 0;

	/* libpq needs the password itself: a hash in auth_file cannot log in */
	if (secret && auth_secret_kind(secret) != AUTH_SECRET_PLAIN)
		secret = NULL;
	ci = control_conninfo_with_user(base, user, secret);
	if (ci == NULL)
		return NULL;
	if (db->addr[side].sslmode && !tls_parse_sslmode(db->addr[side].sslmode, &mode))
		mode = cfg->server_tls_sslmode;
	defaults[n++] = "sslmode";
	defaults[n++] = tls_sslmode_name(cfg->server_tls_sslmode);
	if (mode >= SSLMODE_VERIFY_CA && cfg->server_tls_ca_file[0]) {
		defaults[n++] = "sslrootcert";
		defaults[n++] = cfg->server_tls_ca_file;
	}
	if (cfg->server_tls_cert_file[0]) {
		defaults[n++] = "sslcert";
		defaults[n++] = cfg->server_tls_cert_file;
		defaults[n++] = "sslkey";
		defaults[n++] = cfg->server_tls_key_file;
	}
	defaults[n] = NULL;
	out = control_conninfo_with_defaults(ci, defaults);
	free(ci);
	return out;
}

static bool open_controls(struct cutover *co, char *errbuf, size_t errlen)
{
	for (int side = 0; side < 2; side++) {
		char *ci = control_conninfo(co->db, (enum route_side)side);
		char label[100];

		snprintf(label, sizeof(label), "%s %s", co->db->name,
			 route_side_name((enum route_side)side));
		co->ctl[side] = ci ? control_conn_new(rt.base, rt.dns, ci, label) : NULL;
		free(ci);
		if (co->ctl[side] == NULL) {
			snprintf(errbuf, errlen, "out of memory");
			return false;
		}
	}
	return true;
}

static void cutover_free(struct cutover *co)
{
	for (int side = 0; side < 2; side++)
		if (co->ctl[side])
			control_conn_free(co->ctl[side]);
	if (co->deadline)
		event_free(co->deadline);
	if (co->poll)
		event_free(co->poll);
	pq_buf_free(&co->seq_sql);
	free(co);
}

/* ---- the phases ---- */

/* Count a query of the phase in; its callback counts it out. */
static void phase_query(struct cutover *co, enum route_side side, const char *sql, control_cb cb)
{
	co->pending++;
	if (!control_conn_query(co->ctl[side], sql, CONTROL_QUERY_TIMEOUT_MS, cb, co)) {
		co->pending--;
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	}
}

/* Keep the first failure of the phase; the phase ends when nothing is pending. */
static void phase_failed(struct cutover *co, const struct control_result *r, const char *what)
{
	if (co->failed)
		return;
	co->failed = true;
	snprintf(co->fail_state, sizeof(co->fail_state), "%s",
		 r->sqlstate[0] ? r->sqlstate : SQLSTATE_INTERNAL_ERROR);
	snprintf(co->fail_msg, sizeof(co->fail_msg), "%s: %s", what,
		 r->error ? r->error : "unknown error");
}

static bool phase_settle(struct cutover *co)
{
	if (--co->pending > 0)
		return false;
	if (co->failed) {
		cutover_fail(co, co->fail_state, "%s", co->fail_msg);
		return false;
	}
	return true;
}

/* Whether sequence_sync names this sequence. */
static bool seq_selected(const struct database *db, const char *name)
{
	const char *list = db->cfg->d.sequence_sync;
	size_t n = strlen(name);

	if (strcmp(list, "all") == 0)
		return true;
	if (strcmp(list, "none") == 0)
		return false;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

static void preflight_target_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		phase_failed(co, r,
			     co->to == SIDE_TARGET ? "the target does not answer"
						   : "the source does not answer");
	if (phase_settle(co))
		cutover_next(co);
}

static void preflight_from_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		phase_failed(co, r,
			     co->from == SIDE_SOURCE ? "the source does not answer"
						     : "the target does not answer");
	if (phase_settle(co))
		cutover_next(co);
}

static void preflight_slot_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	const struct db_config *dc = co->db->cfg;

	if (!r->ok) {
		phase_failed(co, r, "could not read the replication slot");
	} else if (r->res == NULL || PQntuples(r->res) == 0) {
		struct control_result f = {.ok = false,
					   .sqlstate = SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE};

		f.error = "it does not exist on the side being switched from";
		phase_failed(co, &f, "replication slot check");
	} else if (strcmp(PQgetvalue(r->res, 0, 0), "t") != 0) {
		struct control_result f = {.ok = false,
					   .sqlstate = SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE};

		f.error =
			"it is not active: is the subscription on the other side enabled and connected?";
		phase_failed(co, &f, "replication slot check");
	} else {
		co->preflight_lag = PQgetisnull(r->res, 0, 1)
					    ? -1
					    : strtoll(PQgetvalue(r->res, 0, 1), NULL, 10);
		cutover_record_lag(co->db, co->preflight_lag);
		if (co->preflight_lag > dc->d.max_switch_lag) {
			static char msg[200];
			struct control_result f = {.ok = false,
						   .sqlstate =
							   SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE};

			snprintf(msg, sizeof(msg),
				 "lag is %" PRId64 " bytes, above max_switch_lag (%" PRId64 ")",
				 co->preflight_lag, dc->d.max_switch_lag);
			f.error = msg;
			phase_failed(co, &f, "replication lag check");
		}
	}
	if (phase_settle(co))
		cutover_next(co);
}

static void preflight_marker_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		phase_failed(co, r, "marker_table check");
	else if (r->res == NULL || PQntuples(r->res) == 0 ||
		 strcmp(PQgetvalue(r->res, 0, 0), "t") != 0) {
		struct control_result f = {.ok = false,
					   .sqlstate = SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					   .error = "marker_table does not exist on both sides"};

		phase_failed(co, &f, "marker_table check");
	}
	if (phase_settle(co))
		cutover_next(co);
}

static void preflight_seq_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!r->ok)
		phase_failed(co, r, "could not read sequences");
	else if (r->res && co->nsequences == 0) {
		for (int i = 0; i < PQntuples(r->res); i++)
			if (seq_selected(co->db, PQgetvalue(r->res, i, 1)))
				co->nsequences++;
	}
	if (phase_settle(co))
		cutover_next(co);
}

/* Preflight, second step: both sides answered; now the replication and sequences. */
static void preflight_checks(struct cutover *co)
{
	const struct db_config *dc = co->db->cfg;
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
		phase_query(co, co->from, sql, preflight_slot_cb);
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
		phase_query(co, co->from, sql, preflight_marker_cb);
		phase_query(co, co->to, sql, preflight_marker_cb);
	}
	if (strcmp(dc->d.sequence_sync, "none") != 0) {
		phase_query(co, co->from, SEQ_LIST_SQL, preflight_seq_cb);
		phase_query(co, co->to, SEQ_LIST_SQL, preflight_seq_cb);
	}
	if (phase_settle(co))
		cutover_next(co);
}

/*
 * Preflight, first step: both sides answer as control_user, within
 * server_connect_timeout.  Only then are the other checks queued, so that
 * an unreachable side costs one timeout, not one per queued query.
 */
static void start_preflight(struct cutover *co)
{
	co->phase = CO_PREFLIGHT;
	co->t_phase = rt_now_us();
	co->pending = 1;
	for (int side = 0; side < 2; side++) {
		co->pending++;
		if (!control_conn_query(co->ctl[side], "SELECT 1", rt.cfg->server_connect_timeout_ms,
					side == (int)co->to ? preflight_target_cb
							    : preflight_from_cb,
					co)) {
			co->pending--;
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
	}
	if (phase_settle(co))
		cutover_next(co);
}

/* -- drain -- */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase == CO_DRAIN)
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "drain_timeout expired with %d transactions still open; they were not interrupted",
			     pool_db_in_flight(co->db));
	else if (co->phase == CO_WAIT_LAG)
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "lag_timeout expired before the %s caught up",
			     co->to == SIDE_TARGET ? "target" : "source");
	else if (co->phase == CO_SYNC_SEQUENCES)
		cutover_fail(co, SQLSTATE_QUERY_CANCELED,
			     "the sequence sync and the session checks did not finish within lag_timeout (%d checks left)",
			     co->checks_pending);
}

static void arm_deadline(struct cutover *co, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_del(co->deadline);
	evtimer_add(co->deadline, &tv);
}

static void start_lag_wait(struct cutover *co);
static void start_session_checks(struct cutover *co);

/* Called by the pool on every transaction end while paused. */
static void cutover_progress(struct database *db)
{
	struct cutover *co = db_cutover(db);

	if (co && co->phase == CO_DRAIN && pool_db_in_flight(db) == 0) {
		co->rec.ms_drain = (int64_t)ms_since(co->t_phase);
		evtimer_del(co->deadline);
		start_session_checks(co);
		start_lag_wait(co);
	}
	pause_check();
}

static void start_drain(struct cutover *co)
{
	struct database *db = co->db;

	co->phase = CO_DRAIN;
	co->t_phase = co->t_pause = rt_now_us();
	db->switch_paused = true;
	arm_deadline(co, db->cfg->d.drain_timeout_ms);
	log_info("switch %s: draining (%d transactions open)", db->name, pool_db_in_flight(db));
	cutover_progress(db);
}

/* -- session checks (session pooling) -- */

static void check_done(struct client *c, void *arg)
{
	struct cutover *co = arg;

	(void)c;
	co->checks_pending--;
	if (co->checks_pending == 0 && co->lag_done && co->seq_done)
		cutover_next(co);
}

static void start_session_checks(struct cutover *co)
{
	struct list_node *p, *m, *tmp;

	co->checks_pending = 1;
	list_for_each(p, &co->db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->server == NULL || c->server->side != co->from)
				continue;
			co->checks_pending++;
			if (!client_check_movable(c, check_done, co))
				co->checks_pending--;
		}
	}
	co->checks_pending--;
}

/* -- lag wait -- */

static void lag_finished(struct cutover *co)
{
	co->lag_done = true;
	co->rec.ms_lag = (int64_t)ms_since(co->t_phase);
	evtimer_del(co->deadline);
	if (co->poll)
		evtimer_del(co->poll);
	cutover_record_lag(co->db, 0);
	cutover_next(co);
}

static void lag_poll_cb(evutil_socket_t fd, short what, void *arg);

/*
 * A transaction that writes WAL (a transactional logical message, which
 * subscribers ignore) and commits synchronously: it flushes the WAL up to
 * itself and wakes the walsenders.  An xid alone is not enough: a
 * transaction that wrote no WAL of its own commits asynchronously.
 */
static const char LAG_NUDGE_SQL[] =
	"SET synchronous_commit = on; SELECT pg_catalog.pg_logical_emit_message(true, 'pgcutover', 'flush')";

static void schedule_poll(struct cutover *co)
{
	struct timeval tv = {0, LAG_POLL_MS * 1000};

	evtimer_add(co->poll, &tv);
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
static void nudge_source_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	(void)r;
	co->pending--;
	if (co->phase == CO_WAIT_LAG && !co->lag_done)
		schedule_poll(co);
}

static void nudge_target_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	(void)r;
	co->pending--;
	if (co->phase != CO_WAIT_LAG || co->lag_done)
		return;
	co->pending++;
	if (!control_conn_query(co->ctl[co->from], LAG_NUDGE_SQL, CONTROL_QUERY_TIMEOUT_MS,
				nudge_source_cb, co)) {
		co->pending--;
		schedule_poll(co);
	}
}

static void lag_nudge(struct cutover *co)
{
	co->pending++;
	if (!control_conn_query(co->ctl[co->to], LAG_NUDGE_SQL, CONTROL_QUERY_TIMEOUT_MS,
				nudge_target_cb, co)) {
		co->pending--;
		schedule_poll(co);
	}
}

static void lag_check_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_WAIT_LAG || co->lag_done)
		return;
	if (co->aborting) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not poll replication progress: %s", r->error);
		return;
	}
	if (co->db->cfg->d.lag_method == LAG_LSN) {
		if (r->res == NULL || PQntuples(r->res) == 0) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "replication slot \"%s\" disappeared",
				     co->db->cfg->replication_slot);
			return;
		}
		if (strcmp(PQgetvalue(r->res, 0, 1), "t") != 0) {
			cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				     "replication slot \"%s\" became inactive: the %s or its subscription is down",
				     co->db->cfg->replication_slot,
				     co->to == SIDE_TARGET ? "target" : "source");
			return;
		}
		if (!PQgetisnull(r->res, 0, 2))
			cutover_record_lag(co->db, strtoll(PQgetvalue(r->res, 0, 2), NULL, 10));
		if (strcmp(PQgetvalue(r->res, 0, 0), "t") == 0) {
			lag_finished(co);
			return;
		}
		lag_nudge(co);
		return;
	} else if (r->res && PQntuples(r->res) > 0) {
		lag_finished(co);
		return;
	}
	schedule_poll(co);
}

static void lag_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;
	const struct db_config *dc = co->db->cfg;
	char sql[600];

	(void)fd;
	(void)what;
	if (dc->d.lag_method == LAG_LSN) {
		char slot[160], goal[80];

		/* both were quoted once already (preflight, lag goal): they fit */
		if (!sqlquote_literal(dc->replication_slot, slot, sizeof(slot)) ||
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
		co->pending++;
		if (!control_conn_query(co->ctl[co->from], sql, CONTROL_QUERY_TIMEOUT_MS,
					lag_check_cb, co))
			co->pending--;
	} else {
		char table[300], id[100];

		if (!sqlquote_qualified(dc->d.marker_table, table, sizeof(table)) ||
		    !sqlquote_literal(co->marker_id, id, sizeof(id))) {
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "marker_table \"%s\" is not a valid [schema.]table name",
				     dc->d.marker_table);
			return;
		}
		snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = %s", table, id);
		co->pending++;
		if (!control_conn_query(co->ctl[co->to], sql, CONTROL_QUERY_TIMEOUT_MS,
					lag_check_cb, co))
			co->pending--;
	}
}

static void lag_goal_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	co->pending--;
	if (co->phase != CO_WAIT_LAG)
		return;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s on the %s: %s",
			     co->db->cfg->d.lag_method == LAG_LSN ? "read the WAL position"
								  : "insert the marker row",
			     co->from == SIDE_SOURCE ? "source" : "target", r->error);
		return;
	}
	if (co->db->cfg->d.lag_method == LAG_LSN) {
		if (r->res == NULL || PQntuples(r->res) == 0) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR, "could not read the WAL position");
			return;
		}
		snprintf(co->goal_lsn, sizeof(co->goal_lsn), "%s", PQgetvalue(r->res, 0, 0));
		log_debug("switch %s: waiting for the slot to reach %s", co->db->name, co->goal_lsn);
	}
	lag_poll_cb(-1, 0, co);
}

static void start_lag_wait(struct cutover *co)
{
	const struct db_config *dc = co->db->cfg;
	char sql[600];

	co->phase = CO_WAIT_LAG;
	co->t_phase = rt_now_us();
	if (dc->d.lag_method == LAG_NONE) {
		lag_finished(co);
		return;
	}
	arm_deadline(co, dc->d.lag_timeout_ms);
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
		uint8_t raw[12];
		char hex[25], table[300], id[100];

		if (!auth_random_bytes(raw, sizeof(raw))) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR, "could not generate a marker id");
			return;
		}
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(hex + 2 * i, 3, "%02x", raw[i]);
		snprintf(co->marker_id, sizeof(co->marker_id), "%s-%s", co->db->name, hex);
		if (!sqlquote_qualified(dc->d.marker_table, table, sizeof(table)) ||
		    !sqlquote_literal(co->marker_id, id, sizeof(id))) {
			cutover_fail(co, SQLSTATE_INVALID_PARAMETER_VALUE,
				     "marker_table \"%s\" is not a valid [schema.]table name",
				     dc->d.marker_table);
			return;
		}
		snprintf(sql, sizeof(sql), "INSERT INTO %s (id) VALUES (%s)", table, id);
	}
	phase_query(co, co->from, sql, lag_goal_cb);
}

/* -- sequence sync -- */

/*
 * An answer of a sequence-sync query: false when the phase has moved on
 * (an abort, a deadline) or the query failed, which fails the switch.
 */
static bool seq_answer(struct cutover *co, const struct control_result *r, const char *verb,
		       enum route_side side)
{
	co->pending--;
	if (co->phase != CO_SYNC_SEQUENCES)
		return false;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s sequences on the %s: %s", verb,
			     route_side_name(side), r->error);
		return false;
	}
	return true;
}

static void seq_set_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!seq_answer(co, r, "set", co->to))
		return;
	co->rec.ms_sequences = (int64_t)ms_since(co->t_phase);
	co->seq_done = true;
	cutover_next(co);
}

/*
 * One statement of the batch run on the side switched to: set sequence
 * 'qname' (already quoted by quote_ident) so that the next value it hands out
 * is max(its own next value, the other side's next value + sequence_margin),
 * min(...) and - margin for a descending sequence; never backwards.
 *
 * "Next value" depends on is_called: after nextval() or setval(v) it is
 * last_value + increment; after ALTER SEQUENCE ... RESTART [WITH v] or
 * setval(v, false) (is_called false) it is last_value itself.  The other
 * side's next value arrives as (last, called, inc); the side's own is read by
 * the statement from the sequence relation, together with its bounds from
 * pg_sequence.  Arithmetic is in numeric, so a sequence at its bound does not
 * overflow; a result past the bound sets the sequence exhausted (is_called at
 * its bound), as it is on the other side.  The WHERE leaves a sequence that
 * is already far enough untouched (is_called and last_value included).  The
 * sequence is named by its tableoid, so no name is pasted into a literal.
 */
static void seq_append_set(struct pq_buf *sql, const char *qname, long long last, bool called,
			   long long inc, int64_t margin)
{
	char other[80];
	char stmt[1600];
	int n;

	/* the other side's next value, plus the margin in the sequence's direction */
	if (called)
		snprintf(other, sizeof(other), "(%lld::numeric + %lld)", last, inc);
	else
		snprintf(other, sizeof(other), "%lld::numeric", last);
	n = snprintf(stmt, sizeof(stmt),
		     "SELECT pg_catalog.setval(w.seq,"
		     " CASE WHEN w.n > w.mx THEN w.mx WHEN w.n < w.mn THEN w.mn"
		     " WHEN w.n - w.inc BETWEEN w.mn AND w.mx THEN w.n - w.inc ELSE w.n END::bigint,"
		     " w.n > w.mx OR w.n < w.mn OR w.n - w.inc BETWEEN w.mn AND w.mx)"
		     " FROM (SELECT v.seq, v.nxt, v.inc, v.mn, v.mx,"
		     " CASE WHEN v.inc > 0 THEN GREATEST(v.nxt, %s + %" PRId64 ")"
		     " ELSE LEAST(v.nxt, %s - %" PRId64 ") END AS n"
		     " FROM (SELECT t.tableoid::pg_catalog.regclass AS seq, p.seqincrement::numeric AS inc,"
		     " p.seqmin::numeric AS mn, p.seqmax::numeric AS mx,"
		     " CASE WHEN t.is_called THEN t.last_value::numeric + p.seqincrement"
		     " ELSE t.last_value::numeric END AS nxt"
		     " FROM %s t JOIN pg_catalog.pg_sequence p ON p.seqrelid = t.tableoid) v) w"
		     " WHERE w.n <> w.nxt;",
		     other, margin, other, margin, qname);
	if (n > 0 && n < (int)sizeof(stmt))
		pq_put_bytes(sql, stmt, (size_t)n);
	else
		sql->failed = true;
}

/* Sequence sync, last step: the batch of seq_append_set() statements, one transaction. */
static void seq_send_batch(struct cutover *co)
{
	if (co->seq_sql.len == 0) {
		co->rec.ms_sequences = (int64_t)ms_since(co->t_phase);
		co->seq_done = true;
		cutover_next(co);
		return;
	}
	pq_put_u8(&co->seq_sql, 0);
	if (co->seq_sql.failed) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	phase_query(co, co->to, (const char *)co->seq_sql.data, seq_set_cb);
}

/* Rows of the sequence relations read by step 2 (SEQ_RAW_* columns). */
static void seq_raw_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!seq_answer(co, r, "read", co->from))
		return;
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		long long last, inc;

		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_RAW_LAST), &last) ||
		    !seq_parse_int(PQgetvalue(r->res, i, SEQ_RAW_INCREMENT), &inc)) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected value \"%s\"",
				     PQgetvalue(r->res, i, SEQ_RAW_QNAME),
				     PQgetvalue(r->res, i, SEQ_RAW_LAST));
			return;
		}
		seq_append_set(&co->seq_sql, PQgetvalue(r->res, i, SEQ_RAW_QNAME), last,
			       strcmp(PQgetvalue(r->res, i, SEQ_RAW_CALLED), "t") == 0, inc,
			       co->db->cfg->d.sequence_margin);
	}
	seq_send_batch(co);
}

/*
 * Sequence sync, step 1: SEQ_LIST_SQL on the side switched from.  A sequence
 * it shows with a NULL last_value still has a next value (seqread.h), which
 * step 2 reads from the sequence relation itself: one UNION ALL query, only
 * when there is such a sequence, so that the pause does not pay for it.
 */
static void seq_read_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct pq_buf raw;
	int64_t margin = co->db->cfg->d.sequence_margin;

	if (!seq_answer(co, r, "read", co->from))
		return;
	pq_buf_init(&raw);
	pq_buf_reset(&co->seq_sql);
	co->rec.sequences_synced = 0;
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		const char *qname = PQgetvalue(r->res, i, SEQ_LIST_QNAME);
		long long last, inc;

		if (!seq_selected(co->db, PQgetvalue(r->res, i, SEQ_LIST_NAME)))
			continue;
		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_LIST_INCREMENT), &inc)) {
			pq_buf_free(&raw);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected increment \"%s\"",
				     qname, PQgetvalue(r->res, i, SEQ_LIST_INCREMENT));
			return;
		}
		co->rec.sequences_synced++;
		if (PQgetisnull(r->res, i, SEQ_LIST_LAST)) {
			seq_raw_append(&raw, qname, inc);
			continue;
		}
		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_LIST_LAST), &last)) {
			pq_buf_free(&raw);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected value \"%s\"", qname,
				     PQgetvalue(r->res, i, SEQ_LIST_LAST));
			return;
		}
		seq_append_set(&co->seq_sql, qname, last, true, inc, margin);
	}
	if (raw.len == 0 && !raw.failed) {
		pq_buf_free(&raw);
		seq_send_batch(co);
		return;
	}
	pq_put_u8(&raw, 0);
	if (raw.failed) {
		pq_buf_free(&raw);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	phase_query(co, co->from, (const char *)raw.data, seq_raw_cb);
	pq_buf_free(&raw);
}

static void start_sequence_sync(struct cutover *co)
{
	co->phase = CO_SYNC_SEQUENCES;
	co->t_phase = rt_now_us();
	/* the pause stays bounded: sequences and session checks share one deadline */
	arm_deadline(co, co->db->cfg->d.lag_timeout_ms);
	if (strcmp(co->db->cfg->d.sequence_sync, "none") == 0) {
		co->seq_done = true;
		cutover_next(co);
		return;
	}
	phase_query(co, co->from, SEQ_LIST_SQL, seq_read_cb);
}

/* -- flip and resume -- */

static void cutover_finish(struct cutover *co, bool ok);

static void resume_new_side(struct cutover *co)
{
	struct database *db = co->db;
	struct list_node *p, *m, *tmp;

	co->phase = CO_RESUME;
	list_for_each(p, &db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		/* sessions without a server move by themselves (counted before the moves add to them) */
		list_for_each(m, &pool->idle_clients)
			co->rec.sessions_moved++;
		list_for_each(m, &pool->waiting_clients)
			co->rec.sessions_moved++;
		list_for_each_safe(m, tmp, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->server && c->server->side == co->to)
				continue;
			if (client_apply_move(c))
				co->rec.sessions_moved++;
			else
				co->rec.sessions_closed++;
		}
		/* the old side's idle servers go now; busy ones go when released */
		list_for_each_safe(m, tmp, &pool->idle_servers) {
			struct server *s = list_entry(m, struct server, node);

			if (s->side != co->to)
				server_close(s, "the database switched sides");
		}
	}
	cutover_finish(co, true);
}

/* After a failed flip: the old route written back (best effort, see flip_done). */
static void unflip_done(void *arg, bool ok, const char *errmsg)
{
	char *db = arg;

	if (ok)
		log_info("database %s: route file restored to the old side after a failed flip", db);
	else
		log_error("database %s: could not restore the route file after a failed flip: %s;"
			  " check state_dir before restarting pgcutover",
			  db, errmsg);
	free(db);
}

static void flip_done(void *arg, bool ok, const char *errmsg)
{
	struct cutover *co = arg;

	if (!ok) {
		/*
		 * The write may have failed after the rename (at the directory
		 * fsync), leaving a file that names the new side: put the old side
		 * back so that a restart agrees with where traffic stays.
		 */
		struct route_state st;
		char *db = strdup(co->db->name);

		memset(&st, 0, sizeof(st));
		st.side = co->from;
		route_now(&st);
		if (db && !route_store_async(rt.base, rt.cfg->state_dir, db, &st, unflip_done, db)) {
			log_error("database %s: could not restore the route file after a failed flip",
				  db);
			free(db);
		}
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not record the new route durably: %s",
			     errmsg);
		return;
	}
	co->db->route = co->to;
	log_info("switch %s: route is now %s (recorded in %s)", co->db->name,
		 route_side_name(co->to), rt.cfg->state_dir);
	resume_new_side(co);
}

static void start_flip(struct cutover *co)
{
	struct route_state st;

	co->phase = CO_FLIP;
	memset(&st, 0, sizeof(st));
	st.side = co->to;
	route_now(&st);
	snprintf(st.source_lsn, sizeof(st.source_lsn), "%s", co->goal_lsn);
	if (!route_store_async(rt.base, rt.cfg->state_dir, co->db->name, &st, flip_done, co))
		cutover_fail(co, SQLSTATE_IO_ERROR, "could not start writing the route file");
}

/* Advance to the next phase once the current one is complete. */
static void cutover_next(struct cutover *co)
{
	if (co->aborting && co->phase < CO_FLIP) {
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
		return;
	}
	switch (co->phase) {
	case CO_PREFLIGHT:
		if (!co->reached) {
			co->reached = true;
			preflight_checks(co);
			return;
		}
		if (co->dry_run) {
			snprintf(co->rec.result, sizeof(co->rec.result),
				 "dry run: ok (lag %" PRId64 " bytes, %d sequences to sync)",
				 co->preflight_lag < 0 ? 0 : co->preflight_lag, co->nsequences);
			co->rec.sequences_synced = 0;
			cutover_finish(co, true);
			return;
		}
		start_drain(co);
		break;
	case CO_WAIT_LAG:
		if (co->lag_done)
			start_sequence_sync(co);
		break;
	case CO_SYNC_SEQUENCES:
		if (co->seq_done && co->checks_pending == 0)
			start_flip(co);
		break;
	default:
		break;
	}
}

/* Leave the database running (on whichever side it is routed to) and report. */
static void cutover_finish(struct cutover *co, bool ok)
{
	struct database *db = co->db;
	struct client *req = co->requester;

	evtimer_del(co->deadline);
	evtimer_del(co->poll);
	if (co->t_pause)
		co->rec.ms_paused = (int64_t)ms_since(co->t_pause);
	if (ok && !co->dry_run)
		snprintf(co->rec.result, sizeof(co->rec.result), "ok");
	db->switch_paused = false;
	db->on_progress = db->admin_paused ? pause_progress : NULL;
	db->on_progress_owner = NULL;
	history_add(&co->rec);
	db->stats.switches[co->dry_run ? SWITCH_DRY_RUN : ok ? SWITCH_OK : SWITCH_FAILED]++;
	if (!co->dry_run) {
		db->stats.have_last_switch = true;
		db->stats.last_switch_ms[0] = co->rec.ms_paused;
		db->stats.last_switch_ms[1] = co->rec.ms_drain;
		db->stats.last_switch_ms[2] = co->rec.ms_lag;
		db->stats.last_switch_ms[3] = co->rec.ms_sequences;
	}
	log_info("switch %s %s -> %s: %s (paused %" PRId64 " ms, drain %" PRId64 " ms, lag %" PRId64
		 " ms, sequences %" PRId64 " ms, %d moved, %d closed)%s%s",
		 db->name, route_side_name(co->rec.from), route_side_name(co->rec.to),
		 co->rec.result, co->rec.ms_paused, co->rec.ms_drain, co->rec.ms_lag,
		 co->rec.ms_sequences, co->rec.sessions_moved, co->rec.sessions_closed,
		 co->rec.error[0] ? ": " : "", co->rec.error);
	if (req) {
		if (ok)
			admin_reply_switch(req, &co->rec);
		else
			admin_reply_error(req, co->fail_state, co->rec.error,
					  "SHOW SWITCHES has the timings; the database stays on its old side");
	}
	/* control connections may be inside a callback: free once it returns */
	for (int side = 0; side < 2; side++)
		control_conn_reset(co->ctl[side]);
	pool_db_resume(db);
	pause_check();
	cutover_free(co);
}

static void cutover_fail(struct cutover *co, const char *sqlstate, const char *fmt, ...)
{
	char msg[300], state[6];
	va_list ap;
	struct list_node *p, *m;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* sqlstate may be co->fail_state itself: copy before overwriting */
	snprintf(state, sizeof(state), "%s",
		 sqlstate && strlen(sqlstate) == 5 ? sqlstate : SQLSTATE_INTERNAL_ERROR);
	memcpy(co->fail_state, state, sizeof(state));
	snprintf(co->rec.error, sizeof(co->rec.error), "%s failed: %s", phase_names[co->phase], msg);
	snprintf(co->rec.result, sizeof(co->rec.result), "%s", co->aborting ? "aborted" : "failed");
	log_warning("switch %s: %s; traffic resumes on the %s", co->db->name, co->rec.error,
		    route_side_name(co->db->route));
	/* forget the session checks: the sessions stay where they are */
	list_for_each(p, &co->db->pools) {
		struct pool *pool = list_entry(p, struct pool, node);

		list_for_each(m, &pool->active_clients) {
			struct client *c = list_entry(m, struct client, node);

			if (c->move_done == check_done) {
				c->move_done = NULL;
				c->move_arg = NULL;
			}
			if (c->move != MOVE_CHECKING)
				c->move = MOVE_UNKNOWN;
		}
	}
	cutover_finish(co, false);
}

/* ---- entry points ---- */

bool cutover_start(struct database *db, enum route_side to, bool dry_run, struct client *requester,
		   char *errbuf, size_t errlen)
{
	struct cutover *co;
	struct route_state now;

	if (db->on_progress_owner) {
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
	co->requester = requester;
	co->from = db->route;
	co->to = to;
	co->dry_run = dry_run;
	co->preflight_lag = -1;
	co->deadline = evtimer_new(rt.base, deadline_cb, co);
	co->poll = evtimer_new(rt.base, lag_poll_cb, co);
	if (co->deadline == NULL || co->poll == NULL || !open_controls(co, errbuf, errlen)) {
		cutover_free(co);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	snprintf(co->rec.db, sizeof(co->rec.db), "%s", db->name);
	co->rec.from = co->from;
	co->rec.to = to;
	co->rec.dry_run = dry_run;
	route_now(&now);
	snprintf(co->rec.started, sizeof(co->rec.started), "%s", now.switched_at);
	snprintf(co->rec.result, sizeof(co->rec.result), "running");
	db->on_progress = cutover_progress;
	db->on_progress_owner = co;
	log_info("switch %s: %s -> %s%s started", db->name, route_side_name(co->from),
		 route_side_name(to), dry_run ? " (dry run)" : "");
	start_preflight(co);
	return true;
}

bool cutover_abort(struct database *db, char *errbuf, size_t errlen)
{
	struct cutover *co = db_cutover(db);

	if (co == NULL) {
		snprintf(errbuf, errlen, "database \"%s\" is not switching", db->name);
		return false;
	}
	if (co->phase >= CO_FLIP) {
		snprintf(errbuf, errlen,
			 "the switch of database \"%s\" has already flipped the route", db->name);
		return false;
	}
	co->aborting = true;
	/* a drain or lag wait ends now; a running query ends at its callback */
	if (co->phase == CO_DRAIN || (co->phase == CO_WAIT_LAG && co->pending == 0))
		cutover_fail(co, SQLSTATE_QUERY_CANCELED, "aborted by ABORT from the admin console");
	return true;
}

/* ---- PAUSE / RESUME ---- */

static bool drained(const struct database *db)
{
	return pool_db_in_flight(db) == 0;
}

static bool all_drained(void)
{
	struct list_node *n;

	list_for_each(n, &rt.databases)
		if (!drained(list_entry(n, struct database, node)))
			return false;
	return true;
}

/* Answer the PAUSE requests whose databases have drained. */
static void pause_check(void)
{
	struct pause_wait **pp = &pause_waits;

	while (*pp) {
		struct pause_wait *w = *pp;
		bool done = w->db ? (drained(w->db) || !w->db->admin_paused) : all_drained();

		if (done) {
			*pp = w->next;
			if (w->requester)
				admin_reply_command(w->requester, "PAUSE");
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

static void pause_progress(struct database *db)
{
	(void)db;
	pause_check();
}

static void pause_one(struct database *db)
{
	db->admin_paused = true;
	if (db->on_progress == NULL)
		db->on_progress = pause_progress;
}

void cutover_pause(struct database *db, struct client *requester)
{
	struct pause_wait *w = calloc(1, sizeof(*w));
	struct list_node *n;

	if (db)
		pause_one(db);
	else
		list_for_each(n, &rt.databases)
			pause_one(list_entry(n, struct database, node));
	if (w == NULL) {
		admin_reply_error(requester, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	w->requester = requester;
	w->db = db;
	w->next = pause_waits;
	pause_waits = w;
	pause_check();
}

static void resume_one(struct database *db)
{
	db->admin_paused = false;
	if (db->on_progress == pause_progress)
		db->on_progress = NULL;
	pool_db_resume(db);
}

void cutover_resume(struct database *db)
{
	struct list_node *n;

	if (db)
		resume_one(db);
	else
		list_for_each(n, &rt.databases)
			resume_one(list_entry(n, struct database, node));
	/* PAUSE requests still waiting are answered: nothing is paused any more */
	pause_check();
}

void cutover_forget_client(struct client *c)
{
	struct list_node *n;

	for (struct pause_wait *w = pause_waits; w; w = w->next)
		if (w->requester == c)
			w->requester = NULL;
	list_for_each(n, &rt.databases) {
		struct cutover *co = db_cutover(list_entry(n, struct database, node));

		if (co && co->requester == c)
			co->requester = NULL;
	}
}

void cutover_shutdown(void)
{
	struct list_node *n;

	while (pause_waits) {
		struct pause_wait *w = pause_waits;

		pause_waits = w->next;
		free(w);
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct cutover *co = db_cutover(db);

		if (co) {
			db->on_progress_owner = NULL;
			db->on_progress = NULL;
			cutover_free(co);
		}
	}
	route_shutdown();
}

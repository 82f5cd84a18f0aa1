/*
 * check_eval.c - CHECK's rows from the catalog answers (see check_int.h):
 * reachability, control_user's privileges, replication health, publication
 * coverage, replica identity, objects logical replication does not carry,
 * the fence state, the switch back check and what VERIFY found.  The session
 * rows are check_sessions.c's, the schema rows check_schema.c's, the login
 * row check_logins.c's.
 *
 * Lists in a detail are bounded: past a few names, "and N more".
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/cutover/check_int.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/verify.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

/* Names listed in a detail before "and N more". */
#define LIST_MAX 8

/* ---- helpers ---- */

const char *check_val(const PGresult *res, int r, int c)
{
	if (res == NULL || r >= PQntuples(res) || c >= PQnfields(res) || PQgetisnull(res, r, c))
		return NULL;
	return PQgetvalue(res, r, c);
}

bool check_true(const PGresult *res, int r, int c)
{
	const char *v = check_val(res, r, c);

	return v && strcmp(v, "t") == 0;
}

static void vappend(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t n = strlen(buf);

	if (n + 1 < len)
		vsnprintf(buf + n, len - n, fmt, ap);
}

void check_text(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

void check_set(struct check_run *run, enum check_id id, enum check_status st, const char *fmt, ...)
{
	struct check_row *row = &run->rep.rows[id];
	va_list ap;

	row->status = st;
	row->detail[0] = '\0';
	va_start(ap, fmt);
	vappend(row->detail, sizeof(row->detail), fmt, ap);
	va_end(ap);
	if (st == CHECK_STATUS_FAIL && row->sqlstate[0] == '\0')
		memcpy(row->sqlstate, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, 6);
}

void check_add(struct check_run *run, enum check_id id, enum check_status st, const char *fmt, ...)
{
	struct check_row *row = &run->rep.rows[id];
	va_list ap;

	if (row->detail[0])
		strncat(row->detail, "; ", sizeof(row->detail) - strlen(row->detail) - 1);
	va_start(ap, fmt);
	vappend(row->detail, sizeof(row->detail), fmt, ap);
	va_end(ap);
	if (st > row->status)
		row->status = st;
	if (st == CHECK_STATUS_FAIL && row->sqlstate[0] == '\0')
		memcpy(row->sqlstate, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, 6);
}

const PGresult *check_need(struct check_run *run, enum check_id row, enum route_side side,
			   enum check_query q, const char *what)
{
	struct check_row *r = &run->rep.rows[row];

	if (run->res[side][q])
		return run->res[side][q];
	if (!run->ran[side][q])
		return NULL;
	if (r->status != CHECK_STATUS_FAIL || r->sqlstate[0] == '\0')
		snprintf(r->sqlstate, sizeof(r->sqlstate), "%s",
			 run->errstate[side][q][0] ? run->errstate[side][q]
						   : SQLSTATE_INTERNAL_ERROR);
	check_add(run, row, CHECK_STATUS_FAIL, "could not read %s on the %s: %s", what,
		  route_side_name(side), run->err[side][q][0] ? run->err[side][q] : "no answer");
	return NULL;
}

/* Case-insensitive compare of a configured name part with a catalog name. */
static bool name_is(const char *conf, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(conf, name, len) == 0;
}

bool check_ignored(const struct db_config *dc, const char *schema, const char *table)
{
	const char *p = dc->d.ignore_tables;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *dot = memchr(p, '.', len);

		if (dot == NULL) {
			if (name_is(p, len, table))
				return true;
		} else {
			size_t slen = (size_t)(dot - p), tlen = len - slen - 1;

			if (name_is(p, slen, schema) &&
			    ((tlen == 1 && dot[1] == '*') || name_is(dot + 1, tlen, table)))
				return true;
		}
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

bool check_table_ignored(const struct db_config *dc, const char *schema, const char *table)
{
	return check_ignored(dc, schema, table);
}

/* A bounded list of names being built. */
struct name_list {
	char text[700];
	int count;
};

static void list_add(struct name_list *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void list_add(struct name_list *l, const char *fmt, ...)
{
	va_list ap;

	if (l->count++ >= LIST_MAX)
		return;
	if (l->text[0])
		strncat(l->text, ", ", sizeof(l->text) - strlen(l->text) - 1);
	va_start(ap, fmt);
	vappend(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
}

/* "a, b, c" or "a, b, c and 4 more" into a static buffer. */
static const char *list_text(const struct name_list *l)
{
	static char buf[760];

	if (l->count > LIST_MAX)
		snprintf(buf, sizeof(buf), "%s and %d more", l->text, l->count - LIST_MAX);
	else
		snprintf(buf, sizeof(buf), "%s", l->text);
	return buf;
}

static const char *side_name(enum route_side s)
{
	return route_side_name(s);
}

/* ---- reachable ---- */

static void eval_reachable(struct check_run *run)
{
	const PGresult *o = run->res[run->from][QR_REACH], *n = run->res[run->to][QR_REACH];

	if (o == NULL || n == NULL)
		return; /* check.c set it when a side did not answer */
	check_set(run, CHECK_REACHABLE, CHECK_STATUS_OK, "%s: PostgreSQL %s; %s: PostgreSQL %s",
		  side_name(run->from), check_val(o, 0, R_VERSION), side_name(run->to),
		  check_val(n, 0, R_VERSION));
	if (check_true(n, 0, R_RECOVERY))
		check_add(run, CHECK_REACHABLE, CHECK_STATUS_FAIL,
			  "the %s is in recovery (a standby): it cannot take writes",
			  side_name(run->to));
	if (check_val(o, 0, R_COLLATE) && check_val(n, 0, R_COLLATE) &&
	    strcmp(check_val(o, 0, R_COLLATE), check_val(n, 0, R_COLLATE)) != 0)
		check_add(run, CHECK_REACHABLE, CHECK_STATUS_WARN,
			  "the databases sort text differently (LC_COLLATE %s on the %s, %s on the %s)",
			  check_val(o, 0, R_COLLATE), side_name(run->from),
			  check_val(n, 0, R_COLLATE), side_name(run->to));
}

/* ---- privileges ---- */

/* What control_user lacks on one side for this switch. */
static void eval_privileges_side(struct check_run *run, enum route_side side,
				 struct name_list *need, struct name_list *optional)
{
	const struct db_config *dc = run->dc;
	const PGresult *r = run->res[side][QR_REACH], *p, *s;
	bool old = side == run->from, super = check_true(r, 0, R_SUPER);
	bool fenced_now = false;
	const PGresult *f = run->res[side][QR_FENCE];

	if (f && check_val(f, 0, 0) && strcmp(check_val(f, 0, 0), "0") != 0)
		fenced_now = true;
	if (dc->d.fence && (old || fenced_now) && !super) {
		if (!check_true(r, 0, R_CREATEROLE))
			list_add(need, "CREATEROLE (to %s the fence)", old ? "put up" : "lift");
		if (old && !check_true(r, 0, R_SIGNAL))
			list_add(need, "membership in pg_signal_backend (the fence ends sessions)");
	}
	if (dc->d.reverse_replication && dc->d.lag_method == LAG_LSN && !super)
		list_add(need, "superuser (reverse replication creates and alters subscriptions)");
	if (!super && !check_true(r, 0, R_READ_STATS))
		list_add(optional, "membership in pg_read_all_stats (to see other roles' sessions)");
	p = check_need(run, CHECK_PRIVILEGES, side, QR_PRIV, "control_user's privileges");
	if (p) {
		if (dc->d.lag_method == LAG_LSN && old && !check_true(p, 0, P_EMIT))
			list_add(need, "EXECUTE on pg_logical_emit_message (the lag wait)");
		if (dc->d.fence && old && check_val(p, 0, P_TERMINATE) &&
		    !check_true(p, 0, P_TERMINATE))
			list_add(need, "EXECUTE on pg_terminate_backend (the fence)");
		if (dc->d.lag_method == LAG_MARKER) {
			if (old && check_val(p, 0, P_MARKER_INSERT) &&
			    !check_true(p, 0, P_MARKER_INSERT))
				list_add(need, "INSERT on %s (the lag wait)", dc->d.marker_table);
			if (!old && check_val(p, 0, P_MARKER_SELECT) &&
			    !check_true(p, 0, P_MARKER_SELECT))
				list_add(need, "SELECT on %s (the lag wait)", dc->d.marker_table);
		}
		if (check_val(p, 0, P_UNREADABLE_COUNT) &&
		    strcmp(check_val(p, 0, P_UNREADABLE_COUNT), "0") != 0)
			list_add(optional, "SELECT on %s table(s) (VERIFY): %s",
				 check_val(p, 0, P_UNREADABLE_COUNT), check_val(p, 0, P_UNREADABLE));
	}
	s = strcmp(dc->d.sequence_sync, "none") != 0
		    ? check_need(run, CHECK_PRIVILEGES, side, QR_SEQ, "the sequences")
		    : NULL;
	for (int i = 0; s && i < PQntuples(s); i++) {
		const char *name = check_val(s, i, SQ_NAME);

		if (name == NULL || !cutover_seq_selected(dc, name))
			continue;
		if (!check_true(s, i, SQ_SELECT))
			list_add(need, "SELECT on sequence %s (sequence sync)", name);
		if (!old && !check_true(s, i, SQ_UPDATE))
			list_add(need, "UPDATE on sequence %s (sequence sync)", name);
	}
}

static void eval_privileges(struct check_run *run)
{
	enum route_side sides[2] = {run->from, run->to};
	char needs[2][760] = {"", ""};

	check_set(run, CHECK_PRIVILEGES, CHECK_STATUS_OK,
		  "control_user %s:", run->dc->d.control_user);
	for (int i = 0; i < 2; i++) {
		enum route_side side = sides[i];
		const PGresult *r = run->res[side][QR_REACH];
		struct name_list need = {{0}, 0}, optional = {{0}, 0};
		char *d = run->rep.rows[CHECK_PRIVILEGES].detail;
		size_t n;

		if (r == NULL)
			continue;
		eval_privileges_side(run, side, &need, &optional);
		n = strlen(d);
		snprintf(d + n, sizeof(run->rep.rows[0].detail) - n, "%s %s: %s", i ? ";" : "",
			 side_name(side),
			 check_true(r, 0, R_SUPER) ? "superuser" : "not a superuser");
		if (need.count) {
			check_add(run, CHECK_PRIVILEGES, CHECK_STATUS_FAIL, "it needs %s",
				  list_text(&need));
			check_text(needs[i], sizeof(needs[i]), "on the %s: %s", side_name(side),
				   list_text(&need));
		}
		if (optional.count)
			check_add(run, CHECK_PRIVILEGES, CHECK_STATUS_WARN, "it would need %s",
				  list_text(&optional));
	}
	if (needs[0][0] || needs[1][0]) {
		check_text(run->rep.rows[CHECK_PRIVILEGES].error, sizeof(run->rep.rows[0].error),
			   "privileges check: control_user \"%s\" needs %s%s%s",
			   run->dc->d.control_user, needs[0],
			   needs[0][0] && needs[1][0] ? "; " : "", needs[1]);
		memcpy(run->rep.rows[CHECK_PRIVILEGES].sqlstate, SQLSTATE_INSUFFICIENT_PRIVILEGE, 6);
	}
}

/* ---- replication ---- */

static void eval_slot(struct check_run *run, const PGresult *slot)
{
	struct check_row *row = &run->rep.rows[CHECK_REPLICATION];
	const struct db_config *dc = run->dc;

	if (PQntuples(slot) == 0) {
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "replication slot check: it does not exist on the side being switched from");
		check_text(row->error, sizeof(row->error), "%s",
			   "replication slot check: it does not exist on the side being switched from");
		return;
	}
	if (!check_true(slot, 0, SL_ACTIVE)) {
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "replication slot check: it is not active: is the subscription on the other side enabled and connected?");
		check_text(row->error, sizeof(row->error), "%s",
			   "replication slot check: it is not active: is the subscription on the other side enabled and connected?");
		return;
	}
	if (check_val(slot, 0, SL_WAL_STATUS) &&
	    strcmp(check_val(slot, 0, SL_WAL_STATUS), "lost") == 0)
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "replication slot check: its WAL is lost (max_slot_wal_keep_size): replication must be set up again");
	if (check_val(slot, 0, SL_LAG)) {
		run->rep.lag = strtoll(check_val(slot, 0, SL_LAG), NULL, 10);
		cutover_record_lag(run->db, run->rep.lag);
	}
	if (run->rep.lag > dc->d.max_switch_lag) {
		check_text(row->error, sizeof(row->error),
			   "replication lag check: lag is %" PRId64
			   " bytes, above max_switch_lag (%" PRId64 ")",
			   run->rep.lag, dc->d.max_switch_lag);
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL, "%s", row->error);
	} else {
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_OK,
			  "slot active, lag %" PRId64 " bytes (max_switch_lag %" PRId64 ")",
			  run->rep.lag, dc->d.max_switch_lag);
	}
}

static void eval_subscription(struct check_run *run, const PGresult *sub, const PGresult *rel)
{
	const char *name = check_val(sub, 0, SB_NAME);
	struct name_list copying = {{0}, 0};

	if (name == NULL || check_val(sub, 0, SB_ENABLED) == NULL) {
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "no subscription on the %s replicates from this slot (set subscription)",
			  side_name(run->to));
		return;
	}
	if (!check_true(sub, 0, SB_ENABLED))
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "subscription %s on the %s is disabled (ALTER SUBSCRIPTION ... ENABLE)",
			  name, side_name(run->to));
	else if (strcmp(check_val(sub, 0, SB_WORKERS), "0") == 0)
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "subscription %s on the %s has no apply worker running (see the %s's log)",
			  name, side_name(run->to), side_name(run->to));
	else
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_OK, "subscription %s streaming",
			  name);
	if (check_val(sub, 0, SB_APPLY_ERRORS) &&
	    (strcmp(check_val(sub, 0, SB_APPLY_ERRORS), "0") != 0 ||
	     strcmp(check_val(sub, 0, SB_SYNC_ERRORS), "0") != 0))
		check_add(run, CHECK_REPLICATION,
			  check_true(sub, 0, SB_ENABLED) &&
					  strcmp(check_val(sub, 0, SB_WORKERS), "0") != 0
				  ? CHECK_STATUS_WARN
				  : CHECK_STATUS_FAIL,
			  "%s apply errors and %s table sync errors since the statistics were reset (pg_stat_subscription_stats; the %s's log says which)",
			  check_val(sub, 0, SB_APPLY_ERRORS), check_val(sub, 0, SB_SYNC_ERRORS),
			  side_name(run->to));
	for (int i = 0; rel && i < PQntuples(rel); i++)
		if (strcmp(check_val(rel, i, SR_STATE), "r") != 0)
			list_add(&copying, "%s.%s (%s)", check_val(rel, i, SR_SCHEMA),
				 check_val(rel, i, SR_TABLE), check_val(rel, i, SR_STATE));
	if (copying.count)
		check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
			  "tables not synchronised yet (pg_subscription_rel state other than r): %s",
			  list_text(&copying));
}

static void eval_replication(struct check_run *run)
{
	const struct db_config *dc = run->dc;
	const PGresult *slot, *sub, *rel, *mo, *mn;

	if (dc->d.lag_method == LAG_NONE) {
		check_set(run, CHECK_REPLICATION, CHECK_STATUS_OK,
			  "lag_method none: the operator vouches that the %s is current",
			  side_name(run->to));
		return;
	}
	if (dc->d.lag_method == LAG_MARKER) {
		check_set(run, CHECK_REPLICATION, CHECK_STATUS_OK,
			  "lag_method marker: the CDC tool's health is not visible to pgcutover");
		mo = check_need(run, CHECK_REPLICATION, run->from, QR_MARKER, "marker_table");
		mn = check_need(run, CHECK_REPLICATION, run->to, QR_MARKER, "marker_table");
		if (mo && mn && !(check_true(mo, 0, 0) && check_true(mn, 0, 0))) {
			check_add(run, CHECK_REPLICATION, CHECK_STATUS_FAIL,
				  "marker_table check: marker_table does not exist on both sides");
			check_text(run->rep.rows[CHECK_REPLICATION].error,
				   sizeof(run->rep.rows[0].error), "%s",
				   "marker_table check: marker_table does not exist on both sides");
		}
		return;
	}
	run->rep.rows[CHECK_REPLICATION].detail[0] = '\0';
	slot = check_need(run, CHECK_REPLICATION, run->from, QR_SLOT, "the replication slot");
	if (slot)
		eval_slot(run, slot);
	sub = check_need(run, CHECK_REPLICATION, run->to, QR_SUB, "the subscription");
	rel = check_need(run, CHECK_REPLICATION, run->to, QR_SUBREL, "the subscribed tables");
	if (sub)
		eval_subscription(run, sub, rel);
}

/* ---- publication coverage, replica identity, objects not replicated ---- */

/* Whether the comma list 'pubs' names one of the comma list 'wanted'. */
static bool pubs_meet(const char *pubs, const char *wanted)
{
	const char *p = pubs;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *w = wanted;

		while (w && *w) {
			const char *wc = strchr(w, ',');
			size_t wl = wc ? (size_t)(wc - w) : strlen(w);

			if (wl == len && strncmp(w, p, len) == 0)
				return true;
			w = wc ? wc + 1 : NULL;
		}
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* Whether the subscription lists schema.table. */
static bool subscribed(const PGresult *rel, const char *schema, const char *table)
{
	for (int i = 0; rel && i < PQntuples(rel); i++)
		if (strcmp(check_val(rel, i, SR_SCHEMA), schema) == 0 &&
		    strcmp(check_val(rel, i, SR_TABLE), table) == 0)
			return true;
	return false;
}

static void eval_pub_actions(struct check_run *run, const char *wanted)
{
	const PGresult *pubs =
		check_need(run, CHECK_PUBLICATION, run->from, QR_PUBS, "the publications");
	static const struct {
		int col;
		const char *what;
		enum check_status st;
	} acts[] = {{PB_INSERT, "insert", CHECK_STATUS_FAIL},
		    {PB_UPDATE, "update", CHECK_STATUS_FAIL},
		    {PB_DELETE, "delete", CHECK_STATUS_FAIL},
		    {PB_TRUNCATE, "truncate", CHECK_STATUS_WARN}};

	for (int i = 0; pubs && i < PQntuples(pubs); i++) {
		const char *name = check_val(pubs, i, PB_NAME);

		if (!pubs_meet(name, wanted))
			continue;
		for (size_t k = 0; k < sizeof(acts) / sizeof(acts[0]); k++)
			if (!check_true(pubs, i, acts[k].col))
				check_add(run, CHECK_PUBLICATION, acts[k].st,
					  "publication %s does not publish %s: those changes are not replicated",
					  name, acts[k].what);
	}
}

static void eval_publication(struct check_run *run)
{
	const struct db_config *dc = run->dc;
	const PGresult *tables, *sub, *rel;
	const char *wanted;
	struct name_list missing = {{0}, 0}, unsubscribed = {{0}, 0}, filtered = {{0}, 0};
	int ntables = 0;

	if (dc->d.lag_method != LAG_LSN) {
		check_set(run, CHECK_PUBLICATION, CHECK_STATUS_OK,
			  "not applicable: with lag_method %s pgcutover cannot tell which tables are replicated",
			  config_lag_method_name(dc->d.lag_method));
		return;
	}
	tables = check_need(run, CHECK_PUBLICATION, run->from, QR_TABLES, "the tables");
	sub = check_need(run, CHECK_PUBLICATION, run->to, QR_SUB, "the subscription");
	rel = check_need(run, CHECK_PUBLICATION, run->to, QR_SUBREL, "the subscribed tables");
	if (tables == NULL || sub == NULL || rel == NULL)
		return;
	wanted = check_val(sub, 0, SB_PUBS);
	if (wanted == NULL) {
		check_add(run, CHECK_PUBLICATION, CHECK_STATUS_FAIL,
			  "not checked: no subscription on the %s replicates from the slot",
			  side_name(run->to));
		return;
	}
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *schema = check_val(tables, i, TB_SCHEMA),
			   *table = check_val(tables, i, TB_NAME);
		const char *pubs = check_val(tables, i, TB_PUBS);

		/* partitioned parents hold no rows; unlogged tables and views: CHECK_NOT_REPLICATED */
		if (strcmp(check_val(tables, i, TB_KIND), "r") != 0 ||
		    strcmp(check_val(tables, i, TB_PERSISTENCE), "p") != 0 ||
		    check_ignored(dc, schema, table))
			continue;
		ntables++;
		if (pubs == NULL || !pubs_meet(pubs, wanted)) {
			list_add(&missing, "%s.%s", schema, table);
			continue;
		}
		if (!check_true(tables, i, TB_PARTITION) && !subscribed(rel, schema, table))
			list_add(&unsubscribed, "%s.%s", schema, table);
		if (check_true(tables, i, TB_ROWFILTER))
			list_add(&filtered, "%s.%s", schema, table);
	}
	check_set(run, CHECK_PUBLICATION, CHECK_STATUS_OK, "%d tables, replicated by %s", ntables,
		  wanted);
	if (missing.count) {
		check_add(run, CHECK_PUBLICATION, CHECK_STATUS_FAIL,
			  "not in publication %s: %s: their writes would be lost at the flip (add them to the publication, or to ignore_tables)",
			  wanted, list_text(&missing));
		check_text(run->rep.rows[CHECK_PUBLICATION].error, sizeof(run->rep.rows[0].error),
			   "publication check: %d tables are not replicated: %s", missing.count,
			   list_text(&missing));
	}
	if (unsubscribed.count) {
		check_add(run, CHECK_PUBLICATION, CHECK_STATUS_FAIL,
			  "published but not subscribed on the %s: %s (ALTER SUBSCRIPTION ... REFRESH PUBLICATION)",
			  side_name(run->to), list_text(&unsubscribed));
		if (run->rep.rows[CHECK_PUBLICATION].error[0] == '\0')
			check_text(run->rep.rows[CHECK_PUBLICATION].error,
				   sizeof(run->rep.rows[0].error),
				   "publication check: published but not subscribed on the %s, so not replicated: %s",
				   side_name(run->to), list_text(&unsubscribed));
	}
	if (filtered.count)
		check_add(run, CHECK_PUBLICATION, CHECK_STATUS_WARN,
			  "a row filter replicates only part of: %s", list_text(&filtered));
	eval_pub_actions(run, wanted);
}

static void eval_replica_identity(struct check_run *run)
{
	const PGresult *tables =
		check_need(run, CHECK_REPLICA_ID, run->from, QR_TABLES, "the tables");
	struct name_list none = {{0}, 0};
	bool reverse = run->dc->d.reverse_replication && run->dc->d.lag_method == LAG_LSN;

	if (tables == NULL)
		return;
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *ri = check_val(tables, i, TB_REPLIDENT);
		bool has = (ri[0] == 'd' && check_true(tables, i, TB_HAS_PK)) || ri[0] == 'f' ||
			   (ri[0] == 'i' && check_true(tables, i, TB_HAS_RI_INDEX));

		if (has || strcmp(check_val(tables, i, TB_KIND), "r") != 0 ||
		    check_ignored(run->dc, check_val(tables, i, TB_SCHEMA),
				  check_val(tables, i, TB_NAME)))
			continue;
		list_add(&none, "%s.%s", check_val(tables, i, TB_SCHEMA),
			 check_val(tables, i, TB_NAME));
	}
	if (none.count == 0) {
		check_set(run, CHECK_REPLICA_ID, CHECK_STATUS_OK, "every table has one");
		return;
	}
	check_set(run, CHECK_REPLICA_ID, CHECK_STATUS_WARN,
		  "without a primary key or replica identity: %s: UPDATE and DELETE of them fail where they are published%s; VERIFY compares them whole",
		  list_text(&none),
		  reverse ? " (reverse replication publishes them on the side switched to)" : "");
}

static void eval_not_replicated(struct check_run *run)
{
	const PGresult *tables =
		check_need(run, CHECK_NOT_REPLICATED, run->from, QR_TABLES, "the tables");
	const PGresult *lo =
		check_need(run, CHECK_NOT_REPLICATED, run->from, QR_LO, "the large objects");
	const PGresult *lon =
		check_need(run, CHECK_NOT_REPLICATED, run->to, QR_LO, "the large objects");
	struct name_list unlogged = {{0}, 0}, views = {{0}, 0};

	if (tables == NULL || lo == NULL || lon == NULL)
		return;
	check_set(run, CHECK_NOT_REPLICATED, CHECK_STATUS_OK,
		  "no large objects, unlogged tables or materialized views");
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *schema = check_val(tables, i, TB_SCHEMA),
			   *table = check_val(tables, i, TB_NAME);

		if (check_ignored(run->dc, schema, table))
			continue;
		if (strcmp(check_val(tables, i, TB_KIND), "m") == 0)
			list_add(&views, "%s.%s", schema, table);
		else if (strcmp(check_val(tables, i, TB_PERSISTENCE), "u") == 0)
			list_add(&unlogged, "%s.%s", schema, table);
	}
	if (strcmp(check_val(lo, 0, 0), "0") != 0) {
		bool same = strcmp(check_val(lo, 0, 0), check_val(lon, 0, 0)) == 0 &&
			    strcmp(check_val(lo, 0, 1), check_val(lon, 0, 1)) == 0;

		run->rep.rows[CHECK_NOT_REPLICATED].detail[0] = '\0';
		check_add(run, CHECK_NOT_REPLICATED, same ? CHECK_STATUS_WARN : CHECK_STATUS_FAIL,
			  "%s large objects on the %s, %s on the %s: logical replication does not carry them%s",
			  check_val(lo, 0, 0), side_name(run->from), check_val(lon, 0, 0),
			  side_name(run->to),
			  same ? " (the same ones exist on both sides: changes to their contents are not compared)"
			       : " (copy them, e.g. pg_dump --large-objects, before the switch)");
	}
	if (unlogged.count) {
		if (run->rep.rows[CHECK_NOT_REPLICATED].status == CHECK_STATUS_OK)
			run->rep.rows[CHECK_NOT_REPLICATED].detail[0] = '\0';
		check_add(run, CHECK_NOT_REPLICATED, CHECK_STATUS_FAIL,
			  "unlogged tables are not replicated: %s (ALTER TABLE ... SET LOGGED, or list them in ignore_tables)",
			  list_text(&unlogged));
	}
	if (views.count) {
		if (run->rep.rows[CHECK_NOT_REPLICATED].status == CHECK_STATUS_OK)
			run->rep.rows[CHECK_NOT_REPLICATED].detail[0] = '\0';
		check_add(run, CHECK_NOT_REPLICATED, CHECK_STATUS_WARN,
			  "materialized views are not replicated: %s (REFRESH them on the %s)",
			  list_text(&views), side_name(run->to));
	}
}

/* ---- fence, switch back, verify ---- */

static void eval_fence(struct check_run *run)
{
	const PGresult *fo = check_need(run, CHECK_FENCE, run->from, QR_FENCE, "the fence state");
	const PGresult *fn = check_need(run, CHECK_FENCE, run->to, QR_FENCE, "the fence state");
	const char *o, *n;

	if (fo == NULL || fn == NULL)
		return;
	o = check_val(fo, 0, 0);
	n = check_val(fn, 0, 0);
	check_set(run, CHECK_FENCE, CHECK_STATUS_OK,
		  "%s: %s of %s roles fenced; %s: %s of %s roles fenced; fence = %s%s",
		  side_name(run->from), o, check_val(fo, 0, 1), side_name(run->to), n,
		  check_val(fn, 0, 1), run->dc->d.fence ? "on" : "off",
		  run->dc->d.fence ? " (the switch fences the side it leaves and lifts the other's)"
				   : "");
	if (o && strcmp(o, "0") != 0)
		check_add(run, CHECK_FENCE, CHECK_STATUS_FAIL,
			  "the %s, where the database is routed now, is fenced: its clients cannot write (UNFENCE %s %s)",
			  side_name(run->from), run->dbname, side_name(run->from));
	if (n && strcmp(n, "0") != 0 && !run->dc->d.fence)
		check_add(run, CHECK_FENCE, CHECK_STATUS_FAIL,
			  "the %s is fenced and fence = off will not lift it: clients would be read-only there (UNFENCE %s %s)",
			  side_name(run->to), run->dbname, side_name(run->to));
}

static void eval_switch_back(struct check_run *run)
{
	const char *recorded = run->db->recorded.new_side_xid;
	const PGresult *w;
	char msg[480];

	if (!run->ran[run->from][QR_WRITTEN]) {
		check_set(run, CHECK_SWITCH_BACK, CHECK_STATUS_OK, "not applicable: %s",
			  run->dc->d.lag_method != LAG_NONE ? "replication carries the writes back"
							    : "not a switch back");
		return;
	}
	w = check_need(run, CHECK_SWITCH_BACK, run->from, QR_WRITTEN,
		       "whether the side being left was written to");
	if (w == NULL || PQntuples(w) != 1) {
		check_text(run->rep.rows[CHECK_SWITCH_BACK].error, sizeof(run->rep.rows[0].error),
			   "could not tell whether the side being left was written to: %s",
			   run->err[run->from][QR_WRITTEN]);
		return;
	}
	if (recorded[0] == '\0')
		snprintf(msg, sizeof(msg),
			 "what was written on the %s since the switch to it cannot be told (no transaction ID was recorded then) and lag_method none carries nothing back: switching back may lose it (SWITCH ... FORCE if you know it was not written to)",
			 side_name(run->from));
	else if (strtoull(check_val(w, 0, 0), NULL, 10) > strtoull(recorded, NULL, 10))
		snprintf(msg, sizeof(msg),
			 "the %s was written to since the switch to it (transaction IDs %s to %s; %s rows written in this database since its statistics were reset) and lag_method none carries nothing back: switching back would lose those writes (replicate them back first, or SWITCH ... FORCE)",
			 side_name(run->from), recorded, check_val(w, 0, 0),
			 check_val(w, 0, 1) ? check_val(w, 0, 1) : "?");
	else
		msg[0] = '\0';
	if (msg[0] == '\0') {
		check_set(run, CHECK_SWITCH_BACK, CHECK_STATUS_OK,
			  "the %s was not written to since the switch to it", side_name(run->from));
	} else if (run->force) {
		check_set(run, CHECK_SWITCH_BACK, CHECK_STATUS_WARN, "FORCE: %s", msg);
	} else {
		check_set(run, CHECK_SWITCH_BACK, CHECK_STATUS_FAIL, "%s", msg);
		check_text(run->rep.rows[CHECK_SWITCH_BACK].error, sizeof(run->rep.rows[0].error),
			   "switch back check: %s", msg);
	}
}

static void eval_verify(struct check_run *run)
{
	struct verify_summary vs;
	const struct db_config *dc = run->dc;

	if (!verify_summary(run->db, &vs)) {
		check_set(run, CHECK_VERIFY,
			  dc->d.switch_verify ? CHECK_STATUS_WARN : CHECK_STATUS_OK,
			  "no VERIFY of %s has run%s", run->dbname,
			  dc->d.switch_verify
				  ? ": switch_verify has nothing to re-check in the pause (VERIFY first)"
				  : "");
		return;
	}
	if (vs.differences > 0) {
		check_set(run, CHECK_VERIFY, CHECK_STATUS_FAIL,
			  "the VERIFY started at %s found %" PRId64
			  " differing rows (SHOW VERIFY DIFFS %s): the %s does not hold the same data",
			  vs.started, vs.differences, run->dbname, side_name(run->to));
		check_text(run->rep.rows[CHECK_VERIFY].error, sizeof(run->rep.rows[0].error),
			   "verify check: the last VERIFY found %" PRId64
			   " differing rows (SHOW VERIFY DIFFS %s)",
			   vs.differences, run->dbname);
		return;
	}
	check_set(run, CHECK_VERIFY,
		  vs.running || vs.pending > 0 ? CHECK_STATUS_WARN : CHECK_STATUS_OK,
		  "the VERIFY started at %s %s: %d tables, %" PRId64
		  " rows checked, no difference, %" PRId64 " ranges not settled%s",
		  vs.started, vs.running ? "is running" : "ended", vs.tables, vs.rows_checked,
		  vs.pending,
		  vs.pending > 0 && dc->d.switch_verify
			  ? " (switch_verify re-checks them in the pause)"
			  : "");
	/* what it did not compare is not known to be alike */
	if (vs.failed || vs.stopped || vs.skipped)
		check_add(run, CHECK_VERIFY, CHECK_STATUS_WARN,
			  "%d tables failed, %d stopped, %d skipped (SHOW VERIFY %s says why)",
			  vs.failed, vs.stopped, vs.skipped, run->dbname);
	if (vs.error[0])
		check_add(run, CHECK_VERIFY, CHECK_STATUS_WARN, "%s", vs.error);
}

void check_eval(struct check_run *run)
{
	eval_reachable(run);
	eval_privileges(run);
	eval_replication(run);
	eval_publication(run);
	eval_replica_identity(run);
	eval_not_replicated(run);
	eval_fence(run);
	eval_switch_back(run);
	eval_verify(run);
}

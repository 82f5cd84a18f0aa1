/*
 * check_sessions.c - CHECK's rows from each side's sessions of the database
 * (pg_stat_activity, QR_SESS):
 *
 *   bypass             sessions on the old side that do not come through
 *                      pgcutover (neither its server connections nor its
 *                      control connections): with fence = on, the fence ends
 *                      them and makes their roles read-only (warn), unless
 *                      their role is one the fence does not touch (fail:
 *                      they could write to the old side after the flip);
 *                      with fence = off nothing stops them (warn), and one
 *                      writing right now fails
 *   target_writes      sessions writing on the new side now (fail)
 *   long_transactions  transactions on the old side open longer than
 *                      drain_timeout, through pgcutover or not: the drain
 *                      would time out (fail)
 *   ddl                sessions on the old side holding an ACCESS EXCLUSIVE
 *                      lock: a schema change running now (fail)
 *
 * Without pg_read_all_stats control_user sees only the role, database and
 * application name of other roles' sessions: what cannot be seen is said,
 * and a check that depends on it fails rather than passes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check_int.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* pgcutover's own server connections looked up, at most. */
#define OUR_PIDS_MAX 4096
/* Sessions named in a detail. */
#define SESS_LIST_MAX 6

/* pgcutover's server connections to the same server and database as db's side. */
static size_t our_pids(const struct check_run *run, enum route_side side, uint32_t *out)
{
	const struct backend_addr *a = &run->db->addr[side];
	struct list_node *n;
	size_t k = 0;

	list_for_each(n, &rt.databases) {
		struct database *d = list_entry(n, struct database, node);
		const struct backend_addr *b = &d->addr[side];

		if (k >= OUR_PIDS_MAX || b->host == NULL || a->host == NULL ||
		    strcmp(a->host, b->host) != 0 || a->port != b->port ||
		    strcmp(a->dbname ? a->dbname : run->db->name,
			   b->dbname ? b->dbname : d->name) != 0)
			continue;
		k += db_server_pids(d, side, out + k, OUR_PIDS_MAX - k);
	}
	return k;
}

static bool in_pids(const uint32_t *pids, size_t n, const char *pid)
{
	uint32_t p = (uint32_t)strtoul(pid, NULL, 10);

	for (size_t i = 0; i < n; i++)
		if (pids[i] == p)
			return true;
	return false;
}

/* Whether a fence of this database makes 'role' read-only (fence_sql.h's roles). */
static bool fenced_role(const struct check_run *run, const char *role, bool super,
			bool control_super)
{
	const struct db_config *dc = run->dc;

	if (super && !control_super)
		return false;
	if (strcmp(role, dc->d.control_user) == 0)
		return false;
	if (dc->user)
		return strcmp(role, dc->user) == 0;
	return userlist_secret(rt.users, role) != NULL;
}

/* A bounded description of sessions: "pid 42 bob 'psql' from 10.0.0.1". */
struct sess_list {
	char text[900];
	int count;
};

static void sess_add(struct sess_list *l, const PGresult *r, int i, const char *extra)
{
	size_t n = strlen(l->text);
	const char *app = check_val(r, i, SS_APP), *addr = check_val(r, i, SS_ADDR);

	if (l->count++ >= SESS_LIST_MAX || n + 2 >= sizeof(l->text))
		return;
	snprintf(l->text + n, sizeof(l->text) - n, "%spid %s %s '%s' from %s%s", n ? ", " : "",
		 check_val(r, i, SS_PID), check_val(r, i, SS_USER) ? check_val(r, i, SS_USER) : "?",
		 app ? app : "",
		 check_true(r, i, SS_HIDDEN) ? "(hidden)"
		 : addr                      ? addr
					     : "local",
		 extra);
}

static const char *sess_text(const struct sess_list *l)
{
	static char buf[960];

	if (l->count > SESS_LIST_MAX)
		snprintf(buf, sizeof(buf), "%s and %d more", l->text, l->count - SESS_LIST_MAX);
	else
		snprintf(buf, sizeof(buf), "%s", l->text);
	return buf;
}

static void eval_old_side(struct check_run *run, const PGresult *s, const uint32_t *pids,
			  size_t npids)
{
	const struct db_config *dc = run->dc;
	bool control_super = check_true(run->res[run->from][QR_REACH], 0, R_SUPER);
	int64_t limit_ms = dc->d.drain_timeout_ms;
	struct sess_list covered = {{0}, 0}, uncovered = {{0}, 0}, writing = {{0}, 0};
	struct sess_list longx = {{0}, 0}, ddl = {{0}, 0};
	int hidden = 0, nours = 0;

	for (int i = 0; i < PQntuples(s); i++) {
		bool ours = in_pids(pids, npids, check_val(s, i, SS_PID));
		bool control = check_true(s, i, SS_CONTROL);
		const char *age = check_val(s, i, SS_XACT_AGE);
		char extra[160];

		if (control)
			continue;
		nours += ours;
		/* our own sessions' transactions are the drain's business */
		if (check_true(s, i, SS_HIDDEN) && !ours)
			hidden++;
		if (age && strtoll(age, NULL, 10) > limit_ms) {
			snprintf(extra, sizeof(extra), ", %s, open %lld ms%s",
				 check_val(s, i, SS_STATE), strtoll(age, NULL, 10),
				 ours ? ", through pgcutover" : "");
			sess_add(&longx, s, i, extra);
		}
		if (check_true(s, i, SS_DDL_LOCK)) {
			snprintf(extra, sizeof(extra), ": %s", check_val(s, i, SS_QUERY));
			sess_add(&ddl, s, i, extra);
		}
		if (ours)
			continue;
		if (!dc->d.fence) {
			sess_add(check_true(s, i, SS_WRITING) ? &writing : &covered, s, i,
				 check_true(s, i, SS_WRITING) ? " (writing now)" : "");
		} else if (fenced_role(run, check_val(s, i, SS_USER), check_true(s, i, SS_SUPER),
				       control_super)) {
			sess_add(&covered, s, i, "");
		} else {
			sess_add(&uncovered, s, i, "");
		}
	}
	/* bypass */
	if (covered.count + uncovered.count + writing.count == 0)
		check_set(run, CHECK_BYPASS, CHECK_STATUS_OK,
			  "no session on the %s bypasses pgcutover (%d of its own)",
			  route_side_name(run->from), nours);
	else
		check_set(run, CHECK_BYPASS, CHECK_STATUS_OK,
			  "%d sessions on the %s bypass pgcutover",
			  covered.count + uncovered.count + writing.count,
			  route_side_name(run->from));
	if (covered.count)
		check_add(run, CHECK_BYPASS, CHECK_STATUS_WARN, "%s%s", sess_text(&covered),
			  dc->d.fence
				  ? ": the fence will end them and make their roles read-only"
				  : ": with fence = off nothing stops them writing to the old side after the flip");
	if (uncovered.count)
		check_add(run, CHECK_BYPASS, CHECK_STATUS_FAIL,
			  "%s: the fence ends these sessions but does not make their roles read-only (not pgcutover's login roles, or superusers control_user cannot alter): they could write to the %s after the flip",
			  sess_text(&uncovered), route_side_name(run->from));
	if (writing.count)
		check_add(run, CHECK_BYPASS, CHECK_STATUS_FAIL,
			  "%s: writing on the %s now, and fence = off will not stop them after the flip",
			  sess_text(&writing), route_side_name(run->from));
	/* long transactions */
	if (longx.count)
		check_set(run, CHECK_LONG_XACTS, CHECK_STATUS_FAIL,
			  "open longer than drain_timeout (%" PRId64
			  " ms): %s: the drain would time out",
			  dc->d.drain_timeout_ms, sess_text(&longx));
	else
		check_set(run, CHECK_LONG_XACTS, CHECK_STATUS_OK,
			  "no transaction on the %s open longer than drain_timeout (%" PRId64 " ms)",
			  route_side_name(run->from), dc->d.drain_timeout_ms);
	if (hidden)
		check_add(run, CHECK_LONG_XACTS, CHECK_STATUS_WARN,
			  "control_user cannot see the transactions of %d sessions of other roles, which may be long (grant it pg_read_all_stats)",
			  hidden);
	/* ddl */
	if (ddl.count)
		check_set(run, CHECK_DDL, CHECK_STATUS_FAIL,
			  "a schema change (ACCESS EXCLUSIVE lock) is running on the %s: %s: wait for it, and make it on the %s too",
			  route_side_name(run->from), sess_text(&ddl), route_side_name(run->to));
	else
		check_set(run, CHECK_DDL, CHECK_STATUS_OK, "no schema change running on the %s",
			  route_side_name(run->from));
}

static void eval_new_side(struct check_run *run, const PGresult *s, const uint32_t *pids,
			  size_t npids)
{
	struct sess_list writing = {{0}, 0}, others = {{0}, 0};
	int hidden = 0;

	for (int i = 0; i < PQntuples(s); i++) {
		if (check_true(s, i, SS_CONTROL) || in_pids(pids, npids, check_val(s, i, SS_PID)))
			continue;
		if (check_true(s, i, SS_HIDDEN))
			hidden++;
		sess_add(check_true(s, i, SS_WRITING) ? &writing : &others, s, i, "");
	}
	if (writing.count)
		check_set(run, CHECK_TARGET_WRITES, CHECK_STATUS_FAIL,
			  "writing on the %s now, before the switch: %s (what they write is not on the %s, and may conflict with what replication applies)",
			  route_side_name(run->to), sess_text(&writing), route_side_name(run->from));
	else
		check_set(run, CHECK_TARGET_WRITES, CHECK_STATUS_OK, "no session writes on the %s",
			  route_side_name(run->to));
	if (others.count)
		check_add(run, CHECK_TARGET_WRITES, CHECK_STATUS_OK, "%d other sessions there: %s",
			  others.count, sess_text(&others));
	if (hidden)
		check_add(run, CHECK_TARGET_WRITES, CHECK_STATUS_WARN,
			  "control_user cannot see whether %d sessions of other roles write (grant it pg_read_all_stats)",
			  hidden);
}

void check_eval_sessions(struct check_run *run)
{
	uint32_t *pids = calloc(OUR_PIDS_MAX, sizeof(*pids));
	const PGresult *o, *n;
	size_t np;

	if (pids == NULL) {
		check_set(run, CHECK_BYPASS, CHECK_STATUS_FAIL, "out of memory");
		return;
	}
	o = check_need(run, CHECK_BYPASS, run->from, QR_SESS, "the sessions");
	if (o) {
		np = our_pids(run, run->from, pids);
		eval_old_side(run, o, pids, np);
	} else {
		run->rep.rows[CHECK_LONG_XACTS] = run->rep.rows[CHECK_BYPASS];
		run->rep.rows[CHECK_DDL] = run->rep.rows[CHECK_BYPASS];
	}
	n = check_need(run, CHECK_TARGET_WRITES, run->to, QR_SESS, "the sessions");
	if (n) {
		np = our_pids(run, run->to, pids);
		eval_new_side(run, n, pids, np);
	}
	free(pids);
}

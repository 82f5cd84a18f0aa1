/*
 * check_logins.c - CHECK's login check: every application user who can log
 * in to the database through pgcutover now can also log in to the side a
 * switch goes to, with the secret pgcutover holds (login_probe.h).
 *
 * The users are those pgcutover logs in to the database as: the side's
 * conninfo user, else the section's user, else every auth_file user (with
 * the side's conninfo password when it names one), exactly as its server
 * connections choose (server_login.c).  Each is tried on both sides, a few
 * at a time: one who cannot log in to the old side either is not a user of
 * this database and is only counted; one who can there but cannot on the
 * new side fails the check, with the server's reason (a SCRAM verifier
 * copied with another salt, a role that does not exist, no CONNECT
 * privilege, a pg_hba.conf line that refuses it...).  A SCRAM secret is
 * proved with the ClientKey of a client's own login when one is known
 * (pool.h); without it, the salt and iteration count are compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check_int.h"
#include "admin/cutover/login_probe.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

/* Probes running at once (each side counts). */
#define LOGIN_PARALLEL 4
/* Users named in a detail. */
#define LOGIN_LIST_MAX 6

/* A probe's context: its run, the login and the side. */
struct login_ctx {
	struct check_run *run;
	int login;
	enum route_side side;
};

/* The login and secret pgcutover uses on 'side' for client user 'client' (NULL: fixed). */
static void credentials(const struct check_run *run, enum route_side side, const char *client,
			const char **user, const char **secret)
{
	const struct backend_addr *a = &run->db->addr[side];
	const struct db_config *dc = run->dc;

	if (a->user) {
		*user = a->user;
		*secret = a->password ? a->password : userlist_secret(rt.users, a->user);
	} else if (dc->user) {
		*user = dc->user;
		*secret = dc->password ? dc->password : userlist_secret(rt.users, dc->user);
	} else {
		*user = client;
		*secret = a->password ? a->password : userlist_secret(rt.users, client);
	}
}

/* The SCRAM ClientKey a client of 'user' recovered at its login, or NULL. */
static const uint8_t *client_key(const struct check_run *run, const char *user)
{
	struct list_node *n;

	list_for_each(n, &run->db->pools) {
		struct pool *p = list_entry(n, struct pool, node);

		if (p->have_client_key && strcmp(p->user, user) == 0)
			return p->client_key;
	}
	return NULL;
}

/* The logins to try; false when out of memory. */
static bool plan(struct check_run *run)
{
	const struct db_config *dc = run->dc;
	bool fixed = (run->db->addr[SIDE_SOURCE].user && run->db->addr[SIDE_TARGET].user) ||
		     dc->user != NULL;
	size_t n = fixed ? 1 : userlist_count(rt.users);

	run->logins = calloc(n ? n : 1, sizeof(*run->logins));
	run->probes = calloc(2 * (n ? n : 1), sizeof(*run->probes));
	run->probe_ctx = calloc(2 * (n ? n : 1), sizeof(struct login_ctx));
	if (run->logins == NULL || run->probes == NULL || run->probe_ctx == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct check_login *l = &run->logins[i];
		const char *client = fixed ? (dc->user ? dc->user : "") : userlist_user(rt.users, i);

		for (int side = 0; side < 2; side++) {
			const char *user;

			credentials(run, (enum route_side)side, client, &user, &l->secret[side]);
			snprintf(l->user[side], sizeof(l->user[side]), "%s", user);
			l->outcome[side] = -1;
		}
	}
	run->nlogins = (int)n;
	return true;
}

static void start_more(struct check_run *run);

static void probe_cb(void *arg, const struct login_probe_result *r)
{
	struct login_ctx *ctx = arg;
	struct check_run *run = ctx->run;
	struct check_login *l = &run->logins[ctx->login];

	run->probes[ctx->login * 2 + ctx->side] = NULL;
	l->outcome[ctx->side] = (int)r->outcome;
	check_text(l->message[ctx->side], sizeof(l->message[0]), "%s", r->message);
	snprintf(l->sqlstate[ctx->side], sizeof(l->sqlstate[0]), "%s", r->sqlstate);
	run->logins_running--;
	start_more(run);
	check_settle(run);
}

/* One probe; false when it could not start (its outcome says so). */
static void start_probe(struct check_run *run, int i, enum route_side side)
{
	struct check_login *l = &run->logins[i];
	const struct backend_addr *a = &run->db->addr[side];
	struct login_ctx *ctx = (struct login_ctx *)run->probe_ctx + (i * 2 + side);
	struct login_probe *p;

	*ctx = (struct login_ctx){run, i, side};
	p = login_probe_start(a, a->dbname ? a->dbname : run->db->name, l->user[side],
			      l->secret[side], client_key(run, l->user[side]),
			      run->cfg->server_connect_timeout_ms, probe_cb, ctx);
	if (p == NULL) {
		l->outcome[side] = PROBE_FAILED;
		snprintf(l->message[side], sizeof(l->message[0]), "out of memory");
		return;
	}
	run->probes[i * 2 + side] = p;
	run->logins_running++;
	run->pending++;
}

static void start_more(struct check_run *run)
{
	while (run->logins_running + 2 <= LOGIN_PARALLEL && run->next_login < run->nlogins) {
		int i = run->next_login++;

		start_probe(run, i, run->from);
		start_probe(run, i, run->to);
	}
}

bool check_logins_start(struct check_run *run)
{
	if (run->db->addr[SIDE_SOURCE].host == NULL || run->db->addr[SIDE_TARGET].host == NULL ||
	    !plan(run) || run->nlogins == 0)
		return false;
	start_more(run);
	return run->pending > 0;
}

static bool can_log_in(int outcome)
{
	return outcome == PROBE_LOGGED_IN || outcome == PROBE_SALT_MATCHES;
}

/* A bounded list of "user: reason". */
static void list_add(char *buf, size_t len, int *count, const char *fmt, const char *a,
		     const char *b)
{
	size_t n = strlen(buf);

	if ((*count)++ >= LOGIN_LIST_MAX || n + 3 >= len)
		return;
	if (n)
		n += (size_t)snprintf(buf + n, len - n, "; ");
	snprintf(buf + n, len - n, fmt, a, b);
}

void check_eval_logins(struct check_run *run)
{
	char failed[700] = "", salt_only[300] = "", absent[300] = "";
	int nfailed = 0, nsalt = 0, nabsent = 0, nok = 0;

	if (run->logins == NULL) {
		if (run->rep.rows[CHECK_LOGINS].status != CHECK_STATUS_FAIL)
			check_set(run, CHECK_LOGINS, CHECK_STATUS_OK, "no user to check");
		return;
	}
	for (int i = 0; i < run->nlogins; i++) {
		struct check_login *l = &run->logins[i];
		int o = l->outcome[run->from], n = l->outcome[run->to];
		char why[260];

		if (o == PROBE_FAILED) {
			check_text(why, sizeof(why), "could not be checked on the %s: %s",
				   route_side_name(run->from), l->message[run->from]);
			list_add(failed, sizeof(failed), &nfailed, "%s %s", l->user[run->from], why);
		} else if (!can_log_in(o)) {
			list_add(absent, sizeof(absent), &nabsent, "%s%s", l->user[run->from], "");
		} else if (!can_log_in(n)) {
			check_text(why, sizeof(why), "cannot log in to the %s: %s%s%s%s",
				   route_side_name(run->to), l->message[run->to],
				   l->sqlstate[run->to][0] ? " (" : "", l->sqlstate[run->to],
				   l->sqlstate[run->to][0] ? ")" : "");
			list_add(failed, sizeof(failed), &nfailed, "%s %s", l->user[run->to], why);
		} else {
			nok++;
			if (n == PROBE_SALT_MATCHES)
				list_add(salt_only, sizeof(salt_only), &nsalt, "%s%s",
					 l->user[run->to], "");
		}
	}
	check_set(run, CHECK_LOGINS, CHECK_STATUS_OK,
		  "%d users log in to the %s as they do to the %s", nok, route_side_name(run->to),
		  route_side_name(run->from));
	if (nsalt)
		check_add(run, CHECK_LOGINS, CHECK_STATUS_OK,
			  "%s%s: SCRAM secrets whose salt and iteration count match (no client of theirs has logged in yet, so no proof could be sent)",
			  salt_only, nsalt > LOGIN_LIST_MAX ? " and more" : "");
	if (nabsent)
		check_add(run, CHECK_LOGINS, CHECK_STATUS_OK,
			  "%d auth_file users log in to neither side (%s%s): not users of this database",
			  nabsent, absent, nabsent > LOGIN_LIST_MAX ? "..." : "");
	if (nfailed) {
		check_add(run, CHECK_LOGINS, CHECK_STATUS_FAIL, "%s%s", failed,
			  nfailed > LOGIN_LIST_MAX ? "; and more" : "");
		check_text(run->rep.rows[CHECK_LOGINS].error, sizeof(run->rep.rows[0].error),
			   "logins check: %s", failed);
	}
}

void check_logins_free(struct check_run *run)
{
	for (int i = 0; run->probes && i < 2 * run->nlogins; i++) {
		if (run->probes[i]) {
			login_probe_cancel(run->probes[i]);
			run->probes[i] = NULL;
		}
	}
	free(run->probes);
	free(run->probe_ctx);
	free(run->logins);
	run->probes = NULL;
	run->probe_ctx = NULL;
	run->logins = NULL;
}

/*
 * console_ext.c - the admin console's emulation of the extended query
 * protocol (see console_ext.h): named statements and portals, and the
 * replies to Parse, Bind, Describe, Execute, Close, Flush and Sync.
 */
#include "admin/console_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_cmd.h"
#include "admin/commands.h"
#include "admin/console.h"
#include "admin/resultset.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"

/* ---- named statements and portals ---- */

/* The index of 'name' in set[0..n), or -1. */
static int named_find(const struct admin_named *set, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(set[i].name, name) == 0)
			return i;
	return -1;
}

/* Free entry i; the last entry takes its place (the order does not matter). */
static void named_remove(struct admin_named *set, int *n, int i)
{
	free(set[i].name);
	free(set[i].query);
	set[i] = set[--*n];
}

static void named_clear(struct admin_named *set, int *n)
{
	while (*n > 0)
		named_remove(set, n, *n - 1);
}

void admin_ext_clear(struct admin_ext *x)
{
	named_clear(x->stmts, &x->nstmts);
	named_clear(x->portals, &x->nportals);
}

/*
 * Store name -> query; an unnamed one replaces its predecessor, a named one
 * must be new.  On failure the error is sent ('what' names the kind of
 * object in it, dup_state is the SQLSTATE of a duplicate) and false returned.
 */
static bool named_put(struct client *c, struct admin_named *set, int *n, int max, const char *name,
		      const char *query, const char *what, const char *dup_state)
{
	int i = named_find(set, *n, name);
	char msg[200];
	char *nm, *q;

	if (i >= 0 && name[0]) {
		snprintf(msg, sizeof(msg), "%s \"%s\" already exists", what, name);
		admin_send_error(c, dup_state, msg, "Close it first, or use another name");
		return false;
	}
	if (i >= 0)
		named_remove(set, n, i);
	if (*n == max) {
		snprintf(msg, sizeof(msg), "too many %ss on this admin session (at most %d)", what,
			 max);
		admin_send_error(c, SQLSTATE_PROGRAM_LIMIT_EXCEEDED, msg,
				 "Close the ones no longer needed");
		return false;
	}
	nm = strdup(name);
	q = strdup(query);
	if (nm == NULL || q == NULL) {
		free(nm);
		free(q);
		admin_send_error(c, SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return false;
	}
	set[*n].name = nm;
	set[*n].query = q;
	++*n;
	return true;
}

/* ---- the messages ---- */

static struct admin_ext *ext_of(struct client *c)
{
	return &((struct admin_session *)c->kind_data)->ext;
}

/* Fail an extended-protocol message: the error, then nothing until Sync. */
static void ext_fail(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	admin_send_error(c, sqlstate, msg, hint);
	ext_of(c)->skip = true;
}

/* A message whose body does not parse. */
static void ext_bad_message(struct client *c, uint8_t type)
{
	char msg[100];

	snprintf(msg, sizeof(msg), "invalid %s message", pq_msg_name(type, false));
	ext_fail(c, SQLSTATE_PROTOCOL_VIOLATION, msg, NULL);
}

/* Parse: name, query, parameter types. */
static void ext_parse(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_ext *x = ext_of(c);
	struct pq_cursor cur;
	const char *name, *query;
	uint16_t ntypes;
	struct admin_cmd cmd;
	char err[256];

	pq_cursor_init(&cur, body, len);
	name = pq_get_str(&cur);
	query = pq_get_str(&cur);
	ntypes = pq_get_u16(&cur);
	for (uint16_t i = 0; i < ntypes; i++)
		(void)pq_get_u32(&cur);
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'P');
		return;
	}
	if (ntypes > 0) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "admin console commands take no parameters",
			 "Write the values into the command text");
		return;
	}
	if (!admin_cmd_parse(query, strlen(query), &cmd, err, sizeof(err))) {
		ext_fail(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	if (!named_put(c, x->stmts, &x->nstmts, ADMIN_STMT_MAX, name, query, "prepared statement",
		       SQLSTATE_DUPLICATE_PREPARED_STATEMENT)) {
		x->skip = true;
		return;
	}
	admin_send_bare(c, '1');
}

/* Bind: portal, statement, parameter formats, parameters, result formats. */
static void ext_bind(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_ext *x = ext_of(c);
	struct pq_cursor cur;
	const char *portal, *stmt;
	uint16_t nfmt, nparams, nres;
	bool binary = false;
	int i;
	char msg[200];

	pq_cursor_init(&cur, body, len);
	portal = pq_get_str(&cur);
	stmt = pq_get_str(&cur);
	nfmt = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nfmt; k++)
		(void)pq_get_u16(&cur);
	nparams = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nparams && !cur.failed; k++) {
		int32_t plen = pq_get_i32(&cur);

		if (plen > 0)
			(void)pq_get_bytes(&cur, (size_t)plen);
	}
	nres = pq_get_u16(&cur);
	for (uint16_t k = 0; k < nres; k++)
		binary |= pq_get_u16(&cur) != 0;
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'B');
		return;
	}
	i = named_find(x->stmts, x->nstmts, stmt);
	if (i < 0) {
		snprintf(msg, sizeof(msg), "prepared statement \"%s\" does not exist", stmt);
		ext_fail(c, SQLSTATE_INVALID_SQL_STATEMENT_NAME, msg, NULL);
		return;
	}
	if (nparams > 0) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "admin console commands take no parameters",
			 "Write the values into the command text");
		return;
	}
	if (binary) {
		ext_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			 "the admin console sends its results in text format only", NULL);
		return;
	}
	if (!named_put(c, x->portals, &x->nportals, ADMIN_PORTAL_MAX, portal, x->stmts[i].query,
		       "portal", SQLSTATE_DUPLICATE_CURSOR)) {
		x->skip = true;
		return;
	}
	admin_send_bare(c, '2');
}

/* Describe: 'S' statement (ParameterDescription, then columns) or 'P' portal (columns). */
static void ext_describe(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_ext *x = ext_of(c);
	struct pq_cursor cur;
	uint8_t what;
	const char *name;
	const struct admin_named *n = NULL;
	struct admin_cmd cmd;
	const char *const *cols;
	int ncols, i;
	struct pq_buf b;
	char err[256];

	pq_cursor_init(&cur, body, len);
	what = pq_get_u8(&cur);
	name = pq_get_str(&cur);
	if (!pq_cursor_done(&cur) || (what != 'S' && what != 'P')) {
		ext_bad_message(c, 'D');
		return;
	}
	if (what == 'S' && (i = named_find(x->stmts, x->nstmts, name)) >= 0)
		n = &x->stmts[i];
	else if (what == 'P' && (i = named_find(x->portals, x->nportals, name)) >= 0)
		n = &x->portals[i];
	if (n == NULL) {
		snprintf(err, sizeof(err), "%s \"%s\" does not exist",
			 what == 'S' ? "prepared statement" : "portal", name);
		ext_fail(c,
			 what == 'S' ? SQLSTATE_INVALID_SQL_STATEMENT_NAME
				     : SQLSTATE_INVALID_CURSOR_NAME,
			 err, NULL);
		return;
	}
	/* checked at Parse already */
	if (!admin_cmd_parse(n->query, strlen(n->query), &cmd, err, sizeof(err))) {
		ext_fail(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	pq_buf_init(&b);
	if (what == 'S') {
		pq_msg_begin(&b, 't');
		pq_put_u16(&b, 0);
		pq_msg_end(&b);
	}
	if (admin_command_columns(cmd.kind, &ncols, &cols)) {
		pq_build_row_description(&b, ncols, cols);
	} else {
		pq_msg_begin(&b, 'n');
		pq_msg_end(&b);
	}
	admin_send_buf(c, &b);
}

/*
 * Execute: portal, row limit (the console's results are small: always sent
 * whole).  The command runs now; when it is answered later, admin_done()
 * ends it.
 */
static void ext_execute(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_session *a = c->kind_data;
	struct admin_ext *x = &a->ext;
	struct pq_cursor cur;
	const char *portal;
	char q[ADMIN_QUERY_MAX];
	int i;

	pq_cursor_init(&cur, body, len);
	portal = pq_get_str(&cur);
	(void)pq_get_i32(&cur);
	if (!pq_cursor_done(&cur)) {
		ext_bad_message(c, 'E');
		return;
	}
	i = named_find(x->portals, x->nportals, portal);
	if (i < 0) {
		snprintf(q, sizeof(q), "portal \"%s\" does not exist", portal);
		ext_fail(c, SQLSTATE_INVALID_CURSOR_NAME, q, NULL);
		return;
	}
	/* a copy: the command may end the session, and with it the portal */
	snprintf(q, sizeof(q), "%s", x->portals[i].query);
	x->exec = true;
	a->in_run = true;
	admin_run(c, q, strlen(q));
	if (c->kind_data) {
		((struct admin_session *)c->kind_data)->in_run = false;
		if (c->state == CL_ACTIVE && !admin_busy(c))
			admin_command_end(c);
	}
}

/* Close: 'S' statement or 'P' portal; closing one that does not exist is no error. */
static void ext_close(struct client *c, const uint8_t *body, size_t len)
{
	struct admin_ext *x = ext_of(c);
	struct pq_cursor cur;
	uint8_t what;
	const char *name;
	int i;

	pq_cursor_init(&cur, body, len);
	what = pq_get_u8(&cur);
	name = pq_get_str(&cur);
	if (!pq_cursor_done(&cur) || (what != 'S' && what != 'P')) {
		ext_bad_message(c, 'C');
		return;
	}
	if (what == 'S' && (i = named_find(x->stmts, x->nstmts, name)) >= 0)
		named_remove(x->stmts, &x->nstmts, i);
	else if (what == 'P' && (i = named_find(x->portals, x->nportals, name)) >= 0)
		named_remove(x->portals, &x->nportals, i);
	admin_send_bare(c, '3');
}

/* Sync: the end of the (implicit) transaction: portals go, errors are forgotten. */
static void ext_sync(struct client *c)
{
	struct admin_ext *x = ext_of(c);

	x->skip = false;
	named_clear(x->portals, &x->nportals);
	admin_send_ready(c);
}

void admin_ext_message(struct client *c, uint8_t type, const uint8_t *body, size_t len)
{
	switch (type) {
	case 'P':
		ext_parse(c, body, len);
		break;
	case 'B':
		ext_bind(c, body, len);
		break;
	case 'D':
		ext_describe(c, body, len);
		break;
	case 'E':
		ext_execute(c, body, len);
		break;
	case 'C':
		ext_close(c, body, len);
		break;
	case 'H':
		/* Flush: every reply is already on its way out */
		break;
	case 'S':
		ext_sync(c);
		break;
	default:
		break;
	}
}

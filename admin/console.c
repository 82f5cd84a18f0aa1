/*
 * console.c - the admin console as a kind of client (proxy/client.h): who
 * may log in (admin_users), the welcome, the loop that reads messages, and
 * the bookkeeping of commands answered later (console.h).
 *
 * Speaks the simple query protocol: each Query carries one command, answered
 * with a result set (all columns text) or an ErrorResponse, then
 * ReadyForQuery.  A malformed or unknown command gets 42601 with a hint
 * pointing at SHOW HELP; the session goes on.  The extended protocol is
 * emulated by console_ext.c.
 */
#include "admin/console.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "admin/commands.h"
#include "admin/console_ext.h"
#include "admin/cutover/cutover.h"
#include "admin/resultset.h"
#include "admin/job.h"
#include "admin/validation.h"
#include "admin/show_control.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/version.h"
#include "proxy/runtime.h"

static void console_input(struct client *c);

bool admin_busy(const struct client *c)
{
	const struct admin_session *a = c->kind_data;

	return a && a->busy;
}

void admin_set_busy(struct client *c, bool busy)
{
	struct admin_session *a = c->kind_data;

	if (a)
		a->busy = busy;
}

void admin_command_end(struct client *c)
{
	struct admin_session *a = c->kind_data;

	if (a && a->ext.exec)
		a->ext.exec = false;
	else
		admin_send_ready(c);
}

void admin_done(struct client *c)
{
	struct admin_session *a = c->kind_data;

	admin_set_busy(c, false);
	if (a && a->in_run)
		return; /* answered before admin_run() returned: the caller ends it */
	if (c->state == CL_ACTIVE) {
		admin_command_end(c);
		/* the messages that waited while the command ran */
		if (sock_in_len(&c->sock) > 0)
			console_input(c);
	}
}

void admin_reply_error(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	admin_send_error(c, sqlstate, msg, hint);
	admin_done(c);
}

/*
 * A Query: run its command; unless it is answered later, ReadyForQuery.
 * False when the message was malformed and the session is being closed.
 */
static bool console_query(struct client *c, const uint8_t *body, size_t blen)
{
	struct admin_session *a = c->kind_data;

	if (blen == 0 || body[blen - 1] != '\0') {
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Query message");
		return false;
	}
	a->in_run = true;
	admin_run(c, (const char *)body, strlen((const char *)body));
	if (c->kind_data)
		((struct admin_session *)c->kind_data)->in_run = false;
	if (c->state == CL_ACTIVE && !admin_busy(c))
		admin_send_ready(c);
	return true;
}

/*
 * Read and answer whole messages while the session is active and no command
 * is being answered later (admin_done() comes back here when it is).
 */
static void console_input(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);

	while (c->state == CL_ACTIVE && !admin_busy(c)) {
		struct admin_session *a = c->kind_data;
		uint8_t hdr[PQ_HEADER_SIZE], type;
		uint32_t len;
		const uint8_t *msg;
		/* a copy of the message body: replies may recurse, the input buffer moves */
		uint8_t body[ADMIN_QUERY_MAX];
		size_t blen;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (pq_read_header(hdr, sizeof(hdr), &type, &len, ADMIN_QUERY_MAX) != PQ_OK) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
					  "invalid message length %u on the admin console (at most %d)",
					  (unsigned)len, ADMIN_QUERY_MAX);
			return;
		}
		if (evbuffer_get_length(in) < (size_t)len + 1)
			return;
		msg = evbuffer_pullup(in, (ssize_t)len + 1);
		if (type == 'X') {
			client_close(c, "admin session ended");
			return;
		}
		if (strchr("QPBDECHS", type) == NULL || type == '\0') {
			client_disconnect(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
					  "the admin console does not support %s messages",
					  pq_msg_name(type, false));
			return;
		}
		blen = len - 4;
		memcpy(body, msg + PQ_HEADER_SIZE, blen);
		evbuffer_drain(in, len + 1);
		if (a->ext.skip && type != 'S')
			continue; /* after an error, everything up to Sync is ignored */
		if (type != 'Q')
			admin_ext_message(c, type, body, blen);
		else if (!console_query(c, body, blen))
			return;
	}
}

/*
 * Logged in (the password is checked): only admin_users may stay.  The
 * welcome says what a PostgreSQL server would, as pgcutover.
 */
static void console_logged_in(struct client *c)
{
	static const char *const params[][2] = {
		{"server_version", "15.0 (pgcutover " PGCUTOVER_VERSION ")"},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"application_name", "pgcutover"},
	};
	struct pq_buf b;

	if (!config_is_admin(rt.cfg, c->user)) {
		client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
				  "user \"%s\" is not allowed to use the admin console: only admin_users may",
				  c->user);
		return;
	}
	pq_buf_init(&b);
	pq_build_auth(&b, PQ_AUTH_OK, NULL, 0);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		pq_build_param_status(&b, params[i][0], params[i][1]);
	pq_build_backend_key(&b, 0, 0);
	pq_build_ready(&b, 'I');
	if (b.failed || !admin_send(c, b.data, b.len)) {
		pq_buf_free(&b);
		client_close(c, "could not send");
		return;
	}
	pq_buf_free(&b);
	c->kind_data = calloc(1, sizeof(struct admin_session));
	if (c->kind_data == NULL) {
		client_close(c, "out of memory");
		return;
	}
	client_set_state(c, CL_ACTIVE);
	log_info("admin %s: %s logged in to the admin console", c->addr, c->user);
	if (sock_in_len(&c->sock) > 0)
		console_input(c);
}

/*
 * The session is about to be freed: nobody may call back to it any more
 * (the switch engine, a SHOW LAG or SHOW SEQUENCES still running).
 */
static void console_freed(struct client *c)
{
	cutover_forget(c);
	admin_jobs_forget(c);
	admin_validation_forget(c);
	if (c->kind_data) {
		struct admin_session *a = c->kind_data;

		admin_ext_clear(&a->ext);
	}
	free(c->kind_data);
	c->kind_data = NULL;
}

const struct client_kind admin_console_kind = {
	.name = "admin console",
	.always_password = true,
	.logged_in = console_logged_in,
	.input = console_input,
	.freed = console_freed,
};

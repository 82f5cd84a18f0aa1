/*
 * server_internal.c - queries of pgcutover's own on a server linked to a
 * client held at a transaction boundary: the session capture, the restore
 * of a session's state on a new server, the cleanup after a transaction
 * in transaction pooling, the check before a switch.  Their answers are
 * consumed, never forwarded to the client.
 */
#include "proxy/server_internal.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "proxy/client.h"
#include "proxy/core/log.h"
#include "proxy/listen_client.h"
#include "proxy/client_session.h"
#include "proxy/pool.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"

bool server_internal_query(struct server *s, const char *sql, server_query_cb done, void *arg)
{
	struct pq_buf b;

	/* never in the middle of a message the client is still sending */
	if (s->internal_cb || !server_at_boundary(s) || s->state != SV_ACTIVE ||
	    (s->client && s->client->msg_left != 0))
		return false;
	pq_buf_init(&b);
	pq_build_query(&b, sql);
	if (!server_send_msg(s, &b))
		return false;
	s->internal_cb = done;
	s->internal_arg = arg;
	s->pending_syncs = 1;
	return true;
}

/* Append a row's first column to the collected rows. */
static bool internal_add_row(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_cursor cur;
	int32_t vlen;
	const uint8_t *v;
	size_t old = s->internal_rows ? strlen(s->internal_rows) : 0;
	char *n;

	pq_cursor_init(&cur, body, len);
	if (pq_get_u16(&cur) < 1)
		return true;
	vlen = pq_get_i32(&cur);
	if (vlen < 0)
		return !cur.failed;
	v = pq_get_bytes(&cur, (size_t)vlen);
	if (v == NULL)
		return false;
	n = realloc(s->internal_rows, old + (size_t)vlen + 2);
	if (n == NULL)
		return false;
	if (old)
		n[old++] = '\n';
	memcpy(n + old, v, (size_t)vlen);
	n[old + (size_t)vlen] = '\0';
	s->internal_rows = n;
	return true;
}

/* Consume the replies of an internal query; call back on ReadyForQuery. */
void server_handle_internal(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->internal_cb) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);
		const uint8_t *body;

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK) {
			server_close(s, "invalid message during an internal query");
			return;
		}
		body = msg + PQ_HEADER_SIZE;
		switch (type) {
		case 'D':
			if (!internal_add_row(s, body, len - 4)) {
				server_close(s, "malformed row in an internal query");
				return;
			}
			break;
		case 'E':
			if (s->internal_error == NULL) {
				char sqlstate[6], text[300];

				server_error_text(body, len - 4, sqlstate, text, sizeof(text));
				s->internal_error = strdup(text);
			}
			break;
		case 'S':
			/* the client learns about it at the next parameter sync */
			if (!server_take_param(s, body, len - 4)) {
				server_close(s, "malformed ParameterStatus");
				return;
			}
			break;
		case 'Z': {
			server_query_cb cb = s->internal_cb;
			void *arg = s->internal_arg;
			char *rows = s->internal_rows, *err = s->internal_error;

			s->txn_status = len >= 5 ? (char)body[0] : 'I';
			s->pending_syncs = 0;
			evbuffer_drain(in, len + 1);
			s->internal_cb = NULL;
			s->internal_arg = NULL;
			s->internal_rows = NULL;
			s->internal_error = NULL;
			cb(s, arg, err ? NULL : (rows ? rows : ""),
			   err ? err : (s->txn_status == 'I' ? NULL : "left a transaction open"));
			free(rows);
			free(err);
			/* a switch's session check that waited for this query goes now */
			if (s->state != SV_FREE && s->internal_cb == NULL && s->client &&
			    s->client->check_deferred)
				client_check_deferred(s->client);
			/* what the server sent after it (a notification) is handled now, not at its next read */
			if (s->state != SV_FREE && s->internal_cb == NULL &&
			    sock_in_len(&s->sock) > 0)
				server_on_input(s);
			return;
		}
		case 'A':
			/* a notification for a listening client arrives whatever runs */
			if (s->client &&
			    !listen_client_x_notification(s, s->client, msg, (size_t)len + 1)) {
				(void)server_own_notification(s, s->client, in, 0, (size_t)len + 1,
							      len);
				if (!client_send(s->client, msg, (size_t)len + 1))
					log_warning("server %s: could not pass on a notification",
						    s->label);
			}
			break;
		default:
			/* RowDescription, CommandComplete, notices */
			break;
		}
		evbuffer_drain(in, len + 1);
	}
}

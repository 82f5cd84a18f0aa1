/*
 * server_forward.c - a server's messages on their way to its client, and
 * the server's books of what its client sent it.
 *
 * Messages move in batches like the client's (relay.h).  At each header
 * the server's direction keeps its books: ReadyForQuery ends a request
 * (and maybe a transaction: statistics, a drained pause, the end of a
 * transaction in transaction pooling), ParameterStatus updates what the
 * server and the client have been told, and the answers to pgcutover's own
 * Parse/Close are swallowed (track.c).
 */
#include "proxy/server_forward.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/client_login.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/listen.h"
#include "proxy/listen_client.h"
#include "proxy/pool.h"
#include "proxy/relay.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/shadow.h"
#include "proxy/track.h"
#include "proxy/track_answer.h"

/* Largest ParameterStatus tracked while forwarding; larger ones pass untracked. */
#define SERVER_PARAM_MSG_MAX 8192

void server_count_request(struct server *s, uint8_t type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
		if (s->pending_syncs++ == 0)
			s->query_start_us = rt_now_us();
		if (s->xact_start_us == 0)
			s->xact_start_us = s->query_start_us;
		if (type == 'S')
			s->unsynced = false;
		s->syncs_sent++;
		s->ps_unqueued = 0;
		s->pool->db->stats.query_count++;
		break;
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'H':
		s->unsynced = true;
		break;
	default:
		break;
	}
}

/* Track a ParameterStatus passing through to the client. */
static void server_track_param(struct server *s, struct client *c, struct evbuffer *in, size_t off,
			       uint32_t len)
{
	uint8_t small[SERVER_PARAM_MSG_MAX], *buf = small;
	struct evbuffer_ptr pos;
	struct pq_cursor cur;
	const char *name, *value;

	/* the usual few bytes on the stack; a long value (a search_path) on the heap */
	if (len - 4 > sizeof(small) && (buf = malloc(len - 4)) == NULL) {
		log_warning("server %s: out of memory tracking a parameter", s->label);
		return;
	}
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	if (evbuffer_copyout_from(in, &pos, buf, len - 4) == (ssize_t)(len - 4)) {
		pq_cursor_init(&cur, buf, len - 4);
		const char *old;

		name = pq_get_str(&cur);
		value = pq_get_str(&cur);
		old = pq_cursor_done(&cur) ? params_get(&s->reported, name) : NULL;
		/*
		 * A reported setting changed where the first keyword did not show
		 * it (set_config() in a SELECT, a function that runs SET): the
		 * client's session keeps its own books (client_param_changed).
		 */
		if (pq_cursor_done(&cur) && (old == NULL || strcmp(old, value) != 0))
			client_param_changed(c);
		/* the client sees this message too, so both views change together */
		if (pq_cursor_done(&cur) && (!server_set_reported(s, name, value) ||
					     !client_param_reported(c, name, value)))
			log_warning("server %s: out of memory tracking parameter %s", s->label,
				    name);
	}
	if (buf != small)
		free(buf);
}

/* Overwrite len bytes at 'off' of 'in', wherever its chains split them. */
static void server_overwrite(struct evbuffer *in, size_t off, const uint8_t *data, size_t len)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[4];
	int n;

	evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
	n = evbuffer_peek(in, (ssize_t)len, &pos, v, 4);
	for (int i = 0; i < n && i < 4 && len > 0; i++) {
		size_t k = v[i].iov_len < len ? v[i].iov_len : len;

		memcpy(v[i].iov_base, data, k);
		data += k;
		len -= k;
	}
}

/*
 * A NotificationResponse its own session sent carries the process ID its
 * client was told (session pooling after a move, or a login during a pause,
 * where that is not the server's): applications tell their own
 * notifications apart by it.
 */
enum relay_verdict server_own_notification(struct server *s, struct client *c, struct evbuffer *in,
					   size_t off, size_t avail, uint32_t len)
{
	uint8_t raw[4];
	struct evbuffer_ptr pos;

	if (c == NULL || c->cancel_pid == s->be_pid || len < 8)
		return RELAY_PASS;
	if (avail < PQ_HEADER_SIZE + 4)
		return RELAY_STOP; /* wait for the process ID (4 more bytes at most) */
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, raw, 4);
	if (((uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3]) !=
	    s->be_pid)
		return RELAY_PASS;
	raw[0] = (uint8_t)(c->cancel_pid >> 24);
	raw[1] = (uint8_t)(c->cancel_pid >> 16);
	raw[2] = (uint8_t)(c->cancel_pid >> 8);
	raw[3] = (uint8_t)c->cancel_pid;
	server_overwrite(in, off + PQ_HEADER_SIZE, raw, 4);
	return RELAY_PASS;
}

/* A ReadyForQuery passed: account for the request it ends. */
static void server_ready_seen(struct server *s, char status)
{
	struct db_stats *st = &s->pool->db->stats;
	uint64_t now = rt_now_us();

	s->txn_status = status;
	if (s->pending_syncs > 0) {
		s->pending_syncs--;
		st->query_time_us += now - s->query_start_us;
		s->query_start_us = now;
	}
	if (status == 'I' && s->pending_syncs == 0 && s->xact_start_us != 0) {
		st->xact_count++;
		st->xact_time_us += now - s->xact_start_us;
		s->xact_start_us = 0;
	}
}

/* After a batch that ended a transaction: a paused database may have drained. */
static void server_after_boundary(struct server *s)
{
	struct database *db = s->pool->db;

	if (db_paused(db) && server_at_boundary(s))
		db_note_progress(db);
}

/* The server-to-client direction's view of each message header (see conn.h). */
static enum relay_verdict server_on_header(void *arg, struct evbuffer *in, size_t off, size_t avail,
					   uint8_t type, uint32_t len)
{
	struct server *s = arg;
	struct client *c = s->client;
	struct evbuffer_ptr pos;
	uint8_t status;

	switch (type) {
	case 'Z':
		/* ReadyForQuery: the request ends; its status byte tells where the session is */
		if (len != 5)
			return RELAY_PASS;
		if (avail < 6)
			return RELAY_STOP; /* wait for the status byte */
		evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, &status, 1);
		server_ready_seen(s, (char)status);
		track_server_ready(s);
		if (c->lsub)
			listen_client_ready(c, s, (char)status);
		if (status == 'I' && s->pending_syncs == 0 && !s->unsynced && c->msg_left == 0) {
			/*
			 * transaction pooling, LISTEN, UNLISTEN or a listening client's
			 * NOTIFY: the ReadyForQuery waits for the hand-over (listen_client.h)
			 */
			if (c->lsub && listen_client_at_boundary(c)) {
				s->capture_next = c->sess.dirty;
				s->hold_ready = true;
				return RELAY_STOP;
			}
			/* a statement may have changed the session: ask what it holds now */
			if (c->sess.dirty) {
				s->capture_next = true;
				return RELAY_LAST;
			}
			/*
			 * transaction pooling: forward up to here, then give the server
			 * back, unless the client has an unnamed statement there it has
			 * not used yet (client_parsed_unnamed)
			 */
			if (c->db->pool_mode == POOL_TRANSACTION && !c->unnamed_unbound)
				return RELAY_LAST;
		}
		return RELAY_PASS;
	case 'E':
		if (c->lsub)
			listen_client_error(c); /* its UNLISTENs do not count */
						/* fall through */
	case '1':
	case '3':
		/* answers to prepared-statement messages, when some need handling */
		if (s->psq.count == 0)
			return RELAY_PASS;
		return track_server_answer(s, in, off, avail, type, len);
	case 'C':
		/* a ROLLBACK: its UNLISTENs do not count either */
		return c->lsub ? listen_client_tag(c, in, off, avail, len) : RELAY_PASS;
	case 'A':
		if (c->lsub) {
			enum relay_verdict v = listen_client_relay_a(s, c, in, off, avail, len);

			if (v != RELAY_PASS)
				return v;
		}
		return server_own_notification(s, c, in, off, avail, len);
	case 'S':
		/* ParameterStatus: tracked once it is whole (one larger than the input cannot be) */
		if (avail < (size_t)len + 1)
			return (size_t)len + 1 > s->sock.in_limit ? RELAY_PASS : RELAY_STOP;
		server_track_param(s, c, in, off, len);
		return RELAY_PASS;
	default:
		return RELAY_PASS;
	}
}

void server_forward(struct server *s)
{
	struct client *c = s->client;
	struct evbuffer *in = sock_in(&s->sock);
	struct evbuffer *out;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;
	struct relay_result res;

	if (c == NULL || s->state != SV_ACTIVE || s->internal_cb)
		return;
	out = sock_out(&c->sock);
	for (;;) {
		relay_forward(in, out, &s->msg_left, limit, (uint32_t)rt.cfg->max_packet_size,
			      server_on_header, s, &res);
		c->db->stats.bytes_out += res.moved;
		if (res.moved > 0) {
			sock_schedule_flush(&c->sock);
			/* the source's answers of a transaction copied for a shadow read */
			if (c->shadow)
				shadow_observe(c, out, res.moved);
		}
		if (res.end != RELAY_END_STOPPED || !s->swallow)
			break;
		s->swallow = false;
		if (s->answer) {
			/* an answer rewritten for the client (track.c), after what came before it */
			evbuffer_drain(in, s->answer_replaces);
			if (evbuffer_add(out, s->answer, s->answer_len) != 0) {
				log_error("server %s: out of memory rewriting an answer", s->label);
				s->ps_broken = true;
			}
			c->db->stats.bytes_out += s->answer_len;
			/* it may be all there is until the client sends more (a Flush, no Sync) */
			sock_schedule_flush(&c->sock);
			free(s->answer);
			s->answer = NULL;
			continue;
		}
		/* pgcutover's own ParseComplete or CloseComplete: the client never sees it */
		evbuffer_drain(in, PQ_HEADER_SIZE);
		ps_queue_pop(&s->psq);
	}
	/* notifications that waited for the end of a message go now */
	if (c->lsub && s->msg_left == 0)
		listen_client_flush(c);
	switch (res.end) {
	case RELAY_END_BAD_LENGTH:
		server_close(s, "server sent a message with an invalid length");
		return;
	case RELAY_END_LAST:
		if (s->capture_next) {
			s->capture_next = false;
			if (client_capture(c))
				return; /* client_capture_done() carries on */
			log_warning("server %s: could not ask for the session state", s->label);
			c->sess.dirty = false;
		}
		if (c->db->pool_mode == POOL_TRANSACTION) {
			server_txn_done(s);
			return;
		}
		break;
	case RELAY_END_FULL:
		/* the client is not reading fast enough: stop reading the server */
		server_pause_reading(s);
		break;
	case RELAY_END_STOPPED:
		if (s->hold_ready) {
			/* its ReadyForQuery (whole: it was read) waits for the hand-over */
			s->hold_ready = false;
			evbuffer_drain(in, (size_t)res.len + 1);
			listen_flow_start(c, s, true);
			return;
		}
		if (evbuffer_get_length(out) < limit)
			server_resume_reading(s);
		break;
	default:
		if (evbuffer_get_length(out) < limit)
			server_resume_reading(s);
		break;
	}
	if (s->msg_left == 0)
		server_after_boundary(s);
	/* a DEALLOCATE held until the server's transaction state was known (track.c) goes now */
	if (s->client == c && c->stop == STOP_WAIT_SERVER && s->pending_syncs == 0 &&
	    c->state == CL_ACTIVE)
		client_forward(c);
}

void server_txn_done(struct server *s)
{
	struct client *c = s->client;
	struct pool *pool = s->pool;

	c->server = NULL;
	s->client = NULL;
	s->msg_left = 0;
	/* what it commits from now on is not this client's (listen.h: markers) */
	if (pool->listener)
		listen_server_done(pool->listener, s);
	client_set_state(c, CL_IDLE);
	if (s->ps_broken) {
		/* its statements are not what pgcutover's books say: nobody else gets it */
		server_terminate(s, "its prepared statements are not what pgcutover expects");
	} else if (!server_current(s)) {
		/* a reload moved its side: not pooled (pool_assign_one() runs only for waiters) */
		server_terminate(s, "its address changed in a reload");
	} else {
		server_set_state(s, SV_IDLE);
	}
	if (db_paused(c->db))
		db_note_progress(c->db);
	pool_service(pool);
	/* notifications wait no longer for the end of a message */
	if (c->lsub)
		listen_client_flush(c);
	/* the client may already have sent its next transaction */
	if (c->state == CL_IDLE && sock_in_len(&c->sock) > 0)
		client_request_server(c);
}

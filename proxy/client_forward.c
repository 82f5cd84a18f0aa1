/*
 * client_forward.c - a client's messages on their way to its server.
 *
 * Messages are forwarded in batches (relay.h): headers are read in place,
 * whole runs of messages move to the server's output with one
 * evbuffer_remove_buffer(), and a large message streams through by
 * remembering how much of it is left (msg_left).  At each header the
 * client's direction decides: a new transaction is held while its database
 * is paused or its session must move first; a message that creates, uses or
 * drops a prepared statement or changes session state is looked at (and,
 * where statements are renamed, rewritten by track.c).  The server's books
 * of what was sent are the server's (server_count_request).
 */
#include "proxy/client_forward.h"

#include <event2/buffer.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/ddl.h"
#include "proxy/listen_client.h"
#include "proxy/pool.h"
#include "proxy/relay.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"
#include "proxy/session.h"
#include "proxy/shadow.h"
#include "proxy/switch_gap.h"
#include "proxy/track.h"

/* Queue for a server now, with or without a request (a LISTEN session after a move). */
void client_wait_for_server(struct client *c)
{
	client_set_state(c, CL_WAIT);
	if (db_paused(c->db)) {
		c->held = true; /* pool_service() serves it on resume */
		db_gap_note_hold(c->db);
	}
	pool_request_server(c);
}

/* An idle client (transaction pooling) sent something: it needs a server. */
void client_request_server(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	uint8_t type;

	if (evbuffer_get_length(in) == 0)
		return;
	if (evbuffer_copyout(in, &type, 1) == 1 && type == 'X') {
		client_close(c, "client terminated the session");
		return;
	}
	client_wait_for_server(c);
}

/* Whether named prepared statements are tracked (and, in transaction pooling, renamed). */
static bool client_tracks_statements(const struct client *c)
{
	return c->db->pool_mode == POOL_SESSION || rt.cfg->max_prepared_statements > 0;
}

/*
 * Copy the first bytes of a message's body (at most 'max') into buf, when
 * they have arrived; *n is how many.  False when they have not: the
 * direction waits for them (they are few, and the input holds far more).
 */
static bool client_peek_body(struct evbuffer *in, size_t off, size_t avail, uint32_t len,
			     uint8_t *buf, size_t max, size_t *n)
{
	struct evbuffer_ptr pos;
	size_t want = len - 4 < max ? len - 4 : max;

	if (avail < PQ_HEADER_SIZE + want)
		return false;
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, buf, want);
	*n = want;
	return true;
}

/*
 * An unnamed Parse went to the server.  It executes nothing: a statement
 * that may change session state marks the session for the boundary check
 * only when it is bound (a capture query at the boundary would drop the
 * unnamed statement a client meant to Describe or execute in its next round
 * trip: psql's \gdesc, PQprepare("") then PQexecPrepared("")).  Until a
 * Bind follows, transaction pooling keeps the server for the client.
 */
static void client_parsed_unnamed(struct client *c, enum session_kind kind)
{
	c->unnamed_unbound = true;
	c->unnamed_stateful = kind != SK_PLAIN;
}

/* Bytes of a body looked at to find a statement name (Bind: portal and statement). */
#define CLIENT_PEEK 256
/* Bytes of a query looked at to classify it: its first words, after a comment or two. */
#define CLIENT_CLASSIFY_PEEK 64

/*
 * Look at a message that may create, use or drop prepared statements or
 * change session state.  Returns RELAY_PASS, or RELAY_STOP with c->stop set.
 */
static enum relay_verdict client_track(struct client *c, struct server *s, struct evbuffer *in,
				       size_t off, size_t avail, uint8_t type, uint32_t len)
{
	uint8_t buf[CLIENT_PEEK];
	size_t n;
	bool txn = c->db->pool_mode == POOL_TRANSACTION;
	const uint8_t *nul;
	enum session_kind kind;

	switch (type) {
	case 'Q':
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
			goto need_more;
		/* a simple query drops the unnamed statement */
		c->unnamed_unbound = false;
		c->unnamed_stateful = false;
		kind = session_classify(buf, n);
		/* LISTEN, UNLISTEN, NOTIFY: what the listener must do (listen_client.h) */
		if (txn && (kind != SK_PLAIN || c->lsub) &&
		    listen_client_note_query(c, s, in, off, avail, len, buf, n) == RELAY_STOP)
			goto need_more;
		if (kind == SK_PLAIN)
			return RELAY_PASS;
		if (txn && (kind == SK_DEALLOCATE || kind == SK_DISCARD) &&
		    client_tracks_statements(c))
			goto rewrite;
		c->sess.dirty = true;
		return RELAY_PASS;
	case 'P':
		if (!client_tracks_statements(c))
			goto classify_parse;
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
			goto need_more;
		if (buf[0] != '\0')
			goto rewrite; /* a named statement: remember it (and rename it) */
		kind = session_classify(buf + 1, n - 1);
		if (txn && (kind != SK_PLAIN || c->lsub) &&
		    listen_client_note_parse(c, s, in, off, avail, len) == RELAY_STOP)
			goto need_more;
		if (txn && (kind == SK_DEALLOCATE || kind == SK_DISCARD))
			goto rewrite;
		client_parsed_unnamed(c, kind);
		s->ps_unqueued++;
		return RELAY_PASS;
	case 'B':
		/* a Bind (of the unnamed statement, most likely) executes what was parsed */
		c->unnamed_unbound = false;
		if (c->unnamed_stateful)
			c->sess.dirty = true;
		if (!client_tracks_statements(c))
			return RELAY_PASS;
		/* session pooling, everything on this server, nothing stateful: nothing to do */
		if (!txn && c->sess.stmts.missing == 0 && c->sess.stmts.stateful == 0)
			return RELAY_PASS;
		if (c->sess.stmts.tab.count == 0)
			return RELAY_PASS;
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_PEEK, &n))
			goto need_more;
		nul = memchr(buf, '\0', n); /* end of the portal name */
		if (nul == NULL || nul + 1 >= buf + n)
			goto rewrite; /* long names: the slow path reads them whole */
		if (nul[1] == '\0')
			return RELAY_PASS; /* the unnamed statement */
		goto rewrite;
	case 'D':
	case 'C':
		if (!client_tracks_statements(c))
			return RELAY_PASS;
		if (type == 'D' &&
		    (c->sess.stmts.tab.count == 0 || (!txn && c->sess.stmts.missing == 0)))
			return RELAY_PASS;
		if (!client_peek_body(in, off, avail, len, buf, 2, &n))
			goto need_more;
		if (n == 2 && buf[0] == 'S' && buf[1] != '\0')
			goto rewrite;
		if (type == 'C')
			s->ps_unqueued++;
		return RELAY_PASS;
	case 'F':
		c->sess.dirty = true; /* a function call: cannot vouch for it */
		return RELAY_PASS;
	default:
		return RELAY_PASS;
	}
classify_parse:
	if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
		goto need_more;
	nul = memchr(buf, '\0', n);
	kind = nul == NULL ? SK_STATE : session_classify(nul + 1, (size_t)(buf + n - nul - 1));
	if (txn && (kind != SK_PLAIN || c->lsub) &&
	    listen_client_note_parse(c, s, in, off, avail, len) == RELAY_STOP)
		goto need_more;
	if (nul && buf[0] == '\0')
		client_parsed_unnamed(c, kind);
	else if (kind != SK_PLAIN)
		c->sess.dirty = true;
	return RELAY_PASS;
need_more:
	c->stop = STOP_NEED_MORE;
	return RELAY_STOP;
rewrite:
	c->stop = STOP_REWRITE;
	return RELAY_STOP;
}

/* The client-to-server direction's view of each message header (see conn.h). */
static enum relay_verdict client_on_header(void *arg, struct evbuffer *in, size_t off, size_t avail,
					   uint8_t type, uint32_t len)
{
	struct client *c = arg;
	struct server *s = c->server;
	enum relay_verdict v;

	/*
	 * A new request at a transaction boundary (an internal query only runs
	 * at one) is held while the database is paused, while the session is
	 * being checked, or when the session must move first.
	 */
	if ((s->internal_cb || s->listen_flow || server_at_boundary(s)) &&
	    (db_paused(c->db) || s->internal_cb || s->listen_flow || s->side != c->db->route)) {
		c->held = true;
		if (db_paused(c->db))
			db_gap_note_hold(c->db);
		c->stop = STOP_HELD;
		return RELAY_STOP;
	}
	if (type == 'X') {
		/* Terminate: what came before goes, the session ends here */
		c->stop = STOP_TERMINATE;
		return RELAY_STOP;
	}
	/* schema changes are recorded, and refused with ddl = block (ddl.c) */
	if (type == 'Q' || type == 'P') {
		v = ddl_on_header(c, in, off, avail, type, len);
		if (v != RELAY_PASS)
			return v;
	}
	/* shadow reads: a transaction being copied, or one that may be drawn (shadow.c) */
	if (c->shadow || c->db->shadow_rate > 0) {
		v = shadow_on_header(c, s, in, off, avail, type, len);
		if (v != RELAY_PASS)
			return v;
	}
	v = client_track(c, s, in, off, avail, type, len);
	if (v == RELAY_PASS)
		server_count_request(s, type);
	return v;
}

void client_forward(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	struct server *s = c->server;
	struct evbuffer *out;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;
	uint32_t max = (uint32_t)rt.cfg->max_packet_size;
	struct relay_result res;

	if (s == NULL || c->state != CL_ACTIVE)
		return;
	out = sock_out(&s->sock);
	c->held = false; /* client_on_header() says again if it still holds */
	for (;;) {
		c->stop = STOP_NONE;
		relay_forward(in, out, &c->msg_left, limit, max, client_on_header, c, &res);
		c->db->stats.bytes_in += res.moved;
		if (res.moved > 0) {
			sock_schedule_flush(&s->sock);
			/* a transaction a switch held starts on the new side */
			if (c->gap_wait && s->side == c->db->route)
				db_gap_started(c);
		}
		if (res.end == RELAY_END_STOPPED && c->stop == STOP_DDL) {
			/* a refused schema change: the server is made to raise the error */
			if (!ddl_refuse_head(c))
				return;
			continue;
		}
		if (res.end != RELAY_END_STOPPED || c->stop != STOP_REWRITE)
			break;
		/* a prepared-statement message: rewritten, then the batch goes on */
		switch (track_client_message(c, s)) {
		case TRACK_DONE:
			sock_schedule_flush(&s->sock);
			continue;
		case TRACK_WAIT:
			c->stop = STOP_NEED_MORE;
			break;
		case TRACK_WAIT_SERVER:
			c->stop = STOP_WAIT_SERVER;
			break;
		case TRACK_CLOSED:
			return;
		}
		break;
	}
	switch (res.end) {
	case RELAY_END_BAD_LENGTH:
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "invalid message length %u for message type \"%c\" (must be 4 to %u)",
				  (unsigned)res.len,
				  res.type >= 32 && res.type < 127 ? res.type : '?', max);
		return;
	case RELAY_END_STOPPED:
		if (c->stop == STOP_TERMINATE) {
			client_close(c, "client terminated the session");
			return;
		}
		/* held: a lazy move starts now unless a pause or a check holds it */
		if (c->stop == STOP_HELD && !db_paused(c->db) && s->internal_cb == NULL &&
		    !s->listen_flow)
			client_relocate(c);
		break;
	case RELAY_END_FULL:
		/* the server is not reading fast enough: stop reading the client */
		client_pause_reading(c);
		return;
	default:
		break;
	}
	if (evbuffer_get_length(out) < limit)
		client_resume_reading(c);
}

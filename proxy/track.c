/*
 * track.c - prepared statements on the wire (see track.h).
 *
 * Everything here runs only for the few message kinds client.c stops at
 * (named Parse, Bind and Describe of a statement that needs work, named
 * Close, DEALLOCATE/DISCARD in transaction pooling); every other message is
 * forwarded in batches without coming here.  Messages pgcutover writes
 * itself are copied into the server's output; the client's bytes that need
 * no change keep streaming through c->msg_left.
 */
#include "proxy/track.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/prepared.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* The most of a Bind that is read to find its statement name. */
#define TRACK_BIND_PREFIX 2048
/* A name for Close that no server ever has (server names end in digits). */
#define TRACK_NO_STATEMENT PS_SERVER_PREFIX "none"

static bool track_txn(const struct client *c)
{
	return c->db->pool_mode == POOL_TRANSACTION;
}

/* Append one message pgcutover built to the server's output. */
static bool track_send(struct server *s, struct pq_buf *b)
{
	bool ok = !b->failed && evbuffer_add(sock_out(&s->sock), b->data, b->len) == 0;

	pq_buf_free(b);
	return ok;
}

/* Queue the answer handling for a message just written; false when full or out of memory. */
static bool track_expect(struct server *s, enum ps_pending_kind kind, struct ps_stmt *st,
			 const char *name)
{
	if (!ps_queue_push(&s->psq, kind, s->syncs_sent, s->ps_unqueued, st, name))
		return false;
	s->ps_unqueued = 0;
	return true;
}

/* Forward the message at the head of the input as it is (it streams). */
static enum track_result track_pass(struct client *c, struct server *s, uint8_t type, size_t total)
{
	c->msg_left = (uint32_t)total;
	client_count_request(c, s, type);
	return TRACK_DONE;
}

static enum track_result track_oom(struct client *c)
{
	client_disconnect(c, "53200", "out of memory");
	return TRACK_CLOSED;
}

static enum track_result track_queue_full(struct client *c)
{
	client_disconnect(c, "54000",
			  "too many Parse and Close messages unanswered in one pipeline (at most %d)",
			  PS_QUEUE_MAX);
	return TRACK_CLOSED;
}

/*
 * Transaction pooling: make sure this server has 'st', injecting a Parse
 * (and, to stay within max_prepared_statements, Closes of the least recently
 * used) before the client's message.  NULL when that failed (disconnected).
 */
static struct ps_cached *track_ensure(struct client *c, struct server *s, struct ps_stmt *st)
{
	struct ps_cached *e = ps_cache_find(&s->psc, st);
	struct pq_buf b;
	char sname[32];
	uint32_t victim;

	if (e)
		return e;
	while (s->psc.count >= (uint32_t)rt.cfg->max_prepared_statements &&
	       ps_cache_evict(&s->psc, st, &victim)) {
		ps_server_name(victim, sname, sizeof(sname));
		pq_buf_init(&b);
		pq_build_close(&b, 'S', sname);
		if (!track_send(s, &b)) {
			track_oom(c);
			return NULL;
		}
		if (!track_expect(s, PS_CLOSE_HIDDEN, NULL, NULL)) {
			track_queue_full(c);
			return NULL;
		}
	}
	e = ps_cache_add(&s->psc, st);
	if (e == NULL) {
		track_oom(c);
		return NULL;
	}
	ps_server_name(e->sname, sname, sizeof(sname));
	pq_buf_init(&b);
	pq_build_parse(&b, sname, st->body, st->len);
	if (!track_send(s, &b)) {
		track_oom(c);
		return NULL;
	}
	if (!track_expect(s, PS_PARSE_HIDDEN, st, NULL)) {
		track_queue_full(c);
		return NULL;
	}
	return e;
}

/*
 * Session pooling: the statement behind a client's name, prepared again on
 * its new server before first use.  False when disconnected.
 */
static bool track_restore(struct client *c, struct server *s, struct ps_entry *e)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_parse(&b, e->name, e->stmt->body, e->stmt->len);
	if (!track_send(s, &b)) {
		track_oom(c);
		return false;
	}
	if (!track_expect(s, PS_PARSE_HIDDEN, e->stmt, e->name)) {
		track_queue_full(c);
		return false;
	}
	ps_map_mark(&c->sess.stmts, e, true);
	log_debug("client %s: prepared statement \"%s\" restored on its new server", c->addr, e->name);
	return true;
}

/*
 * Transaction pooling: DEALLOCATE or DISCARD ALL in 'sql' (the text of a
 * Query, or of an unnamed Parse).  *replace gets a query to send instead
 * (malloc'd) or stays NULL to send the original.  False when disconnected.
 */
static bool track_txn_forget(struct client *c, struct server *s, const uint8_t *sql, size_t len,
			     char **replace)
{
	char name[256];
	bool all;

	*replace = NULL;
	if (session_parse_deallocate(sql, len, &all, name, sizeof(name))) {
		struct ps_entry *e;
		struct ps_cached *ce;
		char sname[32];

		if (all) {
			/* the server drops every statement it has, the client's and others' */
			ps_map_clear(&c->sess.stmts);
			ps_cache_clear(&s->psc);
			return true;
		}
		e = ps_map_find(&c->sess.stmts, name);
		if (e == NULL)
			return true; /* not ours: the server answers as it would directly */
		/* make the server have it, so that DEALLOCATE of it succeeds as the client expects */
		ce = track_ensure(c, s, e->stmt);
		if (ce == NULL)
			return false;
		ps_server_name(ce->sname, sname, sizeof(sname));
		*replace = malloc(strlen(sname) + 16);
		if (*replace == NULL) {
			track_oom(c);
			return false;
		}
		snprintf(*replace, strlen(sname) + 16, "DEALLOCATE %s", sname);
		ps_cache_remove(&s->psc, e->stmt);
		ps_map_remove(&c->sess.stmts, name);
		return true;
	}
	if (session_is_discard_all(sql, len)) {
		/* everything goes, on the server and in our books */
		ps_map_clear(&c->sess.stmts);
		ps_cache_clear(&s->psc);
		session_reset(&c->sess);
		c->sess.dirty = false;
		s->sess_owner = 0;
		s->sess_gen = c->sess.gen;
		return true;
	}
	/* another DISCARD, or more than one statement: ask the server afterwards */
	c->sess.dirty = true;
	return true;
}

/* Replace the message at the head of the input by one built in b. */
static enum track_result track_replace(struct client *c, struct server *s, uint8_t type,
				       size_t total, struct pq_buf *b)
{
	evbuffer_drain(sock_in(&c->sock), total);
	if (!track_send(s, b))
		return track_oom(c);
	client_count_request(c, s, type);
	return TRACK_DONE;
}

static enum track_result track_query(struct client *c, struct server *s, const uint8_t *msg,
				     size_t total)
{
	const uint8_t *sql = msg + PQ_HEADER_SIZE;
	size_t len = strnlen((const char *)sql, total - PQ_HEADER_SIZE);
	char *replace;
	struct pq_buf b;
	enum track_result r;

	if (!track_txn_forget(c, s, sql, len, &replace))
		return TRACK_CLOSED;
	if (replace == NULL)
		return track_pass(c, s, 'Q', total);
	pq_buf_init(&b);
	pq_build_query(&b, replace);
	free(replace);
	r = track_replace(c, s, 'Q', total, &b);
	return r;
}

static enum track_result track_parse(struct client *c, struct server *s, const uint8_t *msg,
				     size_t total)
{
	struct pq_cursor cur;
	const char *name, *query;
	const uint8_t *rest;
	size_t rest_len;
	int16_t nparams;
	enum session_kind kind;
	struct ps_stmt *st;
	struct pq_buf b;
	enum track_result r = TRACK_DONE;

	pq_cursor_init(&cur, msg + PQ_HEADER_SIZE, total - PQ_HEADER_SIZE);
	name = pq_get_str(&cur);
	rest = cur.p;
	query = pq_get_str(&cur);
	nparams = (int16_t)pq_get_u16(&cur);
	if (nparams < 0 || !pq_get_bytes(&cur, (size_t)nparams * 4) || !pq_cursor_done(&cur)) {
		client_disconnect(c, "08P01", "invalid Parse message format");
		return TRACK_CLOSED;
	}
	rest_len = (size_t)(cur.p - rest);
	kind = session_classify((const uint8_t *)query, strlen(query));
	if (name[0] == '\0') {
		/* the unnamed statement: only DEALLOCATE / DISCARD ALL come here (transaction pooling) */
		char *replace;

		if (!track_txn_forget(c, s, (const uint8_t *)query, strlen(query), &replace))
			return TRACK_CLOSED;
		s->ps_unqueued++;
		if (replace == NULL)
			return track_pass(c, s, 'P', total);
		pq_buf_init(&b);
		pq_msg_begin(&b, 'P');
		pq_put_str(&b, "");
		pq_put_str(&b, replace);
		pq_put_bytes(&b, (const uint8_t *)query + strlen(query) + 1,
			     rest_len - strlen(query) - 1);
		pq_msg_end(&b);
		free(replace);
		return track_replace(c, s, 'P', total, &b);
	}
	st = ps_stmt_get(rest, rest_len, (uint8_t)kind);
	if (st == NULL || ps_map_set(&c->sess.stmts, name, st, true) == NULL) {
		ps_stmt_put(st);
		return track_oom(c);
	}
	if (!track_txn(c)) {
		/* session pooling: the server keeps the client's own name */
		if (!track_expect(s, PS_PARSE_FWD, st, name))
			r = track_queue_full(c);
		else
			r = track_pass(c, s, 'P', total);
	} else {
		struct ps_cached *e = ps_cache_find(&s->psc, st);

		if (e) {
			/* the server has this text already: a Close of nothing answers in its place */
			pq_buf_init(&b);
			pq_build_close(&b, 'S', TRACK_NO_STATEMENT);
			if (!track_expect(s, PS_PARSE_SYNTH, st, name)) {
				pq_buf_free(&b);
				r = track_queue_full(c);
			} else {
				r = track_replace(c, s, 'P', total, &b);
			}
		} else {
			/* evict first (injected Closes go before this Parse), then the renamed Parse */
			e = track_ensure(c, s, st);
			if (e == NULL) {
				r = TRACK_CLOSED;
			} else {
				struct ps_pending *last = &s->psq.items[(s->psq.head + s->psq.count - 1) &
									 (s->psq.cap - 1)];

				/* track_ensure queued a hidden Parse: it is the client's own after all */
				last->kind = PS_PARSE_FWD;
				last->name = strdup(name);
				if (last->name == NULL) {
					r = track_oom(c);
				} else {
					/* the Parse itself went out with the server's name */
					evbuffer_drain(sock_in(&c->sock), total);
					client_count_request(c, s, 'P');
				}
			}
		}
	}
	ps_stmt_put(st);
	return r;
}

/*
 * Bind and Describe name a statement; find it, make sure the server has it,
 * rename it in transaction pooling.  'name_off' is where the statement name
 * starts in msg, 'have' how many bytes of msg are contiguous there.
 */
static enum track_result track_use(struct client *c, struct server *s, uint8_t type,
				   const uint8_t *msg, size_t name_off, size_t have, size_t total)
{
	const char *name = (const char *)msg + name_off;
	size_t nlen;
	struct ps_entry *e;
	struct ps_cached *ce;
	char sname[32];
	struct pq_buf b;
	size_t prefix;

	if (name_off >= have || memchr(name, '\0', have - name_off) == NULL)
		return track_pass(c, s, type, total); /* a name too long to track: as it is */
	nlen = strlen(name);
	e = ps_map_find(&c->sess.stmts, name);
	if (e == NULL)
		return track_pass(c, s, type, total); /* unknown: the server answers as it would */
	if (type == 'B' && e->stmt->kind != SK_PLAIN)
		c->sess.dirty = true;
	if (!track_txn(c)) {
		if (!ps_map_present(&c->sess.stmts, e) && !track_restore(c, s, e))
			return TRACK_CLOSED;
		return track_pass(c, s, type, total);
	}
	ce = track_ensure(c, s, e->stmt);
	if (ce == NULL)
		return TRACK_CLOSED;
	ps_server_name(ce->sname, sname, sizeof(sname));
	/* rewrite the header and everything up to the statement name; the rest streams */
	prefix = name_off + nlen + 1;
	pq_buf_init(&b);
	pq_put_u8(&b, type);
	pq_put_u32(&b, (uint32_t)(total - 1 - nlen + strlen(sname)));
	pq_put_bytes(&b, msg + PQ_HEADER_SIZE, name_off - PQ_HEADER_SIZE);
	pq_put_str(&b, sname);
	evbuffer_drain(sock_in(&c->sock), prefix);
	if (!track_send(s, &b))
		return track_oom(c);
	c->msg_left = (uint32_t)(total - prefix);
	client_count_request(c, s, type);
	return TRACK_DONE;
}

static enum track_result track_close(struct client *c, struct server *s, const uint8_t *msg,
				     size_t total)
{
	const char *name = (const char *)msg + PQ_HEADER_SIZE + 1;
	struct pq_buf b;

	if (total < PQ_HEADER_SIZE + 2 || memchr(name, '\0', total - PQ_HEADER_SIZE - 1) == NULL) {
		client_disconnect(c, "08P01", "invalid Close message format");
		return TRACK_CLOSED;
	}
	ps_map_remove(&c->sess.stmts, name);
	s->ps_unqueued++; /* its CloseComplete goes to the client as it is */
	if (!track_txn(c) || strncmp(name, PS_SERVER_PREFIX, strlen(PS_SERVER_PREFIX)) != 0)
		return track_pass(c, s, 'C', total);
	/* a client name that looks like one of ours must not close ours */
	pq_buf_init(&b);
	pq_build_close(&b, 'S', TRACK_NO_STATEMENT);
	return track_replace(c, s, 'C', total, &b);
}

/* A message too large to hold whole (only a Parse or a Query can be). */
static enum track_result track_oversized(struct client *c, struct server *s, uint8_t type,
					 size_t total)
{
	if (type == 'P' && track_txn(c)) {
		client_disconnect(c, "54000",
				  "prepared statement too large for transaction pooling (%zu bytes, conn_buffer_size is %lld): raise conn_buffer_size",
				  total, (long long)rt.cfg->conn_buffer_size);
		return TRACK_CLOSED;
	}
	if (type == 'P') {
		/* the server keeps it; pgcutover cannot carry it to another server */
		if (c->sess.untracked == NULL)
			c->sess.untracked = strdup("a prepared statement larger than conn_buffer_size");
		s->ps_unqueued++;
	}
	c->sess.dirty = true;
	return track_pass(c, s, type, total);
}

enum track_result track_client_message(struct client *c, struct server *s)
{
	struct evbuffer *in = sock_in(&c->sock);
	uint8_t hdr[PQ_HEADER_SIZE], type;
	uint32_t len;
	size_t total, need;
	const uint8_t *msg;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr) ||
	    pq_read_header(hdr, sizeof(hdr), &type, &len, UINT32_MAX) != PQ_OK)
		return TRACK_WAIT;
	total = (size_t)len + 1;
	need = type == 'B' && total > TRACK_BIND_PREFIX ? TRACK_BIND_PREFIX : total;
	if (need > c->sock.in_limit)
		return track_oversized(c, s, type, total);
	if (evbuffer_get_length(in) < need)
		return TRACK_WAIT;
	msg = evbuffer_pullup(in, (ev_ssize_t)need);
	if (msg == NULL)
		return track_oom(c);
	switch (type) {
	case 'Q':
		return track_query(c, s, msg, total);
	case 'P':
		return track_parse(c, s, msg, total);
	case 'B': {
		const uint8_t *nul = memchr(msg + PQ_HEADER_SIZE, '\0', need - PQ_HEADER_SIZE);

		if (nul == NULL)
			return track_pass(c, s, type, total);
		return track_use(c, s, type, msg, (size_t)(nul - msg) + 1, need, total);
	}
	case 'D':
		return track_use(c, s, type, msg, PQ_HEADER_SIZE + 1, need, total);
	case 'C':
		return track_close(c, s, msg, total);
	default:
		return track_pass(c, s, type, total);
	}
}

/* ---- the server's answers ---- */

/* An answer that will not come (the server skips after an error): undo what was assumed. */
static void track_undo(struct server *s, const struct ps_pending *it)
{
	struct client *c = s->client;
	struct ps_entry *e = c && it->name ? ps_map_find(&c->sess.stmts, it->name) : NULL;

	switch (it->kind) {
	case PS_PARSE_FWD:
	case PS_PARSE_SYNTH:
		/* the client's Parse failed: as directly, the name does not exist */
		if (e && e->stmt == it->stmt)
			ps_map_remove(&c->sess.stmts, it->name);
		if (it->kind == PS_PARSE_FWD)
			ps_cache_remove(&s->psc, it->stmt);
		break;
	case PS_PARSE_HIDDEN:
		ps_cache_remove(&s->psc, it->stmt);
		if (e && e->stmt == it->stmt)
			ps_map_mark(&c->sess.stmts, e, false);
		break;
	default:
		/* a Close that did not happen leaves a statement nobody uses: harmless */
		break;
	}
}

/* An ErrorResponse: the server skips what is left of this batch. */
static void track_error(struct server *s)
{
	struct ps_pending *it;

	while ((it = ps_queue_head(&s->psq)) != NULL && it->sync_no == s->syncs_done) {
		track_undo(s, it);
		ps_queue_pop(&s->psq);
	}
}

enum conn_verdict track_server_answer(struct server *s, struct evbuffer *in, size_t off,
				      uint8_t type, uint32_t len)
{
	struct ps_pending *it = ps_queue_head(&s->psq);
	uint8_t expect;

	if (type == 'E') {
		track_error(s);
		return CONN_PASS;
	}
	if (it == NULL || it->sync_no != s->syncs_done)
		return CONN_PASS; /* answers a message of this batch that needed nothing */
	if (it->skip > 0) {
		it->skip--;
		return CONN_PASS;
	}
	expect = it->kind == PS_PARSE_FWD || it->kind == PS_PARSE_HIDDEN ? '1' : '3';
	if (type != expect || len != 4) {
		/* our books and the server disagree: this server is not reused */
		log_error("server %s: unexpected %s while tracking prepared statements", s->label,
			  pq_msg_name(type, true));
		s->ps_broken = true;
		ps_queue_pop(&s->psq);
		return CONN_PASS;
	}
	switch (it->kind) {
	case PS_PARSE_HIDDEN:
	case PS_CLOSE_HIDDEN:
		s->swallow = true;
		return CONN_STOP;
	case PS_PARSE_SYNTH: {
		/* our Close of nothing answered in place of the client's Parse */
		struct evbuffer_ptr pos;
		struct evbuffer_iovec v;

		evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
		if (evbuffer_peek(in, 1, &pos, &v, 1) >= 1 && v.iov_len >= 1)
			*(uint8_t *)v.iov_base = '1';
		ps_queue_pop(&s->psq);
		return CONN_PASS;
	}
	default:
		ps_queue_pop(&s->psq);
		return CONN_PASS;
	}
}

void track_server_ready(struct server *s)
{
	struct ps_pending *it;

	s->syncs_done++;
	/* anything of the finished batch still queued was never answered */
	while ((it = ps_queue_head(&s->psq)) != NULL && (int32_t)(it->sync_no - s->syncs_done) < 0) {
		log_debug("server %s: a tracked message of a finished batch got no answer", s->label);
		track_undo(s, it);
		ps_queue_pop(&s->psq);
	}
}

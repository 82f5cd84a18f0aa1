/*
 * track.c - prepared statements on the wire (see track.h).
 *
 * Everything here runs only for the few message kinds client_forward.c stops at
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
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/listen_client.h"
#include "proxy/pool.h"
#include "proxy/prepared.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"
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
	server_count_request(s, type);
	return TRACK_DONE;
}

static enum track_result track_oom(struct client *c)
{
	client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return TRACK_CLOSED;
}

static enum track_result track_queue_full(struct client *c)
{
	client_disconnect(c, SQLSTATE_PROGRAM_LIMIT_EXCEEDED,
			  "too many Parse and Close messages unanswered in one pipeline (at most %d)",
			  PS_QUEUE_MAX);
	return TRACK_CLOSED;
}

/* Transaction pooling: a Close of one of pgcutover's server names, whose answer is swallowed. */
static bool track_close_hidden(struct client *c, struct server *s, uint32_t sname_no)
{
	struct pq_buf b;
	char sname[32];

	ps_server_name(sname_no, sname, sizeof(sname));
	pq_buf_init(&b);
	pq_build_close(&b, 'S', sname);
	if (!track_send(s, &b)) {
		track_oom(c);
		return false;
	}
	if (!track_expect(s, PS_CLOSE_HIDDEN, NULL, NULL)) {
		track_queue_full(c);
		return false;
	}
	return true;
}

/*
 * Transaction pooling: make sure this server has 'st' as of generation
 * 'gen' or later, injecting a Parse (and, to stay within
 * max_prepared_statements, Closes of the least recently used, and of an
 * older copy of st itself) before the client's message.  NULL when that
 * failed (disconnected).
 */
static struct ps_cached *track_ensure(struct client *c, struct server *s, struct ps_stmt *st,
				      uint32_t gen)
{
	struct ps_cached *e = ps_cache_find(&s->psc, st);
	struct pq_buf b;
	char sname[32];
	uint32_t victim;

	if (e && ps_gen_serves(e->gen, gen))
		return e;
	if (e) {
		/* made before the client's Parse: its definition may have changed since */
		uint32_t old = e->sname;

		ps_cache_remove(&s->psc, st);
		if (!track_close_hidden(c, s, old))
			return NULL;
	}
	while (s->psc.tab.count >= (uint32_t)rt.cfg->max_prepared_statements &&
	       ps_cache_evict(&s->psc, st, &victim))
		if (!track_close_hidden(c, s, victim))
			return NULL;
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
	log_debug("client %s: prepared statement \"%s\" restored on its new server", c->addr,
		  e->name);
	return true;
}

/*
 * Transaction pooling, DEALLOCATE of one of the client's names, which the
 * server does not have: an empty statement is prepared under a fresh name of
 * pgcutover's and the client's DEALLOCATE drops that one, so the client gets
 * the CommandComplete it would get directly.  An empty query never fails to
 * parse, not even in a failed transaction (PostgreSQL refuses only real
 * statements there); preparing the client's own text instead could fail (a
 * table dropped since) and make the server skip until a Sync, which a simple
 * Query never sends: the session would hang.  *sname gets the name.
 */
static bool track_placeholder(struct client *c, struct server *s, char *sname, size_t len)
{
	static const uint8_t empty[3] = {0, 0, 0}; /* query "", no parameter types */
	struct pq_buf b;

	/* server names are never reused on a connection (see struct ps_cache) */
	ps_server_name(s->psc.next_sname++, sname, len);
	pq_buf_init(&b);
	pq_build_parse(&b, sname, empty, sizeof(empty));
	if (!track_send(s, &b)) {
		track_oom(c);
		return false;
	}
	if (!track_expect(s, PS_PARSE_HIDDEN, NULL, NULL)) {
		track_queue_full(c);
		return false;
	}
	return true;
}

/* DEALLOCATE ALL (discard: DISCARD ALL) runs on the server: every statement goes, in our books too. */
static void track_forget_all(struct client *c, struct server *s, bool discard)
{
	/* the server drops every statement it has, the client's and others' */
	ps_map_clear(&c->sess.stmts);
	ps_cache_clear(&s->psc);
	if (discard) {
		/* and every setting */
		session_reset(&c->sess);
		c->sess.dirty = false;
		s->sess_owner = 0;
		s->sess_gen = c->sess.gen;
	}
}

/*
 * A DEALLOCATE pgcutover cannot follow exactly (one of several statements
 * in a Query, or of a name of pgcutover's own that is not the client's):
 * statements of the server's cache may be gone, and other clients would
 * get "prepared statement pgcutover_N does not exist".  The server is not
 * reused after this transaction (server_clean).
 */
static void track_untrusted(struct client *c, struct server *s)
{
	log_debug("client %s: a DEALLOCATE pgcutover cannot follow: server %s is not reused",
		  c->addr, s->label);
	s->ps_broken = true;
}

/*
 * Transaction pooling: DEALLOCATE or DISCARD ALL in 'sql' (the text of a
 * Query when 'simple', or of an unnamed Parse).  *replace gets a query to
 * send instead (malloc'd) or stays NULL to send the original.  For a Parse,
 * *queued says whether its answer was queued (PS_PARSE_DEALLOC).  False
 * when disconnected.
 */
static bool track_txn_forget(struct client *c, struct server *s, const uint8_t *sql, size_t len,
			     bool simple, char **replace, bool *queued)
{
	char name[256], sname[32];
	bool all;
	/* the server's transaction state, when no answer is pending ('E': failed, 'T': in one) */
	char known = s->pending_syncs == 0 ? s->txn_status : '?';

	*replace = NULL;
	*queued = false;
	if (session_parse_deallocate(sql, len, &all, name, sizeof(name))) {
		struct ps_entry *e;
		struct ps_cached *ce;

		if (known == 'E')
			return true; /* 25P02, as directly: nothing is deallocated */
		if (all) {
			track_forget_all(c, s, false);
			return true;
		}
		e = ps_map_find(&c->sess.stmts, name);
		if (e == NULL) {
			/* not ours: the server answers as it would directly */
			if (strncmp(name, PS_SERVER_PREFIX, strlen(PS_SERVER_PREFIX)) == 0)
				track_untrusted(c, s); /* ...and may drop one of pgcutover's */
			return true;
		}
		/*
		 * A simple Query goes alone, in a known state (track_query waits),
		 * so a statement the server has can simply be dropped there (its
		 * next user prepares it again).  A Parse may be skipped (an error
		 * earlier in its batch) or fail (25P02): it drops a placeholder, and
		 * its queue item gives the client its name back if it fails.
		 */
		ce = simple ? ps_cache_find(&s->psc, e->stmt) : NULL;
		if (ce) {
			ps_server_name(ce->sname, sname, sizeof(sname));
			ps_cache_remove(&s->psc, e->stmt);
		} else if (!track_placeholder(c, s, sname, sizeof(sname))) {
			return false;
		}
		if (!simple) {
			if (!track_expect(s, PS_PARSE_DEALLOC, NULL, name)) {
				track_queue_full(c);
				return false;
			}
			ps_pending_set_prev(ps_queue_tail(&s->psq), e->stmt, false);
			*queued = true;
		}
		*replace = malloc(strlen(sname) + 16);
		if (*replace == NULL) {
			track_oom(c);
			return false;
		}
		snprintf(*replace, strlen(sname) + 16, "DEALLOCATE %s", sname);
		ps_map_remove(&c->sess.stmts, name);
		return true;
	}
	if (session_is_discard_all(sql, len)) {
		/* in a transaction block it fails (25001, 25P02): nothing goes */
		if (known == 'T' || known == 'E')
			return true;
		track_forget_all(c, s, true);
		return true;
	}
	/* DEALLOCATE among several statements: which ones go is not known */
	if (session_classify(sql, len) == SK_DEALLOCATE)
		track_untrusted(c, s);
	/* another DISCARD, or more than one statement: ask the server afterwards */
	c->sess.dirty = true;
	return true;
}

/*
 * Transaction pooling: a Bind of a named statement whose text is a
 * DEALLOCATE or DISCARD (psycopg with prepare_threshold=0 prepares them
 * too): when executed it drops statements on the server, which pgcutover's
 * books must follow.  (A prepared "DEALLOCATE name" of one of the client's
 * names gets 26000: the server knows the statement by pgcutover's name.)
 */
static void track_txn_bind_dropping(struct client *c, struct server *s, const struct ps_stmt *st)
{
	const uint8_t *sql = st->body;
	size_t len = strnlen((const char *)sql, st->len);
	char name[256];
	bool all;

	if (session_parse_deallocate(sql, len, &all, name, sizeof(name))) {
		if (all)
			track_forget_all(c, s, false);
		else if (strncmp(name, PS_SERVER_PREFIX, strlen(PS_SERVER_PREFIX)) == 0)
			track_untrusted(c, s);
	} else if (session_is_discard_all(sql, len)) {
		track_forget_all(c, s, true);
	} else if (st->kind == SK_DEALLOCATE) {
		track_untrusted(c, s);
	}
}

/* Replace the message at the head of the input by one built in b. */
static enum track_result track_replace(struct client *c, struct server *s, uint8_t type,
				       size_t total, struct pq_buf *b)
{
	evbuffer_drain(sock_in(&c->sock), total);
	if (!track_send(s, b))
		return track_oom(c);
	server_count_request(s, type);
	return TRACK_DONE;
}

static enum track_result track_query(struct client *c, struct server *s, const uint8_t *msg,
				     size_t total)
{
	const uint8_t *sql = msg + PQ_HEADER_SIZE;
	size_t len = strnlen((const char *)sql, total - PQ_HEADER_SIZE);
	char *replace;
	bool queued;
	struct pq_buf b;
	enum track_result r;

	/*
	 * What a DEALLOCATE or DISCARD ALL needs depends on the server's
	 * transaction state (failed: it must go as it is; a Parse put before it
	 * would fail and make the server skip the Query for good): wait for the
	 * answers to queries the client pipelined before it.
	 */
	if (s->pending_syncs > 0)
		return TRACK_WAIT_SERVER;
	if (!track_txn_forget(c, s, sql, len, true, &replace, &queued))
		return TRACK_CLOSED;
	if (replace == NULL)
		return track_pass(c, s, 'Q', total);
	pq_buf_init(&b);
	pq_build_query(&b, replace);
	free(replace);
	r = track_replace(c, s, 'Q', total, &b);
	return r;
}

/*
 * Transaction pooling, a Parse of a name the client has.  PostgreSQL parses
 * the text and then refuses the name (42P05), or refuses the text first (a
 * syntax error), and the name keeps its statement either way.  So the
 * client's Parse goes to a server that has the statement, under that
 * statement's server name: the server answers exactly that, and
 * track_server_answer() puts the client's name in the 42P05.
 */
static enum track_result track_parse_dup(struct client *c, struct server *s, struct ps_entry *old,
					 const uint8_t *rest, size_t rest_len, size_t total)
{
	struct ps_cached *ce = track_ensure(c, s, old->stmt, old->gen);
	char sname[32];
	struct pq_buf b;

	if (ce == NULL)
		return TRACK_CLOSED;
	ps_server_name(ce->sname, sname, sizeof(sname));
	pq_buf_init(&b);
	pq_build_parse(&b, sname, rest, rest_len);
	if (!track_expect(s, PS_PARSE_DUP, NULL, old->name)) {
		pq_buf_free(&b);
		return track_queue_full(c);
	}
	ps_queue_tail(&s->psq)->sname = ce->sname;
	return track_replace(c, s, 'P', total, &b);
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
	struct ps_stmt *st, *prev;
	struct ps_entry *old;
	bool prev_present;
	struct pq_buf b;
	enum track_result r = TRACK_DONE;

	pq_cursor_init(&cur, msg + PQ_HEADER_SIZE, total - PQ_HEADER_SIZE);
	name = pq_get_str(&cur);
	rest = cur.p;
	query = pq_get_str(&cur);
	nparams = (int16_t)pq_get_u16(&cur);
	if (nparams < 0 || !pq_get_bytes(&cur, (size_t)nparams * 4) || !pq_cursor_done(&cur)) {
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Parse message format");
		return TRACK_CLOSED;
	}
	rest_len = (size_t)(cur.p - rest);
	kind = session_classify((const uint8_t *)query, strlen(query));
	if (name[0] == '\0') {
		/* the unnamed statement: only DEALLOCATE / DISCARD ALL come here (transaction pooling) */
		char *replace;
		bool queued;

		if (!track_txn_forget(c, s, (const uint8_t *)query, strlen(query), false, &replace,
				      &queued))
			return TRACK_CLOSED;
		if (!queued)
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
	/*
	 * What the name meant before: if the server rejects this Parse (42P05
	 * for a name it has, a syntax error) or skips it, the name keeps that
	 * meaning, as on the server (track_undo).
	 */
	old = ps_map_find(&c->sess.stmts, name);
	if (old && track_txn(c))
		return track_parse_dup(c, s, old, rest, rest_len, total);
	if (old && !ps_map_present(&c->sess.stmts, old) && !track_restore(c, s, old))
		return TRACK_CLOSED; /* so that the server says 42P05, as it would have */
	prev = old ? old->stmt : NULL;
	prev_present = old && ps_map_present(&c->sess.stmts, old);
	if (prev)
		ps_stmt_ref(prev); /* ps_map_set() below may drop the entry's reference */
	st = ps_stmt_get(rest, rest_len, (uint8_t)kind);
	if (st && track_txn(c))
		st->gen++; /* this client's copy is made now (see struct ps_stmt) */
	if (st == NULL || ps_map_set(&c->sess.stmts, name, st, true) == NULL) {
		ps_stmt_put(st);
		ps_stmt_put(prev);
		return track_oom(c);
	}
	if (!track_txn(c)) {
		/* session pooling: the server keeps the client's own name */
		if (!track_expect(s, PS_PARSE_FWD, st, name)) {
			r = track_queue_full(c);
		} else {
			ps_pending_set_prev(ps_queue_tail(&s->psq), prev, prev_present);
			r = track_pass(c, s, 'P', total);
		}
	} else {
		/*
		 * A copy of the text this server may have was made before this
		 * Parse: it goes (a hidden Close), and so do the least recently used
		 * beyond max_prepared_statements; then the Parse, renamed.
		 */
		struct ps_cached *e = track_ensure(c, s, st, st->gen);

		if (e == NULL) {
			r = TRACK_CLOSED;
		} else {
			struct ps_pending *last = ps_queue_tail(&s->psq);

			/* track_ensure queued a hidden Parse: it is the client's own after all */
			last->kind = PS_PARSE_FWD;
			ps_pending_set_prev(last, prev, prev_present);
			last->name = strdup(name);
			if (last->name == NULL) {
				r = track_oom(c);
			} else {
				/* the Parse itself went out with the server's name */
				evbuffer_drain(sock_in(&c->sock), total);
				server_count_request(s, 'P');
			}
		}
	}
	ps_stmt_put(st);
	ps_stmt_put(prev);
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
	/* a prepared LISTEN, UNLISTEN or NOTIFY runs now (listen_client.h) */
	if (type == 'B' && track_txn(c) && (e->stmt->kind != SK_PLAIN || c->lsub))
		listen_client_note_stmt(c, s, e->stmt->body,
					strnlen((const char *)e->stmt->body, e->stmt->len));
	if (!track_txn(c)) {
		if (!ps_map_present(&c->sess.stmts, e) && !track_restore(c, s, e))
			return TRACK_CLOSED;
		return track_pass(c, s, type, total);
	}
	ce = track_ensure(c, s, e->stmt, e->gen);
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
	/* last: this may free e and the cache entry */
	if (type == 'B' && (e->stmt->kind == SK_DEALLOCATE || e->stmt->kind == SK_DISCARD))
		track_txn_bind_dropping(c, s, e->stmt);
	c->msg_left = (uint32_t)(total - prefix);
	server_count_request(s, type);
	return TRACK_DONE;
}

static enum track_result track_close(struct client *c, struct server *s, const uint8_t *msg,
				     size_t total)
{
	const char *name = (const char *)msg + PQ_HEADER_SIZE + 1;
	struct ps_entry *e;
	struct pq_buf b;

	if (total < PQ_HEADER_SIZE + 2 || memchr(name, '\0', total - PQ_HEADER_SIZE - 1) == NULL) {
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Close message format");
		return TRACK_CLOSED;
	}
	e = ps_map_find(&c->sess.stmts, name);
	if (e == NULL) {
		s->ps_unqueued++; /* not ours: its CloseComplete goes to the client as it is */
	} else {
		/*
		 * Queued with what the name meant: if an error earlier in the batch
		 * makes the server skip this Close, the statement stays there, and
		 * so it does in the client's books (track_undo).
		 */
		if (!track_expect(s, PS_CLOSE_FWD, NULL, name))
			return track_queue_full(c);
		ps_pending_set_prev(ps_queue_tail(&s->psq), e->stmt,
				    ps_map_present(&c->sess.stmts, e));
		ps_map_remove(&c->sess.stmts, name);
	}
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
		client_disconnect(c, SQLSTATE_PROGRAM_LIMIT_EXCEEDED,
				  "prepared statement too large for transaction pooling (%zu bytes, conn_buffer_size is %lld): raise conn_buffer_size",
				  total, (long long)rt.cfg->conn_buffer_size);
		return TRACK_CLOSED;
	}
	if (type == 'P') {
		/* the server keeps it; pgcutover cannot carry it to another server */
		if (c->sess.untracked == NULL)
			c->sess.untracked =
				strdup("a prepared statement larger than conn_buffer_size");
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

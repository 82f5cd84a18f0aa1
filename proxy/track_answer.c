/*
 * track_answer.c - the server's answers to the prepared-statement messages
 * track.c sent or rewrote (see track_answer.h): ParseComplete and
 * CloseComplete matched in order with the queue of what was sent, the ones
 * that answer pgcutover's own messages swallowed (or rewritten into the
 * client's), and an ErrorResponse that undoes what the server will now skip
 * until the next Sync.
 */
#include "proxy/track_answer.h"

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
#include "proxy/pool.h"
#include "proxy/prepared.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* The client's name means 'prev' again (or nothing), as it does on the server. */
static void track_restore_name(struct client *c, const struct ps_pending *it)
{
	if (it->prev == NULL) {
		ps_map_remove(&c->sess.stmts, it->name);
		return;
	}
	if (ps_map_set(&c->sess.stmts, it->name, it->prev, it->prev_present) == NULL)
		log_warning("client %s: out of memory restoring prepared statement \"%s\"", c->addr,
			    it->name);
}

/*
 * An answer that will not come (the server skips after an error, or the
 * message itself failed): undo what was assumed.  Items are undone newest
 * first (track_undo_oldest), so the client's map is exactly as this message
 * found it.
 */
static void track_undo(struct server *s, const struct ps_pending *it)
{
	struct client *c = s->client;
	struct ps_entry *e = c && it->name ? ps_map_find(&c->sess.stmts, it->name) : NULL;

	switch (it->kind) {
	case PS_PARSE_FWD:
		/* the client's Parse failed: as directly, the name means what it did before */
		if (e && e->stmt == it->stmt)
			track_restore_name(c, it);
		ps_cache_remove(&s->psc, it->stmt);
		break;
	case PS_CLOSE_FWD:
	case PS_PARSE_DEALLOC:
		/* the client's Close or DEALLOCATE did not happen: the statement stays */
		if (c && e == NULL)
			track_restore_name(c, it);
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

/* Undo the n oldest items, newest first, and drop them. */
static void track_undo_oldest(struct server *s, uint32_t n)
{
	for (uint32_t i = n; i-- > 0;)
		track_undo(s, ps_queue_at(&s->psq, i));
	while (n-- > 0)
		ps_queue_pop(&s->psq);
}

/* An ErrorResponse: the server skips what is left of this batch. */
static void track_error(struct server *s)
{
	uint32_t n = 0;

	while (n < s->psq.count && ps_queue_at(&s->psq, n)->sync_no == s->syncs_done)
		n++;
	track_undo_oldest(s, n);
}

/*
 * The ErrorResponse answering a PS_PARSE_DUP: a 42P05 names the server's
 * statement, so the client gets it with its own name in that place (the
 * rest of the text, in whatever language lc_messages gives, is the
 * server's).  Only an error that names the server name is rewritten: one
 * from an earlier Execute of the batch (a SQL PREPARE) is not this Parse's.
 * RELAY_STOP to wait for the whole message, or with s->swallow and
 * s->answer set; RELAY_PASS to pass the error as it is.
 */
static enum relay_verdict track_dup_error(struct server *s, struct evbuffer *in, size_t off,
					  size_t avail, uint32_t len, const struct ps_pending *it)
{
	uint8_t *body;
	struct pq_error_fields f;
	struct pq_buf b, m;
	char sname[32];
	const char *at;
	struct evbuffer_ptr pos;

	if ((size_t)len + 1 > s->sock.in_limit)
		return RELAY_PASS; /* no 42P05 is that long */
	if (avail < (size_t)len + 1)
		return RELAY_STOP;
	body = malloc(len - 4);
	if (body == NULL)
		return RELAY_PASS;
	ps_server_name(it->sname, sname, sizeof(sname));
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	if (evbuffer_copyout_from(in, &pos, body, len - 4) != (ev_ssize_t)(len - 4) ||
	    pq_parse_error(body, len - 4, &f) != PQ_OK || f.sqlstate == NULL ||
	    strcmp(f.sqlstate, SQLSTATE_DUPLICATE_PREPARED_STATEMENT) != 0 || f.message == NULL ||
	    (at = strstr(f.message, sname)) == NULL) {
		free(body);
		return RELAY_PASS;
	}
	pq_buf_init(&m);
	pq_put_bytes(&m, f.message, (size_t)(at - f.message));
	pq_put_bytes(&m, it->name, strlen(it->name));
	pq_put_str(&m, at + strlen(sname));
	pq_buf_init(&b);
	if (m.failed ||
	    pq_build_error_remessaged(&b, 'E', body, len - 4, (const char *)m.data) != PQ_OK ||
	    b.failed) {
		pq_buf_free(&m);
		pq_buf_free(&b);
		free(body);
		return RELAY_PASS;
	}
	pq_buf_free(&m);
	free(body);
	s->answer = b.data; /* the buffer is handed over */
	s->answer_len = b.len;
	s->answer_replaces = (size_t)len + 1;
	s->swallow = true;
	return RELAY_STOP;
}

enum relay_verdict track_server_answer(struct server *s, struct evbuffer *in, size_t off,
				       size_t avail, uint8_t type, uint32_t len)
{
	struct ps_pending *it = ps_queue_head(&s->psq);
	enum relay_verdict verdict = RELAY_PASS;
	uint8_t expect;

	if (type == 'E') {
		/* the answer to this very message: nothing passed untracked before it */
		if (it && it->kind == PS_PARSE_DUP && it->sync_no == s->syncs_done && it->skip == 0) {
			verdict = track_dup_error(s, in, off, avail, len, it);
			if (verdict == RELAY_STOP && !s->swallow)
				return verdict; /* called again once the message is whole */
		}
		track_error(s);
		return verdict;
	}
	if (it == NULL || it->sync_no != s->syncs_done)
		return RELAY_PASS; /* answers a message of this batch that needed nothing */
	if (it->skip > 0) {
		it->skip--;
		return RELAY_PASS;
	}
	expect = it->kind == PS_PARSE_FWD || it->kind == PS_PARSE_HIDDEN ||
				 it->kind == PS_PARSE_DEALLOC || it->kind == PS_PARSE_DUP
			 ? '1'
			 : '3';
	if (type != expect || len != 4) {
		/* our books and the server disagree: this server is not reused */
		log_error("server %s: unexpected %s while tracking prepared statements", s->label,
			  pq_msg_name(type, true));
		s->ps_broken = true;
		ps_queue_pop(&s->psq);
		return RELAY_PASS;
	}
	switch (it->kind) {
	case PS_PARSE_HIDDEN:
	case PS_CLOSE_HIDDEN:
		s->swallow = true;
		return RELAY_STOP;
	case PS_PARSE_DUP:
		/* the server lacked the statement track_ensure() put there: books disagree */
		log_error("server %s: a prepared statement pgcutover prepared was missing",
			  s->label);
		s->ps_broken = true;
		ps_queue_pop(&s->psq);
		return RELAY_PASS;
	default:
		ps_queue_pop(&s->psq);
		return RELAY_PASS;
	}
}

void track_server_ready(struct server *s)
{
	uint32_t n = 0;

	s->syncs_done++;
	/* anything of the finished batch still queued was never answered */
	while (n < s->psq.count && (int32_t)(ps_queue_at(&s->psq, n)->sync_no - s->syncs_done) < 0)
		n++;
	if (n > 0)
		log_debug("server %s: %u tracked messages of a finished batch got no answer",
			  s->label, (unsigned)n);
	track_undo_oldest(s, n);
}

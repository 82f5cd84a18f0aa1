/*
 * shadow_capture.c - the copy of a sampled transaction (see shadow.h): the
 * draw at a transaction's first message, the copy of each request as the
 * replay will send it, and the digest of the source's answers as they pass
 * to the client.
 *
 * The replay runs everything as the unnamed statement and portal: a Parse
 * keeps its text and parameter types under the name ""; a Bind, Describe or
 * Execute of a named statement is preceded by a Parse of the text the
 * client's books hold for that name (prepared.h); a Close is not needed.
 * The messages of the BEGIN (kept for the replay's own first statement) and
 * of the COMMIT or ROLLBACK (the replay always rolls back) are not copied.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/sqlclass.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/ddl.h"
#include "proxy/prepared.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/shadow_int.h"

/* ---- requests ---- */

/* The request being copied (extended messages before their Sync), or a new one; NULL when full. */
static struct shadow_req *req_current(struct shadow_sample *smp, bool extended)
{
	struct shadow_req *r;

	if (extended && smp->nreqs > 0 && smp->reqs[smp->nreqs - 1].open)
		return &smp->reqs[smp->nreqs - 1];
	if (smp->nreqs == SHADOW_REQUESTS_MAX)
		return NULL;
	if (smp->nreqs == smp->reqcap) {
		unsigned cap = smp->reqcap ? smp->reqcap * 2 : 2;
		struct shadow_req *n = realloc(smp->reqs, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		smp->reqs = n;
		smp->reqcap = cap;
	}
	r = &smp->reqs[smp->nreqs++];
	memset(r, 0, sizeof(*r));
	pq_buf_init(&r->msgs);
	pq_buf_init(&r->text);
	r->open = extended;
	r->ordered = true;
	r->sent_us = rt_now_us();
	return r;
}

/* A statement the request runs: its text for the fingerprint, and how it compares. */
static void req_statement(struct shadow_req *r, const char *sql, size_t len,
			  const struct sqlclass_read *cls)
{
	if (r->text.len > 0) {
		r->text.len--; /* the NUL */
		pq_put_bytes(&r->text, "; ", 2);
	}
	pq_put_bytes(&r->text, sql, len);
	pq_put_u8(&r->text, 0);
	r->compared = true;
	r->ordered = r->ordered && cls->ordered;
	r->shape_only = r->shape_only || cls->shape_only;
}

/* The copy is given up: nothing of it counts. */
static void abandon(struct shadow_sample *smp, const char *why)
{
	log_debug("shadow %s: not sampling a transaction of %s: %s", smp->sdb->db->name, smp->user,
		  why);
	shadow_sample_free(smp);
}

/* The copy would be too large: the transaction counts as dropped. */
static void too_large(struct shadow_sample *smp)
{
	if (smp->client)
		smp->client->shadow = NULL;
	smp->client = NULL;
	shadow_sample_done(smp, SHADOW_DROPPED, "more than 64 kB of requests");
}

/* ---- extended-protocol messages ---- */

/* Append a Parse of the unnamed statement with this body (query NUL, types). */
static void put_parse(struct shadow_req *r, const uint8_t *body, size_t len)
{
	pq_msg_begin(&r->msgs, 'P');
	pq_put_u8(&r->msgs, 0);
	pq_put_bytes(&r->msgs, body, len);
	pq_msg_end(&r->msgs);
}

/*
 * The statement a Bind or Describe names, made the replay's unnamed one;
 * *query gets its text.  False when it cannot be (a name the client's books
 * do not hold, the unnamed statement parsed before the sample).
 */
static bool use_statement(struct shadow_sample *smp, struct client *c, struct shadow_req *r,
			  const char *name, const char **query)
{
	if (name[0] == '\0') {
		if (smp->unnamed == NULL)
			return false;
		put_parse(r, smp->unnamed, smp->unnamed_len);
		*query = (const char *)smp->unnamed;
		return true;
	} else {
		const struct ps_entry *e = ps_map_find(&c->sess.stmts, name);

		if (e == NULL || memchr(e->stmt->body, '\0', e->stmt->len) == NULL)
			return false;
		put_parse(r, e->stmt->body, e->stmt->len);
		*query = (const char *)e->stmt->body;
		return true;
	}
}

/*
 * A statement's text met in the transaction (Parse, or Bind of a name):
 * whether it is copied, and whether it is the BEGIN or the end (*skip: its
 * messages are not replayed).  False: the transaction cannot be shadowed.
 */
static bool judge_statement(struct shadow_sample *smp, const char *query, bool *skip,
			    struct sqlclass_read *cls)
{
	sqlclass_read((const uint8_t *)query, strlen(query), cls);
	*skip = false;
	switch (cls->kind) {
	case SQLCLASS_BEGIN_RO:
		/* its own statement, at the very start */
		if (smp->begin != NULL || smp->nreqs > 1 || cls->statements != 1)
			return false;
		smp->begin = strdup(query);
		*skip = true;
		return smp->begin != NULL;
	case SQLCLASS_END:
		if (smp->begin == NULL)
			return false;
		smp->ending = true; /* closed once this request's Sync has gone */
		*skip = true;
		return true;
	case SQLCLASS_READ:
		return true;
	case SQLCLASS_TXN:
		return smp->begin != NULL;
	default:
		return false;
	}
}

/* Copy one extended-protocol message; false when the copy was given up. */
static bool copy_extended(struct shadow_sample *smp, struct client *c, uint8_t type,
			  const uint8_t *body, size_t len)
{
	struct shadow_req *r = req_current(smp, true);
	struct pq_cursor cur;
	struct sqlclass_read cls;
	const char *name, *query;
	bool skip;

	if (r == NULL) {
		too_large(smp);
		return false;
	}
	pq_cursor_init(&cur, body, len);
	switch (type) {
	case 'P':
		name = pq_get_str(&cur);
		query = pq_get_str(&cur);
		if (cur.failed || !judge_statement(smp, query, &skip, &cls)) {
			abandon(smp, "a statement that is not a read");
			return false;
		}
		smp->skipping = skip;
		if (skip)
			return true;
		free(smp->unnamed);
		smp->unnamed_len = len - (size_t)((const uint8_t *)query - body);
		smp->unnamed = malloc(smp->unnamed_len);
		if (smp->unnamed == NULL) {
			abandon(smp, "out of memory");
			return false;
		}
		memcpy(smp->unnamed, query, smp->unnamed_len);
		(void)name;
		return true;
	case 'B': {
		const char *portal = pq_get_str(&cur), *stmt = pq_get_str(&cur);
		const char *text = NULL;

		if (cur.failed) {
			abandon(smp, "a malformed Bind");
			return false;
		}
		if (stmt[0] != '\0') {
			const struct ps_entry *e = ps_map_find(&c->sess.stmts, stmt);

			if (e == NULL || memchr(e->stmt->body, '\0', e->stmt->len) == NULL ||
			    !judge_statement(smp, (const char *)e->stmt->body, &skip, &cls)) {
				abandon(smp, "a statement that is not a read, or not known");
				return false;
			}
			smp->skipping = skip;
		}
		if (smp->skipping)
			return true;
		if (!use_statement(smp, c, r, stmt, &text)) {
			abandon(smp, "a statement prepared before the transaction");
			return false;
		}
		free(smp->bound);
		smp->bound = strdup(text);
		snprintf(smp->portal, sizeof(smp->portal), "%s", portal);
		pq_msg_begin(&r->msgs, 'B');
		pq_put_u8(&r->msgs, 0);
		pq_put_u8(&r->msgs, 0);
		pq_put_bytes(&r->msgs, cur.p, pq_cursor_left(&cur));
		pq_msg_end(&r->msgs);
		if (smp->bound == NULL) {
			abandon(smp, "out of memory");
			return false;
		}
		return true;
	}
	case 'D': {
		uint8_t what = pq_get_u8(&cur);
		const char *target = pq_get_str(&cur);

		if (smp->skipping)
			return true;
		if (cur.failed || (what == 'S' && !use_statement(smp, c, r, target, &query)) ||
		    (what == 'P' && strcmp(target, smp->portal) != 0)) {
			abandon(smp, "a Describe of something the replay does not have");
			return false;
		}
		pq_msg_begin(&r->msgs, 'D');
		pq_put_u8(&r->msgs, what);
		pq_put_u8(&r->msgs, 0);
		pq_msg_end(&r->msgs);
		return true;
	}
	case 'E': {
		const char *portal = pq_get_str(&cur);
		uint32_t max_rows = pq_get_u32(&cur);

		if (smp->skipping)
			return true;
		if (cur.failed || strcmp(portal, smp->portal) != 0 || smp->bound == NULL) {
			abandon(smp, "an Execute of another portal");
			return false;
		}
		sqlclass_read((const uint8_t *)smp->bound, strlen(smp->bound), &cls);
		req_statement(r, smp->bound, strlen(smp->bound), &cls);
		pq_msg_begin(&r->msgs, 'E');
		pq_put_u8(&r->msgs, 0);
		pq_put_u32(&r->msgs, max_rows);
		pq_msg_end(&r->msgs);
		return true;
	}
	case 'S':
		if (r->msgs.len > 0) {
			pq_msg_begin(&r->msgs, 'S');
			pq_msg_end(&r->msgs);
		}
		r->open = false;
		/* the end of the transaction, or a read outside one: this was all */
		if (smp->ending || smp->begin == NULL)
			smp->closed = true;
		return true;
	default:
		/* Close, Flush: the replay needs neither */
		return true;
	}
}

/* Copy a simple Query; false when the copy was given up. */
static bool copy_query(struct shadow_sample *smp, const uint8_t *body, size_t len)
{
	const char *sql = (const char *)body;
	size_t n = strnlen(sql, len);
	struct sqlclass_read cls;
	struct shadow_req *r;

	if (smp->nreqs > 0 && smp->reqs[smp->nreqs - 1].open) {
		abandon(smp, "a Query inside an extended-protocol run");
		return false;
	}
	r = req_current(smp, false);
	if (r == NULL) {
		too_large(smp);
		return false;
	}
	sqlclass_read(body, n, &cls);
	if (smp->nreqs == 1 && cls.kind == SQLCLASS_BEGIN_RO) {
		/* the BEGIN opens the replay; what follows it in the same query is compared */
		smp->begin = strndup(sql, cls.rest);
		if (smp->begin == NULL) {
			abandon(smp, "out of memory");
			return false;
		}
		if (cls.rest < n) {
			struct sqlclass_read rest;

			sqlclass_read(body + cls.rest, n - cls.rest, &rest);
			req_statement(r, sql + cls.rest, n - cls.rest, &rest);
			pq_msg_begin(&r->msgs, 'Q');
			pq_put_bytes(&r->msgs, sql + cls.rest, n - cls.rest);
			pq_put_u8(&r->msgs, 0);
			pq_msg_end(&r->msgs);
		}
		return true;
	}
	if (cls.kind == SQLCLASS_END && smp->begin) {
		smp->closed = true;
		return true;
	}
	if (cls.kind != SQLCLASS_READ && !(cls.kind == SQLCLASS_TXN && smp->begin)) {
		abandon(smp, "a statement that is not a read");
		return false;
	}
	req_statement(r, sql, n, &cls);
	pq_msg_begin(&r->msgs, 'Q');
	pq_put_bytes(&r->msgs, sql, n);
	pq_put_u8(&r->msgs, 0);
	pq_msg_end(&r->msgs);
	if (smp->begin == NULL)
		smp->closed = true;
	return true;
}

/* Copy one message of the sampled transaction; false when the copy ended. */
static bool shadow_copy(struct shadow_sample *smp, struct client *c, uint8_t type,
			const uint8_t *msg, uint32_t len)
{
	const uint8_t *body = msg + PQ_HEADER_SIZE;
	size_t blen = len - 4;
	bool ok;

	switch (type) {
	case 'Q':
		ok = copy_query(smp, body, blen);
		break;
	case 'P':
	case 'B':
	case 'D':
	case 'E':
	case 'S':
	case 'C':
	case 'H':
		ok = copy_extended(smp, c, type, body, blen);
		break;
	default:
		abandon(smp, "a message the replay cannot send (a function call, COPY)");
		return false;
	}
	if (!ok)
		return false;
	if (smp->dropping) {
		/* the first statement it runs is counted; a Parse alone counts as nothing */
		for (unsigned i = 0; i < smp->nreqs; i++) {
			if (smp->reqs[i].compared) {
				for (unsigned j = i + 1; j < smp->nreqs; j++)
					smp->reqs[j].compared = false;
				shadow_sample_done(smp, SHADOW_DROPPED, "the queue is full");
				return false;
			}
		}
		if (smp->closed) {
			shadow_sample_free(smp);
			return false;
		}
	}
	smp->bytes = 0;
	for (unsigned i = 0; i < smp->nreqs; i++)
		smp->bytes += smp->reqs[i].msgs.len + smp->reqs[i].text.len;
	if (smp->bytes > SHADOW_TXN_BYTES_MAX) {
		too_large(smp);
		return false;
	}
	for (unsigned i = 0; i < smp->nreqs; i++) {
		if (smp->reqs[i].msgs.failed || smp->reqs[i].text.failed) {
			abandon(smp, "out of memory");
			return false;
		}
	}
	return true;
}

/* ---- the draw ---- */

/* The text of the statement a transaction's first message runs, or NULL. */
static const char *first_statement(struct client *c, uint8_t type, const uint8_t *msg, uint32_t len)
{
	const uint8_t *body = msg + PQ_HEADER_SIZE;
	struct pq_cursor cur;

	pq_cursor_init(&cur, body, len - 4);
	if (type == 'Q') {
		const char *q = pq_get_str(&cur);

		return cur.failed ? NULL : q;
	}
	if (type == 'P') {
		(void)pq_get_str(&cur);
		{
			const char *q = pq_get_str(&cur);

			return cur.failed ? NULL : q;
		}
	}
	if (type == 'B') {
		const struct ps_entry *e;

		(void)pq_get_str(&cur);
		e = ps_map_find(&c->sess.stmts, pq_get_str(&cur));
		if (cur.failed || e == NULL || memchr(e->stmt->body, '\0', e->stmt->len) == NULL)
			return NULL;
		return (const char *)e->stmt->body;
	}
	return NULL;
}

/*
 * Whether this first message of a transaction starts a sample: drawn,
 * a read or a read-only transaction, not one that wrote before, and room
 * in the queue (a full queue counts the transaction as dropped).
 */
static void shadow_start(struct client *c, struct shadow_db *sdb, uint8_t type, const uint8_t *msg,
			 uint32_t len)
{
	const char *sql = first_statement(c, type, msg, len);
	struct sqlclass_read cls;
	struct fingerprint fp;
	struct shadow_stmt *st;
	struct shadow_sample *smp;
	struct pq_buf settings;
	const char *counted;

	if (sql == NULL)
		return;
	sqlclass_read((const uint8_t *)sql, strlen(sql), &cls);
	if (cls.kind != SQLCLASS_READ && cls.kind != SQLCLASS_BEGIN_RO)
		return;
	/* the statement it is counted under: the first one compared, or the BEGIN */
	counted = cls.kind == SQLCLASS_BEGIN_RO && cls.rest < strlen(sql) ? sql + cls.rest : sql;
	fingerprint_sql((const uint8_t *)counted, strlen(counted), &fp);
	if (cls.kind == SQLCLASS_READ) {
		st = shadow_stmt_find(sdb, &fp);
		if (st && st->writes)
			return; /* a read-only replay once showed that it writes */
	}
	smp = shadow_sample_new(sdb, c);
	if (smp == NULL)
		return;
	if (sdb->held > (c->db->cfg ? c->db->cfg->d.shadow_queue : 1000)) {
		/* full: the first statement it runs counts as dropped (shadow_copy) */
		smp->dropping = true;
		sdb->held--;
	}
	pq_buf_init(&settings);
	session_put_settings(&settings, session_st(&c->sess));
	pq_put_u8(&settings, 0);
	smp->settings = settings.failed ? NULL : strdup((const char *)settings.data);
	pq_buf_free(&settings);
	if (smp->settings == NULL) {
		shadow_sample_free(smp);
		return;
	}
	c->shadow = smp;
	(void)shadow_copy(smp, c, type, msg, len);
}

/* ---- the client's direction ---- */

/*
 * Whether a transaction that starts with this message may be sampled: not
 * in a session that holds what a replay connection lacks (state pgcutover
 * has not read yet, state that cannot move, temporary objects).
 */
static bool shadow_candidate(const struct client *c, const struct server *s, uint8_t type)
{
	const struct database *db = c->db;

	return db->shadow_rate > 0 && db->route == SIDE_SOURCE && s->side == SIDE_SOURCE &&
	       (type == 'Q' || type == 'P' || type == 'B') && server_at_boundary(s) &&
	       s->internal_cb == NULL && !c->sess.dirty && c->sess.blocked == NULL &&
	       c->sess.untracked == NULL && !ddl_client_has_temps(c);
}

enum relay_verdict shadow_on_header(struct client *c, struct server *s, struct evbuffer *in,
				    size_t off, size_t avail, uint8_t type, uint32_t len)
{
	static uint8_t scratch[SHADOW_TXN_BYTES_MAX];
	struct shadow_sample *smp = c->shadow;
	struct shadow_db *sdb = NULL;
	size_t want = (size_t)len + 1;
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v;
	const uint8_t *msg;

	if (smp == NULL) {
		if (!shadow_candidate(c, s, type))
			return RELAY_PASS;
		sdb = shadow_db_get(c->db);
		if (sdb == NULL || !shadow_draw(sdb, c->db->shadow_rate))
			return RELAY_PASS;
	} else if (smp->closed) {
		return RELAY_PASS; /* its answers are on their way; nothing more is copied */
	}
	if (want > SHADOW_TXN_BYTES_MAX || want > c->sock.in_limit) {
		if (smp)
			too_large(smp);
		return RELAY_PASS;
	}
	if (avail < want) {
		/* a message to copy comes whole: the server could not run it before anyway */
		c->stop = STOP_NEED_MORE;
		return RELAY_STOP;
	}
	evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
	if (evbuffer_peek(in, (ev_ssize_t)want, &pos, &v, 1) >= 1 && v.iov_len >= want) {
		msg = v.iov_base;
	} else {
		evbuffer_copyout_from(in, &pos, scratch, want);
		msg = scratch;
	}
	if (smp == NULL)
		shadow_start(c, sdb, type, msg, len);
	else
		(void)shadow_copy(smp, c, type, msg, len);
	return RELAY_PASS;
}

/* ---- the server's direction ---- */

/* A request's answers are complete: its digest, and maybe the end of the copy. */
static bool answered(struct shadow_sample *smp, char status)
{
	struct shadow_req *r;

	if (smp->answered >= smp->nreqs || smp->reqs[smp->answered].open) {
		abandon(smp, "answers the copy cannot place");
		return false;
	}
	r = &smp->reqs[smp->answered++];
	pqdigest_take(&smp->dig, &r->src);
	r->source_us = rt_now_us() - r->sent_us;
	if (smp->closed && smp->answered == smp->nreqs) {
		shadow_sample_captured(smp);
		return false;
	}
	if (smp->begin && status == 'I') {
		abandon(smp, "the transaction ended before its COMMIT (its BEGIN failed?)");
		return false;
	}
	return true;
}

void shadow_observe(struct client *c, struct evbuffer *out, size_t moved)
{
	struct shadow_sample *smp = c->shadow;
	size_t total = evbuffer_get_length(out), done = 0;
	struct evbuffer_ptr pos;

	if (smp == NULL || moved > total)
		return;
	evbuffer_ptr_set(out, &pos, total - moved, EVBUFFER_PTR_SET);
	while (done < moved && c->shadow == smp) {
		struct evbuffer_iovec v[4];
		int n = evbuffer_peek(out, (ev_ssize_t)(moved - done), &pos, v, 4);

		if (n <= 0)
			break;
		for (int i = 0; i < n && i < 4 && done < moved && c->shadow == smp; i++) {
			const uint8_t *p = v[i].iov_base;
			size_t left = v[i].iov_len < moved - done ? v[i].iov_len : moved - done;

			while (left > 0 && c->shadow == smp) {
				bool ready = false;
				char status = 0;
				size_t used = pqdigest_feed(&smp->dig, p, left, &ready, &status);

				if (smp->dig.failed) {
					abandon(smp, "answers the digest cannot read");
					return;
				}
				p += used;
				left -= used;
				done += used;
				if (ready && !answered(smp, status))
					return;
			}
		}
		evbuffer_ptr_set(out, &pos, total - moved + done, EVBUFFER_PTR_SET);
	}
}

void shadow_client_gone(struct client *c)
{
	if (c->shadow)
		abandon(c->shadow, "its client left");
}

/*
 * ddl.c - schema changes seen during the move (see ddl.h): the check of
 * each Query and Parse, the log behind SHOW DDL, and the rewrite of a
 * refused message into a DO block that raises 55000.
 *
 * The check costs one look at the first words of a statement in the common
 * case (sqlclass_ddl_maybe); only a text that may hold a schema change
 * (its first word is one, a DO, a SELECT with INTO, or more statements) is
 * scanned whole.
 */
#include "proxy/ddl.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlclass.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

/* ---- the log ---- */

/* A ring of the latest DDL_LOG_MAX entries: log[(first + i) % DDL_LOG_MAX]. */
static struct ddl_entry *ddl_log[DDL_LOG_MAX];
static size_t log_first, log_count;

size_t ddl_log_count(void)
{
	return log_count;
}

const struct ddl_entry *ddl_log_get(size_t i)
{
	return i < log_count ? ddl_log[(log_first + i) % DDL_LOG_MAX] : NULL;
}

void ddl_log_free(void)
{
	for (size_t i = 0; i < DDL_LOG_MAX; i++) {
		free(ddl_log[i]);
		ddl_log[i] = NULL;
	}
	log_first = log_count = 0;
}

/* A new entry at the end of the ring (the oldest one reused when full); NULL when out of memory. */
static struct ddl_entry *log_append(void)
{
	size_t slot;

	if (log_count == DDL_LOG_MAX) {
		slot = log_first;
		log_first = (log_first + 1) % DDL_LOG_MAX;
	} else {
		slot = (log_first + log_count) % DDL_LOG_MAX;
		log_count++;
	}
	if (ddl_log[slot] == NULL && (ddl_log[slot] = malloc(sizeof(struct ddl_entry))) == NULL) {
		/* forget the slot: the ring stays consistent */
		log_count--;
		return NULL;
	}
	memset(ddl_log[slot], 0, sizeof(struct ddl_entry));
	return ddl_log[slot];
}

/* ---- a session's temporary objects ---- */

static struct ddl_client *ddl_books(struct client *c)
{
	if (c->ddl == NULL)
		c->ddl = calloc(1, sizeof(*c->ddl));
	return c->ddl;
}

void ddl_client_free(struct client *c)
{
	free(c->ddl);
	c->ddl = NULL;
}

bool ddl_client_has_temps(const struct client *c)
{
	return c->ddl != NULL && c->ddl->ntemps > 0;
}

static bool temp_known(void *arg, const char *name)
{
	const struct client *c = arg;

	if (c->ddl == NULL)
		return false;
	for (unsigned i = 0; i < c->ddl->ntemps; i++)
		if (strcmp(c->ddl->temps[i], name) == 0)
			return true;
	return false;
}

static void temp_created(void *arg, const char *name)
{
	struct client *c = arg;
	struct ddl_client *d;

	if (temp_known(arg, name) || (d = ddl_books(c)) == NULL)
		return;
	snprintf(d->temps[d->next], sizeof(d->temps[0]), "%s", name);
	d->next = (d->next + 1) % DDL_TEMPS_MAX;
	if (d->ntemps < DDL_TEMPS_MAX)
		d->ntemps++;
}

/* ---- the check ---- */

/* What one check found, for its callback. */
struct ddl_found {
	struct client *c;
	const uint8_t *sql;
	bool block;     /* refused, not only recorded */
	unsigned count; /* schema changes found */
};

static void ddl_record(void *arg, const struct sqlclass_ddl *d)
{
	struct ddl_found *f = arg;
	struct client *c = f->c;
	struct ddl_entry *e;
	size_t n = d->len;

	f->count++;
	if (f->block && f->count == 1 && ddl_books(c))
		snprintf(c->ddl->what, sizeof(c->ddl->what), "%s", d->what);
	if (f->block)
		c->db->ddl_blocked++;
	else
		c->db->ddl_passed++;
	log_info("client %s: database %s, user %s: %s %s (%.*s%s)", c->addr, c->db->name, c->user,
		 f->block ? "refused" : "schema change", d->what, n > 200 ? 200 : (int)n,
		 (const char *)f->sql + d->start, n > 200 ? "..." : "");
	e = log_append();
	if (e == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &e->when);
	snprintf(e->database, sizeof(e->database), "%s", c->db->name);
	snprintf(e->user, sizeof(e->user), "%s", c->user);
	snprintf(e->what, sizeof(e->what), "%s", d->what);
	if (n > DDL_STATEMENT_MAX) {
		memcpy(e->statement, f->sql + d->start, DDL_STATEMENT_MAX);
		memcpy(e->statement + DDL_STATEMENT_MAX, "...", 4);
	} else {
		memcpy(e->statement, f->sql + d->start, n);
		e->statement[n] = '\0';
	}
	e->blocked = f->block;
}

/* Whether schema changes of c's database are refused now. */
static bool ddl_blocking(const struct client *c)
{
	return c->db->cfg && c->db->cfg->d.ddl == DDL_BLOCK && c->db->route == SIDE_SOURCE;
}

enum relay_verdict ddl_on_header(struct client *c, struct evbuffer *in, size_t off, size_t avail,
				 uint8_t type, uint32_t len)
{
	static uint8_t scratch[DDL_SCAN_MAX];
	size_t limit = c->sock.in_limit < DDL_SCAN_MAX ? c->sock.in_limit : DDL_SCAN_MAX;
	size_t want = (size_t)len + 1 < limit ? (size_t)len + 1 : limit;
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v;
	const uint8_t *msg, *sql, *end;
	struct sqlclass_temps temps = {temp_known, temp_created, c};
	struct ddl_found f;

	if (avail < want) {
		c->stop = STOP_NEED_MORE;
		return RELAY_STOP;
	}
	/* the message in place when it is in one piece (nearly always), else copied */
	evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
	if (evbuffer_peek(in, (ev_ssize_t)want, &pos, &v, 1) >= 1 && v.iov_len >= want) {
		msg = v.iov_base;
	} else {
		evbuffer_copyout_from(in, &pos, scratch, want);
		msg = scratch;
	}
	sql = msg + PQ_HEADER_SIZE;
	end = msg + want;
	if (type == 'P') {
		const uint8_t *nul = memchr(sql, '\0', (size_t)(end - sql));

		if (nul == NULL)
			return RELAY_PASS; /* a name longer than what is looked at */
		sql = nul + 1;
	}
	end = sql + strnlen((const char *)sql, (size_t)(end - sql));
	if (!sqlclass_ddl_maybe(sql, (size_t)(end - sql)))
		return RELAY_PASS;
	memset(&f, 0, sizeof(f));
	f.c = c;
	f.sql = sql;
	f.block = ddl_blocking(c);
	(void)sqlclass_find_ddl(sql, (size_t)(end - sql), &temps, ddl_record, &f);
	if (f.count == 0 || !f.block)
		return RELAY_PASS;
	c->stop = STOP_DDL;
	return RELAY_STOP;
}

/* ---- the refusal ---- */

/* A name as it goes into the message: no '$', which would end the DO body. */
static void ddl_plain(char *out, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		out[i] = s[i] == '$' ? '_' : s[i];
	out[i] = '\0';
}

/* The DO block that raises the refusal, into b (a NUL-terminated string). */
static void ddl_refusal_sql(struct pq_buf *b, const struct client *c)
{
	char db[80], what[80], text[600];

	ddl_plain(db, sizeof(db), c->db->name);
	ddl_plain(what, sizeof(what), c->ddl ? c->ddl->what : "schema change");
	pq_put_bytes(b,
		     "DO $pgcutover$BEGIN RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = ", 71);
	snprintf(text, sizeof(text),
		 "%s refused: schema changes are held on database \"%s\" until its move to the target is finished",
		 what, db);
	sqlquote_put_literal(b, text);
	pq_put_bytes(b, ", DETAIL = ", 11);
	sqlquote_put_literal(b,
			     "Logical replication does not carry schema changes: pgcutover refuses them "
			     "(ddl = block) while the database is routed to its source, so that the "
			     "target's schema does not fall behind.");
	pq_put_bytes(b, ", HINT = ", 9);
	snprintf(text, sizeof(text),
		 "Finish the move (SWITCH %s) or abort it first, or set ddl = pass and apply the change "
		 "on the source and on the target by hand (docs/cutover.md, \"Schema changes during "
		 "the move\").",
		 db);
	sqlquote_put_literal(b, text);
	pq_put_bytes(b, "; END$pgcutover$", 16);
	pq_put_u8(b, 0);
}

bool ddl_refuse_head(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	uint8_t hdr[PQ_HEADER_SIZE], type;
	uint32_t len;
	struct pq_buf sql, b;
	uint8_t *msg = NULL;
	bool ok;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr) ||
	    pq_read_header(hdr, sizeof(hdr), &type, &len, UINT32_MAX) != PQ_OK)
		return true;
	if (evbuffer_get_length(in) < (size_t)len + 1) {
		/* longer than what is held at once: it cannot be replaced, nothing of it ran */
		client_disconnect(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				  "%s refused: schema changes are held on database \"%s\" until its move to the target is finished (the query is too long to be refused in place: the connection is closed)",
				  c->ddl ? c->ddl->what : "schema change", c->db->name);
		return false;
	}
	pq_buf_init(&sql);
	pq_buf_init(&b);
	ddl_refusal_sql(&sql, c);
	if (type == 'Q') {
		if (!sql.failed)
			pq_build_query(&b, (const char *)sql.data);
	} else {
		/* a Parse keeps its name and parameter types: the client's Bind still fits */
		struct pq_cursor cur;
		const char *name;
		const uint8_t *types;
		int16_t ntypes;

		msg = malloc((size_t)len + 1);
		if (msg == NULL ||
		    evbuffer_copyout(in, msg, (size_t)len + 1) != (ev_ssize_t)len + 1) {
			b.failed = true;
		} else {
			pq_cursor_init(&cur, msg + PQ_HEADER_SIZE, len - 4);
			name = pq_get_str(&cur);
			(void)pq_get_str(&cur);
			ntypes = (int16_t)pq_get_u16(&cur);
			types = ntypes > 0 ? pq_get_bytes(&cur, (size_t)ntypes * 4) : NULL;
			if (cur.failed || ntypes < 0) {
				free(msg);
				pq_buf_free(&sql);
				client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
						  "invalid Parse message format");
				return false;
			}
			pq_msg_begin(&b, 'P');
			pq_put_str(&b, name);
			pq_put_bytes(&b, sql.data, sql.len);
			pq_put_u16(&b, (uint16_t)ntypes);
			if (ntypes > 0)
				pq_put_bytes(&b, types, (size_t)ntypes * 4);
			pq_msg_end(&b);
		}
	}
	ok = !sql.failed && !b.failed;
	if (ok) {
		evbuffer_drain(in, (size_t)len + 1);
		ok = evbuffer_prepend(in, b.data, b.len) == 0;
	}
	free(msg);
	pq_buf_free(&sql);
	pq_buf_free(&b);
	if (!ok)
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return ok;
}

/*
 * listen_client.c - a transaction-pooled client's LISTENs (see
 * listen_client.h): notes on its statements and on its server's answers
 * (which UNLISTENs count), the fence before a listening client's
 * transaction, and its bounded queue of notifications.  The hand-over at
 * the end of a transaction is listen_flow.c's.
 */
#include "proxy/listen_client.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/listen.h"
#include "proxy/listen_sql.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

size_t listen_queue_bytes(void)
{
	return (size_t)rt.cfg->conn_buffer_size * 4;
}

bool listen_txn_pooled(const struct client *c)
{
	return c->db && c->db->pool_mode == POOL_TRANSACTION;
}

struct listen_sub *listen_sub_get(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	if (ls)
		return ls;
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return NULL;
	ls->c = c;
	list_init(&ls->cover_node);
	c->lsub = ls;
	return ls;
}

/* The channel 'name' when the client listens on it through the listener. */
struct listen_chan *listen_sub_find(const struct listen_sub *ls, const char *name)
{
	for (uint32_t i = 0; i < ls->n; i++)
		if (strcmp(ls->chans[i]->name, name) == 0)
			return ls->chans[i];
	return NULL;
}

/* Append a channel to a growing array; false when out of memory. */
bool listen_chan_push(struct listen_chan ***v, uint32_t *n, uint32_t *cap, struct listen_chan *ch)
{
	if (*n == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 4;
		struct listen_chan **nv = realloc(*v, ncap * sizeof(*nv));

		if (nv == NULL)
			return false;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = ch;
	return true;
}

void listen_unl_clear(struct listen_sub *ls)
{
	for (uint32_t i = 0; i < ls->nunl; i++)
		free(ls->unl[i]);
	ls->nunl = 0;
	ls->unl_all = false;
}

/* ---- notes on the client's statements ---- */

/* One statement of a request that ends with Sync number 'batch'. */
static void note_one(struct client *c, uint32_t batch, enum listen_stmt kind, const char *name)
{
	struct listen_sub *ls = c->lsub;

	switch (kind) {
	case LS_LISTEN:
		ls = listen_sub_get(c);
		if (ls == NULL)
			return; /* the capture still finds it; its LISTEN then returns a little early */
		ls->saw_listen = true;
		c->sess.dirty = true; /* its server is asked what it LISTENs */
		break;
	case LS_NOTIFY:
		if (ls)
			ls->saw_notify = true;
		break;
	case LS_UNLISTEN:
	case LS_UNLISTEN_ALL:
		if (ls == NULL || ls->n == 0)
			return; /* nothing of its own at the listener: the server sees it all */
		if (ls->npend == ls->pcap) {
			uint32_t cap = ls->pcap ? ls->pcap * 2 : 4;
			struct listen_pending *p = realloc(ls->pend, cap * sizeof(*p));

			if (p == NULL)
				return;
			ls->pend = p;
			ls->pcap = cap;
		}
		ls->pend[ls->npend].batch = batch;
		ls->pend[ls->npend].name = kind == LS_UNLISTEN ? strdup(name) : NULL;
		if (kind == LS_UNLISTEN && ls->pend[ls->npend].name == NULL)
			return;
		ls->npend++;
		break;
	default:
		break;
	}
}

struct note_ctx {
	struct client *c;
	uint32_t batch;
};

static void note_cb(void *arg, enum listen_stmt kind, const char *name)
{
	struct note_ctx *n = arg;

	note_one(n->c, n->batch, kind, name);
}

enum relay_verdict listen_client_note_query(struct client *c, struct server *s, struct evbuffer *in,
					    size_t off, size_t avail, uint32_t len,
					    const uint8_t *peek, size_t npeek)
{
	struct note_ctx ctx = {c, s->syncs_sent + 1};
	size_t body = (size_t)len - 4;
	char name[LISTEN_NAME_MAX + 1];

	if (!listen_txn_pooled(c))
		return RELAY_PASS;
	if (c->lsub && c->lsub->n > 0 && body <= LISTEN_SCAN_MAX) {
		/* a listening client: every statement of the query counts */
		if (avail >= (size_t)len + 1) {
			uint8_t *buf = malloc(body);
			struct evbuffer_ptr pos;

			if (buf) {
				evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
				evbuffer_copyout_from(in, &pos, buf, body);
				listen_sql_scan(buf, body, note_cb, &ctx);
				free(buf);
				return RELAY_PASS;
			}
		} else if ((size_t)len + 1 <= c->sock.in_limit) {
			return RELAY_STOP; /* wait for the rest of it */
		}
	}
	/* the first statement only (a query too large to look at whole) */
	note_one(c, ctx.batch, listen_sql_classify(peek, npeek, name, sizeof(name)), name);
	return RELAY_PASS;
}

/* Bytes of a Parse looked at: its (empty) name and the statement's first words. */
#define LISTEN_PARSE_PEEK (1 + 256)

enum relay_verdict listen_client_note_parse(struct client *c, struct server *s, struct evbuffer *in,
					    size_t off, size_t avail, uint32_t len)
{
	uint8_t buf[LISTEN_PARSE_PEEK];
	size_t want = (size_t)len - 4 < sizeof(buf) ? (size_t)len - 4 : sizeof(buf);
	struct evbuffer_ptr pos;
	const uint8_t *nul;

	if (!listen_txn_pooled(c))
		return RELAY_PASS;
	if (avail < PQ_HEADER_SIZE + want)
		return RELAY_STOP;
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, buf, want);
	nul = memchr(buf, '\0', want);
	if (nul == NULL || nul + 1 >= buf + want)
		return RELAY_PASS;
	nul++;
	listen_client_note_stmt(c, s, nul, strnlen((const char *)nul, (size_t)(buf + want - nul)));
	return RELAY_PASS;
}

void listen_client_note_stmt(struct client *c, struct server *s, const uint8_t *sql, size_t len)
{
	char name[LISTEN_NAME_MAX + 1];

	if (!listen_txn_pooled(c))
		return;
	note_one(c, s->syncs_sent + 1, listen_sql_classify(sql, len, name, sizeof(name)), name);
}

/* ---- what the server answers ---- */

/* An UNLISTEN whose transaction ended well: applied at the next hand-over. */
static void settle(struct listen_sub *ls, char *name)
{
	if (name == NULL) {
		listen_unl_clear(ls);
		ls->unl_all = true;
		return;
	}
	if (ls->unl_all) {
		free(name);
		return;
	}
	for (uint32_t i = 0; i < ls->nunl; i++) {
		if (strcmp(ls->unl[i], name) == 0) {
			free(name);
			return;
		}
	}
	if (ls->nunl == ls->ucap) {
		uint32_t cap = ls->ucap ? ls->ucap * 2 : 4;
		char **v = realloc(ls->unl, cap * sizeof(*v));

		if (v == NULL) {
			free(name);
			return;
		}
		ls->unl = v;
		ls->ucap = cap;
	}
	ls->unl[ls->nunl++] = name;
}

void listen_client_ready(struct client *c, const struct server *s, char status)
{
	struct listen_sub *ls = c->lsub;
	uint32_t keep = 0;

	if (ls == NULL || status != 'I')
		return;
	for (uint32_t i = 0; i < ls->npend; i++) {
		struct listen_pending *p = &ls->pend[i];

		if ((int32_t)(p->batch - s->syncs_done) > 0) {
			ls->pend[keep++] = *p; /* a later request, in the same pipeline */
		} else if (ls->doomed) {
			free(p->name);
		} else {
			settle(ls, p->name);
		}
	}
	ls->npend = keep;
	ls->doomed = false;
}

void listen_client_error(struct client *c)
{
	if (c->lsub)
		c->lsub->doomed = true;
}

enum relay_verdict listen_client_tag(struct client *c, struct evbuffer *in, size_t off,
				     size_t avail, uint32_t len)
{
	static const char rollback[] = "ROLLBACK"; /* also ROLLBACK TO, and COMMIT of a failed one */
	uint8_t tag[sizeof(rollback)];
	struct evbuffer_ptr pos;

	if (c->lsub == NULL || c->lsub->npend == 0 || len - 4 != sizeof(rollback))
		return RELAY_PASS;
	if (avail < PQ_HEADER_SIZE + sizeof(rollback))
		return RELAY_STOP;
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, tag, sizeof(tag));
	if (memcmp(tag, rollback, sizeof(rollback)) == 0)
		c->lsub->doomed = true;
	return RELAY_PASS;
}

enum relay_verdict listen_client_relay_a(struct server *s, struct client *c, struct evbuffer *in,
					 size_t off, size_t avail, uint32_t len)
{
	struct listen_sub *ls = c->lsub;
	uint8_t buf[4 + LISTEN_NAME_MAX + 2];
	size_t want;
	struct evbuffer_ptr pos;

	if (ls == NULL || ls->n == 0 || !listen_txn_pooled(c) || len < 10)
		return RELAY_PASS;
	want = (size_t)len - 4 < sizeof(buf) ? (size_t)len - 4 : sizeof(buf);
	if (avail < PQ_HEADER_SIZE + want)
		return RELAY_STOP;
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, buf, want);
	if (memchr(buf + 4, '\0', want - 4) == NULL ||
	    listen_sub_find(ls, (const char *)buf + 4) == NULL)
		return RELAY_PASS;
	/* the listener delivers this one too: drop the server's copy (all of it must be here) */
	if (avail < (size_t)len + 1)
		return (size_t)len + 1 <= s->sock.in_limit ? RELAY_STOP : RELAY_PASS;
	s->answer = malloc(1);
	if (s->answer == NULL)
		return RELAY_PASS;
	s->answer_len = 0;
	s->answer_replaces = (size_t)len + 1;
	s->swallow = true;
	return RELAY_STOP;
}

bool listen_client_at_boundary(struct client *c)
{
	struct listen_sub *ls = c->lsub;
	bool hold;

	if (ls == NULL || !listen_txn_pooled(c))
		return false;
	hold = ls->saw_listen || (ls->n > 0 && (ls->unl_all || ls->nunl > 0 || ls->saw_notify));
	if (!hold) {
		ls->saw_notify = false;
		listen_unl_clear(ls);
	}
	return hold;
}

/* ---- the fence ---- */

char *listen_client_fence(struct client *c, struct server *s)
{
	struct listen_sub *ls = c->lsub;
	uint64_t seq;
	char *sql;

	if (ls == NULL || ls->n == 0 || ls->l == NULL || !listen_txn_pooled(c) ||
	    !listen_ready(ls->l))
		return NULL;
	if (s->mark_owner == c->sess.id) {
		/* nobody else's transaction ran there since its last marker */
		listen_open(ls->l, s, c);
		return NULL;
	}
	sql = listen_mark_sql(ls->l, s, NULL, false, false, &seq);
	if (sql == NULL)
		return NULL;
	ls->fence_pending = true;
	ls->fence_seq = seq;
	/* what the server commits after the fence is this client's */
	listen_open(ls->l, s, c);
	return sql;
}

void listen_client_fence_done(struct client *c, struct server *s, bool ok)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || !ls->fence_pending)
		return;
	ls->fence_pending = false;
	if (ok)
		s->mark_owner = c->sess.id; /* what it commits from now on is this client's */
	else
		listen_mark_cancel(ls->l, ls->fence_seq);
}

/* ---- delivery ---- */

/* The client's output ends with a whole message: a notification may go after it. */
static bool at_message_boundary(const struct client *c)
{
	return c->server == NULL || c->server->msg_left == 0;
}

static bool deliverable(const struct client *c)
{
	return c->state == CL_IDLE || c->state == CL_WAIT || c->state == CL_ACTIVE;
}

/* Queue a notification in 'buf' (the queue, or the held ones); false when the client is full. */
static bool enqueue(struct listen_sub *ls, struct evbuffer **buf, const uint8_t *msg, size_t n)
{
	size_t waiting = ls->qbytes + ls->hbytes;

	if (waiting == 0)
		ls->progress_us = rt_now_us(); /* a backlog begins */
	if (waiting + n > (size_t)rt.cfg->conn_buffer_size * LISTEN_QUEUE_HARD ||
	    ls->qcount + ls->hcount >= LISTEN_QUEUE_COUNT ||
	    (waiting + n > listen_queue_bytes() &&
	     rt_now_us() - ls->progress_us > (uint64_t)LISTEN_STALL_MS * 1000))
		return false;
	if (*buf == NULL && (*buf = evbuffer_new()) == NULL)
		return false;
	if (evbuffer_add(*buf, msg, n) != 0)
		return false;
	if (buf == &ls->held) {
		ls->hbytes += n;
		ls->hcount++;
	} else {
		ls->qbytes += n;
		ls->qcount++;
	}
	return true;
}

bool listen_client_deliver_now(struct client *c, const uint8_t *msg, size_t n)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || !deliverable(c))
		return true;
	if (ls->qbytes == 0 && at_message_boundary(c) &&
	    client_output_len(c) < (size_t)rt.cfg->conn_buffer_size) {
		if (!client_send(c, msg, n))
			return false;
		c->db->stats.bytes_out += n;
		return true;
	}
	return enqueue(ls, &ls->q, msg, n);
}

bool listen_client_deliver(struct client *c, const uint8_t *msg, size_t n)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || !deliverable(c))
		return true;
	/* after what its server still delivers from before the marker (listen_sub.hold_q) */
	if (ls->hold_q)
		return enqueue(ls, &ls->held, msg, n);
	return listen_client_deliver_now(c, msg, n);
}

void listen_client_release_held(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL)
		return;
	ls->hold_q = false;
	if (ls->hbytes > 0) {
		if (ls->q == NULL)
			ls->q = evbuffer_new();
		if (ls->q == NULL || evbuffer_add_buffer(ls->q, ls->held) != 0) {
			listen_client_overflow(c);
			return;
		}
		ls->qbytes += ls->hbytes;
		ls->qcount += ls->hcount;
		ls->hbytes = 0;
		ls->hcount = 0;
	}
	listen_client_flush(c);
}

void listen_client_flush(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	size_t limit = (size_t)rt.cfg->conn_buffer_size, moved = 0;
	struct evbuffer *out;

	if (ls == NULL || ls->qbytes == 0 || !deliverable(c) || !at_message_boundary(c))
		return;
	/* whole messages, while the output has room: it drains, then more follows */
	out = sock_out(&c->sock);
	while (ls->qbytes > 0 && evbuffer_get_length(out) < limit) {
		uint8_t hdr[PQ_HEADER_SIZE];
		size_t n;

		if (evbuffer_copyout(ls->q, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
			break;
		n = 1 + ((size_t)hdr[1] << 24 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 8 | hdr[4]);
		if (evbuffer_remove_buffer(ls->q, out, n) != (int)n)
			break;
		ls->qbytes -= n;
		ls->qcount--;
		moved += n;
	}
	if (moved == 0)
		return;
	c->db->stats.bytes_out += moved;
	sock_schedule_flush(&c->sock);
}

void listen_client_drained(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || ls->qbytes == 0)
		return;
	ls->progress_us = rt_now_us();
	listen_client_flush(c);
}

void listen_client_lost(struct client *c, const char *why)
{
	client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
			  "pgcutover cannot listen for the notifications of database \"%s\" any more: %s",
			  c->db->name, why);
}

void listen_client_overflow(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || !deliverable(c))
		return;
	c->db->stats.notify_overflows++;
	client_disconnect(c, SQLSTATE_OUT_OF_MEMORY,
			  "too many notifications are waiting for this client (%zu bytes in %u notifications, and it read nothing for %llu ms): it does not read them",
			  ls->qbytes, (unsigned)ls->qcount,
			  (unsigned long long)((rt_now_us() - ls->progress_us) / 1000));
}

void listen_client_gone(struct client *c)
{
	struct listen_sub *ls = c->lsub;
	struct listener *l;

	if (ls == NULL)
		return;
	l = ls->l;
	if (list_linked(&ls->cover_node))
		list_remove(&ls->cover_node);
	if (l) {
		listen_forget_client(l, c);
		for (uint32_t i = 0; i < ls->n; i++)
			listen_chan_unsubscribe(l, ls->chans[i], c);
		for (uint32_t i = 0; i < ls->nadds; i++)
			listen_chan_unref(l, ls->adds[i]);
		if (ls->fence_pending)
			ls->fence_pending =
				false; /* its query may still commit: the marker keeps its place */
	}
	for (uint32_t i = 0; i < ls->npend; i++)
		free(ls->pend[i].name);
	listen_unl_clear(ls);
	free(ls->pend);
	free(ls->unl);
	free(ls->chans);
	free(ls->adds);
	free(ls->fresh);
	free(ls->dels);
	free(ls->cleanup);
	if (ls->q)
		evbuffer_free(ls->q);
	if (ls->held)
		evbuffer_free(ls->held);
	c->lsub = NULL;
	free(ls);
	if (l)
		listen_sync(l);
}

uint32_t listen_client_nchannels(const struct client *c)
{
	return c->lsub ? c->lsub->n : 0;
}

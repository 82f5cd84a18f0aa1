/*
 * listen_flow.c - the hand-over of a transaction-pooled client's LISTENs at
 * the end of a transaction (see listen_client.h), as a short machine (enum
 * listen_step) driven by flow_run(): each step either waits for an event
 * (a query of its own on the client's server, the listener's LISTEN, the
 * server's copy of the marker, the marker's arrival at the listener) or
 * moves on.  Every event calls flow_run() again; 'busy' says a query runs,
 * so an event that arrives meanwhile (the marker at the listener, usually)
 * only records itself.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/client_session.h"
#include "proxy/core/log.h"
#include "proxy/listen.h"
#include "proxy/listen_client.h"
#include "proxy/listen_sql.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"
#include "proxy/server_internal.h"
#include "proxy/session.h"

static void flow_run(struct client *c);

static void flow_fail(struct client *c, const char *why)
{
	client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
			  "could not hand the LISTENs of database \"%s\" to pgcutover's listener: %s",
			  c->db->name, why);
}

/* Subscribe to what was added, unsubscribe from what was removed: the marker arrived. */
static void apply_changes(struct client *c)
{
	struct listen_sub *ls = c->lsub;
	uint32_t nadds = ls->nadds;

	for (uint32_t i = 0; i < ls->ndels; i++) {
		for (uint32_t j = 0; j < ls->n; j++) {
			if (ls->chans[j] == ls->dels[i]) {
				ls->chans[j] = ls->chans[--ls->n];
				listen_chan_unsubscribe(ls->l, ls->dels[i], c);
				break;
			}
		}
	}
	ls->ndels = 0;
	for (uint32_t i = 0; i < ls->nadds; i++) {
		struct listen_chan *ch = ls->adds[i];

		if (!listen_chan_subscribe(ch, c)) {
			log_warning("client %s: out of memory: it does not listen on \"%s\"",
				    c->addr, ch->name);
			listen_chan_unref(ls->l, ch);
			continue;
		}
		if (!listen_chan_push(&ls->chans, &ls->n, &ls->cap, ch)) {
			log_warning("client %s: out of memory: it does not listen on \"%s\"",
				    c->addr, ch->name);
			listen_chan_unsubscribe(ls->l, ch, c);
			continue;
		}
		/* its server may still deliver what came before the marker (listen_sub.fresh) */
		if (ls->cut && !ls->x_cut &&
		    !listen_chan_push(&ls->fresh, &ls->nfresh, &ls->cap_fresh, ch))
			ls->fresh_lost = true;
	}
	ls->nadds = 0;
	if (ls->l)
		listen_sync(ls->l);
	if (nadds > 0 || ls->n == 0)
		log_debug("client %s: listens on %u channels through pgcutover's listener", c->addr,
			  (unsigned)ls->n);
}

static bool rows_listen(const char *rows)
{
	for (const char *p = rows; p && *p;) {
		if (*p == 'L')
			return true;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/* Whether name is one of the 'L' rows of a capture. */
static bool rows_have(const char *rows, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = rows; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (p[0] == 'L' && len == n + 1 && memcmp(p + 1, name, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

/*
 * What the hand-over does: the channels the server LISTENs on now ('L' rows
 * of the capture) that the client does not have join it; those its
 * UNLISTENs name leave it, unless the server LISTENs on them again.
 */
static void flow_plan(struct client *c, struct server *s, const char *rows)
{
	struct listen_sub *ls = c->lsub;
	bool oom = false;

	ls->cleanup = rows ? session_cleanup_sql(rows, &oom) : NULL;
	if (oom)
		s->ps_broken = true; /* it may keep LISTENs of the client's: never reused */
	for (const char *p = rows; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (p[0] == 'L' && len > 1) {
			char *name = strndup(p + 1, len - 1);
			struct listen_chan *ch = NULL;

			if (name == NULL) {
				flow_fail(c, "out of memory");
				return;
			}
			if (listen_sub_find(ls, name) == NULL) {
				if (ls->l == NULL)
					ls->l = listen_get(c->pool);
				ch = ls->l ? listen_chan_ref(ls->l, name) : NULL;
				if (ch == NULL ||
				    !listen_chan_push(&ls->adds, &ls->nadds, &ls->cap_adds, ch)) {
					if (ch)
						listen_chan_unref(ls->l, ch);
					free(name);
					flow_fail(c, "out of memory");
					return;
				}
			}
			free(name);
		}
		p = nl ? nl + 1 : NULL;
	}
	for (uint32_t i = 0; i < ls->n; i++) {
		const char *name = ls->chans[i]->name;
		bool gone = ls->unl_all;

		for (uint32_t j = 0; !gone && j < ls->nunl; j++)
			gone = strcmp(ls->unl[j], name) == 0;
		if (gone && !(rows && rows_have(rows, name)) &&
		    !listen_chan_push(&ls->dels, &ls->ndels, &ls->cap_dels, ls->chans[i])) {
			flow_fail(c, "out of memory");
			return;
		}
	}
	listen_unl_clear(ls);
	ls->cut = ls->nadds > 0;
	ls->need_mark = ls->nadds > 0 || ls->ndels > 0 || (ls->n > 0 && ls->saw_notify);
	ls->saw_listen = false;
	ls->saw_notify = false;
	ls->marked = false;
	if (ls->nadds > 0)
		listen_sync(ls->l);
	ls->step = LST_COVER;
	flow_run(c);
}

void listen_flow_start(struct client *c, struct server *s, bool z_held)
{
	struct listen_sub *ls = listen_sub_get(c);

	if (ls == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	ls->z_held = z_held;
	ls->step = LST_CAPTURE;
	s->listen_flow = true;
	if (s->capture_next) {
		s->capture_next = false;
		if (client_capture(c)) {
			ls->busy = true;
			ls->captured = true;
			return; /* listen_flow_captured() goes on */
		}
		log_warning("server %s: could not ask for the session state", s->label);
		c->sess.dirty = false;
		s->ps_broken = true; /* it may LISTEN on the client's channels: never reused */
	}
	flow_plan(c, s, NULL);
}

bool listen_flow_captured(struct client *c, struct server *s, const char *rows, const char *error)
{
	struct listen_sub *ls = c->lsub;

	if (ls && ls->step == LST_CAPTURE) {
		ls->busy = false;
		flow_plan(c, s, error ? NULL : rows);
		return true;
	}
	/* LISTEN where the first words did not show it (a DO block): handed over all the same */
	if (error || !listen_txn_pooled(c) || !rows_listen(rows))
		return false;
	ls = listen_sub_get(c);
	if (ls == NULL)
		return false; /* the cleanup drops the LISTENs */
	ls->z_held = false;
	ls->captured = true;
	s->listen_flow = true;
	flow_plan(c, s, rows);
	return true;
}

static void mark_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	struct listen_sub *ls = c->lsub;

	(void)rows;
	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s || ls == NULL)
		return;
	ls->busy = false;
	if (error) {
		listen_mark_cancel(ls->l, ls->seq);
		flow_fail(c, error);
		return;
	}
	s->mark_owner = 0; /* what it commits from now on is someone else's */
	ls->step = ls->cut ? LST_CUT : LST_CLEANUP;
	flow_run(c);
}

static void cleanup_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	struct listen_sub *ls = c->lsub;

	(void)rows;
	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s || ls == NULL)
		return;
	ls->busy = false;
	if (error) {
		log_warning("client %s: could not drop the LISTENs and statements its transaction left: %s",
			    c->addr, error);
		s->ps_broken = true; /* they would reach the next client: nobody gets this server */
	}
	ls->step = LST_ARRIVE;
	flow_run(c);
}

/* The marker query; false when the hand-over ended (the client was closed). */
static bool flow_send_mark(struct client *c, struct server *s)
{
	struct listen_sub *ls = c->lsub;
	uint64_t seq;
	char *sql = listen_mark_sql(ls->l, s, c, s->mark_owner == c->sess.id, ls->cut, &seq);

	if (sql == NULL) {
		if (ls->cut) {
			flow_fail(c, listen_ready(ls->l) ? "out of memory"
							 : "its listener is not ready");
			return false;
		}
		/* the listener is reconnecting: no marker to wait for, the changes apply now */
		ls->marked = true;
		apply_changes(c);
		ls->step = LST_CLEANUP;
		return true;
	}
	ls->seq = seq;
	ls->x_cut = false;
	ls->hold_q = ls->cut;
	snprintf(ls->cut_payload, sizeof(ls->cut_payload), "%llu", (unsigned long long)seq);
	snprintf(ls->cut_chan, sizeof(ls->cut_chan), "%s", listen_mark_channel(ls->l));
	ls->step = LST_MARK;
	ls->busy = true;
	if (!server_internal_query(s, sql, mark_done, c)) {
		free(sql);
		ls->busy = false;
		listen_mark_cancel(ls->l, seq);
		flow_fail(c, "could not send its marker");
		return false;
	}
	free(sql);
	return true;
}

/* The hand-over is done: the client gets its ReadyForQuery, the server goes back. */
static void flow_finish(struct client *c, struct server *s)
{
	static const uint8_t ready[6] = {'Z', 0, 0, 0, 5, 'I'};
	struct listen_sub *ls = c->lsub;
	bool captured = ls->captured;

	ls->step = LST_NONE;
	ls->nfresh = 0;
	if (ls->hold_q) {
		listen_client_release_held(c);
		if (c->lsub != ls)
			return; /* closed: its queue was full */
	}
	ls->captured = false;
	s->listen_flow = false;
	if (ls->z_held) {
		ls->z_held = false;
		if (!client_send(c, ready, sizeof(ready))) {
			client_close(c, "could not send");
			return;
		}
		c->db->stats.bytes_out += sizeof(ready);
	}
	listen_client_flush(c);
	/* as at any boundary: the server goes back, unless an unnamed statement waits there */
	if (!c->unnamed_unbound || captured) {
		server_txn_done(s);
		return;
	}
	if (sock_in_len(&c->sock) > 0)
		client_forward(c);
}

/* Whether the listener LISTENs on every channel the client is about to get. */
static bool flow_covered(const struct listen_sub *ls)
{
	for (uint32_t i = 0; i < ls->nadds; i++)
		if (!listen_covers(ls->l, ls->adds[i]))
			return false;
	return true;
}

static void flow_run(struct client *c)
{
	struct listen_sub *ls = c->lsub;
	struct server *s = c->server;

	while (ls && !ls->busy && s && s->listen_flow && c->lsub == ls && c->server == s) {
		switch (ls->step) {
		case LST_COVER:
			if (!flow_covered(ls)) {
				const char *why = listen_failure(ls->l);

				if (why[0]) {
					flow_fail(c, why);
					return;
				}
				if (!list_linked(&ls->cover_node))
					listen_wait_cover(ls->l, &ls->cover_node);
				return; /* listen_client_covered() */
			}
			if (list_linked(&ls->cover_node))
				list_remove(&ls->cover_node);
			if (!ls->need_mark) {
				ls->step = LST_CLEANUP;
				break;
			}
			if (!flow_send_mark(c, s))
				return;
			break;
		case LST_CUT:
			if (!ls->x_cut)
				return; /* listen_client_x_notification() */
			ls->nfresh = 0;
			listen_client_release_held(c);
			if (c->lsub != ls)
				return; /* closed: its queue was full */
			ls->step = LST_CLEANUP;
			break;
		case LST_CLEANUP:
			if (ls->cleanup) {
				char *sql = ls->cleanup;
				bool ok;

				ls->cleanup = NULL;
				ls->busy = true;
				ok = server_internal_query(s, sql, cleanup_done, c);
				free(sql);
				if (ok)
					return;
				ls->busy = false;
				s->ps_broken = true;
			}
			ls->step = LST_ARRIVE;
			break;
		case LST_ARRIVE:
			if (ls->need_mark && !ls->marked)
				return; /* listen_client_marked() */
			flow_finish(c, s);
			return;
		default:
			return;
		}
	}
}

void listen_flow_input(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->state == SV_ACTIVE && s->listen_flow && s->internal_cb == NULL) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK) {
			server_close(s, "invalid message between two transactions");
			return;
		}
		switch (type) {
		case 'A':
			if (s->client &&
			    !listen_client_x_notification(s, s->client, msg, (size_t)len + 1) &&
			    !client_send(s->client, msg, (size_t)len + 1))
				log_warning("server %s: could not pass on a notification", s->label);
			break;
		case 'S':
			if (!server_take_param(s, msg + PQ_HEADER_SIZE, len - 4)) {
				server_close(s, "malformed ParameterStatus");
				return;
			}
			break;
		case 'N':
			break;
		default:
			server_close(s, "unexpected message between two transactions");
			return;
		}
		evbuffer_drain(in, len + 1);
	}
	/* a query of the hand-over started meanwhile: its answer may be here already */
	if (s->state == SV_ACTIVE && s->internal_cb && sock_in_len(&s->sock) > 0)
		server_handle_internal(s);
}

/* Whether ch joined the client at the marker, its server not cut off yet. */
static bool fresh_has(const struct listen_sub *ls, const struct listen_chan *ch)
{
	for (uint32_t i = 0; i < ls->nfresh; i++)
		if (ls->fresh[i] == ch)
			return true;
	return false;
}

bool listen_client_x_notification(struct server *s, struct client *c, const uint8_t *msg, size_t n)
{
	struct listen_sub *ls = c->lsub;
	struct listen_chan *ch;
	uint32_t pid;
	const char *channel, *payload;
	uint8_t *w = (uint8_t *)(uintptr_t)msg;

	if (ls == NULL || !listen_txn_pooled(c) ||
	    !listen_sql_parse_notification(msg + PQ_HEADER_SIZE, n - PQ_HEADER_SIZE, &pid, &channel,
					   &payload))
		return false;
	if (ls->cut && !ls->x_cut && strcmp(channel, ls->cut_chan) == 0) {
		if (strcmp(payload, ls->cut_payload) == 0) {
			/* the server delivered all it had before the marker: the listener takes over */
			ls->x_cut = true;
			if (ls->step == LST_CUT)
				flow_run(c);
		}
		return true;
	}
	if (ls->x_cut)
		return true; /* after the marker: the listener delivers it */
	ch = listen_sub_find(ls, channel);
	if (ch && !fresh_has(ls, ch))
		return true; /* the client had it before: the listener delivers it too */
	if (pid == s->be_pid && c->cancel_pid != 0) {
		/* its own: with the process ID it was told */
		w[PQ_HEADER_SIZE] = (uint8_t)(c->cancel_pid >> 24);
		w[PQ_HEADER_SIZE + 1] = (uint8_t)(c->cancel_pid >> 16);
		w[PQ_HEADER_SIZE + 2] = (uint8_t)(c->cancel_pid >> 8);
		w[PQ_HEADER_SIZE + 3] = (uint8_t)c->cancel_pid;
	}
	if (!listen_client_deliver_now(c, msg, n))
		log_warning("client %s: a notification was dropped: its queue is full", c->addr);
	return true;
}

void listen_client_covered(struct client *c)
{
	if (c->lsub && c->lsub->step == LST_COVER)
		flow_run(c);
}

void listen_client_marked(struct client *c)
{
	struct listen_sub *ls = c->lsub;

	if (ls == NULL || ls->marked || ls->step == LST_NONE)
		return;
	ls->marked = true;
	apply_changes(c);
	if (ls->fresh_lost) {
		/* what its server delivers before the marker would be dropped: better closed than lost */
		flow_fail(c, "out of memory");
		return;
	}
	if (ls->step == LST_ARRIVE)
		flow_run(c);
}

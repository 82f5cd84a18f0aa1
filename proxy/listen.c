/*
 * listen.c - the listener of a transaction-pooled pool: its server
 * connections, the channels they LISTEN on, the fan-out of its
 * notifications, and its move at a switch (see listen.h; the markers on
 * their way to it are listen_mark.c's).
 *
 * A connection runs one batch at a time: a Query of LISTEN and UNLISTEN
 * statements that brings what it LISTENs on to what the channels' references
 * ask for; a channel's 'inflight' bit says a batch is changing it, 'target'
 * what it will be.  Its input is read whole message by whole message (a
 * notification is at most about 8 kB): notifications are fanned out at
 * once, so the listener never waits for a client, and a client that cannot
 * keep up is closed by its own queue's bound (listen_client.h).
 */
#include "proxy/listen.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/hash.h"
#include "proxy/core/log.h"
#include "proxy/core/params.h"
#include "proxy/database.h"
#include "proxy/listen_client.h"
#include "proxy/listen_int.h"
#include "proxy/listen_sql.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

/* The largest message accepted from a listener connection (a notification is about 8 kB). */
#define LISTEN_MSG_MAX LISTEN_IN_MIN

const char *listen_label(const struct listener *l)
{
	return l->pool->db->name;
}

/* ---- the listener ---- */

static void listen_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < LISTEN_CONNS; i++) {
		struct server *s = l->conn[i].s;

		if (s && !l->conn[i].busy)
			server_terminate(s, "its listener has no channel left");
	}
}

struct listener *listen_get(struct pool *pool)
{
	struct listener *l = pool->listener;

	if (l)
		return l;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->idle_timer = evtimer_new(rt.base, listen_idle_cb, l);
	if (l->idle_timer == NULL) {
		free(l);
		return NULL;
	}
	l->pool = pool;
	list_init(&l->chan_list);
	list_init(&l->marks);
	list_init(&l->covering);
	pool->listener = l;
	return l;
}

static void chan_free(struct listener *l, struct listen_chan *ch)
{
	htab_remove(&l->chans, &ch->hnode);
	list_remove(&ch->node);
	free(ch->subs);
	free(ch->name);
	free(ch);
}

void listen_free(struct listener *l)
{
	struct list_node *n, *tmp;

	if (l == NULL)
		return;
	list_for_each_safe(n, tmp, &l->chan_list)
		chan_free(l, list_entry(n, struct listen_chan, node));
	list_for_each_safe(n, tmp, &l->marks) {
		list_remove(n);
		free(list_entry(n, struct listen_mark, node));
	}
	htab_free(&l->chans);
	event_free(l->idle_timer);
	l->pool->listener = NULL;
	free(l);
}

bool listen_ready(const struct listener *l)
{
	const struct listen_conn *lc = &l->conn[l->cur];

	return lc->s && lc->ready;
}

const char *listen_failure(const struct listener *l)
{
	return l->conn[l->cur].s ? "" : l->failure[0] ? l->failure : "no connection";
}

int listen_nsubscribers(const struct listener *l)
{
	int n = 0;
	const struct list_node *p;

	list_for_each(p, &l->chan_list)
		n += (int)list_entry(p, const struct listen_chan, node)->nsubs;
	return n;
}

/* ---- channels ---- */

static struct listen_chan *chan_find(const struct listener *l, const char *name)
{
	uint64_t h = hash_bytes(name, strlen(name));

	for (struct hnode *n = htab_chain(&l->chans, h); n; n = n->next) {
		struct listen_chan *ch = htab_entry(n, struct listen_chan, hnode);

		if (n->hash == h && strcmp(ch->name, name) == 0)
			return ch;
	}
	return NULL;
}

struct listen_chan *listen_chan_ref(struct listener *l, const char *name)
{
	struct listen_chan *ch = chan_find(l, name);

	if (ch == NULL) {
		ch = calloc(1, sizeof(*ch));
		if (ch == NULL || (ch->name = strdup(name)) == NULL ||
		    !htab_reserve(&l->chans, 16)) {
			if (ch)
				free(ch->name);
			free(ch);
			return NULL;
		}
		htab_insert(&l->chans, &ch->hnode, hash_bytes(name, strlen(name)));
		list_append(&l->chan_list, &ch->node);
	}
	ch->refs++;
	evtimer_del(l->idle_timer);
	return ch;
}

/* A channel nobody wants that no connection LISTENs on any more goes. */
static void chan_maybe_free(struct listener *l, struct listen_chan *ch)
{
	if (ch->refs == 0 && ch->on == 0 && ch->inflight == 0)
		chan_free(l, ch);
}

void listen_chan_unref(struct listener *l, struct listen_chan *ch)
{
	if (ch->refs > 0)
		ch->refs--;
	chan_maybe_free(l, ch);
}

bool listen_chan_subscribe(struct listen_chan *ch, struct client *c)
{
	if (ch->nsubs == ch->cap) {
		uint32_t cap = ch->cap ? ch->cap * 2 : 4;
		struct client **subs = realloc(ch->subs, cap * sizeof(*subs));

		if (subs == NULL)
			return false;
		ch->subs = subs;
		ch->cap = cap;
	}
	ch->subs[ch->nsubs++] = c;
	return true;
}

void listen_chan_unsubscribe(struct listener *l, struct listen_chan *ch, struct client *c)
{
	for (uint32_t i = 0; i < ch->nsubs; i++) {
		if (ch->subs[i] == c) {
			/* keep the order of the others: it is the order they are served in */
			memmove(ch->subs + i, ch->subs + i + 1,
				(ch->nsubs - i - 1) * sizeof(*ch->subs));
			ch->nsubs--;
			break;
		}
	}
	listen_chan_unref(l, ch);
}

void listen_wait_cover(struct listener *l, struct list_node *node)
{
	list_append(&l->covering, node);
	evtimer_del(l->idle_timer);
}

bool listen_covers(const struct listener *l, const struct listen_chan *ch)
{
	return listen_ready(l) && (ch->on & (1u << l->cur)) != 0;
}

/* ---- connections ---- */

static int conn_slot(const struct listener *l, const struct server *s)
{
	for (int i = 0; i < LISTEN_CONNS; i++)
		if (l->conn[i].s == s)
			return i;
	return -1;
}

/* Open a connection in this slot, on this side. */
static bool conn_open(struct listener *l, int slot, enum route_side side)
{
	struct params p;
	struct params_snap *snap;
	struct server *s = NULL;

	/*
	 * Startup parameters of its own: notifications are delivered in UTF8
	 * (README: a client with another client_encoding gets UTF8 payloads).
	 */
	params_init(&p);
	if (params_set(&p, "application_name", "pgcutover listener") &&
	    params_set(&p, "client_encoding", "UTF8")) {
		snap = params_snap_get(&p);
		if (snap)
			s = server_launch_listener(l->pool, snap, side, l);
		params_snap_put(snap);
	}
	params_free(&p);
	memset(&l->conn[slot], 0, sizeof(l->conn[slot]));
	if (s == NULL) {
		snprintf(l->failure, sizeof(l->failure), "out of memory");
		return false;
	}
	l->conn[slot].s = s;
	log_debug("listener %s/%s: connecting to the %s", listen_label(l), l->pool->user,
		  route_side_name(side));
	return true;
}

/* Whether any channel is wanted. */
static bool listen_in_use(const struct listener *l)
{
	const struct list_node *p;

	list_for_each(p, &l->chan_list)
		if (list_entry(p, const struct listen_chan, node)->refs > 0)
			return true;
	return false;
}

/* Send the batch that brings connection 'slot' to what the channels want. */
static void conn_send_batch(struct listener *l, int slot)
{
	struct listen_conn *lc = &l->conn[slot];
	uint8_t bit = (uint8_t)(1u << slot);
	struct list_node *p;
	struct pq_buf sql, msg;
	int nch = 0;

	if (lc->s == NULL || lc->s->state != SV_LISTEN || lc->busy)
		return;
	pq_buf_init(&sql);
	if (!lc->ready) {
		pq_put_bytes(&sql, "LISTEN ", 7);
		sqlquote_put_ident(&sql, lc->mchan);
		pq_put_bytes(&sql, "; ", 2);
	}
	list_for_each(p, &l->chan_list) {
		struct listen_chan *ch = list_entry(p, struct listen_chan, node);
		bool want = ch->refs > 0, has = (ch->on & bit) != 0;

		if (want == has || (ch->inflight & bit))
			continue;
		pq_put_bytes(&sql, want ? "LISTEN " : "UNLISTEN ", want ? 7 : 9);
		sqlquote_put_ident(&sql, ch->name);
		pq_put_bytes(&sql, "; ", 2);
		ch->inflight |= bit;
		ch->target = want ? (uint8_t)(ch->target | bit) : (uint8_t)(ch->target & ~bit);
		nch++;
	}
	if (sql.len == 0) {
		pq_buf_free(&sql);
		return;
	}
	pq_put_u8(&sql, 0);
	pq_buf_init(&msg);
	if (!sql.failed)
		pq_build_query(&msg, (const char *)sql.data);
	pq_buf_free(&sql);
	lc->busy = true;
	lc->error[0] = '\0';
	if (sql.failed || !server_send_msg(lc->s, &msg)) {
		server_close(lc->s, "could not send its LISTEN batch (out of memory)");
		return;
	}
	log_debug("listener %s/%s: %d channels change on %s", listen_label(l), l->pool->user, nch,
		  lc->s->label);
}

void listen_sync(struct listener *l)
{
	if (l->conn[l->cur].s == NULL && listen_in_use(l) && !rt.exiting) {
		l->failure[0] = '\0';
		if (!conn_open(l, l->cur, l->pool->db->route))
			log_warning("listener %s/%s: could not open a connection: %s",
				    listen_label(l), l->pool->user, l->failure);
	}
	for (int i = 0; i < LISTEN_CONNS; i++)
		conn_send_batch(l, i);
	listen_idle_check(l);
}

/* Nothing wanted, nothing running: the connections close after server_idle_timeout. */
void listen_idle_check(struct listener *l)
{
	int64_t ms = rt.cfg->server_idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (listen_in_use(l) || !list_empty(&l->marks) || !list_empty(&l->covering) ||
	    (l->conn[0].s == NULL && l->conn[1].s == NULL))
		return;
	if (ms > 0 && !event_pending(l->idle_timer, EV_TIMEOUT, NULL))
		evtimer_add(l->idle_timer, &tv);
}

/* Clients that wait for channels to be LISTENed on: they may go on now. */
static void wake_covering(struct listener *l)
{
	struct list_node waiting;

	/* callbacks may drop other waiters from the list (a client closed): take it whole */
	list_init(&waiting);
	if (list_empty(&l->covering))
		return;
	waiting.next = l->covering.next;
	waiting.prev = l->covering.prev;
	waiting.next->prev = &waiting;
	waiting.prev->next = &waiting;
	list_init(&l->covering);
	while (!list_empty(&waiting)) {
		struct list_node *n = list_first(&waiting);
		struct listen_sub *ls = list_entry(n, struct listen_sub, cover_node);

		list_remove(n);
		listen_client_covered(ls->c);
	}
}

/* Clients served by this listener, collected before any of them is closed. */
struct client_set {
	struct client **v;
	size_t n, cap;
};

static void set_add(struct client_set *set, struct client *c)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i] == c)
			return;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		struct client **v = realloc(set->v, cap * sizeof(*v));

		if (v == NULL)
			return; /* that client's channels fail it later, when it next needs them */
		set->v = v;
		set->cap = cap;
	}
	set->v[set->n++] = c;
}

/* Every client of the listener (subscribed, waiting for channels or a marker) is closed. */
static void listen_fail_all(struct listener *l, const char *why)
{
	struct client_set set = {NULL, 0, 0};
	struct list_node *p, *tmp;

	list_for_each(p, &l->chan_list) {
		struct listen_chan *ch = list_entry(p, struct listen_chan, node);

		for (uint32_t i = 0; i < ch->nsubs; i++)
			set_add(&set, ch->subs[i]);
	}
	list_for_each(p, &l->covering)
		set_add(&set, list_entry(p, struct listen_sub, cover_node)->c);
	list_for_each_safe(p, tmp, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		if (m->client)
			set_add(&set, m->client);
		list_remove(p);
		free(m);
	}
	for (size_t i = 0; i < set.n; i++)
		listen_client_lost(set.v[i], why);
	free(set.v);
}

/* The replacement takes over: markers sent to the old connection let their clients go on. */
static void listen_promote(struct listener *l)
{
	int old = l->cur;
	struct client_set set = {NULL, 0, 0};
	struct list_node *p, *tmp;
	struct database *db = l->pool->db;

	l->cur = !old;
	l->moving = false;
	l->promote = false;
	log_info("listener %s/%s: now listening on the %s (%s)", listen_label(l), l->pool->user,
		 route_side_name(l->conn[l->cur].s->side), l->conn[l->cur].s->label);
	list_for_each_safe(p, tmp, &l->marks) {
		struct listen_mark *m = list_entry(p, struct listen_mark, node);

		/* a marker on its way (an open entry belongs to no hand-over) */
		if (m->client && m->seq != 0)
			set_add(&set, m->client);
		list_remove(p);
		free(m);
	}
	if (l->conn[old].s)
		server_terminate(l->conn[old].s, "its listener moved to another connection");
	for (size_t i = 0; i < set.n; i++)
		listen_client_marked(set.v[i]);
	free(set.v);
	wake_covering(l);
	if (l->holding) {
		l->holding = false;
		db_listener_moved(db);
	}
	listen_sync(l);
}

void listen_conn_ready(struct server *s)
{
	struct listener *l = s->listener;
	int slot = conn_slot(l, s);

	if (slot < 0) {
		server_terminate(s, "its listener no longer needs it");
		return;
	}
	snprintf(l->conn[slot].mchan, sizeof(l->conn[slot].mchan), "pgcutover.%u",
		 (unsigned)s->be_pid);
	log_debug("listener %s/%s: logged in (backend pid %u)", listen_label(l), l->pool->user,
		  (unsigned)s->be_pid);
	conn_send_batch(l, slot);
}

void listen_conn_failed(struct server *s, const char *msg)
{
	struct listener *l = s->listener;

	snprintf(l->failure, sizeof(l->failure), "%s", msg);
}

void listen_conn_closed(struct server *s, const char *reason)
{
	struct listener *l = s->listener;
	int slot = conn_slot(l, s);
	uint8_t bit;
	struct list_node *p, *tmp;
	char why[320];

	if (slot < 0)
		return;
	bit = (uint8_t)(1u << slot);
	memset(&l->conn[slot], 0, sizeof(l->conn[slot]));
	list_for_each_safe(p, tmp, &l->chan_list) {
		struct listen_chan *ch = list_entry(p, struct listen_chan, node);

		ch->on &= (uint8_t)~bit;
		ch->inflight &= (uint8_t)~bit;
		chan_maybe_free(l, ch);
	}
	snprintf(why, sizeof(why), "%s", l->failure[0] ? l->failure : reason);
	if (slot != l->cur) {
		/* the replacement */
		l->moving = false;
		if (l->promote) {
			/* the flip happened and the new side cannot be listened on */
			log_warning("listener %s/%s: could not listen on the new side: %s",
				    listen_label(l), l->pool->user, why);
			l->promote = false;
			if (l->conn[l->cur].s)
				server_terminate(l->conn[l->cur].s, "its database switched sides");
			listen_fail_all(l, why);
			if (l->holding) {
				l->holding = false;
				db_listener_moved(l->pool->db);
			}
		}
		return;
	}
	if (l->moving && l->conn[!slot].ready && l->conn[!slot].s->side == l->pool->db->route) {
		/* the replacement is there already: it takes over */
		listen_promote(l);
		return;
	}
	if (listen_in_use(l) || !list_empty(&l->marks) || !list_empty(&l->covering))
		log_warning("listener %s/%s: connection lost: %s", listen_label(l), l->pool->user,
			    why);
	snprintf(l->failure, sizeof(l->failure), "%s", why);
	listen_fail_all(l, why);
}

/* ---- fan-out ---- */

/* A notification on connection 'slot' (msg: the whole message, writable). */
static void listen_notification(struct listener *l, int slot, uint8_t *msg, uint32_t len)
{
	struct client_set full = {NULL, 0, 0};
	struct listen_chan *ch;
	struct client *sender;
	const char *channel, *payload;
	uint32_t pid;
	struct db_stats *st = &l->pool->db->stats;

	if (!listen_sql_parse_notification(msg + PQ_HEADER_SIZE, len - 4, &pid, &channel, &payload)) {
		log_warning("listener %s/%s: malformed notification ignored", listen_label(l),
			    l->pool->user);
		return;
	}
	if (strcmp(channel, l->conn[slot].mchan) == 0) {
		if (slot == l->cur)
			listen_mark_arrived(l, pid, payload);
		return;
	}
	/* a replacement delivers nothing before it takes over: the one in use does */
	if (slot != l->cur)
		return;
	ch = chan_find(l, channel);
	if (ch == NULL || ch->nsubs == 0)
		return;
	sender = listen_mark_sender(l, pid);
	if (sender && sender->cancel_pid != 0) {
		/* its own notification, by the process ID its client was told */
		uint32_t v = sender->cancel_pid;

		msg[PQ_HEADER_SIZE] = (uint8_t)(v >> 24);
		msg[PQ_HEADER_SIZE + 1] = (uint8_t)(v >> 16);
		msg[PQ_HEADER_SIZE + 2] = (uint8_t)(v >> 8);
		msg[PQ_HEADER_SIZE + 3] = (uint8_t)v;
	}
	for (uint32_t i = 0; i < ch->nsubs; i++) {
		if (listen_client_deliver(ch->subs[i], msg, (size_t)len + 1))
			st->notifications++;
		else
			set_add(&full, ch->subs[i]);
	}
	/* closed after the walk: closing a client changes the subscriber lists */
	for (size_t i = 0; i < full.n; i++)
		listen_client_overflow(full.v[i]);
	free(full.v);
}

/* A batch ended (ReadyForQuery) on connection 'slot'. */
static void conn_batch_done(struct listener *l, int slot)
{
	struct listen_conn *lc = &l->conn[slot];
	uint8_t bit = (uint8_t)(1u << slot);
	struct list_node *p, *tmp;

	lc->busy = false;
	if (lc->error[0]) {
		char why[320];

		snprintf(why, sizeof(why), "its LISTEN failed: %s", lc->error);
		snprintf(l->failure, sizeof(l->failure), "%s", why);
		server_close(lc->s, why);
		return;
	}
	list_for_each_safe(p, tmp, &l->chan_list) {
		struct listen_chan *ch = list_entry(p, struct listen_chan, node);

		if (!(ch->inflight & bit))
			continue;
		ch->on = (uint8_t)((ch->on & ~bit) | (ch->target & bit));
		ch->inflight &= (uint8_t)~bit;
		chan_maybe_free(l, ch);
	}
	if (!lc->ready) {
		lc->ready = true;
		log_debug("listener %s/%s: listening (marker channel %s)", listen_label(l),
			  l->pool->user, lc->mchan);
		if (slot != l->cur && l->promote) {
			listen_promote(l);
			return;
		}
	}
	if (slot == l->cur)
		wake_covering(l);
	listen_sync(l);
}

void listen_conn_input(struct server *s)
{
	struct listener *l = s->listener;
	struct evbuffer *in = sock_in(&s->sock);

	while (s->state == SV_LISTEN) {
		int slot = conn_slot(l, s);
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, LISTEN_MSG_MAX, &type, &len, &msg);

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK || slot < 0) {
			server_close(s, "invalid message on a listener connection");
			return;
		}
		switch (type) {
		case 'A':
			listen_notification(l, slot, (uint8_t *)(uintptr_t)msg, len);
			break;
		case 'E':
			if (l->conn[slot].error[0] == '\0') {
				char sqlstate[6];

				server_error_text(msg + PQ_HEADER_SIZE, len - 4, sqlstate,
						  l->conn[slot].error, sizeof(l->conn[slot].error));
			}
			if (!l->conn[slot].busy) {
				/* not an answer: the server is going away (FATAL) */
				evbuffer_drain(in, len + 1);
				server_close(s, l->conn[slot].error);
				return;
			}
			break;
		case 'S':
			if (!server_take_param(s, msg + PQ_HEADER_SIZE, len - 4)) {
				server_close(s, "malformed ParameterStatus");
				return;
			}
			break;
		case 'Z':
			evbuffer_drain(in, len + 1);
			if (l->conn[slot].busy)
				conn_batch_done(l, slot);
			continue;
		case 'C':
		case 'N':
			break;
		default:
			server_close(s, "unexpected message on a listener connection");
			return;
		}
		evbuffer_drain(in, len + 1);
	}
}

/* ---- switch and reload ---- */

void listen_prepare_move(struct listener *l, enum route_side side)
{
	struct server *s = l->conn[l->cur].s;

	if (l->moving || s == NULL || s->side == side || !listen_in_use(l))
		return;
	if (conn_open(l, !l->cur, side))
		l->moving = true;
}

void listen_cancel_move(struct listener *l)
{
	struct server *s;

	if (!l->moving || l->promote)
		return;
	s = l->conn[!l->cur].s;
	l->moving = false;
	if (s)
		server_terminate(s, "the switch did not happen");
}

bool listen_finish_move(struct listener *l)
{
	struct database *db = l->pool->db;
	struct server *s = l->conn[l->cur].s;

	if (s == NULL || s->side == db->route)
		return true;
	if (!listen_in_use(l) && list_empty(&l->covering)) {
		listen_cancel_move(l);
		server_terminate(s, "its database switched sides");
		return true;
	}
	if (l->moving && l->conn[!l->cur].ready) {
		listen_promote(l);
		return true;
	}
	if (!l->moving) {
		if (!conn_open(l, !l->cur, db->route)) {
			listen_fail_all(l, l->failure);
			return true;
		}
		l->moving = true;
	}
	l->promote = true;
	l->holding = true;
	log_info("listener %s/%s: the database waits until it listens on the %s", listen_label(l),
		 l->pool->user, route_side_name(db->route));
	return false;
}

void listen_reopen(struct listener *l)
{
	if (l->moving || l->conn[l->cur].s == NULL)
		return;
	if (!listen_in_use(l)) {
		server_terminate(l->conn[l->cur].s, "its address changed in a reload");
		return;
	}
	if (conn_open(l, !l->cur, l->pool->db->route)) {
		l->moving = true;
		l->promote = true;
	}
}

size_t listen_server_pids(const struct listener *l, enum route_side side, uint32_t *out, size_t max)
{
	size_t n = 0;

	for (int i = 0; i < LISTEN_CONNS; i++) {
		const struct server *s = l->conn[i].s;

		if (s && s->side == side && s->be_pid != 0 && n < max)
			out[n++] = s->be_pid;
	}
	return n;
}

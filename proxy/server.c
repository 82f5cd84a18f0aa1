/*
 * server.c - server connections: their states and lists, their life from
 * server_launch() to the reaper, linking and releasing, the reset between
 * clients, and the socket callbacks that dispatch by state.
 *
 * A server connection is opened by pool_service() for the startup parameters
 * of the client that needs it and logs in (server_login.c).  Once logged in
 * it is SV_IDLE in its pool; linked to a client it is SV_ACTIVE and its
 * messages are forwarded (server_forward.c), or pgcutover runs a query of
 * its own on it (server_internal.c).  When its client leaves, a clean server
 * runs DISCARD ALL (session pooling) and goes back to the pool; a server in
 * the middle of anything is closed rather than risk handing dirty state on.
 */
#include "proxy/server.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/listen.h"
#include "proxy/listen_client.h"
#include "proxy/runtime.h"
#include "proxy/server_forward.h"
#include "proxy/server_internal.h"
#include "proxy/server_login.h"

static struct list_node reap_servers = {&reap_servers, &reap_servers};

static void server_read_cb(struct sock *sk, void *arg);
static void server_write_cb(struct sock *sk, void *arg);
static void server_event_cb(struct sock *sk, int what, void *arg);
static void server_timer_cb(evutil_socket_t fd, short what, void *arg);

static const char *const state_names[] = {
	[SV_CONNECT] = "connect", [SV_LOGIN] = "login", [SV_IDLE] = "idle",
	[SV_ACTIVE] = "active",   [SV_RESET] = "reset", [SV_FREE] = "free",
	[SV_LISTEN] = "listen",
};

const char *server_state_name(enum server_state st)
{
	return state_names[st];
}

static struct list_node *server_state_list(struct server *s, enum server_state st)
{
	/* a listener's connection is never on the lists clients are served from */
	if (s->listener && st != SV_FREE)
		return &s->pool->listen_servers;
	switch (st) {
	case SV_CONNECT:
	case SV_LOGIN:
	case SV_RESET:
		return &s->pool->new_servers;
	case SV_IDLE:
		return &s->pool->idle_servers;
	case SV_ACTIVE:
		return &s->pool->active_servers;
	case SV_FREE:
		return &reap_servers;
	case SV_LISTEN:
		break;
	}
	return NULL;
}

static bool server_transition_ok(enum server_state from, enum server_state to, bool s_is_listener)
{
	if (to == SV_FREE)
		return from != SV_FREE;
	switch (from) {
	case SV_CONNECT:
		return to == SV_LOGIN;
	case SV_LOGIN:
		return to == (s_is_listener ? SV_LISTEN : SV_IDLE);
	case SV_IDLE:
		return to == SV_ACTIVE;
	case SV_ACTIVE:
		return to == SV_IDLE || to == SV_RESET;
	case SV_RESET:
		return to == SV_IDLE;
	default:
		return false;
	}
}

void server_set_state(struct server *s, enum server_state st)
{
	if (!server_transition_ok(s->state, st, s->listener != NULL))
		log_error("server %s: illegal state change %s -> %s", s->label,
			  state_names[s->state], state_names[st]);
	if (list_linked(&s->node))
		list_remove(&s->node);
	s->state = st;
	/*
	 * Idle servers are a stack: the next client gets the one that went idle
	 * last, whose backend is still warm in the CPU caches, and the servers
	 * nobody needs sink to the tail, where server_idle_timeout closes them.
	 */
	if (st == SV_IDLE)
		list_prepend(server_state_list(s, st), &s->node);
	else
		list_append(server_state_list(s, st), &s->node);
	if (st == SV_IDLE)
		s->idle_since_us = rt_now_us(); /* server_idle_timeout: janitor.c */
}

/* ---- lifecycle ---- */

void server_set_timer_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* Open a server connection on 'side' (for the pool, or for its listener l). */
static struct server *server_open(struct pool *pool, struct params_snap *startup,
				  enum route_side side, struct listener *l)
{
	struct database *db = pool->db;
	const struct backend_addr *a;
	struct server *s;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;

	/* a listener reads whole notifications (up to about 8 kB) from its input */
	if (l && limit < LISTEN_IN_MIN)
		limit = LISTEN_IN_MIN;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	list_init(&s->node);
	params_init(&s->reported);
	s->sock.fd = -1; /* sock_free() of a sock never initialised closes nothing */
	ps_queue_init(&s->psq);
	ps_cache_init(&s->psc);
	s->pool = pool;
	s->listener = l;
	s->side = side;
	s->addr_gen = db->addr_gen[s->side];
	a = &s->addr;
	s->startup = params_snap_ref(startup);
	s->timer = evtimer_new(rt.base, server_timer_cb, s);
	if (s->timer == NULL || !conninfo_copy_addr(&s->addr, &db->addr[s->side]) ||
	    !sock_init(&s->sock, -1, limit, server_read_cb, server_write_cb, server_event_cb, s)) {
		sock_free(&s->sock);
		if (s->timer)
			event_free(s->timer);
		params_snap_put(s->startup);
		conninfo_free_addr(&s->addr);
		free(s);
		return NULL;
	}
	snprintf(s->label, sizeof(s->label), "%s/%s@%s:%d%s", db->name, pool->user, a->host,
		 a->port, l ? " (listener)" : "");

	s->state = SV_CONNECT;
	list_append(server_state_list(s, SV_CONNECT), &s->node);
	if (l == NULL)
		pool->nservers++;

	server_set_timer_ms(s->timer, rt.cfg->server_connect_timeout_ms);

	log_debug("server %s: connecting", s->label);
	server_connect(s);
	return s;
}

struct server *server_launch(struct pool *pool, struct params_snap *startup)
{
	return server_open(pool, startup, pool->db->route, NULL);
}

struct server *server_launch_side(struct pool *pool, struct params_snap *startup,
				  enum route_side side)
{
	return server_open(pool, startup, side, NULL);
}

struct server *server_launch_listener(struct pool *pool, struct params_snap *startup,
				      enum route_side side, struct listener *l)
{
	return server_open(pool, startup, side, l);
}

void server_close(struct server *s, const char *reason)
{
	struct client *c = s->client;
	struct pool *pool = s->pool;

	if (s->state == SV_FREE || s->closing)
		return;
	s->closing = true;
	log_debug("server %s: closing: %s", s->label, reason);
	if (s->listener) {
		/* not a pool's server: its listener's clients hear about it */
		sock_disable(&s->sock);
		evtimer_del(s->timer);
		server_set_state(s, SV_FREE);
		rt_schedule_reap();
		listen_conn_closed(s, reason);
		return;
	}
	if (s->internal_cb) {
		server_query_cb cb = s->internal_cb;

		s->internal_cb = NULL;
		cb(s, s->internal_arg, NULL, reason);
		free(s->internal_rows);
		free(s->internal_error);
		s->internal_rows = s->internal_error = NULL;
		c = s->client;
	}
	if (c) {
		s->client = NULL;
		c->server = NULL;
		client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
				  "server connection for database \"%s\" was lost: %s",
				  pool->db->name, reason);
	}
	sock_disable(&s->sock);
	evtimer_del(s->timer);
	server_set_state(s, SV_FREE);
	pool->nservers--;
	rt_schedule_reap();
	if (pool->listener)
		listen_server_done(pool->listener, s);
	if (db_paused(pool->db))
		db_note_progress(pool->db);
	pool_service(pool);
}

void server_terminate(struct server *s, const char *reason)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_terminate(&b);
	if (!b.failed) {
		/* best effort: the socket is non-blocking and the reaper frees it next */
		if (sock_write(&s->sock, b.data, b.len))
			sock_flush_now(&s->sock);
	}
	pq_buf_free(&b);
	server_close(s, reason);
}

void server_reap_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &reap_servers) {
		struct server *s = list_entry(n, struct server, node);

		list_remove(&s->node);
		sock_free(&s->sock);
		event_free(s->timer);
		if (s->scram_active)
			auth_scram_client_free(&s->scram);
		params_snap_put(s->startup);
		params_free(&s->reported);
		params_snap_put(s->reported_snap);
		ps_queue_free(&s->psq);
		ps_cache_free(&s->psc);
		conninfo_free_addr(&s->addr);
		free(s->internal_rows);
		free(s->internal_error);
		free(s->answer);
		free(s);
	}
	cancel_reap();
}

void server_link(struct server *s, struct client *c)
{
	s->client = c;
	c->server = s;
	s->msg_left = 0;
	/* whose notifications it commits now (listen.h: markers) */
	if (s->mark_owner != c->sess.id)
		s->mark_owner = s->mark_owner == 0 ? c->sess.id : SERVER_MARK_MIXED;
	server_set_state(s, SV_ACTIVE);
}

/* Whether a server can serve another client or transaction as it is. */
static bool server_clean(const struct server *s)
{
	return s->pending_syncs == 0 && !s->unsynced && s->txn_status == 'I' && s->msg_left == 0 &&
	       !s->ps_broken && s->psq.count == 0 && sock_in_len(&s->sock) == 0 &&
	       server_current(s) && !s->pool->db->removed;
}

/*
 * The client left while a query of pgcutover's own ran for it (a session
 * capture): once the answer is in, the server is released as usual.
 */
static void server_internal_orphaned(struct server *s, void *arg, const char *rows,
				     const char *error)
{
	(void)arg;
	(void)error;
	if (s->closing)
		return; /* server_close() is finishing it */
	if (rows == NULL) {
		server_close(s, "an internal query failed after its client left");
		return;
	}
	server_release(s);
}

void server_release(struct server *s)
{
	struct client *c = s->client;
	struct pq_buf b;

	if (c) {
		c->server = NULL;
		s->client = NULL;
	}
	/* what it commits from now on is not its client's (listen.h: markers) */
	if (s->pool->listener && !s->listener)
		listen_server_done(s->pool->listener, s);
	/* a hand-over of LISTENs ends with its client (the reset below drops them) */
	s->listen_flow = false;
	s->hold_ready = false;
	if (s->state != SV_ACTIVE)
		return;
	if (s->internal_cb && s->msg_left == 0 && !s->unsynced && s->pending_syncs == 1) {
		/* let pgcutover's own query finish rather than lose a clean server */
		s->internal_cb = server_internal_orphaned;
		s->internal_arg = NULL;
		return;
	}
	if (s->read_paused)
		server_resume_reading(s);
	if (c && c->msg_left > 0) {
		/*
		 * The server saw part of a client message: a Terminate now would be
		 * read as the rest of it, so the connection just closes.
		 */
		server_close(s, "its client left in the middle of a message");
		return;
	}
	if (!server_clean(s)) {
		server_terminate(s, s->side != s->pool->db->route ? "its database switched sides"
				    : !server_current(s)
					    ? "its address changed in a reload"
					    : "released in the middle of a transaction or request");
		return;
	}
	if (s->pool->db->pool_mode == POOL_TRANSACTION && c && c->state != CL_FREE &&
	    c->state != CL_CLOSING) {
		/* transaction boundary: the client stays, the server serves others */
		server_set_state(s, SV_IDLE);
		pool_service(s->pool);
		return;
	}
	/* the client left: wipe its session state before anyone else gets it */
	pq_buf_init(&b);
	pq_build_query(&b, "DISCARD ALL");
	if (b.failed || !sock_write(&s->sock, b.data, b.len)) {
		pq_buf_free(&b);
		server_close(s, "could not send the reset query");
		return;
	}
	pq_buf_free(&b);
	s->pending_syncs = 1;
	/* DISCARD ALL drops every statement and setting */
	ps_cache_clear(&s->psc);
	s->sess_owner = 0;
	server_set_state(s, SV_RESET);
}

size_t server_output_len(const struct server *s)
{
	return sock_out_len(&s->sock);
}

void server_pause_reading(struct server *s)
{
	if (!s->read_paused) {
		s->read_paused = true;
		sock_set_reading(&s->sock, false);
	}
}

void server_resume_reading(struct server *s)
{
	if (s->read_paused) {
		s->read_paused = false;
		sock_set_reading(&s->sock, true);
	}
}

/* ---- reading whole messages (login, reset, idle) ---- */

/*
 * Peek at the next complete message in the input.  PQ_OK with *type, *len
 * and *msg (the whole message, header included, contiguous); PQ_NEED_MORE;
 * or an error for a bad length.
 */
enum pq_status server_next_msg(struct server *s, uint32_t max, uint8_t *type, uint32_t *len,
			       const uint8_t **msg)
{
	struct evbuffer *in = sock_in(&s->sock);
	uint8_t hdr[PQ_HEADER_SIZE];
	enum pq_status st;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
		return PQ_NEED_MORE;
	st = pq_read_header(hdr, sizeof(hdr), type, len, max);
	if (st != PQ_OK)
		return st;
	if (evbuffer_get_length(in) < (size_t)*len + 1)
		return PQ_NEED_MORE;
	*msg = evbuffer_pullup(in, (ssize_t)*len + 1);
	return *msg ? PQ_OK : PQ_ERR_LENGTH;
}

/* A reported parameter changed: its interned copy is stale. */
bool server_set_reported(struct server *s, const char *name, const char *value)
{
	const char *old = params_get(&s->reported, name);

	if (old && strcmp(old, value) == 0)
		return true;
	params_snap_put(s->reported_snap);
	s->reported_snap = NULL;
	return params_set(&s->reported, name, value);
}

struct params_snap *server_reported(struct server *s)
{
	if (s->reported_snap == NULL)
		s->reported_snap = params_snap_get(&s->reported);
	return s->reported_snap;
}

/* Record a ParameterStatus body; false when malformed. */
bool server_take_param(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_cursor cur;
	const char *name, *value;

	pq_cursor_init(&cur, body, len);
	name = pq_get_str(&cur);
	value = pq_get_str(&cur);
	if (!pq_cursor_done(&cur))
		return false;
	return server_set_reported(s, name, value);
}

/* The message of an ErrorResponse, for logs and for clients waiting on a login. */
void server_error_text(const uint8_t *body, size_t len, char *sqlstate, char *msg, size_t msglen)
{
	struct pq_error_fields f;

	strcpy(sqlstate, SQLSTATE_CONNECTION_FAILURE);
	snprintf(msg, msglen, "server sent a malformed error");
	if (pq_parse_error(body, len, &f) != PQ_OK)
		return;
	if (f.sqlstate && strlen(f.sqlstate) == 5)
		memcpy(sqlstate, f.sqlstate, 6);
	snprintf(msg, msglen, "%s", f.message ? f.message : "unknown error");
}

/* Consume the reply to DISCARD ALL; back to the pool on ReadyForQuery. */
static void server_handle_reset(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->state == SV_RESET) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK) {
			server_close(s, "invalid message during reset");
			return;
		}
		if (type == 'E') {
			server_close(s, "reset query failed");
			return;
		}
		if (type == 'S' && !server_take_param(s, msg + PQ_HEADER_SIZE, len - 4)) {
			server_close(s, "malformed ParameterStatus");
			return;
		}
		if (type == 'Z') {
			s->txn_status = len >= 5 ? (char)msg[PQ_HEADER_SIZE] : 'I';
			s->pending_syncs = 0;
			s->xact_start_us = 0;
			evbuffer_drain(in, len + 1);
			if (s->txn_status != 'I' || !server_current(s)) {
				server_terminate(s, "not reusable after reset");
				return;
			}
			server_set_state(s, SV_IDLE);
			pool_service(s->pool);
			return;
		}
		evbuffer_drain(in, len + 1);
	}
}

/* An idle server spoke: parameter changes and notices are fine, anything else ends it. */
static void server_handle_idle(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->state == SV_IDLE) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK || (type != 'S' && type != 'N' && type != 'A')) {
			server_close(s, type == 'E' ? "server sent an error while idle"
						    : "unexpected message while idle");
			return;
		}
		if (type == 'S' && !server_take_param(s, msg + PQ_HEADER_SIZE, len - 4)) {
			server_close(s, "malformed ParameterStatus");
			return;
		}
		evbuffer_drain(in, len + 1);
	}
}

/* Send what a builder holds and free it; false when it failed or could not be sent. */
bool server_send_msg(struct server *s, struct pq_buf *b)
{
	bool ok = !b->failed && sock_write(&s->sock, b->data, b->len);

	pq_buf_free(b);
	return ok;
}

/* ---- callbacks ---- */

static void server_read_cb(struct sock *sk, void *arg)
{
	(void)sk;
	server_on_input(arg);
}

void server_on_input(struct server *s)
{
	switch (s->state) {
	case SV_LOGIN:
		server_handle_login(s);
		break;
	case SV_ACTIVE:
		if (s->pool->owner)
			s->pool->owner->input(s); /* a replay connection (shadow reads) */
		else if (s->internal_cb)
			server_handle_internal(s);
		else if (s->listen_flow)
			listen_flow_input(s);
		else
			server_forward(s);
		break;
	case SV_LISTEN:
		listen_conn_input(s);
		break;
	case SV_RESET:
		server_handle_reset(s);
		break;
	case SV_IDLE:
		server_handle_idle(s);
		break;
	case SV_CONNECT:
		if (s->tls_step == SERVER_TLS_ASKED)
			server_handle_tls_answer(s);
		break;
	case SV_FREE:
		break;
	}
}

static void server_write_cb(struct sock *sk, void *arg)
{
	struct server *s = arg;
	struct client *c = s->client;

	(void)sk;
	/* the server caught up: let its client's input flow again */
	if (c && c->read_paused && server_output_len(s) < (size_t)rt.cfg->conn_buffer_size) {
		client_resume_reading(c);
		client_forward(c);
	}
}

static void server_event_cb(struct sock *sk, int what, void *arg)
{
	struct server *s = arg;

	if (s->state == SV_CONNECT || s->state == SV_LOGIN) {
		server_login_event(s, what);
		return;
	}
	/* deliver what arrived before the end */
	if (s->state == SV_ACTIVE)
		server_forward(s);
	else if (s->state == SV_LISTEN)
		listen_conn_input(s);
	server_close(s, (what & SOCK_ERROR) ? sock_error_text(sk)
					    : "server closed the connection unexpectedly");
}

static void server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (s->state == SV_CONNECT || s->state == SV_LOGIN)
		server_login_timeout(s);
}

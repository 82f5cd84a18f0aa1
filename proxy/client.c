/*
 * client.c - client connections: their states and lists, their life from
 * accept() to the reaper, the one way out with an error
 * (client_disconnect), and the socket callbacks that dispatch by state.
 *
 * A client arrives in CL_LOGIN (client_login.c: startup packet, TLS,
 * authentication), waits for a server (CL_WAIT_LOGIN) whose ParameterStatus
 * values make its welcome, and from then on is CL_ACTIVE while linked to a
 * server or CL_IDLE between transactions in transaction pooling; its
 * messages are forwarded by client_forward.c, and what its server-side
 * session holds is read, restored and moved by client_session.c.
 */
#include "proxy/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/ddl.h"
#include "proxy/shadow.h"
#include "proxy/io/sock_tls.h"
#include "proxy/relay.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_forward.h"
#include "proxy/cancel.h"
#include "proxy/client_forward.h"
#include "proxy/client_login.h"
#include "proxy/listen_client.h"
#include "proxy/switch_gap.h"

/*
 * Bytes asked of recv() at once until the client has logged in.  Each read
 * reserves that much in the input evbuffer, whose chains libevent allocates
 * in powers of two from 1 kB with a ~48-byte header: a full-size (16 kB)
 * read costs a 32 kB chain however few bytes arrive, so a client that sends
 * a few bytes and stalls (slowloris) would hold one; 960 bytes fill exactly
 * one 1 kB chain.  Startup and authentication messages are small (at most
 * PQ_STARTUP_MAX and CLIENT_AUTH_MSG_MAX), so this costs a few reads at most.
 */
#define CLIENT_LOGIN_READ_SIZE 960
/* How long a client may take to read its last error before we drop it. */
#define CLIENT_CLOSE_FLUSH_SEC 5

/* Clients closed in a callback, freed by the reaper after it returns. */
static struct list_node reap_clients = {&reap_clients, &reap_clients};

static void client_read_cb(struct sock *sk, void *arg);
static void client_write_cb(struct sock *sk, void *arg);
static void client_event_cb(struct sock *sk, int what, void *arg);
static void client_timer_cb(evutil_socket_t fd, short what, void *arg);

static const char *const state_names[] = {
	[CL_LOGIN] = "login",  [CL_WAIT_LOGIN] = "wait_login", [CL_IDLE] = "idle",
	[CL_WAIT] = "waiting", [CL_ACTIVE] = "active",         [CL_CLOSING] = "closing",
	[CL_FREE] = "free",
};

const char *client_state_name(enum client_state st)
{
	return state_names[st];
}

/* ---- state and lists ---- */

/* Which list a client in state 'st' belongs on. */
static struct list_node *client_state_list(struct client *c, enum client_state st)
{
	switch (st) {
	case CL_LOGIN:
		return &rt.login_clients;
	case CL_WAIT_LOGIN:
	case CL_WAIT:
		return &c->pool->waiting_clients;
	case CL_IDLE:
		return &c->pool->idle_clients;
	case CL_ACTIVE:
		return c->kind ? &rt.kind_clients : &c->pool->active_clients;
	case CL_CLOSING:
		return &rt.closing_clients;
	case CL_FREE:
		return &reap_clients;
	}
	return NULL;
}

/* Legal transitions; anything else is a bug caught in the log. */
static bool client_transition_ok(enum client_state from, enum client_state to)
{
	if (to == CL_CLOSING || to == CL_FREE)
		return from != CL_FREE;
	switch (from) {
	case CL_LOGIN:
		/* CL_IDLE: welcomed from the pool's cache; CL_ACTIVE: a client_kind's */
		return to == CL_WAIT_LOGIN || to == CL_IDLE || to == CL_ACTIVE;
	case CL_WAIT_LOGIN:
		return to == CL_ACTIVE;
	case CL_IDLE:
		return to == CL_WAIT;
	case CL_WAIT:
		return to == CL_ACTIVE;
	case CL_ACTIVE:
		return to == CL_IDLE || to == CL_WAIT;
	default:
		return false;
	}
}

void client_set_state(struct client *c, enum client_state st)
{
	bool in_pool_before = c->pool && c->state >= CL_WAIT_LOGIN && c->state <= CL_ACTIVE;
	bool in_pool_after = c->pool && st >= CL_WAIT_LOGIN && st <= CL_ACTIVE;

	if (!client_transition_ok(c->state, st))
		log_error("client %s: illegal state change %s -> %s", c->addr,
			  state_names[c->state], state_names[st]);
	if (list_linked(&c->node))
		list_remove(&c->node);
	if (in_pool_before && !in_pool_after)
		c->pool->nclients--;
	else if (!in_pool_before && in_pool_after)
		c->pool->nclients++;
	c->state = st;
	list_append(client_state_list(c, st), &c->node);
	/* between transactions its (empty) buffers may go back: idle clients cost little */
	sock_set_idle(&c->sock, st == CL_IDLE);
	if (st == CL_WAIT || st == CL_WAIT_LOGIN)
		c->wait_start_us = rt_now_us(); /* query_wait_timeout counts from here */
}

/* ---- lifecycle ---- */

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%d", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%d", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}

void client_accept(const struct client_kind *kind, int fd, const struct sockaddr *sa)
{
	struct client *c;
	struct timeval tv;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_error("could not accept a client: out of memory");
		close(fd);
		return;
	}
	list_init(&c->node);
	session_init(&c->sess);
	format_addr(sa, c->addr, sizeof(c->addr));
	c->kind = kind;
	c->is_unix = sa->sa_family == AF_UNIX;
	c->connect_time_us = rt_now_us();
	c->last_input_us = c->connect_time_us;
	c->timer = evtimer_new(rt.base, client_timer_cb, c);
	/* input is bounded: reading stops when it holds this much unforwarded */
	if (c->timer == NULL ||
	    !sock_init(&c->sock, fd, limit, client_read_cb, client_write_cb, client_event_cb, c)) {
		log_error("could not accept a client: out of memory");
		close(fd);
		if (c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		int on = 1;

		/* small protocol messages must not wait for Nagle (as PostgreSQL does) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	}
	sock_set_read_size(&c->sock, CLIENT_LOGIN_READ_SIZE);
	rt.nclients++;
	c->state = CL_LOGIN;
	list_append(&rt.login_clients, &c->node);

	tv.tv_sec = rt.cfg->client_login_timeout_ms / 1000;
	tv.tv_usec = (rt.cfg->client_login_timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	log_debug("client %s: connected%s%s", c->addr, kind ? " to the " : "",
		  kind ? kind->name : "");
}

/*
 * The login deadline is over (logged in, or closing): a logged-in client
 * keeps no timer, so thousands of idle clients cost no timer events.
 */
void client_drop_timer(struct client *c)
{
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
}

/* What only authentication needed goes once it is over. */
void client_free_login(struct client *c)
{
	if (c->login == NULL)
		return;
	if (c->login->scram_active)
		auth_scram_server_free(&c->login->scram);
	free(c->login);
	c->login = NULL;
}

/* Unlink the server, if any, and give it back to its pool. */
void client_drop_server(struct client *c)
{
	struct server *s = c->server;

	if (s == NULL)
		return;
	c->server = NULL;
	server_release(s);
}

/* Common part of closing: detach from everything, mark for the reaper. */
static void client_finish(struct client *c)
{
	struct pool *pool = c->pool;
	void (*move_done)(struct client *, void *) = c->move_done;
	void *move_arg = c->move_arg;

	c->move_done = NULL;
	c->move_arg = NULL;
	if (c->gap_wait)
		db_gap_started(c); /* held by a switch, gone before it started: counted off */
	client_drop_server(c);
	cancel_unregister(c);
	listen_client_gone(c);
	if (c->cancelling)
		cancel_forget_requester(c);
	sock_disable(&c->sock);
	client_drop_timer(c);
	client_set_state(c, CL_FREE);
	/*
	 * A session check in flight answers now: a session that is gone has
	 * nothing to move.  Only once it is free, so that whoever asked (a
	 * switch, the background move after one) finds it gone and does not
	 * move it, serve what it sent, and close it a second time from there.
	 */
	if (move_done) {
		c->move = MOVE_OK;
		move_done(c, move_arg);
	}
	rt_schedule_reap();
	/* a waiting client leaving can let the pool replace an idle server */
	if (pool)
		pool_service(pool);
}

void client_close(struct client *c, const char *reason)
{
	if (c->state == CL_FREE)
		return;
	log_debug("client %s: closing: %s", c->addr, reason);
	client_finish(c);
}

void client_reap_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &reap_clients) {
		struct client *c = list_entry(n, struct client, node);

		list_remove(&c->node);
		sock_free(&c->sock);
		if (c->timer)
			event_free(c->timer);
		client_free_login(c);
		params_snap_put(c->startup);
		params_snap_put(c->reported);
		free(c->user);
		free(c->dbname);
		session_free(&c->sess);
		ddl_client_free(c);
		shadow_client_gone(c);
		if (c->kind && c->kind->freed)
			c->kind->freed(c);
		rt.nclients--;
		free(c);
	}
	if (rt.shutting_down && rt.nclients == 0)
		event_base_loopbreak(rt.base);
}

bool client_send(struct client *c, const void *data, size_t len)
{
	if (c->state == CL_FREE)
		return false;
	return sock_write(&c->sock, data, len);
}

bool client_send_buf(struct client *c, struct pq_buf *b)
{
	bool ok = !b->failed && client_send(c, b->data, b->len);

	pq_buf_free(b);
	return ok;
}

void client_disconnect(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	struct pq_buf b;
	struct timeval tv = {CLIENT_CLOSE_FLUSH_SEC, 0};
	va_list ap;

	if (c->state == CL_FREE || c->state == CL_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("client %s%s%s%s%s: closing: %s (%s)", c->addr, c->user ? " " : "",
		 c->user ? c->user : "", c->dbname ? "@" : "", c->dbname ? c->dbname : "", msg,
		 sqlstate);
	if (sock_tls_handshaking(&c->sock)) {
		/* no channel to say it on yet: plaintext is not what the client expects */
		client_finish(c);
		return;
	}

	pq_buf_init(&b);
	pq_build_error(&b, "FATAL", sqlstate, msg, NULL, NULL);
	if (!client_send_buf(c, &b)) {
		client_finish(c);
		return;
	}
	/* stop reading, flush the error, then close (or give up after a while) */
	client_drop_server(c);
	cancel_unregister(c);
	listen_client_gone(c); /* no notification after its FATAL */
	sock_set_reading(&c->sock, false);
	sock_set_out_low(&c->sock, 0);
	client_set_state(c, CL_CLOSING);
	if (c->timer == NULL)
		c->timer = evtimer_new(rt.base, client_timer_cb, c);
	if (c->timer)
		evtimer_add(c->timer, &tv);
	if (sock_out_len(&c->sock) == 0)
		client_finish(c);
}

size_t client_output_len(const struct client *c)
{
	return sock_out_len(&c->sock);
}

void client_pause_reading(struct client *c)
{
	if (!c->read_paused) {
		c->read_paused = true;
		sock_set_reading(&c->sock, false);
	}
}

void client_resume_reading(struct client *c)
{
	if (c->read_paused) {
		c->read_paused = false;
		sock_set_reading(&c->sock, true);
	}
}

/* ---- libevent callbacks ---- */

static void client_read_cb(struct sock *sk, void *arg)
{
	struct client *c = arg;

	(void)sk;
	c->last_input_us = rt_now_us(); /* client_message_timeout (janitor.c) */
	switch (c->state) {
	case CL_LOGIN:
		client_handle_login(c);
		break;
	case CL_ACTIVE:
		if (c->kind)
			c->kind->input(c);
		else
			client_forward(c);
		break;
	case CL_IDLE:
		client_request_server(c);
		break;
	case CL_WAIT_LOGIN:
	case CL_WAIT:
		/* keep it buffered (bounded by the read watermark) until a server comes */
		break;
	case CL_CLOSING:
	case CL_FREE:
		break;
	}
}

static void client_write_cb(struct sock *sk, void *arg)
{
	struct client *c = arg;
	struct server *s = c->server;

	if (c->state == CL_CLOSING) {
		if (sock_out_len(sk) == 0)
			client_finish(c);
		return;
	}
	/* notifications that waited for room */
	if (c->lsub)
		listen_client_drained(c);
	/* the client caught up: let its server's output flow again */
	if (s && s->read_paused && client_output_len(c) < (size_t)rt.cfg->conn_buffer_size) {
		server_resume_reading(s);
		server_forward(s);
	}
}

static void client_event_cb(struct sock *sk, int what, void *arg)
{
	struct client *c = arg;

	if (what & SOCK_TLS_READY) {
		log_debug("client %s: TLS established (%s, %s)", c->addr, sock_tls_version(sk),
			  sock_tls_cipher(sk));
		return; /* the startup packet comes next, through read events */
	}
	if ((what & SOCK_ERROR) && c->state == CL_LOGIN && sock_tls_error(sk)) {
		log_info("client %s: TLS handshake or read failed: %s", c->addr, sock_tls_error(sk));
		client_close(c, "TLS failure");
		return;
	}
	if ((what & SOCK_EOF) && c->state == CL_LOGIN && sock_in_len(&c->sock) > 0) {
		/* as PostgreSQL logs it: a client that gave up in the middle of a packet */
		log_info("client %s: incomplete %s packet", c->addr,
			 c->auth_step == AUTH_STEP_STARTUP ? "startup" : "authentication");
		client_close(c, "incomplete packet");
	} else if (what & SOCK_EOF)
		client_close(c, "client closed the connection");
	else if (what & SOCK_ERROR)
		client_close(c, sock_error_text(sk));
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CL_CLOSING) {
		client_close(c, "client did not read its last error in time");
	} else if (c->state == CL_LOGIN) {
		log_info("client %s: login timeout", c->addr);
		client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
				  "client_login_timeout expired: the client did not complete its login in time");
	}
}

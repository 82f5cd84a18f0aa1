/*
 * client.c - client connections.
 *
 * A client arrives in CL_LOGIN: pgcutover reads its startup packet (answering
 * SSLRequest with 'S' and a TLS handshake when client_tls_sslmode allows it,
 * else 'N', GSSENCRequest with 'N', forwarding CancelRequest), checks the
 * database and the limits, and authenticates it against auth_file.  It then
 * waits for a server (CL_WAIT_LOGIN); the first server linked to it provides
 * the ParameterStatus values of the welcome.  From then on the client is
 * CL_ACTIVE while linked to a server, or CL_IDLE between transactions in
 * transaction pooling, and its messages are forwarded in batches: headers
 * are read in place, whole runs of messages are moved to the server's output
 * with one evbuffer_remove_buffer(), and a large message is streamed by
 * remembering how much of it is left (msg_left).
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
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/relay.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/track.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/auth/userlist.h"

/* Authentication messages are small; anything larger is an attack or a bug. */
#define CLIENT_AUTH_MSG_MAX 8192
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
/* Buckets of the cancel-key table (a power of two). */
#define CANCEL_BUCKETS 4096

/* Clients closed in a callback, freed by the reaper after it returns. */
static struct list_node reap_clients = {&reap_clients, &reap_clients};
/* Cancel-key hash table: BackendKeyData we handed out -> client. */
static struct client *cancel_table[CANCEL_BUCKETS];

static void client_read_cb(struct sock *sk, void *arg);
static void client_write_cb(struct sock *sk, void *arg);
static void client_event_cb(struct sock *sk, int what, void *arg);
static void client_timer_cb(evutil_socket_t fd, short what, void *arg);
static void client_handle_login(struct client *c);
static void client_relocate(struct client *c);

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

/* ---- cancel keys ---- */

static void cancel_register(struct client *c)
{
	struct client **b;

	/* pid 0 is never handed out so that an all-zero request finds nobody */
	do {
		if (!auth_random_bytes(&c->cancel_pid, sizeof(c->cancel_pid)) ||
		    !auth_random_bytes(&c->cancel_key, sizeof(c->cancel_key)))
			c->cancel_pid = (uint32_t)random();
	} while (c->cancel_pid == 0);
	b = &cancel_table[c->cancel_pid & (CANCEL_BUCKETS - 1)];
	c->cancel_next = *b;
	*b = c;
}

static void cancel_unregister(struct client *c)
{
	struct client **p;

	if (c->cancel_pid == 0)
		return;
	for (p = &cancel_table[c->cancel_pid & (CANCEL_BUCKETS - 1)]; *p; p = &(*p)->cancel_next) {
		if (*p == c) {
			*p = c->cancel_next;
			break;
		}
	}
	c->cancel_pid = 0;
}

struct client *client_find_by_key(uint32_t pid, uint32_t key)
{
	struct client *c;

	for (c = cancel_table[pid & (CANCEL_BUCKETS - 1)]; c; c = c->cancel_next)
		if (c->cancel_pid == pid && c->cancel_key == key)
			return c;
	return NULL;
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
static void client_drop_timer(struct client *c)
{
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
}

/* What only authentication needed goes once it is over. */
static void client_free_login(struct client *c)
{
	if (c->login == NULL)
		return;
	if (c->login->scram_active)
		auth_scram_server_free(&c->login->scram);
	free(c->login);
	c->login = NULL;
}

/* Unlink the server, if any, and give it back to its pool. */
static void client_drop_server(struct client *c)
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

	client_drop_server(c);
	cancel_unregister(c);
	sock_disable(&c->sock);
	client_drop_timer(c);
	client_set_state(c, CL_FREE);
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

static bool client_send_buf(struct client *c, struct pq_buf *b)
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

/* ---- login: startup packet ---- */

/* Forward a CancelRequest to the server of the client it names. */
static void client_handle_cancel(struct client *c, uint32_t pid, uint32_t key)
{
	struct client *target = client_find_by_key(pid, key);

	if (target == NULL) {
		log_debug("client %s: cancel request for an unknown key", c->addr);
	} else if (target->server == NULL) {
		log_debug("client %s: cancel request for an idle session", c->addr);
	} else {
		log_debug("client %s: forwarding a cancel request", c->addr);
		server_send_cancel(target->server);
	}
	client_close(c, "cancel request handled");
}

/* A single-byte answer to SSLRequest / GSSENCRequest. */
static void client_refuse_encryption(struct client *c)
{
	if (!client_send(c, "N", 1))
		client_close(c, "could not send");
}

/* Whether an SSLRequest from this client gets 'S' (never on the unix socket, as PostgreSQL). */
static bool client_tls_offered(const struct client *c)
{
	return !c->is_unix && rt.cfg->client_tls_sslmode != SSLMODE_DISABLE &&
	       tls_client_ctx(rt.tls) != NULL;
}

/*
 * Answer SSLRequest with 'S' and start the handshake.  The 'S' goes out in
 * plaintext and is flushed first; any byte the client sent after its
 * SSLRequest arrived before the handshake and would otherwise be taken for
 * part of the encrypted session (CVE-2021-23214), so it is refused.
 */
static void client_start_tls(struct client *c)
{
	if (sock_in_len(&c->sock) > 0) {
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "received unencrypted data after SSL request: this could be either a client-software bug or evidence of an attempted man-in-the-middle attack");
		return;
	}
	if (!client_send(c, "S", 1)) {
		client_close(c, "could not send");
		return;
	}
	sock_flush_now(&c->sock);
	if (sock_out_len(&c->sock) > 0 || !sock_start_tls_accept(&c->sock, tls_client_ctx(rt.tls))) {
		log_warning("client %s: could not start TLS", c->addr);
		client_close(c, "could not start TLS");
	}
}

static void client_authenticated(struct client *c);
static bool client_send_welcome(struct client *c, struct params_snap *server_params);
static void client_start_auth(struct client *c);
static void client_handle_auth_msg(struct client *c);

/* Take the startup parameters; false once the client has been disconnected. */
static bool client_take_startup(struct client *c, const struct pq_startup *su)
{
	struct pq_cursor cur;
	const char *name, *value, *unsupported[16];
	int nunsupported = 0;
	bool replication = false;
	struct params startup;

	params_init(&startup);
	pq_cursor_init(&cur, su->params, su->params_len);
	while (pq_startup_next(&cur, &name, &value)) {
		if (strcmp(name, "user") == 0) {
			free(c->user);
			c->user = strdup(value);
		} else if (strcmp(name, "database") == 0) {
			free(c->dbname);
			c->dbname = strdup(value);
		} else if (strcmp(name, "replication") == 0) {
			replication = strcasecmp(value, "false") != 0 &&
				      strcasecmp(value, "off") != 0 &&
				      strcasecmp(value, "no") != 0 && strcmp(value, "0") != 0;
		} else if (strncmp(name, "_pq_.", 5) == 0) {
			/* protocol options: none supported, reported in NegotiateProtocolVersion */
			if (nunsupported < 16)
				unsupported[nunsupported++] = name;
		} else if (!params_set(&startup, name, value)) {
			params_free(&startup);
			client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return false;
		}
	}
	c->startup = params_snap_get(&startup);
	params_free(&startup);
	if (c->startup == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	if (c->user == NULL || c->user[0] == '\0') {
		client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
				  "no PostgreSQL user name specified in startup packet");
		return false;
	}
	if (c->dbname == NULL || c->dbname[0] == '\0') {
		free(c->dbname);
		c->dbname = strdup(c->user);
	}
	if (c->dbname == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	if (replication) {
		client_disconnect(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
				  "replication connections are not supported by pgcutover: connect to the database server directly");
		return false;
	}
	/* a newer minor version or protocol options: tell the client what we speak */
	if (PQ_PROTOCOL_MINOR(su->code) > 0 || nunsupported > 0) {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_negotiate_version(&b, 0, nunsupported, unsupported);
		if (!client_send_buf(c, &b)) {
			client_close(c, "could not send");
			return false;
		}
	}
	return true;
}

/* Checks once the startup packet is known: database, limits.  False when disconnected. */
static bool client_admit(struct client *c)
{
	if (rt.shutting_down) {
		client_disconnect(c, SQLSTATE_ADMIN_SHUTDOWN, "pgcutover is shutting down");
		return false;
	}
	if (rt.nclients > rt.cfg->max_client_conn) {
		client_disconnect(c, SQLSTATE_TOO_MANY_CONNECTIONS,
				  "no more connections allowed: max_client_conn (%d) reached",
				  rt.cfg->max_client_conn);
		return false;
	}
	if (c->kind)
		return true;
	c->db = pool_find_db(c->dbname);
	if (c->db == NULL) {
		client_disconnect(c, SQLSTATE_INVALID_CATALOG_NAME,
				  "database \"%s\" does not exist", c->dbname);
		return false;
	}
	return true;
}

static void client_handle_startup(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);

	while (c->state == CL_LOGIN && c->auth_step == AUTH_STEP_STARTUP) {
		size_t avail = evbuffer_get_length(in);
		const uint8_t *pkt;
		uint32_t len;
		struct pq_startup su;
		enum pq_status st;

		if (avail < 4)
			return;
		pkt = evbuffer_pullup(in, 4);
		if (pq_read_startup_len(pkt, 4, &len) != PQ_OK) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
					  "invalid length of startup packet");
			return;
		}
		if (avail < len)
			return; /* a packet split over several segments: wait for the rest */
		pkt = evbuffer_pullup(in, len);
		if (pkt == NULL) {
			client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		st = pq_parse_startup(pkt, len, &su);
		if (st == PQ_ERR_VERSION) {
			client_disconnect(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
					  "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
					  PQ_PROTOCOL_MAJOR(su.code), PQ_PROTOCOL_MINOR(su.code));
			return;
		}
		if (st != PQ_OK) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
					  "invalid startup packet layout: expected terminator as last byte");
			return;
		}
		switch (su.code) {
		case PQ_SSL_REQUEST_CODE:
		case PQ_GSSENC_REQUEST_CODE: {
			bool *done = su.code == PQ_SSL_REQUEST_CODE ? &c->ssl_done : &c->gss_done;

			if (*done) {
				client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
						  "duplicate %s request: encryption was already negotiated on this connection",
						  su.code == PQ_SSL_REQUEST_CODE
							  ? "SSL"
							  : "GSSAPI encryption");
				return;
			}
			*done = true;
			evbuffer_drain(in, len);
			if (su.code == PQ_SSL_REQUEST_CODE && client_tls_offered(c)) {
				client_start_tls(c);
				return; /* the handshake runs; then the startup packet */
			}
			client_refuse_encryption(c);
			continue;
		}
		case PQ_CANCEL_REQUEST_CODE:
			evbuffer_drain(in, len);
			client_handle_cancel(c, su.cancel_pid, su.cancel_key);
			return;
		default:
			break;
		}
		if (!client_take_startup(c, &su))
			return;
		evbuffer_drain(in, len);
		if (!sock_is_tls(&c->sock) && !c->is_unix &&
		    rt.cfg->client_tls_sslmode >= SSLMODE_REQUIRE) {
			client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
					  "TLS is required: client_tls_sslmode is %s, so plaintext connections are refused",
					  tls_sslmode_name(rt.cfg->client_tls_sslmode));
			return;
		}
		if (!client_admit(c))
			return;
		log_debug("client %s: login as %s to %s", c->addr, c->user, c->dbname);
		client_start_auth(c);
	}
}

static void client_handle_login(struct client *c)
{
	if (c->auth_step == AUTH_STEP_STARTUP)
		client_handle_startup(c);
	if (c->state == CL_LOGIN && c->auth_step != AUTH_STEP_STARTUP &&
	    c->auth_step != AUTH_STEP_DONE)
		client_handle_auth_msg(c);
}

/* ---- login: authentication ---- */

static void client_password_failed(struct client *c)
{
	client_disconnect(c, SQLSTATE_INVALID_PASSWORD,
			  "password authentication failed for user \"%s\"", c->user);
}

static bool client_send_auth(struct client *c, uint32_t code, const void *data, size_t len)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_auth(&b, code, data, len);
	return client_send_buf(c, &b);
}

/* Start SCRAM against the user's secret (or a mock one, which never matches). */
static void client_start_scram(struct client *c, const char *secret)
{
	struct auth_scram_secret sec;
	static const char *const mechs[] = {"SCRAM-SHA-256", NULL};
	/* on TLS, channel binding first, as PostgreSQL lists them */
	static const char *const mechs_plus[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", NULL};
	struct pq_buf b;
	bool ok = false;

	/*
	 * The user's SCRAM secret; a plaintext password's is derived once per
	 * user and kept.  As in PostgreSQL, an MD5 hash cannot serve SCRAM.
	 */
	if (secret)
		ok = userlist_scram_secret(rt.users, c->user, &sec);
	if (!ok && !auth_scram_mock_secret(c->user, &sec)) {
		client_disconnect(c, SQLSTATE_INTERNAL_ERROR,
				  "could not prepare SCRAM authentication");
		return;
	}
	if (c->login == NULL)
		c->login = calloc(1, sizeof(*c->login));
	if (c->login == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	auth_scram_server_init(&c->login->scram, &sec);
	c->login->scram_active = true;
	c->login->scram_plus = false;
	if (sock_is_tls(&c->sock)) {
		c->login->cbind_len = 0;
		c->login->scram_plus =
			tls_server_end_point(c->sock.tls, c->login->cbind, &c->login->cbind_len);
	}
	pq_buf_init(&b);
	pq_build_auth_sasl(&b, c->login->scram_plus ? mechs_plus : mechs);
	if (!client_send_buf(c, &b)) {
		client_close(c, "could not send");
		return;
	}
	c->auth_step = AUTH_STEP_SCRAM_FIRST;
}

/*
 * client_tls_sslmode verify-ca / verify-full: the handshake verified the
 * certificate's chain; verify-full also wants its CN to be the user name, as
 * PostgreSQL's clientcert=verify-full.  The password (auth_type) is asked
 * for as well: the certificate is an additional check, except with
 * auth_type = trust, where it is the only one.  False when disconnected.
 */
static bool client_check_certificate(struct client *c)
{
	enum tls_sslmode mode = rt.cfg->client_tls_sslmode;
	char cn[256];

	if (mode < SSLMODE_VERIFY_CA || c->is_unix)
		return true;
	/* a reload may have raised the mode after this client's handshake */
	if (!sock_is_tls(&c->sock) || !sock_tls_peer_verified(&c->sock)) {
		client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
				  "connection requires a valid client certificate (client_tls_sslmode is %s)",
				  tls_sslmode_name(mode));
		return false;
	}
	if (mode == SSLMODE_VERIFY_FULL) {
		if (!tls_peer_common_name(c->sock.tls, cn, sizeof(cn))) {
			client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
					  "certificate authentication failed for user \"%s\": the client certificate has no usable common name",
					  c->user);
			return false;
		}
		if (strcmp(cn, c->user) != 0) {
			client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
					  "certificate authentication failed for user \"%s\": the client certificate is for \"%s\"",
					  c->user, cn);
			return false;
		}
	}
	return true;
}

static void client_start_auth(struct client *c)
{
	const char *secret = userlist_secret(rt.users, c->user);
	enum auth_type type = rt.cfg->auth_type;

	if (!client_check_certificate(c))
		return;
	if (type == AUTH_TRUST && c->kind && c->kind->always_password) {
		/*
		 * The admin console (TCP only) always checks a password from
		 * auth_file, whatever auth_type says: SCRAM, or md5 for an md5 secret.
		 */
		type = secret && auth_secret_kind(secret) == AUTH_SECRET_MD5 ? AUTH_MD5 : AUTH_SCRAM;
	}
	if (type == AUTH_TRUST) {
		client_authenticated(c);
		return;
	}
	if (type == AUTH_MD5 && (secret == NULL || auth_secret_kind(secret) != AUTH_SECRET_SCRAM)) {
		if (!auth_random_bytes(c->md5_salt, sizeof(c->md5_salt))) {
			client_disconnect(c, SQLSTATE_INTERNAL_ERROR,
					  "could not generate a random salt");
			return;
		}
		if (!client_send_auth(c, PQ_AUTH_MD5, c->md5_salt, sizeof(c->md5_salt))) {
			client_close(c, "could not send");
			return;
		}
		c->auth_step = AUTH_STEP_MD5;
		return;
	}
	/* scram-sha-256, or md5 with a SCRAM secret (PostgreSQL does the same) */
	client_start_scram(c, secret);
}

static void client_handle_auth_msg(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	uint8_t hdr[PQ_HEADER_SIZE], type;
	const uint8_t *msg;
	uint32_t len;
	struct pq_cursor cur;
	const char *err = NULL;
	char *reply;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
		return;
	if (pq_read_header(hdr, sizeof(hdr), &type, &len, CLIENT_AUTH_MSG_MAX) != PQ_OK ||
	    type != 'p') {
		if (type == 'X') {
			client_close(c, "client gave up during authentication");
			return;
		}
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "expected password response, got message type %d with length %u",
				  (int)type, (unsigned)len);
		return;
	}
	if (evbuffer_get_length(in) < (size_t)len + 1)
		return;
	msg = evbuffer_pullup(in, (ssize_t)len + 1);
	if (msg == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	pq_cursor_init(&cur, msg + PQ_HEADER_SIZE, len - 4);

	switch (c->auth_step) {
	case AUTH_STEP_MD5: {
		const char *resp = pq_get_str(&cur);
		const char *secret = userlist_secret(rt.users, c->user);

		if (!pq_cursor_done(&cur)) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet");
			return;
		}
		if (secret == NULL || !auth_md5_verify(c->user, secret, c->md5_salt, resp)) {
			client_password_failed(c);
			return;
		}
		evbuffer_drain(in, len + 1);
		client_authenticated(c);
		return;
	}
	case AUTH_STEP_SCRAM_FIRST: {
		const char *mech = pq_get_str(&cur);
		int32_t dlen = pq_get_i32(&cur);
		const uint8_t *data;

		if (cur.failed || dlen < 0 || (size_t)dlen != pq_cursor_left(&cur)) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
					  "malformed SASLInitialResponse message");
			return;
		}
		if (c->login->scram_plus && strcmp(mech, "SCRAM-SHA-256-PLUS") == 0) {
			/* tls-server-end-point: the client-first must bind to our certificate */
			if (!auth_scram_server_set_channel_binding(&c->login->scram, c->login->cbind,
								   c->login->cbind_len, true)) {
				client_disconnect(c, SQLSTATE_INTERNAL_ERROR,
						  "could not set up SCRAM channel binding");
				return;
			}
		} else if (strcmp(mech, "SCRAM-SHA-256") != 0) {
			client_disconnect(c, SQLSTATE_INVALID_AUTHORIZATION,
					  "client selected an invalid SASL authentication mechanism");
			return;
		} else if (c->login->scram_plus &&
			   !auth_scram_server_set_channel_binding(&c->login->scram, c->login->cbind,
								  c->login->cbind_len, false)) {
			/* offered but not chosen: a "y" flag is then a downgrade */
			client_disconnect(c, SQLSTATE_INTERNAL_ERROR,
					  "could not set up SCRAM channel binding");
			return;
		}
		data = pq_get_bytes(&cur, (size_t)dlen);
		reply = auth_scram_server_first(&c->login->scram, (const char *)data, (size_t)dlen,
						&err);
		if (reply == NULL) {
			client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "%s",
					  err ? err : "malformed SCRAM message");
			return;
		}
		evbuffer_drain(in, len + 1);
		if (!client_send_auth(c, PQ_AUTH_SASL_CONTINUE, reply, strlen(reply))) {
			free(reply);
			client_close(c, "could not send");
			return;
		}
		free(reply);
		c->auth_step = AUTH_STEP_SCRAM_FINAL;
		return;
	}
	case AUTH_STEP_SCRAM_FINAL: {
		bool wrong = false;
		size_t dlen = pq_cursor_left(&cur);

		reply = auth_scram_server_final(&c->login->scram,
						(const char *)pq_get_bytes(&cur, dlen), dlen,
						&wrong, &err);
		if (reply == NULL) {
			if (wrong)
				client_password_failed(c);
			else
				client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION, "%s",
						  err ? err : "malformed SCRAM message");
			return;
		}
		evbuffer_drain(in, len + 1);
		if (!client_send_auth(c, PQ_AUTH_SASL_FINAL, reply, strlen(reply))) {
			free(reply);
			client_close(c, "could not send");
			return;
		}
		free(reply);
		client_authenticated(c);
		return;
	}
	default:
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "unexpected authentication message");
		return;
	}
}

/* Authentication passed: find the pool and wait for a server to welcome us. */
static void client_authenticated(struct client *c)
{
	const uint8_t *key = NULL;
	struct params_snap *welcome;

	c->auth_step = AUTH_STEP_DONE;
	sock_set_read_size(&c->sock, 0); /* logged in: full-size reads again */
	if (c->login && c->login->scram_active) {
		key = auth_scram_server_client_key(&c->login->scram);
	}
	if (c->kind) {
		client_drop_timer(c);
		client_free_login(c);
		c->kind->logged_in(c);
		return;
	}
	c->pool = pool_get(c->db, c->user);
	if (c->pool == NULL) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (key) {
		memcpy(c->pool->client_key, key, sizeof(c->pool->client_key));
		c->pool->have_client_key = true;
	}
	client_free_login(c);
	cancel_register(c);
	welcome = pool_find_welcome(c->pool, c);
	if (welcome) {
		/* a server with these parameters logged in before: welcome at once */
		if (!client_send_welcome(c, welcome))
			return;
		client_set_state(c, CL_IDLE);
		sock_trim_soon(
			&c->sock); /* logged in and idle: its buffers go once the welcome is out */
		if (sock_in_len(&c->sock) > 0)
			client_request_server(c);
		return;
	}
	client_set_state(c, CL_WAIT_LOGIN);
	pool_request_server(c);
}

/*
 * Tell the client every server parameter whose value it has not seen yet;
 * afterwards it has seen exactly 'snap'.  The same snapshot (the common
 * case, every transaction in transaction pooling) costs one comparison.
 */
static bool client_sync_params(struct client *c, struct params_snap *snap)
{
	const struct params *server_params;
	struct pq_buf b;

	if (snap == c->reported)
		return true;
	if (snap == NULL)
		return false;
	server_params = &snap->p;
	pq_buf_init(&b);
	for (size_t i = 0; i < server_params->count; i++) {
		const char *name = server_params->names[i], *value = server_params->values[i];
		const char *known = c->reported ? params_get(&c->reported->p, name) : NULL;

		if (known && strcmp(known, value) == 0)
			continue;
		pq_build_param_status(&b, name, value);
	}
	params_snap_put(c->reported);
	c->reported = params_snap_ref(snap);
	if (b.len == 0) {
		pq_buf_free(&b);
		return true;
	}
	return client_send_buf(c, &b);
}

bool client_set_reported(struct client *c, const char *name, const char *value)
{
	struct params p;
	struct params_snap *snap;
	const char *old = c->reported ? params_get(&c->reported->p, name) : NULL;

	if (old && strcmp(old, value) == 0)
		return true;
	params_init(&p);
	if ((c->reported && !params_copy(&p, &c->reported->p)) || !params_set(&p, name, value)) {
		params_free(&p);
		return false;
	}
	snap = params_snap_get(&p);
	params_free(&p);
	if (snap == NULL)
		return false;
	params_snap_put(c->reported);
	c->reported = snap;
	return true;
}

/*
 * The welcome: AuthenticationOk, the server's parameters, our cancel key,
 * ReadyForQuery.  False when the client was closed.
 */
static bool client_send_welcome(struct client *c, struct params_snap *server_params)
{
	struct pq_buf b;

	client_drop_timer(c);
	if (!client_send_auth(c, PQ_AUTH_OK, NULL, 0) || !client_sync_params(c, server_params)) {
		client_close(c, "could not send");
		return false;
	}
	pq_buf_init(&b);
	pq_build_backend_key(&b, c->cancel_pid, c->cancel_key);
	pq_build_ready(&b, 'I');
	if (!client_send_buf(c, &b)) {
		client_close(c, "could not send");
		return false;
	}
	log_debug("client %s: logged in as %s to %s", c->addr, c->user, c->dbname);
	return true;
}

/* ---- a server for the session ---- */

/*
 * What a newly linked server must run before the client's next message, or
 * NULL.  Session pooling: the state of a session that moved.  Transaction
 * pooling: the client's own settings, replacing another client's.
 */
static char *client_restore_sql(struct client *c, const struct server *s, bool *oom)
{
	const struct session *ss = &c->sess;

	*oom = false;
	if (c->db->pool_mode == POOL_SESSION)
		return ss->restore ? session_restore_sql(ss, false, oom) : NULL;
	if (s->sess_owner == ss->id && s->sess_gen == ss->gen)
		return NULL;
	if (s->sess_owner == 0 && session_st(ss)->settings.count == 0)
		return NULL;
	return session_restore_sql(ss, s->sess_owner != 0, oom);
}

/* A server is linked and holds the session's state: the client's requests go on. */
static void client_resume_linked(struct client *c)
{
	if (!client_sync_params(c, server_reported(c->server))) {
		client_close(c, "could not send");
		return;
	}
	if (sock_in_len(&c->sock) > 0)
		client_forward(c);
}

/* The new server now holds the session's state: carry on with the client's request. */
static void client_restore_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;

	(void)rows;
	if (c->server != s || c->state != CL_ACTIVE)
		return;
	if (error) {
		client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
				  "could not restore the session on the new server of database \"%s\": %s",
				  c->db->name, error);
		return;
	}
	c->sess.restore = false;
	s->sess_owner = session_st(&c->sess)->settings.count > 0 ? c->sess.id : 0;
	s->sess_gen = c->sess.gen;
	client_resume_linked(c);
}

void client_server_ready(struct client *c)
{
	struct server *s = c->server;
	bool oom;
	char *sql;

	if (c->state == CL_WAIT_LOGIN) {
		if (!client_send_welcome(c, server_reported(s)))
			return;
		client_set_state(c, CL_ACTIVE);
		if (c->db->pool_mode == POOL_TRANSACTION) {
			/* the server was only needed for its parameters */
			client_drop_server(c);
			client_set_state(c, CL_IDLE);
			sock_trim_soon(&c->sock);
		}
		/* anything the client sent meanwhile */
		if (sock_in_len(&c->sock) > 0) {
			if (c->state == CL_ACTIVE)
				client_forward(c);
			else if (c->state == CL_IDLE)
				client_request_server(c);
		}
		return;
	}
	/* linked: off the waiting list, its requests held while a restore runs */
	client_set_state(c, CL_ACTIVE);
	sql = client_restore_sql(c, s, &oom);
	if (sql) {
		/* settings (and LISTENs, SQL statements) first, then the request */
		bool ok = server_internal_query(s, sql, client_restore_done, c);

		free(sql);
		if (!ok)
			client_disconnect(c, SQLSTATE_CONNECTION_FAILURE,
					  "could not restore the session on the new server of database \"%s\"",
					  c->db->name);
		return;
	}
	if (oom) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	c->sess.restore = false;
	client_resume_linked(c);
}

/* Queue for a server now, with or without a request (a LISTEN session after a move). */
static void client_wait_for_server(struct client *c)
{
	client_set_state(c, CL_WAIT);
	if (pool_db_paused(c->db))
		c->held = true; /* pool_service() serves it on resume */
	pool_request_server(c);
}

/* An idle client (transaction pooling) sent something: it needs a server. */
void client_request_server(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	uint8_t type;

	if (evbuffer_get_length(in) == 0)
		return;
	if (evbuffer_copyout(in, &type, 1) == 1 && type == 'X') {
		client_close(c, "client terminated the session");
		return;
	}
	client_wait_for_server(c);
}

/* ---- forwarding ---- */

/* Whether named prepared statements are tracked (and, in transaction pooling, renamed). */
static bool client_tracks_statements(const struct client *c)
{
	return c->db->pool_mode == POOL_SESSION || rt.cfg->max_prepared_statements > 0;
}

/* Account for a request as it goes to the server (see struct server). */
void client_count_request(struct client *c, struct server *s, uint8_t type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
		if (s->pending_syncs++ == 0)
			s->query_start_us = rt_now_us();
		if (s->xact_start_us == 0)
			s->xact_start_us = s->query_start_us;
		if (type == 'S')
			s->unsynced = false;
		s->syncs_sent++;
		s->ps_unqueued = 0;
		c->db->stats.query_count++;
		break;
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'H':
		s->unsynced = true;
		break;
	default:
		break;
	}
}

/*
 * Copy the first bytes of a message's body (at most 'max') into buf, when
 * they have arrived; *n is how many.  False when they have not: the
 * direction waits for them (they are few, and the input holds far more).
 */
static bool client_peek_body(struct evbuffer *in, size_t off, size_t avail, uint32_t len,
			     uint8_t *buf, size_t max, size_t *n)
{
	struct evbuffer_ptr pos;
	size_t want = len - 4 < max ? len - 4 : max;

	if (avail < PQ_HEADER_SIZE + want)
		return false;
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, buf, want);
	*n = want;
	return true;
}

/* Bytes of a body looked at to find a statement name (Bind: portal and statement). */
#define CLIENT_PEEK 256
/* Bytes of a query looked at to classify it: its first words, after a comment or two. */
#define CLIENT_CLASSIFY_PEEK 64

/*
 * Look at a message that may create, use or drop prepared statements or
 * change session state.  Returns RELAY_PASS, or RELAY_STOP with c->stop set.
 */
static enum relay_verdict client_track(struct client *c, struct server *s, struct evbuffer *in,
				       size_t off, size_t avail, uint8_t type, uint32_t len)
{
	uint8_t buf[CLIENT_PEEK];
	size_t n;
	bool txn = c->db->pool_mode == POOL_TRANSACTION;
	const uint8_t *nul;
	enum session_kind kind;

	switch (type) {
	case 'Q':
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
			goto need_more;
		kind = session_classify(buf, n);
		if (kind == SK_PLAIN)
			return RELAY_PASS;
		if (txn && (kind == SK_DEALLOCATE || kind == SK_DISCARD) &&
		    client_tracks_statements(c))
			goto rewrite;
		c->sess.dirty = true;
		return RELAY_PASS;
	case 'P':
		if (!client_tracks_statements(c))
			goto classify_parse;
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
			goto need_more;
		if (buf[0] != '\0')
			goto rewrite; /* a named statement: remember it (and rename it) */
		kind = session_classify(buf + 1, n - 1);
		if (txn && (kind == SK_DEALLOCATE || kind == SK_DISCARD))
			goto rewrite;
		if (kind != SK_PLAIN)
			c->sess.dirty = true;
		s->ps_unqueued++;
		return RELAY_PASS;
	case 'B':
		if (!client_tracks_statements(c))
			return RELAY_PASS;
		/* session pooling, everything on this server, nothing stateful: nothing to do */
		if (!txn && c->sess.stmts.missing == 0 && c->sess.stmts.stateful == 0)
			return RELAY_PASS;
		if (c->sess.stmts.tab.count == 0)
			return RELAY_PASS;
		if (!client_peek_body(in, off, avail, len, buf, CLIENT_PEEK, &n))
			goto need_more;
		nul = memchr(buf, '\0', n); /* end of the portal name */
		if (nul == NULL || nul + 1 >= buf + n)
			goto rewrite; /* long names: the slow path reads them whole */
		if (nul[1] == '\0')
			return RELAY_PASS; /* the unnamed statement */
		goto rewrite;
	case 'D':
	case 'C':
		if (!client_tracks_statements(c))
			return RELAY_PASS;
		if (type == 'D' &&
		    (c->sess.stmts.tab.count == 0 || (!txn && c->sess.stmts.missing == 0)))
			return RELAY_PASS;
		if (!client_peek_body(in, off, avail, len, buf, 2, &n))
			goto need_more;
		if (n == 2 && buf[0] == 'S' && buf[1] != '\0')
			goto rewrite;
		if (type == 'C')
			s->ps_unqueued++;
		return RELAY_PASS;
	case 'F':
		c->sess.dirty = true; /* a function call: cannot vouch for it */
		return RELAY_PASS;
	default:
		return RELAY_PASS;
	}
classify_parse:
	if (!client_peek_body(in, off, avail, len, buf, CLIENT_CLASSIFY_PEEK, &n))
		goto need_more;
	nul = memchr(buf, '\0', n);
	if (nul == NULL || session_classify(nul + 1, (size_t)(buf + n - nul - 1)) != SK_PLAIN)
		c->sess.dirty = true;
	return RELAY_PASS;
need_more:
	c->stop = STOP_NEED_MORE;
	return RELAY_STOP;
rewrite:
	c->stop = STOP_REWRITE;
	return RELAY_STOP;
}

/* The client-to-server direction's view of each message header (see conn.h). */
static enum relay_verdict client_on_header(void *arg, struct evbuffer *in, size_t off, size_t avail,
					   uint8_t type, uint32_t len)
{
	struct client *c = arg;
	struct server *s = c->server;
	enum relay_verdict v;

	/*
	 * A new request at a transaction boundary (an internal query only runs
	 * at one) is held while the database is paused, while the session is
	 * being checked, or when the session must move first.
	 */
	if ((s->internal_cb || server_at_boundary(s)) &&
	    (pool_db_paused(c->db) || s->internal_cb || s->side != c->db->route)) {
		c->held = true;
		c->stop = STOP_HELD;
		return RELAY_STOP;
	}
	if (type == 'X') {
		/* Terminate: what came before goes, the session ends here */
		c->stop = STOP_TERMINATE;
		return RELAY_STOP;
	}
	v = client_track(c, s, in, off, avail, type, len);
	if (v == RELAY_PASS)
		client_count_request(c, s, type);
	return v;
}

void client_forward(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	struct server *s = c->server;
	struct evbuffer *out;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;
	uint32_t max = (uint32_t)rt.cfg->max_packet_size;
	struct relay_result res;

	if (s == NULL || c->state != CL_ACTIVE)
		return;
	out = sock_out(&s->sock);
	c->held = false; /* client_on_header() says again if it still holds */
	for (;;) {
		c->stop = STOP_NONE;
		relay_forward(in, out, &c->msg_left, limit, max, client_on_header, c, &res);
		c->db->stats.bytes_in += res.moved;
		if (res.moved > 0)
			sock_schedule_flush(&s->sock);
		if (res.end != RELAY_END_STOPPED || c->stop != STOP_REWRITE)
			break;
		/* a prepared-statement message: rewritten, then the batch goes on */
		switch (track_client_message(c, s)) {
		case TRACK_DONE:
			sock_schedule_flush(&s->sock);
			continue;
		case TRACK_WAIT:
			c->stop = STOP_NEED_MORE;
			break;
		case TRACK_WAIT_SERVER:
			c->stop = STOP_WAIT_SERVER;
			break;
		case TRACK_CLOSED:
			return;
		}
		break;
	}
	switch (res.end) {
	case RELAY_END_BAD_LENGTH:
		client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "invalid message length %u for message type \"%c\" (must be 4 to %u)",
				  (unsigned)res.len,
				  res.type >= 32 && res.type < 127 ? res.type : '?', max);
		return;
	case RELAY_END_STOPPED:
		if (c->stop == STOP_TERMINATE) {
			client_close(c, "client terminated the session");
			return;
		}
		/* held: a lazy move starts now unless a pause or a check holds it */
		if (c->stop == STOP_HELD && !pool_db_paused(c->db) && s->internal_cb == NULL)
			client_relocate(c);
		break;
	case RELAY_END_FULL:
		/* the server is not reading fast enough: stop reading the client */
		client_pause_reading(c);
		return;
	default:
		break;
	}
	if (evbuffer_get_length(out) < limit)
		client_resume_reading(c);
}

/* ---- what the session holds ---- */

/* Transaction pooling: what the client's transaction left was dropped; the server goes back. */
static void client_cleanup_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;

	(void)rows;
	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s)
		return;
	if (error) {
		log_warning("client %s: could not drop the LISTENs and statements its transaction left: %s",
			    c->addr, error);
		s->ps_broken = true; /* they would reach the next client: nobody gets this server */
	}
	server_txn_done(s);
}

/* The answer to the capture query that ran at a boundary (client_capture). */
static void client_capture_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	bool txn;

	if (c->state == CL_FREE || c->state == CL_CLOSING || c->server != s)
		return;
	txn = c->db->pool_mode == POOL_TRANSACTION;
	if (error) {
		log_warning("client %s: could not read its session state: %s", c->addr, error);
		free(c->sess.untracked);
		c->sess.untracked = strdup("its session state could not be read");
		c->sess.dirty = false;
		/* transaction pooling: what it set would reach the next client: nobody gets this server */
		if (txn)
			s->ps_broken = true;
	} else if (!session_apply_capture(&c->sess, rows, !txn)) {
		client_disconnect(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	/* the server holds exactly what was just read */
	s->sess_owner = session_st(&c->sess)->settings.count > 0 ? c->sess.id : 0;
	s->sess_gen = c->sess.gen;
	if (txn) {
		bool oom;
		char *sql = error ? NULL : session_cleanup_sql(rows, &oom);

		if (sql) {
			/* LISTENs or SQL statements the transaction left go before anyone else comes */
			bool ok = server_internal_query(s, sql, client_cleanup_done, c);

			free(sql);
			if (ok)
				return;
			s->ps_broken = true;
		} else if (!error && oom) {
			s->ps_broken = true;
		}
		server_txn_done(s);
		return;
	}
	if (sock_in_len(&c->sock) > 0)
		client_forward(c);
}

bool client_capture(struct client *c)
{
	struct server *s = c->server;
	bool txn = c->db->pool_mode == POOL_TRANSACTION;

	if (s == NULL)
		return false;
	return server_internal_query(s, txn ? SESSION_CAPTURE_SETTINGS : SESSION_CAPTURE_FULL,
				     client_capture_done, c);
}

/* ---- moving a session to another server ---- */

/* Why a session cannot move, or NULL. */
static const char *client_blocked_reason(const struct client *c)
{
	return c->sess.untracked ? c->sess.untracked : c->sess.blocked;
}

const char *client_movable(const struct client *c)
{
	const char *why = client_blocked_reason(c);

	if (c->db && c->db->pool_mode == POOL_TRANSACTION)
		return c->sess.untracked ? c->sess.untracked : "yes";
	return why ? why : "yes";
}

static void client_check_done(struct server *s, void *arg, const char *rows, const char *error)
{
	struct client *c = arg;
	void (*done)(struct client *, void *) = c->move_done;
	void *done_arg = c->move_arg;

	(void)s;
	if (c->state == CL_FREE || c->state == CL_CLOSING)
		return;
	if (error) {
		size_t n = strlen(error) + 32;
		char *why = malloc(n);

		if (why)
			snprintf(why, n, "the session check failed: %s", error);
		free(c->sess.untracked);
		c->sess.untracked = why;
		c->move = MOVE_BLOCKED;
	} else if (!session_apply_capture(&c->sess, rows, true)) {
		free(c->sess.untracked);
		c->sess.untracked = NULL;
		c->move = MOVE_BLOCKED;
	} else {
		c->move = client_blocked_reason(c) ? MOVE_BLOCKED : MOVE_OK;
	}
	c->move_done = NULL;
	c->move_arg = NULL;
	if (done)
		done(c, done_arg);
}

bool client_check_movable(struct client *c, void (*done)(struct client *c, void *arg), void *arg)
{
	c->move_done = done;
	c->move_arg = arg;
	if (c->server == NULL) {
		/* no server: nothing on a server to lose */
		c->move = MOVE_OK;
		return true;
	}
	c->move = MOVE_CHECKING;
	if (!server_internal_query(c->server, SESSION_CAPTURE_FULL, client_check_done, c)) {
		c->move = MOVE_BLOCKED;
		if (c->sess.untracked == NULL)
			c->sess.untracked = strdup("its server was busy");
		c->move_done = NULL;
		return false;
	}
	return true;
}

bool client_apply_move(struct client *c)
{
	if (c->state == CL_FREE || c->state == CL_CLOSING)
		return false;
	if (c->move != MOVE_OK) {
		const char *why = client_blocked_reason(c);

		client_disconnect(c, SQLSTATE_ADMIN_SHUTDOWN,
				  "database \"%s\" moved to its %s and this session held state that cannot be moved (%s): reconnect",
				  c->db->name, c->db->route == SIDE_TARGET ? "target" : "source",
				  why ? why : "not checked");
		return false;
	}
	c->move = MOVE_UNKNOWN;
	log_debug("client %s: moving to the %s (%zu bytes pending)", c->addr,
		  c->db->route == SIDE_TARGET ? "target" : "source", sock_in_len(&c->sock));
	if (c->server) {
		struct server *s = c->server;

		/* the old server goes; the next transaction gets one on the new side */
		client_set_state(c, CL_IDLE);
		c->server = NULL;
		s->client = NULL;
		server_release(s);
		/* what it held is re-established there: settings now, statements when used */
		c->sess.restore = true;
		ps_map_new_server(&c->sess.stmts);
		/* a listener waits for notifications, not for itself: it needs its server now */
		if (session_st(&c->sess)->listens.count > 0 && c->state == CL_IDLE)
			client_wait_for_server(c);
	}
	return true;
}

/* After the check of a lazy move: move now, then serve what it sent. */
static void client_relocate_done(struct client *c, void *arg)
{
	(void)arg;
	if (client_apply_move(c) && c->state == CL_IDLE) {
		c->held = false;
		client_request_server(c);
	}
}

/* The session's server is on the side its database no longer routes to. */
static void client_relocate(struct client *c)
{
	if (c->move == MOVE_CHECKING)
		return;
	if (!client_check_movable(c, client_relocate_done, NULL))
		client_relocate_done(c, NULL);
}

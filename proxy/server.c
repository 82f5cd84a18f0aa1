/*
 * server.c - server connections.
 *
 * A server connection is opened by pool_service() for the startup parameters
 * of the client that needs it: it connects (resolving host names with evdns,
 * never blocking the loop), negotiates TLS as its sslmode says (SSLRequest,
 * one byte of answer, a handshake), sends a StartupMessage carrying exactly those
 * parameters, and answers the server's authentication request with the
 * credentials of its pool's user.  Once logged in it is SV_IDLE in its pool;
 * linked to a client it is SV_ACTIVE and its messages are forwarded in batches
 * like the client's (see client.c).  When its client leaves, a clean server
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
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/relay.h"
#include "proxy/core/log.h"
#include "proxy/runtime.h"
#include "proxy/track.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/auth/userlist.h"

/* Largest message accepted from a server during login (parameters, errors). */
#define SERVER_LOGIN_MSG_MAX (1024 * 1024)
/* Largest ParameterStatus tracked while forwarding; larger ones pass untracked. */
#define SERVER_PARAM_MSG_MAX 8192
/* A cancel connection that gets no answer is dropped after this long. */
#define SERVER_CANCEL_TIMEOUT_SEC 10

static struct list_node reap_servers = {&reap_servers, &reap_servers};

/* SSLRequest: length 8, code 1234.5679. */
static const uint8_t ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};

static void server_reap_cancels(void);

static void server_read_cb(struct sock *sk, void *arg);
static void server_write_cb(struct sock *sk, void *arg);
static void server_event_cb(struct sock *sk, int what, void *arg);
static void server_timer_cb(evutil_socket_t fd, short what, void *arg);

static const char *const state_names[] = {
	[SV_CONNECT] = "connect", [SV_LOGIN] = "login", [SV_IDLE] = "idle",
	[SV_ACTIVE] = "active",   [SV_RESET] = "reset", [SV_FREE] = "free",
};

const char *server_state_name(enum server_state st)
{
	return state_names[st];
}

static struct list_node *server_state_list(struct server *s, enum server_state st)
{
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
	}
	return NULL;
}

static bool server_transition_ok(enum server_state from, enum server_state to)
{
	if (to == SV_FREE)
		return from != SV_FREE;
	switch (from) {
	case SV_CONNECT:
		return to == SV_LOGIN;
	case SV_LOGIN:
		return to == SV_IDLE;
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
	if (!server_transition_ok(s->state, st))
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

static void set_timer_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* Build the sockaddr for a unix-socket backend: DIR/.s.PGSQL.PORT. */
static bool unix_addr(const struct backend_addr *a, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/.s.PGSQL.%d", a->host, a->port) <
	       (int)sizeof(sun->sun_path);
}

struct server *server_launch(struct pool *pool, struct params_snap *startup)
{
	struct database *db = pool->db;
	const struct backend_addr *a;
	struct server *s;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	list_init(&s->node);
	params_init(&s->reported);
	s->sock.fd = -1; /* sock_free() of a sock never initialised closes nothing */
	ps_queue_init(&s->psq);
	ps_cache_init(&s->psc);
	s->pool = pool;
	s->side = db->route;
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
	snprintf(s->label, sizeof(s->label), "%s/%s@%s:%d", db->name, pool->user, a->host, a->port);

	s->state = SV_CONNECT;
	list_append(&pool->new_servers, &s->node);
	pool->nservers++;

	set_timer_ms(s->timer, rt.cfg->server_connect_timeout_ms);

	log_debug("server %s: connecting", s->label);
	if (a->host[0] == '/') {
		struct sockaddr_un sun;

		if (!unix_addr(a, &sun)) {
			rc = -1;
		} else {
			sock_connect(&s->sock, (struct sockaddr *)&sun, sizeof(sun));
			rc = 0;
		}
	} else {
		/* numeric addresses connect at once; names resolve through evdns */
		sock_connect_hostname(&s->sock, rt.dns, a->host, a->port);
		rc = 0;
	}
	if (rc != 0) {
		/* the error event was not delivered: report through the same path later */
		log_warning("server %s: could not start connecting", s->label);
		event_active(s->timer, EV_TIMEOUT, 0);
	}
	return s;
}

void server_close(struct server *s, const char *reason)
{
	struct client *c = s->client;
	struct pool *pool = s->pool;

	if (s->state == SV_FREE || s->closing)
		return;
	s->closing = true;
	log_debug("server %s: closing: %s", s->label, reason);
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
	if (pool_db_paused(pool->db))
		pool_note_progress(pool->db);
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
	server_reap_cancels();
}

void server_link(struct server *s, struct client *c)
{
	s->client = c;
	c->server = s;
	s->msg_left = 0;
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
static enum pq_status server_next_msg(struct server *s, uint32_t max, uint8_t *type, uint32_t *len,
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
static bool server_set_reported(struct server *s, const char *name, const char *value)
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
static bool server_take_param(struct server *s, const uint8_t *body, size_t len)
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
static void server_error_text(const uint8_t *body, size_t len, char *sqlstate, char *msg,
			      size_t msglen)
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

/* ---- login ---- */

/* The user and secret to log in with, by the precedence of PRODUCT.md. */
static void server_credentials(const struct server *s, const char **user, const char **secret)
{
	const struct database *db = s->pool->db;
	const struct backend_addr *a = &s->addr;

	if (a->user) {
		*user = a->user;
		*secret = a->password ? a->password : userlist_secret(rt.users, a->user);
	} else if (db->cfg && db->cfg->user) {
		*user = db->cfg->user;
		*secret = db->cfg->password ? db->cfg->password : userlist_secret(rt.users, *user);
	} else {
		*user = s->pool->user;
		*secret = userlist_secret(rt.users, *user);
		if (a->password)
			*secret = a->password;
	}
}

/*
 * The TLS mode towards one side of a database: its conninfo's sslmode, else
 * server_tls_sslmode.  *name says which, for messages.  "allow" is taken as
 * "prefer" (TLS is asked for first); a unix socket never uses TLS (as libpq).
 */
static enum tls_sslmode side_sslmode(const struct backend_addr *a, const char **name)
{
	enum tls_sslmode m;

	*name = "server_tls_sslmode";
	if (a->host[0] == '/')
		return SSLMODE_DISABLE;
	if (a->sslmode && tls_parse_sslmode(a->sslmode, &m)) {
		*name = "the database's sslmode";
		return m == SSLMODE_ALLOW ? SSLMODE_PREFER : m;
	}
	return rt.cfg->server_tls_sslmode;
}

static enum sock_tls_verify sslmode_verify(enum tls_sslmode m)
{
	return m == SSLMODE_VERIFY_FULL ? SOCK_TLS_VERIFY_FULL
	       : m == SSLMODE_VERIFY_CA ? SOCK_TLS_VERIFY_CA
					: SOCK_TLS_VERIFY_NONE;
}

static void server_send_startup(struct server *s);
static void server_login_failed(struct server *s, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Connected: ask for TLS first when the mode says so, else log in at once. */
static void server_begin_login(struct server *s)
{
	const char *who;

	if (side_sslmode(&s->pool->db->addr[s->side], &who) == SSLMODE_DISABLE) {
		server_send_startup(s);
		return;
	}
	if (!sock_write(&s->sock, ssl_request, sizeof(ssl_request))) {
		server_close(s, "could not send the SSL request");
		return;
	}
	s->tls_step = SERVER_TLS_ASKED;
}

/* The server's one-byte answer to our SSLRequest. */
static void server_handle_tls_answer(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);
	const struct backend_addr *a = &s->pool->db->addr[s->side];
	const char *who, *side = s->side == SIDE_SOURCE ? "source" : "target";
	enum tls_sslmode mode = side_sslmode(a, &who);
	uint8_t answer;

	if (evbuffer_remove(in, &answer, 1) != 1)
		return;
	if (answer == 'S') {
		/* bytes before the handshake would be taken for encrypted ones (CVE-2021-23222) */
		if (evbuffer_get_length(in) > 0) {
			server_login_failed(s, SQLSTATE_PROTOCOL_VIOLATION,
					    "the %s of database \"%s\" sent unencrypted data after its SSL response",
					    side, s->pool->db->name);
			return;
		}
		s->tls_step = SERVER_TLS_HANDSHAKE;
		if (!sock_start_tls_connect(&s->sock, tls_server_ctx(rt.tls), a->host,
					    sslmode_verify(mode)))
			server_login_failed(s, SQLSTATE_CONNECTION_FAILURE,
					    "could not start TLS with the %s of database \"%s\"",
					    side, s->pool->db->name);
		return;
	}
	s->tls_step = SERVER_TLS_NONE;
	if (answer != 'N') {
		server_login_failed(s, SQLSTATE_PROTOCOL_VIOLATION,
				    "the %s of database \"%s\" sent an invalid answer to the SSL request",
				    side, s->pool->db->name);
		return;
	}
	if (mode >= SSLMODE_REQUIRE) {
		server_login_failed(s, SQLSTATE_CONNECTION_FAILURE,
				    "the %s of database \"%s\" (%s:%d) does not support TLS but %s is %s",
				    side, s->pool->db->name, a->host, a->port, who,
				    tls_sslmode_name(mode));
		return;
	}
	log_debug("server %s: server refused TLS, going on in plaintext (%s is %s)", s->label, who,
		  tls_sslmode_name(mode));
	server_send_startup(s);
}

static void server_send_startup(struct server *s)
{
	const struct backend_addr *a = &s->addr;
	const char *user, *secret;
	const char **kv;
	size_t n = 0;
	struct pq_buf b;

	server_credentials(s, &user, &secret);
	kv = calloc(2 * (s->startup->p.count + 2), sizeof(*kv));
	if (kv == NULL) {
		server_close(s, "out of memory");
		return;
	}
	kv[n++] = "user";
	kv[n++] = user;
	kv[n++] = "database";
	kv[n++] = a->dbname ? a->dbname : s->pool->db->name;
	for (size_t i = 0; i < s->startup->p.count; i++) {
		kv[n++] = s->startup->p.names[i];
		kv[n++] = s->startup->p.values[i];
	}
	pq_buf_init(&b);
	pq_build_startup(&b, kv, n / 2);
	free(kv);
	if (b.failed || !sock_write(&s->sock, b.data, b.len)) {
		pq_buf_free(&b);
		server_close(s, "could not send the startup packet");
		return;
	}
	pq_buf_free(&b);
	server_set_state(s, SV_LOGIN);
}

/* Login failed: the clients waiting for this server hear why. */
static void server_login_failed(struct server *s, const char *sqlstate, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	struct pool *pool = s->pool;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warning("server %s: login failed: %s", s->label, msg);
	/* fail the waiting clients first, so that closing does not open a replacement for them */
	pool_login_failed(pool, s->startup, sqlstate, msg);
	server_close(s, "login failed");
}

/*
 * A connection error before login completed (refused, server_connect_timeout,
 * reset or closed without an ErrorResponse): unlike a login refused by the
 * server, this says nothing about the clients, so they keep waiting while
 * the pool waits server_login_retry before its next attempt.
 */
static void server_connect_failed(struct server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void server_connect_failed(struct server *s, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warning("server %s: %s: next attempt after server_login_retry (%lld ms)", s->label, msg,
		    (long long)rt.cfg->server_login_retry_ms);
	/* first, so that closing opens no replacement at once */
	pool_connect_failed(s->pool, s->side, msg);
	server_close(s, "could not connect");
}

static bool server_send_msg(struct server *s, struct pq_buf *b)
{
	bool ok = !b->failed && sock_write(&s->sock, b->data, b->len);

	pq_buf_free(b);
	return ok;
}

/* Answer an AuthenticationXXX request; false when the server was closed. */
static bool server_auth(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_cursor cur;
	uint32_t code;
	const char *user, *secret, *err = NULL;
	struct pq_buf b;
	char *out;

	pq_cursor_init(&cur, body, len);
	code = pq_get_u32(&cur);
	server_credentials(s, &user, &secret);
	pq_buf_init(&b);

	switch (code) {
	case PQ_AUTH_OK:
		return true;
	case PQ_AUTH_CLEARTEXT:
		if (secret == NULL || auth_secret_kind(secret) != AUTH_SECRET_PLAIN) {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "server asked for a cleartext password but auth_file has no plaintext password for user \"%s\"",
					    user);
			return false;
		}
		pq_build_password(&b, secret);
		break;
	case PQ_AUTH_MD5: {
		const uint8_t *salt = pq_get_bytes(&cur, 4);
		char resp[36];

		if (salt == NULL || secret == NULL || !auth_md5_response(user, secret, salt, resp)) {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "server asked for MD5 authentication but auth_file has no plaintext or MD5 secret for user \"%s\"",
					    user);
			return false;
		}
		pq_build_password(&b, resp);
		break;
	}
	case PQ_AUTH_SASL: {
		bool found = false;
		const char *mech;

		while (pq_cursor_left(&cur) > 0 && (mech = pq_get_str(&cur))[0] != '\0')
			if (strcmp(mech, "SCRAM-SHA-256") == 0)
				found = true;
		if (!found) {
			server_login_failed(
				s, SQLSTATE_INVALID_AUTHORIZATION,
				"server offered no SASL mechanism pgcutover supports (SCRAM-SHA-256)");
			return false;
		}
		if (secret && auth_secret_kind(secret) == AUTH_SECRET_PLAIN) {
			s->scram_active = auth_scram_client_init_password(&s->scram, secret);
		} else if (secret && auth_secret_kind(secret) == AUTH_SECRET_SCRAM &&
			   s->pool->have_client_key) {
			struct auth_scram_secret sec;

			s->scram_active =
				auth_scram_parse_secret(secret, &sec) &&
				auth_scram_client_init_keys(&s->scram, s->pool->client_key, &sec);
		} else {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "server asked for SCRAM authentication but pgcutover has no password for user \"%s\": put a plaintext password or its SCRAM secret in auth_file (a SCRAM secret works once the client itself logged in with SCRAM)",
					    user);
			return false;
		}
		out = s->scram_active ? auth_scram_client_first(&s->scram) : NULL;
		if (out == NULL) {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "could not start SCRAM authentication");
			return false;
		}
		pq_build_sasl_initial(&b, "SCRAM-SHA-256", out, strlen(out));
		free(out);
		break;
	}
	case PQ_AUTH_SASL_CONTINUE: {
		size_t n = pq_cursor_left(&cur);

		out = s->scram_active ? auth_scram_client_final(&s->scram,
								(const char *)pq_get_bytes(&cur, n),
								n, &err)
				      : NULL;
		if (out == NULL) {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "SCRAM authentication with the server failed: %s",
					    err ? err : "unexpected message");
			return false;
		}
		pq_build_sasl_response(&b, out, strlen(out));
		free(out);
		break;
	}
	case PQ_AUTH_SASL_FINAL: {
		size_t n = pq_cursor_left(&cur);

		if (!s->scram_active ||
		    !auth_scram_client_verify(&s->scram, (const char *)pq_get_bytes(&cur, n), n,
					      &err)) {
			server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
					    "could not verify the server's SCRAM signature: %s",
					    err ? err : "unexpected message");
			return false;
		}
		return true;
	}
	default:
		server_login_failed(s, SQLSTATE_INVALID_AUTHORIZATION,
				    "server asked for an unsupported authentication method (%u)",
				    (unsigned)code);
		return false;
	}
	if (!server_send_msg(s, &b)) {
		server_close(s, "could not send");
		return false;
	}
	return true;
}

static void server_handle_login(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->state == SV_LOGIN) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);
		const uint8_t *body;
		size_t blen;

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK) {
			server_login_failed(s, SQLSTATE_PROTOCOL_VIOLATION,
					    "server sent an invalid message during login");
			return;
		}
		body = msg + PQ_HEADER_SIZE;
		blen = len - 4;
		switch (type) {
		case 'R':
			if (!server_auth(s, body, blen))
				return;
			break;
		case 'E': {
			char sqlstate[6], text[300];

			server_error_text(body, blen, sqlstate, text, sizeof(text));
			server_login_failed(s, sqlstate, "%s", text);
			return;
		}
		case 'S':
			if (!server_take_param(s, body, blen)) {
				server_login_failed(s, SQLSTATE_PROTOCOL_VIOLATION,
						    "server sent a malformed ParameterStatus");
				return;
			}
			break;
		case 'K': {
			struct pq_cursor cur;

			pq_cursor_init(&cur, body, blen);
			s->be_pid = pq_get_u32(&cur);
			s->be_key = pq_get_u32(&cur);
			if (!pq_cursor_done(&cur)) {
				/* a key we cannot trust would cancel nothing, or someone else */
				server_login_failed(s, SQLSTATE_PROTOCOL_VIOLATION,
						    "server sent a malformed BackendKeyData");
				return;
			}
			break;
		}
		case 'Z':
			s->txn_status = blen >= 1 ? (char)body[0] : 'I';
			evbuffer_drain(in, len + 1);
			evtimer_del(s->timer);
			if (s->scram_active) {
				auth_scram_client_free(&s->scram);
				s->scram_active = false;
			}
			log_debug("server %s: logged in (backend pid %u)", s->label,
				  (unsigned)s->be_pid);
			pool_remember_welcome(s->pool, s);
			server_set_state(s, SV_IDLE);
			pool_service(s->pool);
			return;
		default:
			/* NoticeResponse, NegotiateProtocolVersion: nothing to do */
			break;
		}
		evbuffer_drain(in, len + 1);
	}
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

/* ---- internal queries ---- */

bool server_internal_query(struct server *s, const char *sql, server_query_cb done, void *arg)
{
	struct pq_buf b;

	/* never in the middle of a message the client is still sending */
	if (s->internal_cb || !server_at_boundary(s) || s->state != SV_ACTIVE ||
	    (s->client && s->client->msg_left != 0))
		return false;
	pq_buf_init(&b);
	pq_build_query(&b, sql);
	if (!server_send_msg(s, &b))
		return false;
	s->internal_cb = done;
	s->internal_arg = arg;
	s->pending_syncs = 1;
	return true;
}

/* Append a row's first column to the collected rows. */
static bool internal_add_row(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_cursor cur;
	int32_t vlen;
	const uint8_t *v;
	size_t old = s->internal_rows ? strlen(s->internal_rows) : 0;
	char *n;

	pq_cursor_init(&cur, body, len);
	if (pq_get_u16(&cur) < 1)
		return true;
	vlen = pq_get_i32(&cur);
	if (vlen < 0)
		return !cur.failed;
	v = pq_get_bytes(&cur, (size_t)vlen);
	if (v == NULL)
		return false;
	n = realloc(s->internal_rows, old + (size_t)vlen + 2);
	if (n == NULL)
		return false;
	if (old)
		n[old++] = '\n';
	memcpy(n + old, v, (size_t)vlen);
	n[old + (size_t)vlen] = '\0';
	s->internal_rows = n;
	return true;
}

/* Consume the replies of an internal query; call back on ReadyForQuery. */
static void server_handle_internal(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);

	while (s->internal_cb) {
		uint8_t type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st = server_next_msg(s, SERVER_LOGIN_MSG_MAX, &type, &len, &msg);
		const uint8_t *body;

		if (st == PQ_NEED_MORE)
			return;
		if (st != PQ_OK) {
			server_close(s, "invalid message during an internal query");
			return;
		}
		body = msg + PQ_HEADER_SIZE;
		switch (type) {
		case 'D':
			if (!internal_add_row(s, body, len - 4)) {
				server_close(s, "malformed row in an internal query");
				return;
			}
			break;
		case 'E':
			if (s->internal_error == NULL) {
				char sqlstate[6], text[300];

				server_error_text(body, len - 4, sqlstate, text, sizeof(text));
				s->internal_error = strdup(text);
			}
			break;
		case 'S':
			/* the client learns about it at the next parameter sync */
			if (!server_take_param(s, body, len - 4)) {
				server_close(s, "malformed ParameterStatus");
				return;
			}
			break;
		case 'Z': {
			server_query_cb cb = s->internal_cb;
			void *arg = s->internal_arg;
			char *rows = s->internal_rows, *err = s->internal_error;

			s->txn_status = len >= 5 ? (char)body[0] : 'I';
			s->pending_syncs = 0;
			evbuffer_drain(in, len + 1);
			s->internal_cb = NULL;
			s->internal_arg = NULL;
			s->internal_rows = NULL;
			s->internal_error = NULL;
			cb(s, arg, err ? NULL : (rows ? rows : ""),
			   err ? err : (s->txn_status == 'I' ? NULL : "left a transaction open"));
			free(rows);
			free(err);
			/* what the server sent after it (a notification) is handled now, not at its next read */
			if (s->state != SV_FREE && s->internal_cb == NULL &&
			    sock_in_len(&s->sock) > 0)
				server_read_cb(&s->sock, s);
			return;
		}
		case 'A':
			/* a notification for a listening client arrives whatever runs */
			if (s->client && !client_send(s->client, msg, (size_t)len + 1))
				log_warning("server %s: could not pass on a notification", s->label);
			break;
		default:
			/* RowDescription, CommandComplete, notices */
			break;
		}
		evbuffer_drain(in, len + 1);
	}
}

/* ---- forwarding ---- */

/* Track a ParameterStatus passing through to the client. */
static void server_track_param(struct server *s, struct client *c, struct evbuffer *in, size_t off,
			       uint32_t len)
{
	uint8_t small[SERVER_PARAM_MSG_MAX], *buf = small;
	struct evbuffer_ptr pos;
	struct pq_cursor cur;
	const char *name, *value;

	/* the usual few bytes on the stack; a long value (a search_path) on the heap */
	if (len - 4 > sizeof(small) && (buf = malloc(len - 4)) == NULL) {
		log_warning("server %s: out of memory tracking a parameter", s->label);
		return;
	}
	evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
	if (evbuffer_copyout_from(in, &pos, buf, len - 4) == (ssize_t)(len - 4)) {
		pq_cursor_init(&cur, buf, len - 4);
		const char *old;

		name = pq_get_str(&cur);
		value = pq_get_str(&cur);
		old = pq_cursor_done(&cur) ? params_get(&s->reported, name) : NULL;
		/*
		 * A reported setting changed where the first keyword did not show
		 * it (set_config() in a SELECT, a function that runs SET): the
		 * session's state is asked for at the boundary, as after a SET, so
		 * that in transaction pooling it stays this client's.
		 */
		if (pq_cursor_done(&cur) && (old == NULL || strcmp(old, value) != 0))
			c->sess.dirty = true;
		/* the client sees this message too, so both views change together */
		if (pq_cursor_done(&cur) &&
		    (!server_set_reported(s, name, value) || !client_set_reported(c, name, value)))
			log_warning("server %s: out of memory tracking parameter %s", s->label,
				    name);
	}
	if (buf != small)
		free(buf);
}

/* A ReadyForQuery passed: account for the request it ends. */
static void server_ready_seen(struct server *s, char status)
{
	struct db_stats *st = &s->pool->db->stats;
	uint64_t now = rt_now_us();

	s->txn_status = status;
	if (s->pending_syncs > 0) {
		s->pending_syncs--;
		st->query_time_us += now - s->query_start_us;
		s->query_start_us = now;
	}
	if (status == 'I' && s->pending_syncs == 0 && s->xact_start_us != 0) {
		st->xact_count++;
		st->xact_time_us += now - s->xact_start_us;
		s->xact_start_us = 0;
	}
}

/* After a batch that ended a transaction: a paused database may have drained. */
static void server_after_boundary(struct server *s)
{
	struct database *db = s->pool->db;

	if (pool_db_paused(db) && server_at_boundary(s))
		pool_note_progress(db);
}

/* The server-to-client direction's view of each message header (see conn.h). */
static enum relay_verdict server_on_header(void *arg, struct evbuffer *in, size_t off, size_t avail,
					   uint8_t type, uint32_t len)
{
	struct server *s = arg;
	struct client *c = s->client;
	struct evbuffer_ptr pos;
	uint8_t status;

	switch (type) {
	case 'Z':
		/* ReadyForQuery: the request ends; its status byte tells where the session is */
		if (len != 5)
			return RELAY_PASS;
		if (avail < 6)
			return RELAY_STOP; /* wait for the status byte */
		evbuffer_ptr_set(in, &pos, off + PQ_HEADER_SIZE, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, &status, 1);
		server_ready_seen(s, (char)status);
		track_server_ready(s);
		if (status == 'I' && s->pending_syncs == 0 && !s->unsynced && c->msg_left == 0) {
			/* a statement may have changed the session: ask what it holds now */
			if (c->sess.dirty) {
				s->capture_next = true;
				return RELAY_LAST;
			}
			/* transaction pooling: forward up to here, then give the server back */
			if (c->db->pool_mode == POOL_TRANSACTION)
				return RELAY_LAST;
		}
		return RELAY_PASS;
	case '1':
	case '3':
	case 'E':
		/* answers to prepared-statement messages, when some need handling */
		if (s->psq.count == 0)
			return RELAY_PASS;
		return track_server_answer(s, in, off, avail, type, len);
	case 'S':
		/* ParameterStatus: tracked once it is whole (one larger than the input cannot be) */
		if (avail < (size_t)len + 1)
			return (size_t)len + 1 > s->sock.in_limit ? RELAY_PASS : RELAY_STOP;
		server_track_param(s, c, in, off, len);
		return RELAY_PASS;
	default:
		return RELAY_PASS;
	}
}

void server_forward(struct server *s)
{
	struct client *c = s->client;
	struct evbuffer *in = sock_in(&s->sock);
	struct evbuffer *out;
	size_t limit = (size_t)rt.cfg->conn_buffer_size;
	struct relay_result res;

	if (c == NULL || s->state != SV_ACTIVE || s->internal_cb)
		return;
	out = sock_out(&c->sock);
	for (;;) {
		relay_forward(in, out, &s->msg_left, limit, (uint32_t)rt.cfg->max_packet_size,
			      server_on_header, s, &res);
		c->db->stats.bytes_out += res.moved;
		if (res.moved > 0)
			sock_schedule_flush(&c->sock);
		if (res.end != RELAY_END_STOPPED || !s->swallow)
			break;
		s->swallow = false;
		if (s->answer) {
			/* an answer rewritten for the client (track.c), after what came before it */
			evbuffer_drain(in, s->answer_replaces);
			if (evbuffer_add(out, s->answer, s->answer_len) != 0) {
				log_error("server %s: out of memory rewriting an answer", s->label);
				s->ps_broken = true;
			}
			c->db->stats.bytes_out += s->answer_len;
			/* it may be all there is until the client sends more (a Flush, no Sync) */
			sock_schedule_flush(&c->sock);
			free(s->answer);
			s->answer = NULL;
			continue;
		}
		/* pgcutover's own ParseComplete or CloseComplete: the client never sees it */
		evbuffer_drain(in, PQ_HEADER_SIZE);
		ps_queue_pop(&s->psq);
	}
	switch (res.end) {
	case RELAY_END_BAD_LENGTH:
		server_close(s, "server sent a message with an invalid length");
		return;
	case RELAY_END_LAST:
		if (s->capture_next) {
			s->capture_next = false;
			if (client_capture(c))
				return; /* client_capture_done() carries on */
			log_warning("server %s: could not ask for the session state", s->label);
			c->sess.dirty = false;
		}
		if (c->db->pool_mode == POOL_TRANSACTION) {
			server_txn_done(s);
			return;
		}
		break;
	case RELAY_END_FULL:
		/* the client is not reading fast enough: stop reading the server */
		server_pause_reading(s);
		break;
	default:
		if (evbuffer_get_length(out) < limit)
			server_resume_reading(s);
		break;
	}
	if (s->msg_left == 0)
		server_after_boundary(s);
	/* a DEALLOCATE held until the server's transaction state was known (track.c) goes now */
	if (s->client == c && c->stop == STOP_WAIT_SERVER && s->pending_syncs == 0 &&
	    c->state == CL_ACTIVE)
		client_forward(c);
}

void server_txn_done(struct server *s)
{
	struct client *c = s->client;
	struct pool *pool = s->pool;

	c->server = NULL;
	s->client = NULL;
	s->msg_left = 0;
	client_set_state(c, CL_IDLE);
	if (s->ps_broken) {
		/* its statements are not what pgcutover's books say: nobody else gets it */
		server_terminate(s, "its prepared statements are not what pgcutover expects");
	} else if (!server_current(s)) {
		/* a reload moved its side: not pooled (pool_assign_one() runs only for waiters) */
		server_terminate(s, "its address changed in a reload");
	} else {
		server_set_state(s, SV_IDLE);
	}
	if (pool_db_paused(c->db))
		pool_note_progress(c->db);
	pool_service(pool);
	/* the client may already have sent its next transaction */
	if (c->state == CL_IDLE && sock_in_len(&c->sock) > 0)
		client_request_server(c);
}

/* ---- callbacks ---- */

static void server_read_cb(struct sock *sk, void *arg)
{
	struct server *s = arg;

	(void)sk;
	switch (s->state) {
	case SV_LOGIN:
		server_handle_login(s);
		break;
	case SV_ACTIVE:
		if (s->internal_cb)
			server_handle_internal(s);
		else
			server_forward(s);
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
	char reason[256];

	if (what & SOCK_CONNECTED) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		evutil_socket_t fd = sk->fd;

		if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 && ss.ss_family != AF_UNIX) {
			int on = 1;

			/* small protocol messages must not wait for Nagle (as libpq does) */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		}
		server_begin_login(s);
		return;
	}
	if (what & SOCK_TLS_READY) {
		s->tls_step = SERVER_TLS_NONE;
		log_debug("server %s: TLS established (%s, %s)", s->label, sock_tls_version(sk),
			  sock_tls_cipher(sk));
		server_send_startup(s);
		return;
	}
	if (what & SOCK_ERROR)
		snprintf(reason, sizeof(reason), "%s", sock_error_text(sk));
	else
		snprintf(reason, sizeof(reason), "server closed the connection unexpectedly");
	if (s->state == SV_CONNECT || s->state == SV_LOGIN) {
		const struct backend_addr *a = &s->addr;

		/* a TLS handshake that fails is a configuration problem: waiting clients hear it now */
		if (s->tls_step == SERVER_TLS_HANDSHAKE)
			server_login_failed(s, SQLSTATE_CONNECTION_FAILURE,
					    "could not establish TLS with the %s of database \"%s\" (%s:%d): %s",
					    s->side == SIDE_SOURCE ? "source" : "target",
					    s->pool->db->name, a->host, a->port, reason);
		else
			server_connect_failed(s,
					      "could not connect to the %s of database \"%s\" (%s:%d): %s",
					      s->side == SIDE_SOURCE ? "source" : "target",
					      s->pool->db->name, a->host, a->port, reason);
		return;
	}
	/* deliver what arrived before the end */
	if (s->state == SV_ACTIVE)
		server_forward(s);
	server_close(s, reason);
}

static void server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case SV_CONNECT:
	case SV_LOGIN:
		server_connect_failed(s,
				      "could not connect to the %s of database \"%s\": server_connect_timeout (%lld ms) expired",
				      s->side == SIDE_SOURCE ? "source" : "target",
				      s->pool->db->name,
				      (long long)rt.cfg->server_connect_timeout_ms);
		break;
	default:
		break;
	}
}

/* ---- cancel ---- */

/* Where a cancel connection is. */
enum cancel_step {
	CANCEL_CONNECTING, /* TCP or unix connect in progress */
	CANCEL_TLS_ASKED,  /* SSLRequest sent, waiting for 'S' or 'N' */
	CANCEL_TLS,        /* handshake running */
	CANCEL_SENT,       /* CancelRequest sent: waiting for the server to close */
};

/*
 * A short-lived connection that carries one CancelRequest, over TLS when
 * the side's sslmode asks for it, as the backend's own connection did (the
 * cancel key is a secret: it goes encrypted whenever it can).
 */
struct cancel_conn {
	struct list_node node; /* on cancel_conns while in flight, then on reap_cancels */
	struct sock sock;
	struct event *timer; /* gives up after SERVER_CANCEL_TIMEOUT_SEC */
	enum cancel_step step;
	enum tls_sslmode mode; /* the side's sslmode when the cancel was sent */
	char *host;            /* for SNI and verify-full */
	uint8_t packet[16];
};

/* Cancel requests in flight, freed at exit if a server has not closed yet. */
static struct list_node cancel_conns = {&cancel_conns, &cancel_conns};
/* Cancel connections finished in a callback, freed by the reaper. */
static struct list_node reap_cancels = {&reap_cancels, &reap_cancels};

/* Done (answered, failed or timed out): no more callbacks; the reaper frees it. */
static void cancel_finish(struct cancel_conn *cc, const char *why)
{
	if (why)
		log_debug("cancel request to %s: %s", cc->host, why);
	sock_disable(&cc->sock);
	evtimer_del(cc->timer);
	list_remove(&cc->node);
	list_append(&reap_cancels, &cc->node);
	rt_schedule_reap();
}

static void cancel_free(struct cancel_conn *cc)
{
	list_remove(&cc->node);
	sock_free(&cc->sock);
	if (cc->timer)
		event_free(cc->timer);
	free(cc->host);
	free(cc);
}

static void server_reap_cancels(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &reap_cancels)
		cancel_free(list_entry(n, struct cancel_conn, node));
}

static void cancel_send_packet(struct cancel_conn *cc)
{
	if (!sock_write(&cc->sock, cc->packet, sizeof(cc->packet))) {
		cancel_finish(cc, "could not send");
		return;
	}
	cc->step = CANCEL_SENT;
}

static void cancel_read_cb(struct sock *sk, void *arg)
{
	struct cancel_conn *cc = arg;
	struct evbuffer *in = sock_in(sk);
	uint8_t answer;

	if (cc->step != CANCEL_TLS_ASKED) {
		evbuffer_drain(in, evbuffer_get_length(in)); /* nothing is expected */
		return;
	}
	if (evbuffer_remove(in, &answer, 1) != 1)
		return;
	if (answer == 'S' && evbuffer_get_length(in) == 0) {
		cc->step = CANCEL_TLS;
		if (!sock_start_tls_connect(sk, tls_server_ctx(rt.tls), cc->host,
					    sslmode_verify(cc->mode)))
			cancel_finish(cc, "could not start TLS");
		return;
	}
	if (answer == 'N' && cc->mode < SSLMODE_REQUIRE) {
		cancel_send_packet(cc);
		return;
	}
	cancel_finish(cc, answer == 'N' ? "server does not support TLS, which its sslmode requires"
					: "invalid answer to the SSL request");
}

static void cancel_event_cb(struct sock *sk, int what, void *arg)
{
	struct cancel_conn *cc = arg;

	if (what & SOCK_CONNECTED) {
		if (cc->mode == SSLMODE_DISABLE) {
			cancel_send_packet(cc);
		} else if (sock_write(sk, ssl_request, sizeof(ssl_request))) {
			cc->step = CANCEL_TLS_ASKED;
		} else {
			cancel_finish(cc, "could not send");
		}
		return;
	}
	if (what & SOCK_TLS_READY) {
		cancel_send_packet(cc);
		return;
	}
	/* the server closes the connection once it has the request */
	cancel_finish(cc, (what & SOCK_ERROR) ? sock_error_text(sk) : NULL);
}

static void cancel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cancel_finish(arg, "timed out");
}

void server_cancel_free_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &cancel_conns)
		cancel_free(list_entry(n, struct cancel_conn, node));
	server_reap_cancels();
}

void server_send_cancel(struct server *s)
{
	const struct backend_addr *a = &s->addr;
	struct cancel_conn *cc = calloc(1, sizeof(*cc));
	struct pq_buf b;
	struct timeval tv = {SERVER_CANCEL_TIMEOUT_SEC, 0};
	const char *who;

	if (cc == NULL)
		return;
	list_init(&cc->node);
	cc->sock.fd = -1;
	pq_buf_init(&b);
	pq_build_cancel_request(&b, s->be_pid, s->be_key);
	if (b.failed || b.len != sizeof(cc->packet)) {
		pq_buf_free(&b);
		free(cc);
		return;
	}
	memcpy(cc->packet, b.data, b.len);
	pq_buf_free(&b);
	cc->mode = side_sslmode(a, &who);
	cc->host = strdup(a->host);
	cc->timer = evtimer_new(rt.base, cancel_timer_cb, cc);
	if (cc->host == NULL || cc->timer == NULL ||
	    !sock_init(&cc->sock, -1, 256, cancel_read_cb, NULL, cancel_event_cb, cc)) {
		log_warning("server %s: could not send a cancel request: out of memory", s->label);
		cancel_free(cc);
		return;
	}
	list_append(&cancel_conns, &cc->node);
	evtimer_add(cc->timer, &tv);
	cc->step = CANCEL_CONNECTING;
	if (a->host[0] == '/') {
		struct sockaddr_un sun;

		if (!unix_addr(a, &sun)) {
			log_warning("server %s: could not send a cancel request", s->label);
			cancel_free(cc);
			return;
		}
		sock_connect(&cc->sock, (struct sockaddr *)&sun, sizeof(sun));
	} else {
		sock_connect_hostname(&cc->sock, rt.dns, a->host, a->port);
	}
}

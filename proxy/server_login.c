/*
 * server_login.c - a server connection's way in: connecting (host names
 * resolved with evdns, never blocking the loop), TLS as its sslmode says
 * (SSLRequest, one byte of answer, a handshake), a StartupMessage carrying
 * exactly the client's startup parameters, and the answers to the server's
 * authentication request with the credentials of its pool's user
 * (cleartext, md5, SCRAM-SHA-256).  A failure to connect makes the pool
 * wait server_login_retry; a refused login fails the clients waiting.
 */
#include "proxy/server_login.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/auth/md5.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"
#include "proxy/client.h"
#include "proxy/client_session.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/listen.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

/* SSLRequest: length 8, code 1234.5679. */
const uint8_t server_ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};

/* Build the sockaddr for a unix-socket backend: DIR/.s.PGSQL.PORT. */
bool server_unix_addr(const struct backend_addr *a, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/.s.PGSQL.%d", a->host, a->port) <
	       (int)sizeof(sun->sun_path);
}

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
enum tls_sslmode server_side_sslmode(const struct backend_addr *a, const char **name)
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

enum sock_tls_verify server_sslmode_verify(enum tls_sslmode m)
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

	if (server_side_sslmode(&s->pool->db->addr[s->side], &who) == SSLMODE_DISABLE) {
		server_send_startup(s);
		return;
	}
	if (!sock_write(&s->sock, server_ssl_request, sizeof(server_ssl_request))) {
		server_close(s, "could not send the SSL request");
		return;
	}
	s->tls_step = SERVER_TLS_ASKED;
}

/* The server's one-byte answer to our SSLRequest. */
void server_handle_tls_answer(struct server *s)
{
	struct evbuffer *in = sock_in(&s->sock);
	const struct backend_addr *a = &s->pool->db->addr[s->side];
	const char *who, *side = route_side_name(s->side);
	enum tls_sslmode mode = server_side_sslmode(a, &who);
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
					    server_sslmode_verify(mode)))
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
	if (s->listener) {
		/* no client waits for it: its listener's clients hear why */
		listen_conn_failed(s, msg);
		server_close(s, "login failed");
		return;
	}
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
	if (s->listener) {
		log_warning("server %s: %s", s->label, msg);
		listen_conn_failed(s, msg);
		server_close(s, "could not connect");
		return;
	}
	log_warning("server %s: %s: next attempt after server_login_retry (%lld ms)", s->label, msg,
		    (long long)rt.cfg->server_login_retry_ms);
	/* first, so that closing opens no replacement at once */
	pool_connect_failed(s->pool, s->side, msg);
	server_close(s, "could not connect");
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

void server_handle_login(struct server *s)
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
			if (s->listener) {
				server_set_state(s, SV_LISTEN);
				listen_conn_ready(s);
				return;
			}
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

/* ---- connecting ---- */

void server_connect(struct server *s)
{
	const struct backend_addr *a = &s->addr;
	bool started = true;

	if (a->host[0] == '/') {
		struct sockaddr_un sun;

		if (server_unix_addr(a, &sun))
			sock_connect(&s->sock, (struct sockaddr *)&sun, sizeof(sun));
		else
			started = false;
	} else {
		/* numeric addresses connect at once; names resolve through evdns */
		sock_connect_hostname(&s->sock, rt.dns, a->host, a->port);
	}
	if (!started) {
		/* the error event was not delivered: report through the same path later */
		log_warning("server %s: could not start connecting", s->label);
		event_active(s->timer, EV_TIMEOUT, 0);
	}
}

void server_login_event(struct server *s, int what)
{
	struct sock *sk = &s->sock;
	const struct backend_addr *a = &s->addr;
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
	/* a TLS handshake that fails is a configuration problem: waiting clients hear it now */
	if (s->tls_step == SERVER_TLS_HANDSHAKE)
		server_login_failed(s, SQLSTATE_CONNECTION_FAILURE,
				    "could not establish TLS with the %s of database \"%s\" (%s:%d): %s",
				    route_side_name(s->side), s->pool->db->name, a->host, a->port,
				    reason);
	else
		server_connect_failed(s,
				      "could not connect to the %s of database \"%s\" (%s:%d): %s",
				      route_side_name(s->side), s->pool->db->name, a->host, a->port,
				      reason);
}

void server_login_timeout(struct server *s)
{
	server_connect_failed(s,
			      "could not connect to the %s of database \"%s\": server_connect_timeout (%lld ms) expired",
			      route_side_name(s->side), s->pool->db->name,
			      (long long)rt.cfg->server_connect_timeout_ms);
}

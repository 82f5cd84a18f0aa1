/*
 * login_probe.c - one real login as an application user (see login_probe.h).
 *
 * A small machine over a sock of its own:
 *
 *   CONNECT --(sslmode asks for TLS)--> TLS_ANSWER --'S'--> TLS_HANDSHAKE
 *      |                                    |'N'               |
 *      `---------------> LOGIN <------------'------------------'
 *                          |  answers 'R' requests; 'E' ends it (refused)
 *                          `--> done at ReadyForQuery (Terminate sent)
 *
 * The answers to the authentication requests follow server_login.c's rules
 * (the same secrets, the same errors), so what the probe says is what
 * pgcutover's own server connections would meet.  A sock is never freed
 * inside its own callback: the probe is freed from a zero-delay event.
 */
#include "admin/cutover/login_probe.h"

#include <event2/buffer.h>
#include <event2/event.h>
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
#include "proxy/core/conninfo.h"
#include "proxy/core/log.h"
#include "proxy/io/sock.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_login.h"

/* The largest message a login exchange may carry (as SERVER_LOGIN_MSG_MAX). */
#define PROBE_MSG_MAX 16384

enum probe_step {
	PROBE_CONNECT,    /* connecting */
	PROBE_TLS_ANSWER, /* SSLRequest sent: one byte of answer */
	PROBE_HANDSHAKE,  /* TLS handshake */
	PROBE_LOGIN,      /* startup sent: the authentication exchange */
	PROBE_DONE,       /* reported (or cancelled): waiting to be freed */
};

struct login_probe {
	struct sock sock;
	struct event *timer; /* the time limit, then the deferred free */
	enum probe_step step;
	char host[256];
	int port;
	bool unix_socket;
	enum tls_sslmode sslmode;
	char *dbname, *user, *secret; /* malloc'd copies */
	uint8_t client_key[32];
	bool have_client_key;
	struct auth_scram_client scram;
	bool scram_active;
	bool scram_probe; /* SCRAM secret without a ClientKey: stop at server-first */
	login_probe_cb cb;
	void *arg;
};

static void probe_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_probe *p = arg;

	(void)fd;
	(void)what;
	sock_free(&p->sock);
	event_free(p->timer);
	if (p->scram_active)
		auth_scram_client_free(&p->scram);
	if (p->secret) {
		memset(p->secret, 0, strlen(p->secret));
		free(p->secret);
	}
	free(p->dbname);
	free(p->user);
	free(p);
}

/* No more I/O; freed from the loop once the current callback has returned. */
static void probe_retire(struct login_probe *p)
{
	struct timeval now = {0, 0};

	p->step = PROBE_DONE;
	sock_disable(&p->sock);
	evtimer_del(p->timer);
	event_free(p->timer);
	p->timer = evtimer_new(rt.base, probe_free_cb, p);
	if (p->timer)
		evtimer_add(p->timer, &now);
	else
		log_error("login probe: out of memory: a probe is leaked");
}

static void probe_report(struct login_probe *p, enum login_probe_outcome outcome,
			 const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void probe_report(struct login_probe *p, enum login_probe_outcome outcome,
			 const char *sqlstate, const char *fmt, ...)
{
	struct login_probe_result r;
	va_list ap;

	if (p->step == PROBE_DONE)
		return;
	memset(&r, 0, sizeof(r));
	r.outcome = outcome;
	snprintf(r.sqlstate, sizeof(r.sqlstate), "%s", sqlstate ? sqlstate : "");
	va_start(ap, fmt);
	vsnprintf(r.message, sizeof(r.message), fmt, ap);
	va_end(ap);
	if (outcome == PROBE_LOGGED_IN) {
		struct pq_buf b;

		/* a polite goodbye, so the server logs no "unexpected EOF" */
		pq_buf_init(&b);
		pq_build_terminate(&b);
		if (!b.failed && sock_write(&p->sock, b.data, b.len))
			sock_flush_now(&p->sock);
		pq_buf_free(&b);
	}
	probe_retire(p);
	p->cb(p->arg, &r);
}

static bool probe_send(struct login_probe *p, struct pq_buf *b)
{
	bool ok = !b->failed && sock_write(&p->sock, b->data, b->len);

	pq_buf_free(b);
	if (!ok)
		probe_report(p, PROBE_FAILED, NULL, "out of memory");
	return ok;
}

static void probe_startup(struct login_probe *p)
{
	const char *kv[] = {"user",           p->user, "database", p->dbname, "application_name",
			    "pgcutover check"};
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_startup(&b, kv, 3);
	if (probe_send(p, &b))
		p->step = PROBE_LOGIN;
}

/* SASL: SCRAM-SHA-256 with a password, with recovered keys, or only up to the salt. */
static bool probe_sasl(struct login_probe *p, struct pq_cursor *cur, struct pq_buf *b)
{
	enum auth_secret_kind kind = auth_secret_kind(p->secret);
	struct auth_scram_secret sec;
	bool found = false;
	const char *mech;
	char *out;

	while (pq_cursor_left(cur) > 0 && (mech = pq_get_str(cur))[0] != '\0')
		if (strcmp(mech, "SCRAM-SHA-256") == 0)
			found = true;
	if (!found) {
		probe_report(p, PROBE_CANNOT_ANSWER, NULL,
			     "the server offers no SASL mechanism pgcutover supports (SCRAM-SHA-256)");
		return false;
	}
	if (kind == AUTH_SECRET_PLAIN) {
		p->scram_active = auth_scram_client_init_password(&p->scram, p->secret);
	} else if (kind == AUTH_SECRET_SCRAM && auth_scram_parse_secret(p->secret, &sec)) {
		if (p->have_client_key) {
			p->scram_active =
				auth_scram_client_init_keys(&p->scram, p->client_key, &sec);
		} else {
			p->scram_probe = true;
			p->scram_active = auth_scram_client_init_probe(&p->scram);
		}
	} else {
		probe_report(p, PROBE_CANNOT_ANSWER, NULL,
			     "the server asks for SCRAM authentication, but auth_file holds %s for the user",
			     kind == AUTH_SECRET_MD5 ? "an md5 hash" : "no usable secret");
		return false;
	}
	out = p->scram_active ? auth_scram_client_first(&p->scram) : NULL;
	if (out == NULL) {
		probe_report(p, PROBE_FAILED, NULL, "could not start SCRAM authentication");
		return false;
	}
	pq_build_sasl_initial(b, "SCRAM-SHA-256", out, strlen(out));
	free(out);
	return true;
}

/* The server's SCRAM continue: the proof, or (probe mode) the salt comparison. */
static bool probe_sasl_continue(struct login_probe *p, struct pq_cursor *cur, struct pq_buf *b)
{
	size_t n = pq_cursor_left(cur);
	const char *data = (const char *)pq_get_bytes(cur, n), *err = NULL;
	char *out;

	if (!p->scram_active) {
		probe_report(p, PROBE_FAILED, NULL, "unexpected SCRAM message from the server");
		return false;
	}
	if (p->scram_probe) {
		struct auth_scram_secret sec;
		bool same = false;

		if (!auth_scram_parse_secret(p->secret, &sec) ||
		    !auth_scram_client_server_salt(&p->scram, data, n, &sec, &same, &err)) {
			probe_report(p, PROBE_FAILED, NULL, "SCRAM exchange failed: %s",
				     err ? err : "bad secret");
			return false;
		}
		if (same)
			probe_report(p, PROBE_SALT_MATCHES, NULL,
				     "the server's SCRAM salt and iteration count are auth_file's");
		else
			probe_report(p, PROBE_SALT_DIFFERS, NULL,
				     "the server's SCRAM verifier has another salt or iteration count than auth_file's secret (or the role does not exist)");
		return false;
	}
	out = auth_scram_client_final(&p->scram, data, n, &err);
	if (out == NULL) {
		probe_report(p, PROBE_CANNOT_ANSWER, NULL, "SCRAM authentication failed: %s",
			     err ? err : "unexpected message");
		return false;
	}
	pq_build_sasl_response(b, out, strlen(out));
	free(out);
	return true;
}

/* An AuthenticationXXX request; false when the probe has ended. */
static bool probe_auth(struct login_probe *p, const uint8_t *body, size_t len)
{
	struct pq_cursor cur;
	struct pq_buf b;
	uint32_t code;

	pq_cursor_init(&cur, body, len);
	code = pq_get_u32(&cur);
	pq_buf_init(&b);
	if (code != PQ_AUTH_OK && p->secret == NULL) {
		probe_report(p, PROBE_CANNOT_ANSWER, NULL,
			     "the server asks for a password and auth_file has none for the user");
		return false;
	}
	switch (code) {
	case PQ_AUTH_OK:
		return true;
	case PQ_AUTH_CLEARTEXT:
		if (auth_secret_kind(p->secret) != AUTH_SECRET_PLAIN) {
			probe_report(p, PROBE_CANNOT_ANSWER, NULL,
				     "the server asks for a cleartext password, but auth_file holds a hash for the user");
			return false;
		}
		pq_build_password(&b, p->secret);
		break;
	case PQ_AUTH_MD5: {
		const uint8_t *salt = pq_get_bytes(&cur, 4);
		char resp[36];

		if (salt == NULL || !auth_md5_response(p->user, p->secret, salt, resp)) {
			probe_report(p, PROBE_CANNOT_ANSWER, NULL,
				     "the server asks for MD5 authentication, but auth_file holds no plaintext or md5 secret for the user");
			return false;
		}
		pq_build_password(&b, resp);
		break;
	}
	case PQ_AUTH_SASL:
		if (!probe_sasl(p, &cur, &b))
			return false;
		break;
	case PQ_AUTH_SASL_CONTINUE:
		if (!probe_sasl_continue(p, &cur, &b))
			return false;
		break;
	case PQ_AUTH_SASL_FINAL: {
		size_t n = pq_cursor_left(&cur);
		const char *err = NULL;

		if (!p->scram_active ||
		    !auth_scram_client_verify(&p->scram, (const char *)pq_get_bytes(&cur, n), n,
					      &err)) {
			probe_report(p, PROBE_FAILED, NULL,
				     "could not verify the server's SCRAM signature: %s",
				     err ? err : "unexpected message");
			return false;
		}
		return true;
	}
	default:
		probe_report(p, PROBE_CANNOT_ANSWER, NULL,
			     "the server asks for an authentication method pgcutover does not support (%u)",
			     (unsigned)code);
		return false;
	}
	return probe_send(p, &b);
}

/* The messages of the login, up to ReadyForQuery. */
static void probe_login_input(struct login_probe *p)
{
	struct evbuffer *in = sock_in(&p->sock);

	while (p->step == PROBE_LOGIN) {
		uint8_t hdr[PQ_HEADER_SIZE], type;
		uint32_t len;
		const uint8_t *msg;
		enum pq_status st;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		st = pq_read_header(hdr, sizeof(hdr), &type, &len, PROBE_MSG_MAX);
		if (st != PQ_OK) {
			probe_report(p, PROBE_FAILED, NULL,
				     "the server sent an invalid message during login");
			return;
		}
		if (evbuffer_get_length(in) < (size_t)len + 1)
			return;
		msg = evbuffer_pullup(in, (ssize_t)len + 1);
		if (msg == NULL) {
			probe_report(p, PROBE_FAILED, NULL, "out of memory");
			return;
		}
		switch (type) {
		case 'R':
			if (!probe_auth(p, msg + PQ_HEADER_SIZE, len - 4))
				return;
			break;
		case 'E': {
			char sqlstate[6], text[256];

			server_error_text(msg + PQ_HEADER_SIZE, len - 4, sqlstate, text,
					  sizeof(text));
			probe_report(p, PROBE_REFUSED, sqlstate, "%s", text);
			return;
		}
		case 'Z':
			probe_report(p, PROBE_LOGGED_IN, NULL, "logged in");
			return;
		default:
			/* ParameterStatus, BackendKeyData, NoticeResponse... */
			break;
		}
		evbuffer_drain(in, len + 1);
	}
}

static void probe_read_cb(struct sock *s, void *arg)
{
	struct login_probe *p = arg;
	struct evbuffer *in = sock_in(s);

	(void)s;
	if (p->step == PROBE_TLS_ANSWER) {
		uint8_t answer;

		if (evbuffer_remove(in, &answer, 1) != 1)
			return;
		if (answer == 'S' && evbuffer_get_length(in) == 0) {
			p->step = PROBE_HANDSHAKE;
			if (!sock_start_tls_connect(&p->sock, tls_server_ctx(rt.tls), p->host,
						    server_sslmode_verify(p->sslmode)))
				probe_report(p, PROBE_FAILED, NULL, "could not start TLS");
			return;
		}
		if (answer != 'N') {
			probe_report(p, PROBE_FAILED, NULL,
				     "the server sent an invalid answer to the SSL request");
			return;
		}
		if (p->sslmode >= SSLMODE_REQUIRE) {
			probe_report(p, PROBE_FAILED, NULL,
				     "the server does not support TLS but sslmode is %s",
				     tls_sslmode_name(p->sslmode));
			return;
		}
		probe_startup(p);
		return;
	}
	if (p->step == PROBE_LOGIN)
		probe_login_input(p);
}

static void probe_event_cb(struct sock *s, int what, void *arg)
{
	struct login_probe *p = arg;

	if (what & SOCK_CONNECTED) {
		if (p->unix_socket || p->sslmode == SSLMODE_DISABLE) {
			probe_startup(p);
		} else if (!sock_write(s, server_ssl_request, sizeof(server_ssl_request))) {
			probe_report(p, PROBE_FAILED, NULL, "out of memory");
		} else {
			p->step = PROBE_TLS_ANSWER;
		}
		return;
	}
	if (what & SOCK_TLS_READY) {
		probe_startup(p);
		return;
	}
	probe_report(p, PROBE_FAILED, NULL, "could not connect to %s:%d: %s", p->host, p->port,
		     (what & SOCK_ERROR) ? sock_error_text(s)
					 : "server closed the connection unexpectedly");
}

static void probe_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_probe *p = arg;

	(void)fd;
	(void)what;
	probe_report(p, PROBE_FAILED, SQLSTATE_QUERY_CANCELED, "no answer within %s",
		     "server_connect_timeout");
}

struct login_probe *login_probe_start(const struct backend_addr *a, const char *dbname,
				      const char *user, const char *secret,
				      const uint8_t *client_key, int64_t timeout_ms,
				      login_probe_cb cb, void *arg)
{
	struct login_probe *p = calloc(1, sizeof(*p));
	struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
	const char *who;

	if (p == NULL)
		return NULL;
	p->cb = cb;
	p->arg = arg;
	snprintf(p->host, sizeof(p->host), "%s", a->host);
	p->port = a->port;
	p->unix_socket = a->host[0] == '/';
	p->sslmode = server_side_sslmode(a, &who);
	p->dbname = strdup(dbname);
	p->user = strdup(user);
	p->secret = secret ? strdup(secret) : NULL;
	if (client_key) {
		memcpy(p->client_key, client_key, sizeof(p->client_key));
		p->have_client_key = true;
	}
	p->timer = evtimer_new(rt.base, probe_timeout_cb, p);
	if (p->dbname == NULL || p->user == NULL || (secret && p->secret == NULL) ||
	    p->timer == NULL ||
	    !sock_init(&p->sock, -1, PROBE_MSG_MAX * 2, probe_read_cb, NULL, probe_event_cb, p)) {
		if (p->timer)
			event_free(p->timer);
		free(p->dbname);
		free(p->user);
		free(p->secret);
		free(p);
		return NULL;
	}
	evtimer_add(p->timer, &tv);
	if (p->unix_socket) {
		struct sockaddr_un sun;

		if (server_unix_addr(a, &sun)) {
			sock_connect(&p->sock, (struct sockaddr *)&sun, sizeof(sun));
		} else {
			/* reported from the loop, through the time limit's event */
			event_active(p->timer, EV_TIMEOUT, 0);
		}
	} else {
		sock_connect_hostname(&p->sock, rt.dns, p->host, p->port);
	}
	return p;
}

void login_probe_cancel(struct login_probe *p)
{
	if (p->step != PROBE_DONE)
		probe_retire(p);
}

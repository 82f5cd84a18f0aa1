/*
 * client_login.c - a client's login: the startup packet (and the SSLRequest,
 * GSSENCRequest and CancelRequest that may come instead), TLS, the checks
 * on database and limits, authentication against auth_file (trust, md5,
 * SCRAM-SHA-256 and -PLUS), and the welcome (AuthenticationOk, the server's
 * parameters, our cancel key, ReadyForQuery).
 */
#include "proxy/client_login.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/auth/crypto.h"
#include "proxy/auth/md5.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/client_forward.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"

/* Authentication messages are small; anything larger is an attack or a bug. */
#define CLIENT_AUTH_MSG_MAX 8192

/* ---- startup packet ---- */

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
	c->db = db_find(c->dbname);
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
			cancel_request(c, su.cancel_pid, su.cancel_key);
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

void client_handle_login(struct client *c)
{
	if (c->auth_step == AUTH_STEP_STARTUP)
		client_handle_startup(c);
	if (c->state == CL_LOGIN && c->auth_step != AUTH_STEP_STARTUP &&
	    c->auth_step != AUTH_STEP_DONE)
		client_handle_auth_msg(c);
}

/* ---- authentication ---- */

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
	/*
	 * Session pooling gives the client its server's process ID, so it waits
	 * for its server to log in (that server runs its first query anyway),
	 * unless the database is held: a client that connects during a pause
	 * logs in at once (and gets an ID of pgcutover's own) and waits at its
	 * first query.  Transaction pooling always welcomes from the cache.
	 */
	welcome = c->db->pool_mode == POOL_SESSION && !db_paused(c->db)
			  ? NULL
			  : pool_find_welcome(c->pool, c);
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
bool client_sync_params(struct client *c, struct params_snap *snap)
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

bool client_param_reported(struct client *c, const char *name, const char *value)
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
bool client_send_welcome(struct client *c, struct params_snap *server_params)
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

/*
 * scram_client.c - the client side of SCRAM-SHA-256: logging in to a backend
 * with a password (keys derived from the salt and iterations the server
 * sends) or with a recovered ClientKey (the server's salt and iterations
 * must then be the userlist secret's own).
 *
 * The server's messages are parsed with scram_msg.h's cursor, as strictly as
 * libpq's fe-auth-scram.c parses them.  The server's signature is compared
 * with CRYPTO_memcmp; the password and keys are wiped with OPENSSL_cleanse.
 */
#include "proxy/auth/scram_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proxy/auth/scram_msg.h"

/* Error strings handed to callers; static so they can be sent as they are. */
static const char err_server_first[] = "malformed SCRAM message from server (server-first-message)";
static const char err_server_nonce[] = "invalid SCRAM response from server (nonce mismatch)";
static const char err_server_salt[] = "malformed SCRAM message from server (invalid salt)";
static const char err_server_iter[] =
	"malformed SCRAM message from server (invalid iteration count)";
static const char err_secret_mismatch[] =
	"the SCRAM secret in auth_file does not match the server's (different salt or iterations)";
static const char err_server_final[] = "malformed SCRAM message from server (server-final-message)";
static const char err_server_sig[] = "incorrect server signature in SCRAM exchange";

/* Common part of both inits: zero the struct and pick our nonce. */
static bool scram_client_init(struct auth_scram_client *c)
{
	uint8_t raw[AUTH_SCRAM_NONCE_RAW_LEN];

	memset(c, 0, sizeof(*c));
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (!auth_random_bytes(raw, sizeof(raw)))
		return false;
	auth_b64_encode(raw, sizeof(raw), c->nonce);
	c->state = AUTH_SCRAM_CLIENT_INIT;
	return true;
}

bool auth_scram_client_init_password(struct auth_scram_client *c, const char *password)
{
	if (!scram_client_init(c))
		return false;
	if (!(c->password = strdup(password))) {
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	return true;
}

bool auth_scram_client_init_keys(struct auth_scram_client *c,
				 const uint8_t client_key[AUTH_SCRAM_KEY_LEN],
				 const struct auth_scram_secret *secret)
{
	uint8_t stored[AUTH_SCRAM_KEY_LEN];
	bool match;

	if (!scram_client_init(c))
		return false;
	/* A key that does not belong to this secret could never log in: say so now. */
	match = auth_sha256(client_key, AUTH_SCRAM_KEY_LEN, stored) &&
		CRYPTO_memcmp(stored, secret->stored_key, AUTH_SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(stored, sizeof(stored));
	if (!match) {
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	c->have_secret = true;
	c->secret = *secret;
	memcpy(c->client_key, client_key, AUTH_SCRAM_KEY_LEN);
	memcpy(c->server_key, secret->server_key, AUTH_SCRAM_KEY_LEN);
	return true;
}

bool auth_scram_client_set_nonce_for_tests(struct auth_scram_client *c, const char *nonce,
					   const char *user)
{
	size_t len = strlen(nonce), user_len = strlen(user);

	if (c->state != AUTH_SCRAM_CLIENT_INIT || len >= sizeof(c->nonce) ||
	    !auth_scram_valid_nonce(nonce, len) || user_len >= sizeof(c->user) ||
	    strpbrk(user, ",="))
		return false;
	memcpy(c->nonce, nonce, len + 1);
	memcpy(c->user, user, user_len + 1);
	return true;
}

char *auth_scram_client_first(struct auth_scram_client *c)
{
	size_t cap;
	char *msg;

	if (c->state != AUTH_SCRAM_CLIENT_INIT)
		return NULL;
	/* "n,," : no channel binding, no authzid; n= is the user, empty as libpq sends it. */
	cap = 3 + 2 + strlen(c->user) + 3 + strlen(c->nonce) + 1;
	if (!(msg = malloc(cap)))
		goto fail;
	snprintf(msg, cap, "n,,n=%s,r=%s", c->user, c->nonce);
	c->client_first_bare_len = strlen(msg) - 3;
	if (!(c->client_first_bare = auth_scram_dup_bytes(msg + 3, c->client_first_bare_len))) {
		free(msg);
		goto fail;
	}
	c->state = AUTH_SCRAM_CLIENT_FIRST_SENT;
	return msg;
fail:
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	return NULL;
}

/* What a server-first-message says (parse_server_first). */
struct server_first {
	const char *nonce; /* ours followed by the server's part, inside the message */
	size_t nonce_len;
	uint8_t salt[AUTH_SCRAM_MAX_SALT_LEN];
	size_t salt_len;
	int iterations;
};

/*
 * r=<our nonce><server's part>,s=<salt>,i=<iterations>, nothing after (as
 * libpq); false with *err set when it is not that.
 */
static bool parse_server_first(const struct auth_scram_client *c, const char *msg, size_t len,
			       struct server_first *out, const char **err)
{
	struct auth_scram_cursor cur = {msg, msg + len};
	const char *salt_b64, *iter_str;
	size_t salt_b64_len, iter_len, our_len = strlen(c->nonce);

	if (len == 0 || memchr(msg, '\0', len)) {
		auth_scram_set_err(err, err_server_first);
		return false;
	}
	if (auth_scram_at_attr(&cur, 'm')) {
		auth_scram_set_err(err, auth_scram_err_mext);
		return false;
	}
	if (!auth_scram_read_attr(&cur, 'r', &out->nonce, &out->nonce_len)) {
		auth_scram_set_err(err, err_server_first);
		return false;
	}
	if (!auth_scram_valid_nonce(out->nonce, out->nonce_len) || out->nonce_len <= our_len ||
	    memcmp(out->nonce, c->nonce, our_len) != 0) {
		auth_scram_set_err(err, err_server_nonce);
		return false;
	}
	if (!auth_scram_comma(&cur) || !auth_scram_read_attr(&cur, 's', &salt_b64, &salt_b64_len)) {
		auth_scram_set_err(err, err_server_first);
		return false;
	}
	if (!auth_b64_decode(salt_b64, salt_b64_len, out->salt, sizeof(out->salt), &out->salt_len) ||
	    out->salt_len == 0) {
		auth_scram_set_err(err, err_server_salt);
		return false;
	}
	if (!auth_scram_comma(&cur) || !auth_scram_read_attr(&cur, 'i', &iter_str, &iter_len) ||
	    cur.p != cur.end) {
		auth_scram_set_err(err, err_server_first);
		return false;
	}
	if (!auth_scram_parse_count(iter_str, iter_len, &out->iterations) ||
	    out->iterations > AUTH_SCRAM_MAX_ITERATIONS) {
		auth_scram_set_err(err, err_server_iter);
		return false;
	}
	return true;
}

bool auth_scram_client_init_probe(struct auth_scram_client *c)
{
	return scram_client_init(c);
}

bool auth_scram_client_server_salt(struct auth_scram_client *c, const char *server_first,
				   size_t len, const struct auth_scram_secret *secret, bool *same,
				   const char **err)
{
	struct server_first sf;
	bool ok;

	auth_scram_set_err(err, NULL);
	*same = false;
	if (c->state != AUTH_SCRAM_CLIENT_FIRST_SENT) {
		auth_scram_set_err(err, auth_scram_err_order);
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	/* the exchange ends here whatever the answer: there is no proof to send */
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	ok = parse_server_first(c, server_first, len, &sf, err);
	if (ok)
		*same = sf.salt_len == secret->salt_len &&
			memcmp(sf.salt, secret->salt, sf.salt_len) == 0 &&
			sf.iterations == secret->iterations;
	OPENSSL_cleanse(&sf, sizeof(sf));
	return ok;
}

char *auth_scram_client_final(struct auth_scram_client *c, const char *server_first, size_t len,
			      const char **err)
{
	struct server_first sf;
	const char *nonce;
	size_t nonce_len, salt_len, am_len = 0, wp_len, cap;
	uint8_t *salt = sf.salt, stored[AUTH_SCRAM_KEY_LEN];
	uint8_t client_sig[AUTH_SCRAM_KEY_LEN], proof[AUTH_SCRAM_KEY_LEN];
	char proof_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char *without_proof = NULL, *auth_message = NULL, *reply = NULL;
	int iterations;

	auth_scram_set_err(err, NULL);
	if (c->state != AUTH_SCRAM_CLIENT_FIRST_SENT) {
		auth_scram_set_err(err, auth_scram_err_order);
		goto fail;
	}
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (!parse_server_first(c, server_first, len, &sf, err))
		goto fail;
	nonce = sf.nonce;
	nonce_len = sf.nonce_len;
	salt_len = sf.salt_len;
	iterations = sf.iterations;

	if (c->have_secret) {
		/* Recovered keys are only valid for the exact salt and iterations they came from. */
		if (salt_len != c->secret.salt_len || memcmp(salt, c->secret.salt, salt_len) != 0 ||
		    iterations != c->secret.iterations) {
			auth_scram_set_err(err, err_secret_mismatch);
			goto fail;
		}
	} else if (!auth_scram_derive_keys(c->password, salt, salt_len, iterations, c->client_key,
					   NULL, c->server_key)) {
		auth_scram_set_err(err, auth_scram_err_crypto);
		goto fail;
	}

	/* client-final-message-without-proof: "biws" is base64("n,,"). */
	wp_len = strlen("c=biws,r=") + nonce_len;
	if (!(without_proof = malloc(wp_len + 1))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	memcpy(without_proof, "c=biws,r=", 9);
	memcpy(without_proof + 9, nonce, nonce_len);
	without_proof[wp_len] = '\0';

	if (!(auth_message =
		      auth_scram_auth_message(c->client_first_bare, c->client_first_bare_len,
					      server_first, len, without_proof, wp_len, &am_len))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	/* ClientProof = ClientKey XOR HMAC(SHA256(ClientKey), AuthMessage). */
	if (!auth_sha256(c->client_key, AUTH_SCRAM_KEY_LEN, stored) ||
	    !auth_hmac_sha256(stored, sizeof(stored), auth_message, am_len, client_sig) ||
	    !auth_hmac_sha256(c->server_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			      c->server_signature)) {
		auth_scram_set_err(err, auth_scram_err_crypto);
		goto fail;
	}
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		proof[i] = c->client_key[i] ^ client_sig[i];
	auth_b64_encode(proof, sizeof(proof), proof_b64);

	cap = wp_len + 3 + strlen(proof_b64) + 1;
	if (!(reply = malloc(cap))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	snprintf(reply, cap, "%s,p=%s", without_proof, proof_b64);
	c->state = AUTH_SCRAM_CLIENT_FINAL_SENT;

fail:
	if (!reply)
		c->state = AUTH_SCRAM_CLIENT_FAILED;
	free(without_proof);
	free(auth_message);
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(proof_b64, sizeof(proof_b64));
	OPENSSL_cleanse(&sf, sizeof(sf));
	return reply;
}

/* server-error values of RFC 5802 section 7, so *err can name them statically. */
static const char *const scram_server_errors[][2] = {
	{"invalid-encoding", "SCRAM error from server: invalid-encoding"},
	{"extensions-not-supported", "SCRAM error from server: extensions-not-supported"},
	{"invalid-proof", "SCRAM error from server: invalid-proof"},
	{"channel-bindings-dont-match", "SCRAM error from server: channel-bindings-dont-match"},
	{"server-does-support-channel-binding",
	 "SCRAM error from server: server-does-support-channel-binding"},
	{"channel-binding-not-supported", "SCRAM error from server: channel-binding-not-supported"},
	{"unsupported-channel-binding-type",
	 "SCRAM error from server: unsupported-channel-binding-type"},
	{"unknown-user", "SCRAM error from server: unknown-user"},
	{"invalid-username-encoding", "SCRAM error from server: invalid-username-encoding"},
	{"no-resources", "SCRAM error from server: no-resources"},
	{"other-error", "SCRAM error from server: other-error"},
};

bool auth_scram_client_verify(struct auth_scram_client *c, const char *server_final, size_t len,
			      const char **err)
{
	struct auth_scram_cursor cur = {server_final, server_final + len};
	uint8_t sig[AUTH_SCRAM_KEY_LEN];
	const char *val;
	size_t val_len, n;

	auth_scram_set_err(err, NULL);
	if (c->state != AUTH_SCRAM_CLIENT_FINAL_SENT) {
		auth_scram_set_err(err, auth_scram_err_order);
		c->state = AUTH_SCRAM_CLIENT_FAILED;
		return false;
	}
	c->state = AUTH_SCRAM_CLIENT_FAILED;
	if (auth_scram_read_attr(&cur, 'e', &val, &val_len)) {
		auth_scram_set_err(err, "SCRAM error from server");
		for (size_t i = 0; i < sizeof(scram_server_errors) / sizeof(scram_server_errors[0]);
		     i++) {
			if (strlen(scram_server_errors[i][0]) == val_len &&
			    memcmp(scram_server_errors[i][0], val, val_len) == 0)
				auth_scram_set_err(err, scram_server_errors[i][1]);
		}
		return false;
	}
	if (!auth_scram_read_attr(&cur, 'v', &val, &val_len) || cur.p != cur.end ||
	    !auth_b64_decode(val, val_len, sig, sizeof(sig), &n) || n != AUTH_SCRAM_KEY_LEN) {
		auth_scram_set_err(err, err_server_final);
		return false;
	}
	if (CRYPTO_memcmp(sig, c->server_signature, AUTH_SCRAM_KEY_LEN) != 0) {
		auth_scram_set_err(err, err_server_sig);
		return false;
	}
	c->state = AUTH_SCRAM_CLIENT_DONE;
	return true;
}

void auth_scram_client_free(struct auth_scram_client *c)
{
	if (c->password) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->client_first_bare);
	OPENSSL_cleanse(c, sizeof(*c));
	c->state = AUTH_SCRAM_CLIENT_FAILED;
}

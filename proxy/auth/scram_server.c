/*
 * scram_server.c - the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS
 * (tls-server-end-point): checking a client's proof against a userlist
 * secret, and recovering its ClientKey.
 *
 * The messages are parsed with scram_msg.h's cursor, as strictly as
 * PostgreSQL's auth-scram.c parses them.  Proofs and channel binding data
 * are compared with CRYPTO_memcmp; keys are wiped with OPENSSL_cleanse once
 * they are no longer needed.
 */
#include "proxy/auth/scram_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proxy/auth/scram_msg.h"

/* Error strings handed to callers; static so they can be sent as they are. */
static const char err_malformed[] = "malformed SCRAM message";
static const char err_cbind_unsupported[] = "SCRAM channel binding is not supported";
static const char err_authzid[] = "SCRAM authorization identity is not supported";
static const char err_cbind_mismatch[] = "SCRAM channel binding check failed";
static const char err_cbind_type[] =
	"unsupported SCRAM channel-binding type (expected tls-server-end-point)";
static const char err_cbind_unselected[] =
	"malformed SCRAM message (channel binding data sent without selecting SCRAM-SHA-256-PLUS)";
static const char err_cbind_missing[] =
	"malformed SCRAM message (SCRAM-SHA-256-PLUS selected but no channel binding data sent)";
static const char err_cbind_downgrade[] =
	"SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not, and this server does";
static const char err_nonce_mismatch[] = "malformed SCRAM message (nonce mismatch)";
static const char err_wrong_password[] = "password authentication failed";
static const char err_random[] = "could not generate SCRAM nonce";

void auth_scram_server_init(struct auth_scram_server *s, const struct auth_scram_secret *secret)
{
	memset(s, 0, sizeof(*s));
	s->state = AUTH_SCRAM_SERVER_INIT;
	s->secret = *secret;
}

bool auth_scram_server_set_nonce_for_tests(struct auth_scram_server *s, const char *server_nonce)
{
	size_t len = strlen(server_nonce);

	if (s->state != AUTH_SCRAM_SERVER_INIT || len >= sizeof(s->server_nonce) ||
	    !auth_scram_valid_nonce(server_nonce, len))
		return false;
	memcpy(s->server_nonce, server_nonce, len + 1);
	return true;
}

bool auth_scram_server_set_channel_binding(struct auth_scram_server *s, const uint8_t *data,
					   size_t len, bool selected)
{
	if (s->state != AUTH_SCRAM_SERVER_INIT || len == 0 || len > sizeof(s->cbind_data))
		return false;
	memcpy(s->cbind_data, data, len);
	s->cbind_len = len;
	s->cbind_offered = true;
	s->cbind_selected = selected;
	return true;
}

char *auth_scram_server_first(struct auth_scram_server *s, const char *msg, size_t len,
			      const char **err)
{
	static const char tsep[] = "p=tls-server-end-point,";
	struct auth_scram_cursor cur = {msg, msg + len};
	const char *val, *bare, *cnonce;
	size_t val_len, cnonce_len, snonce_len, cap;
	char salt_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_MAX_SALT_LEN) + 1];
	char *reply;

	auth_scram_set_err(err, NULL);
	if (s->state != AUTH_SCRAM_SERVER_INIT) {
		auth_scram_set_err(err, auth_scram_err_order);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FAILED; /* until we succeed */
	if (len == 0 || memchr(msg, '\0', len)) {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}

	/* gs2-header: gs2-cbind-flag "," [authzid] "," */
	if (auth_scram_at_attr(&cur, 'p')) {
		if (!s->cbind_selected) {
			auth_scram_set_err(err, s->cbind_offered ? err_cbind_unselected
								 : err_cbind_unsupported);
			goto fail;
		}
		if (len < sizeof(tsep) - 1 || memcmp(msg, tsep, sizeof(tsep) - 1) != 0) {
			auth_scram_set_err(err, err_cbind_type);
			goto fail;
		}
		cur.p = msg + sizeof(tsep) - 1;
	} else {
		if (len < 2 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
			auth_scram_set_err(err, err_malformed);
			goto fail;
		}
		if (s->cbind_selected) {
			auth_scram_set_err(err, err_cbind_missing);
			goto fail;
		}
		if (msg[0] == 'y' && s->cbind_offered) {
			auth_scram_set_err(err, err_cbind_downgrade);
			goto fail;
		}
		cur.p = msg + 2;
	}
	if (auth_scram_at_attr(&cur, 'a')) {
		auth_scram_set_err(err, err_authzid);
		goto fail;
	}
	if (cur.p >= cur.end || *cur.p != ',') {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}
	cur.p++;
	/* at most sizeof(tsep) + 1 bytes: an authzid was refused above */
	memcpy(s->gs2_header, msg, (size_t)(cur.p - msg));
	s->gs2_header[cur.p - msg] = '\0';

	/* client-first-message-bare: [m=...,] n=user,r=nonce[,ext...] */
	bare = cur.p;
	if (auth_scram_at_attr(&cur, 'm')) {
		auth_scram_set_err(err, auth_scram_err_mext);
		goto fail;
	}
	/* The user name is ignored, as PostgreSQL does: the startup packet's user counts. */
	if (!auth_scram_read_attr(&cur, 'n', &val, &val_len) || !auth_scram_comma(&cur) ||
	    !auth_scram_read_attr(&cur, 'r', &cnonce, &cnonce_len) ||
	    !auth_scram_valid_nonce(cnonce, cnonce_len)) {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}
	while (cur.p < cur.end) {
		if (!auth_scram_comma(&cur) || !auth_scram_skip_extension(&cur)) {
			auth_scram_set_err(err, err_malformed);
			goto fail;
		}
	}

	s->client_first_bare_len = (size_t)(cur.end - bare);
	if (!(s->client_first_bare = auth_scram_dup_bytes(bare, s->client_first_bare_len))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}

	/* Our half of the nonce, unless a test fixed it. */
	if (s->server_nonce[0] == '\0') {
		uint8_t raw[AUTH_SCRAM_NONCE_RAW_LEN];

		if (!auth_random_bytes(raw, sizeof(raw))) {
			auth_scram_set_err(err, err_random);
			goto fail;
		}
		auth_b64_encode(raw, sizeof(raw), s->server_nonce);
	}
	snonce_len = strlen(s->server_nonce);
	s->nonce_len = cnonce_len + snonce_len;
	if (!(s->nonce = malloc(s->nonce_len + 1))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	memcpy(s->nonce, cnonce, cnonce_len);
	memcpy(s->nonce + cnonce_len, s->server_nonce, snonce_len + 1);

	/* server-first-message: r=nonce,s=salt,i=iterations */
	auth_b64_encode(s->secret.salt, s->secret.salt_len, salt_b64);
	cap = 2 + s->nonce_len + 3 + strlen(salt_b64) + 3 + 11 + 1;
	if (!(s->server_first = malloc(cap))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	snprintf(s->server_first, cap, "r=%s,s=%s,i=%d", s->nonce, salt_b64, s->secret.iterations);
	s->server_first_len = strlen(s->server_first);
	if (!(reply = auth_scram_dup_bytes(s->server_first, s->server_first_len))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FIRST_SENT;
	return reply;

fail:
	s->state = AUTH_SCRAM_SERVER_FAILED;
	return NULL;
}

char *auth_scram_server_final(struct auth_scram_server *s, const char *msg, size_t len,
			      bool *wrong_password, const char **err)
{
	struct auth_scram_cursor cur = {msg, msg + len};
	const char *cbind, *nonce, *proof_b64 = NULL;
	size_t cbind_len, nonce_len, proof_b64_len = 0, without_proof_len = 0, n, am_len = 0;
	uint8_t cbind_data[sizeof(s->gs2_header) + AUTH_SCRAM_CBIND_MAX];
	uint8_t proof[AUTH_SCRAM_KEY_LEN], client_sig[AUTH_SCRAM_KEY_LEN];
	size_t hlen;
	uint8_t client_key[AUTH_SCRAM_KEY_LEN], check[AUTH_SCRAM_KEY_LEN];
	uint8_t server_sig[AUTH_SCRAM_KEY_LEN];
	char sig_b64[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char *auth_message = NULL, *reply = NULL;
	bool ok;

	*wrong_password = false;
	auth_scram_set_err(err, NULL);
	if (s->state != AUTH_SCRAM_SERVER_FIRST_SENT) {
		auth_scram_set_err(err, auth_scram_err_order);
		goto fail;
	}
	s->state = AUTH_SCRAM_SERVER_FAILED;
	if (len == 0 || memchr(msg, '\0', len)) {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}

	/*
	 * c=<b64 gs2 header + channel binding data>: the first message's header,
	 * followed with SCRAM-SHA-256-PLUS by the hash of our certificate.
	 */
	if (!auth_scram_read_attr(&cur, 'c', &cbind, &cbind_len) ||
	    !auth_b64_decode(cbind, cbind_len, cbind_data, sizeof(cbind_data), &n)) {
		auth_scram_set_err(err, s->cbind_selected ? err_cbind_mismatch : err_malformed);
		goto fail;
	}
	hlen = strlen(s->gs2_header);
	if (n != hlen + (s->cbind_selected ? s->cbind_len : 0) ||
	    memcmp(cbind_data, s->gs2_header, hlen) != 0 ||
	    (s->cbind_selected &&
	     CRYPTO_memcmp(cbind_data + hlen, s->cbind_data, s->cbind_len) != 0)) {
		auth_scram_set_err(err, err_cbind_mismatch);
		goto fail;
	}

	/* r=<nonce>: must echo the combined nonce. */
	if (!auth_scram_comma(&cur) || !auth_scram_read_attr(&cur, 'r', &nonce, &nonce_len)) {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}
	if (nonce_len != s->nonce_len || memcmp(nonce, s->nonce, nonce_len) != 0) {
		auth_scram_set_err(err, err_nonce_mismatch);
		goto fail;
	}

	/* Optional extensions, then p=<proof>, which must be last. */
	for (;;) {
		const char *comma = cur.p;

		if (!auth_scram_comma(&cur)) {
			auth_scram_set_err(err, err_malformed);
			goto fail;
		}
		if (auth_scram_at_attr(&cur, 'p')) {
			without_proof_len = (size_t)(comma - msg);
			if (!auth_scram_read_attr(&cur, 'p', &proof_b64, &proof_b64_len) ||
			    cur.p != cur.end) {
				auth_scram_set_err(err, err_malformed);
				goto fail;
			}
			break;
		}
		if (!auth_scram_skip_extension(&cur)) {
			auth_scram_set_err(err, err_malformed);
			goto fail;
		}
	}
	if (!auth_b64_decode(proof_b64, proof_b64_len, proof, sizeof(proof), &n) ||
	    n != AUTH_SCRAM_KEY_LEN) {
		auth_scram_set_err(err, err_malformed);
		goto fail;
	}

	if (!(auth_message = auth_scram_auth_message(s->client_first_bare, s->client_first_bare_len,
						     s->server_first, s->server_first_len, msg,
						     without_proof_len, &am_len))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}

	/*
	 * ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is
	 * right when SHA256(ClientKey) is the StoredKey.
	 */
	if (!auth_hmac_sha256(s->secret.stored_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			      client_sig)) {
		auth_scram_set_err(err, auth_scram_err_crypto);
		goto fail;
	}
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	if (!auth_sha256(client_key, sizeof(client_key), check) ||
	    !auth_hmac_sha256(s->secret.server_key, AUTH_SCRAM_KEY_LEN, auth_message, am_len,
			      server_sig)) {
		auth_scram_set_err(err, auth_scram_err_crypto);
		goto fail;
	}
	ok = CRYPTO_memcmp(check, s->secret.stored_key, AUTH_SCRAM_KEY_LEN) == 0;
	if (!ok) {
		*wrong_password = true;
		auth_scram_set_err(err, err_wrong_password);
		goto fail;
	}

	auth_b64_encode(server_sig, sizeof(server_sig), sig_b64);
	if (!(reply = malloc(2 + strlen(sig_b64) + 1))) {
		auth_scram_set_err(err, auth_scram_err_oom);
		goto fail;
	}
	memcpy(reply, "v=", 2);
	memcpy(reply + 2, sig_b64, strlen(sig_b64) + 1);
	memcpy(s->client_key, client_key, sizeof(client_key));
	s->have_client_key = true;
	s->state = AUTH_SCRAM_SERVER_DONE;

fail:
	if (!reply)
		s->state = AUTH_SCRAM_SERVER_FAILED;
	free(auth_message);
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(check, sizeof(check));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	return reply;
}

const uint8_t *auth_scram_server_client_key(const struct auth_scram_server *s)
{
	return s->have_client_key ? s->client_key : NULL;
}

void auth_scram_server_free(struct auth_scram_server *s)
{
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_SERVER_FAILED;
}

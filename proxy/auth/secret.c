/*
 * secret.c - the secrets of an auth_file: which kind a string is, SCRAM
 * secrets parsed from and formatted to PostgreSQL's text form, derived from
 * a password, or mocked for a user that does not exist.
 */
#include "proxy/auth/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proxy/auth/scram_msg.h"

#define SCRAM_SECRET_PREFIX "SCRAM-SHA-256$"

bool auth_scram_parse_secret(const char *secret, struct auth_scram_secret *out)
{
	struct auth_scram_secret tmp;
	const char *iter, *salt, *stored, *server, *colon1, *dollar, *colon2;
	size_t n;
	bool ok = false;

	if (strncmp(secret, SCRAM_SECRET_PREFIX, strlen(SCRAM_SECRET_PREFIX)) != 0)
		return false;
	iter = secret + strlen(SCRAM_SECRET_PREFIX);
	if (!(colon1 = strchr(iter, ':')))
		return false;
	salt = colon1 + 1;
	if (!(dollar = strchr(salt, '$')))
		return false;
	stored = dollar + 1;
	if (!(colon2 = strchr(stored, ':')))
		return false;
	server = colon2 + 1;

	memset(&tmp, 0, sizeof(tmp));
	if (!auth_scram_parse_count(iter, (size_t)(colon1 - iter), &tmp.iterations))
		goto out;
	if (!auth_b64_decode(salt, (size_t)(dollar - salt), tmp.salt, sizeof(tmp.salt),
			     &tmp.salt_len) ||
	    tmp.salt_len == 0)
		goto out;
	if (!auth_b64_decode(stored, (size_t)(colon2 - stored), tmp.stored_key,
			     sizeof(tmp.stored_key), &n) ||
	    n != AUTH_SCRAM_KEY_LEN)
		goto out;
	/* The ServerKey runs to the end: a stray ':' or '$' fails the decode. */
	if (!auth_b64_decode(server, strlen(server), tmp.server_key, sizeof(tmp.server_key), &n) ||
	    n != AUTH_SCRAM_KEY_LEN)
		goto out;
	*out = tmp;
	ok = true;
out:
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

char *auth_scram_secret_to_string(const struct auth_scram_secret *secret)
{
	char salt[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_MAX_SALT_LEN) + 1];
	char stored[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	char server[AUTH_B64_ENCODED_LEN(AUTH_SCRAM_KEY_LEN) + 1];
	size_t cap;
	char *out;

	if (secret->salt_len == 0 || secret->salt_len > AUTH_SCRAM_MAX_SALT_LEN ||
	    secret->iterations <= 0)
		return NULL;
	auth_b64_encode(secret->salt, secret->salt_len, salt);
	auth_b64_encode(secret->stored_key, AUTH_SCRAM_KEY_LEN, stored);
	auth_b64_encode(secret->server_key, AUTH_SCRAM_KEY_LEN, server);
	cap = strlen(SCRAM_SECRET_PREFIX) + 11 + 1 + strlen(salt) + 1 + strlen(stored) + 1 +
	      strlen(server) + 1;
	if (!(out = malloc(cap)))
		return NULL;
	snprintf(out, cap, SCRAM_SECRET_PREFIX "%d:%s$%s:%s", secret->iterations, salt, stored,
		 server);
	return out;
}

bool auth_scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
				     int iterations, struct auth_scram_secret *out)
{
	struct auth_scram_secret tmp;
	bool ok;

	memset(&tmp, 0, sizeof(tmp));
	ok = auth_scram_derive_keys(password, salt, salt_len, iterations, NULL, tmp.stored_key,
				    tmp.server_key);
	if (ok) {
		tmp.iterations = iterations;
		memcpy(tmp.salt, salt, salt_len);
		tmp.salt_len = salt_len;
		*out = tmp;
	}
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

/* Per-process key behind the mock salts; created on first use. */
static uint8_t mock_key[AUTH_SCRAM_KEY_LEN];
static bool mock_key_ready;

bool auth_scram_mock_secret(const char *user, struct auth_scram_secret *out)
{
	uint8_t mac[AUTH_SCRAM_KEY_LEN];
	struct auth_scram_secret tmp;
	bool ok;

	if (!mock_key_ready) {
		if (!auth_random_bytes(mock_key, sizeof(mock_key)))
			return false;
		mock_key_ready = true;
	}
	memset(&tmp, 0, sizeof(tmp));
	/* Same salt length and iterations as PostgreSQL's own secrets. */
	ok = auth_hmac_sha256(mock_key, sizeof(mock_key), user, strlen(user), mac) &&
	     auth_random_bytes(tmp.stored_key, sizeof(tmp.stored_key)) &&
	     auth_random_bytes(tmp.server_key, sizeof(tmp.server_key));
	if (ok) {
		tmp.iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
		tmp.salt_len = 16;
		memcpy(tmp.salt, mac, tmp.salt_len);
		*out = tmp;
	}
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ok;
}

enum auth_secret_kind auth_secret_kind(const char *secret)
{
	struct auth_scram_secret parsed;

	if (strncmp(secret, "md5", 3) == 0 && strlen(secret) == AUTH_MD5_PASSWD_LEN &&
	    strspn(secret + 3, "0123456789abcdef") == AUTH_MD5_HEX_LEN)
		return AUTH_SECRET_MD5;
	if (auth_scram_parse_secret(secret, &parsed)) {
		OPENSSL_cleanse(&parsed, sizeof(parsed));
		return AUTH_SECRET_SCRAM;
	}
	return AUTH_SECRET_PLAIN;
}

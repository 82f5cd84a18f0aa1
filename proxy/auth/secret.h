/*
 * secret.h - the secrets an auth_file holds (plaintext, MD5, SCRAM-SHA-256):
 * telling them apart, parsing and formatting SCRAM secrets, deriving one
 * from a password, and the mock secret that stands in for an unknown user.
 *
 * Secrets are compared with CRYPTO_memcmp and wiped with OPENSSL_cleanse once
 * a copy is no longer needed.
 */
#ifndef PGCUTOVER_AUTH_SECRET_H
#define PGCUTOVER_AUTH_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/crypto.h"

/* Iteration count used when pgcutover makes a secret (PostgreSQL's default). */
#define AUTH_SCRAM_DEFAULT_ITERATIONS 4096

/* MD5 secrets and responses: "md5" + 32 lowercase hex digits. */
#define AUTH_MD5_HEX_LEN    32
#define AUTH_MD5_PASSWD_LEN (3 + AUTH_MD5_HEX_LEN)

/*
 * What a userlist secret is.  The rules are PostgreSQL's
 * (get_password_type): "md5" followed by exactly 32 lowercase hex digits is
 * an MD5 hash, a string auth_scram_parse_secret() accepts is a SCRAM secret,
 * and anything else is a plaintext password.
 */
enum auth_secret_kind {
	AUTH_SECRET_PLAIN,
	AUTH_SECRET_MD5,
	AUTH_SECRET_SCRAM,
};

enum auth_secret_kind auth_secret_kind(const char *secret);

/*
 * A SCRAM-SHA-256 secret as PostgreSQL stores it in pg_authid.rolpassword:
 * "SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>".
 * StoredKey verifies a client's proof; ServerKey signs the server's reply.
 */
struct auth_scram_secret {
	int iterations;                         /* PBKDF2 rounds, > 0 */
	uint8_t salt[AUTH_SCRAM_MAX_SALT_LEN];  /* PBKDF2 salt, salt_len bytes used */
	size_t salt_len;                        /* 1 .. AUTH_SCRAM_MAX_SALT_LEN */
	uint8_t stored_key[AUTH_SCRAM_KEY_LEN]; /* SHA256(ClientKey) */
	uint8_t server_key[AUTH_SCRAM_KEY_LEN]; /* HMAC(SaltedPassword, "Server Key") */
};

/* Parses a secret string (strictly: canonical base64, key sizes exact). */
AUTH_MUST_CHECK bool auth_scram_parse_secret(const char *secret, struct auth_scram_secret *out);

/*
 * Formats a secret the way PostgreSQL stores it; malloc'd, NULL on
 * allocation failure.  For writing auth_file entries.
 */
AUTH_MUST_CHECK char *auth_scram_secret_to_string(const struct auth_scram_secret *secret);

/*
 * Derives the secret for a plaintext password with auth_scram_derive_keys()
 * (crypto.h: the key schedule, and the SASLprep note).  False when salt_len
 * is 0 or above AUTH_SCRAM_MAX_SALT_LEN, iterations is out of
 * 1..AUTH_SCRAM_MAX_ITERATIONS, or OpenSSL fails.
 */
AUTH_MUST_CHECK bool auth_scram_secret_from_password(const char *password, const uint8_t *salt,
						     size_t salt_len, int iterations,
						     struct auth_scram_secret *out);

/*
 * A secret for a user that does not exist, so that the exchange looks the
 * same as for a real one (PostgreSQL's scram_mock_salt idea): the salt is
 * derived from the user name and a per-process random key, so it is stable
 * across attempts, and the keys are random, so no proof ever matches.
 * Not thread-safe on its first call (it creates the process key).
 */
AUTH_MUST_CHECK bool auth_scram_mock_secret(const char *user, struct auth_scram_secret *out);

#endif /* PGCUTOVER_AUTH_SECRET_H */

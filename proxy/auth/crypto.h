/*
 * crypto.h - the primitives under PostgreSQL authentication: random bytes,
 * strict base64, SHA-256, HMAC-SHA-256 and the SCRAM-SHA-256 key schedule,
 * on OpenSSL 3.  The files that build on them: secret.h (userlist secrets),
 * md5.h (MD5 challenge/response), scram_server.h and scram_client.h (both
 * ends of SCRAM).
 *
 * Nothing in proxy/auth/ does I/O or keeps per-connection global state: the
 * callers move the message bodies; these functions check and produce them.
 * Every parser takes an explicit length, because SASL data arrives from
 * untrusted peers without a terminator, and never reads outside it.
 *
 * Passwords: PostgreSQL runs a password through SASLprep before SCRAM.  For
 * ASCII input SASLprep is the identity (and libpq falls back to the raw bytes
 * when SASLprep rejects, e.g. on control characters), so proxy/auth/ uses the
 * raw bytes for every password.  A non-ASCII password that SASLprep would
 * change (say one with a non-ASCII space or a decomposable character) is not
 * supported: the keys derived here would differ from PostgreSQL's.
 */
#ifndef PGCUTOVER_AUTH_CRYPTO_H
#define PGCUTOVER_AUTH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ignoring these results would let an unauthenticated peer in, or leak. */
#define AUTH_MUST_CHECK __attribute__((warn_unused_result))

/* SHA-256 output, and so the size of every SCRAM-SHA-256 key and signature. */
#define AUTH_SCRAM_KEY_LEN 32

/* Longest salt kept in a struct auth_scram_secret (PostgreSQL uses 16). */
#define AUTH_SCRAM_MAX_SALT_LEN 64

/*
 * Highest iteration count pgcutover will run PBKDF2 for: the derivation
 * blocks the calling thread (a million rounds is about half a second), so a
 * hostile or misconfigured server cannot make it spin for minutes.
 */
#define AUTH_SCRAM_MAX_ITERATIONS 1000000

/* Length of a base64 encoding of n bytes, without the terminating NUL. */
#define AUTH_B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Random bytes from OpenSSL's CSPRNG; false when it could not provide them. */
AUTH_MUST_CHECK bool auth_random_bytes(void *buf, size_t len);

/*
 * Strict base64 (RFC 4648, standard alphabet, '=' padding required, no
 * whitespace, unused bits zero).  Decodes src[0..len) into at most dst_cap
 * bytes and sets *out_len; false on any invalid input or when the result
 * would not fit (dst is then left in an unspecified state, never overrun).
 */
AUTH_MUST_CHECK bool auth_b64_decode(const char *src, size_t len, uint8_t *dst, size_t dst_cap,
				     size_t *out_len);

/*
 * Encodes src[0..len) into dst, which must hold AUTH_B64_ENCODED_LEN(len) + 1
 * bytes; NUL-terminates and returns the encoded length.
 */
size_t auth_b64_encode(const uint8_t *src, size_t len, char *dst);

/* out = SHA-256(data); false when OpenSSL fails. */
AUTH_MUST_CHECK bool auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SCRAM_KEY_LEN]);

/* out = HMAC-SHA-256(key, data); false when OpenSSL fails or key_len exceeds INT_MAX. */
AUTH_MUST_CHECK bool auth_hmac_sha256(const uint8_t *key, size_t key_len, const void *data,
				      size_t len, uint8_t out[AUTH_SCRAM_KEY_LEN]);

/*
 * The SCRAM key schedule from a password:
 * SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = SHA256(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key").  Any of the outputs may be
 * NULL when not wanted.  The password is used as raw bytes (see the SASLprep
 * note at the top).  False when salt_len is 0 or above
 * AUTH_SCRAM_MAX_SALT_LEN, iterations is out of 1..AUTH_SCRAM_MAX_ITERATIONS,
 * or OpenSSL fails; the intermediate keys are wiped either way.
 */
AUTH_MUST_CHECK bool auth_scram_derive_keys(const char *password, const uint8_t *salt,
					    size_t salt_len, int iterations,
					    uint8_t client_key[AUTH_SCRAM_KEY_LEN],
					    uint8_t stored_key[AUTH_SCRAM_KEY_LEN],
					    uint8_t server_key[AUTH_SCRAM_KEY_LEN]);

#endif /* PGCUTOVER_AUTH_CRYPTO_H */

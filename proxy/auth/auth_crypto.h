/*
 * auth_crypto.h - the cryptography of PostgreSQL authentication: userlist
 * secrets, MD5 challenge/response, and both ends of SCRAM-SHA-256.
 *
 * pgcutover sits between clients and backends, so it plays SCRAM twice:
 * as the server when a client logs in (auth_scram_server_*), and as the
 * client when it logs in to a backend (auth_scram_client_*).  When the
 * userlist holds only a SCRAM secret, the ClientKey recovered from the
 * client's own proof lets the proxy log in to a backend that stores the same
 * secret, without ever knowing the password (what PgBouncer does too).
 *
 * Nothing here does I/O or keeps per-connection global state: the callers
 * move the message bodies; these functions check and produce them.  Every
 * parser takes an explicit length, because SASL data arrives from untrusted
 * peers without a terminator, and never reads outside it.
 *
 * Error strings handed back through `const char **err` are static, lower
 * case, and fit to be sent to the peer in an ErrorResponse.
 *
 * Passwords: PostgreSQL runs a password through SASLprep before SCRAM.  For
 * ASCII input SASLprep is the identity (and libpq falls back to the raw bytes
 * when SASLprep rejects, e.g. on control characters), so this module uses the
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

/* Iteration count used when pgcutover makes a secret (PostgreSQL's default). */
#define AUTH_SCRAM_DEFAULT_ITERATIONS 4096

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
 * MD5 (PostgreSQL): stored = "md5" + hex(md5(password || user)).
 * out receives 35 characters and a NUL.  If MD5 is unavailable (an OpenSSL
 * in FIPS mode) out is set to "", which matches no response.
 */
void auth_md5_stored(const char *user, const char *password, char out[36]);

/*
 * The response to an AuthenticationMD5Password challenge:
 * "md5" + hex(md5(hex part of the stored hash || salt[4])), computed from a
 * plaintext or MD5 secret.  False for a SCRAM secret (which cannot answer an
 * MD5 challenge) or when MD5 is unavailable.
 */
AUTH_MUST_CHECK bool auth_md5_response(const char *user, const char *secret, const uint8_t salt[4],
				       char out[36]);

/*
 * Checks a client's PasswordMessage for an MD5 challenge against a plaintext
 * or MD5 secret, in constant time.  False for a SCRAM secret.
 */
AUTH_MUST_CHECK bool auth_md5_verify(const char *user, const char *secret, const uint8_t salt[4],
				     const char *response);

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
 * Derives the secret for a plaintext password:
 * SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = SHA256(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key").  The password is used as
 * raw bytes (see the SASLprep note at the top).  False when salt_len is 0 or
 * above AUTH_SCRAM_MAX_SALT_LEN, iterations is out of 1..AUTH_SCRAM_MAX_ITERATIONS,
 * or OpenSSL fails.
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

/* Random bytes in a nonce, either side; base64 makes 24 characters of them. */
#define AUTH_SCRAM_NONCE_RAW_LEN 18
#define AUTH_SCRAM_NONCE_LEN     AUTH_B64_ENCODED_LEN(AUTH_SCRAM_NONCE_RAW_LEN)

/* Where a server-side exchange is; each step is legal only from the one before. */
enum auth_scram_server_state {
	AUTH_SCRAM_SERVER_INIT,       /* waiting for client-first-message */
	AUTH_SCRAM_SERVER_FIRST_SENT, /* server-first produced, waiting for client-final */
	AUTH_SCRAM_SERVER_DONE,       /* proof verified, server-final produced */
	AUTH_SCRAM_SERVER_FAILED,     /* any error: the exchange cannot continue */
};

/* Longest channel binding data (a tls-server-end-point hash: SHA-512). */
#define AUTH_SCRAM_CBIND_MAX 64

/*
 * Server side: pgcutover authenticating a client (RFC 5802 / RFC 7677,
 * SCRAM-SHA-256, and SCRAM-SHA-256-PLUS with tls-server-end-point channel
 * binding on TLS connections, see auth_scram_server_set_channel_binding()).
 * Embed it in the client connection; init, then server_first, server_final,
 * and always free.
 */
struct auth_scram_server {
	enum auth_scram_server_state state; /* which message is legal next */
	struct auth_scram_secret secret;    /* a copy: the userlist may be reloaded meanwhile */
	char gs2_header[32]; /* "n,,", "y,," or "p=tls-server-end-point,,": c= repeats it */
	bool cbind_offered;  /* TLS: PLUS was offered, so a "y" flag is a downgrade */
	bool cbind_selected; /* the client chose SCRAM-SHA-256-PLUS: "p=" required */
	uint8_t cbind_data[AUTH_SCRAM_CBIND_MAX]; /* what c= must carry after the gs2 header */
	size_t cbind_len;
	char *client_first_bare; /* malloc'd; first part of the AuthMessage */
	size_t client_first_bare_len;
	char *server_first; /* malloc'd; middle part of the AuthMessage */
	size_t server_first_len;
	char *nonce; /* malloc'd client nonce + server nonce; the final must echo it */
	size_t nonce_len;
	char server_nonce[64]; /* our half of the nonce; set early only by the test hook */
	/* Recovered from a valid proof, so the proxy can log in to a backend as this client. */
	uint8_t client_key[AUTH_SCRAM_KEY_LEN];
	bool have_client_key; /* client_key is valid (only after a verified proof) */
};

/* Starts an exchange against 'secret' (copied).  Cannot fail. */
void auth_scram_server_init(struct auth_scram_server *s, const struct auth_scram_secret *secret);

/*
 * On a TLS connection, where SCRAM-SHA-256-PLUS was offered: 'data' is the
 * tls-server-end-point hash of our certificate, and 'selected' says whether
 * the client chose SCRAM-SHA-256-PLUS.  Call after init, before
 * server_first.  Selected, the client-first must carry
 * "p=tls-server-end-point" and the final's c= that header plus 'data'; not
 * selected, a "y" flag (the client thinks we cannot bind) is refused as a
 * downgrade, as PostgreSQL does.  False when len is 0 or too long.
 */
AUTH_MUST_CHECK bool auth_scram_server_set_channel_binding(struct auth_scram_server *s,
							   const uint8_t *data, size_t len,
							   bool selected);

/*
 * Processes the client-first-message (the data of SASLInitialResponse,
 * msg[0..len), not NUL-terminated).  Accepts the gs2 header "n,," or "y,,"
 * ("y" only when no channel binding was offered), "p=tls-server-end-point,,"
 * only when SCRAM-SHA-256-PLUS was selected, refuses an authzid, ignores the n= user name (as
 * PostgreSQL does: the startup packet's user counts), requires r=, refuses a
 * mandatory extension m= and ignores optional trailing extensions.
 * Returns the malloc'd server-first-message "r=<nonce>,s=<salt>,i=<iter>",
 * or NULL with *err set.
 */
AUTH_MUST_CHECK char *auth_scram_server_first(struct auth_scram_server *s, const char *msg,
					      size_t len, const char **err);

/*
 * Processes the client-final-message "c=<b64 gs2 header>,r=<nonce>[,ext...],p=<b64 proof>"
 * (the data of SASLResponse).  Checks the channel-binding data, the nonce and,
 * in constant time, the proof.  On success returns the malloc'd
 * server-final-message "v=<b64 ServerSignature>" and fills s->client_key.
 * On failure returns NULL with *err set, and *wrong_password true only when
 * the message was well formed but the proof did not match (the caller then
 * reports PostgreSQL's 'password authentication failed for user "..."').
 */
AUTH_MUST_CHECK char *auth_scram_server_final(struct auth_scram_server *s, const char *msg,
					      size_t len, bool *wrong_password, const char **err);

/* The ClientKey recovered by a successful exchange, or NULL. */
const uint8_t *auth_scram_server_client_key(const struct auth_scram_server *s);

/* Frees what the exchange allocated and wipes the keys; safe after init in any state. */
void auth_scram_server_free(struct auth_scram_server *s);

/* Where a client-side exchange is. */
enum auth_scram_client_state {
	AUTH_SCRAM_CLIENT_INIT,       /* ready to produce client-first */
	AUTH_SCRAM_CLIENT_FIRST_SENT, /* waiting for server-first */
	AUTH_SCRAM_CLIENT_FINAL_SENT, /* waiting for server-final */
	AUTH_SCRAM_CLIENT_DONE,       /* server signature verified */
	AUTH_SCRAM_CLIENT_FAILED,     /* any error: the exchange cannot continue */
};

/*
 * Client side: pgcutover authenticating to a PostgreSQL backend.  Init with
 * a password or with recovered keys, then client_first, client_final,
 * client_verify, and always free.
 */
struct auth_scram_client {
	enum auth_scram_client_state state; /* which message is legal next */
	/* Password mode: malloc'd copy; keys are derived once the server sends salt and iterations. */
	char *password;
	/* Keys mode: the userlist secret; the server's salt and iterations must equal its own. */
	bool have_secret;                       /* keys mode (else password mode) */
	struct auth_scram_secret secret;        /* keys mode only */
	uint8_t client_key[AUTH_SCRAM_KEY_LEN]; /* given (keys mode) or derived (password mode) */
	uint8_t server_key[AUTH_SCRAM_KEY_LEN]; /* checks the server's signature */
	char nonce[64];                         /* our nonce, NUL-terminated */
	char user[16];                          /* n= value; always "" except for the test hook */
	char *client_first_bare;                /* malloc'd; first part of the AuthMessage */
	size_t client_first_bare_len;
	uint8_t server_signature[AUTH_SCRAM_KEY_LEN]; /* what server-final must carry */
};

/*
 * Prepares an exchange with a plaintext password (copied).  False on
 * allocation or RNG failure; free is safe either way.
 */
AUTH_MUST_CHECK bool auth_scram_client_init_password(struct auth_scram_client *c,
						     const char *password);

/*
 * Prepares an exchange with a ClientKey recovered from the client's own SCRAM
 * login and the userlist secret it was checked against: the secret's
 * ServerKey verifies the backend, and its salt and iterations must equal
 * what the backend sends.  False when SHA256(client_key) is not the secret's
 * StoredKey, or on RNG failure; free is safe either way.
 */
AUTH_MUST_CHECK bool auth_scram_client_init_keys(struct auth_scram_client *c,
						 const uint8_t client_key[AUTH_SCRAM_KEY_LEN],
						 const struct auth_scram_secret *secret);

/* The malloc'd client-first-message "n,,n=,r=<nonce>"; NULL on allocation failure or misuse. */
AUTH_MUST_CHECK char *auth_scram_client_first(struct auth_scram_client *c);

/*
 * Checks the server-first-message (data of AuthenticationSASLContinue,
 * server_first[0..len)): the nonce must extend ours, the salt be valid
 * base64, the iterations in 1..AUTH_SCRAM_MAX_ITERATIONS.  Returns the
 * malloc'd client-final-message "c=biws,r=<nonce>,p=<b64 proof>", or NULL
 * with *err set.
 */
AUTH_MUST_CHECK char *auth_scram_client_final(struct auth_scram_client *c, const char *server_first,
					      size_t len, const char **err);

/*
 * Checks the server-final-message (data of AuthenticationSASLFinal):
 * "v=<b64 ServerSignature>" must carry the signature we expect (constant-time
 * compare); "e=<error>" fails with *err naming the server's error.
 */
AUTH_MUST_CHECK bool auth_scram_client_verify(struct auth_scram_client *c, const char *server_final,
					      size_t len, const char **err);

/* Frees what the exchange allocated and wipes the password and keys. */
void auth_scram_client_free(struct auth_scram_client *c);

/*
 * TEST HOOKS ONLY: replace the random nonce so a known vector (RFC 7677) can
 * be replayed.  Never call these outside tests/unit/: a fixed nonce makes
 * the exchange replayable.  The server hook must be called after init and
 * before server_first; the client hook after init and before client_first,
 * and it also sets the n= user name the client sends (PostgreSQL's clients
 * send an empty one).  False when a value is too long or the order is wrong.
 */
AUTH_MUST_CHECK bool auth_scram_server_set_nonce_for_tests(struct auth_scram_server *s,
							   const char *server_nonce);
AUTH_MUST_CHECK bool auth_scram_client_set_nonce_for_tests(struct auth_scram_client *c,
							   const char *nonce, const char *user);

#endif /* PGCUTOVER_AUTH_CRYPTO_H */

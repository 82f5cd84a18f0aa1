/*
 * scram_client.h - the client side of SCRAM-SHA-256: pgcutover logging in to
 * a PostgreSQL backend (RFC 5802 / RFC 7677), either with a plaintext
 * password from the auth_file or with the ClientKey that scram_server.h
 * recovered from the client's own login.
 *
 * Nothing here does I/O: the caller moves the message bodies; these
 * functions check and produce them.  Every message from the server is taken
 * with an explicit length and never read outside it.  Error strings handed
 * back through `const char **err` are static and lower case.
 */
#ifndef PGCUTOVER_AUTH_SCRAM_CLIENT_H
#define PGCUTOVER_AUTH_SCRAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/crypto.h"
#include "proxy/auth/secret.h"

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
	size_t client_first_bare_len;           /* its length, without the NUL */
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

/*
 * Prepares an exchange that only asks: a login with a SCRAM secret and no
 * ClientKey (no client has logged in with SCRAM yet) cannot send a proof,
 * but the server's salt and iteration count tell whether its verifier is
 * the secret's (CHECK's login check).  client_first, then
 * auth_scram_client_server_salt.  False on RNG failure.
 */
AUTH_MUST_CHECK bool auth_scram_client_init_probe(struct auth_scram_client *c);

/*
 * Checks the server-first-message of a probe exchange: *same tells whether
 * its salt and iteration count are those of 'secret'.  False with *err set
 * when the message is malformed.  The exchange cannot go on after it.
 */
AUTH_MUST_CHECK bool auth_scram_client_server_salt(struct auth_scram_client *c,
						   const char *server_first, size_t len,
						   const struct auth_scram_secret *secret,
						   bool *same, const char **err);

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
 * TEST HOOK ONLY: replace the random nonce so a known vector (RFC 7677) can
 * be replayed, and set the n= user name the client sends (PostgreSQL's
 * clients send an empty one).  Never call this outside tests/: a fixed nonce
 * makes the exchange replayable.  Call after init and before client_first.
 * False when a value is too long or invalid, or the order is wrong.
 */
AUTH_MUST_CHECK bool auth_scram_client_set_nonce_for_tests(struct auth_scram_client *c,
							   const char *nonce, const char *user);

#endif /* PGCUTOVER_AUTH_SCRAM_CLIENT_H */

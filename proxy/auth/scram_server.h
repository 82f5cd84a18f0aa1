/*
 * scram_server.h - the server side of SCRAM-SHA-256: pgcutover checking a
 * client's password (RFC 5802 / RFC 7677).
 *
 * pgcutover sits between clients and backends, so it plays SCRAM twice: as
 * the server when a client logs in (this file), and as the client when it
 * logs in to a backend (scram_client.h).  When the userlist holds only a
 * SCRAM secret, the ClientKey recovered from the client's own proof lets the
 * proxy log in to a backend that stores the same secret, without ever
 * knowing the password (what PgBouncer does too).
 *
 * Nothing here does I/O: the caller moves the message bodies; these
 * functions check and produce them.  Every message is taken with an explicit
 * length and never read outside it.  Error strings handed back through
 * `const char **err` are static, lower case, and fit to be sent to the peer
 * in an ErrorResponse.
 */
#ifndef PGCUTOVER_AUTH_SCRAM_SERVER_H
#define PGCUTOVER_AUTH_SCRAM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/crypto.h"
#include "proxy/auth/secret.h"

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
	size_t cbind_len;                         /* bytes of cbind_data in use */
	char *client_first_bare;                  /* malloc'd; first part of the AuthMessage */
	size_t client_first_bare_len;             /* its length, without the NUL */
	char *server_first;                       /* malloc'd; middle part of the AuthMessage */
	size_t server_first_len;                  /* its length, without the NUL */
	char *nonce;           /* malloc'd client nonce + server nonce; the final must echo it */
	size_t nonce_len;      /* its length, without the NUL */
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

/*
 * TEST HOOK ONLY: replace the random server nonce so a known vector
 * (RFC 7677) can be replayed.  Never call this outside tests/: a fixed nonce
 * makes the exchange replayable.  Call after init and before server_first.
 * False when the nonce is too long or not a valid nonce, or the order is
 * wrong.
 */
AUTH_MUST_CHECK bool auth_scram_server_set_nonce_for_tests(struct auth_scram_server *s,
							   const char *server_nonce);

#endif /* PGCUTOVER_AUTH_SCRAM_SERVER_H */

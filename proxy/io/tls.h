/*
 * tls.h - the OpenSSL contexts pgcutover's TLS connections are made from.
 *
 * One struct tls_contexts holds the two SSL_CTXs built from one config: the
 * one facing clients (pgcutover is the TLS server; client_tls_*) and the one
 * facing servers (pgcutover is the TLS client; server_tls_*).  They are built
 * when a config is loaded (start-up, --check, RELOAD), so that certificates
 * and keys are re-read on every reload and a bad one rejects the reload like
 * any bad setting, keeping the contexts in force.  A connection holds a
 * reference to the context it was made from (SSL_new), so replacing the
 * contexts never disturbs a connection in progress.
 *
 * The I/O itself is proxy/io/sock.c's; this module also answers the two
 * questions the login asks of a TLS connection: the client certificate's
 * common name (client_tls_sslmode = verify-full) and the tls-server-end-point
 * channel binding data (SCRAM-SHA-256-PLUS).
 */
#ifndef PGCUTOVER_TLS_H
#define PGCUTOVER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ssl_st;
struct ssl_ctx_st;
struct tls_contexts;

/* Longest tls-server-end-point hash (SHA-512). */
#define TLS_END_POINT_MAX 64

/*
 * TLS modes, PgBouncer's and libpq's names.  Facing clients: disable answers
 * SSLRequest 'N'; allow and prefer accept TLS when the client asks; require
 * refuses plaintext TCP clients; verify-ca also requires a client
 * certificate signed by client_tls_ca_file; verify-full also requires its CN
 * to be the user name.  Facing servers: disable never asks; allow and prefer
 * ask and fall back to plaintext on 'N'; require insists on TLS; verify-ca
 * checks the chain against server_tls_ca_file; verify-full also the host name.
 * The order matters: every mode from REQUIRE on refuses plaintext.
 */
enum tls_sslmode {
	SSLMODE_DISABLE = 0,
	SSLMODE_ALLOW = 1,
	SSLMODE_PREFER = 2,
	SSLMODE_REQUIRE = 3,
	SSLMODE_VERIFY_CA = 4,
	SSLMODE_VERIFY_FULL = 5,
};

/* Bits of a TLS protocol set (*_tls_protocols settings). */
#define TLS_PROTO_V1_0 1u
#define TLS_PROTO_V1_1 2u
#define TLS_PROTO_V1_2 4u
#define TLS_PROTO_V1_3 8u

/* The name of a mode ("verify-full"). */
const char *tls_sslmode_name(enum tls_sslmode m);
/*
 * Parse a TLS protocol list: "secure" (= "default" = tlsv1.2,tlsv1.3), "all"
 * (= "legacy" = tlsv1.0 to tlsv1.3), or a comma list of tlsv1.0 (tlsv1),
 * tlsv1.1, tlsv1.2, tlsv1.3; case-insensitive.  Sets *mask to TLS_PROTO_*
 * bits; false when a word is unknown or the list is empty.
 */
bool tls_parse_protocols(const char *s, unsigned *mask);
/* Parse a libpq sslmode name (the conninfo's); false when unknown. */
bool tls_parse_sslmode(const char *s, enum tls_sslmode *out);

/*
 * What one context is built from: the *_tls_* settings of one side (the
 * configuration fills it in; this module does not know the configuration).
 * Empty strings mean "not set".
 */
struct tls_settings {
	enum tls_sslmode sslmode;
	const char *cert_file;
	const char *key_file;
	const char *ca_file;
	const char *protocols; /* a list tls_parse_protocols() accepts */
	const char *ciphers;
};

/*
 * Build both contexts: facing clients (NULL context when its sslmode is
 * disable) and facing servers.  Loads certificates, keys and CA files, sets
 * protocols, ciphers and verification.  NULL with a message naming the
 * setting and the file ("could not load client_tls_cert_file \"...\": ...")
 * when anything fails.  Never prompts for a key passphrase (a key that has
 * one fails to load).
 */
struct tls_contexts *tls_contexts_build(const struct tls_settings *client,
					const struct tls_settings *server, char *errbuf,
					size_t errlen) __attribute__((warn_unused_result));
void tls_contexts_free(struct tls_contexts *t);

/* The context for accepting client TLS; NULL when client_tls_sslmode is disable. */
struct ssl_ctx_st *tls_client_ctx(const struct tls_contexts *t);
/* The context for connecting to servers with TLS (always built: a database may ask). */
struct ssl_ctx_st *tls_server_ctx(const struct tls_contexts *t);

/*
 * The common name of the verified client certificate of this connection into
 * buf (NUL-terminated).  False when there is no certificate, no CN, it has an
 * embedded NUL, or it does not fit.
 */
bool tls_peer_common_name(struct ssl_st *ssl, char *buf, size_t len)
	__attribute__((warn_unused_result));

/*
 * RFC 5929 tls-server-end-point: the hash of our own certificate on this
 * connection, with the certificate's signature hash (SHA-256 when that is MD5
 * or SHA-1).  False when the signature algorithm has no such hash (Ed25519)
 * or out of memory.
 */
bool tls_server_end_point(struct ssl_st *ssl, uint8_t out[TLS_END_POINT_MAX], size_t *len)
	__attribute__((warn_unused_result));

#endif /* PGCUTOVER_TLS_H */

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

struct config;
struct ssl_st;
struct ssl_ctx_st;
struct tls_contexts;

/* Longest tls-server-end-point hash (SHA-512). */
#define TLS_END_POINT_MAX 64

/*
 * Build both contexts for cfg: load certificates, keys and CA files, set
 * protocols, ciphers and verification.  NULL with a message naming the
 * setting and the file ("could not load client_tls_cert_file \"...\": ...")
 * when anything fails.  Never prompts for a key passphrase (a key that has
 * one fails to load).
 */
struct tls_contexts *tls_contexts_build(const struct config *cfg, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
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

/*
 * sock_tls.h - TLS on a sock (see sock.h for how a sock carries it): start
 * the server or client handshake on a connected sock, and what the session
 * says once it is up.  The sock's fields for TLS live in struct sock (sock.h),
 * since every read, write and update looks at them.
 */
#ifndef PGCUTOVER_SOCK_TLS_H
#define PGCUTOVER_SOCK_TLS_H

#include <stdbool.h>

#include "proxy/io/sock.h"

struct ssl_ctx_st; /* OpenSSL's SSL_CTX, kept out of this header */

/* What sock_start_tls_connect() checks of the server's certificate. */
enum sock_tls_verify {
	SOCK_TLS_VERIFY_NONE = 0, /* encryption only (sslmode prefer/require) */
	SOCK_TLS_VERIFY_CA,       /* the chain must lead to a trusted CA (verify-ca) */
	SOCK_TLS_VERIFY_FULL,     /* ... and name the host we connected to (verify-full) */
};

/*
 * Switch a connected sock to TLS as the server (the client sent SSLRequest
 * and we flushed 'S'), or as the client (the server answered 'S').  Both
 * input and output must be empty: plaintext already buffered must not be
 * taken for TLS data (CVE-2021-23214 / CVE-2021-23222), so the caller checks
 * and refuses first.  The outcome arrives as SOCK_TLS_READY or SOCK_ERROR,
 * from the sock's own event.  For a connect, 'host' is the name or address
 * connected to: sent as SNI when it is a name, and checked against the
 * certificate with SOCK_TLS_VERIFY_FULL.  False when SSL_new fails (out of
 * memory) or the buffers are not empty; nothing was started then.
 */
bool sock_start_tls_accept(struct sock *s, struct ssl_ctx_st *ctx)
	__attribute__((warn_unused_result));
bool sock_start_tls_connect(struct sock *s, struct ssl_ctx_st *ctx, const char *host,
			    enum sock_tls_verify verify) __attribute__((warn_unused_result));

/* Whether the sock speaks TLS (handshake done or running). */
static inline bool sock_is_tls(const struct sock *s)
{
	return s->tls != NULL;
}

/* The TLS handshake started and has not completed (nor failed). */
static inline bool sock_tls_handshaking(const struct sock *s)
{
	return (s->tls_wait & SOCK_TLS_HANDSHAKE) != 0;
}

/* "TLSv1.3" once TLS is up, else NULL (for SHOW CLIENTS / SERVERS). */
const char *sock_tls_version(const struct sock *s);
/* The cipher suite once TLS is up, else NULL (for logs). */
const char *sock_tls_cipher(const struct sock *s);
/* TLS is up and the peer presented a certificate that verified. */
bool sock_tls_peer_verified(const struct sock *s);

/*
 * Why the last TLS operation failed, readable ("certificate verify failed:
 * unable to get local issuer certificate"), or NULL when no TLS error was
 * recorded.  Valid until the next call.
 */
const char *sock_tls_error(const struct sock *s);

#endif /* PGCUTOVER_SOCK_TLS_H */

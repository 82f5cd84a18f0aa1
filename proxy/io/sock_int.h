/*
 * sock_int.h - internal to proxy/io/: what sock.c (plaintext sockets) and
 * sock_tls.c (TLS on them) call of each other.  Only those two files include
 * it; everyone else uses sock.h and sock_tls.h, whose contracts these
 * functions serve.
 */
#ifndef PGCUTOVER_SOCK_INT_H
#define PGCUTOVER_SOCK_INT_H

#include <stdbool.h>

#include "proxy/io/sock.h"

/* Bytes asked of recv() (or SSL_read) at once: most batches fit; a big transfer takes several. */
#define SOCK_READ_CHUNK 16384

/* -- sock.c ---------------------------------------------------------------- */

/*
 * Register the sock's event for what it needs now (plain I/O's wants, or
 * sock_tls_want()'s); nothing happens when that is unchanged.
 */
void sock_update(struct sock *s);
/* Make sure both buffers exist (sock_trim() may have given them back); false when out of memory. */
bool sock_buffers(struct sock *s) __attribute__((warn_unused_result));
/* The events plain I/O needs: read while wanted and there is room, write while blocked. */
short sock_io_want(struct sock *s);
/* Flush one sock and tell its owner (write_fn, or event_fn on an error); the owner may close it. */
void sock_flush(struct sock *s);

/* -- sock_tls.c ------------------------------------------------------------ */

/*
 * The events a TLS sock (s->tls_wait != 0) needs; *kick is set when SSL
 * holds decrypted input that no socket event will announce.
 */
short sock_tls_want(struct sock *s, bool *kick);
/* sock_write_out() of a TLS sock: false on an error (s->err, s->tls_err set). */
bool sock_write_out_tls(struct sock *s);
/* A TLS sock's event: a handshake step, or reads and writes crossed as SSL asked. */
void sock_tls_event(struct sock *s, short what);
/* Free s->tls (sock_free()), with a best-effort close_notify. */
void sock_tls_free(struct sock *s);

#endif /* PGCUTOVER_SOCK_INT_H */

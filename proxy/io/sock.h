/*
 * sock.h - one non-blocking socket with an input and an output buffer.
 *
 * This replaces libevent's bufferevent for client and server connections,
 * because the proxy's hot path cannot afford what a bufferevent does per
 * message: an ioctl(FIONREAD) before every read, and an epoll_ctl() to add
 * and another to remove the write event around every write.  A sock:
 *
 *   - keeps a single event registered for as long as what it waits for does
 *     not change (read interest while reading is wanted and the input has
 *     room; write interest only after a write came back short);
 *   - reads once per readiness into space reserved at the end of its input
 *     evbuffer (no copy, no ioctl);
 *   - writes its output once per loop iteration, right after the callbacks
 *     that queued it (sock_schedule_flush()), with one writev for the whole
 *     batch, so the bytes of many messages leave in one system call;
 *   - stops reading when its input holds 'in_limit' bytes and starts again
 *     on its own once they are consumed, so input is bounded;
 *   - reports EOF, errors and a completed connect through one callback, always
 *     from its own event, never from inside the caller of sock_connect_*().
 *
 * A sock may switch to TLS (sock_start_tls_accept(), sock_start_tls_connect())
 * once the plaintext preamble (SSLRequest and its one-byte answer) is done.
 * The handshake is non-blocking and driven by the sock's own event; its end
 * is reported as SOCK_TLS_READY or SOCK_ERROR (sock_tls_error() says why).
 * From then on the same buffers carry plaintext: reads go through SSL_read
 * into the reserved input space, writes through SSL_write of the queued
 * output, and an SSL call that needs the other direction (a read that must
 * write, a write that must read) becomes the event interest sock_update()
 * registers.  A plaintext sock pays one predictable branch per read, write
 * and update for this.  Those calls are declared in sock_tls.h and live in
 * sock_tls.c; the fields they use stay in struct sock, which every read and
 * write looks at.
 *
 * The struct is embedded in its owner (a client or a server) so that opening
 * a connection allocates nothing but its two evbuffers.
 */
#ifndef PGCUTOVER_SOCK_H
#define PGCUTOVER_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct evbuffer;
struct evbuffer_cb_entry;
struct ssl_st; /* OpenSSL's SSL, kept out of this header */
struct evdns_base;
struct sock;
struct sock_dns;

/* What the event callback reports. */
enum sock_what {
	SOCK_CONNECTED = 1, /* sock_connect*() completed */
	SOCK_EOF = 2,       /* the peer closed its side; what arrived before was delivered */
	SOCK_ERROR = 4, /* a socket, connect, DNS or TLS error: see sock_errno(), sock_dns_error(),
			     * sock_tls_error() */
	SOCK_TLS_READY = 8, /* the TLS handshake of sock_start_tls_*() completed */
};

/* Bits of sock.tls_wait: the TLS states that change what a sock waits for. */
enum {
	SOCK_TLS_HANDSHAKE = 1,  /* handshaking: tls_hs_want says which event */
	SOCK_TLS_READ_WRITE = 2, /* SSL_read wanted writability (WANT_WRITE) */
	SOCK_TLS_WRITE_READ = 4, /* SSL_write wanted readability (WANT_READ) */
	SOCK_TLS_ACTIVE = 8,     /* TLS is on: sock_update() asks SSL for buffered input */
};

typedef void (*sock_io_fn)(struct sock *s, void *arg);
typedef void (*sock_event_fn)(struct sock *s, int what, void *arg);

struct sock {
	evutil_socket_t fd;   /* -1 until connected (or connecting) */
	struct event ev;      /* the one event of this socket, flags as sock_update() says */
	short ev_flags;       /* what ev is registered for; 0 = not registered */
	bool ev_assigned;     /* ev has been event_assign()ed at least once */
	bool want_read;       /* the owner wants input (false: backpressure or closing) */
	bool connecting;      /* waiting for a non-blocking connect to complete */
	bool out_blocked;     /* the last write came back short: wait for writability */
	bool eof;             /* the peer closed: reading is over */
	bool closed;          /* sock_disable()d: no more I/O, no more callbacks */
	bool in_flush_list;   /* on the list of socks to flush at the end of this iteration */
	bool in_full_watch;   /* in_cb is armed: the input was full, reading stopped */
	bool trim_idle;       /* the owner is idle: give empty buffers back (sock_trim) */
	bool trim_soon;       /* ... right after the next flush (sock_trim_soon) */
	bool bulk;            /* the last read filled what it asked: a transfer is on */
	bool err_pending;     /* 'err' is still to be reported from our own event */
	int err;              /* errno of the last failure (0: a DNS failure, see dns_err) */
	int dns_err;          /* the resolver's error code, for SOCK_ERROR after a lookup */
	int port;             /* port to connect to once a host name is resolved */
	size_t in_limit;      /* stop reading when the input holds this much */
	size_t read_size;     /* bytes asked of recv() at once (sock_set_read_size()) */
	size_t out_low;       /* call write_fn when a flush leaves at most this much queued */
	struct evbuffer *in;  /* bytes received, not consumed yet */
	struct evbuffer *out; /* bytes to send */
	struct evbuffer_cb_entry *in_cb; /* armed only while the input is full (see in_full_watch) */
	struct sock *flush_next;         /* chain of socks with output to flush */
	struct sock_dns *dns;            /* host name lookup in progress, if any */
	struct ssl_st *tls;     /* the TLS session once sock_start_tls_*() ran; NULL: plaintext */
	unsigned char tls_wait; /* SOCK_TLS_* bits; 0 for every plaintext sock (the one branch) */
	short tls_hs_want;      /* during the handshake: EV_READ or EV_WRITE, as SSL asked */
	unsigned long tls_err;  /* OpenSSL error code of a TLS failure, 0 = none */
	long tls_verify;        /* the peer verification result at that failure (X509_V_OK...) */
	sock_io_fn read_fn;     /* new input arrived */
	sock_io_fn write_fn;    /* the output drained to out_low (backpressure release) */
	sock_event_fn event_fn; /* connected, EOF or error */
	void *arg;              /* the owner, passed to every callback */
};

/* Once per process, after the event base exists: the end-of-iteration flush. */
bool sock_module_init(struct event_base *base) __attribute__((warn_unused_result));
/* At exit. */
void sock_module_free(void);

/*
 * Set up a sock on a connected socket (fd, made non-blocking here) or, with
 * fd -1, one to be connected with sock_connect*().  'limit' bounds the input
 * and is the output size above which owners stop feeding it.  Reading starts
 * enabled.  False when out of memory (fd is then left open).
 */
bool sock_init(struct sock *s, evutil_socket_t fd, size_t limit, sock_io_fn read_fn,
	       sock_io_fn write_fn, sock_event_fn event_fn, void *arg)
	__attribute__((warn_unused_result));

/* Connect to an address (unix or numeric TCP); the outcome arrives as SOCK_CONNECTED or SOCK_ERROR. */
void sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t salen);
/* Resolve 'host' (never blocking: evdns) and connect to its first address. */
void sock_connect_hostname(struct sock *s, struct evdns_base *dns, const char *host, int port);

/* No more I/O or callbacks (the owner is closing); the fd stays open until sock_free(). */
void sock_disable(struct sock *s);
/* Release everything and close the fd (the reaper calls it, never a callback). */
void sock_free(struct sock *s);

/* Queue bytes for sending at the end of this iteration; false when out of memory. */
bool sock_write(struct sock *s, const void *data, size_t len) __attribute__((warn_unused_result));
/* The output was appended to directly (evbuffer_add_buffer...): send it at the end of this iteration. */
void sock_schedule_flush(struct sock *s);
/* Send what can be sent now, without callbacks (a last message before closing). */
void sock_flush_now(struct sock *s);

/* The owner wants input (true) or does not (false: backpressure, waiting). */
void sock_set_reading(struct sock *s, bool on);
/*
 * Bytes asked of recv() at once (0: the default, 16 kB).  Each read reserves
 * that much buffer space, which stays allocated while a partial message sits
 * in the input: a connection that is not trusted yet reads in small pieces.
 */
void sock_set_read_size(struct sock *s, size_t n);
/* Call write_fn when the output drains to 'low' bytes (0: only when empty). */
static inline void sock_set_out_low(struct sock *s, size_t low)
{
	s->out_low = low;
}

/* The buffers (created again if an idle sock gave them back). */
struct evbuffer *sock_in(struct sock *s);
struct evbuffer *sock_out(struct sock *s);
/*
 * The owner is idle (true) or busy: an idle sock's empty buffers may be given
 * back, by sock_trim() (the janitor's periodic sweep, so that a client
 * between two close transactions does not free and allocate them each time)
 * or by sock_trim_soon() (once what is queued has been sent: after a login).
 */
void sock_set_idle(struct sock *s, bool idle);
void sock_trim(struct sock *s);
void sock_trim_soon(struct sock *s);

size_t sock_in_len(const struct sock *s);
size_t sock_out_len(const struct sock *s);

/* The errno of the last SOCK_ERROR (0 for a DNS failure) and the resolver's code. */
int sock_errno(const struct sock *s);
int sock_dns_error(const struct sock *s);

/*
 * The reason of the last SOCK_ERROR as text: the TLS error, the resolver's,
 * or strerror(errno).  Valid until the next call.
 */
const char *sock_error_text(const struct sock *s);

/* Flush every sock with queued output now (the end-of-iteration event does this). */
void sock_flush_all(void);

#endif /* PGCUTOVER_SOCK_H */

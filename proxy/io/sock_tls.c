/*
 * sock_tls.c - TLS on a sock (see sock_tls.h): starting the accept and
 * connect handshakes and driving them from the sock's own event, reading
 * through SSL_read into the input's reserved space, writing the queued output
 * through SSL_write, and the sock_tls_* accessors.
 *
 * sock.c hands a sock over here only when s->tls is set (or s->tls_wait,
 * which is 0 for every plaintext sock), so that each of sock_update(),
 * sock_write_out() and sock_event_cb() pays exactly one predictable branch for
 * TLS.  The wait states (handshake, a read that needs writability, a write
 * that needs readability) are the SOCK_TLS_* bits of s->tls_wait; what they
 * make the sock wait for is sock_tls_want(), which sock_update() asks.
 */
#include "proxy/io/sock_tls.h"
#include "proxy/io/sock_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>

/*
 * Bytes handed to one SSL_write: one full TLS record.  Smaller queued chunks
 * are pulled up into one so that a batch of small messages becomes one
 * record and one write, as the plaintext path's writev does.
 */
#define SOCK_TLS_WRITE_CHUNK 16384

/*
 * The events a TLS sock needs: during the handshake what SSL asked for;
 * afterwards plain I/O's, except that a read waiting for writability does
 * not poll for input (it would spin on a readable socket) and a write
 * waiting for readability polls for input instead of output.  *kick is set
 * when SSL holds decrypted input that no socket event will announce.
 */
short sock_tls_want(struct sock *s, bool *kick)
{
	short want;

	if (s->tls_wait & SOCK_TLS_HANDSHAKE)
		return s->tls_hs_want;
	want = sock_io_want(s);
	if (s->tls_wait & SOCK_TLS_READ_WRITE)
		want = (short)((want & ~EV_READ) | EV_WRITE);
	if ((s->tls_wait & SOCK_TLS_WRITE_READ) && s->out_blocked)
		want = (short)((want & ~EV_WRITE) | EV_READ);
	if ((want & EV_READ) && !(s->tls_wait & SOCK_TLS_READ_WRITE) && SSL_pending(s->tls) > 0)
		*kick = true;
	return want;
}

/*
 * Remember why an SSL call failed ('e' from SSL_get_error), so that the
 * owner can say it (sock_tls_error()); s->err gets an errno for the owners
 * that only look at that.
 */
static void sock_tls_record(struct sock *s, int e)
{
	int saved = errno;
	unsigned long code = ERR_peek_last_error();

	s->tls_verify = SSL_get_verify_result(s->tls);
	if (e == SSL_ERROR_SYSCALL && code == 0) {
		/* a socket error, or the peer closed in the middle of the TLS stream */
		s->err = saved ? saved : ECONNRESET;
	} else {
		s->tls_err = code ? code : ERR_PACK(ERR_LIB_SSL, 0, ERR_R_INTERNAL_ERROR);
		s->err = EPROTO;
	}
	ERR_clear_error();
}

/* Send the TLS output: SSL_write of up to one record of the queued bytes at a time. */
bool sock_write_out_tls(struct sock *s)
{
	size_t len;

	if (s->tls_wait & SOCK_TLS_HANDSHAKE)
		return true; /* queued output waits for SOCK_TLS_READY */
	s->tls_wait &= (unsigned char)~SOCK_TLS_WRITE_READ;
	while ((len = evbuffer_get_length(s->out)) > 0) {
		size_t chunk = len < SOCK_TLS_WRITE_CHUNK ? len : SOCK_TLS_WRITE_CHUNK;
		/*
		 * A retry after WANT_WRITE passes the same bytes again, perhaps
		 * moved (pulled up) and followed by more: OpenSSL allows that with
		 * ACCEPT_MOVING_WRITE_BUFFER and partial writes, since the output
		 * only ever grows at its end.
		 */
		unsigned char *p = evbuffer_pullup(s->out, (ev_ssize_t)chunk);
		int n, e;

		if (p == NULL) {
			s->err = ENOMEM;
			return false;
		}
		ERR_clear_error();
		n = SSL_write(s->tls, p, (int)chunk);
		if (n > 0) {
			evbuffer_drain(s->out, (size_t)n);
			continue;
		}
		e = SSL_get_error(s->tls, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			s->out_blocked = true;
			if (e == SSL_ERROR_WANT_READ)
				s->tls_wait |= SOCK_TLS_WRITE_READ;
			return true;
		}
		sock_tls_record(s, e);
		return false;
	}
	s->out_blocked = false;
	return true;
}

/*
 * Read through TLS: SSL_read into the reserved input space, again while SSL
 * holds decrypted bytes (a record larger than the chunk) and the input has
 * room; then deliver, then the EOF or the error.
 */
static void sock_read_tls(struct sock *s)
{
	int n = 1, e = SSL_ERROR_NONE;
	size_t got = 0;

	s->tls_wait &= (unsigned char)~SOCK_TLS_READ_WRITE;
	if (!sock_buffers(s)) {
		s->err = ENOMEM;
		if (s->event_fn)
			s->event_fn(s, SOCK_ERROR, s->arg);
		return;
	}
	for (;;) {
		size_t have = evbuffer_get_length(s->in), room;
		struct evbuffer_iovec v;

		if (!s->want_read || s->eof || have >= s->in_limit)
			break;
		room = s->in_limit - have;
		if (room > SOCK_READ_CHUNK)
			room = SOCK_READ_CHUNK;
		if (evbuffer_reserve_space(s->in, (ev_ssize_t)room, &v, 1) < 1) {
			s->err = ENOMEM;
			e = -1;
			break;
		}
		if (v.iov_len > room)
			v.iov_len = room;
		ERR_clear_error();
		n = SSL_read(s->tls, v.iov_base, (int)v.iov_len);
		if (n > 0) {
			v.iov_len = (size_t)n;
			evbuffer_commit_space(s->in, &v, 1);
			got += (size_t)n;
			if (SSL_pending(s->tls) > 0)
				continue;
			break;
		}
		e = SSL_get_error(s->tls, n);
		break;
	}
	if (got > 0 && s->read_fn) {
		s->read_fn(s, s->arg);
		if (s->closed)
			return;
	}
	switch (e) {
	case SSL_ERROR_NONE:
	case SSL_ERROR_WANT_READ:
		sock_update(s);
		return;
	case SSL_ERROR_WANT_WRITE:
		/* a read that must write first (a key update): wait for writability */
		s->tls_wait |= SOCK_TLS_READ_WRITE;
		sock_update(s);
		return;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain close */
		s->eof = true;
		break;
	case -1:
		break; /* out of memory, s->err set */
	default:
		sock_tls_record(s, e);
		break;
	}
	sock_update(s);
	if (s->event_fn)
		s->event_fn(s, s->eof ? SOCK_EOF : SOCK_ERROR, s->arg);
}

/* One step of the handshake; its end is reported through event_fn. */
static void sock_tls_handshake(struct sock *s)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(s->tls);
	if (r == 1) {
		s->tls_wait = SOCK_TLS_ACTIVE;
		s->tls_hs_want = 0;
		sock_update(s);
		if (s->event_fn)
			s->event_fn(s, SOCK_TLS_READY, s->arg);
		/* output queued meanwhile goes now */
		if (!s->closed && evbuffer_get_length(s->out) > 0)
			sock_schedule_flush(s);
		return;
	}
	e = SSL_get_error(s->tls, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->tls_hs_want = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
		sock_update(s);
		return;
	}
	sock_tls_record(s, e);
	s->tls_hs_want = 0; /* nothing more to wait for */
	sock_update(s);
	if (s->event_fn)
		s->event_fn(s, SOCK_ERROR, s->arg);
}

/* A TLS sock's event: the handshake, or reads and writes crossed as SSL asked. */
void sock_tls_event(struct sock *s, short what)
{
	bool rd, wr;

	if (s->tls_wait & SOCK_TLS_HANDSHAKE) {
		sock_tls_handshake(s);
		return;
	}
	wr = s->out_blocked &&
	     ((s->tls_wait & SOCK_TLS_WRITE_READ) ? (what & EV_READ) != 0 : (what & EV_WRITE) != 0);
	rd = (s->tls_wait & SOCK_TLS_READ_WRITE) ? (what & EV_WRITE) != 0 : (what & EV_READ) != 0;
	if (wr)
		sock_flush(s);
	if (rd && !s->closed)
		sock_read_tls(s);
}

/* An address literal (no SNI for those, RFC 6066; IP SANs for verify-full). */
static bool sock_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The common part of both starts: a new SSL on our fd, handshake pending. */
static bool sock_tls_new(struct sock *s, SSL_CTX *ctx)
{
	if (s->tls || s->closed || s->fd < 0 || s->connecting || ctx == NULL ||
	    sock_in_len(s) > 0 || sock_out_len(s) > 0)
		return false;
	ERR_clear_error();
	s->tls = SSL_new(ctx);
	if (s->tls == NULL || SSL_set_fd(s->tls, s->fd) != 1) {
		if (s->tls)
			SSL_free(s->tls);
		s->tls = NULL;
		ERR_clear_error();
		return false;
	}
	SSL_set_mode(s->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	s->tls_err = 0;
	s->tls_verify = X509_V_OK;
	return true;
}

bool sock_start_tls_accept(struct sock *s, SSL_CTX *ctx)
{
	if (!sock_tls_new(s, ctx))
		return false;
	SSL_set_accept_state(s->tls);
	s->tls_wait = SOCK_TLS_ACTIVE | SOCK_TLS_HANDSHAKE;
	s->tls_hs_want = EV_READ; /* the ClientHello */
	sock_update(s);
	return true;
}

bool sock_start_tls_connect(struct sock *s, SSL_CTX *ctx, const char *host,
			    enum sock_tls_verify verify)
{
	bool ip = host && sock_is_ip(host), ok = true;

	if (!sock_tls_new(s, ctx))
		return false;
	SSL_set_connect_state(s->tls);
	if (host && host[0] != '/' && !ip)
		ok = SSL_set_tlsext_host_name(s->tls, host) == 1;
	if (verify == SOCK_TLS_VERIFY_NONE) {
		SSL_set_verify(s->tls, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_set_verify(s->tls, SSL_VERIFY_PEER, NULL);
		if (verify == SOCK_TLS_VERIFY_FULL && host) {
			X509_VERIFY_PARAM *vp = SSL_get0_param(s->tls);

			X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = ok && (ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
				       : X509_VERIFY_PARAM_set1_host(vp, host, 0)) == 1;
		}
	}
	if (!ok) {
		SSL_free(s->tls);
		s->tls = NULL;
		ERR_clear_error();
		return false;
	}
	s->tls_wait = SOCK_TLS_ACTIVE | SOCK_TLS_HANDSHAKE;
	s->tls_hs_want = EV_WRITE; /* send the ClientHello */
	sock_update(s);
	return true;
}

/*
 * Release the TLS session (sock_free()).  A best-effort close_notify when the
 * session is sound (OpenSSL forbids it after a fatal error); never waits for
 * the peer's.
 */
void sock_tls_free(struct sock *s)
{
	if (!(s->tls_wait & SOCK_TLS_HANDSHAKE) && s->tls_err == 0 && s->err == 0 && s->fd >= 0) {
		ERR_clear_error();
		(void)SSL_shutdown(s->tls);
	}
	ERR_clear_error();
	SSL_free(s->tls);
	s->tls = NULL;
}

const char *sock_tls_version(const struct sock *s)
{
	if (s->tls == NULL || (s->tls_wait & SOCK_TLS_HANDSHAKE))
		return NULL;
	return SSL_get_version(s->tls);
}

const char *sock_tls_cipher(const struct sock *s)
{
	if (s->tls == NULL || (s->tls_wait & SOCK_TLS_HANDSHAKE))
		return NULL;
	return SSL_get_cipher_name(s->tls);
}

bool sock_tls_peer_verified(const struct sock *s)
{
	if (s->tls == NULL || (s->tls_wait & SOCK_TLS_HANDSHAKE))
		return false;
	return SSL_get0_peer_certificate(s->tls) != NULL &&
	       SSL_get_verify_result(s->tls) == X509_V_OK;
}

const char *sock_tls_error(const struct sock *s)
{
	static char buf[256];
	const char *reason;

	if (s->tls_err == 0)
		return NULL;
	reason = ERR_reason_error_string(s->tls_err);
	if (reason == NULL)
		reason = "unknown TLS error";
	if (ERR_GET_LIB(s->tls_err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(s->tls_err) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    s->tls_verify != X509_V_OK)
		snprintf(buf, sizeof(buf), "%s: %s", reason,
			 X509_verify_cert_error_string(s->tls_verify));
	else
		snprintf(buf, sizeof(buf), "%s", reason);
	return buf;
}

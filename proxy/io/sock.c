/*
 * sock.c - non-blocking sockets with bounded buffers (see sock.h).
 *
 * Every sock's event is (re)registered by sock_update() alone, from what the
 * sock needs at that moment, so that the registration changes only when the
 * need does: a connection that reads, forwards and writes whole batches never
 * touches epoll_ctl() after its first read.
 *
 * This file is the plaintext socket: buffers, reads, writes, the
 * end-of-iteration flush, connecting (with evdns for host names) and the one
 * event callback.  TLS is in sock_tls.c (see sock_tls.h): a sock with s->tls
 * set reads through sock_read_tls() and writes through sock_write_out_tls(),
 * and its wait states are in s->tls_wait, which is 0 for a plaintext sock so
 * that each of sock_update(), sock_write_out() and sock_event_cb() pays
 * exactly one predictable branch for TLS.
 */
#include "proxy/io/sock.h"
#include "proxy/io/sock_int.h"
#include "proxy/io/sock_tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A host name lookup; outlives its sock when the sock goes first (s = NULL). */
struct sock_dns {
	struct sock *s;
	struct evdns_getaddrinfo_request *req;
};

static struct event_base *sock_base;
/* Fires once per iteration in which some sock queued output: sock_flush_all(). */
static struct event *flush_ev;
/* Socks with output queued since the last flush (a singly linked chain). */
static struct sock *flush_head;
/* flush_ev is active: more socks join the chain without activating it again. */
static bool flush_armed;

static void sock_event_cb(evutil_socket_t fd, short what, void *arg);

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	flush_armed = false;
	sock_flush_all();
}

bool sock_module_init(struct event_base *base)
{
	sock_base = base;
	flush_ev = event_new(base, -1, 0, flush_cb, NULL);
	return flush_ev != NULL;
}

void sock_module_free(void)
{
	if (flush_ev)
		event_free(flush_ev);
	flush_ev = NULL;
	flush_head = NULL;
	flush_armed = false;
}

size_t sock_in_len(const struct sock *s)
{
	return s->in ? evbuffer_get_length(s->in) : 0;
}

size_t sock_out_len(const struct sock *s)
{
	return s->out ? evbuffer_get_length(s->out) : 0;
}

int sock_errno(const struct sock *s)
{
	return s->err;
}

int sock_dns_error(const struct sock *s)
{
	return s->dns_err;
}

/*
 * The input was full and reading stopped: when the owner consumes some of
 * it, reading resumes (this callback is armed only while that is so, so
 * ordinary buffer traffic never pays for it).
 */
static void in_drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct sock *s = arg;

	(void)buf;
	if (info->n_deleted > 0 && evbuffer_get_length(s->in) < s->in_limit) {
		evbuffer_cb_clear_flags(s->in, s->in_cb, EVBUFFER_CB_ENABLED);
		s->in_full_watch = false;
		sock_update(s);
	}
}

/* Make sure both buffers exist (sock_trim() may have given them back); false when out of memory. */
bool sock_buffers(struct sock *s)
{
	if (s->in == NULL) {
		s->in = evbuffer_new();
		if (s->in == NULL)
			return false;
		s->in_cb = evbuffer_add_cb(s->in, in_drained_cb, s);
		if (s->in_cb == NULL) {
			evbuffer_free(s->in);
			s->in = NULL;
			return false;
		}
		evbuffer_cb_clear_flags(s->in, s->in_cb, EVBUFFER_CB_ENABLED);
		s->in_full_watch = false;
	}
	if (s->out == NULL) {
		s->out = evbuffer_new();
		if (s->out == NULL)
			return false;
	}
	return true;
}

struct evbuffer *sock_in(struct sock *s)
{
	/* a trimmed sock is asked for its input only once bytes come: 200 bytes cannot fail to fit */
	if (s->in == NULL && !sock_buffers(s))
		abort();
	return s->in;
}

struct evbuffer *sock_out(struct sock *s)
{
	if (s->out == NULL && !sock_buffers(s))
		abort();
	return s->out;
}

/*
 * An idle owner (a client between transactions) gives its empty buffers
 * back: thousands of idle clients then hold no evbuffer at all.
 */
void sock_trim(struct sock *s)
{
	if (!s->trim_idle || s->in == NULL || s->out == NULL || s->in_flush_list || s->tls ||
	    evbuffer_get_length(s->in) > 0 || evbuffer_get_length(s->out) > 0)
		return;
	evbuffer_free(s->in); /* and in_cb */
	evbuffer_free(s->out);
	s->in = s->out = NULL;
	s->in_cb = NULL;
	s->in_full_watch = false;
}

void sock_set_idle(struct sock *s, bool idle)
{
	s->trim_idle = idle;
	if (!idle)
		s->trim_soon = false;
}

void sock_trim_soon(struct sock *s)
{
	s->trim_soon = true;
	sock_trim(s);
}

bool sock_init(struct sock *s, evutil_socket_t fd, size_t limit, sock_io_fn read_fn,
	       sock_io_fn write_fn, sock_event_fn event_fn, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->in_limit = limit;
	s->read_size = SOCK_READ_CHUNK;
	s->out_low = limit / 2;
	s->read_fn = read_fn;
	s->write_fn = write_fn;
	s->event_fn = event_fn;
	s->arg = arg;
	s->want_read = true;
	if (!sock_buffers(s)) {
		s->closed = true;
		return false;
	}
	if (fd >= 0) {
		evutil_make_socket_nonblocking(fd);
		sock_update(s);
	}
	return true;
}

/* The events plain I/O needs: read while wanted and there is room, write while blocked. */
short sock_io_want(struct sock *s)
{
	short want = 0;

	if (s->want_read && !s->eof) {
		if (s->in == NULL || evbuffer_get_length(s->in) < s->in_limit) {
			want |= EV_READ;
		} else if (!s->in_full_watch) {
			/* full: resume by itself once the owner consumes some */
			s->in_full_watch = true;
			evbuffer_cb_set_flags(s->in, s->in_cb, EVBUFFER_CB_ENABLED);
		}
	}
	if (s->out_blocked)
		want |= EV_WRITE;
	return want;
}

/* Register ev for what the sock needs now; nothing happens when that is unchanged. */
void sock_update(struct sock *s)
{
	short want;
	bool kick = false;

	if (s->closed || s->fd < 0)
		want = 0;
	else if (s->connecting)
		want = EV_WRITE;
	else if (s->tls_wait)
		want = sock_tls_want(s, &kick);
	else
		want = sock_io_want(s);
	if (want != s->ev_flags) {
		if (s->ev_flags)
			event_del(&s->ev);
		s->ev_flags = want;
		if (want != 0) {
			event_assign(&s->ev, sock_base, s->fd, (short)(want | EV_PERSIST),
				     sock_event_cb, s);
			s->ev_assigned = true;
			event_add(&s->ev, NULL);
		}
	}
	if (kick)
		event_active(&s->ev, EV_READ, 0); /* decrypted bytes wait inside SSL */
}

/* Report a failure from our own event (never from inside the caller's call). */
static void sock_fail_later(struct sock *s, int err)
{
	s->err = err;
	s->err_pending = true;
	s->connecting = true;
	sock_update(s);
	if (!s->ev_assigned) {
		event_assign(&s->ev, sock_base, -1, 0, sock_event_cb, s);
		s->ev_assigned = true;
	}
	event_active(&s->ev, EV_WRITE, 0);
}

void sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t salen)
{
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		sock_fail_later(s, errno);
		return;
	}
	s->fd = fd;
	if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
		sock_fail_later(s, errno);
		return;
	}
	/* done or in progress: either way the outcome comes with writability */
	s->connecting = true;
	sock_update(s);
}

static void sock_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct sock_dns *d = arg;
	struct sock *s = d->s;

	if (s == NULL) {
		/* the sock went away first */
		if (res)
			evutil_freeaddrinfo(res);
		free(d);
		return;
	}
	s->dns = NULL;
	free(d);
	if (result != 0 || res == NULL) {
		s->dns_err = result ? result : EVUTIL_EAI_FAIL;
		if (res)
			evutil_freeaddrinfo(res);
		sock_fail_later(s, 0);
		return;
	}
	sock_connect(s, res->ai_addr, (socklen_t)res->ai_addrlen);
	evutil_freeaddrinfo(res);
}

void sock_connect_hostname(struct sock *s, struct evdns_base *dns, const char *host, int port)
{
	struct evutil_addrinfo hints;
	struct sock_dns *d = calloc(1, sizeof(*d));
	struct evdns_getaddrinfo_request *req;
	char portstr[16];

	if (d == NULL) {
		sock_fail_later(s, ENOMEM);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(portstr, sizeof(portstr), "%d", port);
	d->s = s;
	s->dns = d;
	s->port = port;
	/* numeric hosts (and failures) may call back before this returns */
	req = evdns_getaddrinfo(dns, host, portstr, &hints, sock_dns_cb, d);
	if (s->dns != NULL)
		s->dns->req = req; /* still pending (a synchronous answer cleared s->dns) */
}

void sock_disable(struct sock *s)
{
	if (s->closed)
		return;
	s->closed = true;
	s->read_fn = s->write_fn = NULL;
	s->event_fn = NULL;
	if (s->dns) {
		struct sock_dns *d = s->dns;

		s->dns = NULL;
		d->s = NULL;
		if (d->req)
			evdns_getaddrinfo_cancel(d->req); /* its callback frees d */
	}
	if (s->ev_flags)
		event_del(&s->ev);
	else if (s->ev_assigned)
		event_del(&s->ev); /* a pending activation (sock_fail_later) */
	s->ev_flags = 0;
}

void sock_free(struct sock *s)
{
	struct sock **p;

	sock_disable(s);
	for (p = &flush_head; *p; p = &(*p)->flush_next) {
		if (*p == s) {
			*p = s->flush_next;
			break;
		}
	}
	s->in_flush_list = false;
	if (s->in)
		evbuffer_free(s->in); /* frees in_cb too */
	if (s->out)
		evbuffer_free(s->out);
	s->in = s->out = NULL;
	if (s->tls)
		sock_tls_free(s);
	s->tls_wait = 0;
	if (s->fd >= 0)
		evutil_closesocket(s->fd);
	s->fd = -1;
}

void sock_schedule_flush(struct sock *s)
{
	if (s->in_flush_list || s->out_blocked || s->closed)
		return;
	s->in_flush_list = true;
	s->flush_next = flush_head;
	flush_head = s;
	if (flush_ev && !flush_armed) {
		flush_armed = true;
		event_active(flush_ev, EV_TIMEOUT, 0);
	}
}

bool sock_write(struct sock *s, const void *data, size_t len)
{
	if (s->closed || !sock_buffers(s))
		return false;
	if (evbuffer_add(s->out, data, len) != 0)
		return false;
	sock_schedule_flush(s);
	return true;
}

/*
 * Write what the socket takes.  Returns false on a write error (s->err set),
 * true otherwise; out_blocked says whether bytes are left for later.
 */
static bool sock_write_out(struct sock *s)
{
	if (s->tls)
		return sock_write_out_tls(s);
	while (s->out && evbuffer_get_length(s->out) > 0) {
		int n = evbuffer_write(s->out, s->fd);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (errno == EINTR)
				continue;
			s->out_blocked = true;
			return true;
		}
		s->err = n < 0 ? errno : EPIPE;
		return false;
	}
	s->out_blocked = false;
	return true;
}

void sock_flush_now(struct sock *s)
{
	if (s->fd >= 0 && !s->connecting && s->out && evbuffer_get_length(s->out) > 0)
		(void)sock_write_out(s);
}

/* Flush one sock and tell its owner; the owner may close it meanwhile. */
void sock_flush(struct sock *s)
{
	if (s->closed || s->fd < 0 || s->connecting)
		return;
	if (!sock_write_out(s)) {
		s->out_blocked = false;
		sock_update(s);
		if (s->event_fn)
			s->event_fn(s, SOCK_ERROR, s->arg);
		return;
	}
	if (sock_out_len(s) <= s->out_low && s->write_fn)
		s->write_fn(s, s->arg);
	if (!s->closed) {
		sock_update(s);
		if (s->trim_soon) {
			s->trim_soon = false;
			sock_trim(s);
		}
	}
}

void sock_flush_all(void)
{
	while (flush_head) {
		struct sock *s = flush_head;

		flush_head = s->flush_next;
		s->flush_next = NULL;
		s->in_flush_list = false;
		sock_flush(s);
	}
}

/* Read once; deliver the bytes, the EOF or the error. */
static void sock_read(struct sock *s)
{
	size_t have, room;
	struct evbuffer_iovec v;
	ssize_t n;

	if (!sock_buffers(s)) {
		s->err = ENOMEM;
		if (s->event_fn)
			s->event_fn(s, SOCK_ERROR, s->arg);
		return;
	}
	have = evbuffer_get_length(s->in);
	if (!s->want_read || s->eof || have >= s->in_limit) {
		sock_update(s);
		return;
	}
	room = s->in_limit - have;
	if (room > s->read_size)
		room = s->read_size;
	if (have == 0 && !s->bulk) {
		/*
		 * Most reads are one small request or reply into an empty buffer:
		 * read it here and copy it into a chain of its own size (a fast
		 * small allocation) instead of reserving a 16 kB chain per read.
		 */
		static uint8_t rbuf[SOCK_READ_CHUNK];

		if (room > sizeof(rbuf))
			room = sizeof(rbuf);
		do {
			n = recv(s->fd, rbuf, room, 0);
		} while (n < 0 && errno == EINTR);
		if (n > 0) {
			/* a full read is a transfer: read straight into the buffer from now on */
			s->bulk = (size_t)n == room;
			if (evbuffer_add(s->in, rbuf, (size_t)n) != 0) {
				s->err = ENOMEM;
				if (s->event_fn)
					s->event_fn(s, SOCK_ERROR, s->arg);
				return;
			}
			if (s->read_fn)
				s->read_fn(s, s->arg);
			if (!s->closed)
				sock_update(s);
			return;
		}
		goto read_failed;
	}
	if (evbuffer_reserve_space(s->in, (ev_ssize_t)room, &v, 1) < 1) {
		s->err = ENOMEM;
		if (s->event_fn)
			s->event_fn(s, SOCK_ERROR, s->arg);
		return;
	}
	if (v.iov_len > room)
		v.iov_len = room;
	do {
		n = recv(s->fd, v.iov_base, v.iov_len, 0);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		/* a short read ends a transfer: small reads go through rbuf again */
		s->bulk = (size_t)n == v.iov_len;
		v.iov_len = (size_t)n;
		evbuffer_commit_space(s->in, &v, 1);
		if (s->read_fn)
			s->read_fn(s, s->arg);
		if (!s->closed)
			sock_update(s);
		return;
	}
read_failed:
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 0) {
		s->eof = true;
	} else {
		s->err = errno;
	}
	sock_update(s);
	if (s->event_fn)
		s->event_fn(s, n == 0 ? SOCK_EOF : SOCK_ERROR, s->arg);
}

const char *sock_error_text(const struct sock *s)
{
	const char *t = sock_tls_error(s);

	if (t)
		return t;
	if (s->dns_err)
		return evutil_gai_strerror(s->dns_err);
	return strerror(s->err);
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	(void)fd;
	if (s->closed)
		return;
	if (s->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (s->err_pending) {
			err = s->err;
			s->err_pending = false;
		} else if (!(what & EV_WRITE)) {
			return;
		} else if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
			err = errno;
		}
		s->connecting = false;
		if (err != 0 || s->dns_err != 0) {
			s->err = err;
			sock_update(s);
			if (s->event_fn)
				s->event_fn(s, SOCK_ERROR, s->arg);
			return;
		}
		sock_update(s);
		if (s->event_fn)
			s->event_fn(s, SOCK_CONNECTED, s->arg);
		/* output queued before the connect completed goes now */
		if (!s->closed && s->out && evbuffer_get_length(s->out) > 0)
			sock_schedule_flush(s);
		return;
	}
	if (s->tls) {
		sock_tls_event(s, what);
		return;
	}
	if (what & EV_WRITE)
		sock_flush(s);
	if ((what & EV_READ) && !s->closed)
		sock_read(s);
}

void sock_set_read_size(struct sock *s, size_t n)
{
	s->read_size = n > 0 ? n : SOCK_READ_CHUNK;
}

void sock_set_reading(struct sock *s, bool on)
{
	s->want_read = on;
	if (!s->closed)
		sock_update(s);
}

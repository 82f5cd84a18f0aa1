/*
 * sock.c - non-blocking sockets with bounded buffers (see sock.h).
 *
 * Every sock's event is (re)registered by sock_update() alone, from what the
 * sock needs at that moment, so that the registration changes only when the
 * need does: a connection that reads, forwards and writes whole batches never
 * touches epoll_ctl() after its first read.
 */
#include "proxy/sock.h"

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

/* Bytes asked of recv() at once: most batches fit; a big transfer takes several. */
#define SOCK_READ_CHUNK 16384

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
static void sock_update(struct sock *s);

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
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	if (s->in)
		s->in_cb = evbuffer_add_cb(s->in, in_drained_cb, s);
	if (s->in == NULL || s->out == NULL || s->in_cb == NULL) {
		if (s->in)
			evbuffer_free(s->in);
		if (s->out)
			evbuffer_free(s->out);
		s->in = s->out = NULL;
		s->closed = true;
		return false;
	}
	evbuffer_cb_clear_flags(s->in, s->in_cb, EVBUFFER_CB_ENABLED);
	if (fd >= 0) {
		evutil_make_socket_nonblocking(fd);
		sock_update(s);
	}
	return true;
}

/* Register ev for what the sock needs now; nothing happens when that is unchanged. */
static void sock_update(struct sock *s)
{
	short want = 0;

	if (s->closed || s->fd < 0) {
		want = 0;
	} else if (s->connecting) {
		want = EV_WRITE;
	} else {
		if (s->want_read && !s->eof) {
			if (evbuffer_get_length(s->in) < s->in_limit) {
				want |= EV_READ;
			} else if (!s->in_full_watch) {
				/* full: resume by itself once the owner consumes some */
				s->in_full_watch = true;
				evbuffer_cb_set_flags(s->in, s->in_cb, EVBUFFER_CB_ENABLED);
			}
		}
		if (s->out_blocked)
			want |= EV_WRITE;
	}
	if (want == s->ev_flags)
		return;
	if (s->ev_flags)
		event_del(&s->ev);
	s->ev_flags = want;
	if (want == 0)
		return;
	event_assign(&s->ev, sock_base, s->fd, (short)(want | EV_PERSIST), sock_event_cb, s);
	s->ev_assigned = true;
	event_add(&s->ev, NULL);
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
	if (s->out == NULL || s->closed)
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
	while (evbuffer_get_length(s->out) > 0) {
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
static void sock_flush(struct sock *s)
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
	if (evbuffer_get_length(s->out) <= s->out_low && s->write_fn)
		s->write_fn(s, s->arg);
	if (!s->closed)
		sock_update(s);
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
	size_t have = evbuffer_get_length(s->in), room;
	struct evbuffer_iovec v;
	ssize_t n;

	if (!s->want_read || s->eof || have >= s->in_limit) {
		sock_update(s);
		return;
	}
	room = s->in_limit - have;
	if (room > s->read_size)
		room = s->read_size;
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
		v.iov_len = (size_t)n;
		evbuffer_commit_space(s->in, &v, 1);
		if (s->read_fn)
			s->read_fn(s, s->arg);
		if (!s->closed)
			sock_update(s);
		return;
	}
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

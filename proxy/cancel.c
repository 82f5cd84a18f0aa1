/*
 * cancel.c - cancel requests, both ways.
 *
 * A client gets a BackendKeyData of pgcutover's own (its real server may
 * change: transaction pooling, a switch), registered here by key.  A
 * CancelRequest that names a key is forwarded to the server the client is
 * linked to at that moment, on a short-lived connection of its own that
 * uses TLS when the side's sslmode asks for it (the key is a secret).
 */
#include "proxy/cancel.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "proxy/auth/crypto.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/conninfo.h"
#include "proxy/core/log.h"
#include "proxy/io/sock.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/server_login.h"

/* Buckets of the cancel-key table (a power of two). */
#define CANCEL_BUCKETS 4096
/* A cancel connection that gets no answer is dropped after this long. */
#define CANCEL_TIMEOUT_SEC 10

/* Cancel-key hash table: BackendKeyData we handed out -> client. */
static struct client *cancel_table[CANCEL_BUCKETS];

/* ---- the keys we hand out ---- */

void cancel_register(struct client *c)
{
	uint32_t r[2];
	struct client **b;

	if (!auth_random_bytes(r, sizeof(r))) {
		r[0] = (uint32_t)random();
		r[1] = (uint32_t)random();
	}
	/*
	 * A positive process ID, as PostgreSQL's are, and never 0 (an all-zero
	 * request finds nobody); session pooling gives the client its server's
	 * real one at the welcome (cancel_set_pid).  The key, random, is what a
	 * request must know: the table is hashed on it.
	 */
	c->cancel_pid = r[0] & 0x7fffffffu;
	if (c->cancel_pid == 0)
		c->cancel_pid = 1;
	c->cancel_key = r[1];
	b = &cancel_table[c->cancel_key & (CANCEL_BUCKETS - 1)];
	c->cancel_next = *b;
	*b = c;
}

void cancel_set_pid(struct client *c, uint32_t pid)
{
	if (c->cancel_pid != 0 && pid != 0)
		c->cancel_pid = pid;
}

void cancel_unregister(struct client *c)
{
	struct client **p;

	if (c->cancel_pid == 0)
		return;
	for (p = &cancel_table[c->cancel_key & (CANCEL_BUCKETS - 1)]; *p; p = &(*p)->cancel_next) {
		if (*p == c) {
			*p = c->cancel_next;
			break;
		}
	}
	c->cancel_pid = 0;
}

struct client *cancel_find(uint32_t pid, uint32_t key)
{
	struct client *c;

	for (c = cancel_table[key & (CANCEL_BUCKETS - 1)]; c; c = c->cancel_next)
		if (c->cancel_pid == pid && c->cancel_key == key)
			return c;
	return NULL;
}

/* Forward a CancelRequest to the server of the client it names. */
void cancel_request(struct client *c, uint32_t pid, uint32_t key)
{
	struct client *target = cancel_find(pid, key);

	if (target == NULL) {
		log_debug("client %s: cancel request for an unknown key", c->addr);
	} else if (target->server == NULL) {
		log_debug("client %s: cancel request for an idle session", c->addr);
	} else {
		log_debug("client %s: forwarding a cancel request", c->addr);
		/*
		 * As PostgreSQL does, the requester's connection closes only once
		 * the cancel has been delivered (libpq's PQcancel returns then): a
		 * client that sends its next query as soon as PQcancel returns must
		 * never have that query hit by a signal still on its way.
		 */
		if (cancel_send(target->server, c)) {
			c->cancelling = true;
			return;
		}
	}
	client_close(c, "cancel request handled");
}

/* ---- forwarding a cancel to a server ---- */

/* Where a cancel connection is. */
enum cancel_step {
	CANCEL_CONNECTING, /* TCP or unix connect in progress */
	CANCEL_TLS_ASKED,  /* SSLRequest sent, waiting for 'S' or 'N' */
	CANCEL_TLS,        /* handshake running */
	CANCEL_SENT,       /* CancelRequest sent: waiting for the server to close */
};

/*
 * A short-lived connection that carries one CancelRequest, over TLS when
 * the side's sslmode asks for it, as the backend's own connection did (the
 * cancel key is a secret: it goes encrypted whenever it can).
 */
struct cancel_conn {
	struct list_node node; /* on cancel_conns while in flight, then on reap_cancels */
	struct sock sock;
	struct event *timer; /* gives up after CANCEL_TIMEOUT_SEC */
	enum cancel_step step;
	enum tls_sslmode mode; /* the side's sslmode when the cancel was sent */
	char *host;            /* for SNI and verify-full */
	uint8_t packet[16];
	/*
	 * The client connection that carried the CancelRequest: closed when
	 * this one ends (the server closed it, so the signal went out; or an
	 * error, or the timeout), NULL once it has gone by itself.
	 */
	struct client *requester;
};

/* Cancel requests in flight, freed at exit if a server has not closed yet. */
static struct list_node cancel_conns = {&cancel_conns, &cancel_conns};
/* Cancel connections finished in a callback, freed by the reaper. */
static struct list_node reap_cancels = {&reap_cancels, &reap_cancels};

/* Done (answered, failed or timed out): no more callbacks; the reaper frees it. */
static void cancel_finish(struct cancel_conn *cc, const char *why)
{
	if (why)
		log_debug("cancel request to %s: %s", cc->host, why);
	if (cc->requester) {
		struct client *c = cc->requester;

		cc->requester = NULL;
		c->cancelling = false;
		client_close(c, "cancel request delivered");
	}
	sock_disable(&cc->sock);
	evtimer_del(cc->timer);
	list_remove(&cc->node);
	list_append(&reap_cancels, &cc->node);
	rt_schedule_reap();
}

static void cancel_free(struct cancel_conn *cc)
{
	list_remove(&cc->node);
	sock_free(&cc->sock);
	if (cc->timer)
		event_free(cc->timer);
	free(cc->host);
	free(cc);
}

void cancel_reap(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &reap_cancels)
		cancel_free(list_entry(n, struct cancel_conn, node));
}

static void cancel_send_packet(struct cancel_conn *cc)
{
	if (!sock_write(&cc->sock, cc->packet, sizeof(cc->packet))) {
		cancel_finish(cc, "could not send");
		return;
	}
	cc->step = CANCEL_SENT;
}

static void cancel_read_cb(struct sock *sk, void *arg)
{
	struct cancel_conn *cc = arg;
	struct evbuffer *in = sock_in(sk);
	uint8_t answer;

	if (cc->step != CANCEL_TLS_ASKED) {
		evbuffer_drain(in, evbuffer_get_length(in)); /* nothing is expected */
		return;
	}
	if (evbuffer_remove(in, &answer, 1) != 1)
		return;
	if (answer == 'S' && evbuffer_get_length(in) == 0) {
		cc->step = CANCEL_TLS;
		if (!sock_start_tls_connect(sk, tls_server_ctx(rt.tls), cc->host,
					    server_sslmode_verify(cc->mode)))
			cancel_finish(cc, "could not start TLS");
		return;
	}
	if (answer == 'N' && cc->mode < SSLMODE_REQUIRE) {
		cancel_send_packet(cc);
		return;
	}
	cancel_finish(cc, answer == 'N' ? "server does not support TLS, which its sslmode requires"
					: "invalid answer to the SSL request");
}

static void cancel_event_cb(struct sock *sk, int what, void *arg)
{
	struct cancel_conn *cc = arg;

	if (what & SOCK_CONNECTED) {
		if (cc->mode == SSLMODE_DISABLE) {
			cancel_send_packet(cc);
		} else if (sock_write(sk, server_ssl_request, sizeof(server_ssl_request))) {
			cc->step = CANCEL_TLS_ASKED;
		} else {
			cancel_finish(cc, "could not send");
		}
		return;
	}
	if (what & SOCK_TLS_READY) {
		cancel_send_packet(cc);
		return;
	}
	/* the server closes the connection once it has the request */
	cancel_finish(cc, (what & SOCK_ERROR) ? sock_error_text(sk) : NULL);
}

static void cancel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cancel_finish(arg, "timed out");
}

void cancel_free_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &cancel_conns)
		cancel_free(list_entry(n, struct cancel_conn, node));
	cancel_reap();
}

void cancel_forget_requester(struct client *c)
{
	struct list_node *n;

	list_for_each(n, &cancel_conns) {
		struct cancel_conn *cc = list_entry(n, struct cancel_conn, node);

		if (cc->requester == c)
			cc->requester = NULL;
	}
}

bool cancel_send(struct server *s, struct client *requester)
{
	const struct backend_addr *a = &s->addr;
	struct cancel_conn *cc = calloc(1, sizeof(*cc));
	struct pq_buf b;
	struct timeval tv = {CANCEL_TIMEOUT_SEC, 0};
	const char *who;

	if (cc == NULL)
		return false;
	list_init(&cc->node);
	cc->sock.fd = -1;
	pq_buf_init(&b);
	pq_build_cancel_request(&b, s->be_pid, s->be_key);
	if (b.failed || b.len != sizeof(cc->packet)) {
		pq_buf_free(&b);
		free(cc);
		return false;
	}
	memcpy(cc->packet, b.data, b.len);
	pq_buf_free(&b);
	cc->mode = server_side_sslmode(a, &who);
	cc->host = strdup(a->host);
	cc->timer = evtimer_new(rt.base, cancel_timer_cb, cc);
	if (cc->host == NULL || cc->timer == NULL ||
	    !sock_init(&cc->sock, -1, 256, cancel_read_cb, NULL, cancel_event_cb, cc)) {
		log_warning("server %s: could not send a cancel request: out of memory", s->label);
		cancel_free(cc);
		return false;
	}
	list_append(&cancel_conns, &cc->node);
	evtimer_add(cc->timer, &tv);
	cc->step = CANCEL_CONNECTING;
	if (a->host[0] == '/') {
		struct sockaddr_un sun;

		if (!server_unix_addr(a, &sun)) {
			log_warning("server %s: could not send a cancel request", s->label);
			cancel_free(cc);
			return false;
		}
		sock_connect(&cc->sock, (struct sockaddr *)&sun, sizeof(sun));
	} else {
		sock_connect_hostname(&cc->sock, rt.dns, a->host, a->port);
	}
	cc->requester = requester;
	return true;
}

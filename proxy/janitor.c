/*
 * janitor.c - the janitor: one periodic sweep over the logged-in clients that
 * enforces query_wait_timeout, idle_transaction_timeout and
 * client_message_timeout, and over the idle servers for server_idle_timeout
 * (see janitor.h).
 *
 * A sweep rather than a timer per connection, because these clocks restart
 * on the hot path (every read, every ReadyForQuery): a sweep only needs the
 * timestamps the forwarding code keeps anyway, and costs a few loads per
 * client per period.  The period is a tenth of the smallest timeout in
 * force, between 10 ms and 1 s, so a timeout fires at most 10% late.
 *
 * A client closed by a sweep leaves the list being walked and its pool may
 * move other clients between lists (pool_service()), so the walk of a list
 * starts again after every disconnection; disconnections are rare, and each
 * removes a client, so this ends.
 */
#include "proxy/janitor.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>

#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

#define LIMITS_PERIOD_MIN_MS 10
#define LIMITS_PERIOD_MAX_MS 1000
/*
 * Headers looked at past the front of a client's input to see whether it
 * ends inside a message: beyond that many complete messages the client is
 * waiting for pgcutover, not the other way round.
 */
#define LIMITS_SCAN_HEADERS 64

static struct event *janitor;
static int64_t period_ms = LIMITS_PERIOD_MAX_MS;
static uint64_t last_sweep_us; /* when the previous sweep ran: how long a hold lasted */

static void janitor_cb(evutil_socket_t fd, short what, void *arg);

/* ---- settings in force ---- */

static int64_t query_wait_ms(const struct database *db)
{
	return db->cfg ? db->cfg->d.query_wait_timeout_ms : rt.cfg->defaults.query_wait_timeout_ms;
}

static int64_t idle_xact_ms(const struct database *db)
{
	return db->cfg ? db->cfg->d.idle_transaction_timeout_ms
		       : rt.cfg->defaults.idle_transaction_timeout_ms;
}

/* "2s" or "1500ms", for messages. */
static void format_ms(char *buf, size_t len, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

static void consider(int64_t *smallest, int64_t ms)
{
	if (ms > 0 && ms < *smallest)
		*smallest = ms;
}

int64_t janitor_period_ms(void)
{
	return period_ms;
}

void janitor_reconfigure(void)
{
	const struct config *cfg = rt.cfg;
	int64_t smallest = INT64_MAX, p;
	struct timeval tv;

	consider(&smallest, cfg->client_message_timeout_ms);
	consider(&smallest, cfg->server_idle_timeout_ms);
	consider(&smallest, cfg->defaults.query_wait_timeout_ms);
	consider(&smallest, cfg->defaults.idle_transaction_timeout_ms);
	for (size_t i = 0; i < cfg->ndbs; i++) {
		consider(&smallest, cfg->dbs[i].d.query_wait_timeout_ms);
		consider(&smallest, cfg->dbs[i].d.idle_transaction_timeout_ms);
	}
	p = smallest == INT64_MAX ? LIMITS_PERIOD_MAX_MS : smallest / 10;
	if (p < LIMITS_PERIOD_MIN_MS)
		p = LIMITS_PERIOD_MIN_MS;
	if (p > LIMITS_PERIOD_MAX_MS)
		p = LIMITS_PERIOD_MAX_MS;
	if (janitor == NULL || (p == period_ms && event_pending(janitor, EV_TIMEOUT, NULL)))
		return;
	period_ms = p;
	tv.tv_sec = p / 1000;
	tv.tv_usec = (p % 1000) * 1000;
	event_del(janitor);
	event_add(janitor, &tv);
	log_debug("limits: checking timeouts every %lld ms", (long long)p);
}

bool janitor_init(void)
{
	janitor = event_new(rt.base, -1, EV_PERSIST, janitor_cb, NULL);
	if (janitor == NULL)
		return false;
	last_sweep_us = rt_now_us();
	period_ms = 0; /* so that reconfigure arms it */
	janitor_reconfigure();
	return true;
}

void janitor_free(void)
{
	if (janitor)
		event_free(janitor);
	janitor = NULL;
}

/* ---- what a client is doing ---- */

bool janitor_client_mid_message(const struct client *c)
{
	struct evbuffer *in = c->sock.in; /* NULL: an idle client gave its buffers back */
	size_t len = in ? evbuffer_get_length(in) : 0, pos = c->msg_left;

	/* the front of the input continues the message being forwarded */
	if (len < pos)
		return true;
	for (int i = 0; i < LIMITS_SCAN_HEADERS; i++) {
		uint8_t hdr[PQ_HEADER_SIZE];
		struct evbuffer_ptr ptr;
		uint32_t mlen;

		if (pos == len)
			return false;
		if (len - pos < PQ_HEADER_SIZE)
			return true;
		evbuffer_ptr_set(in, &ptr, pos, EVBUFFER_PTR_SET);
		if (evbuffer_copyout_from(in, &ptr, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
			return false;
		mlen = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 |
		       hdr[4];
		/* a bad length is the forwarding code's to refuse, not a stall */
		if (mlen < 4 || len - pos < (size_t)mlen + 1)
			return mlen >= 4;
		pos += (size_t)mlen + 1;
	}
	return false;
}

/* pgcutover itself is not reading this client: its clock must not run. */
static bool not_reading(const struct client *c)
{
	return !c->sock.want_read || c->sock.eof || sock_in_len(&c->sock) >= c->sock.in_limit;
}

/*
 * client_message_timeout: part of a message arrived and nothing more for
 * that long while pgcutover was reading.  True when the client was closed.
 */
static bool check_stalled(struct client *c, uint64_t now)
{
	int64_t ms = rt.cfg->client_message_timeout_ms;
	char when[32];

	if (ms <= 0)
		return false;
	if (not_reading(c)) {
		c->last_input_us = now; /* we are the reason nothing arrives */
		return false;
	}
	if (now - c->last_input_us < (uint64_t)ms * 1000 || !janitor_client_mid_message(c))
		return false;
	format_ms(when, sizeof(when), ms);
	/* its server, if it saw part of the message, is closed by server_release() */
	client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
			  "client stalled in the middle of a message: nothing received for %s (client_message_timeout)",
			  when);
	return true;
}

/* idle_transaction_timeout: inside a transaction, nothing pending either way. */
static bool check_idle_in_transaction(struct client *c, uint64_t now)
{
	const struct server *s = c->server;
	int64_t ms = idle_xact_ms(c->db);

	if (ms <= 0 || s == NULL || s->state != SV_ACTIVE)
		return false;
	if ((s->txn_status != 'T' && s->txn_status != 'E') || s->pending_syncs > 0 || s->unsynced ||
	    s->internal_cb != NULL || s->msg_left > 0 || c->msg_left > 0 ||
	    sock_in_len(&c->sock) > 0)
		return false;
	/* with nothing pending, query_start_us is when the last ReadyForQuery passed */
	if (now - s->query_start_us < (uint64_t)ms * 1000)
		return false;
	/* the server is inside a transaction: server_release() closes it, which rolls it back */
	client_disconnect(c, SQLSTATE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
			  "terminating connection due to idle-in-transaction timeout");
	return true;
}

/*
 * A client held because its database is paused (PAUSE, SWITCH) sees a delay,
 * never an error (PRODUCT.md): the query_wait_timeout clocks of a paused
 * database's waiting clients stand still.  Sampled once per sweep, so a
 * hold is credited to within one period.  Calls nothing back.
 */
static void credit_pause(struct pool *pool, uint64_t now, uint64_t since_last)
{
	struct list_node *n;

	if (!db_hold_stops_clocks(pool->db))
		return;
	list_for_each(n, &pool->waiting_clients) {
		struct client *c = list_entry(n, struct client, node);

		c->wait_start_us += since_last;
		if (c->wait_start_us > now)
			c->wait_start_us = now;
	}
}

/* query_wait_timeout for a client waiting for a server. */
static bool check_wait(struct client *c, uint64_t now)
{
	struct pool *pool = c->pool;
	int64_t ms = query_wait_ms(c->db);
	/* why no server came, when the side it waits for failed to connect */
	const char *why = pool->retry_side == c->db->route ? pool->last_error : "";
	char when[32];

	if (ms <= 0 || db_hold_stops_clocks(c->db) || now - c->wait_start_us < (uint64_t)ms * 1000)
		return false;
	format_ms(when, sizeof(when), ms);
	client_disconnect(c, SQLSTATE_PROTOCOL_VIOLATION,
			  "query_wait_timeout (%s) expired while waiting for a server connection of database \"%s\"%s%s",
			  when, c->db->name, why[0] ? ": " : "", why);
	return true;
}

/* ---- the sweep ---- */

/*
 * server_idle_timeout: idle lists are stacks (server_set_state), so the
 * servers idle longest are at the tail and the walk stops at the first one
 * still young.  The pool outlives the close (pools go only at shutdown); its
 * pool_service() may open a server for a client waiting with other startup
 * parameters, which the freed room is for.
 */
static void sweep_idle_servers(struct pool *pool, uint64_t now)
{
	uint64_t limit_us = (uint64_t)rt.cfg->server_idle_timeout_ms * 1000;
	struct list_node *n;

	if (rt.cfg->server_idle_timeout_ms <= 0)
		return;
	while ((n = list_last(&pool->idle_servers)) != NULL) {
		struct server *s = list_entry(n, struct server, node);

		/* one that went idle during this sweep is younger than 'now' */
		if (s->idle_since_us > now || now - s->idle_since_us < limit_us)
			break;
		server_terminate(s, "server_idle_timeout expired");
	}
}

enum sweep_list {
	SWEEP_WAITING, /* CL_WAIT, CL_WAIT_LOGIN: query_wait_timeout */
	SWEEP_ACTIVE,  /* CL_ACTIVE: idle_transaction_timeout */
	SWEEP_OTHER,   /* CL_IDLE, admin sessions: client_message_timeout only */
};

/* One walk of a list; true when a client was closed (the caller walks it again). */
static bool sweep_once(struct list_node *list, enum sweep_list kind, uint64_t now)
{
	struct list_node *n;

	list_for_each(n, list) {
		struct client *c = list_entry(n, struct client, node);

		if (kind == SWEEP_WAITING && check_wait(c, now))
			return true;
		if (check_stalled(c, now))
			return true;
		if (kind == SWEEP_ACTIVE && check_idle_in_transaction(c, now))
			return true;
		/* idle since at least the last sweep: its empty buffers go back */
		if (kind == SWEEP_OTHER)
			sock_trim(&c->sock);
	}
	return false;
}

static void sweep_list(struct list_node *list, enum sweep_list kind, uint64_t now)
{
	while (sweep_once(list, kind, now))
		;
}

static void janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = rt_now_us(), since_last = now - last_sweep_us;
	struct list_node *n, *p;

	(void)fd;
	(void)what;
	(void)arg;
	last_sweep_us = now;
	if (rt.exiting)
		return;
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools)
			credit_pause(list_entry(p, struct pool, node), now, since_last);
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);

			sweep_list(&pool->waiting_clients, SWEEP_WAITING, now);
			sweep_list(&pool->active_clients, SWEEP_ACTIVE, now);
			sweep_list(&pool->idle_clients, SWEEP_OTHER, now);
			sweep_idle_servers(pool, now);
		}
	}
	sweep_list(&rt.kind_clients, SWEEP_OTHER, now);
}

/*
 * control.c - control connections: libpq driven by libevent, never blocking.
 *
 * A control_conn moves through DOWN -> RESOLVING -> CONNECTING -> IDLE <->
 * BUSY and back to DOWN when the connection breaks, times out or is reset.
 * Its queue's head is the running query: the connection is opened for it when
 * needed, its deadline timer covers connecting and running, and its callback
 * is called by finish() once it is over.
 *
 * Three rules keep the loop from blocking:
 * - libpq resolves host names with a blocking getaddrinfo(), so names are
 *   resolved here with evdns and handed to libpq as hostaddr (with the name
 *   kept in host, for certificate checks and the password file);
 * - libpq is only used through PQconnectStartParams/PQconnectPoll,
 *   PQsendQuery/PQflush/PQconsumeInput/PQgetResult on a non-blocking socket;
 * - a query is never cancelled with PQcancel (which connects and waits):
 *   its connection is closed instead, and the next query opens a new one.
 *
 * Callbacks run from libevent callbacks only (the queue is started through
 * the "kick" event, never from control_conn_query itself), and a callback may
 * reset or free its control_conn: finish() touches nothing but the
 * control_conn's flags after calling out, and a free asked for during a
 * callback is carried out when the callback returns.
 *
 * This file is that state machine: the queue, the deadline timer, failing
 * and finishing the head query, running queries and the API.  Opening a
 * connection (planning hosts, evdns, PQconnectPoll) is control_connect.c,
 * the message texts are control_text.c, and the struct they all share is in
 * control_int.h.
 */
#include "admin/cutover/control.h"
#include "admin/cutover/control_int.h"
#include "protocol/sqlstate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "proxy/core/log.h"

static void control_io_cb(evutil_socket_t fd, short what, void *arg);

/* Monotonic microseconds, for deadlines immune to clock changes. */
int64_t control_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Stop watching the socket. */
static void control_unwatch(struct control_conn *cc)
{
	if (cc->io_ev != NULL) {
		event_free(cc->io_ev);
		cc->io_ev = NULL;
	}
	cc->io_what = 0;
}

/*
 * Wait for what on the connection's socket.  The event is recreated when
 * renew is set (while connecting, libpq may close its socket and open another
 * one, possibly with the same number, for the next address) or when what
 * changes.
 */
bool control_watch(struct control_conn *cc, short what, bool renew)
{
	int fd;

	if (!renew && cc->io_ev != NULL && cc->io_what == what)
		return true;
	control_unwatch(cc);
	fd = PQsocket(cc->conn);
	if (fd < 0)
		return false;
	cc->io_ev = event_new(cc->base, fd, what | EV_PERSIST, control_io_cb, cc);
	if (cc->io_ev == NULL || event_add(cc->io_ev, NULL) != 0) {
		control_unwatch(cc);
		return false;
	}
	cc->io_what = what;
	return true;
}

/*
 * Close whatever is open or under way (lookup, connection, partial results)
 * and go DOWN.  Leaves the queue and the head's deadline alone.
 */
void control_close(struct control_conn *cc)
{
	if (cc->dns_pending != NULL) {
		struct control_dns *d = cc->dns_pending;

		/* evdns still calls back, with EVUTIL_EAI_CANCEL; d is freed there */
		d->cc = NULL;
		cc->dns_pending = NULL;
		if (d->req != NULL)
			evdns_getaddrinfo_cancel(d->req);
	}
	control_unwatch(cc);
	if (cc->conn != NULL) {
		/* non-blocking by now, so the Terminate message cannot block either */
		PQfinish(cc->conn);
		cc->conn = NULL;
	}
	PQclear(cc->last);
	cc->last = NULL;
	free(cc->err_msg);
	cc->err_msg = NULL;
	cc->err_state[0] = '\0';
	cc->flushing = false;
	control_free_hosts(cc);
	cc->resolve_next = 0;
	cc->dns_error[0] = '\0';
	cc->connect_deadline_us = 0;
	cc->state = CONTROL_DOWN;
}

/* Arm the timer for the sooner of the head's deadline and the connect timeout. */
void control_arm_timer(struct control_conn *cc)
{
	int64_t when = cc->head_deadline_us;
	int64_t left;
	struct timeval tv;

	if (cc->connect_deadline_us != 0 && (when == 0 || cc->connect_deadline_us < when))
		when = cc->connect_deadline_us;
	if (when == 0) {
		evtimer_del(cc->timer);
		return;
	}
	left = when - control_now_us();
	if (left < 0)
		left = 0;
	tv.tv_sec = left / 1000000;
	tv.tv_usec = left % 1000000;
	evtimer_add(cc->timer, &tv);
}

static void control_destroy(struct control_conn *cc);

/*
 * The head query is over: unlink it and call its callback.  The message is
 * copied and res owned here, because the callback may reset or free cc,
 * which frees what cc holds.  After this returns the caller must not touch
 * cc: it may be gone.
 */
void control_finish(struct control_conn *cc, bool ok, const char *sqlstate, const char *error,
		    PGresult *res)
{
	struct control_query *q = cc->head;
	struct control_result r;
	char msg[CONTROL_MSG_MAX];

	cc->head = q->next;
	if (cc->head == NULL)
		cc->tailp = &cc->head;
	cc->head_started = false;
	cc->head_deadline_us = 0;
	evtimer_del(cc->timer);

	memset(&r, 0, sizeof(r));
	r.ok = ok;
	if (!ok) {
		snprintf(r.sqlstate, sizeof(r.sqlstate), "%s", sqlstate);
		control_one_line(msg, sizeof(msg), error);
		r.error = msg;
		log_debug("control connection %s: query failed: %s: %s", cc->label, r.sqlstate, msg);
	} else {
		r.res = res;
	}

	cc->in_callback++;
	q->cb(q->arg, &r);
	cc->in_callback--;

	PQclear(res);
	free(q->sql);
	free(q);
	if (cc->free_pending) {
		if (cc->in_callback == 0)
			control_destroy(cc);
		return;
	}
	if (cc->head != NULL)
		event_active(cc->kick, EV_TIMEOUT, 0);
}

/* Fail the head query with a formatted message, after closing the connection if close. */
void control_fail(struct control_conn *cc, bool close, const char *sqlstate, const char *fmt, ...)
{
	char msg[CONTROL_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (close)
		control_close(cc);
	control_finish(cc, false, sqlstate, msg, NULL);
}

/* The connection failed while connecting: report libpq's reason and go DOWN. */
void control_fail_connect(struct control_conn *cc)
{
	char state[6];
	char msg[CONTROL_MSG_MAX];

	control_connect_error(cc, state, msg, sizeof(msg));
	control_close(cc);
	control_finish(cc, false, state, msg, NULL);
}

/* The connection broke while connected: 08006 with libpq's reason, go DOWN. */
void control_fail_broken(struct control_conn *cc, const char *why)
{
	char msg[CONTROL_MSG_MAX];
	char where[300];
	char reason[CONTROL_MSG_MAX - 300 - 40]; /* so that msg always holds the whole line */

	control_endpoint(cc, where, sizeof(where));
	if (why != NULL)
		control_one_line(reason, sizeof(reason), why);
	else
		control_first_line(reason, sizeof(reason), PQerrorMessage(cc->conn));
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "connection lost");
	snprintf(msg, sizeof(msg), "control connection to %s was lost: %s", where, reason);
	log_debug("control connection %s: %s", cc->label, msg);
	control_close(cc);
	control_finish(cc, false, SQLSTATE_CONNECTION_FAILURE, msg, NULL);
}

/* -- running queries --------------------------------------------------------- */

/* Send as much of the query as the socket takes; then wait for the results. */
static void control_flush(struct control_conn *cc)
{
	int rc = PQflush(cc->conn);

	if (rc < 0) {
		control_fail_broken(cc, NULL);
		return;
	}
	cc->flushing = rc > 0;
	/* while flushing, read too: the server may be waiting for us to read */
	if (!control_watch(cc, rc > 0 ? (EV_READ | EV_WRITE) : EV_READ, false))
		control_fail_broken(cc, "could not watch the connection's socket");
}

static void control_send(struct control_conn *cc)
{
	PQclear(cc->last);
	cc->last = NULL;
	free(cc->err_msg);
	cc->err_msg = NULL;
	cc->err_state[0] = '\0';
	if (!PQsendQuery(cc->conn, cc->head->sql)) {
		control_fail_broken(cc, NULL);
		return;
	}
	cc->state = CONTROL_BUSY;
	control_flush(cc);
}

/* Hand the notifications libpq has collected to the notify callback (or drop them). */
static void control_deliver_notifies(struct control_conn *cc)
{
	PGnotify *n;

	while ((n = PQnotifies(cc->conn)) != NULL) {
		if (cc->notify_cb)
			cc->notify_cb(cc->notify_arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

/* All results are in (PQgetResult() returned NULL): report them. */
static void control_query_done(struct control_conn *cc)
{
	PGresult *res;

	if (PQstatus(cc->conn) == CONNECTION_BAD) {
		char why[CONTROL_MSG_MAX];

		snprintf(why, sizeof(why), "%s", cc->err_msg ? cc->err_msg : "");
		control_fail_broken(cc, why[0] ? why : NULL);
		return;
	}
	cc->state = CONTROL_IDLE;
	if (!control_watch(cc, EV_READ, false)) {
		control_fail_broken(cc, "could not watch the connection's socket");
		return;
	}
	control_deliver_notifies(cc);
	if (cc->err_msg != NULL) {
		char msg[CONTROL_MSG_MAX];
		char state[6];

		memcpy(state, cc->err_state, sizeof(state));
		snprintf(msg, sizeof(msg), "%s", cc->err_msg);
		free(cc->err_msg);
		cc->err_msg = NULL;
		PQclear(cc->last);
		cc->last = NULL;
		control_finish(cc, false, state, msg, NULL);
		return;
	}
	res = cc->last;
	cc->last = NULL;
	control_finish(cc, true, NULL, NULL, res);
}

/* Readable or writable while the query runs. */
static void control_query_io(struct control_conn *cc, short what)
{
	if ((what & EV_READ) && !PQconsumeInput(cc->conn)) {
		control_fail_broken(cc, NULL);
		return;
	}
	if (cc->flushing) {
		int rc = PQflush(cc->conn);

		if (rc < 0) {
			control_fail_broken(cc, NULL);
			return;
		}
		if (rc == 0) {
			cc->flushing = false;
			if (!control_watch(cc, EV_READ, false)) {
				control_fail_broken(cc, "could not watch the connection's socket");
				return;
			}
		}
	}
	while (!PQisBusy(cc->conn)) {
		PGresult *res = PQgetResult(cc->conn);
		const char *state;
		const char *primary;

		if (res == NULL) {
			control_query_done(cc);
			return;
		}
		switch (PQresultStatus(res)) {
		case PGRES_FATAL_ERROR:
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			if (cc->err_msg == NULL) {
				char line[CONTROL_MSG_MAX];

				if (primary != NULL)
					control_one_line(line, sizeof(line), primary);
				else
					control_first_line(line, sizeof(line),
							   PQresultErrorMessage(res));
				cc->err_msg = strdup(line[0] ? line : "query failed");
				/* an error libpq made up itself (no SQLSTATE) is about the connection */
				snprintf(cc->err_state, sizeof(cc->err_state), "%s",
					 state && control_is_sqlstate(state)
						 ? state
						 : SQLSTATE_CONNECTION_FAILURE);
				if (cc->err_msg == NULL) {
					PQclear(res);
					control_fail_broken(cc, "out of memory");
					return;
				}
			}
			PQclear(res);
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			/* nothing here would feed or drain it: drop the connection */
			PQclear(res);
			control_fail(cc, true, SQLSTATE_FEATURE_NOT_SUPPORTED,
				     "COPY is not supported on control connections");
			return;
		default:
			PQclear(cc->last);
			cc->last = res;
			break;
		}
	}
	if (cc->err_state[0] != '\0' && strcmp(cc->err_state, SQLSTATE_CONNECTION_FAILURE) == 0 &&
	    PQstatus(cc->conn) == CONNECTION_BAD) {
		/* libpq gave up on the connection; no more results will come */
		char why[CONTROL_MSG_MAX];

		snprintf(why, sizeof(why), "%s", cc->err_msg);
		control_fail_broken(cc, why);
	}
}

/* Readable while idle: a notice, a notification, or the server going away. */
static void control_idle_io(struct control_conn *cc)
{
	if (!PQconsumeInput(cc->conn) || PQstatus(cc->conn) == CONNECTION_BAD) {
		char why[CONTROL_MSG_MAX];

		control_first_line(why, sizeof(why), PQerrorMessage(cc->conn));
		log_debug("control connection %s: closed while idle: %s", cc->label,
			  why[0] ? why : "connection lost");
		control_close(cc);
		return;
	}
	control_deliver_notifies(cc);
}

static void control_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_conn *cc = arg;

	(void)fd;
	switch (cc->state) {
	case CONTROL_CONNECTING:
		control_connect_poll(cc);
		break;
	case CONTROL_BUSY:
		control_query_io(cc, what);
		break;
	case CONTROL_IDLE:
		control_idle_io(cc);
		break;
	default:
		break;
	}
}

/* The head's deadline, or the connect timeout, has come. */
static void control_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_conn *cc = arg;
	int64_t now = control_now_us();
	char where[300];

	(void)fd;
	(void)what;
	if (cc->head == NULL || !cc->head_started)
		return;
	control_endpoint(cc, where, sizeof(where));
	/* 1 ms of slack: libevent may wake up a hair early */
	if (cc->head_deadline_us != 0 && now + 1000 >= cc->head_deadline_us) {
		long long ms = (long long)cc->head->timeout_ms;

		switch (cc->state) {
		case CONTROL_RESOLVING:
			control_fail(cc, true, SQLSTATE_QUERY_CANCELED,
				     "canceling control query: timeout of %lld ms expired while resolving the host name of %s",
				     ms, where);
			break;
		case CONTROL_CONNECTING:
			control_fail(cc, true, SQLSTATE_QUERY_CANCELED,
				     "canceling control query: timeout of %lld ms expired while connecting to %s",
				     ms, where);
			break;
		default:
			log_debug("control connection %s: query timed out, closing the connection",
				  cc->label);
			control_fail(cc, true, SQLSTATE_QUERY_CANCELED,
				     "canceling control query: timeout of %lld ms expired waiting for %s",
				     ms, where);
			break;
		}
		return;
	}
	if (cc->connect_deadline_us != 0 && now + 1000 >= cc->connect_deadline_us &&
	    (cc->state == CONTROL_RESOLVING || cc->state == CONTROL_CONNECTING)) {
		control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE,
			     "could not connect to %s: timeout expired", where);
		return;
	}
	control_arm_timer(cc);
}

/*
 * Move the head query along: start its deadline, open a connection for it,
 * or send it.  Runs from the kick event and after connecting.
 */
void control_service(struct control_conn *cc)
{
	if (cc->head == NULL || cc->free_pending)
		return;
	if (!cc->head_started) {
		cc->head_started = true;
		cc->head_deadline_us = cc->head->timeout_ms > 0
					       ? control_now_us() + cc->head->timeout_ms * 1000
					       : 0;
		control_arm_timer(cc);
	}
	switch (cc->state) {
	case CONTROL_DOWN:
		control_connect_begin(cc);
		break;
	case CONTROL_RESOLVING:
		if (cc->dns_pending == NULL)
			control_resolve_next(cc);
		break;
	case CONTROL_IDLE:
		control_send(cc);
		break;
	case CONTROL_CONNECTING:
	case CONTROL_BUSY:
		break;
	}
}

static void control_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	control_service(arg);
}

/* -- API ------------------------------------------------------------------------ */

struct control_conn *control_conn_new(struct event_base *base, struct evdns_base *dns,
				      const char *conninfo, const char *label)
{
	struct control_conn *cc = calloc(1, sizeof(*cc));
	char *errmsg = NULL;
	const char *ct;

	if (cc == NULL)
		return NULL;
	cc->base = base;
	cc->dns = dns;
	cc->tailp = &cc->head;
	cc->state = CONTROL_DOWN;
	cc->label = strdup(label ? label : "control");
	cc->timer = evtimer_new(base, control_timer_cb, cc);
	cc->kick = event_new(base, -1, 0, control_kick_cb, cc);
	if (cc->label == NULL || cc->timer == NULL || cc->kick == NULL) {
		control_destroy(cc);
		return NULL;
	}
	cc->opts = PQconninfoParse(conninfo ? conninfo : "", &errmsg);
	if (cc->opts == NULL) {
		char line[CONTROL_MSG_MAX];

		/* errmsg is NULL when libpq ran out of memory */
		if (errmsg != NULL) {
			control_one_line(line, sizeof(line), errmsg);
			PQfreemem(errmsg);
			cc->opts_error = strdup(line);
		}
		log_warning("control connection %s: invalid connection string: %s", cc->label,
			    cc->opts_error ? cc->opts_error : "out of memory");
	} else if ((ct = control_opt(cc, "connect_timeout")) != NULL) {
		long secs = strtol(ct, NULL, 10);

		/* libpq's rule: below 2 s means 2 s, 0 or less means none */
		if (secs > 0)
			cc->connect_timeout_ms = (int64_t)(secs < 2 ? 2 : secs) * 1000;
	}
	return cc;
}

bool control_conn_query(struct control_conn *cc, const char *sql, int64_t timeout_ms, control_cb cb,
			void *arg)
{
	struct control_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return false;
	q->sql = strdup(sql);
	if (q->sql == NULL) {
		free(q);
		return false;
	}
	q->timeout_ms = timeout_ms;
	q->cb = cb;
	q->arg = arg;
	*cc->tailp = q;
	cc->tailp = &q->next;
	/* never from here: the caller may not expect its callback yet */
	if (cc->head == q && !cc->free_pending)
		event_active(cc->kick, EV_TIMEOUT, 0);
	return true;
}

void control_conn_reset(struct control_conn *cc)
{
	struct control_query *q;

	if (cc == NULL)
		return;
	q = cc->head;
	while (q != NULL) {
		struct control_query *next = q->next;

		free(q->sql);
		free(q);
		q = next;
	}
	cc->head = NULL;
	cc->tailp = &cc->head;
	cc->head_started = false;
	cc->head_deadline_us = 0;
	if (cc->timer != NULL)
		evtimer_del(cc->timer);
	if (cc->kick != NULL)
		event_del(cc->kick);
	if (cc->state != CONTROL_DOWN)
		log_debug("control connection %s: closing", cc->label);
	control_close(cc);
}

static void control_destroy(struct control_conn *cc)
{
	control_conn_reset(cc);
	if (cc->timer != NULL)
		event_free(cc->timer);
	if (cc->kick != NULL)
		event_free(cc->kick);
	PQconninfoFree(cc->opts);
	free(cc->opts_error);
	free(cc->label);
	free(cc);
}

void control_conn_free(struct control_conn *cc)
{
	if (cc == NULL)
		return;
	if (cc->in_callback > 0) {
		/* control_finish() frees it once the callback returns */
		control_conn_reset(cc);
		cc->free_pending = true;
		return;
	}
	control_destroy(cc);
}

void control_conn_on_notify(struct control_conn *cc, control_notify_cb cb, void *arg)
{
	cc->notify_cb = cb;
	cc->notify_arg = arg;
}

bool control_conn_is_up(const struct control_conn *cc)
{
	return cc->state == CONTROL_IDLE || cc->state == CONTROL_BUSY;
}

const char *control_conn_label(const struct control_conn *cc)
{
	return cc->label;
}

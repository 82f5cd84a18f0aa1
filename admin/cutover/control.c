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
 */
#include "admin/cutover/control.h"
#include "protocol/sqlstate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "proxy/core/log.h"

/* Longest error message handed to a callback; longer ones are cut. */
#define CONTROL_MSG_MAX 1024

enum control_state {
	CONTROL_DOWN,       /* no connection */
	CONTROL_RESOLVING,  /* resolving host names with evdns before connecting */
	CONTROL_CONNECTING, /* PQconnectPoll() under way */
	CONTROL_IDLE,       /* connected, no query running */
	CONTROL_BUSY,       /* connected, the head query is running */
};

/* One queued query. */
struct control_query {
	struct control_query *next; /* next in FIFO order */
	char *sql;                  /* our copy: the caller's string may not outlive the call */
	int64_t timeout_ms;         /* <= 0: no deadline */
	control_cb cb;
	void *arg;
};

/*
 * One entry of libpq's host list while it is being resolved.  libpq pairs the
 * comma lists host, hostaddr and port by position; a name resolving to
 * several addresses becomes as many entries, so libpq still tries them all.
 */
struct control_host {
	char *host;     /* as given: a name, a numeric address, a socket directory or "" */
	char *addr;     /* hostaddr given for this entry, "" when none */
	char *port;     /* this entry's port when ports are given per host, else NULL */
	bool needs_dns; /* a name with no hostaddr: evdns must resolve it */
	char **found;   /* addresses evdns found for it (numeric strings) */
	int nfound;
};

/*
 * One evdns lookup.  Separate from the control_conn because evdns calls back
 * even after evdns_getaddrinfo_cancel() (with EVUTIL_EAI_CANCEL), possibly
 * after the control_conn is gone: cc is then NULL and the callback only frees.
 */
struct control_dns {
	struct control_conn *cc;               /* owner, NULL once abandoned */
	struct evdns_getaddrinfo_request *req; /* for cancelling; NULL if answered at once */
	int index;                             /* which control_host it resolves */
};

struct control_conn {
	struct event_base *base;
	struct evdns_base *dns;     /* NULL: numeric hosts and sockets only */
	char *label;                /* "app source", for logs */
	PQconninfoOption *opts;     /* the parsed conninfo; NULL when it did not parse */
	char *opts_error;           /* why it did not parse, reported by every query */
	int64_t connect_timeout_ms; /* conninfo's connect_timeout, which libpq only
				     * enforces in blocking calls; 0 = none */

	enum control_state state;
	PGconn *conn;        /* NULL while DOWN or RESOLVING */
	struct event *io_ev; /* on PQsocket(conn), recreated when the socket may change */
	short io_what;       /* EV_READ/EV_WRITE io_ev waits for */
	struct event *timer; /* the head query's deadline, or the connect timeout if sooner */
	struct event *kick;  /* runs control_service() from the loop */

	struct control_query *head;   /* running (once started) or next to run */
	struct control_query **tailp; /* where the next query is linked */
	bool head_started;            /* head's deadline is counting */
	int64_t head_deadline_us;     /* monotonic; 0 = none */
	int64_t connect_deadline_us;  /* monotonic; 0 = none */

	struct control_host *hosts; /* host list being resolved or connected to */
	int nhosts;
	int port_mode;                   /* 0: no port, 1: one port for all, 2: one per host */
	char *port_all;                  /* the single port when port_mode == 1 */
	bool passthrough;                /* lists libpq will reject anyway: pass them unchanged */
	int resolve_next;                /* next control_host to look at for resolving */
	struct control_dns *dns_pending; /* the lookup in flight */
	char dns_error[256];             /* the last failed lookup, reported if no host is left */

	bool flushing;     /* the query is not all sent yet */
	PGresult *last;    /* last result of the running query */
	char err_state[6]; /* first error of the running query: its SQLSTATE */
	char *err_msg;     /* and its primary message; NULL when none */

	int in_callback;   /* a query callback is running */
	bool free_pending; /* control_conn_free() was called from a callback */
};

static void control_service(struct control_conn *cc);
static const char *control_opt(const struct control_conn *cc, const char *keyword);
static void control_io_cb(evutil_socket_t fd, short what, void *arg);

/* Monotonic microseconds, for deadlines immune to clock changes. */
static int64_t control_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Copy s onto one line: newlines and tabs become spaces, the end is trimmed. */
static void control_one_line(char *dst, size_t len, const char *s)
{
	size_t n = 0;

	if (len == 0)
		return;
	for (; s != NULL && *s != '\0' && n + 1 < len; s++) {
		char ch = *s;

		if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		if (ch == ' ' && (n == 0 || dst[n - 1] == ' '))
			continue;
		dst[n++] = ch;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* The first line of a libpq message ("server closed the connection unexpectedly"). */
static void control_first_line(char *dst, size_t len, const char *s)
{
	size_t n = s ? strcspn(s, "\n") : 0;

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
	control_one_line(dst, len, dst);
}

static bool control_is_sqlstate(const char *s)
{
	for (int i = 0; i < 5; i++) {
		if (!(isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])))
			return false;
	}
	return true;
}

/*
 * In a line of libpq's connection error, find the server's "SEVERITY:
 * SQLSTATE: message" (the verbose form, asked for while connecting so that
 * authentication failures keep their SQLSTATE).  Returns the message and
 * stores the SQLSTATE, or returns NULL.
 */
static const char *control_find_server_error(const char *line, size_t linelen, char *sqlstate)
{
	const char *end = line + linelen;

	for (const char *p = line; p + 3 + 5 + 2 <= end; p++) {
		const char *code = p + 3;

		if (memcmp(p, ":  ", 3) != 0 || p == line || !isupper((unsigned char)p[-1]))
			continue;
		if (control_is_sqlstate(code) && code[5] == ':' && code[6] == ' ') {
			memcpy(sqlstate, code, 5);
			sqlstate[5] = '\0';
			return code + 7;
		}
	}
	return NULL;
}

/* Growing string, with a sticky failure flag so callers check once. */
struct control_str {
	char *p;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: p is unusable */
};

static void control_str_add(struct control_str *s, const char *add, size_t n)
{
	if (s->failed)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char *p;

		while (cap < s->len + n + 1)
			cap *= 2;
		p = realloc(s->p, cap);
		if (p == NULL) {
			s->failed = true;
			return;
		}
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, add, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void control_str_cat(struct control_str *s, const char *add)
{
	control_str_add(s, add, strlen(add));
}

/* Where the connection goes, for messages: "127.0.0.1:5433", "[::1]:5433", a socket. */
static void control_endpoint(const struct control_conn *cc, char *buf, size_t len)
{
	const char *host = NULL;
	const char *port = NULL;

	if (cc->conn != NULL) {
		host = PQhost(cc->conn);
		port = PQport(cc->conn);
	}
	if ((host == NULL || host[0] == '\0') && cc->nhosts > 0) {
		host = cc->hosts[0].host[0] ? cc->hosts[0].host : cc->hosts[0].addr;
		port = cc->port_mode == 2 ? cc->hosts[0].port : cc->port_all;
	}
	if (host == NULL || host[0] == '\0') {
		/* no plan yet (or lists passed through): the conninfo as written */
		host = control_opt(cc, "host");
		if (host == NULL || host[0] == '\0')
			host = control_opt(cc, "hostaddr");
		port = control_opt(cc, "port");
	}
	if (host == NULL || host[0] == '\0')
		host = "localhost";
	if (port == NULL || port[0] == '\0')
		port = "5432";
	if (host[0] == '/' || host[0] == '@')
		snprintf(buf, len, "socket \"%s/.s.PGSQL.%s\"", host, port);
	else if (strchr(host, ':') != NULL)
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
}

/*
 * libpq's message for a failed connection attempt, made into one line
 * "could not connect to HOST:PORT: REASON" with the server's SQLSTATE when
 * the server refused us (28P01, 3D000, 53300, 57P03...), else 08006.
 *
 * libpq 15 writes one line per failed attempt, 'connection to server at
 * "h" (a), port p failed: REASON', plus detail lines starting with a tab (and
 * LOCATION lines in verbose mode): the last attempt's reason is the one kept.
 */
static void control_connect_error(const struct control_conn *cc, char *sqlstate, char *msg,
				  size_t len)
{
	const char *all = cc->conn ? PQerrorMessage(cc->conn) : "";
	const char *best = NULL;
	size_t best_len = 0;
	char state[6] = SQLSTATE_CONNECTION_FAILURE;
	char reason[CONTROL_MSG_MAX];
	char where[300];

	const char *srv_line = NULL, *failed_line = NULL;
	size_t srv_len = 0, failed_len = 0, first_len = strcspn(all, "\n");

	for (const char *line = all; *line != '\0';) {
		size_t n = strcspn(line, "\n");
		char probe[6];

		if (control_find_server_error(line, n, probe) != NULL) {
			srv_line = line;
			srv_len = n;
		} else if (line[0] != '\t' && line[0] != ' ' && memmem(line, n, "failed: ", 8)) {
			failed_line = line;
			failed_len = n;
		}
		line += n;
		if (*line == '\n')
			line++;
	}
	/* the server's own words beat an attempt's summary, which beats anything */
	if (srv_line != NULL) {
		best = srv_line;
		best_len = srv_len;
	} else if (failed_line != NULL) {
		best = failed_line;
		best_len = failed_len;
	} else if (all[0] != '\0') {
		best = all;
		best_len = first_len;
	}
	reason[0] = '\0';
	if (best != NULL) {
		const char *r = best;
		const char *end = best + best_len;
		const char *f = memmem(best, best_len, "failed: ", 8);
		const char *srv = control_find_server_error(best, best_len, state);

		if (srv != NULL)
			r = srv;
		else if (f != NULL)
			r = f + 8;
		snprintf(reason, sizeof(reason), "%.*s", (int)(end - r), r);
		control_one_line(reason, sizeof(reason), reason);
	}
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "connection failed");
	control_endpoint(cc, where, sizeof(where));
	memcpy(sqlstate, state, 6);
	snprintf(msg, len, "could not connect to %s: %s", where, reason);
}

static void control_free_hosts(struct control_conn *cc)
{
	for (int i = 0; i < cc->nhosts; i++) {
		free(cc->hosts[i].host);
		free(cc->hosts[i].addr);
		free(cc->hosts[i].port);
		for (int j = 0; j < cc->hosts[i].nfound; j++)
			free(cc->hosts[i].found[j]);
		free(cc->hosts[i].found);
	}
	free(cc->hosts);
	cc->hosts = NULL;
	cc->nhosts = 0;
	free(cc->port_all);
	cc->port_all = NULL;
	cc->port_mode = 0;
	cc->passthrough = false;
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
static bool control_watch(struct control_conn *cc, short what, bool renew)
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
static void control_close(struct control_conn *cc)
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
static void control_arm_timer(struct control_conn *cc)
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
static void control_finish(struct control_conn *cc, bool ok, const char *sqlstate,
			   const char *error, PGresult *res)
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
static void control_fail(struct control_conn *cc, bool close, const char *sqlstate, const char *fmt,
			 ...) __attribute__((format(printf, 4, 5)));

static void control_fail(struct control_conn *cc, bool close, const char *sqlstate, const char *fmt,
			 ...)
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
static void control_fail_connect(struct control_conn *cc)
{
	char state[6];
	char msg[CONTROL_MSG_MAX];

	control_connect_error(cc, state, msg, sizeof(msg));
	control_close(cc);
	control_finish(cc, false, state, msg, NULL);
}

/* The connection broke while connected: 08006 with libpq's reason, go DOWN. */
static void control_fail_broken(struct control_conn *cc, const char *why)
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

static void control_notice(void *arg, const char *message)
{
	struct control_conn *cc = arg;
	char line[CONTROL_MSG_MAX];

	if (LOG_DEBUG > log_level_current)
		return;
	control_one_line(line, sizeof(line), message);
	log_debug("control connection %s: %s", cc->label, line);
}

/* -- connecting ------------------------------------------------------------- */

static bool control_is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* libpq's idea of a unix socket: an absolute directory, or @ for the abstract namespace. */
static bool control_is_socket(const char *host)
{
	return host[0] == '/' || host[0] == '@';
}

static const char *control_opt(const struct control_conn *cc, const char *keyword)
{
	for (const PQconninfoOption *o = cc->opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, keyword) == 0)
			return o->val;
	}
	return NULL;
}

/* Split a comma list; an absent list is NULL with *n = 0. */
static char **control_split(const char *list, int *n)
{
	char **v;
	int count = 1;
	int i = 0;

	*n = 0;
	if (list == NULL)
		return NULL;
	for (const char *p = list; *p; p++)
		count += *p == ',';
	v = calloc((size_t)count, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (const char *p = list;; i++) {
		size_t len = strcspn(p, ",");

		v[i] = strndup(p, len);
		if (v[i] == NULL) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return NULL;
		}
		p += len;
		if (*p == '\0')
			break;
		p++;
	}
	*n = count;
	return v;
}

static void control_free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Build cc->hosts from the conninfo (or PGHOST/PGHOSTADDR, as libpq would)
 * and mark the names evdns must resolve.  Lists whose lengths do not match
 * are passed through unchanged: libpq rejects them before resolving anything.
 */
static bool control_plan(struct control_conn *cc, char *err, size_t errlen)
{
	const char *host = control_opt(cc, "host");
	const char *hostaddr = control_opt(cc, "hostaddr");
	const char *port = control_opt(cc, "port");
	char **hv = NULL, **av = NULL, **pv = NULL;
	int nh = 0, na = 0, np = 0, n;
	bool ok = false;

	/*
	 * The lists are always handed to libpq explicitly, so libpq never fills
	 * them from the environment behind our back (and resolves a name there).
	 * A service file could hold a host name too: it is not supported.
	 */
	if (control_opt(cc, "service") != NULL) {
		snprintf(err, errlen,
			 "service is not supported on control connections: give host and port");
		return false;
	}
	if (host == NULL)
		host = getenv("PGHOST");
	if (hostaddr == NULL)
		hostaddr = getenv("PGHOSTADDR");
	if (host != NULL && host[0] == '\0')
		host = NULL;
	if (hostaddr != NULL && hostaddr[0] == '\0')
		hostaddr = NULL;
	if (port != NULL && port[0] == '\0')
		port = NULL;

	hv = control_split(host, &nh);
	av = control_split(hostaddr, &na);
	pv = control_split(port, &np);
	if ((host && !hv) || (hostaddr && !av) || (port && !pv)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = na > 0 ? na : nh > 0 ? nh : 1;
	if ((na > 0 && nh > 0 && na != nh) || (np > 1 && np != n)) {
		cc->passthrough = true;
		ok = true;
		goto out;
	}
	cc->hosts = calloc((size_t)n, sizeof(*cc->hosts));
	if (cc->hosts == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	cc->nhosts = n;
	cc->port_mode = np == 0 ? 0 : np == 1 ? 1 : 2;
	if (np == 1 && (cc->port_all = strdup(pv[0])) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct control_host *h = &cc->hosts[i];

		h->host = strdup(nh > 0 ? hv[i] : "");
		h->addr = strdup(na > 0 ? av[i] : "");
		h->port = np > 1 ? strdup(pv[i]) : NULL;
		if (h->host == NULL || h->addr == NULL || (np > 1 && h->port == NULL)) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		h->needs_dns = h->addr[0] == '\0' && h->host[0] != '\0' &&
			       !control_is_socket(h->host) && !control_is_numeric(h->host);
		if (h->needs_dns && cc->dns == NULL) {
			snprintf(err, errlen,
				 "could not translate host name \"%s\" to address: cannot resolve host names without a resolver",
				 h->host);
			goto out;
		}
	}
	ok = true;
out:
	control_free_list(hv, nh);
	control_free_list(av, na);
	control_free_list(pv, np);
	return ok;
}

static bool control_skip_keyword(const char *kw)
{
	static const char *const skip[] = {
		"host",
		"hostaddr",
		"port",
		"connect_timeout",
	};

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		if (strcmp(kw, skip[i]) == 0)
			return true;
	}
	return false;
}

/*
 * The host, hostaddr and port lists for libpq: each resolved name expands to
 * one entry per address, with the name kept in host.
 */
static bool control_lists(struct control_conn *cc, struct control_str *hs, struct control_str *as,
			  struct control_str *ps, bool *any_addr, int *entries)
{
	int count = 0;

	*any_addr = false;
	for (int i = 0; i < cc->nhosts; i++) {
		struct control_host *h = &cc->hosts[i];
		int k = h->needs_dns ? h->nfound : 1;

		for (int j = 0; j < k; j++) {
			const char *addr = h->needs_dns ? h->found[j] : h->addr;

			if (count > 0) {
				control_str_cat(hs, ",");
				control_str_cat(as, ",");
				control_str_cat(ps, ",");
			}
			control_str_cat(hs, h->host);
			control_str_cat(as, addr);
			if (cc->port_mode == 2)
				control_str_cat(ps, h->port);
			if (addr[0] != '\0')
				*any_addr = true;
			count++;
		}
	}
	*entries = count;
	/* empty strings must still be valid pointers */
	control_str_cat(hs, "");
	control_str_cat(as, "");
	control_str_cat(ps, "");
	return !(hs->failed || as->failed || ps->failed);
}

/* All names resolved: start libpq's connection with the final lists. */
static void control_connect_start(struct control_conn *cc)
{
	struct control_str hs = {0}, as = {0}, ps = {0};
	const char **kw = NULL, **val = NULL;
	size_t nopts = 0, n = 0;
	bool any_addr = false;
	int entries = 0;

	for (const PQconninfoOption *o = cc->opts; o->keyword != NULL; o++)
		nopts++;
	kw = calloc(nopts + 8, sizeof(*kw));
	val = calloc(nopts + 8, sizeof(*val));
	if (kw == NULL || val == NULL)
		goto oom;

	for (const PQconninfoOption *o = cc->opts; o->keyword != NULL; o++) {
		if (o->val == NULL || control_skip_keyword(o->keyword))
			continue;
		kw[n] = o->keyword;
		val[n++] = o->val;
	}
	if (cc->passthrough) {
		static const char *const keep[] = {"host", "hostaddr", "port"};

		for (size_t i = 0; i < 3; i++) {
			const char *v = control_opt(cc, keep[i]);

			if (v != NULL) {
				kw[n] = keep[i];
				val[n++] = v;
			}
		}
	} else {
		if (!control_lists(cc, &hs, &as, &ps, &any_addr, &entries))
			goto oom;
		if (entries == 0) {
			char msg[CONTROL_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s",
				 cc->dns_error[0] ? cc->dns_error : "no host to connect to");
			free(kw);
			free(val);
			free(hs.p);
			free(as.p);
			free(ps.p);
			control_close(cc);
			control_finish(cc, false, SQLSTATE_CONNECTION_FAILURE, msg, NULL);
			return;
		}
		/* even when empty: an empty host is libpq's default socket, not PGHOST */
		kw[n] = "host";
		val[n++] = hs.p;
		kw[n] = "hostaddr";
		val[n++] = any_addr ? as.p : "";
		if (cc->port_mode == 1) {
			kw[n] = "port";
			val[n++] = cc->port_all;
		} else if (cc->port_mode == 2) {
			kw[n] = "port";
			val[n++] = ps.p;
		}
	}
	if (control_opt(cc, "application_name") == NULL) {
		kw[n] = "application_name";
		val[n++] = "pgcutover_control";
	}
	if (control_opt(cc, "gssencmode") == NULL) {
		/* GSSAPI encryption may ask a KDC, blocking; it must be asked for explicitly */
		kw[n] = "gssencmode";
		val[n++] = "disable";
	}
	kw[n] = NULL;
	val[n] = NULL;

	cc->conn = PQconnectStartParams(kw, val, 0);
	free(kw);
	free(val);
	kw = val = NULL;
	free(hs.p);
	free(as.p);
	free(ps.p);
	if (cc->conn == NULL) {
		control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE,
			     "could not start a control connection: out of memory");
		return;
	}
	PQsetNoticeProcessor(cc->conn, control_notice, cc);
	/* verbose while connecting: the server's SQLSTATE then reaches the message */
	PQsetErrorVerbosity(cc->conn, PQERRORS_VERBOSE);
	if (PQstatus(cc->conn) == CONNECTION_BAD) {
		control_fail_connect(cc);
		return;
	}
	cc->state = CONTROL_CONNECTING;
	/* as if PQconnectPoll had answered PGRES_POLLING_WRITING */
	if (!control_watch(cc, EV_WRITE, true))
		control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE,
			     "could not watch the control connection's socket");
	return;

oom:
	free(kw);
	free(val);
	free(hs.p);
	free(as.p);
	free(ps.p);
	control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE,
		     "could not start a control connection: out of memory");
}

static void control_dns_cb(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct control_dns *d = arg;
	struct control_conn *cc = d->cc;
	struct control_host *h;

	if (cc == NULL) {
		/* abandoned by control_close() */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		free(d);
		return;
	}
	cc->dns_pending = NULL;
	h = &cc->hosts[d->index];
	if (result != 0) {
		snprintf(cc->dns_error, sizeof(cc->dns_error),
			 "could not translate host name \"%s\" to address: %s", h->host,
			 evutil_gai_strerror(result));
		log_debug("control connection %s: %s", cc->label, cc->dns_error);
	}
	for (struct evutil_addrinfo *a = ai; a != NULL; a = a->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		const void *src;
		char **found;
		bool dup = false;

		if (a->ai_family == AF_INET)
			src = &((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr;
		else if (a->ai_family == AF_INET6)
			src = &((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr;
		else
			continue;
		if (evutil_inet_ntop(a->ai_family, src, buf, sizeof(buf)) == NULL)
			continue;
		for (int j = 0; j < h->nfound; j++)
			dup = dup || strcmp(h->found[j], buf) == 0;
		if (dup)
			continue;
		found = realloc(h->found, (size_t)(h->nfound + 1) * sizeof(*found));
		if (found == NULL)
			break;
		h->found = found;
		if ((h->found[h->nfound] = strdup(buf)) == NULL)
			break;
		h->nfound++;
	}
	if (result == 0 && h->nfound == 0)
		snprintf(cc->dns_error, sizeof(cc->dns_error),
			 "could not translate host name \"%s\" to address: no usable address",
			 h->host);
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	free(d);
	/* maybe called from inside evdns_getaddrinfo(): carry on from the loop */
	event_active(cc->kick, EV_TIMEOUT, 0);
}

/* Resolve the next name that needs it, or connect when none is left. */
static void control_resolve_next(struct control_conn *cc)
{
	struct evutil_addrinfo hints;
	struct control_dns *d;
	struct evdns_getaddrinfo_request *req;
	int i = cc->resolve_next;

	while (i < cc->nhosts && !cc->hosts[i].needs_dns)
		i++;
	if (i >= cc->nhosts) {
		control_connect_start(cc);
		return;
	}
	cc->resolve_next = i + 1;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE,
			     "could not resolve \"%s\": out of memory", cc->hosts[i].host);
		return;
	}
	d->cc = cc;
	d->index = i;
	cc->dns_pending = d;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	log_debug("control connection %s: resolving \"%s\"", cc->label, cc->hosts[i].host);
	req = evdns_getaddrinfo(cc->dns, cc->hosts[i].host, NULL, &hints, control_dns_cb, d);
	/* answered already (hosts file, error): d is freed and the kick is set */
	if (cc->dns_pending == NULL)
		return;
	if (req != NULL) {
		d->req = req;
		return;
	}
	/* no request and no answer: evdns does not do that, but never wait forever */
	cc->dns_pending = NULL;
	free(d);
	snprintf(cc->dns_error, sizeof(cc->dns_error),
		 "could not translate host name \"%s\" to address: lookup failed",
		 cc->hosts[i].host);
	event_active(cc->kick, EV_TIMEOUT, 0);
}

/* The head query needs a connection: plan it, resolve names, connect. */
static void control_connect_begin(struct control_conn *cc)
{
	char err[CONTROL_MSG_MAX];

	if (cc->opts == NULL) {
		control_fail(cc, false, SQLSTATE_CONNECTION_FAILURE, "invalid connection string: %s",
			     cc->opts_error ? cc->opts_error : "out of memory");
		return;
	}
	if (!control_plan(cc, err, sizeof(err))) {
		control_fail(cc, true, SQLSTATE_CONNECTION_FAILURE, "%s", err);
		return;
	}
	log_debug("control connection %s: connecting", cc->label);
	if (cc->connect_timeout_ms > 0) {
		cc->connect_deadline_us = control_now_us() + cc->connect_timeout_ms * 1000;
		control_arm_timer(cc);
	}
	cc->state = CONTROL_RESOLVING;
	cc->resolve_next = 0;
	control_resolve_next(cc);
}

/* One step of PQconnectPoll(), when the socket is ready as it asked. */
static void control_connect_poll(struct control_conn *cc)
{
	switch (PQconnectPoll(cc->conn)) {
	case PGRES_POLLING_READING:
		if (!control_watch(cc, EV_READ, true))
			control_fail_connect(cc);
		return;
	case PGRES_POLLING_WRITING:
		if (!control_watch(cc, EV_WRITE, true))
			control_fail_connect(cc);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		control_fail_connect(cc);
		return;
	}
	if (PQsetnonblocking(cc->conn, 1) != 0 || !control_watch(cc, EV_READ, true)) {
		control_fail_broken(cc, "could not make the connection non-blocking");
		return;
	}
	PQsetErrorVerbosity(cc->conn, PQERRORS_DEFAULT);
	cc->state = CONTROL_IDLE;
	cc->connect_deadline_us = 0;
	control_arm_timer(cc);
	control_free_hosts(cc);
	log_debug("control connection %s: connected to %s:%s (server process %d)", cc->label,
		  PQhost(cc->conn), PQport(cc->conn), PQbackendPID(cc->conn));
	control_service(cc);
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
	PGnotify *n;

	if (!PQconsumeInput(cc->conn) || PQstatus(cc->conn) == CONNECTION_BAD) {
		char why[CONTROL_MSG_MAX];

		control_first_line(why, sizeof(why), PQerrorMessage(cc->conn));
		log_debug("control connection %s: closed while idle: %s", cc->label,
			  why[0] ? why : "connection lost");
		control_close(cc);
		return;
	}
	while ((n = PQnotifies(cc->conn)) != NULL)
		PQfreemem(n);
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
static void control_service(struct control_conn *cc)
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

bool control_conn_is_up(const struct control_conn *cc)
{
	return cc->state == CONTROL_IDLE || cc->state == CONTROL_BUSY;
}

const char *control_conn_label(const struct control_conn *cc)
{
	return cc->label;
}

/* Append value quoted as libpq's conninfo parser expects: '...' with \ and ' escaped. */
static void control_str_quoted(struct control_str *s, const char *value)
{
	control_str_cat(s, "'");
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			control_str_cat(s, "\\");
		control_str_add(s, p, 1);
	}
	control_str_cat(s, "'");
}

char *control_conninfo_with_user(const char *base, const char *user, const char *password)
{
	PQconninfoOption *opts = PQconninfoParse(base ? base : "", NULL);
	struct control_str s = {0};
	bool user_done = false, password_done = false;

	if (opts == NULL)
		return NULL;
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;

		if (strcmp(o->keyword, "user") == 0 && user != NULL) {
			v = user;
			user_done = true;
		} else if (strcmp(o->keyword, "password") == 0 && password != NULL) {
			v = password;
			password_done = true;
		}
		if (v == NULL)
			continue;
		if (s.len > 0)
			control_str_cat(&s, " ");
		control_str_cat(&s, o->keyword);
		control_str_cat(&s, "=");
		control_str_quoted(&s, v);
	}
	/* both are known keywords, so the loop above has seen them: belt and braces */
	if (user != NULL && !user_done) {
		control_str_cat(&s, s.len ? " user=" : "user=");
		control_str_quoted(&s, user);
	}
	if (password != NULL && !password_done) {
		control_str_cat(&s, s.len ? " password=" : "password=");
		control_str_quoted(&s, password);
	}
	control_str_cat(&s, "");
	PQconninfoFree(opts);
	if (s.failed) {
		free(s.p);
		return NULL;
	}
	return s.p;
}

char *control_conninfo_with_defaults(const char *base, const char *const *defaults)
{
	PQconninfoOption *opts = PQconninfoParse(base ? base : "", NULL);
	struct control_str s = {0};

	if (opts == NULL)
		return NULL;
	for (size_t i = 0; defaults[i] != NULL; i += 2) {
		const char *kw = defaults[i], *v = defaults[i + 1];
		bool set = false;

		if (v == NULL)
			continue;
		for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
			if (o->val != NULL && strcmp(o->keyword, kw) == 0)
				set = true;
		if (set)
			continue;
		control_str_cat(&s, kw);
		control_str_cat(&s, "=");
		control_str_quoted(&s, v);
		control_str_cat(&s, " ");
	}
	PQconninfoFree(opts);
	control_str_cat(&s, base ? base : "");
	if (s.failed) {
		free(s.p);
		return NULL;
	}
	return s.p;
}

/*
 * control_connect.c - opening a control connection without blocking: the
 * host list planned from the conninfo (host, hostaddr and port lists, as libpq
 * pairs them), names resolved with evdns and handed to libpq as hostaddr (the
 * name kept in host, for certificate checks and the password file), then
 * PQconnectStartParams and PQconnectPoll driven by the socket's events.
 * control.c calls control_connect_begin() when the head query needs a
 * connection and control_connect_poll() while CONNECTING.
 */
#include "admin/cutover/control_int.h"
#include "protocol/sqlstate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "proxy/core/log.h"

/* The host list is over: connected, or the connection closed. */
void control_free_hosts(struct control_conn *cc)
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

/* libpq's notice processor: what the server says while connecting goes to the debug log. */
static void control_notice(void *arg, const char *message)
{
	struct control_conn *cc = arg;
	char line[CONTROL_MSG_MAX];

	if (LOG_DEBUG > log_level_current)
		return;
	control_one_line(line, sizeof(line), message);
	log_debug("control connection %s: %s", cc->label, line);
}

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

/* A keyword's value in the parsed conninfo, NULL when unset or when it did not parse. */
const char *control_opt(const struct control_conn *cc, const char *keyword)
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
void control_resolve_next(struct control_conn *cc)
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
void control_connect_begin(struct control_conn *cc)
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
void control_connect_poll(struct control_conn *cc)
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

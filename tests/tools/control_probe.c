/*
 * control_probe - run queries through admin/cutover/control.c, for the integration
 * suite (tests/integration/test_control.py).
 *
 *   control_probe [options] CONNINFO SQL TIMEOUT_MS
 *
 *   --then SQL          run SQL after the previous one, on the same control_conn
 *                       (repeatable)
 *   --repeat N          run the whole list N times (default 1)
 *   --queue-all         queue every query at once instead of one per callback
 *   --free-in-callback  free the control_conn inside the last callback
 *   --no-dns            give the control_conn no resolver
 *   --user U            rewrite CONNINFO with control_conninfo_with_user(U, password)
 *   --password P        the password for --user (default: keep CONNINFO's)
 *   --hang-probe        accepted for compatibility: the loop-lag probe always runs
 *   -v                  debug logging to stderr
 *
 * Prints one line per query, "ok NTUPLES FIRST_VALUE" (FIRST_VALUE "-" when
 * there is none, "NULL" for a null) or "error SQLSTATE MESSAGE", then
 * "max_loop_lag_ms N" (the worst lateness of a 10 ms periodic timer while
 * the queries ran: a blocked loop shows here) and "total_ms N".  Exits 0
 * when every query succeeded, 1 when one failed, 2 on bad usage.  With --user
 * the rewritten conninfo is printed first, as "conninfo STRING".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "admin/cutover/control.h"
#include "admin/cutover/control_conninfo.h"
#include "proxy/core/log.h"

#define PROBE_TICK_US 10000

/* Everything the callbacks share. */
struct probe {
	struct event_base *base;
	struct control_conn *cc;
	const char **sqls;   /* the list of queries, run in order */
	int nsqls;
	int total;           /* nsqls * repeat */
	int queued;          /* queries handed to control_conn_query so far */
	int done;            /* callbacks received */
	int failures;
	int64_t timeout_ms;
	bool queue_all;
	bool free_in_callback;
	struct event *tick;  /* the loop-lag probe */
	int64_t last_tick_us;
	int64_t max_lag_us;
};

static int64_t probe_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void probe_result(void *arg, const struct control_result *r);
static void probe_tick(evutil_socket_t fd, short what, void *arg);

static bool probe_queue_next(struct probe *p)
{
	const char *sql = p->sqls[p->queued % p->nsqls];

	if (!control_conn_query(p->cc, sql, p->timeout_ms, probe_result, p)) {
		fprintf(stderr, "control_probe: out of memory\n");
		return false;
	}
	p->queued++;
	return true;
}

static void probe_result(void *arg, const struct control_result *r)
{
	struct probe *p = arg;

	p->done++;
	if (r->ok) {
		const PGresult *res = r->res;
		int ntuples = res ? PQntuples(res) : 0;
		const char *first = "-";

		if (res && ntuples > 0 && PQnfields(res) > 0)
			first = PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);
		printf("ok %d %s\n", ntuples, first);
	} else {
		p->failures++;
		printf("error %s %s\n", r->sqlstate, r->error);
	}
	fflush(stdout);
	if (p->done == p->total) {
		/* a stall just before the end would otherwise go unseen */
		probe_tick(-1, 0, p);
		if (p->free_in_callback) {
			control_conn_free(p->cc);
			p->cc = NULL;
		}
		event_del(p->tick);
		event_base_loopbreak(p->base);
		return;
	}
	if (!p->queue_all && !probe_queue_next(p))
		exit(2);
}

static void probe_tick(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	int64_t now = probe_now_us();
	int64_t lag = now - p->last_tick_us - PROBE_TICK_US;

	(void)fd;
	(void)what;
	if (lag > p->max_lag_us)
		p->max_lag_us = lag;
	p->last_tick_us = now;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: control_probe [--then SQL]... [--repeat N] [--queue-all] [--free-in-callback]\n"
		"                     [--no-dns] [--user U [--password P]] [--hang-probe] [-v]\n"
		"                     CONNINFO SQL TIMEOUT_MS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct probe p;
	const char *pos[3];
	const char **thens;
	int npos = 0, nthens = 0, repeat = 1;
	bool no_dns = false;
	const char *user = NULL, *password = NULL;
	char *rewritten = NULL;
	struct evdns_base *dns = NULL;
	struct timeval tick = {0, PROBE_TICK_US};
	int64_t start;

	memset(&p, 0, sizeof(p));
	thens = calloc((size_t)argc, sizeof(*thens));
	if (thens == NULL)
		return 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--then") == 0 && i + 1 < argc)
			thens[nthens++] = argv[++i];
		else if (strcmp(a, "--repeat") == 0 && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (strcmp(a, "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(a, "--password") == 0 && i + 1 < argc)
			password = argv[++i];
		else if (strcmp(a, "--queue-all") == 0)
			p.queue_all = true;
		else if (strcmp(a, "--free-in-callback") == 0)
			p.free_in_callback = true;
		else if (strcmp(a, "--no-dns") == 0)
			no_dns = true;
		else if (strcmp(a, "--hang-probe") == 0)
			continue;
		else if (strcmp(a, "-v") == 0)
			log_level_current = LOG_DEBUG;
		else if (a[0] == '-' && a[1] == '-')
			usage();
		else if (npos < 3)
			pos[npos++] = a;
		else
			usage();
	}
	if (npos != 3 || repeat < 1 || (password != NULL && user == NULL))
		usage();
	if (user != NULL) {
		rewritten = control_conninfo_with_user(pos[0], user, password);
		if (rewritten == NULL) {
			printf("error 22023 could not rewrite the connection string\n");
			return 1;
		}
		printf("conninfo %s\n", rewritten);
		pos[0] = rewritten;
	}

	p.nsqls = 1 + nthens;
	p.sqls = calloc((size_t)p.nsqls, sizeof(*p.sqls));
	if (p.sqls == NULL)
		return 2;
	p.sqls[0] = pos[1];
	for (int i = 0; i < nthens; i++)
		p.sqls[i + 1] = thens[i];
	p.total = p.nsqls * repeat;
	p.timeout_ms = strtoll(pos[2], NULL, 10);

	p.base = event_base_new();
	if (p.base == NULL)
		return 2;
	if (!no_dns) {
		dns = evdns_base_new(p.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
						     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (dns == NULL)
			dns = evdns_base_new(p.base, 0);
	}
	p.cc = control_conn_new(p.base, dns, pos[0], "probe");
	p.tick = event_new(p.base, -1, EV_PERSIST, probe_tick, &p);
	if (p.cc == NULL || p.tick == NULL)
		return 2;

	start = probe_now_us();
	p.last_tick_us = start;
	event_add(p.tick, &tick);
	do {
		if (!probe_queue_next(&p))
			return 2;
	} while (p.queue_all && p.queued < p.total);
	event_base_dispatch(p.base);

	printf("max_loop_lag_ms %lld\n", (long long)(p.max_lag_us / 1000));
	printf("total_ms %lld\n", (long long)((probe_now_us() - start) / 1000));
	if (p.done != p.total)
		printf("error XX000 loop ended after %d of %d callbacks\n", p.done, p.total);

	control_conn_free(p.cc);
	event_free(p.tick);
	/* let abandoned lookups deliver their cancellations, then tear down */
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	if (dns != NULL)
		evdns_base_free(dns, 0);
	event_base_free(p.base);
	free(p.sqls);
	free(thens);
	free(rewritten);
	return p.done == p.total && p.failures == 0 ? 0 : 1;
}

/*
 * fleet.c - the membership of a fleet (see fleet.h): the heartbeat and the
 * poll of the fleet database, and the databases this instance follows,
 * each handed what the poll read of it (fleet_follow.c reacts).
 *
 * One control connection to the fleet database carries everything, one
 * query at a time: the schema at start, then every beat a single round
 * trip that LISTENs, upserts this instance's row and reads every
 * database's row.  A NOTIFY on the channel polls at once; while anything
 * is in flight (a switch, a database held) the beat is fast.
 *
 * At start every database waits for the fleet's route (at most
 * fleet_lease: then its route file's route serves, with an error logged),
 * and a held database stays held while the fleet database cannot be read
 * (docs/fleet.md).
 */
#include "admin/cutover/fleet.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/cutover/cutover.h"
#include "admin/cutover/fleet_int.h"
#include "admin/cutover/fleet_sql.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/list.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* The beat while nothing is in flight, at most (and at most a fifth of the lease). */
#define FLEET_BEAT_MS 1000
/* The beat while a switch is in flight somewhere or a database is held. */
#define FLEET_FAST_MS 50

static struct {
	bool on;
	char me[128];
	char address[300];
	char started[40];
	struct control_conn *cc;
	struct event *beat;
	bool schema_done;
	bool polling;       /* a poll is in flight */
	bool poll_again;    /* a wake-up arrived meanwhile */
	uint64_t t_start;   /* when the membership started (us) */
	uint64_t t_ok;      /* the last successful poll (us); 0 before any */
	int live;           /* live instances at the last poll */
	bool sync_given_up; /* the start-up wait for the fleet's routes expired */
	struct fdb *dbs;
} fl;

bool fleet_on(void)
{
	return fl.on;
}

const char *fleet_me(void)
{
	return fl.me;
}

const char *fleet_conninfo(void)
{
	return rt.cfg->fleet;
}

int64_t fleet_lease_ms(void)
{
	return rt.cfg->fleet_lease_ms;
}

int fleet_live_instances(void)
{
	return fl.t_ok ? fl.live : -1;
}

int64_t fleet_heartbeat_age_ms(void)
{
	return fl.t_ok ? (int64_t)((rt_now_us() - fl.t_ok) / 1000) : -1;
}

struct fdb *fdb_find(const struct database *db)
{
	for (struct fdb *f = fl.dbs; f; f = f->next)
		if (f->db == db)
			return f;
	return NULL;
}

int64_t fleet_epoch(const struct database *db)
{
	struct fdb *f = fdb_find(db);

	return f && f->synced ? f->epoch : -1;
}
static struct fdb *fdb_get(struct database *db)
{
	struct fdb *f = fdb_find(db);

	if (f)
		return f;
	f = fdb_new(db);
	if (f == NULL)
		return NULL;
	f->next = fl.dbs;
	fl.dbs = f;
	return f;
}

/* ---- the beat ---- */

static bool any_in_flight(void)
{
	for (struct fdb *f = fl.dbs; f; f = f->next)
		if (f->held || f->st != FD_NONE || cutover_running(f->db))
			return true;
	return false;
}

static void beat_later(void)
{
	int64_t ms = rt.cfg->fleet_lease_ms / 5;
	struct timeval tv;

	if (ms > FLEET_BEAT_MS)
		ms = FLEET_BEAT_MS;
	if (any_in_flight())
		ms = FLEET_FAST_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(fl.beat, &tv);
}

static void poll_now(void);

void fleet_poll_soon(void)
{
	struct timeval tv = {0, 0};

	if (!fl.on)
		return;
	if (fl.polling) {
		fl.poll_again = true;
		return;
	}
	evtimer_add(fl.beat, &tv);
}

static void notify_cb(void *arg, const char *channel, const char *payload)
{
	(void)arg;
	(void)payload;
	if (strcmp(channel, FLEET_CHANNEL) == 0)
		fleet_poll_soon();
}

bool fleet_send(struct pq_buf *b, control_cb cb, void *arg)
{
	bool ok = !b->failed && control_conn_query(fl.cc, (const char *)b->data,
						   CONTROL_QUERY_TIMEOUT_MS, cb, arg);

	pq_buf_free(b);
	return ok;
}

bool fleet_query(const char *sql, control_cb cb, void *arg)
{
	return fl.on && control_conn_query(fl.cc, sql, CONTROL_QUERY_TIMEOUT_MS, cb, arg);
}

static void poll_cb(void *arg, const struct control_result *r)
{
	bool again = fl.poll_again;

	(void)arg;
	fl.polling = false;
	fl.poll_again = false;
	/* held for the fleet while it cannot be read: query_wait_timeout counts */
	for (struct fdb *f = fl.dbs; f; f = f->next)
		f->db->hold_times_out = !r->ok && (f->held || cutover_running(f->db));
	if (!r->ok) {
		log_warning("fleet: could not reach the fleet database: %s%s", r->error,
			    any_in_flight() ? " (held databases stay held)" : "");
	} else {
		const PGresult *res = r->res;
		int n = res ? PQntuples(res) : 0;

		fl.t_ok = rt_now_us();
		for (struct fdb *f = fl.dbs; f; f = f->next)
			f->seen = false;
		for (int i = 0; i < n; i++) {
			struct fleet_row row;
			bool readable = fleet_row_read(&row, res, i);
			struct database *db = db_find(row.db);
			struct fdb *f;

			if (i == 0)
				fl.live = atoi(PQgetvalue(res, 0, 7));
			if (db == NULL || db->cfg == NULL || !readable)
				continue;
			f = fdb_get(db);
			if (f == NULL)
				continue;
			f->synced = true;
			f->seen = true;
			fdb_follow(f, &row);
		}
		if (n == 0)
			fl.live = 1;
		/* databases the fleet has no row for: their route files stand */
		for (struct fdb *f = fl.dbs; f; f = f->next) {
			if (!f->synced) {
				f->synced = true;
				if (f->held && f->st == FD_NONE)
					fdb_release(f);
			} else if (!f->seen) {
				fdb_follow(f, NULL);
			}
		}
	}
	if (!fl.sync_given_up &&
	    (rt_now_us() - fl.t_start) / 1000 > (uint64_t)rt.cfg->fleet_lease_ms) {
		fl.sync_given_up = true;
		for (struct fdb *f = fl.dbs; f; f = f->next) {
			if (!f->synced && f->held && f->st == FD_NONE) {
				log_error("fleet: database %s: the fleet database could not be read within fleet_lease: serving the %s its route file names until it can",
					  f->db->name, route_side_name(f->db->route));
				fdb_release(f);
			}
		}
	}
	if (again)
		fleet_poll_soon();
	else
		beat_later();
}

static void schema_cb(void *arg, const struct control_result *r)
{
	(void)arg;
	fl.polling = false;
	if (r->ok) {
		fl.schema_done = true;
		log_info("fleet: member %s of the fleet at %s", fl.me, control_conn_label(fl.cc));
		poll_now();
		return;
	}
	log_warning("fleet: could not prepare the fleet database (schema pgcutover): %s", r->error);
	beat_later();
}

static void poll_now(void)
{
	struct fleet_db_state *st;
	struct list_node *n;
	size_t k = 0, count = 0;
	struct pq_buf b;

	if (fl.polling)
		return;
	if (!fl.schema_done) {
		fl.polling = true;
		if (!control_conn_query(fl.cc, fleet_schema_sql(), CONTROL_QUERY_TIMEOUT_MS,
					schema_cb, NULL)) {
			fl.polling = false;
			beat_later();
		}
		return;
	}
	list_for_each(n, &rt.databases)
		count++;
	st = calloc(count ? count : 1, sizeof(*st));
	if (st == NULL) {
		beat_later();
		return;
	}
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->removed)
			continue;
		st[k].name = db->name;
		st[k].route = route_side_name(db->route);
		st[k].paused = db_paused(db);
		k++;
	}
	pq_buf_init(&b);
	if (fleet_poll_sql(&b, fl.me, fl.address, fl.started, st, k, rt.cfg->fleet_lease_ms)) {
		fl.polling = true;
		if (!fleet_send(&b, poll_cb, NULL)) {
			fl.polling = false;
			beat_later();
		}
	} else {
		pq_buf_free(&b);
		beat_later();
	}
	free(st);
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	poll_now();
}

/* ---- start and stop ---- */

void fleet_start(void)
{
	struct list_node *n;
	time_t now = time(NULL);
	struct tm tm;

	if (rt.cfg->fleet == NULL || rt.cfg->fleet[0] == '\0')
		return;
	if (rt.cfg->instance_name) {
		snprintf(fl.me, sizeof(fl.me), "%s", rt.cfg->instance_name);
	} else {
		char host[100] = "";

		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "localhost");
		snprintf(fl.me, sizeof(fl.me), "%s:%d", host, rt.cfg->listen_port);
	}
	snprintf(fl.address, sizeof(fl.address), "%s:%d", rt.cfg->listen_addr, rt.cfg->listen_port);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(fl.started, sizeof(fl.started), "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		snprintf(fl.started, sizeof(fl.started), "now");
	fl.cc = control_conn_new(rt.base, rt.dns, rt.cfg->fleet, "fleet");
	fl.beat = evtimer_new(rt.base, beat_cb, NULL);
	if (fl.cc == NULL || fl.beat == NULL) {
		log_error("fleet: out of memory: not a member of the fleet");
		return;
	}
	control_conn_on_notify(fl.cc, notify_cb, NULL);
	fl.on = true;
	fl.t_start = rt_now_us();
	/* every database waits for the fleet's route before its first transaction */
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct fdb *f = db->removed ? NULL : fdb_get(db);

		if (f)
			fdb_hold(f);
	}
	poll_now();
}

void fleet_added(struct database *db)
{
	struct fdb *f = fdb_get(db);

	if (f == NULL || f->synced)
		return;
	fdb_hold(f);
	fleet_poll_soon();
}

void fleet_stop(void)
{
	while (fl.dbs) {
		struct fdb *f = fl.dbs;

		fl.dbs = f->next;
		fdb_free(f);
	}
	if (fl.beat)
		event_free(fl.beat);
	if (fl.cc)
		control_conn_free(fl.cc);
	memset(&fl, 0, sizeof(fl));
}

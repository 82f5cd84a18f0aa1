/*
 * metrics.c - the /metrics endpoint.
 *
 * Everything is computed at scrape time from the live structures, so the
 * forwarding path pays nothing for metrics beyond the counters it keeps anyway.
 */
#include "admin/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/cutover/cutover.h"
#include "admin/cutover/verify.h"
#include "admin/cutover/fleet.h"
#include "admin/show_shadow.h"
#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/pool.h"
#include "proxy/core/route.h"
#include "proxy/core/version.h"
#include "proxy/runtime.h"
#include "proxy/server.h"

static struct evhttp *http;

static int count(const struct list_node *head)
{
	const struct list_node *n;
	int k = 0;

	list_for_each(n, head)
		k++;
	return k;
}

/* A phase name as a label value: "lag wait" becomes "lag_wait", as the other metrics write it. */
static void label_word(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		buf[i] = name[i] == ' ' ? '_' : name[i];
	buf[i] = '\0';
}

static void help(struct evbuffer *out, const char *name, const char *type, const char *text)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* VERIFY: whether one runs, and what the last one of each database found. */
static void verify_metrics(struct evbuffer *out)
{
	struct list_node *n;

	help(out, "pgcutover_verify_running", "gauge", "1 while a VERIFY of the database runs");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct verify_summary vs;

		evbuffer_add_printf(out, "pgcutover_verify_running{database=\"%s\"} %d\n", db->name,
				    verify_summary(db, &vs) && vs.running);
	}
	help(out, "pgcutover_verify_rows_checked", "gauge",
	     "rows the last VERIFY of the database has compared");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct verify_summary vs;

		if (verify_summary(db, &vs))
			evbuffer_add_printf(out,
					    "pgcutover_verify_rows_checked{database=\"%s\"} %" PRId64
					    "\n",
					    db->name, vs.rows_checked);
	}
	help(out, "pgcutover_verify_chunks", "gauge",
	     "key ranges of the last VERIFY by state: matched, mismatched, pending");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct verify_summary vs;

		if (!verify_summary(db, &vs))
			continue;
		evbuffer_add_printf(out,
				    "pgcutover_verify_chunks{database=\"%s\",state=\"matched\"} %" PRId64
				    "\npgcutover_verify_chunks{database=\"%s\",state=\"mismatched\"} %" PRId64
				    "\npgcutover_verify_chunks{database=\"%s\",state=\"pending\"} %" PRId64
				    "\n",
				    db->name, vs.chunks_matched, db->name, vs.chunks_mismatched,
				    db->name, vs.chunks_pending);
	}
	help(out, "pgcutover_verify_differences", "gauge",
	     "differing rows the last VERIFY found by kind: missing, extra, different");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		struct verify_summary vs;

		if (!verify_summary(db, &vs))
			continue;
		evbuffer_add_printf(
			out,
			"pgcutover_verify_differences{database=\"%s\",kind=\"missing\"} %" PRId64
			"\npgcutover_verify_differences{database=\"%s\",kind=\"extra\"} %" PRId64
			"\npgcutover_verify_differences{database=\"%s\",kind=\"different\"} %" PRId64
			"\n",
			db->name, vs.missing, db->name, vs.extra, db->name, vs.different);
	}
}

void metrics_render(struct evbuffer *out)
{
	struct list_node *n, *p, *m;

	help(out, "pgcutover_clients", "gauge", "client connections by database and state");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		int active = 0, waiting = 0, idle = 0;

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);

			int w = pool_waiting_clients(pool);

			/* a held client (session pooling) counts as waiting, not active */
			active += count(&pool->active_clients) - (w - count(&pool->waiting_clients));
			waiting += w;
			idle += count(&pool->idle_clients);
		}
		evbuffer_add_printf(out, "pgcutover_clients{database=\"%s\",state=\"active\"} %d\n",
				    db->name, active);
		evbuffer_add_printf(out, "pgcutover_clients{database=\"%s\",state=\"waiting\"} %d\n",
				    db->name, waiting);
		evbuffer_add_printf(out, "pgcutover_clients{database=\"%s\",state=\"idle\"} %d\n",
				    db->name, idle);
	}
	evbuffer_add_printf(out, "pgcutover_clients{database=\"\",state=\"login\"} %d\n",
			    count(&rt.login_clients));

	help(out, "pgcutover_servers", "gauge", "server connections by database, side and state");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		int cnt[2][3] = {{0}};

		list_for_each(p, &db->pools) {
			struct pool *pool = list_entry(p, struct pool, node);
			struct list_node *lists[3] = {&pool->active_servers, &pool->idle_servers,
						      &pool->new_servers};

			for (int i = 0; i < 3; i++)
				list_for_each(m, lists[i])
					cnt[list_entry(m, struct server, node)->side][i]++;
		}
		for (int side = 0; side < 2; side++) {
			static const char *const st[3] = {"active", "idle", "login"};

			for (int i = 0; i < 3; i++)
				evbuffer_add_printf(out,
						    "pgcutover_servers{database=\"%s\",side=\"%s\",state=\"%s\"} %d\n",
						    db->name, route_side_name((enum route_side)side),
						    st[i], cnt[side][i]);
		}
	}

	help(out, "pgcutover_transactions_total", "counter", "transactions completed");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out,
				    "pgcutover_transactions_total{database=\"%s\"} %" PRIu64 "\n",
				    db->name, db->stats.xact_count);
	}
	help(out, "pgcutover_queries_total", "counter",
	     "queries (Query and Sync messages) sent to servers");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out, "pgcutover_queries_total{database=\"%s\"} %" PRIu64 "\n",
				    db->name, db->stats.query_count);
	}
	help(out, "pgcutover_bytes_received_total", "counter", "bytes received from clients");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out,
				    "pgcutover_bytes_received_total{database=\"%s\"} %" PRIu64 "\n",
				    db->name, db->stats.bytes_in);
	}
	help(out, "pgcutover_bytes_sent_total", "counter", "bytes sent to clients");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out, "pgcutover_bytes_sent_total{database=\"%s\"} %" PRIu64 "\n",
				    db->name, db->stats.bytes_out);
	}
	help(out, "pgcutover_notifications_total", "counter",
	     "notifications delivered to transaction-pooled clients by pgcutover's listeners");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out,
				    "pgcutover_notifications_total{database=\"%s\"} %" PRIu64 "\n",
				    db->name, db->stats.notifications);
	}
	help(out, "pgcutover_notification_overflows_total", "counter",
	     "clients closed because they did not read their notifications");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out,
				    "pgcutover_notification_overflows_total{database=\"%s\"} %" PRIu64
				    "\n",
				    db->name, db->stats.notify_overflows);
	}
	help(out, "pgcutover_replication_lag_bytes", "gauge",
	     "last measured replication lag (by SHOW LAG or a switch)");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		int64_t lag = cutover_last_lag(db);

		if (lag >= 0)
			evbuffer_add_printf(out,
					    "pgcutover_replication_lag_bytes{database=\"%s\"} %" PRId64
					    "\n",
					    db->name, lag);
	}
	help(out, "pgcutover_route_target", "gauge",
	     "1 when the database is routed to its target, 0 for its source");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out, "pgcutover_route_target{database=\"%s\"} %d\n", db->name,
				    db->route == SIDE_TARGET);
	}
	help(out, "pgcutover_paused", "gauge", "1 while new transactions of the database are held");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out, "pgcutover_paused{database=\"%s\"} %d\n", db->name,
				    db_paused(db));
	}

	help(out, "pgcutover_switches_total", "counter",
	     "switches since start by database and result (ok, failed: failed or aborted, dry_run)");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		static const char *const classes[SWITCH_NCLASSES] =
			{[SWITCH_OK] = "ok", [SWITCH_FAILED] = "failed", [SWITCH_DRY_RUN] = "dry_run"};
		struct switch_counts counts = cutover_counts(db);

		for (int k = 0; k < SWITCH_NCLASSES; k++)
			evbuffer_add_printf(out,
					    "pgcutover_switches_total{database=\"%s\",result=\"%s\"} %" PRIu64
					    "\n",
					    db->name, classes[k], counts.switches[k]);
	}
	help(out, "pgcutover_reverse_replication_failing", "gauge",
	     "1 when the way back of the database's last switch did not start or does not stream");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (db->cfg && db->cfg->d.reverse_replication)
			evbuffer_add_printf(out,
					    "pgcutover_reverse_replication_failing{database=\"%s\"} %d\n",
					    db->name, cutover_replication_error(db) != NULL);
	}
	/* seconds, Prometheus' base unit, to the millisecond the engine measures */
	help(out, "pgcutover_last_switch_phase_seconds", "gauge",
	     "phase durations of the latest switch (dry runs excluded)");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		static const char *const phases[TIMING_COUNT] = {
			[TIMING_PAUSED] = "paused",       [TIMING_DRAIN] = "drain",
			[TIMING_LAG] = "lag_wait",        [TIMING_SEQUENCES] = "sequence_sync",
			[TIMING_FENCE] = "fence",         [TIMING_REPLICATION] = "replication",
			[TIMING_PREPARE] = "preparation", [TIMING_VERIFY] = "verify",
		};
		struct switch_counts counts = cutover_counts(db);

		if (!counts.have_last)
			continue;
		for (int k = 0; k < TIMING_COUNT; k++)
			evbuffer_add_printf(out,
					    "pgcutover_last_switch_phase_seconds{database=\"%s\",phase=\"%s\"} %.3f\n",
					    db->name, phases[k], (double)counts.last_ms[k] / 1000.0);
	}
	help(out, "pgcutover_switch_running", "gauge",
	     "1 while a switch (or a dry run) of the database runs");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(out, "pgcutover_switch_running{database=\"%s\"} %d\n", db->name,
				    cutover_running(db) != NULL);
	}
	help(out, "pgcutover_switch_phase", "gauge",
	     "1 for the phase a running switch is in; no series while none runs");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		char phase[32];

		if (cutover_running(db) == NULL)
			continue;
		label_word(cutover_phase_name(db), phase, sizeof(phase));
		evbuffer_add_printf(out, "pgcutover_switch_phase{database=\"%s\",phase=\"%s\"} 1\n",
				    db->name, phase);
	}
	verify_metrics(out);
	/* the fleet: the families always, samples only for a member */
	help(out, "pgcutover_fleet_live_instances", "gauge",
	     "instances whose heartbeat is younger than fleet_lease, at the last poll");
	if (fleet_on() && fleet_live_instances() >= 0)
		evbuffer_add_printf(out, "pgcutover_fleet_live_instances %d\n",
				    fleet_live_instances());
	help(out, "pgcutover_fleet_heartbeat_age_seconds", "gauge",
	     "time since this instance's last successful heartbeat in the fleet database");
	if (fleet_on() && fleet_heartbeat_age_ms() >= 0)
		evbuffer_add_printf(out, "pgcutover_fleet_heartbeat_age_seconds %.3f\n",
				    (double)fleet_heartbeat_age_ms() / 1000.0);
	help(out, "pgcutover_fleet_epoch", "gauge",
	     "the last switch epoch of the database seen in the fleet database");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		if (fleet_on() && fleet_epoch(db) >= 0)
			evbuffer_add_printf(out,
					    "pgcutover_fleet_epoch{database=\"%s\"} %" PRId64 "\n",
					    db->name, fleet_epoch(db));
	}
	admin_shadow_metrics(out);
	help(out, "pgcutover_build_info", "gauge", "always 1; the version is in its label");
	evbuffer_add_printf(out, "pgcutover_build_info{version=\"%s\"} 1\n", PGCUTOVER_VERSION);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = evbuffer_new();

	(void)arg;
	if (out == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	metrics_render(out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

static void other_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
}

bool metrics_start(char *errbuf, size_t errlen)
{
	if (rt.cfg->metrics_port == 0)
		return true;
	http = evhttp_new(rt.base);
	if (http == NULL) {
		snprintf(errbuf, errlen, "could not start the metrics endpoint: out of memory");
		return false;
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(http, "/metrics", metrics_cb, NULL);
	evhttp_set_gencb(http, other_cb, NULL);
	if (evhttp_bind_socket(http, rt.cfg->metrics_addr, (ev_uint16_t)rt.cfg->metrics_port) != 0) {
		snprintf(errbuf, errlen, "could not listen for metrics on %s:%d",
			 rt.cfg->metrics_addr, rt.cfg->metrics_port);
		evhttp_free(http);
		http = NULL;
		return false;
	}
	log_info("metrics at http://%s:%d/metrics", rt.cfg->metrics_addr, rt.cfg->metrics_port);
	return true;
}

void metrics_stop(void)
{
	if (http)
		evhttp_free(http);
	http = NULL;
}

/*
 * watch.c - after a switch with reverse replication: does the way back
 * stream?  Enabling a subscription succeeds before its worker has connected
 * (a wrong password, a slot dropped meanwhile fail only then), so once
 * traffic runs on the new side, a control connection watches the way back's
 * slot on the new side for WATCH_MS: active, all is well; never active,
 * the failure is recorded (SHOW REPLICATION's error, the metrics) and
 * logged loudly, and a switch back will be refused by its preflight until
 * the way back streams.
 */
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/engine.h"
#include "protocol/sqlquote.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How long the way back may take to stream before it is reported failing. */
#define WATCH_MS 10000
/* How often its slot is read meanwhile. */
#define WATCH_POLL_MS 200

/* One watch. */
struct watch {
	struct watch *next;
	struct control_conn *ctl; /* to the side whose slot feeds the way back */
	struct event *timer;
	const struct database *db; /* databases live until exit */
	char sql[300];
	uint64_t t_start;
	enum route_side side;
};

static struct watch *watches;

static void watch_free(struct watch *w)
{
	for (struct watch **pp = &watches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	if (w->ctl)
		control_conn_free(w->ctl);
	if (w->timer)
		event_free(w->timer);
	free(w);
}

static void watch_poll(struct watch *w)
{
	struct timeval tv = {0, WATCH_POLL_MS * 1000};

	evtimer_add(w->timer, &tv);
}

static void watch_cb(void *arg, const struct control_result *r)
{
	struct watch *w = arg;
	char msg[300];

	if (r->ok && r->res && PQntuples(r->res) == 1 && strcmp(PQgetvalue(r->res, 0, 0), "t") == 0) {
		log_info("database %s: replication back from the %s streams", w->db->name,
			 route_side_name(w->side));
		cutover_note_replication_error(w->db, NULL);
		watch_free(w);
		return;
	}
	if ((rt_now_us() - w->t_start) / 1000 < WATCH_MS) {
		watch_poll(w);
		return;
	}
	snprintf(msg, sizeof(msg),
		 "the way back from the %s does not stream %d s after the switch (its slot is %s): a switch back is refused until it does; see the subscriber's log",
		 route_side_name(w->side), WATCH_MS / 1000,
		 !r->ok                             ? "unreadable"
		 : r->res && PQntuples(r->res) == 1 ? "inactive"
						    : "missing");
	log_error("database %s: %s", w->db->name, msg);
	cutover_note_replication_error(w->db, msg);
	watch_free(w);
}

static void watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;

	(void)fd;
	(void)what;
	if (!control_conn_query(w->ctl, w->sql, CONTROL_QUERY_TIMEOUT_MS, watch_cb, w))
		watch_free(w);
}

void cutover_watch_way_back(struct database *db, const struct config *cfg,
			    const struct db_config *dc, enum route_side side, const char *slot)
{
	struct watch *w = calloc(1, sizeof(*w));
	char lit[160];

	if (w == NULL || !sqlquote_literal(slot, lit, sizeof(lit))) {
		free(w);
		return;
	}
	w->db = db;
	w->side = side;
	w->t_start = rt_now_us();
	snprintf(w->sql, sizeof(w->sql),
		 "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = %s", lit);
	w->ctl = control_open(cfg, rt.users, dc, side);
	w->timer = evtimer_new(rt.base, watch_timer_cb, w);
	w->next = watches;
	watches = w;
	if (w->ctl == NULL || w->timer == NULL) {
		watch_free(w);
		return;
	}
	watch_poll(w);
}

void cutover_watch_free(void)
{
	while (watches)
		watch_free(watches);
}

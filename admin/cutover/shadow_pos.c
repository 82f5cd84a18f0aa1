/*
 * shadow_pos.c - the position poller of shadow reads (see shadow_pos.h).
 *
 * A sample may be replayed on the target once the target has applied the
 * source's position at the time of the read.  The poller reads both in
 * rounds, one at a time per database, while samples wait:
 *
 *   lsn     one query on the source: pg_current_wal_insert_lsn() (it covers
 *           every commit the read could have seen) and replication_slot's
 *           confirmed_flush_lsn (how far the target has applied), the way
 *           the switch's lag wait reads them (lag.c); when samples have
 *           waited a while, the lag wait's nudge makes the slot current
 *   marker  a marker row inserted on the source (its number is the
 *           position), then polled for on the target (the previous marker
 *           is deleted with each insert, so the table stays small)
 *
 * lag_method none needs no poller: the operator vouches for the target.
 * A failed round is retried after SHADOW_POS_RETRY_MS; samples that wait
 * longer than lag_timeout are counted inconclusive by proxy/shadow.
 */
#include "admin/cutover/shadow_pos.h"

#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/engine.h"
#include "protocol/sqlquote.h"
#include "proxy/core/config.h"
#include "proxy/core/list.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"
#include "proxy/shadow.h"

/* Between two rounds while samples wait; after a failure. */
#define SHADOW_POS_POLL_MS  20
#define SHADOW_POS_RETRY_MS 1000
/* Samples waiting this long get the lag wait's nudge, at most this often. */
#define SHADOW_POS_NUDGE_MS 300

/* What a database's poller is doing. */
enum poll_phase {
	POLL_IDLE,   /* nothing waits */
	POLL_QUERY,  /* a round's query runs (lsn: the positions; marker: the insert) */
	POLL_MARKER, /* marker: polling the target for the marker */
	POLL_SLEEP,  /* waiting for the next round */
};

struct poller {
	struct list_node node;
	struct database *db;
	const struct db_config *cfg; /* the section its connections were opened for */
	struct control_conn *ctl[2]; /* by side, opened at their first query */
	struct event *timer;
	enum poll_phase phase;
	uint64_t asked_us;  /* when the round's position was asked */
	uint64_t marker;    /* marker: the number of the last marker inserted */
	uint64_t seen;      /* marker: the last one seen on the target */
	uint64_t nudged_us; /* when the last nudge was sent */
	bool nudging;       /* a nudge runs */
};

static struct list_node pollers = {&pollers, &pollers};

static void round_start(struct poller *p);

static void poller_close(struct poller *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->ctl[i])
			control_conn_free(p->ctl[i]);
		p->ctl[i] = NULL;
	}
}

/* The control connection to a side, for the section in force. */
static struct control_conn *ctl(struct poller *p, enum route_side side)
{
	if (p->cfg != p->db->cfg) {
		/* a reload gave the database a new section: new connections */
		poller_close(p);
		p->cfg = p->db->cfg;
	}
	if (p->ctl[side] == NULL && p->cfg)
		p->ctl[side] = control_open(rt.cfg, rt.users, p->cfg, side);
	return p->ctl[side];
}

/* The next round after ms milliseconds. */
static void sleep_ms(struct poller *p, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	p->phase = POLL_SLEEP;
	evtimer_add(p->timer, &tv);
}

/* A round ended: another one soon while samples wait. */
static void round_end(struct poller *p, bool again, bool failed)
{
	if (!again) {
		p->phase = POLL_IDLE;
		return;
	}
	sleep_ms(p, failed ? SHADOW_POS_RETRY_MS : SHADOW_POS_POLL_MS);
}

/* "16/B374D848" as a number; 0 when it is not one. */
static uint64_t parse_lsn(const char *s)
{
	unsigned long hi, lo;

	if (s == NULL || sscanf(s, "%lX/%lX", &hi, &lo) != 2)
		return 0;
	return (uint64_t)hi << 32 | (uint64_t)lo;
}

/* ---- nudges (lsn) ---- */

static void nudge_source_cb(void *arg, const struct control_result *r)
{
	struct poller *p = arg;

	(void)r;
	p->nudging = false;
}

static void nudge_target_cb(void *arg, const struct control_result *r)
{
	struct poller *p = arg;
	struct control_conn *cc = ctl(p, SIDE_SOURCE);

	(void)r;
	if (cc == NULL || !control_conn_query(cc, cutover_lag_nudge_sql, CONTROL_QUERY_TIMEOUT_MS,
					      nudge_source_cb, p))
		p->nudging = false;
}

/* Samples have waited a while: make the slot's position current (as the lag wait does). */
static void maybe_nudge(struct poller *p)
{
	uint64_t now = rt_now_us();
	struct control_conn *cc;

	if (p->nudging || shadow_oldest_wait_ms(p->db) < SHADOW_POS_NUDGE_MS ||
	    now - p->nudged_us < (uint64_t)SHADOW_POS_NUDGE_MS * 1000)
		return;
	cc = ctl(p, SIDE_TARGET);
	if (cc == NULL)
		return;
	p->nudged_us = now;
	p->nudging = control_conn_query(cc, cutover_lag_nudge_sql, CONTROL_QUERY_TIMEOUT_MS,
					nudge_target_cb, p);
}

/* ---- lsn ---- */

static void lsn_cb(void *arg, const struct control_result *r)
{
	struct poller *p = arg;
	bool ok = r->ok && r->res && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 1);
	const char *why =
		!r->ok ? r->error : "replication_slot has no confirmed position (is it there?)";
	bool again;

	again = shadow_position(p->db, p->asked_us, ok, ok ? parse_lsn(PQgetvalue(r->res, 0, 0)) : 0,
				ok ? parse_lsn(PQgetvalue(r->res, 0, 1)) : 0, ok ? NULL : why);
	if (again && ok)
		maybe_nudge(p);
	round_end(p, again, !ok);
}

static bool lsn_round(struct poller *p)
{
	struct control_conn *cc = ctl(p, SIDE_SOURCE);
	char slot[160], sql[400];

	if (cc == NULL || p->cfg->replication_slot == NULL ||
	    !sqlquote_literal(p->cfg->replication_slot, slot, sizeof(slot)))
		return false;
	snprintf(sql, sizeof(sql),
		 "SELECT pg_catalog.pg_current_wal_insert_lsn()::text,"
		 " (SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots"
		 " WHERE slot_name = %s)",
		 slot);
	p->asked_us = rt_now_us();
	return control_conn_query(cc, sql, CONTROL_QUERY_TIMEOUT_MS, lsn_cb, p);
}

/* ---- marker ---- */

/* The id of marker number k of this database. */
static void marker_id(const struct poller *p, uint64_t k, char *out, size_t len)
{
	char raw[120];

	snprintf(raw, sizeof(raw), "pgcutover-shadow-%s-%" PRIu64, p->db->name, k);
	if (!sqlquote_literal(raw, out, len))
		snprintf(out, len, "'pgcutover-shadow'");
}

static void marker_seen_cb(void *arg, const struct control_result *r)
{
	struct poller *p = arg;
	bool seen = r->ok && r->res && PQntuples(r->res) > 0, again;

	if (seen)
		p->seen = p->marker;
	again = shadow_position(p->db, 0, r->ok, 0, p->seen, r->ok ? NULL : r->error);
	if (!again) {
		p->phase = POLL_IDLE;
		return;
	}
	if (seen || !r->ok)
		round_end(p, true, !r->ok); /* a new marker for the samples that came since */
	else {
		/* not there yet: look again */
		sleep_ms(p, SHADOW_POS_POLL_MS);
		p->phase = POLL_MARKER;
	}
}

static void marker_poll(struct poller *p)
{
	struct control_conn *cc = ctl(p, SIDE_TARGET);
	char table[300], id[200], sql[600];

	if (cc == NULL || !sqlquote_qualified(p->cfg->d.marker_table, table, sizeof(table))) {
		round_end(p, true, true);
		return;
	}
	marker_id(p, p->marker, id, sizeof(id));
	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = %s", table, id);
	p->phase = POLL_MARKER;
	if (!control_conn_query(cc, sql, CONTROL_QUERY_TIMEOUT_MS, marker_seen_cb, p))
		round_end(p, true, true);
}

static void marker_insert_cb(void *arg, const struct control_result *r)
{
	struct poller *p = arg;

	if (!r->ok) {
		round_end(p, shadow_position(p->db, 0, false, 0, 0, r->error), true);
		return;
	}
	(void)shadow_position(p->db, p->asked_us, true, p->marker, p->seen, NULL);
	marker_poll(p);
}

static bool marker_round(struct poller *p)
{
	struct control_conn *cc = ctl(p, SIDE_SOURCE);
	char table[300], prev[200], id[200], sql[1100];

	if (cc == NULL || !sqlquote_qualified(p->cfg->d.marker_table, table, sizeof(table)))
		return false;
	marker_id(p, p->marker, prev, sizeof(prev));
	marker_id(p, p->marker + 1, id, sizeof(id));
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = %s; INSERT INTO %s (id) VALUES (%s)",
		 table, prev, table, id);
	p->marker++;
	p->asked_us = rt_now_us();
	return control_conn_query(cc, sql, CONTROL_QUERY_TIMEOUT_MS, marker_insert_cb, p);
}

/* ---- rounds ---- */

static void round_start(struct poller *p)
{
	bool started = false;

	if (p->db->cfg == NULL) {
		p->phase = POLL_IDLE;
		return;
	}
	p->phase = POLL_QUERY;
	if (p->db->cfg->d.lag_method == LAG_LSN)
		started = lsn_round(p);
	else if (p->db->cfg->d.lag_method == LAG_MARKER)
		started = marker_round(p);
	else
		(void)shadow_position(p->db, UINT64_MAX, true, 1, 1, NULL); /* none: all ready */
	if (!started && p->phase == POLL_QUERY) {
		bool again = shadow_position(p->db, 0, false, 0, 0,
					     "the position could not be asked for");

		round_end(p, again, true);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poller *p = arg;

	(void)fd;
	(void)what;
	if (p->phase == POLL_MARKER)
		marker_poll(p);
	else
		round_start(p);
}

/* proxy/shadow: samples of db wait for a position. */
static void want(struct database *db)
{
	struct list_node *n;
	struct poller *p = NULL;

	list_for_each(n, &pollers) {
		struct poller *x = list_entry(n, struct poller, node);

		if (x->db == db) {
			p = x;
			break;
		}
	}
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL || (p->timer = evtimer_new(rt.base, timer_cb, p)) == NULL) {
			free(p);
			log_error("shadow %s: out of memory starting the position poller", db->name);
			return;
		}
		p->db = db;
		p->cfg = db->cfg;
		list_append(&pollers, &p->node);
	}
	if (p->phase != POLL_IDLE)
		return; /* a round runs or is due: it sees the new samples */
	/* from inside the proxy's call: the round starts from the loop */
	sleep_ms(p, 0);
}

void shadow_pos_init(void)
{
	shadow_set_position_hook(want);
}

void shadow_pos_shutdown(void)
{
	while (!list_empty(&pollers)) {
		struct poller *p = list_entry(list_first(&pollers), struct poller, node);

		list_remove(&p->node);
		poller_close(p);
		event_free(p->timer);
		free(p);
	}
	shadow_set_position_hook(NULL);
}

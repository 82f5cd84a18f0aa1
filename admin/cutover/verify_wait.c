/*
 * verify_wait.c - "the new side has applied the old side's position": what
 * a re-check waits for before it reads the new side (see verify_int.h).
 *
 *   lsn     a read of the old side carries pg_current_wal_insert_lsn(),
 *           taken after its snapshot, so every commit it saw lies before
 *           it; the slot that feeds the new side confirms positions as the
 *           subscriber flushes what it applied.  One poll of the slot serves
 *           every waiting range; when it does not move, a synchronous
 *           logical message on each side makes the subscriber report at
 *           once (as the lag wait does, lag.c).
 *   marker  reads of the old side are numbered; a marker row inserted
 *           after them, once it is seen on the new side, covers them all
 *           (one row per round of waits, not per range)
 *   none    the operator vouches that the new side is current: no wait
 *
 * If the new side does not move for VERIFY_WAIT_MAX_MS, the waiting ranges
 * are left pending rather than waited for forever.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control.h"
#include "admin/cutover/replication_names.h"
#include "admin/cutover/verify_int.h"
#include "protocol/sqlquote.h"
#include "proxy/auth/crypto.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* How often the position is polled while ranges wait. */
#define VERIFY_POLL_MS 20
/* A nudge after the first poll without progress, then one every so many. */
#define VERIFY_NUDGE_AFTER 5
/* Without progress for this long, the waiting ranges stay pending. */
#define VERIFY_WAIT_MAX_MS 30000

static const char NUDGE_SQL[] =
	"SET synchronous_commit = on; SELECT pg_catalog.pg_logical_emit_message(true, 'pgcutover', 'verify')";

static void poll_later(struct verify_run *run);

/* The slot that feeds the new side (the one a switch to it would wait on). */
static void feeding_slot(const struct verify_run *run, char *out, size_t len)
{
	if (run->new_side == SIDE_SOURCE && run->dc->d.reverse_replication)
		replication_reverse_name(run->dbname, out, len);
	else
		snprintf(out, len, "%s", run->dc->replication_slot ? run->dc->replication_slot : "");
}

/* Move the ranges whose position is applied back to the ready list. */
static void wake(struct verify_run *run)
{
	struct list_node *n = run->waiting.next;

	while (n != &run->waiting) {
		struct verify_task *k = list_entry(n, struct verify_task, node);

		n = n->next;
		if (k->wait_for <= run->applied) {
			list_remove(&k->node);
			k->queued = false;
			k->wait_for = 0;
			verify_task_next(run, k);
		}
	}
}

/* Nothing moves (or the position cannot be known: run->error says why): leave the waiting ranges pending. */
static void give_up(struct verify_run *run)
{
	if (run->error[0] == '\0')
		snprintf(run->error, sizeof(run->error),
			 "the %s did not apply the %s's position within %d s: ranges left pending",
			 route_side_name(run->new_side), route_side_name(run->old_side),
			 VERIFY_WAIT_MAX_MS / 1000);
	log_warning("verify %s: %s", run->dbname, run->error);
	while (!list_empty(&run->waiting)) {
		struct verify_task *k = list_entry(run->waiting.next, struct verify_task, node);

		verify_add_pending(run, k);
		verify_task_finished(run, k);
	}
	run->idle_polls = 0;
}

static void nudge_cb(void *arg, const struct control_result *r)
{
	struct verify_run *run = arg;

	(void)r;
	run->coord_pending--;
}

/* A poll answered: false when the run no longer wants its answer. */
static bool poll_answered(struct verify_run *run)
{
	run->coord_pending--;
	run->polling = false;
	return run->running && !run->stopping;
}

/*
 * After a poll, whichever way it read the new side's progress: wake the
 * ranges it covers, then poll again, or give the others up once nothing has
 * moved for VERIFY_WAIT_MAX_MS.
 */
static void poll_done(struct verify_run *run)
{
	wake(run);
	if (!list_empty(&run->waiting)) {
		if (run->idle_polls * VERIFY_POLL_MS >= VERIFY_WAIT_MAX_MS)
			give_up(run);
		else
			poll_later(run);
	}
	verify_schedule_soon(run);
}

/* lsn: the slot's confirmed position; without progress, a nudge now and then. */
static void slot_cb(void *arg, const struct control_result *r)
{
	struct verify_run *run = arg;
	uint64_t before = run->applied;

	if (!poll_answered(run))
		return;
	if (r->ok && r->res && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0))
		run->applied = verify_parse_lsn(PQgetvalue(r->res, 0, 0));
	if (run->applied > before)
		run->idle_polls = 0;
	else if (++run->idle_polls % VERIFY_NUDGE_AFTER == 1) {
		verify_coord_query(run, (int)run->new_side, NUDGE_SQL, nudge_cb, run);
		verify_coord_query(run, (int)run->old_side, NUDGE_SQL, nudge_cb, run);
	}
	poll_done(run);
}

/* marker: once the row is on the new side, every read before it is covered. */
static void marker_seen_cb(void *arg, const struct control_result *r)
{
	struct verify_run *run = arg;

	if (!poll_answered(run))
		return;
	if (r->ok && r->res && PQntuples(r->res) > 0) {
		run->applied = run->marker_covers;
		run->marker_id[0] = '\0';
		run->idle_polls = 0;
	} else {
		run->idle_polls++;
	}
	poll_done(run);
}

static void marker_inserted_cb(void *arg, const struct control_result *r)
{
	struct verify_run *run = arg;

	if (!poll_answered(run))
		return;
	if (!r->ok) {
		snprintf(run->error, sizeof(run->error),
			 "could not insert a marker row on the %s: %s: ranges left pending",
			 route_side_name(run->old_side), r->error ? r->error : "failed");
		run->marker_id[0] = '\0';
		give_up(run);
		verify_schedule_soon(run);
		return;
	}
	poll_later(run);
}

/* marker_table, quoted, and the marker id as a literal; false when they do not quote. */
static bool marker_parts(const struct verify_run *run, char *table, size_t tlen, char *id,
			 size_t ilen)
{
	return sqlquote_qualified(run->dc->d.marker_table, table, tlen) &&
	       sqlquote_literal(run->marker_id, id, ilen);
}

static void poll_now(struct verify_run *run)
{
	char sql[600], lit[160], table[300], id[160];

	if (run->polling || !run->running || run->stopping)
		return;
	run->polling = true;
	if (run->dc->d.lag_method == LAG_LSN) {
		char slot[64];

		feeding_slot(run, slot, sizeof(slot));
		if (!sqlquote_literal(slot, lit, sizeof(lit))) {
			run->polling = false;
			give_up(run);
			return;
		}
		snprintf(sql, sizeof(sql),
			 "SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots"
			 " WHERE slot_name = %s",
			 lit);
		verify_coord_query(run, (int)run->old_side, sql, slot_cb, run);
		return;
	}
	/* marker: a row covering the reads so far, then polls for it on the new side */
	if (run->marker_id[0] == '\0') {
		uint8_t raw[12];

		if (!auth_random_bytes(raw, sizeof(raw))) {
			run->polling = false;
			give_up(run);
			return;
		}
		snprintf(run->marker_id, sizeof(run->marker_id), "%.20s-verify-", run->dbname);
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(run->marker_id + strlen(run->marker_id), 3, "%02x", raw[i]);
		run->marker_covers = run->reads;
		if (!marker_parts(run, table, sizeof(table), id, sizeof(id))) {
			run->polling = false;
			give_up(run);
			return;
		}
		/* search_path as the switch's lag wait has it (the listing emptied it) */
		snprintf(sql, sizeof(sql), "RESET search_path; INSERT INTO %s (id) VALUES (%s)",
			 table, id);
		verify_coord_query(run, (int)run->old_side, sql, marker_inserted_cb, run);
		return;
	}
	if (!marker_parts(run, table, sizeof(table), id, sizeof(id))) {
		run->polling = false;
		give_up(run);
		return;
	}
	snprintf(sql, sizeof(sql), "RESET search_path; SELECT 1 FROM %s WHERE id = %s", table, id);
	verify_coord_query(run, (int)run->new_side, sql, marker_seen_cb, run);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	poll_now(arg);
}

static void poll_later(struct verify_run *run)
{
	struct timeval tv = {0, VERIFY_POLL_MS * 1000};

	if (run->poll == NULL)
		run->poll = evtimer_new(rt.base, poll_cb, run);
	if (run->poll)
		evtimer_add(run->poll, &tv);
}

void verify_wait_service(struct verify_run *run)
{
	if (run->dc->d.lag_method == LAG_NONE) {
		run->applied = UINT64_MAX;
		wake(run);
		return;
	}
	if (!list_empty(&run->waiting) && !run->polling &&
	    !(run->poll && evtimer_pending(run->poll, NULL)))
		poll_now(run);
}

void verify_wait_stop(struct verify_run *run)
{
	if (run->poll) {
		event_free(run->poll);
		run->poll = NULL;
	}
}

/*
 * cutover.h - the SWITCH machine and PAUSE/RESUME: the cutover itself.
 *
 * A switch runs as an explicit state machine driven by libpq's non-blocking
 * API (admin/cutover/control.c) and timers:
 *
 *   PREFLIGHT -> DRAIN -> WAIT_LAG -> SYNC_SEQUENCES -> FLIP -> RESUME -> done
 *        \          \         \              \
 *         +----------+---------+--------------+--> ROLLBACK (resume on the old side)
 *
 * Nothing before FLIP changes the route; FLIP writes the route file durably
 * (on a worker thread) before anything runs on the new side.
 */
#ifndef PGCUTOVER_CUTOVER_H
#define PGCUTOVER_CUTOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/pool.h"

struct client;
struct database;

/* One row of SHOW SWITCHES. */
struct switch_record {
	char db[64];
	enum route_side from;
	enum route_side to;
	char started[40]; /* UTC, ISO 8601 */
	char result[160]; /* "ok", "failed", "aborted", "dry run: ...", "running" */
	bool dry_run;
	int64_t ms_paused; /* from the start of the drain to the resume */
	int64_t ms_drain;
	int64_t ms_lag;
	int64_t ms_sequences;
	int sequences_synced;
	int sessions_moved;
	int sessions_closed;
	char error[400]; /* "" when none; names the phase otherwise */
};

/*
 * Start a switch of 'db' to side 'to' for the admin client 'requester', who
 * gets the SHOW SWITCHES row (or an ErrorResponse) when it ends.  False with
 * a message when it cannot start (already switching, already there).
 */
bool cutover_start(struct database *db, enum route_side to, bool dry_run, struct client *requester,
		   char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* ABORT db: stop a switch that has not flipped yet.  False with a message otherwise. */
bool cutover_abort(struct database *db, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/* PAUSE [db]: hold new transactions; 'requester' gets "PAUSE" once drained. */
void cutover_pause(struct database *db, struct client *requester);
/* RESUME [db]. */
void cutover_resume(struct database *db);

/* The admin client went away: forget it as the requester of anything. */
void cutover_forget_client(struct client *c);

/* The history behind SHOW SWITCHES (oldest first). */
const struct switch_record *cutover_history(int *count);
/* The switch running on this database, or NULL. */
const struct switch_record *cutover_running(const struct database *db);
/* The name of the phase a database's switch is in ("" when none). */
const char *cutover_phase_name(const struct database *db);

/* Remember a measured replication lag (SHOW LAG, a switch) for the metrics. */
void cutover_record_lag(const struct database *db, int64_t lag);
/* Last measured replication lag of a database, for SHOW LAG and metrics (-1 unknown). */
int64_t cutover_last_lag(const struct database *db);

/* Free everything at exit. */
void cutover_shutdown(void);

#endif /* PGCUTOVER_CUTOVER_H */

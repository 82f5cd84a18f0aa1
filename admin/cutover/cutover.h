/*
 * cutover.h - the switch engine and PAUSE/RESUME: the cutover itself.
 *
 * A switch is an explicit machine of phases (engine.c holds their table:
 * entry, deadline, what runs beside each), driven by libpq's non-blocking
 * API (control.c) and timers:
 *
 *   PREFLIGHT --> DRAIN --> WAIT_LAG --> SYNC_SEQUENCES --(join)--> FLIP --> RESUME --> done
 *       |           |   `-- session checks, beside the next two --'   |
 *   (dry run:       |                                                  |
 *    done here)     `------- held: new transactions wait from here ---' to the end of RESUME
 *
 *   any failure or ABORT before FLIP --> ROLLBACK: the hold is released on
 *   the old side and the error names the phase
 *
 * Nothing before FLIP changes the route; FLIP writes the route file durably
 * (on a worker thread) before anything runs on the new side.  The session
 * checks (session pooling: can each session's state move?) start when the
 * drain is over and run beside the lag wait and the sequence sync; FLIP
 * waits for the last of them.
 *
 * The engine tells whoever started a command through callbacks (the admin
 * console maps them to its replies); it moves and checks sessions through
 * proxy/pool.h, never by walking the pools itself.
 */
#ifndef PGCUTOVER_CUTOVER_H
#define PGCUTOVER_CUTOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/route.h"

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
	int64_t ms_fence;       /* fencing the old side plus lifting the new side's fence */
	int64_t ms_replication; /* stopping the incoming direction plus starting the way back */
	int64_t ms_prepare;     /* before the pause: the reverse preparation, sequences set ahead */
	int64_t ms_verify;      /* switch_verify's re-check, inside the pause */
	/*
	 * What clients saw: from the first transaction held to the last held
	 * one started on the new side (-1 until known; stays -1 for a switch
	 * that did not resume on its new side).
	 */
	int64_t ms_gap;
	int sequences_synced;
	int sessions_moved;
	int sessions_closed;
	int instances;       /* fleet: the instances that took part (this one included); 1 alone */
	int instances_acked; /* ...and those that said they had paused and drained */
	char error[600];     /* "" when none; names the phase otherwise */
};

/* Result classes of the switch counters: a bounded label set for the metrics. */
enum switch_class {
	SWITCH_OK,      /* a switch that flipped the route */
	SWITCH_FAILED,  /* a switch that failed or was aborted before its flip */
	SWITCH_DRY_RUN, /* a DRY RUN, whatever its outcome */
	SWITCH_NCLASSES
};

/* The phases whose times the metrics keep for the latest real switch. */
enum switch_timing {
	TIMING_PAUSED,
	TIMING_DRAIN,
	TIMING_LAG,
	TIMING_SEQUENCES,
	TIMING_FENCE,
	TIMING_REPLICATION,
	TIMING_PREPARE,
	TIMING_VERIFY,
	TIMING_COUNT
};

/*
 * Per-database switch counters since start, kept by the engine apart from
 * the bounded history of SHOW SWITCHES so that they never go down.
 */
struct switch_counts {
	uint64_t switches[SWITCH_NCLASSES];
	bool have_last;                /* the times below are those of a real switch */
	int64_t last_ms[TIMING_COUNT]; /* of the latest real switch */
};

/*
 * How a switch reports its end to whoever started it: with sqlstate NULL
 * the switch succeeded (or the dry run passed) and rec is its row; else it
 * failed, rec->error says why and names the phase.  'who' is the pointer
 * given to cutover_start().
 */
typedef void (*cutover_reply_fn)(void *who, const struct switch_record *rec, const char *sqlstate);

/* How PAUSE reports: drained (sqlstate NULL), or an error. */
typedef void (*cutover_paused_fn)(void *who, const char *sqlstate, const char *message);

/*
 * How a command that runs in the background (FENCE, UNFENCE, FINISH)
 * reports: done (sqlstate NULL, message the command tag) or an error.
 */
typedef void (*cutover_done_fn)(void *who, const char *sqlstate, const char *message);

/* Register with the pools (their progress hook); at start-up. */
void cutover_init(void);

/*
 * Start a switch of 'db' to side 'to'; reply(who, ...) is called once when
 * it ends, never from inside this call.  force: even when switching back
 * would lose what was written on the side left since it was switched to
 * (that check only).  False with a message when it cannot start (already
 * switching, already there).
 */
bool cutover_start(struct database *db, enum route_side to, bool dry_run, bool force,
		   cutover_reply_fn reply, void *who, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/* ABORT db: stop a switch that has not flipped yet.  False with a message otherwise. */
bool cutover_abort(struct database *db, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * PAUSE [db] (NULL = every database): hold new transactions; done(who, ...)
 * once in-flight ones have finished (possibly from inside this call).
 */
void cutover_pause(struct database *db, cutover_paused_fn done, void *who);
/* RESUME [db]. */
void cutover_resume(struct database *db);

/*
 * FENCE db side (on) / UNFENCE db side: put up or lift the fence of one side
 * by hand (docs/cutover.md, "Fencing"); done(who, ...) when it is done,
 * never from inside this call.  False with a message when it cannot start
 * (the database is switching; fencing the side it is routed to).
 */
bool cutover_fence(struct database *db, enum route_side side, bool on, cutover_done_fn done,
		   void *who, char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/*
 * FINISH db: drop what reverse replication created, once the database is
 * routed to its target for good; done(who, ...) when it is done.  False with
 * a message when it cannot start (routed to the source, switching).
 */
bool cutover_finish_reverse(struct database *db, cutover_done_fn done, void *who, char *errbuf,
			    size_t errlen) __attribute__((warn_unused_result));

/* 'who' went away: forget it as the one to tell about anything. */
void cutover_forget(void *who);

/* The history behind SHOW SWITCHES (oldest first). */
const struct switch_record *cutover_history(int *count);
/* The switch running on this database, or NULL. */
const struct switch_record *cutover_running(const struct database *db);
/* The name of the phase a database's switch is in ("" when none). */
const char *cutover_phase_name(const struct database *db);
/* The counters of a database (all zero when it never switched). */
struct switch_counts cutover_counts(const struct database *db);

/* Why a database's way back did not start at its last switch, or NULL. */
const char *cutover_replication_error(const struct database *db);

/* Remember a measured replication lag (SHOW LAG, a switch) for the metrics. */
void cutover_record_lag(const struct database *db, int64_t lag);
/* Last measured replication lag of a database, for SHOW LAG and metrics (-1 unknown). */
int64_t cutover_last_lag(const struct database *db);

/* Free everything at exit. */
void cutover_shutdown(void);

#endif /* PGCUTOVER_CUTOVER_H */

/*
 * engine.h - inside the switch engine (internal to admin/cutover/): the
 * state of one switch, the table of its phases, and what the phase files
 * share.
 *
 * Each phase that talks to a database has its own file: preflight.c,
 * drain.c, lag.c, sequences.c, flip.c (flip and resume).  A phase is
 * entered by the engine (engine.c), which arms its deadline; it ends by
 * calling cutover_phase_done() or cutover_fail().  Answers that arrive after
 * their phase ended (a deadline, an ABORT) are recognised by the phase
 * number and ignored.
 */
#ifndef PGCUTOVER_ENGINE_H
#define PGCUTOVER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "admin/cutover/control.h"
#include "admin/cutover/cutover.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"

struct event;
struct database;
struct config;
struct db_config;
struct cutover;

enum cutover_phase {
	CO_PREFLIGHT,
	CO_DRAIN,
	CO_WAIT_LAG,
	CO_SYNC_SEQUENCES,
	CO_FLIP,
	CO_RESUME,
	CO_NPHASES
};

/* Which timeout bounds a phase (armed when it is entered). */
enum cutover_deadline {
	CO_DEADLINE_NONE,
	CO_DEADLINE_DRAIN, /* drain_timeout */
	CO_DEADLINE_LAG,   /* lag_timeout */
};

/* One row of the phase table (engine.c). */
struct cutover_phase_def {
	const char *name;                  /* in SHOW DATABASES, logs and errors */
	void (*enter)(struct cutover *co); /* starts the phase's work */
	enum cutover_deadline deadline;
	bool joins_checks;  /* entered only once every session check has answered */
	const char *beside; /* what runs beside it, for the reader and the log */
};

extern const struct cutover_phase_def cutover_phases[CO_NPHASES];

/* A switch in progress; one per database at most. */
struct cutover {
	struct cutover *next; /* in the list of running switches */
	struct database *db;
	/*
	 * The configuration the switch started with, held by a reference: every
	 * phase reads its settings from here, never from the config in force, so
	 * that a RELOAD cannot change a switch under it (the database keeps its
	 * section meanwhile too: database.h, db_apply_config).
	 */
	struct config *config;
	const struct db_config *dc; /* the database's section in it */
	cutover_reply_fn reply;     /* whom to tell at the end (NULL once forgotten) */
	void *who;
	enum cutover_phase phase;
	enum route_side from;
	enum route_side to;
	bool dry_run;
	bool aborting;               /* ABORT arrived: fail at the next step */
	struct control_conn *ctl[2]; /* control connections, indexed by side */
	struct event *deadline;      /* the phase's timeout (cutover_phase_def.deadline) */
	struct event *poll;          /* next lag poll */
	int pending;                 /* outstanding control queries of the phase */
	bool failed;                 /* a query of the phase failed (first error kept) */
	char fail_state[6];
	char fail_msg[300];
	uint64_t t_phase; /* when the current phase started (us) */
	uint64_t t_pause; /* when new transactions started being held (us) */
	/* session checks beside the lag wait and the sequence sync */
	int checks_pending;  /* checks not answered yet */
	bool waiting_checks; /* the phase before FLIP is done: FLIP waits for the checks */
	/* preflight */
	bool reached;          /* both sides answered */
	int64_t preflight_lag; /* bytes (-1 unknown) */
	int nsequences;        /* sequences found */
	/* lag wait */
	char goal_lsn[32];  /* lsn: insert position after the drain */
	char marker_id[48]; /* marker: the row waited for */
	bool lag_done;
	/* sequence sync: the setval batch for the side switched to */
	struct pq_buf seq_sql;
	struct switch_record rec;
};

/* ---- engine.c ---- */

/* The configuration section the switch works with (co->dc). */
const struct db_config *cutover_cfg(const struct cutover *co);
/* Milliseconds since t_us (a rt_now_us() value). */
int64_t cutover_ms_since(uint64_t t_us);
/* The current phase's work is complete: go on to the next one. */
void cutover_phase_done(struct cutover *co);
/*
 * The switch cannot go on: release the hold on the old side, record the
 * error ("<phase> failed: <message>") and report it.
 */
void cutover_fail(struct cutover *co, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Run a query of the phase on a side: counted in co->pending; cb counts it
 * out with cutover_query_settle().  When out of memory the switch fails and
 * is gone: false, and the caller must not touch co again.
 */
bool cutover_query(struct cutover *co, enum route_side side, const char *sql, int64_t timeout_ms,
		   control_cb cb) __attribute__((warn_unused_result));
/* Keep the first failure among the phase's queries ("what: error"). */
void cutover_query_failed(struct cutover *co, const struct control_result *r, const char *what);
/*
 * One of the phase's queries answered: true once none is pending and none
 * failed; when one failed, the switch fails here (and false).
 */
bool cutover_query_settle(struct cutover *co) __attribute__((warn_unused_result));

/* Forget 'who' as the one to tell at the end of a switch (cutover_forget). */
void cutover_forget_switches(void *who);

/* ---- the phases' entries (one file each) ---- */

void cutover_preflight_enter(struct cutover *co);        /* preflight.c */
void cutover_drain_enter(struct cutover *co);            /* drain.c */
void cutover_drain_progress(struct cutover *co);         /* drain.c: a transaction ended */
void cutover_lag_enter(struct cutover *co);              /* lag.c */
void cutover_lag_poll_cb(int fd, short what, void *arg); /* lag.c: co->poll's callback */
void cutover_sequences_enter(struct cutover *co);        /* sequences.c */
void cutover_flip_enter(struct cutover *co);             /* flip.c */
void cutover_resume_enter(struct cutover *co);           /* flip.c */

/* Whether sequence_sync names this sequence (sequences.c). */
bool cutover_seq_selected(const struct db_config *dc, const char *name);

/* ---- pause.c, history.c ---- */

/* Answer the PAUSE requests whose databases have drained. */
void cutover_pause_check(void);
/* Free the PAUSE requests still waiting (at exit). */
void cutover_pause_free(void);
/* A finished switch goes into the history and the counters. */
void cutover_history_add(const struct database *db, const struct switch_record *rec, bool ok);
void cutover_history_free(void);

#endif /* PGCUTOVER_ENGINE_H */

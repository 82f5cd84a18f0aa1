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
struct userlist;

enum cutover_phase {
	CO_PREFLIGHT,
	CO_PREPARE,     /* reverse_replication: the way back, outside the pause */
	CO_SEQ_AHEAD,   /* sequences set ahead on the new side, outside the pause */
	CO_FLEET_PAUSE, /* fleet: every instance is asked to pause (fleet_switch.c) */
	CO_DRAIN,
	CO_FLEET_DRAIN, /* fleet: every live instance has paused and drained */
	CO_FENCE,       /* the old side refuses application writes */
	CO_WAIT_LAG,
	CO_STOP_REPLICATION, /* reverse_replication: the incoming direction stops */
	CO_VERIFY,           /* switch_verify: what the last VERIFY left pending, re-checked */
	CO_SYNC_SEQUENCES,
	CO_DECIDE, /* fleet: the decision is committed in the fleet database */
	CO_FLIP,
	CO_START_REPLICATION, /* reverse_replication: the way back starts */
	CO_UNFENCE,           /* the new side's fence is lifted */
	CO_RESUME,
	CO_NPHASES,
	CO_ROLLBACK = CO_NPHASES, /* a failure: undoing what was done, then resume on the old side */
};

/* Which timeout bounds a phase (armed when it is entered). */
enum cutover_deadline {
	CO_DEADLINE_NONE,
	CO_DEADLINE_DRAIN, /* drain_timeout */
	CO_DEADLINE_LAG,   /* lag_timeout */
	CO_DEADLINE_GAP,   /* CUTOVER_GAP_WAIT_MS: after the resume, for the gap */
};

/* How long the row of a switch waits for its held transactions to start on the new side. */
#define CUTOVER_GAP_WAIT_MS 10000

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
/* A switch as a route write's callback sees it: NULL once the switch is freed. */
struct seq_ahead;

struct cutover_ticket {
	struct cutover *co;
};

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
	bool force; /* SWITCH ... FORCE: a switch back that would lose writes */
	/*
	 * The route file was (or is being) written with switching_to: the end
	 * of the switch writes it again without.  The ticket lets the write's
	 * answer find the switch, or learn that it is over (co then NULL).
	 */
	bool intent_written;
	struct cutover_ticket *intent_ticket;
	bool aborting;               /* ABORT arrived: fail at the next step */
	struct control_conn *ctl[2]; /* control connections, indexed by side */
	struct event *deadline;      /* the phase's timeout (cutover_phase_def.deadline) */
	struct event *poll;          /* next lag poll (then: the stop's and unfence's retries) */
	struct event *guard_wait;    /* the preflight waiting for the guard (cutover_guarding) */
	struct event *drain_tick;    /* the drain's own look at whether it is over */
	int pending;                 /* outstanding control queries of the phase */
	bool failed;                 /* a query of the phase failed (first error kept) */
	char fail_state[6];
	char fail_msg[480];
	uint64_t t_phase; /* when the current phase started (us) */
	uint64_t t_pause; /* when new transactions started being held (us) */
	bool drained;     /* the drain is over (drain.c: it ends once) */
	/* session checks beside the lag wait and the sequence sync */
	int checks_pending;  /* checks not answered yet */
	bool waiting_checks; /* the phase before FLIP is done: FLIP waits for the checks */
	/* preflight */
	struct check_run *check; /* CHECK's run (check.h) while the preflight waits for it */
	struct verify_pause *vp; /* switch_verify's re-check (verify_pause.c) */
	bool reached;            /* both sides answered */
	int64_t preflight_lag;   /* bytes (-1 unknown) */
	int nsequences;          /* sequences found */
	/* lag wait */
	char goal_lsn[32];  /* lsn: insert position after the drain */
	char marker_id[48]; /* marker: the row waited for */
	bool lag_done;
	int lag_rounds; /* polls so far: the first ones follow each other at once (lag.c) */
	/*
	 * sequence sync: the selected sequences as the pre-advance read and set
	 * them (seqstate.h), and how many moved since (set inside the pause)
	 */
	struct seq_ahead *seq_ahead;
	size_t seq_moved;
	/* fencing and reverse replication: what was done, for the rollback and the report */
	bool fenced_from;  /* the old side's fence is up (the rollback lifts it) */
	bool stopped_in;   /* the incoming subscription was disabled (the rollback enables it) */
	int attempts;      /* tries of the current rollback or unfence step */
	int rollback_step; /* cutover_rollback_next(): the next thing to undo */
	char stop_lsn[32]; /* the new side's insert position once the incoming direction stopped */
	char new_side_xid[24];      /* the new side's next transaction ID at the end of the pause */
	struct route_state flipped; /* what the flip recorded in the route file */
	uint64_t t_fence;           /* when the fence phase started (us), for ms_fence */
	char rollback_err[300];     /* what the rollback could not undo ("" when all) */
	/* reverse replication (replication.c) */
	char fwd_sub[64];        /* the forward subscription's name, once read */
	char rev_slot[64];       /* the reverse direction's objects' name */
	int repl_step;           /* the preparation's next statement */
	int repl_target_version; /* server_version_num of each side */
	int repl_source_version;
	bool repl_has_rev_pub; /* what exists of the two directions */
	bool repl_has_rev_slot;
	bool repl_has_rev_sub;
	bool repl_rev_enabled;
	bool repl_has_fwd_slot;
	bool repl_fwd_enabled;
	/* fleet (fleet_switch.c) */
	struct control_conn *fleet_ctl; /* this switch's session there: holds the advisory lock */
	struct event *fleet_timer;      /* the ack polls, the retries */
	struct event *fleet_renew;      /* the lease's renewals */
	bool fleet_began;               /* the row is pausing under fleet_epoch, ours */
	bool fleet_decided;             /* the decision is committed */
	bool fleet_claimed;             /* this switch holds the abort ('aborting') */
	bool fleet_querying;            /* a fleet query of the switch is in flight */
	int fleet_rb_step;              /* the rollback's fleet steps */
	int64_t fleet_epoch;
	char *fleet_wait;     /* the instances waited for, '\n'-separated (NULL: none) */
	uint32_t *fleet_pids; /* their old-side servers, spared by the fence */
	size_t nfleet_pids;
	void (*fleet_next)(struct cutover *co); /* what follows a renewal */
	/*
	 * After the resume: the reply waits (bounded) until every held
	 * transaction has started on the new side, so that the row has the gap.
	 */
	bool settling;       /* the database was released on its new side */
	bool settle_waiting; /* and the gap is not known yet: the gap hook finishes */
	bool relocating;     /* idle sessions move after the resume (relocate.h) */
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
/*
 * The answer of a query the phase 'phase' runs alone: counted out of
 * co->pending; false when the switch has moved on (an abort, a deadline) or
 * the query failed, which fails the switch ("could not <what> on the <side>").
 */
bool cutover_answer(struct cutover *co, const struct control_result *r, enum cutover_phase phase,
		    const char *what, enum route_side side) __attribute__((warn_unused_result));

/* Forget 'who' as the one to tell at the end of a switch (cutover_forget). */
void cutover_forget_switches(void *who);

/* ---- the phases' entries (one file each) ---- */

void cutover_preflight_enter(struct cutover *co); /* preflight.c */
void cutover_drain_enter(struct cutover *co);     /* drain.c */
void cutover_drain_progress(struct cutover *co);  /* drain.c: a transaction ended */
void cutover_lag_enter(struct cutover *co);       /* lag.c */
/*
 * lag.c: a transaction that writes WAL and commits synchronously, run on the
 * receiving side then the sending side, makes the slot's confirmed_flush_lsn
 * current at once (shadow reads' position poller uses it too).
 */
extern const char cutover_lag_nudge_sql[];
void cutover_lag_poll_cb(int fd, short what, void *arg);  /* lag.c: co->poll's callback */
void cutover_sequences_enter(struct cutover *co);         /* sequences.c */
void cutover_seq_ahead_enter(struct cutover *co);         /* sequences_ahead.c */
void cutover_flip_enter(struct cutover *co);              /* flip.c */
void cutover_fence_enter(struct cutover *co);             /* fence.c */
void cutover_unfence_enter(struct cutover *co);           /* fence.c */
void cutover_prepare_enter(struct cutover *co);           /* replication.c */
void cutover_stop_replication_enter(struct cutover *co);  /* replication.c */
void cutover_start_replication_enter(struct cutover *co); /* replication.c */
void cutover_verify_enter(struct cutover *co);            /* verify_pause.c */
void cutover_verify_free(struct cutover *co);             /* verify_pause.c */
/*
 * The rollback's steps (after cutover_fail): each undoes what its phase did
 * and calls cutover_rollback_next() when it is done, failed or not.
 */
void cutover_rollback_unfence(struct cutover *co);     /* fence.c */
void cutover_rollback_replication(struct cutover *co); /* replication.c */
void cutover_rollback_next(struct cutover *co);        /* engine.c */
/*
 * watch.c: after a switch with reverse replication, watch the way back's
 * slot (named slot, on side 'side') until it is active, or report it failing.
 */
void cutover_watch_way_back(struct database *db, const struct config *cfg,
			    const struct db_config *dc, enum route_side side, const char *slot);
void cutover_watch_free(void);
/* The slot the lag wait watches: the one that feeds the side switched to (replication.c). */
const char *cutover_lag_slot(const struct cutover *co);
void cutover_resume_enter(struct cutover *co); /* flip.c */
/*
 * fleet_switch.c: the coordinator's side of a fleet's switch.  Each is a
 * no-op without a fleet (or in a dry run).
 */
void cutover_fleet_pause_enter(struct cutover *co);   /* CO_FLEET_PAUSE */
void cutover_fleet_drain_enter(struct cutover *co);   /* CO_FLEET_DRAIN */
void cutover_fleet_drain_expired(struct cutover *co); /* its drain_timeout */
void cutover_decide_enter(struct cutover *co);        /* CO_DECIDE */
/* Renew the lease, then next(co); a lost lease fails the switch. */
void cutover_fleet_renew(struct cutover *co, void (*next)(struct cutover *co));
void cutover_fleet_claim(struct cutover *co);        /* rollback: take the abort */
void cutover_fleet_mark_aborted(struct cutover *co); /* rollback: record it, or wait for it */
void cutover_fleet_end(struct cutover *co);          /* the switch is over: the lock goes */
void cutover_fleet_free(struct cutover *co);
/* The idle sessions left on the old side have moved (relocate.h's callback; engine.c). */
void cutover_relocated(struct database *db, int moved, int closed);
/* flip.c: after the resume, the route file again with new_side_xid (written in the background). */
void cutover_record_xid(struct cutover *co);
/*
 * flip.c: after a failed switch, the route file without switching_to
 * (written in the background; the database is on its old side, unfenced).
 */
void cutover_clear_intent(struct cutover *co);
/* flip.c: the same for a database whose switch under way was cut short (fence.c's guard). */
void cutover_forget_switch_under_way(struct database *db);

/*
 * fence.c: the statement that fences (on) or unfences one side of db for
 * the roles pgcutover logs in to it as, sparing pgcutover's own server
 * connections there; with state_only, the query that tells whether the side
 * is fenced (fence_sql.h).  False when out of memory.
 */
bool cutover_fence_statement(struct database *db, const struct db_config *dc,
			     const struct userlist *users, enum route_side side, bool on,
			     bool state_only, const uint32_t *also, size_t nalso,
			     struct pq_buf *out) __attribute__((warn_unused_result));
/*
 * fence.c: the guard of a database seen for the first time: any fence left
 * on the side it is routed to is lifted, its traffic held meanwhile
 * (DB_HOLD_GUARD); cutover_guarding() tells whether that is still going on.
 */
void cutover_guard(struct database *db);
bool cutover_guarding(const struct database *db);
/* fence.c: forget 'who' as the one to tell about a FENCE/UNFENCE; free them at exit. */
void cutover_fence_forget(void *who);
void cutover_fence_free(void);
/* finish.c: likewise for FINISH. */
void cutover_finish_forget(void *who);
void cutover_finish_free(void);

/* Whether sequence_sync names this sequence (sequences.c). */
bool cutover_seq_selected(const struct db_config *dc, const char *name);

/*
 * sequences_ahead.c: what the pre-advance (CO_SEQ_AHEAD) and the sync inside
 * the pause (CO_SYNC_SEQUENCES) share.
 *
 * The values of the sequences co->seq_ahead holds, read on the old side
 * (seq_values_sql()): all of them, or with 'moved_only' those that moved
 * since the values it holds.  false when the switch failed.
 */
bool cutover_seq_values(struct cutover *co, bool moved_only, control_cb cb)
	__attribute__((warn_unused_result));
struct seq_entry;
/* Row i of that answer (seq_value_row()); NULL once the switch failed on it. */
struct seq_entry *cutover_seq_value(struct cutover *co, const PGresult *res, int i, long long *last,
				    bool *called) __attribute__((warn_unused_result));
struct seq_apply_item;
/* The DO block that sets items on the new side, as a query of the phase (false: the switch failed). */
bool cutover_seq_apply(struct cutover *co, const struct seq_apply_item *items, size_t n,
		       control_cb cb);

/* ---- pause.c, history.c ---- */

/* Answer the PAUSE requests whose databases have drained. */
void cutover_pause_check(void);
/* Free the PAUSE requests still waiting (at exit). */
void cutover_pause_free(void);
/*
 * The way back of a database failed to start (msg), or streams again (NULL):
 * SHOW REPLICATION and the metrics say so (history.c).
 */
void cutover_note_replication_error(const struct database *db, const char *msg);
/* A finished switch goes into the history and the counters. */
void cutover_history_add(const struct database *db, const struct switch_record *rec, bool ok);
void cutover_history_free(void);

#endif /* PGCUTOVER_ENGINE_H */

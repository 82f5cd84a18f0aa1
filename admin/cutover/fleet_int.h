/*
 * fleet_int.h - inside a fleet member (internal to admin/cutover/fleet*.c):
 * what the membership and the follower share.
 *
 *   fleet.c         the membership: the heartbeat and the poll of the
 *                   fleet database, the start-up wait for the fleet's
 *                   routes, the databases followed (a list of struct fdb)
 *   fleet_follow.c  one database's follower: its reaction to the epoch
 *                   another instance coordinates (the states below)
 *   fleet_switch.c  the coordinator's side, as phases of the switch engine
 *
 * A follower, per database (struct fdb), moves through:
 *
 *   NONE -> DRAINING (held; its own transactions run to their end, at most
 *   drain_timeout) -> CHECKING (the session-pooled sessions' state is
 *   captured, as a switch does) -> ACKED (the ack is in the fleet database,
 *   with the process IDs of its old-side servers, which the coordinator's
 *   fence spares) -> FLIPPING (on the decision: the route file is written,
 *   the sessions move, traffic resumes on the new side) -> NONE; or back to
 *   NONE on the abort, resuming on the old side.  A follower whose
 *   coordinator's lease expired takes the abort over: CLAIMING (the row is
 *   set to aborting under its own lease) -> LIFTING (the old side's fence
 *   is lifted, retried until it is) -> MARKING (aborted) -> NONE.
 */
#ifndef PGCUTOVER_FLEET_INT_H
#define PGCUTOVER_FLEET_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "admin/cutover/control.h"
#include "admin/cutover/cutover.h"
#include "proxy/core/route.h"

struct database;
struct event;
struct fleet_row;
struct pq_buf;

enum fd_state {
	FD_NONE,
	FD_DRAINING,
	FD_CHECKING,
	FD_ACKED,
	FD_FLIPPING,
	FD_CLAIMING,
	FD_LIFTING,
	FD_MARKING,
};

/* A database as this instance follows the fleet. */
struct fdb {
	struct fdb *next;
	struct database *db; /* databases live until exit */
	enum fd_state st;
	bool held;   /* DB_HOLD_FLEET is this record's */
	bool synced; /* the fleet's row (or its absence) was read once */
	bool seen;   /* the last poll had a row for it */
	bool ack_ok; /* what the ack says */
	char ack_detail[200];
	int64_t epoch;      /* the last epoch seen in the fleet database */
	int64_t held_epoch; /* the switch it holds for (DRAINING .. MARKING) */
	enum route_side from, to;
	uint64_t t_hold;
	uint64_t t_acked;          /* when it had drained (for SHOW SWITCHES' drain_ms) */
	struct switch_record rec;  /* what SHOW SWITCHES will say of the switch it follows */
	struct event *timer;       /* drain_timeout, then the lift's retries */
	struct control_conn *side; /* the old side, to lift a fence when taking an abort over */
};

/* fleet.c */

/* The record of db, NULL when it has none yet. */
struct fdb *fdb_find(const struct database *db);
/* A query of the follower on the fleet connection, with arg; false: out of memory. */
bool fleet_send(struct pq_buf *b, control_cb cb, void *arg);

/* fleet_follow.c */

/* A new record for db, not held, in no state; NULL when out of memory. */
struct fdb *fdb_new(struct database *db);
void fdb_free(struct fdb *f);
/* Hold db for the fleet (new transactions wait); release: resume, state NONE. */
void fdb_hold(struct fdb *f);
void fdb_release(struct fdb *f);
/*
 * What the last poll says of f's database: its row, or NULL when the fleet
 * database has none (any more: restored, or failed over to a replica behind).
 */
void fdb_follow(struct fdb *f, const struct fleet_row *r);

#endif /* PGCUTOVER_FLEET_INT_H */

/*
 * fleet_sql.h - the SQL pgcutover runs on the fleet database (fleet_sql.c):
 * pure text building, no I/O, unit-tested.
 *
 * The fleet database holds, in schema pgcutover:
 *
 *   instances  one row per instance: its heartbeat, and per database the
 *              route it serves and whether it holds it paused (SHOW FLEET);
 *   databases  one row per logical database: the route every instance
 *              follows, an epoch bumped by every switch, and the state of
 *              the switch of that epoch: idle, pausing (a coordinator asked
 *              every instance to pause; it holds a lease until lease_until),
 *              decided (the route flipped: the commit point), aborting
 *              (someone took the abort over: it lifts the old side's fence)
 *              and aborted (every instance may resume on the old side);
 *   acks       per database and epoch, each instance that paused and
 *              drained (ok) or could not (detail), with the process IDs of
 *              its server connections on the old side (the fence spares them).
 *
 * Every change of a databases row is a conditional UPDATE on its state, so
 * that a decision and an abort exclude each other; every one NOTIFYs
 * channel pgcutover with the database's name (a wake-up: polling is the
 * truth).  Names and values are quoted (sqlquote.h); a name that does not
 * fit the buffer makes the builder return false.
 */
#ifndef PGCUTOVER_FLEET_SQL_H
#define PGCUTOVER_FLEET_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pq_buf;

/* The channel every change is notified on. */
#define FLEET_CHANNEL "pgcutover"

/* The schema, created when missing (serialised by a transaction-level advisory lock). */
const char *fleet_schema_sql(void);

/* One database as this instance serves it, for its heartbeat row. */
struct fleet_db_state {
	const char *name;
	const char *route; /* "source" or "target" */
	bool paused;
};

/*
 * The heartbeat and the poll, one round trip: LISTEN, this instance's row
 * (heartbeat = now(); started given by the caller, UTC text), then the
 * databases: db, route, epoch, state, switch_to, coordinator, whether the
 * lease expired, and the number of live instances (heartbeat younger than
 * lease_ms).
 */
bool fleet_poll_sql(struct pq_buf *b, const char *me, const char *address, const char *started,
		    const struct fleet_db_state *dbs, size_t ndbs, int64_t lease_ms)
	__attribute__((warn_unused_result));

/*
 * A coordinator starts a switch of db from 'from' to 'to': the database's
 * row is made if missing, its advisory lock taken by this session, the
 * epoch bumped and the state set to pausing with a lease, provided the
 * route is 'from' and no switch holds it (or the one that did let its lease
 * expire).  One row when it worked: the new epoch, and the other live
 * instances' names separated by newlines.  No row: fleet_state_sql tells why
 * (and fleet_unlock_sql gives the lock back).
 */
bool fleet_begin_sql(struct pq_buf *b, const char *db, const char *me, const char *from,
		     const char *to, int64_t lease_ms) __attribute__((warn_unused_result));

/* The row of db: route, epoch, state, coordinator, lease expired. */
bool fleet_state_sql(struct pq_buf *b, const char *db) __attribute__((warn_unused_result));

/* Give back every advisory lock this session holds. */
const char *fleet_unlock_sql(void);

/* The acks of (db, epoch): instance, ok, detail, pids (comma-separated). */
bool fleet_acks_sql(struct pq_buf *b, const char *db, int64_t epoch)
	__attribute__((warn_unused_result));

/* An instance's ack of (db, epoch): ok, or why not; pids are its old-side servers. */
bool fleet_ack_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me, bool ok,
		   const char *detail, const uint32_t *pids, size_t npids)
	__attribute__((warn_unused_result));

/* The coordinator renews its lease: one row while it still holds the switch. */
bool fleet_renew_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
		     int64_t lease_ms) __attribute__((warn_unused_result));

/* The decision (route = to): one row when it is committed, none when the switch was aborted. */
bool fleet_decide_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
		      const char *to) __attribute__((warn_unused_result));

/*
 * Take the abort of (db, epoch) over: one row when this instance now holds
 * it (it was the coordinator, or the holder's lease expired).
 */
bool fleet_claim_abort_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
			   int64_t lease_ms) __attribute__((warn_unused_result));

/* The abort is recorded (the old side's fence is lifted): one row when it was this instance's. */
bool fleet_aborted_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me)
	__attribute__((warn_unused_result));
/*
 * An instance holding for (db, epoch) finds the fleet database without it
 * (no row, or an older epoch: restored, or failed over to a replica behind):
 * it takes the abort of that epoch, the row made again as 'aborting' under
 * this instance.  One row when it did.
 */
bool fleet_reclaim_lost_sql(struct pq_buf *b, const char *db, const char *route, int64_t epoch,
			    const char *me, int64_t lease_ms) __attribute__((warn_unused_result));
/*
 * The coordinator's own epoch recorded as aborted where the fleet database
 * lost it (restored, or failed over to a replica behind): the row is made
 * again, or brought forward to that epoch, so that the instances holding
 * for it resume on the old side.  One row when it wrote.
 */
bool fleet_record_abort_sql(struct pq_buf *b, const char *db, const char *route, int64_t epoch,
			    const char *me) __attribute__((warn_unused_result));

/*
 * SHOW FLEET: instance, address, heartbeat age (ms), live, db, route,
 * paused; one row per instance and database it serves.
 */
bool fleet_show_sql(struct pq_buf *b, int64_t lease_ms) __attribute__((warn_unused_result));

#endif /* PGCUTOVER_FLEET_SQL_H */

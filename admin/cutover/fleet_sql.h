/*
 * fleet_sql.h - the SQL pgcutover runs on the fleet database (fleet_sql.c):
 * pure text building, and the reading of a databases row out of the answer;
 * no I/O, unit-tested.
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

#include "proxy/core/route.h"

struct pg_result; /* libpq's PGresult */
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

/* The row of db, as the poll reads it (struct fleet_row): none when the fleet has no row. */
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

/* The state of a database's switch (column state of databases). */
enum fleet_state {
	FLEET_IDLE,
	FLEET_PAUSING,
	FLEET_DECIDED,
	FLEET_ABORTING,
	FLEET_ABORTED,
	FLEET_OTHER, /* one this version does not know (the CHECK allows none): followed as idle */
};

const char *fleet_state_name(enum fleet_state st);

/* A databases row, as fleet_poll_sql and fleet_state_sql read it. */
struct fleet_row {
	const char *db; /* the strings point into the answer */
	enum route_side route;
	int64_t epoch;
	enum fleet_state state;
	enum route_side switch_to;
	bool has_switch_to;
	const char *coordinator; /* "" when none */
	bool expired;            /* the lease of its switch expired */
};

/*
 * Row i of a fleet_poll_sql or fleet_state_sql answer; false when its route
 * is neither source nor target (the schema's CHECK allows no other).
 */
bool fleet_row_read(struct fleet_row *row, const struct pg_result *res, int i);
/* The row of a fleet_state_sql answer (res may be NULL), in *row; NULL when it has none. */
const struct fleet_row *fleet_state_read(struct fleet_row *row, const struct pg_result *res);

/* Where the switch of an epoch stands in its database's row. */
enum fleet_epoch_at {
	/*
	 * No row, or an older epoch: the fleet database lost it (restored from
	 * a backup, or failed over to a replica that had not received it).
	 */
	FLEET_EPOCH_LOST,
	FLEET_EPOCH_CURRENT, /* the row is still that switch's */
	FLEET_EPOCH_PASSED,  /* a later switch began */
};

/* Where epoch stands in row (NULL: the fleet database has no row for the database). */
enum fleet_epoch_at fleet_epoch_at(const struct fleet_row *row, int64_t epoch);

/*
 * SHOW FLEET: instance, address, heartbeat age (ms), live, db, route,
 * paused; one row per instance and database it serves.
 */
bool fleet_show_sql(struct pq_buf *b, int64_t lease_ms) __attribute__((warn_unused_result));

#endif /* PGCUTOVER_FLEET_SQL_H */

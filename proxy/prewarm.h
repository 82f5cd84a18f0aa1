/*
 * prewarm.h - server connections opened early for a switch (prewarm.c).
 *
 * After the resume, every held transaction needs a server on the new side.
 * Opened only then, one backend fork and login after another, they made the
 * longest stretch without a commit several times the pause (317 ms against
 * a 55 ms pause, measured).  So a switch opens them early, on the side it
 * goes to, one per client (with that client's startup parameters), within
 * the pool's limits (pool_size, max_db_connections, max_user_connections):
 *
 *  - ahead of the pause, once the preflight passed: for the clients in a
 *    transaction at that moment, without closing anything.  They log in
 *    while the switch prepares, so that the pause does not share the
 *    machine with their forks (in session pooling, a fork per session made
 *    the fence wait ~100 ms for a CPU, measured);
 *  - once the drain is over: for the held clients that have none yet,
 *    making room in transaction pooling by closing the old side's idle
 *    servers (nothing runs on them while the database is held).  These log
 *    in during the lag wait and the sequence sync.
 *
 * The held transactions find them ready at the resume.
 *
 * Such a server serves only once the route has flipped to its side, and only
 * if it logged in with the default_transaction_read_only its client was
 * told (reported by PostgreSQL 14 and later): one that logged in while a
 * fence was still up on that side (lifted just before the resume) would be
 * read-only, and is closed instead.  A switch that fails closes them.
 */
#ifndef PGCUTOVER_PREWARM_H
#define PGCUTOVER_PREWARM_H

#include <stdbool.h>

#include "proxy/core/route.h"

struct database;
struct server;

/* Before the pause: servers on 'side' for db's clients in a transaction now; how many. */
int db_prewarm_ahead(struct database *db, enum route_side side);
/* Open servers on 'side' for db's held clients, within the limits; how many were opened. */
int db_prewarm(struct database *db, enum route_side side);
/* The switch failed: close the servers it opened early on 'side' (not routed to). */
void db_prewarm_drop(struct database *db, enum route_side side);
/* The route flipped: close the early servers that are idle and unfit (see above). */
void db_prewarm_settle(struct database *db);

/* Whether s was opened early and its database is not routed to its side yet. */
bool prewarm_early(const struct server *s);
/*
 * A server logged in: false when it was opened early, the route has flipped
 * to its side, and it is unfit (then it is closed); true otherwise.
 */
bool prewarm_logged_in(struct server *s) __attribute__((warn_unused_result));

#endif /* PGCUTOVER_PREWARM_H */

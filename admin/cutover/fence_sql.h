/*
 * fence_sql.h - the SQL of a fence (fence_sql.c): pure text building, no
 * I/O, unit-tested.
 *
 * A fence on one side of a database makes the roles pgcutover logs in to it
 * as read-only there (ALTER ROLE ... IN DATABASE ... SET
 * default_transaction_read_only = on: new sessions start read-only) and
 * terminates the database's other client sessions there.  Never touched:
 * control_user (pgcutover's control connections must keep writing: the
 * marker row, the sequence sync, the reverse subscription it owns), a role
 * that owns a subscription in the database (its apply worker must keep
 * writing), replication connections (not client backends), and the server
 * connections pgcutover itself holds there (listed by process ID).
 */
#ifndef PGCUTOVER_FENCE_SQL_H
#define PGCUTOVER_FENCE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pq_buf;

/* What a fence statement is built from. */
struct fence_spec {
	const char *const *roles; /* the roles pgcutover logs in as (auth_file users, or the
				     section's user) */
	size_t nroles;
	const char *control_user;  /* never fenced, its sessions never terminated */
	const uint32_t *keep_pids; /* pgcutover's own server connections on that side */
	size_t nkeep;
};

/*
 * The statements that put a fence up (on = true) or take it down, as one
 * query string (NUL-terminated in b; failure is b->failed).  Putting it up
 * answers, in its last statement, one row: the sessions terminated and the
 * superuser sessions that could not be (when control_user is not one).
 * Taking it down only resets the setting (nobody is terminated).
 */
void fence_sql(struct pq_buf *b, const struct fence_spec *spec, bool on);

/*
 * One query that tells whether the side is fenced now: one row with the
 * number of those roles that have default_transaction_read_only = on in
 * this database, and the number of those roles that exist.
 */
void fence_state_sql(struct pq_buf *b, const struct fence_spec *spec);

#endif /* PGCUTOVER_FENCE_SQL_H */

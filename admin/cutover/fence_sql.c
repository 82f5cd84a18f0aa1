/*
 * fence_sql.c - the SQL of a fence (see fence_sql.h).
 *
 * Every name is quoted (sqlquote.h); the role statements run in a DO block
 * so that the roles that do not exist on the side, control_user and the
 * owners of subscriptions are filtered by the server itself in one round
 * trip.
 */
#include "admin/cutover/fence_sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"

/* How long the fence waits for each terminated session to be gone (pg_terminate_backend). */
#define FENCE_TERMINATE_WAIT_MS 5000

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

/* ARRAY[...]::text[] of the roles. */
static void put_roles(struct pq_buf *b, const struct fence_spec *spec)
{
	put(b, "ARRAY[");
	for (size_t i = 0; i < spec->nroles; i++) {
		if (i)
			put(b, ",");
		sqlquote_put_literal(b, spec->roles[i]);
	}
	put(b, "]::pg_catalog.text[]");
}

/*
 * The roles a fence concerns, as a query over pg_roles a: those listed that
 * exist, but control_user, the owners of a subscription in this database
 * and, when control_user is not a superuser, the superusers (only a
 * superuser may alter one; like their sessions, they are left alone).
 */
static void put_fenced_roles_where(struct pq_buf *b, const struct fence_spec *spec)
{
	put(b, " WHERE a.rolname = ANY (");
	put_roles(b, spec);
	put(b, ") AND a.rolname <> ");
	sqlquote_put_literal(b, spec->control_user);
	put(b, " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s"
	       " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
	       " WHERE s.subowner = a.oid AND d.datname = pg_catalog.current_database())"
	       " AND (NOT a.rolsuper OR (SELECT m.rolsuper FROM pg_catalog.pg_roles m"
	       " WHERE m.rolname = current_user))");
}

void fence_sql(struct pq_buf *b, const struct fence_spec *spec, bool on)
{
	char num[32];

	put(b, "DO $pgcutover_fence$ DECLARE r record; BEGIN"
	       " FOR r IN SELECT a.rolname FROM pg_catalog.pg_roles a");
	put_fenced_roles_where(b, spec);
	/*
	 * Lifting touches only the roles fenced now: nothing to lift needs no
	 * privilege, and a fence a superuser lifted by hand counts as lifted.
	 */
	if (!on)
		put(b,
		    " AND EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s"
		    " WHERE s.setrole = a.oid AND s.setdatabase = (SELECT d.oid"
		    " FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())"
		    " AND 'default_transaction_read_only=on' = ANY (s.setconfig))");
	put(b, " LOOP EXECUTE pg_catalog.format(");
	put(b, on ? "'ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on'"
		  : "'ALTER ROLE %I IN DATABASE %I RESET default_transaction_read_only'");
	put(b, ", r.rolname, pg_catalog.current_database()); END LOOP; END $pgcutover_fence$;");
	if (!on) {
		pq_put_u8(b, 0);
		return;
	}
	/*
	 * The sessions to end: client backends of this database, but this one,
	 * control_user's and pgcutover's own server connections.  Without
	 * pg_read_all_stats, control_user sees no backend_type of other roles'
	 * sessions: then every process of the database but walsenders (listed
	 * in pg_stat_replication to anyone) and the processes of subscription
	 * owners (apply workers) counts as a client backend.  A superuser's
	 * session can only be ended by a superuser: it is counted, not touched,
	 * when control_user is not one.  Each is waited for, so that no commit
	 * of a terminated session can land after the lag goal is read.
	 */
	put(b, " SELECT count(*) FILTER (WHERE t), count(*) FILTER (WHERE NOT t) FROM"
	       " (SELECT CASE WHEN x.rolsuper AND NOT (SELECT rolsuper FROM pg_catalog.pg_roles"
	       " WHERE rolname = current_user) THEN false"
	       " ELSE pg_catalog.pg_terminate_backend(x.pid, ");
	snprintf(num, sizeof(num), "%d", FENCE_TERMINATE_WAIT_MS);
	put(b, num);
	put(b, ") END AS t FROM (SELECT p.pid, r.rolsuper FROM pg_catalog.pg_stat_activity p"
	       " JOIN pg_catalog.pg_roles r ON r.oid = p.usesysid"
	       " WHERE p.datname = pg_catalog.current_database()"
	       " AND (p.backend_type = 'client backend' OR (p.backend_type IS NULL"
	       " AND p.pid NOT IN (SELECT w.pid FROM pg_catalog.pg_stat_replication w)))"
	       " AND p.usesysid NOT IN (SELECT o.subowner FROM pg_catalog.pg_subscription o)"
	       " AND p.pid <> pg_catalog.pg_backend_pid() AND p.usename <> ");
	sqlquote_put_literal(b, spec->control_user);
	/*
	 * pgcutover's own servers: one literal array (one value to parse, not
	 * one per element) and NOT IN a subquery, which the planner hashes, so
	 * that thousands of them (session pooling: a server per idle client)
	 * cost O(sessions + kept), not their product.
	 */
	put(b, " AND p.pid NOT IN (SELECT k FROM pg_catalog.unnest('{");
	for (size_t i = 0; i < spec->nkeep; i++) {
		snprintf(num, sizeof(num), "%s%" PRIu32, i ? "," : "", spec->keep_pids[i]);
		put(b, num);
	}
	put(b, "}'::pg_catalog.int4[]) k)) x) y");
	pq_put_u8(b, 0);
}

void fence_state_sql(struct pq_buf *b, const struct fence_spec *spec)
{
	put(b, "SELECT count(*) FILTER (WHERE s.setconfig IS NOT NULL"
	       " AND 'default_transaction_read_only=on' = ANY (s.setconfig)), count(*)"
	       " FROM pg_catalog.pg_roles a LEFT JOIN pg_catalog.pg_db_role_setting s"
	       " ON s.setrole = a.oid AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database"
	       " WHERE datname = pg_catalog.current_database())");
	put_fenced_roles_where(b, spec);
	pq_put_u8(b, 0);
}

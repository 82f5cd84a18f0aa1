/*
 * fleet_sql.c - the SQL of the fleet database (see fleet_sql.h).
 */
#include "admin/cutover/fleet_sql.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"

/*
 * The key of the transaction-level advisory lock that serialises the
 * creation of the schema between instances starting at once.
 */
#define FLEET_SCHEMA_LOCK "7173826221"

/*
 * A databases row as the instances read it (fleet_row_read): the poll and
 * fleet_state_sql select these columns first, in this order.
 */
#define ROW_COLUMNS                                                                    \
	"db, route, epoch, state, COALESCE(switch_to, ''), COALESCE(coordinator, '')," \
	" COALESCE(lease_until < now(), false)"

static const char SCHEMA_SQL[] =
	"SELECT pg_catalog.pg_advisory_xact_lock(" FLEET_SCHEMA_LOCK ");"
	" CREATE SCHEMA IF NOT EXISTS pgcutover;"
	" CREATE TABLE IF NOT EXISTS pgcutover.instances ("
	"name text PRIMARY KEY, address text NOT NULL DEFAULT '',"
	" started timestamptz NOT NULL DEFAULT now(), heartbeat timestamptz NOT NULL DEFAULT now(),"
	" dbs text[] NOT NULL DEFAULT '{}', routes text[] NOT NULL DEFAULT '{}',"
	" paused boolean[] NOT NULL DEFAULT '{}');"
	" CREATE TABLE IF NOT EXISTS pgcutover.databases ("
	"db text PRIMARY KEY, route text NOT NULL CHECK (route IN ('source', 'target')),"
	" epoch bigint NOT NULL DEFAULT 0,"
	" state text NOT NULL DEFAULT 'idle'"
	" CHECK (state IN ('idle', 'pausing', 'decided', 'aborting', 'aborted')),"
	" switch_to text CHECK (switch_to IN ('source', 'target')), coordinator text,"
	" lease_until timestamptz, updated timestamptz NOT NULL DEFAULT now());"
	" CREATE TABLE IF NOT EXISTS pgcutover.acks ("
	"db text NOT NULL, epoch bigint NOT NULL, instance text NOT NULL, ok boolean NOT NULL,"
	" detail text NOT NULL DEFAULT '', pids integer[] NOT NULL DEFAULT '{}',"
	" at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (db, epoch, instance))";

const char *fleet_schema_sql(void)
{
	return SCHEMA_SQL;
}

const char *fleet_unlock_sql(void)
{
	return "SELECT pg_catalog.pg_advisory_unlock_all()";
}

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

static void put_int(struct pq_buf *b, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	put(b, num);
}

/*
 * '<ms> milliseconds'::interval.  A lease runs from clock_timestamp(), when
 * the statement runs, not from now(), when its transaction began: a begin
 * that waited (a busy fleet database) must not publish a lease already spent.
 */
static void put_lease(struct pq_buf *b, int64_t lease_ms)
{
	put(b, "'");
	put_int(b, lease_ms);
	put(b, " milliseconds'::pg_catalog.interval");
}

static bool end(struct pq_buf *b)
{
	pq_put_u8(b, 0);
	return !b->failed;
}

/* A databases row's key and epoch: WHERE db = '...' AND epoch = N */
static void put_row(struct pq_buf *b, const char *db, int64_t epoch)
{
	put(b, " WHERE db = ");
	sqlquote_put_literal(b, db);
	put(b, " AND epoch = ");
	put_int(b, epoch);
}

/*
 * The fleet's own writes are durable whatever the fleet database's default:
 * a switch's row lost in a crash of an instance of PostgreSQL running with
 * synchronous_commit = off would leave instances waiting for an epoch that
 * the fleet no longer knows.  (A multi-statement query is one transaction.)
 */
static void put_durable(struct pq_buf *b)
{
	put(b, "SET LOCAL synchronous_commit TO on; ");
}

static void put_notify(struct pq_buf *b, const char *db)
{
	put(b, "SELECT pg_catalog.pg_notify('" FLEET_CHANNEL "', ");
	sqlquote_put_literal(b, db);
	put(b, "); ");
}

bool fleet_poll_sql(struct pq_buf *b, const char *me, const char *address, const char *started,
		    const struct fleet_db_state *dbs, size_t ndbs, int64_t lease_ms)
{
	put(b, "LISTEN " FLEET_CHANNEL "; INSERT INTO pgcutover.instances AS i"
	       " (name, address, started, heartbeat, dbs, routes, paused) VALUES (");
	sqlquote_put_literal(b, me);
	put(b, ", ");
	sqlquote_put_literal(b, address);
	put(b, ", ");
	sqlquote_put_literal(b, started);
	put(b, "::timestamptz, now(), ARRAY[");
	for (size_t i = 0; i < ndbs; i++) {
		if (i)
			put(b, ",");
		sqlquote_put_literal(b, dbs[i].name);
	}
	put(b, "]::text[], ARRAY[");
	for (size_t i = 0; i < ndbs; i++) {
		if (i)
			put(b, ",");
		sqlquote_put_literal(b, dbs[i].route);
	}
	put(b, "]::text[], ARRAY[");
	for (size_t i = 0; i < ndbs; i++)
		put(b,
		    i ? (dbs[i].paused ? ",true" : ",false") : (dbs[i].paused ? "true" : "false"));
	put(b, "]::boolean[]) ON CONFLICT (name) DO UPDATE SET heartbeat = now(),"
	       " address = EXCLUDED.address, started = EXCLUDED.started, dbs = EXCLUDED.dbs,"
	       " routes = EXCLUDED.routes, paused = EXCLUDED.paused;"
	       " SELECT " ROW_COLUMNS ","
	       " (SELECT count(*) FROM pgcutover.instances WHERE heartbeat > now() - ");
	put_lease(b, lease_ms);
	put(b, ") FROM pgcutover.databases");
	return end(b);
}

bool fleet_begin_sql(struct pq_buf *b, const char *db, const char *me, const char *from,
		     const char *to, int64_t lease_ms)
{
	put_durable(b);
	put(b, "INSERT INTO pgcutover.databases (db, route) VALUES (");
	sqlquote_put_literal(b, db);
	put(b, ", ");
	sqlquote_put_literal(b, from);
	put(b, ") ON CONFLICT (db) DO NOTHING; ");
	put_notify(b, db);
	put(b, "WITH l AS (SELECT pg_catalog.pg_try_advisory_lock("
	       "pg_catalog.hashtextextended('pgcutover switch ' || ");
	sqlquote_put_literal(b, db);
	put(b, ", 0)) AS got) UPDATE pgcutover.databases d SET epoch = d.epoch + 1,"
	       " state = 'pausing', switch_to = ");
	sqlquote_put_literal(b, to);
	put(b, ", coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, ", lease_until = pg_catalog.clock_timestamp() + ");
	put_lease(b, lease_ms);
	put(b, ", updated = now() FROM l WHERE l.got AND d.db = ");
	sqlquote_put_literal(b, db);
	put(b, " AND d.route = ");
	sqlquote_put_literal(b, from);
	put(b, " AND (d.state IN ('idle', 'decided', 'aborted')"
	       " OR (d.state IN ('pausing', 'aborting') AND d.lease_until < now()))"
	       " RETURNING d.epoch, pg_catalog.array_to_string(ARRAY(SELECT name"
	       " FROM pgcutover.instances WHERE heartbeat > now() - ");
	put_lease(b, lease_ms);
	put(b, " AND name <> ");
	sqlquote_put_literal(b, me);
	put(b, " ORDER BY name), E'\\n')");
	return end(b);
}

bool fleet_state_sql(struct pq_buf *b, const char *db)
{
	put(b, "SELECT " ROW_COLUMNS " FROM pgcutover.databases WHERE db = ");
	sqlquote_put_literal(b, db);
	return end(b);
}

bool fleet_acks_sql(struct pq_buf *b, const char *db, int64_t epoch)
{
	put(b, "SELECT instance, ok, detail, pg_catalog.array_to_string(pids, ',')"
	       " FROM pgcutover.acks");
	put_row(b, db, epoch);
	return end(b);
}

bool fleet_ack_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me, bool ok,
		   const char *detail, const uint32_t *pids, size_t npids)
{
	put_durable(b);
	put(b, "INSERT INTO pgcutover.acks (db, epoch, instance, ok, detail, pids) VALUES (");
	sqlquote_put_literal(b, db);
	put(b, ", ");
	put_int(b, epoch);
	put(b, ", ");
	sqlquote_put_literal(b, me);
	put(b, ok ? ", true, " : ", false, ");
	sqlquote_put_literal(b, detail ? detail : "");
	put(b, ", ARRAY[");
	for (size_t i = 0; i < npids; i++) {
		if (i)
			put(b, ",");
		put_int(b, pids[i]);
	}
	put(b, "]::integer[]) ON CONFLICT (db, epoch, instance) DO NOTHING; ");
	put_notify(b, db);
	b->len -= 2; /* no statement after it: drop "; " */
	return end(b);
}

bool fleet_renew_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
		     int64_t lease_ms)
{
	put_durable(b);
	put(b, "UPDATE pgcutover.databases SET lease_until = pg_catalog.clock_timestamp() + ");
	put_lease(b, lease_ms);
	put_row(b, db, epoch);
	put(b, " AND state = 'pausing' AND coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, " RETURNING 1");
	return end(b);
}

bool fleet_decide_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
		      const char *to)
{
	put_durable(b);
	put_notify(b, db);
	put(b, "UPDATE pgcutover.databases SET state = 'decided', route = ");
	sqlquote_put_literal(b, to);
	put(b, ", updated = now()");
	put_row(b, db, epoch);
	put(b, " AND state = 'pausing' AND coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, " RETURNING 1");
	return end(b);
}

bool fleet_claim_abort_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me,
			   int64_t lease_ms)
{
	put_durable(b);
	put_notify(b, db);
	put(b, "UPDATE pgcutover.databases SET state = 'aborting', coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, ", lease_until = pg_catalog.clock_timestamp() + ");
	put_lease(b, lease_ms);
	put(b, ", updated = now()");
	put_row(b, db, epoch);
	put(b, " AND ((state = 'pausing' AND (coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, " OR lease_until < now())) OR (state = 'aborting' AND (coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, " OR lease_until < now()))) RETURNING 1");
	return end(b);
}

bool fleet_aborted_sql(struct pq_buf *b, const char *db, int64_t epoch, const char *me)
{
	put_durable(b);
	put_notify(b, db);
	put(b, "UPDATE pgcutover.databases SET state = 'aborted', updated = now()");
	put_row(b, db, epoch);
	put(b, " AND state = 'aborting' AND coordinator = ");
	sqlquote_put_literal(b, me);
	put(b, " RETURNING 1");
	return end(b);
}

bool fleet_reclaim_lost_sql(struct pq_buf *b, const char *db, const char *route, int64_t epoch,
			    const char *me, int64_t lease_ms)
{
	put_durable(b);
	put_notify(b, db);
	put(b, "INSERT INTO pgcutover.databases AS d (db, route, epoch, state, coordinator,"
	       " lease_until) VALUES (");
	sqlquote_put_literal(b, db);
	put(b, ", ");
	sqlquote_put_literal(b, route);
	put(b, ", ");
	put_int(b, epoch);
	put(b, ", 'aborting', ");
	sqlquote_put_literal(b, me);
	put(b, ", pg_catalog.clock_timestamp() + ");
	put_lease(b, lease_ms);
	put(b, ") ON CONFLICT (db) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'aborting',"
	       " switch_to = NULL, coordinator = EXCLUDED.coordinator,"
	       " lease_until = EXCLUDED.lease_until, updated = now() WHERE d.epoch < EXCLUDED.epoch"
	       " RETURNING 1");
	return end(b);
}

bool fleet_record_abort_sql(struct pq_buf *b, const char *db, const char *route, int64_t epoch,
			    const char *me)
{
	put_durable(b);
	put_notify(b, db);
	put(b, "INSERT INTO pgcutover.databases AS d (db, route, epoch, state, coordinator)"
	       " VALUES (");
	sqlquote_put_literal(b, db);
	put(b, ", ");
	sqlquote_put_literal(b, route);
	put(b, ", ");
	put_int(b, epoch);
	put(b, ", 'aborted', ");
	sqlquote_put_literal(b, me);
	put(b, ") ON CONFLICT (db) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'aborted',"
	       " coordinator = EXCLUDED.coordinator, updated = now() WHERE d.epoch < EXCLUDED.epoch"
	       " RETURNING 1");
	return end(b);
}

bool fleet_show_sql(struct pq_buf *b, int64_t lease_ms)
{
	put(b, "SELECT i.name, i.address,"
	       " (extract(epoch FROM now() - i.heartbeat) * 1000)::bigint,"
	       " i.heartbeat > now() - ");
	put_lease(b, lease_ms);
	put(b, ", d.db, d.route, d.paused FROM pgcutover.instances i"
	       " LEFT JOIN LATERAL unnest(i.dbs, i.routes, i.paused) AS d(db, route, paused) ON true"
	       " ORDER BY i.name, d.db");
	return end(b);
}

static const char *const state_names[] = {
	[FLEET_IDLE] = "idle",         [FLEET_PAUSING] = "pausing", [FLEET_DECIDED] = "decided",
	[FLEET_ABORTING] = "aborting", [FLEET_ABORTED] = "aborted", [FLEET_OTHER] = "unknown",
};

const char *fleet_state_name(enum fleet_state st)
{
	return state_names[st];
}

static enum fleet_state parse_state(const char *s)
{
	for (int st = FLEET_IDLE; st < FLEET_OTHER; st++)
		if (strcmp(s, state_names[st]) == 0)
			return (enum fleet_state)st;
	return FLEET_OTHER;
}

static bool parse_side(const char *s, enum route_side *out)
{
	if (strcmp(s, "source") == 0)
		*out = SIDE_SOURCE;
	else if (strcmp(s, "target") == 0)
		*out = SIDE_TARGET;
	else
		return false;
	return true;
}

bool fleet_row_read(struct fleet_row *row, const PGresult *res, int i)
{
	memset(row, 0, sizeof(*row));
	row->db = PQgetvalue(res, i, 0);
	row->epoch = strtoll(PQgetvalue(res, i, 2), NULL, 10);
	row->state = parse_state(PQgetvalue(res, i, 3));
	row->has_switch_to = parse_side(PQgetvalue(res, i, 4), &row->switch_to);
	row->coordinator = PQgetvalue(res, i, 5);
	row->expired = strcmp(PQgetvalue(res, i, 6), "t") == 0;
	return parse_side(PQgetvalue(res, i, 1), &row->route);
}

const struct fleet_row *fleet_state_read(struct fleet_row *row, const PGresult *res)
{
	if (res == NULL || PQntuples(res) != 1 || !fleet_row_read(row, res, 0))
		return NULL;
	return row;
}

enum fleet_epoch_at fleet_epoch_at(const struct fleet_row *row, int64_t epoch)
{
	if (row == NULL || row->epoch < epoch)
		return FLEET_EPOCH_LOST;
	return row->epoch == epoch ? FLEET_EPOCH_CURRENT : FLEET_EPOCH_PASSED;
}

/*
 * check_sql.c - the text of CHECK's catalog queries (see check_int.h for
 * their columns).  Pure text building: every configured name goes through
 * sqlquote.h.  The queries read the catalogs only; the session's search_path
 * is emptied by the first one, so that every name the server prints (types,
 * index definitions) is schema-qualified alike on both sides.
 *
 * The "user" tables and sequences are those outside pg_catalog,
 * information_schema, the TOAST schemas and the temporary ones.
 */
#include <stdio.h>
#include <string.h>

#include "admin/cutover/check_int.h"
#include "admin/cutover/engine.h"
#include "admin/cutover/replication_names.h"
#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"
#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Namespaces whose objects are the application's. */
#define USER_NS                                                  \
	" n.nspname NOT IN ('pg_catalog', 'information_schema')" \
	" AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

/* The side the switch leaves / goes to, from the run. */
static bool is_old(const struct check_run *run, enum route_side side)
{
	return side == run->from;
}

static bool reverse_way(const struct check_run *run)
{
	return run->to == SIDE_SOURCE && run->dc->d.reverse_replication &&
	       run->dc->d.lag_method == LAG_LSN;
}

bool check_query_runs(const struct check_run *run, enum check_query q, enum route_side side)
{
	const struct db_config *dc = run->dc;
	bool lsn = dc->d.lag_method == LAG_LSN;

	switch (q) {
	case QR_REACH:
	case QR_PRIV:
	case QR_SEQ:
	case QR_SCHEMA:
	case QR_LO:
	case QR_SESS:
	case QR_FENCE:
		return true;
	case QR_TABLES:
		return is_old(run, side);
	case QR_PUBS:
	case QR_SLOT:
		return lsn && is_old(run, side);
	case QR_SUB:
	case QR_SUBREL:
		return lsn && !is_old(run, side);
	case QR_MARKER:
		return dc->d.lag_method == LAG_MARKER;
	case QR_WRITTEN:
		return dc->d.lag_method == LAG_NONE && run->to == SIDE_SOURCE &&
		       is_old(run, side) && run->db->recorded.switched_at[0] &&
		       run->db->recorded.side == run->from;
	case QR_COUNT:
		break;
	}
	return false;
}

/* The slot that feeds the side switched to (as the lag wait watches it). */
static const char *feeding_slot(const struct check_run *run)
{
	static char rev[64];

	if (reverse_way(run)) {
		replication_reverse_name(run->db->name, rev, sizeof(rev));
		return rev;
	}
	return run->dc->replication_slot ? run->dc->replication_slot : "";
}

/* An expression naming the subscription that feeds the new side, on the new side. */
static void put_sub_name(struct pq_buf *b, const struct check_run *run)
{
	const struct db_config *dc = run->dc;

	if (run->to == SIDE_TARGET && dc->subscription) {
		sqlquote_put_literal(b, dc->subscription);
		put(b, "::text");
		return;
	}
	if (reverse_way(run)) {
		char rev[64];

		replication_reverse_name(run->db->name, rev, sizeof(rev));
		sqlquote_put_literal(b, rev);
		put(b, "::text");
		return;
	}
	put(b, "(SELECT s.subname::text FROM pg_catalog.pg_subscription s"
	       " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
	       " WHERE d.datname = pg_catalog.current_database() AND s.subslotname = ");
	sqlquote_put_literal(b, feeding_slot(run));
	put(b, " ORDER BY s.oid LIMIT 1)");
}

/* marker_table as a quoted regclass literal, or false when it does not quote. */
static bool marker_lit(const struct check_run *run, char *lit, size_t len)
{
	char table[300];

	return sqlquote_qualified(run->dc->d.marker_table, table, sizeof(table)) &&
	       sqlquote_literal(table, lit, len);
}

static void sql_reach(struct pq_buf *b)
{
	put(b, "SELECT pg_catalog.current_setting('server_version_num')::int,"
	       " pg_catalog.current_setting('server_version'), pg_catalog.pg_is_in_recovery(),"
	       " r.rolsuper, r.rolcreaterole, r.rolreplication,"
	       " pg_catalog.pg_has_role(current_user, 'pg_signal_backend', 'MEMBER'),"
	       " pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),"
	       " pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'),"
	       " current_user::text, (SELECT d.datcollate::text FROM pg_catalog.pg_database d"
	       " WHERE d.datname = pg_catalog.current_database())"
	       " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
}

static void sql_priv(const struct check_run *run, struct pq_buf *b)
{
	char lit[340];
	bool marker = run->dc->d.lag_method == LAG_MARKER && marker_lit(run, lit, sizeof(lit));

	put(b, "SELECT pg_catalog.has_function_privilege(pg_catalog.to_regprocedure("
	       "'pg_catalog.pg_logical_emit_message(boolean,text,text)'), 'EXECUTE'),"
	       " pg_catalog.has_function_privilege(pg_catalog.to_regprocedure("
	       "'pg_catalog.pg_terminate_backend(integer,bigint)'), 'EXECUTE'),");
	if (marker) {
		for (int i = 0; i < 2; i++) {
			put(b, " CASE WHEN pg_catalog.to_regclass(");
			put(b, lit);
			put(b, ") IS NULL THEN NULL ELSE pg_catalog.has_table_privilege(");
			put(b, lit);
			put(b, i == 0 ? ", 'INSERT') END," : ", 'SELECT') END,");
		}
	} else {
		put(b, " NULL::boolean, NULL::boolean,");
	}
	put(b,
	    " (SELECT pg_catalog.string_agg(x.t, ', ') FROM (SELECT pg_catalog.quote_ident(n.nspname)"
	    " || '.' || pg_catalog.quote_ident(c.relname) AS t"
	    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE c.relkind IN ('r', 'p') AND" USER_NS
	    " AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1 LIMIT 20) x),"
	    " (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
	    " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND" USER_NS
	    " AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT'))");
}

static void sql_seq(struct pq_buf *b)
{
	put(b,
	    "SELECT n.nspname || '.' || c.relname, pg_catalog.has_sequence_privilege(c.oid, 'SELECT'),"
	    " pg_catalog.has_sequence_privilege(c.oid, 'UPDATE')"
	    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')");
}

static void sql_schema(struct pq_buf *b)
{
	/* an empty search_path for this query only: every name the server prints is qualified */
	put(b,
	    "SELECT pg_catalog.set_config('search_path', '', true);"
	    " SELECT 't', n.nspname::text, c.relname::text, '', c.relkind::text, c.relpersistence::text"
	    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE c.relkind IN ('r', 'p') AND" USER_NS
	    " UNION ALL SELECT 'c', n.nspname, c.relname, a.attname::text,"
	    " pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> t.typcollation"
	    " THEN ' COLLATE ' || pg_catalog.quote_ident(co.collname) ELSE '' END,"
	    " CASE WHEN a.attnotnull THEN 'n' ELSE '' END || CASE WHEN a.atthasdef THEN 'd' ELSE '' END"
	    " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
	    " LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation"
	    " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND" USER_NS
	    " UNION ALL SELECT 'k', n.nspname, c.relname, (SELECT pg_catalog.string_agg(a.attname, ','"
	    " ORDER BY k.ord) FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, ord)"
	    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum), '', ''"
	    " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE i.indisprimary AND" USER_NS
	    " UNION ALL SELECT 'i', n.nspname, c.relname, pg_catalog.regexp_replace("
	    "pg_catalog.pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX (\"([^\"]|\"\")+\"|\\S+) ON ',"
	    " 'CREATE \\1INDEX ON '), '', ''"
	    " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE NOT i.indisprimary AND c.relkind IN ('r', 'p') AND" USER_NS
	    " UNION ALL SELECT 's', n.nspname, c.relname, '', pg_catalog.format_type(s.seqtypid, NULL), ''"
	    " FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE" USER_NS);
}

static void sql_tables(const struct check_run *run, enum route_side side, struct pq_buf *b)
{
	int v = run->version[side];

	put(b, "WITH pub AS MATERIALIZED (SELECT p.pubname::text AS pubname, p.schemaname,"
	       " p.tablename, ");
	put(b, v >= 150000 ? "p.rowfilter IS NOT NULL" : "false");
	put(b,
	    " AS filtered FROM pg_catalog.pg_publication_tables p)"
	    " SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,"
	    " c.relreplident::text,"
	    " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),"
	    " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"
	    " AND i.indisreplident AND i.indisvalid),"
	    " (SELECT pg_catalog.string_agg(DISTINCT pub.pubname, ',') FROM pub WHERE (pub.schemaname,"
	    " pub.tablename) IN (SELECT an.nspname, ac.relname FROM pg_catalog.pg_class ac"
	    " JOIN pg_catalog.pg_namespace an ON an.oid = ac.relnamespace WHERE ac.oid IN (SELECT c.oid");
	if (v >= 120000)
		put(b, " UNION ALL SELECT pg_catalog.pg_partition_ancestors(c.oid)");
	put(b, "))),"
	       " (SELECT pg_catalog.bool_or(pub.filtered) FROM pub WHERE pub.schemaname = n.nspname"
	       " AND pub.tablename = c.relname), c.relispartition"
	       " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	       " WHERE c.relkind IN ('r', 'p', 'm') AND" USER_NS);
}

static void sql_slot(const struct check_run *run, enum route_side side, struct pq_buf *b)
{
	put(b, "SELECT active, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(),"
	       " confirmed_flush_lsn)::bigint, ");
	put(b, run->version[side] >= 130000 ? "wal_status" : "NULL::text");
	put(b, ", database::text FROM pg_catalog.pg_replication_slots WHERE slot_name = ");
	sqlquote_put_literal(b, feeding_slot(run));
}

static void sql_sub(const struct check_run *run, enum route_side side, struct pq_buf *b)
{
	bool stats = run->version[side] >= 150000;

	put(b, "SELECT f.name, s.subenabled, pg_catalog.array_to_string(s.subpublications, ','),"
	       " (SELECT count(*) FROM pg_catalog.pg_stat_subscription w WHERE w.subid = s.oid"
	       " AND w.relid IS NULL AND w.pid IS NOT NULL), ");
	put(b, stats ? "st.apply_error_count, st.sync_error_count" : "NULL::bigint, NULL::bigint");
	put(b, " FROM (SELECT ");
	put_sub_name(b, run);
	put(b, " AS name) f LEFT JOIN (pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d"
	       " ON d.oid = s.subdbid AND d.datname = pg_catalog.current_database())"
	       " ON s.subname = f.name");
	if (stats)
		put(b, " LEFT JOIN pg_catalog.pg_stat_subscription_stats st ON st.subid = s.oid");
}

static void sql_subrel(const struct check_run *run, struct pq_buf *b)
{
	put(b,
	    "SELECT n.nspname::text, c.relname::text, r.srsubstate::text"
	    " FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_class c ON c.oid = r.srrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE r.srsubid = (SELECT s.oid FROM pg_catalog.pg_subscription s"
	    " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid"
	    " WHERE d.datname = pg_catalog.current_database() AND s.subname = ");
	put_sub_name(b, run);
	put(b, ")");
}

static void sql_sessions(const struct check_run *run, struct pq_buf *b)
{
	put(b, "SELECT a.pid, a.usename::text, a.application_name, pg_catalog.host(a.client_addr),"
	       " a.backend_xid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l"
	       " WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'"
	       " AND l.granted),"
	       " (EXTRACT(epoch FROM (pg_catalog.now() - a.xact_start)) * 1000)::bigint, a.state,"
	       " a.query = '<insufficient privilege>', COALESCE(r.rolsuper, false),"
	       " EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = a.pid"
	       " AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted),"
	       " pg_catalog.left(pg_catalog.regexp_replace(a.query, '\\s+', ' ', 'g'), 80),"
	       " a.usename = ");
	sqlquote_put_literal(b, run->dc->d.control_user);
	put(b,
	    " FROM pg_catalog.pg_stat_activity a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid"
	    " WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()"
	    " AND (a.backend_type = 'client backend' OR (a.backend_type IS NULL"
	    " AND a.pid NOT IN (SELECT w.pid FROM pg_catalog.pg_stat_replication w)"
	    " AND a.usesysid NOT IN (SELECT o.subowner FROM pg_catalog.pg_subscription o)))"
	    " ORDER BY a.pid");
}

void check_query_sql(const struct check_run *run, enum check_query q, enum route_side side,
		     struct pq_buf *b)
{
	char lit[340];

	switch (q) {
	case QR_REACH:
		sql_reach(b);
		break;
	case QR_PRIV:
		sql_priv(run, b);
		break;
	case QR_SEQ:
		sql_seq(b);
		break;
	case QR_SCHEMA:
		sql_schema(b);
		break;
	case QR_TABLES:
		sql_tables(run, side, b);
		break;
	case QR_PUBS:
		put(b,
		    "SELECT pubname::text, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate"
		    " FROM pg_catalog.pg_publication");
		break;
	case QR_SLOT:
		sql_slot(run, side, b);
		break;
	case QR_SUB:
		sql_sub(run, side, b);
		break;
	case QR_SUBREL:
		sql_subrel(run, b);
		break;
	case QR_LO:
		put(b,
		    "SELECT count(*), COALESCE(sum(oid::bigint), 0) FROM pg_catalog.pg_largeobject_metadata");
		break;
	case QR_SESS:
		sql_sessions(run, b);
		break;
	case QR_FENCE:
		/* the database's roles: the same list a fence would touch */
		if (!cutover_fence_statement(run->db, run->dc, rt.users, side, false, true, NULL, 0,
					     b))
			b->failed = true;
		return; /* NUL-terminated by fence_state_sql */
	case QR_MARKER:
		if (!marker_lit(run, lit, sizeof(lit)))
			put(b, "SELECT false");
		else {
			put(b, "SELECT pg_catalog.to_regclass(");
			put(b, lit);
			put(b, ") IS NOT NULL");
		}
		break;
	case QR_WRITTEN:
		put(b,
		    "SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())::text,"
		    " (SELECT tup_inserted + tup_updated + tup_deleted FROM pg_catalog.pg_stat_database"
		    " WHERE datname = pg_catalog.current_database())::text");
		break;
	case QR_COUNT:
		break;
	}
	pq_put_u8(b, 0);
}

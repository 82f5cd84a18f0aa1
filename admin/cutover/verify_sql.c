/*
 * verify_sql.c - the text of VERIFY's queries (see verify_int.h).  Pure
 * text building; every name is a quoted identifier and every key value a
 * quoted literal cast to its column's type.
 *
 * A row is summarised by a 64-bit hash, computed by the server, and a
 * range by count(*) and the sum of its rows' hashes (order-independent).
 * The row's hash is the XOR of one hash per column, each with its own seed
 * (its position), so that a value moved to another column is a change:
 *
 *  - a column whose type's hash function is exact (equal hashes only for
 *    identical values, so identical output text) is hashed in binary:
 *    smallint, integer, bigint, oid, boolean, uuid, timestamp, text and
 *    varchar (under the "C" collation: bytes, not a collation's notion of
 *    equal) and character(n) (its hash ignores trailing blanks, so its
 *    stored length goes with it).  No text is written for these, which is
 *    where the time went (bench/verify.py);
 *  - every other column goes into one canonical text, ROW(c1, c2, ...)::text,
 *    written under the settings of VERIFY_SESSION_SQL on both sides, so that
 *    what the text of a value depends on is the same everywhere: TimeZone
 *    (timestamptz), DateStyle and IntervalStyle (dates and intervals),
 *    extra_float_digits (floats inside arrays and composites: the shortest
 *    exact text from PostgreSQL 12 on), bytea_output and lc_monetary.  A
 *    float column is written through its binary form (float8send), which is
 *    exact whatever the server's version.  NULL and '' write differently in
 *    a ROW's text ("()" and "(\"\")"), numeric keeps its scale (1.0 and 1.00
 *    are different text; its hash function would call them equal), jsonb is
 *    stored in a normalised form, and collations change no text.
 *
 * A NULL in a binary-hashed column counts as a constant of its own.  Both
 * sides run the same text: VERIFY compares only tables whose columns have
 * the same types on both sides.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"

const char VERIFY_SESSION_SQL[] =
	"SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
	" SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C';"
	" SET search_path = ''; SET statement_timeout = 0;"
	" SET application_name = 'pgcutover verify';"
	/*
	 * A stop closes VERIFY's connections; from PostgreSQL 14 on, the
	 * server then ends a query that is still running (or waiting for a
	 * lock) within a second instead of finishing it for nobody.
	 */
	" SELECT pg_catalog.set_config('client_connection_check_interval', '1000', false)"
	" WHERE pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 140000; ";

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

static void put_i64(struct pq_buf *b, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	put(b, num);
}

void verify_sql_list(struct pq_buf *b)
{
	put(b, VERIFY_SESSION_SQL);
	put(b,
	    "SELECT n.nspname::text, c.relname::text, c.relpersistence::text,"
	    " GREATEST(c.reltuples, 0)::bigint, pg_catalog.quote_ident(a.attname),"
	    " pg_catalog.format_type(a.atttypid, a.atttypmod),"
	    " a.atttypid IN ('pg_catalog.float4'::pg_catalog.regtype,"
	    " 'pg_catalog.float8'::pg_catalog.regtype),"
	    " (SELECT k.ord FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey) WITH ORDINALITY"
	    " k(attnum, ord) WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum),"
	    " pg_catalog.has_table_privilege(c.oid, 'SELECT')"
	    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
	    " AND NOT a.attisdropped"
	    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
	    " AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
	    " ORDER BY 1, 2, a.attnum");
	pq_put_u8(b, 0);
}

static bool is_integer_type(const char *type)
{
	return strcmp(type, "smallint") == 0 || strcmp(type, "integer") == 0 ||
	       strcmp(type, "bigint") == 0;
}

/*
 * The binary hash of a column of this type (format_type's name), as
 * "fn(" ... ", seed)" around the column, or NULL when its text is hashed.
 */
struct col_hash {
	const char *type; /* format_type(); '#' stands for a typmod's digits */
	const char *pre, *post;
};

static const struct col_hash col_hashes[] = {
	{"smallint", "pg_catalog.hashint2extended(", ", "},
	{"integer", "pg_catalog.hashint4extended(", ", "},
	{"bigint", "pg_catalog.hashint8extended(", ", "},
	{"oid", "pg_catalog.hashoidextended(", ", "},
	{"boolean", "pg_catalog.hashint4extended(", "::pg_catalog.int4, "},
	{"uuid", "pg_catalog.uuid_hash_extended(", ", "},
	{"timestamp without time zone", "pg_catalog.timestamp_hash_extended(", ", "},
	{"timestamp(#) without time zone", "pg_catalog.timestamp_hash_extended(", ", "},
	{"text", "pg_catalog.hashtextextended(", " COLLATE pg_catalog.\"C\", "},
	{"character varying", "pg_catalog.hashtextextended(", " COLLATE pg_catalog.\"C\", "},
	{"character varying(#)", "pg_catalog.hashtextextended(", " COLLATE pg_catalog.\"C\", "},
	{"bpchar", "pg_catalog.hashbpcharextended(", " COLLATE pg_catalog.\"C\", "},
	{"character(#)", "pg_catalog.hashbpcharextended(", " COLLATE pg_catalog.\"C\", "},
};

/* type is pattern, where '#' in pattern matches one or more digits */
static bool type_is(const char *type, const char *pattern)
{
	for (; *pattern; pattern++) {
		if (*pattern != '#') {
			if (*type++ != *pattern)
				return false;
			continue;
		}
		if (!isdigit((unsigned char)*type))
			return false;
		while (isdigit((unsigned char)*type))
			type++;
	}
	return *type == '\0';
}

static const struct col_hash *col_hash_of(const char *type)
{
	for (size_t i = 0; i < sizeof(col_hashes) / sizeof(col_hashes[0]); i++)
		if (type_is(type, col_hashes[i].type))
			return &col_hashes[i];
	return NULL;
}

static bool is_bpchar(const struct col_hash *h)
{
	return strstr(h->pre, "bpchar") != NULL;
}

/*
 * The row's hash (see the top of the file): "COALESCE(h1(c1, 1), 1) # ...
 * # pg_catalog.hashtextextended(ROW(...)::text, 0)", a bigint.
 */
static void put_row_hash(struct pq_buf *b, const struct verify_table *t)
{
	bool any = false, text = false;

	for (int i = 0; i < t->ncols; i++) {
		const struct col_hash *h = col_hash_of(t->cols[i].type);
		const char *c = t->cols[i].name;

		if (h == NULL) {
			text = true;
			continue;
		}
		if (any)
			put(b, " # ");
		any = true;
		put(b, "COALESCE(");
		put(b, h->pre);
		put(b, c);
		put(b, h->post);
		put_i64(b, i + 1);
		put(b, ")");
		if (is_bpchar(h)) {
			/* its hash ignores trailing blanks; the stored length does not */
			put(b, " # pg_catalog.hashint4extended(pg_catalog.octet_length(");
			put(b, c);
			put(b, "), ");
			put_i64(b, -(i + 1));
			put(b, ")");
		}
		put(b, ", ");
		put_i64(b, i + 1);
		put(b, ")");
	}
	if (!text) {
		if (!any)
			put(b, "0::pg_catalog.int8"); /* no columns at all */
		return;
	}
	if (any)
		put(b, " # ");
	put(b, "pg_catalog.hashtextextended(ROW(");
	any = false;
	for (int i = 0; i < t->ncols; i++) {
		if (col_hash_of(t->cols[i].type) != NULL)
			continue;
		if (any)
			put(b, ", ");
		any = true;
		if (t->cols[i].is_float) {
			put(b, strcmp(t->cols[i].type, "real") == 0 ? "pg_catalog.float4send("
								    : "pg_catalog.float8send(");
			put(b, t->cols[i].name);
			put(b, ")");
		} else {
			put(b, t->cols[i].name);
		}
	}
	put(b, ")::text, 0)");
}

bool verify_sql_table(struct verify_table *t)
{
	struct pq_buf b;
	char *q;
	size_t qlen = 2 * (strlen(t->schema) + strlen(t->name)) + 8;

	q = malloc(qlen);
	if (q == NULL)
		return false;
	snprintf(q, qlen, "%s.%s", t->schema, t->name);
	t->label = q;
	pq_buf_init(&b);
	sqlquote_put_ident(&b, t->schema);
	put(&b, ".");
	sqlquote_put_ident(&b, t->name);
	pq_put_u8(&b, 0);
	t->qname = b.failed ? NULL : strdup((const char *)b.data);
	pq_buf_reset(&b);
	put_row_hash(&b, t);
	pq_put_u8(&b, 0);
	t->rowhash = b.failed ? NULL : strdup((const char *)b.data);
	pq_buf_free(&b);
	if (t->nkey == 0) {
		t->kind = VK_NONE;
	} else if (t->nkey == 1 && is_integer_type(t->cols[t->key[0]].type)) {
		const char *type = t->cols[t->key[0]].type;

		t->kind = VK_INTEGER;
		t->type_min = strcmp(type, "smallint") == 0  ? INT16_MIN
			      : strcmp(type, "integer") == 0 ? INT32_MIN
							     : INT64_MIN;
		t->type_max = strcmp(type, "smallint") == 0  ? INT16_MAX
			      : strcmp(type, "integer") == 0 ? INT32_MAX
							     : INT64_MAX;
	} else {
		t->kind = VK_GENERAL;
	}
	return t->qname && t->rowhash;
}

/* "k1, k2" */
static void put_key_cols(struct pq_buf *b, const struct verify_table *t)
{
	for (int i = 0; i < t->nkey; i++) {
		if (i)
			put(b, ", ");
		put(b, t->cols[t->key[i]].name);
	}
}

/* "(k1, k2)" or "k1" */
static void put_key(struct pq_buf *b, const struct verify_table *t)
{
	if (t->nkey > 1)
		put(b, "(");
	put_key_cols(b, t);
	if (t->nkey > 1)
		put(b, ")");
}

/* A key's values as literals of its columns' types: "('a'::text, 3::integer)" or "'a'::text". */
static void put_key_values(struct pq_buf *b, const struct verify_table *t, char *const *v)
{
	if (t->nkey > 1)
		put(b, "(");
	for (int i = 0; i < t->nkey; i++) {
		if (i)
			put(b, ", ");
		sqlquote_put_literal(b, v[i]);
		put(b, "::");
		put(b, t->cols[t->key[i]].type);
	}
	if (t->nkey > 1)
		put(b, ")");
}

void verify_sql_range(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k)
{
	switch (t->kind) {
	case VK_NONE:
		put(b, "true");
		return;
	case VK_INTEGER:
		/* the type's own bounds stand for "unbounded" (and are not written) */
		if (k->ilo <= t->type_min && k->ihi >= t->type_max) {
			put(b, "true");
		} else if (k->ilo <= t->type_min) {
			put(b, t->cols[t->key[0]].name);
			put(b, " <= ");
			put_i64(b, k->ihi);
		} else if (k->ihi >= t->type_max) {
			put(b, t->cols[t->key[0]].name);
			put(b, " >= ");
			put_i64(b, k->ilo);
		} else {
			put(b, t->cols[t->key[0]].name);
			put(b, " BETWEEN ");
			put_i64(b, k->ilo);
			put(b, " AND ");
			put_i64(b, k->ihi);
		}
		return;
	case VK_GENERAL:
		if (k->lo.v == NULL && k->hi.v == NULL) {
			put(b, "true");
			return;
		}
		if (k->lo.v) {
			put_key(b, t);
			put(b, " > ");
			put_key_values(b, t, k->lo.v);
		}
		if (k->lo.v && k->hi.v)
			put(b, " AND ");
		if (k->hi.v) {
			put_key(b, t);
			put(b, " <= ");
			put_key_values(b, t, k->hi.v);
		}
		return;
	}
}

void verify_sql_summary(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
			bool versions, bool position)
{
	put(b, VERIFY_SESSION_SQL);
	put(b, "SELECT count(*)::text, COALESCE(sum(");
	put(b, t->rowhash);
	put(b, "), 0)::text");
	if (versions)
		put(b, ", COALESCE(sum(pg_catalog.hashtextextended(t.xmin::text, 0)), 0)::text");
	if (position)
		put(b, ", pg_catalog.pg_current_wal_insert_lsn()::text");
	put(b, " FROM ");
	put(b, t->qname);
	put(b, " t WHERE ");
	verify_sql_range(b, t, k);
	pq_put_u8(b, 0);
}

void verify_sql_rows(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
		     bool versions, bool position)
{
	put(b, VERIFY_SESSION_SQL);
	put(b, "SELECT ");
	for (int i = 0; i < t->nkey; i++) {
		put(b, t->cols[t->key[i]].name);
		put(b, "::text, ");
	}
	put(b, "(");
	put(b, t->rowhash);
	put(b, ")::text");
	put(b, versions ? ", t.xmin::text" : ", NULL::text");
	if (position)
		put(b, ", NULL::text");
	put(b, " FROM ");
	put(b, t->qname);
	put(b, " t WHERE (");
	verify_sql_range(b, t, k);
	put(b, ")");
	/*
	 * The keys seen so far, wherever each side's ordering puts them (text
	 * keys sort by each side's collation); an integer key is in its range
	 * on both sides alike.
	 */
	if (k->nkeys > 0 && t->kind != VK_INTEGER) {
		put(b, " OR ");
		put_key(b, t);
		put(b, " IN (");
		for (int i = 0; i < k->nkeys; i++) {
			if (i)
				put(b, ", ");
			if (t->nkey == 1)
				put(b, "(");
			put_key_values(b, t, k->keys[i].v);
			if (t->nkey == 1)
				put(b, ")");
		}
		put(b, ")");
	}
	/* the position: a row of its own, its key NULL (a primary key never is) */
	if (position) {
		put(b, " UNION ALL SELECT ");
		for (int i = 0; i < t->nkey + 2; i++)
			put(b, "NULL::text, ");
		put(b, "pg_catalog.pg_current_wal_insert_lsn()::text");
	}
	pq_put_u8(b, 0);
}

void verify_sql_boundary(struct pq_buf *b, const struct verify_table *t)
{
	put(b, VERIFY_SESSION_SQL);
	put(b, "SELECT ");
	for (int i = 0; i < t->nkey; i++) {
		if (i)
			put(b, ", ");
		put(b, t->cols[t->key[i]].name);
		put(b, "::text");
	}
	put(b, " FROM ");
	put(b, t->qname);
	put(b, " t");
	if (t->cursor) {
		put(b, " WHERE ");
		put_key(b, t);
		put(b, " > ");
		put_key_values(b, t, t->cursor);
	}
	put(b, " ORDER BY ");
	put_key_cols(b, t);
	put(b, " OFFSET ");
	put_i64(b, VERIFY_CHUNK_ROWS - 1);
	put(b, " LIMIT 1");
	pq_put_u8(b, 0);
}

void verify_sql_split(struct pq_buf *b, const struct verify_table *t, const struct verify_task *k,
		      int64_t every)
{
	put(b, VERIFY_SESSION_SQL);
	put(b, "SELECT ");
	for (int i = 0; i < t->nkey; i++) {
		if (i)
			put(b, ", ");
		put(b, "x.");
		put(b, t->cols[t->key[i]].name);
		put(b, "::text");
	}
	put(b, " FROM (SELECT ");
	put_key_cols(b, t);
	put(b, ", pg_catalog.row_number() OVER (ORDER BY ");
	put_key_cols(b, t);
	put(b, ") AS pgcutover_rn FROM ");
	put(b, t->qname);
	put(b, " t WHERE ");
	verify_sql_range(b, t, k);
	put(b, ") x WHERE x.pgcutover_rn % ");
	put_i64(b, every < 1 ? 1 : every);
	put(b, " = 0 ORDER BY x.pgcutover_rn");
	pq_put_u8(b, 0);
}

void verify_sql_minmax(struct pq_buf *b, const struct verify_table *t)
{
	put(b, VERIFY_SESSION_SQL);
	put(b, "SELECT min(");
	put(b, t->cols[t->key[0]].name);
	put(b, ")::text, max(");
	put(b, t->cols[t->key[0]].name);
	put(b, ")::text FROM ");
	put(b, t->qname);
	pq_put_u8(b, 0);
}

char *verify_key_text(const struct verify_table *t, char *const *v)
{
	struct pq_buf b;
	char *out;

	pq_buf_init(&b);
	put(&b, "(");
	for (int i = 0; i < t->nkey; i++) {
		if (i)
			put(&b, ",");
		put(&b, v[i] ? v[i] : "NULL");
	}
	put(&b, ")");
	pq_put_u8(&b, 0);
	out = b.failed ? NULL : strdup((const char *)b.data);
	pq_buf_free(&b);
	return out;
}

uint64_t verify_parse_lsn(const char *s)
{
	char *end;
	unsigned long long hi, lo;

	if (s == NULL)
		return 0;
	hi = strtoull(s, &end, 16);
	if (*end != '/')
		return 0;
	lo = strtoull(end + 1, &end, 16);
	if (*end != '\0' || hi > 0xffffffffULL || lo > 0xffffffffULL)
		return 0;
	return ((uint64_t)hi << 32) | lo;
}

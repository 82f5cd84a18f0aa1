/*
 * test_validation.c - the pure parts of CHECK and VERIFY: the schema
 * comparison (check_schema.c), VERIFY's query text (verify_sql.c: the row's
 * canonical text, key ranges, row lists, LSNs, key text), and the SCRAM
 * salt check of the login probe (scram_client.c).
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

#include "admin/cutover/check_schema.h"
#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/secret.h"

/* ---- schema_compare ---- */

struct findings {
	int count[SF_NFINDINGS];
	char last[SF_NFINDINGS][128];
};

static void found(void *arg, enum schema_finding f, const struct schema_item *o,
		  const struct schema_item *n)
{
	struct findings *r = arg;
	const struct schema_item *it = o ? o : n;

	r->count[f]++;
	snprintf(r->last[f], sizeof(r->last[f]), "%s.%s.%s", it->schema, it->table,
		 it->item ? it->item : "");
}

#define T(s, t)                         \
	{                               \
		't', s, t, "", "r", "p" \
	}
#define C(s, t, c, d, f)           \
	{                          \
		'c', s, t, c, d, f \
	}
#define K(s, t, cols)                   \
	{                               \
		'k', s, t, cols, "", "" \
	}
#define I(s, t, def)                   \
	{                              \
		'i', s, t, def, "", "" \
	}
#define S(s, n, type)                   \
	{                               \
		's', s, n, "", type, "" \
	}

static void test_schema_alike(void)
{
	struct schema_item old[] = {T("public", "a"), C("public", "a", "id", "integer", "n"),
				    K("public", "a", "id"), I("public", "a", "CREATE INDEX ON x"),
				    S("public", "a_id_seq", "bigint")};
	/* the same, in another order (the servers sort with their own collations) */
	struct schema_item neu[] = {S("public", "a_id_seq", "bigint"), K("public", "a", "id"),
				    I("public", "a", "CREATE INDEX ON x"), T("public", "a"),
				    C("public", "a", "id", "integer", "n")};
	struct findings r;

	memset(&r, 0, sizeof(r));
	schema_compare(old, 5, neu, 5, found, &r);
	for (int f = 0; f < SF_NFINDINGS; f++)
		UT_EQ_INT(r.count[f], 0);
}

static void test_schema_differences(void)
{
	struct schema_item old[] = {
		T("public", "a"),
		C("public", "a", "id", "integer", "n"),
		C("public", "a", "note", "text", ""),
		C("public", "a", "price", "numeric(10,2)", ""),
		K("public", "a", "id"),
		I("public", "a", "CREATE INDEX ON public.a USING btree (note)"),
		T("public", "gone"),
		C("public", "gone", "x", "integer", ""),
		K("public", "gone", "x"),
		T("public", "b"),
		C("public", "b", "k1", "integer", "n"),
		K("public", "b", "k1,k2"),
		S("public", "s1", "bigint"),
		S("public", "s2", "bigint"),
	};
	struct schema_item neu[] = {
		T("public", "a"),
		C("public", "a", "id", "integer", "n"),
		C("public", "a", "price", "numeric(12,2)", ""),
		C("public", "a", "added", "integer", "n"),
		C("public", "a", "added2", "integer", "nd"),
		K("public", "a", "id"),
		T("public", "b"),
		C("public", "b", "k1", "integer", "n"),
		K("public", "b", "k1"),
		T("public", "only_new"),
		S("public", "s1", "integer"),
	};
	struct findings r;

	memset(&r, 0, sizeof(r));
	schema_compare(old, sizeof(old) / sizeof(old[0]), neu, sizeof(neu) / sizeof(neu[0]), found,
		       &r);
	UT_EQ_INT(r.count[SF_TABLE_MISSING], 1);
	UT_EQ_STR(r.last[SF_TABLE_MISSING], "public.gone.");
	/* a missing table's columns and key are not listed again */
	UT_EQ_INT(r.count[SF_COLUMN_MISSING], 1);
	UT_EQ_STR(r.last[SF_COLUMN_MISSING], "public.a.note");
	UT_EQ_INT(r.count[SF_COLUMN_TYPE], 1);
	UT_EQ_STR(r.last[SF_COLUMN_TYPE], "public.a.price");
	UT_EQ_INT(r.count[SF_COLUMN_REQUIRED], 1); /* NOT NULL, no default */
	UT_EQ_STR(r.last[SF_COLUMN_REQUIRED], "public.a.added");
	UT_EQ_INT(r.count[SF_COLUMN_EXTRA], 1); /* with a default */
	UT_EQ_INT(r.count[SF_PK_DIFFERS], 1);
	UT_EQ_STR(r.last[SF_PK_DIFFERS], "public.b.k1,k2");
	UT_EQ_INT(r.count[SF_INDEX_MISSING], 1);
	UT_EQ_INT(r.count[SF_SEQUENCE_MISSING], 1);
	UT_EQ_STR(r.last[SF_SEQUENCE_MISSING], "public.s2.");
	UT_EQ_INT(r.count[SF_SEQUENCE_TYPE], 1);
	UT_EQ_INT(r.count[SF_TABLE_EXTRA], 1);
	UT_EQ_INT(r.count[SF_PK_MISSING], 0);
}

static void test_schema_pk_missing(void)
{
	struct schema_item old[] = {T("s", "t"), K("s", "t", "id")};
	struct schema_item neu[] = {T("s", "t")};
	struct findings r;

	memset(&r, 0, sizeof(r));
	schema_compare(old, 2, neu, 1, found, &r);
	UT_EQ_INT(r.count[SF_PK_MISSING], 1);
	memset(&r, 0, sizeof(r));
	schema_compare(neu, 1, old, 2, found, &r); /* a key only on the new side is fine */
	UT_EQ_INT(r.count[SF_PK_MISSING] + r.count[SF_PK_DIFFERS], 0);
}

/* ---- VERIFY's SQL ---- */

/* A table "public"."t" (id bigint key, f double precision, r real, note text). */
static void make_table(struct verify_table *t, struct verify_column *cols, bool composite)
{
	memset(t, 0, sizeof(*t));
	cols[0] = (struct verify_column){"id", composite ? "text" : "bigint", false};
	cols[1] = (struct verify_column){"f", "double precision", true};
	cols[2] = (struct verify_column){"r", "real", true};
	cols[3] = (struct verify_column){"\"Note\"", "integer", false};
	t->schema = "public";
	t->name = "t";
	t->cols = cols;
	t->ncols = 4;
	t->nkey = composite ? 2 : 1;
	t->key[0] = 0;
	t->key[1] = 3;
}

static void free_table_text(struct verify_table *t)
{
	free(t->qname);
	free(t->label);
	free(t->rowhash);
}

static const char *text_of(struct pq_buf *b)
{
	return b->failed ? "(failed)" : (const char *)b->data;
}

static void test_verify_row_text(void)
{
	struct verify_table t;
	struct verify_column cols[4];

	make_table(&t, cols, false);
	UT_ASSERT(verify_sql_table(&t));
	UT_EQ_STR(t.qname, "\"public\".\"t\"");
	UT_EQ_STR(t.label, "public.t");
	/* exact hash functions for bigint and integer, floats through their binary form as text */
	UT_EQ_STR(t.rowhash, "COALESCE(pg_catalog.hashint8extended(id, 1), 1) # "
			     "COALESCE(pg_catalog.hashint4extended(\"Note\", 4), 4) # "
			     "pg_catalog.hashtextextended(ROW(pg_catalog.float8send(f), "
			     "pg_catalog.float4send(r))::text, 0)");
	UT_EQ_INT(t.kind, VK_INTEGER);
	UT_EQ_INT(t.type_min, INT64_MIN);
	free_table_text(&t);
	make_table(&t, cols, true);
	UT_ASSERT(verify_sql_table(&t));
	UT_EQ_INT(t.kind, VK_GENERAL);
	free_table_text(&t);
	t.nkey = 0;
	UT_ASSERT(verify_sql_table(&t));
	UT_EQ_INT(t.kind, VK_NONE);
	free_table_text(&t);
}

/* Which types are hashed in binary, and what goes into the text (verify_sql.c). */
static void test_verify_row_hash_types(void)
{
	static const struct {
		const char *type, *expr; /* expr NULL: in the row's text */
	} cases[] = {
		{"smallint", "COALESCE(pg_catalog.hashint2extended(c, 1), 1)"},
		{"boolean", "COALESCE(pg_catalog.hashint4extended(c::pg_catalog.int4, 1), 1)"},
		{"uuid", "COALESCE(pg_catalog.uuid_hash_extended(c, 1), 1)"},
		{"oid", "COALESCE(pg_catalog.hashoidextended(c, 1), 1)"},
		{"timestamp(3) without time zone",
		 "COALESCE(pg_catalog.timestamp_hash_extended(c, 1), 1)"},
		{"text", "COALESCE(pg_catalog.hashtextextended(c COLLATE pg_catalog.\"C\", 1), 1)"},
		{"character varying(20)",
		 "COALESCE(pg_catalog.hashtextextended(c COLLATE pg_catalog.\"C\", 1), 1)"},
		{"character(4)",
		 "COALESCE(pg_catalog.hashbpcharextended(c COLLATE pg_catalog.\"C\", "
		 "1) # pg_catalog.hashint4extended(pg_catalog.octet_length(c), -1), 1)"},
		/* equal hashes for different text, or text that depends on settings */
		{"numeric", NULL},
		{"numeric(10,2)", NULL},
		{"timestamp(3) with time zone", NULL},
		{"timestamp with time zone", NULL},
		{"interval", NULL},
		{"jsonb", NULL},
		{"date", NULL},
		{"bytea", NULL},
		{"integer[]", NULL},
		{"character varying(x)", NULL},
		{"character varying()", NULL},
		{"character(4) ", NULL},
		{"\"public\".\"integer\"", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct verify_table t;
		struct verify_column col = {"c", (char *)cases[i].type, false};

		memset(&t, 0, sizeof(t));
		t.schema = "s";
		t.name = "t";
		t.cols = &col;
		t.ncols = 1;
		UT_ASSERT(verify_sql_table(&t));
		UT_EQ_STR(t.rowhash, cases[i].expr ? cases[i].expr
						   : "pg_catalog.hashtextextended(ROW(c)::text, 0)");
		free_table_text(&t);
	}
}

static void test_verify_ranges(void)
{
	struct verify_table t;
	struct verify_column cols[4];
	struct verify_task k;
	struct pq_buf b;
	char *lo[2] = {"it's", "3"}, *hi[2] = {"z", "-1"};

	make_table(&t, cols, false);
	UT_ASSERT(verify_sql_table(&t));
	memset(&k, 0, sizeof(k));
	pq_buf_init(&b);
	k.ilo = 1;
	k.ihi = 25000;
	verify_sql_range(&b, &t, &k);
	pq_put_u8(&b, 0);
	UT_EQ_STR(text_of(&b), "id BETWEEN 1 AND 25000");
	/* the type's bounds are not written (they would not even parse as bigint) */
	pq_buf_reset(&b);
	k.ilo = INT64_MIN;
	verify_sql_range(&b, &t, &k);
	pq_put_u8(&b, 0);
	UT_EQ_STR(text_of(&b), "id <= 25000");
	pq_buf_reset(&b);
	k.ihi = INT64_MAX;
	verify_sql_range(&b, &t, &k);
	pq_put_u8(&b, 0);
	UT_EQ_STR(text_of(&b), "true");
	free_table_text(&t);

	/* a composite key: row comparisons of literals cast to the key's types */
	make_table(&t, cols, true);
	UT_ASSERT(verify_sql_table(&t));
	memset(&k, 0, sizeof(k));
	k.lo.v = lo;
	k.hi.v = hi;
	pq_buf_reset(&b);
	verify_sql_range(&b, &t, &k);
	pq_put_u8(&b, 0);
	UT_EQ_STR(text_of(&b),
		  "(id, \"Note\") > (E'it''s'::text, E'3'::integer) AND (id, \"Note\") <= "
		  "(E'z'::text, E'-1'::integer)");
	pq_buf_reset(&b);
	k.lo.v = NULL;
	verify_sql_range(&b, &t, &k);
	pq_put_u8(&b, 0);
	UT_EQ_STR(text_of(&b), "(id, \"Note\") <= (E'z'::text, E'-1'::integer)");
	pq_buf_free(&b);
	free_table_text(&t);
}

static void test_verify_rows_sql(void)
{
	struct verify_table t;
	struct verify_column cols[4];
	struct verify_task k;
	struct verify_rowkey keys[2];
	char *v1[1] = {"7"}, *v2[1] = {"9"};
	struct pq_buf b;
	const char *sql;

	make_table(&t, cols, false);
	UT_ASSERT(verify_sql_table(&t));
	memset(&k, 0, sizeof(k));
	memset(keys, 0, sizeof(keys));
	keys[0].v = v1;
	keys[1].v = v2;
	k.keys = keys;
	k.nkeys = 2;
	k.ilo = 1;
	k.ihi = 10;
	pq_buf_init(&b);
	verify_sql_rows(&b, &t, &k, true, true);
	sql = text_of(&b);
	/* an integer key's range holds the keys met so far on both sides: no IN list */
	UT_ASSERT(strstr(sql, "WHERE (id BETWEEN 1 AND 10) UNION ALL"));
	UT_ASSERT(strstr(sql, " IN (") == NULL);
	UT_ASSERT(strstr(sql, ", t.xmin::text, NULL::text FROM \"public\".\"t\" t"));
	/* the position has a row of its own, its key NULL */
	UT_ASSERT(strstr(sql, " UNION ALL SELECT NULL::text, NULL::text, NULL::text, "
			      "pg_catalog.pg_current_wal_insert_lsn()::text"));
	UT_ASSERT(strncmp(sql, VERIFY_SESSION_SQL, strlen(VERIFY_SESSION_SQL)) == 0);
	pq_buf_reset(&b);
	verify_sql_summary(&b, &t, &k, false, false);
	sql = text_of(&b);
	UT_ASSERT(strstr(sql,
			 "SELECT count(*)::text, COALESCE(sum(COALESCE(pg_catalog.hashint8extended("
			 "id, 1), 1) # COALESCE(pg_catalog.hashint4extended(\"Note\", 4), 4) # "
			 "pg_catalog.hashtextextended(ROW(pg_catalog.float8send(f), "
			 "pg_catalog.float4send(r))::text, 0)), 0)::text FROM \"public\".\"t\" t "
			 "WHERE id BETWEEN 1 AND 10"));
	UT_ASSERT(strstr(sql, "xmin") == NULL);
	free_table_text(&t);
	/* other keys: the keys met so far are read wherever each side's order puts them */
	{
		char *c1[2] = {"a", "1"}, *c2[2] = {"b", "2"}, *hi[2] = {"z", "9"};

		make_table(&t, cols, true);
		UT_ASSERT(verify_sql_table(&t));
		keys[0].v = c1;
		keys[1].v = c2;
		k.hi.v = hi;
		pq_buf_reset(&b);
		verify_sql_rows(&b, &t, &k, false, false);
		sql = text_of(&b);
		UT_ASSERT(strstr(sql, "WHERE ((id, \"Note\") <= (E'z'::text, E'9'::integer)) OR "
				      "(id, \"Note\") IN ((E'a'::text, E'1'::integer), "
				      "(E'b'::text, E'2'::integer))"));
		free_table_text(&t);
	}
	pq_buf_free(&b);
}

static void test_verify_lsn_and_keys(void)
{
	struct verify_table t;
	struct verify_column cols[4];
	char *v[2] = {"a,b", "3"};
	char *text;

	UT_ASSERT(verify_parse_lsn("0/16B3748") == 0x16B3748ULL);
	UT_ASSERT(verify_parse_lsn("16/B374D848") == ((uint64_t)0x16 << 32 | 0xB374D848ULL));
	UT_ASSERT(verify_parse_lsn("1/2") > verify_parse_lsn("0/FFFFFFFF"));
	UT_EQ_INT(verify_parse_lsn("nope"), 0);
	UT_EQ_INT(verify_parse_lsn("1/2x"), 0);
	UT_EQ_INT(verify_parse_lsn(NULL), 0);
	make_table(&t, cols, true);
	text = verify_key_text(&t, v);
	UT_EQ_STR(text, "(a,b,3)");
	free(text);
}

/* ---- the login probe's SCRAM salt check ---- */

static void test_scram_salt_check(void)
{
	/* a secret with salt "salt-16-bytes!!!" (base64) and 4096 iterations */
	struct auth_scram_secret sec;
	struct auth_scram_client c;
	const char *err = NULL;
	char *first, msg[200];
	bool same = true;

	UT_ASSERT(auth_scram_secret_from_password("pw", (const uint8_t *)"salt-16-bytes!!!", 16,
						  4096, &sec));
	UT_ASSERT(auth_scram_client_init_probe(&c));
	first = auth_scram_client_first(&c);
	UT_ASSERT(first != NULL);
	/* the server's answer: our nonce extended, its salt, its iterations */
	snprintf(msg, sizeof(msg), "r=%sSERVER,s=c2FsdC0xNi1ieXRlcyEhIQ==,i=4096", c.nonce);
	UT_ASSERT(auth_scram_client_server_salt(&c, msg, strlen(msg), &sec, &same, &err));
	UT_ASSERT(same);
	/* no proof can follow */
	UT_ASSERT(auth_scram_client_final(&c, msg, strlen(msg), &err) == NULL);
	auth_scram_client_free(&c);
	free(first);

	/* another iteration count: another verifier */
	UT_ASSERT(auth_scram_client_init_probe(&c));
	first = auth_scram_client_first(&c);
	snprintf(msg, sizeof(msg), "r=%sSERVER,s=c2FsdC0xNi1ieXRlcyEhIQ==,i=8192", c.nonce);
	UT_ASSERT(auth_scram_client_server_salt(&c, msg, strlen(msg), &sec, &same, &err));
	UT_ASSERT(!same);
	auth_scram_client_free(&c);
	free(first);

	/* another salt */
	UT_ASSERT(auth_scram_client_init_probe(&c));
	first = auth_scram_client_first(&c);
	snprintf(msg, sizeof(msg), "r=%sSERVER,s=b3RoZXItc2FsdA==,i=4096", c.nonce);
	UT_ASSERT(auth_scram_client_server_salt(&c, msg, strlen(msg), &sec, &same, &err));
	UT_ASSERT(!same);
	auth_scram_client_free(&c);
	free(first);

	/* a nonce that is not ours is an error, not an answer */
	UT_ASSERT(auth_scram_client_init_probe(&c));
	first = auth_scram_client_first(&c);
	snprintf(msg, sizeof(msg), "r=someoneelse,s=b3RoZXItc2FsdA==,i=4096");
	UT_ASSERT(!auth_scram_client_server_salt(&c, msg, strlen(msg), &sec, &same, &err));
	UT_ASSERT(err != NULL);
	auth_scram_client_free(&c);
	free(first);
}

const struct unit_test unit_tests_validation[] = {
	{"schema_alike", test_schema_alike},
	{"schema_differences", test_schema_differences},
	{"schema_pk_missing", test_schema_pk_missing},
	{"verify_row_text", test_verify_row_text},
	{"verify_row_hash_types", test_verify_row_hash_types},
	{"verify_ranges", test_verify_ranges},
	{"verify_rows_sql", test_verify_rows_sql},
	{"verify_lsn_and_keys", test_verify_lsn_and_keys},
	{"scram_salt_check", test_scram_salt_check},
	{NULL, NULL},
};

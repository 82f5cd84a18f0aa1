/*
 * test_sqlclass.c - the SQL tokenizer (protocol/sqltok.c), fingerprints
 * (protocol/fingerprint.c) and the statement classifier
 * (protocol/sqlclass.c): schema changes and reads.
 */
#include "unit.h"

#include "protocol/fingerprint.h"
#include "protocol/sqlclass.h"
#include "protocol/sqltok.h"

#define S(x) (const uint8_t *)(x), strlen(x)

/* Tokens of a text joined by '|' (words as folded, other tokens as written). */
static void toks(const char *sql, char *out, size_t len)
{
	struct sqltok t;
	size_t off = 0, n = 0;

	out[0] = '\0';
	while (sqltok_next(S(sql), &off, &t) != SQLTOK_END) {
		int w = snprintf(out + n, len - n, "%s%.*s", n ? "|" : "",
				 t.kind == SQLTOK_WORD ? (int)strlen(t.word) : (int)t.len,
				 t.kind == SQLTOK_WORD ? t.word : sql + t.start);

		if (w < 0 || (size_t)w >= len - n)
			return;
		n += (size_t)w;
	}
}

static void test_sqltok_forms(void)
{
	char out[512];

	toks("SELECT 'a''b', E'x\\'y', $$q;'$$, $t$ $$ $t$, \"Id\"\"x\", U&'d' FROM t", out,
	     sizeof(out));
	UT_EQ_STR(out,
		  "select|'a''b'|,|E'x\\'y'|,|$$q;'$$|,|$t$ $$ $t$|,|\"Id\"\"x\"|,|U&'d'|from|t");
	toks("x=-1 /* c /* nested */ */ -- line\n + 2.5e3::int8 $12 a.b[1]", out, sizeof(out));
	UT_EQ_STR(out, "x|=|-|1|+|2.5e3|::|int8|$12|a|.|b|[|1|]");
	toks("a @- b <-> c", out, sizeof(out));
	UT_EQ_STR(out, "a|@-|b|<->|c");
	/* cut off inside a string: the scan ends */
	toks("select 'abc", out, sizeof(out));
	UT_EQ_STR(out, "select|'abc");
	/* a NUL ends the text */
	{
		const uint8_t t[] = "select\0 drop";
		struct sqltok k;
		size_t off = 0;

		UT_EQ_INT(sqltok_next(t, sizeof(t) - 1, &off, &k), SQLTOK_WORD);
		UT_EQ_INT(sqltok_next(t, sizeof(t) - 1, &off, &k), SQLTOK_END);
	}
}

static void test_fingerprint_constants(void)
{
	struct fingerprint a, b, c;

	fingerprint_sql(S("SELECT abalance FROM pgbench_accounts WHERE aid = 42;"), &a);
	fingerprint_sql(S("select  abalance\n from pgbench_accounts -- x\n where aid=7"), &b);
	UT_EQ_STR(a.text, "select abalance from pgbench_accounts where aid = $1");
	UT_ASSERT(a.hash == b.hash);
	UT_EQ_INT(a.constants, 1);
	fingerprint_sql(S("SELECT abalance FROM pgbench_accounts WHERE bid = 42"), &c);
	UT_ASSERT(a.hash != c.hash);
	/* numbering goes on after the text's own parameters */
	fingerprint_sql(S("SELECT * FROM t WHERE a = $2 AND b = 'x' AND c IN (1, 2.5)"), &a);
	UT_EQ_STR(a.text, "select * from t where a = $2 and b = $3 and c in ($4, $5)");
	fingerprint_sql(S("SELECT count(*), \"Mixed\" FROM s.t"), &a);
	UT_EQ_STR(a.text, "select count(*), \"Mixed\" from s.t");
	/* quoted identifiers keep their case: another statement */
	fingerprint_sql(S("SELECT \"mixed\" FROM s.t"), &b);
	UT_ASSERT(a.hash != b.hash);
}

static void test_fingerprint_long(void)
{
	char sql[4096];
	struct fingerprint a, b;
	size_t n = 0;

	n += (size_t)snprintf(sql + n, sizeof(sql) - n, "SELECT 1");
	while (n < sizeof(sql) - 20)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", col%zu", n);
	fingerprint_sql(S(sql), &a);
	UT_ASSERT(strlen(a.text) < FINGERPRINT_TEXT_MAX);
	UT_ASSERT(strcmp(a.text + strlen(a.text) - 3, "...") == 0);
	/* what is beyond the text shown still counts */
	sql[n - 1] = sql[n - 1] == '1' ? '2' : '1';
	fingerprint_sql(S(sql), &b);
	UT_ASSERT(a.hash != b.hash);
}

/* DDL found in a text, as "what@start+len;..." */
struct ddl_seen {
	char text[512];
	char temps[128]; /* names created as temporary, "a,b," */
};

static void ddl_cb(void *arg, const struct sqlclass_ddl *d)
{
	struct ddl_seen *s = arg;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%s@%zu+%zu;", d->what, d->start, d->len);
}

static bool temp_known(void *arg, const char *name)
{
	struct ddl_seen *s = arg;
	char key[80];

	snprintf(key, sizeof(key), "%s,", name);
	return strstr(s->temps, key) != NULL;
}

static void temp_created(void *arg, const char *name)
{
	struct ddl_seen *s = arg;
	size_t n = strlen(s->temps);

	snprintf(s->temps + n, sizeof(s->temps) - n, "%s,", name);
}

static const char *ddl(struct ddl_seen *s, const char *sql)
{
	struct sqlclass_temps temps = {temp_known, temp_created, s};

	s->text[0] = '\0';
	(void)sqlclass_find_ddl(S(sql), &temps, ddl_cb, s);
	return s->text;
}

static void test_sqlclass_ddl(void)
{
	struct ddl_seen s;

	memset(&s, 0, sizeof(s));
	UT_EQ_STR(ddl(&s, "CREATE TABLE t (a int)"), "CREATE TABLE@0+22;");
	UT_EQ_STR(ddl(&s, "select 1; alter table t add b int;"), "ALTER TABLE@10+23;");
	UT_EQ_STR(ddl(&s, "create or replace function f() returns int language sql "
			  "begin atomic select 1; select 2; end; drop index i"),
		  "CREATE OR REPLACE FUNCTION@0+92;DROP INDEX@94+12;");
	UT_EQ_STR(ddl(&s, "COMMENT ON TABLE t IS 'x'; GRANT SELECT ON t TO bob"),
		  "COMMENT ON@0+25;GRANT@27+24;");
	UT_EQ_STR(ddl(&s, "select * into t2 from t"), "SELECT INTO@0+23;");
	UT_EQ_STR(ddl(&s, "insert into t select 1; select 'create table x'"), "");
	UT_EQ_STR(ddl(&s, "explain analyze create table x as select 1"), "CREATE TABLE@0+42;");
	UT_EQ_STR(ddl(&s, "/* create */ select 1 -- drop table t"), "");
	/* DO: PL/pgSQL statements, and the strings its EXECUTEs run */
	UT_EQ_STR(ddl(&s, "DO $$BEGIN IF true THEN CREATE INDEX i ON t(a); END IF; END$$"),
		  "DO (CREATE INDEX)@0+61;");
	UT_EQ_STR(ddl(&s,
		      "do 'begin execute ''alter table '' || quote_ident(''t'') || '' add c int''; end'"),
		  "DO (ALTER TABLE)@0+80;");
	UT_EQ_STR(ddl(&s, "DO $x$ DECLARE comment text; BEGIN comment := 'x'; "
			  "RAISE NOTICE 'create table'; END $x$"),
		  "");
	UT_EQ_STR(ddl(&s, "DO LANGUAGE plpython3u $$ plpy.execute('create table t()') $$"), "");
	/* temporary objects are the session's own */
	UT_EQ_STR(ddl(&s, "create temp table tmp1 (a int); drop table tmp1"), "");
	UT_EQ_STR(s.temps, "tmp1,");
	UT_EQ_STR(ddl(&s, "CREATE LOCAL TEMPORARY VIEW v AS SELECT 1; drop view v, tmp1"), "");
	UT_EQ_STR(ddl(&s, "drop table tmp1, keep"), "DROP TABLE@0+21;");
	UT_EQ_STR(ddl(&s, "drop table pg_temp.anything"), "");
	UT_EQ_STR(ddl(&s, "select 1 into temp table tmp2"), "");
	UT_ASSERT(strstr(s.temps, "tmp2,") != NULL);
	UT_EQ_STR(ddl(&s, "create unlogged table u (a int)"), "CREATE UNLOGGED TABLE@0+31;");
}

static void test_sqlclass_ddl_maybe(void)
{
	UT_ASSERT(!sqlclass_ddl_maybe(S("SELECT abalance FROM pgbench_accounts WHERE aid = 1")));
	UT_ASSERT(!sqlclass_ddl_maybe(S("UPDATE t SET a = 1")));
	UT_ASSERT(!sqlclass_ddl_maybe(S("  ")));
	UT_ASSERT(sqlclass_ddl_maybe(S("select 1; select 2")));
	/* a semicolon that only ends the statement is no second statement */
	UT_ASSERT(!sqlclass_ddl_maybe(S("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")));
	UT_ASSERT(!sqlclass_ddl_maybe(S("select 1 ; ;\n ")));
	UT_ASSERT(sqlclass_ddl_maybe(S("select 1; drop table t")));
	UT_ASSERT(sqlclass_ddl_maybe(S("select 1;drop table t;")));
	UT_ASSERT(sqlclass_ddl_maybe(S("select ';' ; create table t()")));
	UT_ASSERT(sqlclass_ddl_maybe(S("select 1 into x")));
	UT_ASSERT(sqlclass_ddl_maybe(S("Create table t()")));
	UT_ASSERT(sqlclass_ddl_maybe(S("do $$ begin end $$")));
}

static struct sqlclass_read rd(const char *sql)
{
	struct sqlclass_read r;

	sqlclass_read(S(sql), &r);
	return r;
}

static void test_sqlclass_read(void)
{
	struct sqlclass_read r;

	r = rd("SELECT abalance FROM pgbench_accounts WHERE aid = 3;");
	UT_EQ_INT(r.kind, SQLCLASS_READ);
	UT_ASSERT(!r.ordered && !r.shape_only);
	r = rd("select a from t order by a; select b from u order by 1");
	UT_EQ_INT(r.kind, SQLCLASS_READ);
	UT_ASSERT(r.ordered);
	r = rd("select a, row_number() over (order by a) from t");
	UT_ASSERT(r.kind == SQLCLASS_READ && !r.ordered);
	UT_ASSERT(rd("select now()").shape_only);
	UT_ASSERT(rd("select * from pg_stat_activity").shape_only);
	UT_ASSERT(!rd("select * from pgbench_branches").shape_only);
	UT_EQ_INT(rd("show server_version").kind, SQLCLASS_READ);
	/* writes, locks, session state */
	UT_EQ_INT(rd("select nextval('s')").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select * from t for update").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select * from t for key share").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("with x as (delete from t returning *) select * from x").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select * into t2 from t").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select pg_advisory_lock(1)").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select set_config('a.b', 'c', false)").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select 1; update t set a = 1").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("insert into t values (1)").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("declare c cursor for select 1").kind, SQLCLASS_OTHER);
	/* transactions */
	r = rd("BEGIN READ ONLY");
	UT_EQ_INT(r.kind, SQLCLASS_BEGIN_RO);
	UT_EQ_INT(r.rest, 15);
	r = rd("start transaction isolation level repeatable read, read only; select 1");
	UT_EQ_INT(r.kind, SQLCLASS_BEGIN_RO);
	UT_EQ_INT(r.rest, 61);
	UT_EQ_INT(rd("begin").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("begin isolation level read committed").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("begin read only, read write").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("commit").kind, SQLCLASS_END);
	UT_EQ_INT(rd("END;").kind, SQLCLASS_END);
	UT_EQ_INT(rd("rollback").kind, SQLCLASS_END);
	UT_EQ_INT(rd("commit and chain").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("select 1; commit").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("rollback to savepoint a").kind, SQLCLASS_TXN);
	UT_EQ_INT(rd("savepoint a; select 1").kind, SQLCLASS_TXN);
	UT_EQ_INT(rd("set local statement_timeout = 5").kind, SQLCLASS_TXN);
	UT_EQ_INT(rd("set transaction isolation level serializable").kind, SQLCLASS_OTHER);
	UT_EQ_INT(rd("set role bob").kind, SQLCLASS_OTHER);
}

const struct unit_test unit_tests_sqlclass[] = {
	{"sqltok_forms", test_sqltok_forms},
	{"fingerprint_constants", test_fingerprint_constants},
	{"fingerprint_long", test_fingerprint_long},
	{"sqlclass_ddl", test_sqlclass_ddl},
	{"sqlclass_ddl_maybe", test_sqlclass_ddl_maybe},
	{"sqlclass_read", test_sqlclass_read},
	{NULL, NULL},
};

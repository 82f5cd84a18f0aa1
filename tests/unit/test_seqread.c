/*
 * test_seqread.c - admin/seqread.c: the next value of a sequence, which side
 * is behind in either direction, the relation query's text, and the reader
 * of the sequence sync's answers.
 */
#include "unit.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/seqread.h"
#include "admin/cutover/seqsql.h"
#include "admin/cutover/seqstate.h"
#include "protocol/pq_build.h"

static void test_seq_next_value(void)
{
	/* after nextval() or setval(v): last + increment */
	UT_ASSERT(seq_next_value(41, true, 1) == 42);
	UT_ASSERT(seq_next_value(100, true, 10) == 110);
	UT_ASSERT(seq_next_value(-5, true, -1) == -6);
	/* never used, RESTART, setval(v, false): last itself */
	UT_ASSERT(seq_next_value(1, false, 1) == 1);
	UT_ASSERT(seq_next_value(500, false, 1) == 500);
	UT_ASSERT(seq_next_value(-1, false, -1) == -1);
	/* exhausted at a bound: saturates instead of overflowing */
	UT_ASSERT(seq_next_value(LLONG_MAX, true, 1) == LLONG_MAX);
	UT_ASSERT(seq_next_value(LLONG_MIN, true, -1) == LLONG_MIN);
}

static void test_seq_is_behind(void)
{
	/* ascending: a lower next value is behind, equal is not */
	UT_ASSERT(seq_is_behind(10, 11, 1));
	UT_ASSERT(!seq_is_behind(11, 11, 1));
	UT_ASSERT(!seq_is_behind(1011, 11, 1));
	/* descending: a higher next value is behind */
	UT_ASSERT(seq_is_behind(-10, -11, -1));
	UT_ASSERT(!seq_is_behind(-11, -11, -1));
	UT_ASSERT(!seq_is_behind(-1011, -11, -1));
	/* the case pg_sequences hides: the source at setval(500, false) */
	UT_ASSERT(seq_is_behind(seq_next_value(1, false, 1), seq_next_value(500, false, 1), 1));
	UT_ASSERT(!seq_is_behind(seq_next_value(500, false, 1), seq_next_value(499, true, 1), 1));
}

static void test_seq_parse_int(void)
{
	long long v;

	UT_ASSERT(seq_parse_int("9223372036854775807", &v) && v == LLONG_MAX);
	UT_ASSERT(seq_parse_int("-3", &v) && v == -3);
	UT_ASSERT(!seq_parse_int("", &v));
	UT_ASSERT(!seq_parse_int("12x", &v));
	UT_ASSERT(!seq_parse_int("9223372036854775808", &v));
}

static void test_seq_raw_append(void)
{
	struct pq_buf b;
	const char *sql;

	pq_buf_init(&b);
	seq_raw_append(&b, "public.\"Odd\"\"seq\"", 1);
	seq_raw_append(&b, "s.t", -2);
	pq_put_u8(&b, 0);
	UT_ASSERT(!b.failed);
	sql = (const char *)b.data;
	/* two parts, joined once, each naming its relation and its increment */
	UT_ASSERT(strncmp(sql, "SELECT ", 7) == 0);
	UT_ASSERT(strstr(sql, " FROM public.\"Odd\"\"seq\" s ") != NULL);
	UT_ASSERT(strstr(sql, " UNION ALL SELECT ") != NULL);
	UT_ASSERT(strstr(strstr(sql, " UNION ALL ") + 1, " UNION ALL ") == NULL);
	UT_ASSERT(strstr(sql, "s.is_called, 1 FROM") != NULL);
	UT_ASSERT(strstr(sql, "s.is_called, -2 FROM s.t s ") != NULL);
	pq_buf_free(&b);
}

static void test_seq_values_sql(void)
{
	const uint32_t oids[3] = {16384, 16385, 4294967295u};
	const long long known[3] = {41, 0, -7};
	const bool known_set[3] = {true, false, true};
	struct pq_buf b;
	const char *sql;

	/* everything: no value known, every sequence answers */
	pq_buf_init(&b);
	seq_values_sql(&b, oids, NULL, NULL, 3);
	UT_ASSERT(!b.failed);
	sql = (const char *)b.data;
	UT_ASSERT(strncmp(sql, "DO $pgcutover_seq$ ", 19) == 0);
	UT_ASSERT(strstr(sql, "'{16384,16385,4294967295}'::pg_catalog.oid[]") != NULL);
	UT_ASSERT(strstr(sql, "'{NULL,NULL,NULL}'::pg_catalog.int8[]") != NULL);
	/* the relations are read only where pg_sequence_last_value() shows NULL */
	UT_ASSERT(strstr(sql, "WHERE pg_catalog.pg_sequence_last_value(t.o) IS NULL LOOP") != NULL);
	UT_ASSERT(strstr(sql, "current_setting('pgcutover.sequences')") != NULL);
	pq_buf_free(&b);
	/* what moved: the values known are compared on the server */
	pq_buf_init(&b);
	seq_values_sql(&b, oids, known, known_set, 3);
	sql = (const char *)b.data;
	UT_ASSERT(strstr(sql, "'{41,NULL,-7}'::pg_catalog.int8[]") != NULL);
	UT_ASSERT(strstr(sql, "v.l IS DISTINCT FROM t.k") != NULL);
	pq_buf_free(&b);
}

static void test_seq_apply_sql(void)
{
	const struct seq_apply_item items[2] = {
		{"public.\"it's\"", 100, true, 1},
		{"s.d", -5, false, -2},
	};
	struct pq_buf b;
	const char *sql;

	pq_buf_init(&b);
	seq_apply_sql(&b, items, 2, 1000);
	UT_ASSERT(!b.failed);
	sql = (const char *)b.data;
	/* names as quoted literals, values as arrays, the margin as a number */
	UT_ASSERT(strstr(sql, "ARRAY[E'public.\"it''s\"',E's.d']::text[]") != NULL);
	UT_ASSERT(strstr(sql, "ol numeric[] := '{100,-5}'") != NULL);
	UT_ASSERT(strstr(sql, "oc boolean[] := '{t,f}'") != NULL);
	UT_ASSERT(strstr(sql, "oi numeric[] := '{1,-2}'") != NULL);
	UT_ASSERT(strstr(sql, "m numeric := 1000;") != NULL);
	/* never backwards: a setval only when the new next value differs */
	UT_ASSERT(strstr(sql, "IF n <> nxt THEN PERFORM pg_catalog.setval(") != NULL);
	pq_buf_free(&b);
	/* nothing to set: an empty loop */
	pq_buf_init(&b);
	seq_apply_sql(&b, items, 0, 0);
	UT_ASSERT(!b.failed && strstr((const char *)b.data, "ARRAY[]::text[]") != NULL);
	pq_buf_free(&b);
}

/* A seq_values_sql() answer as the server would send it: rows of oid, last_value, is_called. */
static PGresult *values_result(const char *const (*rows)[3], int n)
{
	PGresAttDesc cols[3] = {
		{"o", 0, 0, 0, 26, 4, -1},
		{"l", 0, 0, 0, 20, 8, -1},
		{"c", 0, 0, 0, 16, 1, -1},
	};
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	if (res == NULL || !PQsetResultAttrs(res, 3, cols))
		abort();
	for (int i = 0; i < n; i++)
		for (int f = 0; f < 3; f++)
			if (!PQsetvalue(res, i, f, (char *)rows[i][f], (int)strlen(rows[i][f])))
				abort();
	return res;
}

static void test_seq_value_row(void)
{
	struct seq_entry e[3] = {
		{16384, "public.a", 1, 0, false},
		{16390, "public.b", -1, 0, false},
		{4294967295u, "public.c", 1, 0, false},
	};
	struct seq_ahead sa = {3, e};
	const char *const rows[][3] = {
		{"16390", "-7", "t"},                       /* a selected sequence, used */
		{"16384", "1", "f"},                        /* never used: is_called false */
		{"4294967295", "9223372036854775807", "t"}, /* the largest oid and value */
		{"16385", "5", "t"},                        /* not one of the selected sequences */
		{"-1", "5", "t"},                           /* not an oid */
		{"4294967296", "5", "t"},                   /* past the oid range */
		{"16384", "x", "t"},                        /* a value that does not parse */
	};
	PGresult *res = values_result(rows, 7);
	long long last = 0;
	bool called = false;

	UT_ASSERT(seq_value_row(&sa, res, 0, &last, &called) == &e[1]);
	UT_ASSERT(last == -7 && called);
	UT_ASSERT(seq_value_row(&sa, res, 1, &last, &called) == &e[0]);
	UT_ASSERT(last == 1 && !called);
	UT_ASSERT(seq_value_row(&sa, res, 2, &last, &called) == &e[2]);
	UT_ASSERT(last == LLONG_MAX && called);
	/* the entries are left to the caller */
	UT_ASSERT(e[0].last == 0 && !e[0].called && e[1].last == 0 && !e[1].called);
	/* what the query cannot answer */
	for (int i = 3; i < 7; i++)
		UT_ASSERT(seq_value_row(&sa, res, i, &last, &called) == NULL);
	/* nothing selected: no row is one of them */
	sa.n = 0;
	UT_ASSERT(seq_value_row(&sa, res, 0, &last, &called) == NULL);
	UT_ASSERT(seq_ahead_find(NULL, 16384) == NULL);
	PQclear(res);
}

const struct unit_test unit_tests_seqread[] = {
	{"seq_next_value", test_seq_next_value}, {"seq_is_behind", test_seq_is_behind},
	{"seq_parse_int", test_seq_parse_int},   {"seq_raw_append", test_seq_raw_append},
	{"seq_values_sql", test_seq_values_sql}, {"seq_apply_sql", test_seq_apply_sql},
	{"seq_value_row", test_seq_value_row},   {NULL, NULL},
};

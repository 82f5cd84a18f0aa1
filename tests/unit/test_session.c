/*
 * test_session.c - statement classification, capture and restore of session
 * state, and the prepared-statement books (the SQL glance is test_sqllex.c's).
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/prepared.h"
#include "proxy/session.h"
#include "tests/unit/unit.h"

#define S(x) (const uint8_t *)(x), strlen(x)

static void test_classify(void)
{
	static const struct {
		const char *sql;
		enum session_kind kind;
	} cases[] = {
		{"SELECT 1", SK_PLAIN},
		{"  select * from t", SK_PLAIN},
		{"(select 1)", SK_PLAIN},
		{"INSERT INTO t VALUES (1)", SK_PLAIN},
		{"begin", SK_PLAIN},
		{"COMMIT", SK_PLAIN},
		{"with x as (select 1) select * from x", SK_PLAIN},
		{"", SK_PLAIN},
		{"-- only a comment", SK_PLAIN},
		{"SET search_path = a", SK_STATE},
		{"/* hint */ set local x = 1", SK_STATE},
		{"RESET ALL", SK_STATE},
		{"LISTEN ch", SK_STATE},
		{"unlisten *", SK_STATE},
		{"PREPARE p AS SELECT 1", SK_STATE},
		{"CREATE TEMP TABLE t (i int)", SK_STATE},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", SK_STATE},
		{"DO $$ begin end $$", SK_STATE},
		{"select set_config('a.b', 'c', false)", SK_STATE},
		{"SELECT pg_catalog.set_config('a.b', 'c', false)", SK_STATE},
		{"select pg_advisory_lock(1)", SK_STATE},
		{"select pg_try_advisory_lock(1)", SK_STATE},
		{"load 'auto_explain'", SK_STATE},
		{"???", SK_STATE},
		{"DEALLOCATE p", SK_DEALLOCATE},
		{"discard all", SK_DISCARD},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (session_classify(S(cases[i].sql)) != cases[i].kind)
			UT_FAIL("session_classify(\"%s\") == %d, expected %d", cases[i].sql,
				(int)session_classify(S(cases[i].sql)), (int)cases[i].kind);
	}
	/* a prefix is enough */
	UT_EQ_INT(session_classify((const uint8_t *)"SET x = 'a very long value", 6), SK_STATE);
}

static void test_deallocate(void)
{
	char name[32];
	bool all;

	UT_ASSERT(session_parse_deallocate(S("DEALLOCATE p1"), &all, name, sizeof(name)));
	UT_ASSERT(!all);
	UT_EQ_STR(name, "p1");
	UT_ASSERT(session_parse_deallocate(S("deallocate prepare \"My Stmt\" ;"), &all, name,
					   sizeof(name)));
	UT_ASSERT(!all);
	UT_EQ_STR(name, "My Stmt");
	UT_ASSERT(session_parse_deallocate(S("DEALLOCATE ALL"), &all, name, sizeof(name)));
	UT_ASSERT(all);
	UT_ASSERT(session_parse_deallocate(S("DEALLOCATE PREPARE ALL;"), &all, name, sizeof(name)));
	UT_ASSERT(all);
	/* a statement called "prepare" */
	UT_ASSERT(session_parse_deallocate(S("DEALLOCATE prepare"), &all, name, sizeof(name)));
	UT_EQ_STR(name, "prepare");
	UT_ASSERT(!session_parse_deallocate(S("DEALLOCATE p; SELECT 1"), &all, name, sizeof(name)));
	UT_ASSERT(!session_parse_deallocate(S("DEALLOCATE"), &all, name, sizeof(name)));
	UT_ASSERT(!session_parse_deallocate(S("SELECT 1"), &all, name, sizeof(name)));
	UT_ASSERT(session_is_discard_all(S(" DISCARD ALL ;")));
	UT_ASSERT(!session_is_discard_all(S("DISCARD PLANS")));
	UT_ASSERT(!session_is_discard_all(S("DISCARD ALL; SELECT 1")));
}

static void test_capture_and_restore(void)
{
	struct session ss;
	struct ps_stmt *st;
	char *sql;
	bool oom;
	uint32_t gen;
	static const uint8_t body[] = "SELECT 1\0\0\0";

	session_init(&ss);
	UT_ASSERT(session_restore_sql(&ss, false, &oom) == NULL && !oom);
	st = ps_stmt_get(body, sizeof(body) - 1, SK_PLAIN);
	UT_ASSERT(st != NULL);
	UT_ASSERT(ps_map_set(&ss.stmts, "gone", st, true) != NULL);
	UT_ASSERT(ps_map_set(&ss.stmts, "kept", st, true) != NULL);
	ps_stmt_put(st);
	gen = ss.gen;
	UT_ASSERT(session_apply_capture(&ss,
					"Ssearch_path=\"$user\", public\n"
					"Sstatement_timeout=1777\n"
					"Srole=app_reader\n"
					"LMy Channel\n"
					"P2:p1PREPARE p1 AS SELECT 'it''s'\n"
					"Nkept",
					true));
	UT_ASSERT(ss.gen != gen);
	UT_ASSERT(ss.blocked == NULL);
	UT_EQ_INT(session_st(&ss)->settings.count, 3);
	UT_EQ_STR(params_get(&session_st(&ss)->settings, "statement_timeout"), "1777");
	UT_EQ_INT(session_st(&ss)->listens.count, 1);
	UT_EQ_INT(session_st(&ss)->sql_stmts.count, 1);
	/* the server no longer had "gone" (a DEALLOCATE), so neither do we */
	UT_ASSERT(ps_map_find(&ss.stmts, "gone") == NULL);
	UT_ASSERT(ps_map_find(&ss.stmts, "kept") != NULL);
	UT_ASSERT(!ss.dirty);

	sql = session_restore_sql(&ss, false, &oom);
	UT_ASSERT(sql != NULL);
	UT_ASSERT(strstr(sql, "pg_catalog.set_config(E'search_path', E'\"$user\", public', false)") !=
		  NULL);
	UT_ASSERT(strstr(sql, "LISTEN \"My Channel\"; ") != NULL);
	UT_ASSERT(strstr(sql, "PREPARE p1 AS SELECT 'it''s'; ") != NULL);
	UT_ASSERT(strncmp(sql, "RESET", 5) != 0);
	free(sql);
	sql = session_restore_sql(&ss, true, &oom);
	UT_ASSERT(sql != NULL && strncmp(sql, "RESET ALL; RESET ROLE; SELECT ", 30) == 0);
	free(sql);

	/* the same values again: the generation stays */
	gen = ss.gen;
	UT_ASSERT(session_apply_capture(
		&ss,
		"Sstatement_timeout=1777\nSsearch_path=\"$user\", public\nSrole=app_reader\nNkept",
		true));
	UT_EQ_INT(ss.gen, gen);
	/* what cannot move, a multi-statement PREPARE, a statement pgcutover never saw */
	UT_ASSERT(session_apply_capture(&ss,
					"Btemporary tables\n"
					"P1:xPREPARE x AS SELECT 1; DELETE FROM t\n"
					"Nkept\nNstranger",
					true));
	UT_ASSERT(ss.blocked != NULL);
	UT_ASSERT(strstr(ss.blocked, "temporary tables") != NULL);
	UT_ASSERT(strstr(ss.blocked, "multi-statement") != NULL);
	UT_ASSERT(strstr(ss.blocked, "did not track") != NULL);
	UT_EQ_INT(session_st(&ss)->sql_stmts.count, 0);
	/* a settings-only capture (transaction pooling) keeps listens and the verdict */
	UT_ASSERT(session_apply_capture(&ss, "Swork_mem=4096", false));
	UT_EQ_INT(session_st(&ss)->settings.count, 1);
	UT_ASSERT(ss.blocked != NULL);
	session_reset(&ss);
	UT_ASSERT(!session_has_state(&ss));
	session_free(&ss);
	UT_EQ_INT(ps_stmt_count(), 0);
}

static void test_stmt_registry_and_map(void)
{
	static const uint8_t a[] = "SELECT 1\0\0\0", b[] = "SELECT 2\0\0\0";
	struct ps_stmt *sa = ps_stmt_get(a, sizeof(a) - 1, SK_PLAIN);
	struct ps_stmt *sa2 = ps_stmt_get(a, sizeof(a) - 1, SK_PLAIN);
	struct ps_stmt *sb = ps_stmt_get(b, sizeof(b) - 1, SK_STATE);
	struct ps_map m;
	struct ps_entry *e;
	char name[16];

	UT_ASSERT(sa && sa == sa2 && sb && sb != sa);
	UT_EQ_INT(ps_stmt_count(), 2);
	ps_stmt_put(sa2);
	ps_map_init(&m);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		UT_ASSERT(ps_map_set(&m, name, i % 2 ? sb : sa, true) != NULL);
	}
	UT_EQ_INT(m.tab.count, 100);
	UT_EQ_INT(m.stateful, 50);
	UT_EQ_INT(m.missing, 0);
	/* a new server: everything missing until restored */
	ps_map_new_server(&m);
	UT_EQ_INT(m.missing, 100);
	e = ps_map_find(&m, "s7");
	UT_ASSERT(e && e->stmt == sb && !ps_map_present(&m, e));
	ps_map_mark(&m, e, true);
	UT_EQ_INT(m.missing, 99);
	/* renaming a name to another statement, removing, clearing */
	UT_ASSERT(ps_map_set(&m, "s7", sa, false) != NULL);
	UT_EQ_INT(m.tab.count, 100);
	UT_EQ_INT(m.stateful, 49);
	UT_EQ_INT(m.missing, 100);
	UT_ASSERT(ps_map_remove(&m, "s8"));
	UT_ASSERT(!ps_map_remove(&m, "s8"));
	UT_EQ_INT(m.tab.count, 99);
	UT_ASSERT(ps_map_find(&m, "S1") == NULL); /* names are case-sensitive */
	/* as in PostgreSQL, only the first 63 bytes of a name count */
	{
		char longer[200], cut[64];

		memset(longer, 'n', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		memcpy(cut, longer, 63);
		cut[63] = '\0';
		UT_ASSERT(ps_map_set(&m, longer, sa, true) != NULL);
		e = ps_map_find(&m, cut);
		UT_ASSERT(e != NULL && strcmp(e->name, longer) == 0);
		cut[62] = 'x';
		UT_ASSERT(ps_map_find(&m, cut) == NULL);
		UT_ASSERT(ps_map_remove(&m, longer));
		UT_EQ_INT(m.tab.count, 99);
	}
	ps_map_free(&m);
	ps_stmt_put(sa);
	ps_stmt_put(sb);
	UT_EQ_INT(ps_stmt_count(), 0);
}

static void test_server_cache_lru(void)
{
	struct ps_stmt *st[5];
	struct ps_cache c;
	uint32_t victim;
	uint8_t body[16];
	char name[32];

	for (int i = 0; i < 5; i++) {
		snprintf((char *)body, sizeof(body), "SELECT %d", i);
		st[i] = ps_stmt_get(body, strlen((char *)body) + 3, SK_PLAIN);
		UT_ASSERT(st[i] != NULL);
	}
	ps_cache_init(&c);
	for (int i = 0; i < 3; i++)
		UT_ASSERT(ps_cache_add(&c, st[i]) != NULL);
	UT_EQ_INT(c.tab.count, 3);
	/* using 0 makes 1 the least recently used */
	UT_ASSERT(ps_cache_find(&c, st[0]) != NULL);
	UT_ASSERT(ps_cache_evict(&c, st[3], &victim));
	UT_EQ_INT(victim, 1);
	UT_ASSERT(ps_cache_find(&c, st[1]) == NULL);
	/* the statement in use is never the victim */
	UT_ASSERT(ps_cache_evict(&c, st[2], &victim));
	UT_EQ_INT(victim, 0);
	UT_ASSERT(!ps_cache_evict(&c, st[2], &victim));
	/* names are never reused on one connection */
	UT_ASSERT(ps_cache_add(&c, st[4]) != NULL);
	UT_EQ_INT(ps_cache_find(&c, st[4])->sname, 3);
	ps_server_name(ps_cache_find(&c, st[4])->sname, name, sizeof(name));
	UT_EQ_STR(name, PS_SERVER_PREFIX "3");
	ps_cache_remove(&c, st[4]);
	UT_EQ_INT(c.tab.count, 1);
	ps_cache_free(&c);
	for (int i = 0; i < 5; i++)
		ps_stmt_put(st[i]);
	UT_EQ_INT(ps_stmt_count(), 0);
}

static void test_cleanup_sql(void)
{
	bool oom;
	char *sql;

	/* settings only: nothing to drop (the usual case) */
	UT_ASSERT(session_cleanup_sql("Sstatement_timeout=1\nSsearch_path=a", &oom) == NULL && !oom);
	UT_ASSERT(session_cleanup_sql("", &oom) == NULL && !oom);
	sql = session_cleanup_sql("Swork_mem=1MB\nLchan\nXq1\nXMy \"odd\" name\nLother", &oom);
	UT_ASSERT(sql != NULL);
	UT_EQ_STR(sql, "DEALLOCATE \"q1\"; DEALLOCATE \"My \"\"odd\"\" name\"; UNLISTEN *; ");
	free(sql);
	sql = session_cleanup_sql("Lchan", &oom);
	UT_ASSERT(sql != NULL);
	UT_EQ_STR(sql, "UNLISTEN *; ");
	free(sql);
	/* settings-only captures ignore those rows (the listener keeps the channels) */
	{
		struct session ss;

		session_init(&ss);
		UT_ASSERT(session_apply_capture(&ss, "Swork_mem=1MB\nLchan\nXq1", false));
		UT_EQ_INT(session_st(&ss)->settings.count, 1);
		UT_EQ_INT(session_st(&ss)->sql_stmts.count, 0);
		UT_EQ_INT(session_st(&ss)->listens.count, 0);
		session_free(&ss);
	}
}

static void test_answer_queue(void)
{
	static const uint8_t a[] = "SELECT 1\0\0\0";
	struct ps_stmt *st = ps_stmt_get(a, sizeof(a) - 1, SK_PLAIN);
	struct ps_queue q;

	ps_queue_init(&q);
	/* more than the first ring, wrapping around */
	for (int round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < 40; i++)
			UT_ASSERT(ps_queue_push(&q, PS_PARSE_HIDDEN, i, 0, st, i % 3 ? NULL : "n"));
		for (uint32_t i = 0; i < 30; i++) {
			UT_EQ_INT(ps_queue_head(&q)->sync_no, i);
			ps_queue_pop(&q);
		}
		while (q.count)
			ps_queue_pop(&q);
	}
	UT_ASSERT(ps_queue_head(&q) == NULL);
	ps_queue_free(&q);
	ps_stmt_put(st);
	UT_EQ_INT(ps_stmt_count(), 0);
}

const struct unit_test unit_tests_session[] = {
	{"session_classify", test_classify},
	{"session_deallocate", test_deallocate},
	{"session_capture_restore", test_capture_and_restore},
	{"session_stmt_map", test_stmt_registry_and_map},
	{"session_server_cache", test_server_cache_lru},
	{"session_cleanup_sql", test_cleanup_sql},
	{"session_answer_queue", test_answer_queue},
	{NULL, NULL},
};

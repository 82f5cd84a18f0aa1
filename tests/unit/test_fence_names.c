/*
 * test_fence_names.c - the text a fence sends (fence_sql.c) and the names
 * of the reverse replication objects (replication_names.c).
 *
 * What the statements do is proven against real servers by
 * tests/integration/test_reversible.py; here: every name is quoted, odd
 * names cannot break out of their literal, the pieces that must (or must
 * not) be there are, and the reverse name is stable, short and distinct.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

#include "admin/cutover/fence_sql.h"
#include "admin/cutover/replication_names.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"

static const char *built(struct pq_buf *b)
{
	/* the statements end with their NUL */
	if (b->failed || b->len == 0 || b->data[b->len - 1] != '\0')
		return NULL;
	return (const char *)b->data;
}

static void test_fence_sql_quotes_every_name(void)
{
	static const char *const roles[] = {"alice", "o'brien", "we\"ird", "Upper"};
	static const uint32_t keep[] = {4242, 17};
	struct fence_spec spec = {roles, 4, "pg'cut", keep, 2};
	struct pq_buf b;
	const char *q;

	pq_buf_init(&b);
	fence_sql(&b, &spec, true);
	q = built(&b);
	UT_ASSERT(q != NULL);
	UT_ASSERT(strstr(q, "ARRAY[E'alice',E'o''brien',E'we\"ird',E'Upper']::pg_catalog.text[]"));
	UT_ASSERT(strstr(q, "a.rolname <> E'pg''cut'"));
	UT_ASSERT(strstr(q, "p.usename <> E'pg''cut'"));
	UT_ASSERT(strstr(q, "SET default_transaction_read_only = on"));
	/* the sessions to end: client backends only (never a walsender), ours kept */
	UT_ASSERT(strstr(q, "p.backend_type = 'client backend'"));
	UT_ASSERT(strstr(q, "pg_catalog.pg_stat_replication w"));
	UT_ASSERT(strstr(q, "p.usesysid NOT IN (SELECT o.subowner"));
	UT_ASSERT(strstr(q, "pg_terminate_backend(x.pid, 5000)"));
	UT_ASSERT(
		strstr(q,
		       "p.pid NOT IN (SELECT k FROM pg_catalog.unnest('{4242,17}'::pg_catalog.int4[]) k)"));
	/* a role that owns a subscription keeps writing */
	UT_ASSERT(strstr(q, "s.subowner = a.oid"));
	/* the role names are formatted by the server with %I, never pasted */
	UT_ASSERT(strstr(q, "ALTER ROLE %I IN DATABASE %I"));
	UT_ASSERT(strstr(q, "ALTER ROLE alice") == NULL);
	/* superusers are fenced only by a superuser control_user */
	UT_ASSERT(strstr(q, "NOT a.rolsuper OR"));
	pq_buf_free(&b);

	pq_buf_init(&b);
	fence_sql(&b, &spec, false);
	q = built(&b);
	UT_ASSERT(q != NULL);
	UT_ASSERT(strstr(q, "RESET default_transaction_read_only"));
	/* only the roles fenced now: nothing to lift needs no privilege */
	UT_ASSERT(strstr(q, "'default_transaction_read_only=on' = ANY (s.setconfig)"));
	UT_ASSERT(strstr(q, "pg_terminate_backend") == NULL);
	pq_buf_free(&b);
}

static void test_fence_sql_empty_lists(void)
{
	struct fence_spec spec = {NULL, 0, "pgcutover", NULL, 0};
	struct pq_buf b;
	const char *q;

	pq_buf_init(&b);
	fence_sql(&b, &spec, true);
	q = built(&b);
	UT_ASSERT(q != NULL);
	/* typed empty arrays: valid SQL, matching nothing */
	UT_ASSERT(strstr(q, "ARRAY[]::pg_catalog.text[]"));
	UT_ASSERT(strstr(q, "unnest('{}'::pg_catalog.int4[])"));
	pq_buf_free(&b);

	pq_buf_init(&b);
	fence_state_sql(&b, &spec);
	q = built(&b);
	UT_ASSERT(q != NULL);
	UT_ASSERT(strstr(q, "'default_transaction_read_only=on' = ANY (s.setconfig)"));
	UT_ASSERT(strstr(q, "ARRAY[]::pg_catalog.text[]"));
	pq_buf_free(&b);
}

static void test_reverse_name(void)
{
	char a[64], b[64], c[64];
	char longname[200];

	replication_reverse_name("cut_rev", a, sizeof(a));
	/* FNV-1a of "cut_rev": the same function the tests compute in Python */
	UT_EQ_STR(a, "pgcutover_rev_cut_rev_1aa1d619");

	/* names that reduce alike stay apart; the reduction is lower case */
	replication_reverse_name("App-DB", b, sizeof(b));
	replication_reverse_name("appdb", c, sizeof(c));
	UT_ASSERT(strncmp(b, "pgcutover_rev_appdb_", 20) == 0);
	UT_ASSERT(strncmp(c, "pgcutover_rev_appdb_", 20) == 0);
	UT_ASSERT(strcmp(b, c) != 0);

	/* a long or odd name still fits PostgreSQL's 63 bytes, in [a-z0-9_] */
	memset(longname, 'X', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[3] = '\'';
	longname[9] = '"';
	longname[20] = (char)0xe9;
	replication_reverse_name(longname, a, sizeof(a));
	UT_ASSERT(strlen(a) <= 63);
	UT_EQ_INT(strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(a));
}

static void test_replication_names(void)
{
	struct db_config dc;
	struct repl_names n;

	memset(&dc, 0, sizeof(dc));
	dc.name = (char *)"app";
	dc.replication_slot = (char *)"app_slot";
	UT_ASSERT(replication_names(&dc, NULL, &n));
	UT_ASSERT(strncmp(n.rev, "pgcutover_rev_app_", 18) == 0);
	UT_ASSERT(n.rev_ident[0] == '"' && n.rev_lit[0] == '\'');
	UT_EQ_STR(n.fwd_slot_lit, "'app_slot'");
	/* no subscription configured: found on the target by its slot */
	UT_ASSERT(strstr(n.fwd_sub_query, "s.subslotname = 'app_slot'"));
	UT_EQ_STR(n.fwd_sub_ident, "");

	/* configured, or learnt: quoted both ways */
	dc.subscription = (char *)"My\"Sub";
	UT_ASSERT(replication_names(&dc, NULL, &n));
	UT_EQ_STR(n.fwd_sub_ident, "\"My\"\"Sub\"");
	UT_EQ_STR(n.fwd_sub_query, "'My\"Sub'::text");
	UT_ASSERT(replication_names(&dc, "learnt", &n));
	UT_EQ_STR(n.fwd_sub_ident, "\"learnt\"");

	/* longer than PostgreSQL allows: refused, not truncated */
	dc.subscription = (char *)"a_subscription_name_that_is_much_longer_than_sixty_three_bytes_x";
	UT_ASSERT(!replication_names(&dc, NULL, &n));
}

const struct unit_test unit_tests_fence_names[] = {
	{"fence_sql_quotes_every_name", test_fence_sql_quotes_every_name},
	{"fence_sql_empty_lists", test_fence_sql_empty_lists},
	{"reverse_name", test_reverse_name},
	{"replication_names", test_replication_names},
	{NULL, NULL},
};

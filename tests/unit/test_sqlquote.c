/*
 * test_sqlquote.c - protocol/sqlquote.c: literals, identifiers and configured
 * [schema.]names as they are pasted into control queries, and the literals
 * and identifiers appended to the statements that restore a session.
 */
#include "unit.h"

#include "protocol/pq_build.h"
#include "protocol/sqlquote.h"

static void test_sqlquote_literal(void)
{
	char out[64];

	UT_ASSERT(sqlquote_literal("app_to_target", out, sizeof(out)));
	UT_EQ_STR(out, "'app_to_target'");
	UT_ASSERT(sqlquote_literal("", out, sizeof(out)));
	UT_EQ_STR(out, "''");
	UT_ASSERT(sqlquote_literal("it's", out, sizeof(out)));
	UT_EQ_STR(out, "'it''s'");
	UT_ASSERT(sqlquote_literal("'; DROP TABLE x; --", out, sizeof(out)));
	UT_EQ_STR(out, "'''; DROP TABLE x; --'");
	/* a backslash: E'' with it doubled, as PQescapeLiteral does */
	UT_ASSERT(sqlquote_literal("a\\b'c", out, sizeof(out)));
	UT_EQ_STR(out, " E'a\\\\b''c'");
	UT_ASSERT(sqlquote_literal("0/16B3748", out, sizeof(out)));
	UT_EQ_STR(out, "'0/16B3748'");
}

static void test_sqlquote_ident(void)
{
	char out[64];

	UT_ASSERT(sqlquote_ident("pgcutover_marker", out, sizeof(out)));
	UT_EQ_STR(out, "\"pgcutover_marker\"");
	UT_ASSERT(sqlquote_ident("My \"odd\" name", out, sizeof(out)));
	UT_EQ_STR(out, "\"My \"\"odd\"\" name\"");
	/* case is kept: only sqlquote_qualified folds */
	UT_ASSERT(sqlquote_ident("Mixed", out, sizeof(out)));
	UT_EQ_STR(out, "\"Mixed\"");
}

static void test_sqlquote_qualified(void)
{
	char out[64];

	UT_ASSERT(sqlquote_qualified("pgcutover_marker", out, sizeof(out)));
	UT_EQ_STR(out, "\"pgcutover_marker\"");
	UT_ASSERT(sqlquote_qualified("cutover.marker", out, sizeof(out)));
	UT_EQ_STR(out, "\"cutover\".\"marker\"");
	/* folded like an unquoted SQL name */
	UT_ASSERT(sqlquote_qualified("Public.PgCutover_Marker", out, sizeof(out)));
	UT_EQ_STR(out, "\"public\".\"pgcutover_marker\"");
	UT_ASSERT(sqlquote_qualified("s$1.t$", out, sizeof(out)));
	UT_EQ_STR(out, "\"s$1\".\"t$\"");
	/* malformed */
	UT_ASSERT(!sqlquote_qualified("", out, sizeof(out)));
	UT_EQ_STR(out, "");
	UT_ASSERT(!sqlquote_qualified(".t", out, sizeof(out)));
	UT_ASSERT(!sqlquote_qualified("s.", out, sizeof(out)));
	UT_ASSERT(!sqlquote_qualified("a.b.c", out, sizeof(out)));
}

/* A result that does not fit fails and leaves "", at every buffer size. */
static void test_sqlquote_bounds(void)
{
	char out[32];
	const char *in = "ab'c"; /* 'ab''c' : 7 bytes + NUL */

	for (size_t n = 0; n <= 8; n++) {
		memset(out, 'x', sizeof(out));
		if (n < 8) {
			UT_ASSERT(!sqlquote_literal(in, out, n));
			if (n > 0)
				UT_EQ_STR(out, "");
			UT_ASSERT(out[n] == 'x' || n == sizeof(out)); /* nothing written past n */
		} else {
			UT_ASSERT(sqlquote_literal(in, out, n));
			UT_EQ_STR(out, "'ab''c'");
		}
	}
	UT_ASSERT(!sqlquote_ident("abc", out, 5)); /* "abc" needs 6 */
	UT_ASSERT(sqlquote_ident("abc", out, 6));
	UT_ASSERT(!sqlquote_qualified("a.b", out, 7)); /* "a"."b" needs 8 */
	UT_ASSERT(sqlquote_qualified("a.b", out, 8));
	UT_EQ_STR(out, "\"a\".\"b\"");
}

/* Appended to a statement being built: literals always in the E'...' form. */
static void test_sqlquote_put(void)
{
	static const char want[] =
		"SET x = E'it''s a\\\\b'; LISTEN \"My \"\"odd\"\" name\"; E''\"\"";
	struct pq_buf b;

	pq_buf_init(&b);
	pq_put_bytes(&b, "SET x = ", 8);
	sqlquote_put_literal(&b, "it's a\\b");
	pq_put_bytes(&b, "; LISTEN ", 9);
	sqlquote_put_ident(&b, "My \"odd\" name");
	pq_put_bytes(&b, "; ", 2);
	sqlquote_put_literal(&b, "");
	sqlquote_put_ident(&b, "");
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, sizeof(want) - 1);
	UT_EQ_MEM(b.data, want, sizeof(want) - 1);

	/* a failed buffer stays failed and grows no more */
	b.failed = true;
	sqlquote_put_literal(&b, "x");
	sqlquote_put_ident(&b, "x");
	UT_EQ_INT(b.len, sizeof(want) - 1);
	pq_buf_free(&b);
}

const struct unit_test unit_tests_sqlquote[] = {
	{"sqlquote_literal", test_sqlquote_literal},
	{"sqlquote_ident", test_sqlquote_ident},
	{"sqlquote_qualified", test_sqlquote_qualified},
	{"sqlquote_bounds", test_sqlquote_bounds},
	{"sqlquote_put", test_sqlquote_put},
	{NULL, NULL},
};

/*
 * test_userlist.c - the auth_file reader (proxy/auth/userlist.c): PgBouncer's
 * format, its errors, and the SCRAM secrets derived from plaintext
 * passwords.  The fixture (fx_*) is config_fx.h.
 */
#include "config_fx.h"

#include "proxy/auth/secret.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_userlist(struct fx *fx)
{
	static const char scram[] = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$"
				    "WXrWd0dXeXJcUyQkw+q3Nq6pcd6oT0RfCTMq5OXu3Yc=:"
				    "LZ5oGoKO+CjwumH8kA6wjLGK6tJvyVw4yL5pE6+QH6A=";
	char text[512];

	snprintf(text, sizeof(text),
		 "; PgBouncer userlist\n"
		 "# another comment\n"
		 "\n"
		 "\"alice\" \"plain secret\"\n"
		 "  \"bob\"\t\"md5%s\" trailing text is ignored\r\n"
		 "\"carol\" \"%s\"\n"
		 "\"we\"\"ird\" \"pa\"\"ss\"\n"
		 "\"empty\" \"\"\n"
		 "\"alice\" \"second wins\"\n"
		 "\"semi;colon\" \"#hash\"",
		 "0123456789abcdef0123456789abcdef", scram);
	UT_ASSERT(fx_userlist(fx, text) != NULL);
	UT_EQ_INT(userlist_count(fx->ul), 6);
	UT_EQ_STR(userlist_secret(fx->ul, "alice"), "second wins");
	UT_EQ_STR(userlist_secret(fx->ul, "bob"), "md50123456789abcdef0123456789abcdef");
	UT_EQ_STR(userlist_secret(fx->ul, "carol"), scram);
	UT_EQ_STR(userlist_secret(fx->ul, "we\"ird"), "pa\"ss");
	UT_EQ_STR(userlist_secret(fx->ul, "empty"), "");
	UT_EQ_STR(userlist_secret(fx->ul, "semi;colon"), "#hash");
	UT_ASSERT(userlist_secret(fx->ul, "dave") == NULL);
	UT_ASSERT(userlist_secret(fx->ul, "Alice") == NULL);
	UT_ASSERT(userlist_secret(NULL, "alice") == NULL);
	UT_EQ_INT(userlist_count(NULL), 0);

	UT_ASSERT(fx_userlist(fx, "") != NULL);
	UT_EQ_INT(userlist_count(fx->ul), 0);
	UT_ASSERT(userlist_secret(fx->ul, "alice") == NULL);
}

static void test_userlist_parse(void)
{
	struct fx fx;

	fx_init(&fx);
	check_userlist(&fx);
	fx_done(&fx);
}

static void check_userlist_errors(struct fx *fx)
{
	static const struct {
		const char *text;
		int line;
		const char *why;
	} cases[] = {
		{"\"a\" \"b\"\n; ok\nalice secret\n", 3, "expected a quoted user name"},
		{"\"a\" \"b\"\n\"alice\"\n", 2, "expected a quoted secret"},
		{"\"alice\" secret\n", 1, "expected a quoted secret"},
		{"\n\n\n\"alice\" \"unterminated\n", 4, "unterminated quoted string"},
		{"\"alice \"secret\"\n", 1, "expected a quoted secret"},
		{"\"\" \"secret\"\n", 1, "empty user name"},
	};
	char expect[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		UT_ASSERT(fx_userlist(fx, cases[i].text) == NULL);
		UT_ASSERT(fx->ul_err != NULL);
		snprintf(expect, sizeof(expect), "%s:%d: %s", fx->path, cases[i].line, cases[i].why);
		if (strncmp(fx->ul_err, expect, strlen(expect)) != 0)
			UT_FAIL("case %zu: got \"%s\", expected \"%s...\"", i, fx->ul_err, expect);
	}

	free(fx->ul_err);
	fx->ul_err = NULL;
	snprintf(expect, sizeof(expect), "%s/none.txt", fx->dir);
	UT_ASSERT(userlist_load(expect, &fx->ul_err) == NULL);
	UT_ASSERT(fx->ul_err != NULL);
	UT_ASSERT(strstr(fx->ul_err, expect) == fx->ul_err);
	UT_ASSERT(strstr(fx->ul_err, ": could not open auth_file: No such file or directory") !=
		  NULL);
}

static void test_userlist_errors(void)
{
	struct fx fx;

	fx_init(&fx);
	check_userlist_errors(&fx);
	fx_done(&fx);
}
/* A plaintext password's SCRAM secret is derived once per user and kept. */
static void test_userlist_scram_cached(void)
{
	struct fx fx;
	struct auth_scram_secret a, b, c, m;

	fx_init(&fx);
	UT_ASSERT(fx_userlist(&fx, "\"alice\" \"pw\"\n\"bob\" \"pw\"\n"
				   "\"md\" \"md5fb8c9f33a5cd3d3c7b3bfaa6a8b0d4a5\"\n") != NULL);
	UT_ASSERT(userlist_scram_secret(fx.ul, "alice", &a));
	UT_ASSERT(userlist_scram_secret(fx.ul, "alice", &b));
	UT_ASSERT(userlist_scram_secret(fx.ul, "bob", &c));
	/* the same salt and keys again for alice; bob, with the same password, has his own salt */
	UT_ASSERT(a.salt_len == b.salt_len && memcmp(a.salt, b.salt, a.salt_len) == 0);
	UT_EQ_MEM(a.stored_key, b.stored_key, sizeof(a.stored_key));
	UT_ASSERT(memcmp(a.salt, c.salt, a.salt_len) != 0);
	/* an md5 entry cannot serve SCRAM; an unknown user has none */
	UT_ASSERT(!userlist_scram_secret(fx.ul, "md", &m));
	UT_ASSERT(!userlist_scram_secret(fx.ul, "nobody", &m));
	fx_done(&fx);
}

const struct unit_test unit_tests_userlist[] = {
	{"config_userlist_scram_cached", test_userlist_scram_cached},
	{"userlist_parse", test_userlist_parse},
	{"userlist_errors", test_userlist_errors},
	{NULL, NULL},
};

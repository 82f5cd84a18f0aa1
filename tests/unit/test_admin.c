/*
 * test_admin.c - the admin command parser (admin/admin_cmd.c): every command
 * of PRODUCT.md's table, case, semicolons, blanks, quoting, and malformed
 * input, which must fail with a message and never read out of bounds.
 */
#include "unit.h"

#include <stdlib.h>

#include "admin/admin_cmd.h"

/* Parse a copy of q without its NUL (the parser must honour len), true when it parsed. */
static bool parse(const char *q, struct admin_cmd *cmd, char *err, size_t errlen)
{
	size_t n = strlen(q);
	char *copy = malloc(n ? n : 1);
	bool ok;

	if (copy == NULL)
		return false;
	memcpy(copy, q, n);
	err[0] = '\0';
	ok = admin_cmd_parse(copy, n, cmd, err, errlen);
	free(copy);
	return ok;
}

static const struct {
	const char *query;
	enum admin_cmd_kind kind;
	const char *db;
	bool to_source;
	bool dry_run;
} good[] = {
	{"SHOW HELP", ADMIN_CMD_SHOW_HELP, "", false, false},
	{"SHOW DATABASES", ADMIN_CMD_SHOW_DATABASES, "", false, false},
	{"SHOW CLIENTS", ADMIN_CMD_SHOW_CLIENTS, "", false, false},
	{"SHOW SERVERS", ADMIN_CMD_SHOW_SERVERS, "", false, false},
	{"SHOW POOLS", ADMIN_CMD_SHOW_POOLS, "", false, false},
	{"SHOW STATS", ADMIN_CMD_SHOW_STATS, "", false, false},
	{"SHOW LISTS", ADMIN_CMD_SHOW_LISTS, "", false, false},
	{"show lists;", ADMIN_CMD_SHOW_LISTS, "", false, false},
	{"SHOW CONFIG", ADMIN_CMD_SHOW_CONFIG, "", false, false},
	{"SHOW VERSION", ADMIN_CMD_SHOW_VERSION, "", false, false},
	{"SHOW LAG", ADMIN_CMD_SHOW_LAG, "", false, false},
	{"SHOW LAG appdb", ADMIN_CMD_SHOW_LAG, "appdb", false, false},
	{"SHOW SEQUENCES appdb", ADMIN_CMD_SHOW_SEQUENCES, "appdb", false, false},
	{"SHOW SWITCHES", ADMIN_CMD_SHOW_SWITCHES, "", false, false},
	{"PAUSE", ADMIN_CMD_PAUSE, "", false, false},
	{"PAUSE appdb", ADMIN_CMD_PAUSE, "appdb", false, false},
	{"RESUME", ADMIN_CMD_RESUME, "", false, false},
	{"RESUME appdb", ADMIN_CMD_RESUME, "appdb", false, false},
	{"SWITCH appdb", ADMIN_CMD_SWITCH, "appdb", false, false},
	{"SWITCH appdb TO target", ADMIN_CMD_SWITCH, "appdb", false, false},
	{"SWITCH appdb TO source", ADMIN_CMD_SWITCH, "appdb", true, false},
	{"SWITCH appdb DRY RUN", ADMIN_CMD_SWITCH, "appdb", false, true},
	{"SWITCH appdb TO source DRY RUN", ADMIN_CMD_SWITCH, "appdb", true, true},
	{"ABORT appdb", ADMIN_CMD_ABORT, "appdb", false, false},
	{"RELOAD", ADMIN_CMD_RELOAD, "", false, false},
	{"SHUTDOWN", ADMIN_CMD_SHUTDOWN, "", false, false},
	{"KILL appdb", ADMIN_CMD_KILL, "appdb", false, false},
	{"FENCE appdb source", ADMIN_CMD_FENCE, "appdb", true, false},
	{"FENCE appdb target", ADMIN_CMD_FENCE, "appdb", false, false},
	{"unfence \"App\" SOURCE;", ADMIN_CMD_UNFENCE, "App", true, false},
	{"FINISH appdb", ADMIN_CMD_FINISH, "appdb", false, false},
	{"SHOW REPLICATION", ADMIN_CMD_SHOW_REPLICATION, "", false, false},
	{"show replication appdb", ADMIN_CMD_SHOW_REPLICATION, "appdb", false, false},
	{"SWITCH appdb TO source FORCE", ADMIN_CMD_SWITCH, "appdb", true, false},
	{"SWITCH appdb TO source DRY RUN FORCE", ADMIN_CMD_SWITCH, "appdb", true, true},
	{"CHECK appdb", ADMIN_CMD_CHECK, "appdb", false, false},
	{"check appdb to SOURCE;", ADMIN_CMD_CHECK, "appdb", true, false},
	{"CHECK \"App\" TO target", ADMIN_CMD_CHECK, "App", false, false},
	{"VERIFY appdb", ADMIN_CMD_VERIFY, "appdb", false, false},
	{"verify AppDb public.orders, \"T\" ;", ADMIN_CMD_VERIFY, "appdb", false, false},
	{"VERIFY appdb STOP", ADMIN_CMD_VERIFY_STOP, "appdb", false, false},
	{"VERIFY \"a b\" stop;", ADMIN_CMD_VERIFY_STOP, "a b", false, false},
	{"SHOW VERIFY", ADMIN_CMD_SHOW_VERIFY, "", false, false},
	{"SHOW VERIFY appdb", ADMIN_CMD_SHOW_VERIFY, "appdb", false, false},
	{"SHOW VERIFY DIFFS appdb", ADMIN_CMD_SHOW_VERIFY_DIFFS, "appdb", false, false},
	{"show verify \"diffs\"", ADMIN_CMD_SHOW_VERIFY, "diffs", false, false},
	/* case-insensitive keywords; unquoted names fold to lower case, quoted ones keep it */
	{"show help", ADMIN_CMD_SHOW_HELP, "", false, false},
	{"ShOw DaTaBaSeS", ADMIN_CMD_SHOW_DATABASES, "", false, false},
	{"switch AppDB to SOURCE dry run", ADMIN_CMD_SWITCH, "appdb", true, true},
	{"Switch \"AppDB\" To Target", ADMIN_CMD_SWITCH, "AppDB", false, false},
	{"kill \"my db; x\"", ADMIN_CMD_KILL, "my db; x", false, false},
	{"pause APPDB", ADMIN_CMD_PAUSE, "appdb", false, false},
	/* trailing semicolons and blanks */
	{"SHOW HELP;", ADMIN_CMD_SHOW_HELP, "", false, false},
	{"SHOW HELP ; ;", ADMIN_CMD_SHOW_HELP, "", false, false},
	{"RELOAD;;", ADMIN_CMD_RELOAD, "", false, false},
	{"ABORT appdb;", ADMIN_CMD_ABORT, "appdb", false, false},
	{"\n\t SHOW\t  POOLS \r\n", ADMIN_CMD_SHOW_POOLS, "", false, false},
	{"  SWITCH\tappdb\n TO\nsource  ;  ", ADMIN_CMD_SWITCH, "appdb", true, false},
	/* nothing at all: an empty query */
	{"", ADMIN_CMD_EMPTY, "", false, false},
	{"   \t\n", ADMIN_CMD_EMPTY, "", false, false},
	{";", ADMIN_CMD_EMPTY, "", false, false},
};

static void test_admin_cmd_every_command(void)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct admin_cmd cmd;
		char err[128];

		if (!parse(good[i].query, &cmd, err, sizeof(err)))
			UT_FAIL("\"%s\" did not parse: %s", good[i].query, err);
		if (cmd.kind != good[i].kind)
			UT_FAIL("\"%s\": kind %d, expected %d", good[i].query, (int)cmd.kind,
				(int)good[i].kind);
		if (strcmp(cmd.db, good[i].db) != 0)
			UT_FAIL("\"%s\": db \"%s\", expected \"%s\"", good[i].query, cmd.db,
				good[i].db);
		if (cmd.to_source != good[i].to_source || cmd.dry_run != good[i].dry_run)
			UT_FAIL("\"%s\": to_source %d dry_run %d", good[i].query, cmd.to_source,
				cmd.dry_run);
	}
}

/* VERIFY's table list: names, schemas, quoting, case folding, the bound. */
static void test_admin_cmd_verify_tables(void)
{
	struct admin_cmd cmd;
	char err[200], q[2048];
	size_t n;

	UT_ASSERT(parse("VERIFY appdb public.Orders, \"My T\", s.\"X.Y\"", &cmd, err, sizeof(err)));
	UT_EQ_INT(cmd.ntables, 3);
	UT_EQ_STR(cmd.tables[0].schema, "public");
	UT_EQ_STR(cmd.tables[0].name, "orders");
	UT_EQ_STR(cmd.tables[1].schema, "");
	UT_EQ_STR(cmd.tables[1].name, "My T");
	UT_EQ_STR(cmd.tables[2].schema, "s");
	UT_EQ_STR(cmd.tables[2].name, "X.Y");
	UT_ASSERT(parse("VERIFY appdb", &cmd, err, sizeof(err)) && cmd.ntables == 0);
	UT_ASSERT(parse("VERIFY appdb stop", &cmd, err, sizeof(err)) &&
		  cmd.kind == ADMIN_CMD_VERIFY_STOP && cmd.ntables == 0);
	/* a table named stop is written so */
	UT_ASSERT(parse("VERIFY appdb public.stop", &cmd, err, sizeof(err)) &&
		  cmd.kind == ADMIN_CMD_VERIFY && cmd.ntables == 1);
	/* at most ADMIN_CMD_TABLES_MAX tables */
	n = (size_t)snprintf(q, sizeof(q), "VERIFY appdb t0");
	for (int i = 1; i < ADMIN_CMD_TABLES_MAX; i++)
		n += (size_t)snprintf(q + n, sizeof(q) - n, ", t%d", i);
	UT_ASSERT(parse(q, &cmd, err, sizeof(err)) && cmd.ntables == ADMIN_CMD_TABLES_MAX);
	snprintf(q + n, sizeof(q) - n, ", one_more");
	UT_ASSERT(!parse(q, &cmd, err, sizeof(err)));
	UT_ASSERT(strstr(err, "at most") != NULL);
}

/* FORCE is set by SWITCH ... FORCE only. */
static void test_admin_cmd_force(void)
{
	static const struct {
		const char *query;
		bool force;
	} cases[] = {
		{"SWITCH appdb TO source FORCE", true},
		{"switch appdb force", true},
		{"SWITCH appdb TO source DRY RUN FORCE;", true},
		{"SWITCH appdb TO source", false},
		{"SWITCH appdb DRY RUN", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct admin_cmd cmd;
		char err[128];

		if (!parse(cases[i].query, &cmd, err, sizeof(err)))
			UT_FAIL("\"%s\" did not parse: %s", cases[i].query, err);
		if (cmd.force != cases[i].force)
			UT_FAIL("\"%s\": force %d", cases[i].query, cmd.force);
	}
}

static const char *const bad[] = {
	"SHOW",
	"SHOW NOTHING",
	"SHOW SEQUENCES",
	"SHOW SEQUENCES a b",
	"SHOW LAG a b",
	"SHOW HELP please",
	"SHOW DATABASES; SHOW POOLS", /* one command per query */
	"SHOW HELP; x",
	"PAUSE a b",
	"RESUME a b",
	"SWITCH",
	"SWITCH appdb TO",
	"SWITCH appdb TO nowhere",
	"SWITCH appdb DRY",
	"SWITCH appdb DRY RUN now",
	"SWITCH appdb DRY RUN TO source", /* the grammar's order: TO before DRY RUN */
	"SWITCH appdb FROM source",
	"ABORT",
	"ABORT a b",
	"KILL",
	"KILL a b",
	"RELOAD now",
	"SHUTDOWN now",
	"FENCE",
	"FENCE appdb",
	"FENCE appdb sideways",
	"FENCE appdb source now",
	"UNFENCE appdb",
	"FINISH",
	"FINISH a b",
	"CHECK",
	"CHECK a b",
	"CHECK a TO",
	"CHECK a TO nowhere",
	"CHECK a TO source now",
	"VERIFY",
	"VERIFY ;",
	"VERIFY a b c",
	"VERIFY a b,",
	"VERIFY a ,b",
	"VERIFY a s.",
	"VERIFY a .t",
	"VERIFY a \"\"",
	"VERIFY a \"t",
	"VERIFY a t;x",
	"VERIFYa",
	"SHOW VERIFY a b",
	"SHOW VERIFY DIFFS",
	"SHOW VERIFY DIFFS a b",
	"SHOW REPLICATION a b",
	"SWITCH appdb FORCE FORCE",
	"SWITCH appdb FORCE TO source", /* FORCE comes last */
	"ABORT appdb FORCE",
	"FOO",
	"SELECT 1",
	"\"SHOW\" HELP",  /* a quoted word is a name, never a keyword */
	"SWITCH \"appdb", /* unterminated quoted name */
	"CHECK \"\"",     /* an empty quoted name names nothing */
	"SWITCH \"\" TO source",
	"SWITCH app\"db", /* a quote inside a word */
	"a b c d e f g",  /* too many words */
	"SWITCH aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* > 63 */
};

static void test_admin_cmd_malformed(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct admin_cmd cmd;
		char err[128];

		if (parse(bad[i], &cmd, err, sizeof(err)))
			UT_FAIL("\"%s\" parsed (kind %d) but is malformed", bad[i], (int)cmd.kind);
		if (err[0] == '\0')
			UT_FAIL("\"%s\": no error message", bad[i]);
	}
}

/* A NUL inside the query is not a terminator the parser may stop at. */
static void test_admin_cmd_embedded_nul(void)
{
	struct admin_cmd cmd;
	char err[128];

	UT_ASSERT(!admin_cmd_parse("SHOW\0HELP", 9, &cmd, err, sizeof(err)));
	UT_ASSERT(!admin_cmd_parse("KILL a\0b", 8, &cmd, err, sizeof(err)));
	/* len shorter than the string: only the first len bytes count */
	UT_ASSERT(admin_cmd_parse("SHOW HELP", 4, &cmd, err, sizeof(err)) == false);
	UT_ASSERT(admin_cmd_parse("RELOAD garbage", 6, &cmd, err, sizeof(err)));
	UT_EQ_INT(cmd.kind, ADMIN_CMD_RELOAD);
}

/* Every prefix of a valid command parses or fails cleanly (no read beyond len). */
static void test_admin_cmd_every_prefix(void)
{
	static const char q[] = "SWITCH \"App Db\" TO source DRY RUN;";

	for (size_t n = 0; n <= sizeof(q) - 1; n++) {
		struct admin_cmd cmd;
		char err[128];
		char *copy = malloc(n ? n : 1);

		UT_ASSERT(copy != NULL);
		memcpy(copy, q, n);
		if (!admin_cmd_parse(copy, n, &cmd, err, sizeof(err)) && err[0] == '\0') {
			free(copy);
			UT_FAIL("prefix of %zu bytes: failed without a message", n);
		}
		free(copy);
	}
}

/* A small error buffer gets a truncated, terminated message. */
static void test_admin_cmd_small_errbuf(void)
{
	struct admin_cmd cmd;
	char err[8];

	memset(err, 'x', sizeof(err));
	UT_ASSERT(!admin_cmd_parse("FOO BAR", 7, &cmd, err, sizeof(err)));
	UT_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
}

/* SHOW HELP lists every command of PRODUCT.md's table, each with a description. */
static void test_admin_cmd_help_lists_every_command(void)
{
	static const char *const commands[] = {
		"SHOW HELP",     "SHOW DATABASES", "SHOW CLIENTS", "SHOW SERVERS", "SHOW POOLS",
		"SHOW STATS",    "SHOW CONFIG",    "SHOW VERSION", "SHOW LAG",     "SHOW SEQUENCES",
		"SHOW SWITCHES", "PAUSE",          "RESUME",       "SWITCH",       "ABORT",
		"RELOAD",        "SHUTDOWN",       "KILL",         "SHOW LISTS",   "CHECK",
		"VERIFY",        "SHOW VERIFY",
	};

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		bool found = false;

		for (int k = 0; admin_cmd_help[k][0]; k++) {
			size_t n = strlen(commands[i]);

			if (strncmp(admin_cmd_help[k][0], commands[i], n) == 0 &&
			    (admin_cmd_help[k][0][n] == '\0' || admin_cmd_help[k][0][n] == ' ') &&
			    admin_cmd_help[k][1] && admin_cmd_help[k][1][0])
				found = true;
		}
		if (!found)
			UT_FAIL("SHOW HELP does not list %s", commands[i]);
	}
}

const struct unit_test unit_tests_admin[] = {
	{"admin_cmd_every_command", test_admin_cmd_every_command},
	{"admin_cmd_malformed", test_admin_cmd_malformed},
	{"admin_cmd_force", test_admin_cmd_force},
	{"admin_cmd_verify_tables", test_admin_cmd_verify_tables},
	{"admin_cmd_embedded_nul", test_admin_cmd_embedded_nul},
	{"admin_cmd_every_prefix", test_admin_cmd_every_prefix},
	{"admin_cmd_small_errbuf", test_admin_cmd_small_errbuf},
	{"admin_cmd_help_lists_every_command", test_admin_cmd_help_lists_every_command},
	{NULL, NULL},
};

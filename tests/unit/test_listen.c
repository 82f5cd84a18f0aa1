/*
 * test_listen.c - the statement scanner of LISTEN in transaction pooling
 * (proxy/listen_sql.c): where statements end, what each does, the names
 * UNLISTEN gives as the server would fold and cut them, and the fields of
 * a NotificationResponse.
 */
#include "unit.h"

#include <stdlib.h>

#include "proxy/listen_sql.h"

static size_t next_of(const char *sql, size_t off)
{
	return listen_sql_next((const uint8_t *)sql, strlen(sql), off);
}

static void test_next(void)
{
	const char *q;

	q = "SELECT 1; SELECT 2";
	UT_EQ_INT(next_of(q, 0), 9);
	UT_EQ_INT(next_of(q, 9), strlen(q));
	/* a ';' in a string, a quoted name, a comment, a dollar quote ends nothing */
	q = "SELECT ';' AS \"a;b\" -- ;\n, /* ; /* ; */ */ 1; X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
	q = "DO $$ BEGIN PERFORM 1; END $$; X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
	q = "DO $body$ a; $$ ; $ $body$; X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
	q = "SELECT E'it\\'s;' ; X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
	q = "SELECT 'it''s;' ; X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
	q = "SELECT $1; X";
	UT_EQ_INT(next_of(q, 0), 10);
	/* unterminated: to the end */
	q = "SELECT 'open; X";
	UT_EQ_INT(next_of(q, 0), strlen(q));
	q = "SELECT (1; 2); X";
	UT_EQ_INT(next_of(q, 0), strlen(q) - 2);
}

static enum listen_stmt cls(const char *sql, char *name)
{
	return listen_sql_classify((const uint8_t *)sql, strlen(sql), name, LISTEN_NAME_MAX + 1);
}

static void test_classify(void)
{
	char name[LISTEN_NAME_MAX + 1];
	char longname[100];

	UT_EQ_INT(cls("LISTEN x", name), LS_LISTEN);
	UT_EQ_INT(cls("  /* c */ listen \"X\"", name), LS_LISTEN);
	UT_EQ_INT(cls("UNLISTEN Foo", name), LS_UNLISTEN);
	UT_EQ_STR(name, "foo");
	UT_EQ_INT(cls("unlisten \"Foo \"\"Bar\"\"\";", name), LS_UNLISTEN);
	UT_EQ_STR(name, "Foo \"Bar\"");
	UT_EQ_INT(cls("UNLISTEN *", name), LS_UNLISTEN_ALL);
	UT_EQ_INT(cls("UNLISTEN", name), LS_OTHER);
	UT_EQ_INT(cls("DISCARD ALL", name), LS_UNLISTEN_ALL);
	UT_EQ_INT(cls("discard plans", name), LS_OTHER);
	UT_EQ_INT(cls("NOTIFY x, 'y'", name), LS_NOTIFY);
	UT_EQ_INT(cls("SELECT pg_notify('a', 'b')", name), LS_NOTIFY);
	UT_EQ_INT(cls("select 1, pg_catalog.PG_NOTIFY ($1, $2) from t", name), LS_NOTIFY);
	UT_EQ_INT(cls("INSERT INTO t VALUES (1) RETURNING pg_notify('a', 'b')", name), LS_NOTIFY);
	UT_EQ_INT(cls("SELECT 'pg_notify(' AS x", name), LS_OTHER);
	UT_EQ_INT(cls("SELECT pg_notify_not(1)", name), LS_OTHER);
	UT_EQ_INT(cls("SELECT pg_notify AS x FROM t", name), LS_OTHER);
	UT_EQ_INT(cls("SELECT 1", name), LS_OTHER);
	UT_EQ_INT(cls("", name), LS_OTHER);
	/* a name cut as the server cuts it: 63 bytes, whole characters */
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "UNLISTEN ", 9);
	longname[9 + 70] = '\0';
	UT_EQ_INT(cls(longname, name), LS_UNLISTEN);
	UT_EQ_INT(strlen(name), LISTEN_NAME_MAX);
	/* "é" (2 bytes) across the 63rd byte: dropped whole */
	memcpy(longname, "UNLISTEN \"", 10);
	memset(longname + 10, 'b', 62);
	memcpy(longname + 72, "\xc3\xa9\"", 4);
	UT_EQ_INT(cls(longname, name), LS_UNLISTEN);
	UT_EQ_INT(strlen(name), 62);
}

struct seen {
	char text[512];
};

static void seen_cb(void *arg, enum listen_stmt kind, const char *name)
{
	struct seen *s = arg;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%d:%s ", (int)kind, name);
}

static void test_scan(void)
{
	struct seen s = {""};
	const char *q = "LISTEN a; SELECT 'UNLISTEN b;'; UNLISTEN \"C\"; DO $$ UNLISTEN d; $$;"
			"NOTIFY e; UNLISTEN *; SELECT 1";

	listen_sql_scan((const uint8_t *)q, strlen(q), seen_cb, &s);
	UT_EQ_STR(s.text, "1: 2:C 4: 3: ");
}

static void test_notification(void)
{
	static const uint8_t good[] = {0, 0, 0x30, 0x39, 'c', 'h', 0, 'p', 0};
	static const uint8_t empty[] = {0, 0, 0, 1, 'c', 0, 0};
	static const uint8_t trailing[] = {0, 0, 0, 1, 'c', 0, 'p', 0, 'x'};
	static const uint8_t short_[] = {0, 0, 0, 1, 'c', 0};
	uint32_t pid;
	const char *ch, *pl;

	UT_ASSERT(listen_sql_parse_notification(good, sizeof(good), &pid, &ch, &pl));
	UT_EQ_INT(pid, 12345);
	UT_EQ_STR(ch, "ch");
	UT_EQ_STR(pl, "p");
	UT_ASSERT(listen_sql_parse_notification(empty, sizeof(empty), &pid, &ch, &pl));
	UT_EQ_STR(pl, "");
	UT_ASSERT(!listen_sql_parse_notification(trailing, sizeof(trailing), &pid, &ch, &pl));
	UT_ASSERT(!listen_sql_parse_notification(short_, sizeof(short_), &pid, &ch, &pl));
}

const struct unit_test unit_tests_listen[] = {
	{"listen_sql_next", test_next},
	{"listen_sql_classify", test_classify},
	{"listen_sql_scan", test_scan},
	{"listen_notification", test_notification},
	{NULL, NULL},
};

/*
 * test_route.c - the durable route state files.
 *
 * Each test works in a fresh mkdtemp() directory.  The checks live in a
 * check_*() function wrapped between fx_init() and fx_done(), so that a
 * failed assertion, which returns from the check, still removes the files
 * and shuts the writer thread down.  The async tests run a real event_base
 * until the done callback fires, with a 5 s loopexit as a guard.
 */
#include "unit.h"

#include "proxy/core/log.h"
#include "proxy/core/route.h"

#include <event2/event.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* One test's temporary directory and event base. */
struct fx {
	char dir[64];            /* the mkdtemp() directory, "" if it failed */
	char state[128];         /* dir/state: the state_dir under test, not created yet */
	char err[512];           /* errbuf for the calls under test */
	struct event_base *base; /* created by fx_base() for the async tests */
};

/* What a done callback saw; the callback stops the loop once 'want' have come. */
struct done_log {
	int calls;               /* callbacks so far */
	int want;                /* stop the loop after this many */
	bool ok[8];              /* ok of each call, in order */
	int order[8];            /* the tag of each call, in order */
	char err[8][512];        /* errmsg of each call, "" when NULL */
	struct event_base *base; /* the loop to stop */
};

/* A done_log plus the tag identifying one request. */
struct done_arg {
	struct done_log *log;
	int tag;
};

static void fx_init(struct fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pgcutover-route-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		fx->dir[0] = '\0';
	snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
}

static int fx_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	chmod(path, 0700); /* undo tests that made a directory read-only */
	remove(path);
	return 0;
}

static void fx_done(struct fx *fx)
{
	route_fail_dir_fsync_for_tests(0);
	route_shutdown();
	if (fx->base)
		event_base_free(fx->base);
	if (fx->dir[0])
		nftw(fx->dir, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static bool fx_base(struct fx *fx)
{
	fx->base = event_base_new();
	return fx->base != NULL;
}

/* fx->dir/name, in a static buffer good until the next call. */
static const char *fx_path(struct fx *fx, const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", fx->dir, name);
	return buf;
}

static bool fx_write(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return false;
	fputs(text, fp);
	return fclose(fp) == 0;
}

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static void on_done(void *arg, bool ok, const char *errmsg)
{
	struct done_arg *da = arg;
	struct done_log *dl = da->log;

	if (dl->calls < 8) {
		dl->ok[dl->calls] = ok;
		dl->order[dl->calls] = da->tag;
		snprintf(dl->err[dl->calls], sizeof(dl->err[0]), "%s", errmsg ? errmsg : "");
	}
	dl->calls++;
	if (dl->calls >= dl->want)
		event_base_loopbreak(dl->base);
}

/* Runs the loop until the callbacks have come or 5 s have passed. */
static void run_loop(struct event_base *base)
{
	struct timeval guard = {5, 0};

	event_base_loopexit(base, &guard);
	event_base_dispatch(base);
}

static struct route_state make_state(enum route_side side, const char *lsn)
{
	struct route_state st;

	memset(&st, 0, sizeof(st));
	st.side = side;
	route_now(&st);
	snprintf(st.source_lsn, sizeof(st.source_lsn), "%s", lsn);
	return st;
}

/* ---------------------------------------------------------------------- */

static void check_roundtrip(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "0/16B3748"), got;
	bool found = false;
	struct stat sb;
	char text[512];
	FILE *fp;
	size_t n;

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_TARGET);
	UT_EQ_STR(got.switched_at, st.switched_at);
	UT_EQ_STR(got.source_lsn, "0/16B3748");
	UT_EQ_STR(got.new_side_xid, "");

	/* The new side's transaction ID at the flip survives the trip. */
	snprintf(st.new_side_xid, sizeof(st.new_side_xid), "%s", "4294967396");
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_EQ_STR(got.new_side_xid, "4294967396");
	UT_ASSERT(!got.switching);
	st.new_side_xid[0] = '\0';

	/* A switch under way is recorded, and so is its end. */
	st.switching = true;
	st.switching_to = SIDE_SOURCE;
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(got.switching);
	UT_EQ_INT(got.switching_to, SIDE_SOURCE);
	st.switching_to = SIDE_TARGET; /* the side routed to: refused */
	UT_ASSERT(!route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	st.switching = false;
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));

	/* The file is private and says how to undo the switch. */
	UT_ASSERT(stat(fx_path(fx, "state/appdb.route"), &sb) == 0);
	UT_EQ_INT(sb.st_mode & 0777, 0600);
	fp = fopen(fx_path(fx, "state/appdb.route"), "r");
	UT_ASSERT(fp != NULL);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	{
		const char *want =
			"# pgcutover route state: delete this file to forget the switch\n"
			"route = target\nswitched_at = ";

		UT_ASSERT(strncmp(text, want, strlen(want)) == 0);
	}

	/* Overwriting replaces; an empty LSN survives the trip. */
	st = make_state(SIDE_SOURCE, "");
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_SOURCE);
	UT_EQ_STR(got.source_lsn, "");
	UT_EQ_STR(got.switched_at, st.switched_at);
}

static void test_route_roundtrip(void)
{
	struct fx fx;

	fx_init(&fx);
	check_roundtrip(&fx);
	fx_done(&fx);
}

static void check_missing(struct fx *fx)
{
	struct route_state got;
	bool found = true;

	UT_ASSERT(fx->dir[0]);
	memset(&got, 0x55, sizeof(got));
	/* Neither the directory nor the file exists. */
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(!found);
	UT_EQ_INT(got.side, SIDE_SOURCE);
	UT_EQ_STR(got.switched_at, "");
	UT_EQ_STR(got.source_lsn, "");
	/* The directory exists but not the file. */
	found = true;
	UT_ASSERT(route_load(fx->dir, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(!found);
}

static void test_route_missing(void)
{
	struct fx fx;

	fx_init(&fx);
	check_missing(&fx);
	fx_done(&fx);
}

/* A file's text and the message expected, after "PATH". */
struct bad_case {
	const char *text;
	const char *msg;
};

static void check_malformed(struct fx *fx)
{
	static const struct bad_case cases[] = {
		{"# c\nroute = target\ncolour = blue\n", ":3: unknown key \"colour\""},
		{"route = sideways\n", ":1: invalid value for \"route\": \"sideways\""},
		{"\n\nthis is not a setting\nroute = source\n", ":3: syntax error"},
		{"route = target\nroute = source\n", ":2: duplicate key \"route\""},
		{"route = target\nsource_lsn = 0/XYZ\n", ":2: invalid value for \"source_lsn\""},
		{"route = target\nswitched_at = yesterday\n",
		 ":2: invalid value for \"switched_at\""},
		{"route = target\nswitched_at = 2024-13-01T00:00:00Z\n",
		 ":2: invalid value for \"switched_at\""},
		{"route = \n", ":1: invalid value for \"route\""},
		{"route = target\nnew_side_xid = 12x\n", ":2: invalid value for \"new_side_xid\""},
		{"route = target\nnew_side_xid = -5\n", ":2: invalid value for \"new_side_xid\""},
		{"route = target\nnew_side_xid = 123456789012345678901234567890\n",
		 ":2: invalid value for \"new_side_xid\""},
		{"route = target\nswitching_to = sideways\n",
		 ":2: invalid value for \"switching_to\""},
		{"route = target\nswitching_to = target\n",
		 ": \"switching_to\" names the side routed to"},
		{"route = source\nswitching_to = target\nswitching_to = target\n",
		 ":3: duplicate key \"switching_to\""},
		{"# only a comment\nsource_lsn = 0/1\n", ": missing key \"route\""},
		{"", ": missing key \"route\""},
	};
	const char *path;
	char want[512];

	UT_ASSERT(fx->dir[0]);
	path = fx_path(fx, "db1.route");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route_state got;
		bool found = true;

		UT_ASSERT(fx_write(path, cases[i].text));
		fx->err[0] = '\0';
		if (route_load(fx->dir, "db1", &got, &found, fx->err, sizeof(fx->err)))
			UT_FAIL("case %zu: loaded a malformed file", i);
		UT_ASSERT(!found);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].msg);
		if (strncmp(fx->err, want, strlen(want)) != 0)
			UT_FAIL("case %zu: got \"%s\", expected it to start with \"%s\"", i,
				fx->err, want);
	}

	/* Tolerated: CRLF line ends, blank lines, indentation, no spaces around '='. */
	UT_ASSERT(fx_write(path, "\r\n  # x\r\n\troute=target \r\n\nsource_lsn=ABCDEF01/1\r\n"));
	{
		struct route_state got;
		bool found = false;

		UT_ASSERT(route_load(fx->dir, "db1", &got, &found, fx->err, sizeof(fx->err)));
		UT_ASSERT(found);
		UT_EQ_INT(got.side, SIDE_TARGET);
		UT_EQ_STR(got.source_lsn, "ABCDEF01/1");
		UT_EQ_STR(got.switched_at, "");
	}
}

static void test_route_malformed(void)
{
	struct fx fx;

	fx_init(&fx);
	check_malformed(&fx);
	fx_done(&fx);
}

static void check_unreadable(struct fx *fx)
{
	struct route_state got;
	bool found = true;
	char big[5000];

	UT_ASSERT(fx->dir[0]);
	/* A directory where the file should be. */
	UT_ASSERT(mkdir(fx_path(fx, "d.route"), 0700) == 0);
	UT_ASSERT(!route_load(fx->dir, "d", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "could not read route state file \"") == fx->err);
	UT_ASSERT(strstr(fx->err, "d.route\": not a regular file") != NULL);
	/* Too big to be ours. */
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	UT_ASSERT(fx_write(fx_path(fx, "b.route"), big));
	UT_ASSERT(!route_load(fx->dir, "b", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "larger than") != NULL);
	/* A zero byte. */
	{
		FILE *fp = fopen(fx_path(fx, "z.route"), "w");

		UT_ASSERT(fp != NULL);
		fwrite("route = source\n\0\n", 1, 17, fp);
		fclose(fp);
	}
	UT_ASSERT(!route_load(fx->dir, "z", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "zero byte") != NULL);
}

static void test_route_unreadable(void)
{
	struct fx fx;

	fx_init(&fx);
	check_unreadable(&fx);
	fx_done(&fx);
}

static void check_no_tmp_left(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "1/0");

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(exists(fx_path(fx, "appdb.route")));
	UT_ASSERT(!exists(fx_path(fx, "appdb.route.tmp")));

	/* A failed rename (a directory is in the way) removes the temporary file. */
	UT_ASSERT(mkdir(fx_path(fx, "other.route"), 0700) == 0);
	UT_ASSERT(!route_store_sync(fx->dir, "other", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "could not rename file \"") == fx->err);
	UT_ASSERT(!exists(fx_path(fx, "other.route.tmp")));

	/* A stale temporary file from a crash is overwritten, then gone. */
	UT_ASSERT(fx_write(fx_path(fx, "appdb.route.tmp"), "route = garbage and more garbage\n"));
	st.side = SIDE_SOURCE;
	UT_ASSERT(route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(!exists(fx_path(fx, "appdb.route.tmp")));
}

static void test_route_no_tmp_left(void)
{
	struct fx fx;

	fx_init(&fx);
	check_no_tmp_left(&fx);
	fx_done(&fx);
}

static void check_creates_dir(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, ""), got;
	bool found = false;
	struct stat sb;
	char deeper[256];

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(!exists(fx->state));
	UT_ASSERT(route_store_sync(fx->state, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(stat(fx->state, &sb) == 0);
	UT_ASSERT(S_ISDIR(sb.st_mode));
	UT_EQ_INT(sb.st_mode & 0777, 0700);
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	/* A trailing slash is fine too. */
	snprintf(deeper, sizeof(deeper), "%s/sub/", fx->state);
	UT_ASSERT(route_store_sync(deeper, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(exists(fx_path(fx, "state/sub/appdb.route")));
}

static void test_route_creates_dir(void)
{
	struct fx fx;

	fx_init(&fx);
	check_creates_dir(&fx);
	fx_done(&fx);
}

static void check_forget(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "0/1"), got;
	bool found = false;

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_forget(fx->dir, "appdb", fx->err, sizeof(fx->err)));
	UT_ASSERT(!exists(fx_path(fx, "appdb.route")));
	UT_ASSERT(route_load(fx->dir, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(!found);
	UT_EQ_INT(got.side, SIDE_SOURCE);
	/* Forgetting twice, or in a directory that does not exist, is fine. */
	UT_ASSERT(route_forget(fx->dir, "appdb", fx->err, sizeof(fx->err)));
	UT_ASSERT(route_forget(fx->state, "appdb", fx->err, sizeof(fx->err)));
}

static void test_route_forget(void)
{
	struct fx fx;

	fx_init(&fx);
	check_forget(&fx);
	fx_done(&fx);
}

static void check_refuses(struct fx *fx)
{
	static const char *const names[] =
		{"",
		 "a/b",
		 ".hidden",
		 "..",
		 "/etc",
		 "x\ny",
		 "a1234567890123456789012345678901234567890123456789012345678901234"};
	struct route_state st = make_state(SIDE_TARGET, ""), got;
	bool found;

	UT_ASSERT(fx->dir[0]);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fx->err[0] = '\0';
		if (route_store_sync(fx->dir, names[i], &st, NULL, fx->err, sizeof(fx->err)))
			UT_FAIL("stored for name %zu", i);
		UT_ASSERT(strstr(fx->err, "invalid database name") == fx->err);
		UT_ASSERT(!route_load(fx->dir, names[i], &got, &found, fx->err, sizeof(fx->err)));
		UT_ASSERT(!route_forget(fx->dir, names[i], fx->err, sizeof(fx->err)));
	}
	/* A state that could not be read back is not written. */
	st.side = (enum route_side)7;
	UT_ASSERT(!route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	st = make_state(SIDE_TARGET, "0/1\nroute = source");
	UT_ASSERT(!route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "invalid source LSN") != NULL);
	st = make_state(SIDE_TARGET, "");
	memset(st.switched_at, 'x', sizeof(st.switched_at)); /* not terminated */
	UT_ASSERT(!route_store_sync(fx->dir, "appdb", &st, NULL, fx->err, sizeof(fx->err)));
	UT_ASSERT(!exists(fx_path(fx, "appdb.route")));
	/* No error buffer is fine. */
	UT_ASSERT(!route_store_sync(fx->dir, "a/b", &st, NULL, NULL, 0));
}

static void test_route_refuses(void)
{
	struct fx fx;

	fx_init(&fx);
	check_refuses(&fx);
	fx_done(&fx);
}

static void test_route_now(void)
{
	struct route_state st;
	const char *s;

	memset(&st, 0, sizeof(st));
	route_now(&st);
	s = st.switched_at;
	UT_EQ_INT(strlen(s), 20);
	UT_ASSERT(s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
		  s[19] == 'Z');
	UT_ASSERT(strncmp(s, "20", 2) == 0);
}

/* ---------------------------------------------------------------------- */
/* Async                                                                  */
/* ---------------------------------------------------------------------- */

static void check_async_ok(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "0/16B3748"), got;
	struct done_log dl;
	struct done_arg da;
	bool found = false;
	char *dir, *db;

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(fx_base(fx));
	memset(&dl, 0, sizeof(dl));
	dl.want = 1;
	dl.base = fx->base;
	da.log = &dl;
	da.tag = 1;
	/* The request copies its strings: free ours (and scribble the state) at once. */
	dir = strdup(fx->state);
	db = strdup("appdb");
	UT_ASSERT(dir && db);
	UT_ASSERT(route_store_async(fx->base, dir, db, &st, on_done, &da));
	free(dir);
	free(db);
	memset(&st, 0, sizeof(st));
	/* Never called synchronously. */
	UT_EQ_INT(dl.calls, 0);

	run_loop(fx->base);
	UT_EQ_INT(dl.calls, 1);
	UT_ASSERT(dl.ok[0]);
	UT_EQ_STR(dl.err[0], "");
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_TARGET);
	UT_EQ_STR(got.source_lsn, "0/16B3748");
	UT_ASSERT(!exists(fx_path(fx, "state/appdb.route.tmp")));
}

static void test_route_async_ok(void)
{
	struct fx fx;

	fx_init(&fx);
	check_async_ok(&fx);
	fx_done(&fx);
}

static void check_async_fail(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "");
	struct done_log dl;
	struct done_arg da;
	char bad[256];

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(fx_base(fx));
	/* state_dir under a regular file can be neither created nor written. */
	UT_ASSERT(fx_write(fx_path(fx, "plain"), "x"));
	snprintf(bad, sizeof(bad), "%s/plain/state", fx->dir);
	memset(&dl, 0, sizeof(dl));
	dl.want = 1;
	dl.base = fx->base;
	da.log = &dl;
	da.tag = 1;
	UT_ASSERT(route_store_async(fx->base, bad, "appdb", &st, on_done, &da));
	run_loop(fx->base);
	UT_EQ_INT(dl.calls, 1);
	UT_ASSERT(!dl.ok[0]);
	UT_ASSERT(strstr(dl.err[0], "could not create directory \"") == dl.err[0]);
	UT_ASSERT(strstr(dl.err[0], "Not a directory") != NULL);

	/* The worker goes on after a failure. */
	dl.want = 2;
	UT_ASSERT(route_store_async(fx->base, fx->dir, "appdb", &st, on_done, &da));
	run_loop(fx->base);
	UT_EQ_INT(dl.calls, 2);
	UT_ASSERT(dl.ok[1]);

	/* Another base is refused while this one is in use. */
	{
		struct event_base *other = event_base_new();

		enum log_level saved = log_level_current;
		bool ok;

		UT_ASSERT(other != NULL);
		log_level_current = LOG_FATAL; /* the expected error line is noise here */
		ok = route_store_async(other, fx->dir, "appdb", &st, on_done, &da);
		log_level_current = saved;
		event_base_free(other);
		UT_ASSERT(!ok);
	}
}

static void test_route_async_fail(void)
{
	struct fx fx;

	fx_init(&fx);
	check_async_fail(&fx);
	fx_done(&fx);
}

static void check_async_order(struct fx *fx)
{
	struct route_state st, got;
	struct done_log dl;
	struct done_arg da[6];
	bool found = false;

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(fx_base(fx));
	memset(&dl, 0, sizeof(dl));
	dl.want = 6;
	dl.base = fx->base;
	/* Six writes of one database, alternating sides: the last one decided wins. */
	for (int i = 0; i < 6; i++) {
		char lsn[20];

		da[i].log = &dl;
		da[i].tag = i;
		snprintf(lsn, sizeof(lsn), "0/%X", i + 1);
		st = make_state(i % 2 ? SIDE_SOURCE : SIDE_TARGET, lsn);
		UT_ASSERT(route_store_async(fx->base, fx->state, "appdb", &st, on_done, &da[i]));
	}
	run_loop(fx->base);
	UT_EQ_INT(dl.calls, 6);
	for (int i = 0; i < 6; i++) {
		UT_ASSERT(dl.ok[i]);
		UT_EQ_INT(dl.order[i], i);
	}
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_SOURCE);
	UT_EQ_STR(got.source_lsn, "0/6");
}

static void test_route_async_order(void)
{
	struct fx fx;

	fx_init(&fx);
	check_async_order(&fx);
	fx_done(&fx);
}

static void check_shutdown_pending(struct fx *fx)
{
	struct route_state st = make_state(SIDE_TARGET, "0/2"), got;
	struct done_log dl;
	struct done_arg da;
	bool found = false;

	UT_ASSERT(fx->dir[0]);
	UT_ASSERT(fx_base(fx));
	memset(&dl, 0, sizeof(dl));
	dl.want = 1;
	dl.base = fx->base;
	da.log = &dl;
	da.tag = 1;
	UT_ASSERT(route_store_async(fx->base, fx->state, "appdb", &st, on_done, &da));
	/* Shut down before the loop runs: the write still happens, the callback never does. */
	route_shutdown();
	{
		struct timeval tv = {0, 100000};

		event_base_loopexit(fx->base, &tv);
		event_base_dispatch(fx->base);
	}
	UT_EQ_INT(dl.calls, 0);
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_TARGET);

	/* Usable again after a shutdown; a second shutdown is harmless. */
	UT_ASSERT(route_store_async(fx->base, fx->state, "db2", &st, on_done, &da));
	run_loop(fx->base);
	UT_EQ_INT(dl.calls, 1);
	UT_ASSERT(dl.ok[0]);
	route_shutdown();
	route_shutdown();
}

static void test_route_shutdown_pending(void)
{
	struct fx fx;

	fx_init(&fx);
	check_shutdown_pending(&fx);
	fx_done(&fx);
}

static void test_route_shutdown_idle(void)
{
	route_shutdown();
	route_shutdown();
}

/*
 * route_replace_sync(): a write that fails before its rename leaves the old
 * file (or its absence) alone and says so; one that fails at the directory
 * fsync after the rename puts the old file back, or removes the new one when
 * there was none.  Nothing is ever written where there was nothing to restore.
 */
static void check_replace_undo(struct fx *fx)
{
	struct route_state target = make_state(SIDE_TARGET, "0/3000000");
	struct route_state source = make_state(SIDE_SOURCE, "0/1000000"), got;
	bool found = true;
	char tmpdir[PATH_MAX];

	/* no file before, the write fails before the rename: still no file */
	UT_ASSERT(mkdir(fx->state, 0700) == 0);
	snprintf(tmpdir, sizeof(tmpdir), "%s/appdb.route.tmp", fx->state);
	UT_ASSERT(mkdir(tmpdir, 0700) == 0); /* the temporary file cannot be created */
	UT_ASSERT(!route_replace_sync(fx->state, "appdb", &target, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "the route file was not changed") != NULL);
	UT_ASSERT(strstr(fx->err, "check state_dir") == NULL);
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(!found);
	UT_ASSERT(rmdir(tmpdir) == 0);

	/* no file before, the directory fsync fails after the rename: the new file goes */
	route_fail_dir_fsync_for_tests(1);
	UT_ASSERT(!route_replace_sync(fx->state, "appdb", &target, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "put back as it was") != NULL);
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(!found);

	/* a file before: it comes back as it was */
	UT_ASSERT(route_store_sync(fx->state, "appdb", &source, NULL, fx->err, sizeof(fx->err)));
	route_fail_dir_fsync_for_tests(1);
	UT_ASSERT(!route_replace_sync(fx->state, "appdb", &target, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_SOURCE);
	UT_EQ_STR(got.source_lsn, "0/1000000");
	UT_EQ_STR(got.switched_at, source.switched_at);

	/* the undo fails too: the message says so and where to look */
	route_fail_dir_fsync_for_tests(2);
	UT_ASSERT(!route_replace_sync(fx->state, "appdb", &target, fx->err, sizeof(fx->err)));
	UT_ASSERT(strstr(fx->err, "could not be put back") != NULL);
	UT_ASSERT(strstr(fx->err, "check state_dir") != NULL);
	route_fail_dir_fsync_for_tests(0);

	/* and it works when nothing fails */
	UT_ASSERT(route_replace_sync(fx->state, "appdb", &target, fx->err, sizeof(fx->err)));
	UT_ASSERT(route_load(fx->state, "appdb", &got, &found, fx->err, sizeof(fx->err)));
	UT_ASSERT(found);
	UT_EQ_INT(got.side, SIDE_TARGET);
}

static void test_route_replace_undo(void)
{
	struct fx fx;

	fx_init(&fx);
	check_replace_undo(&fx);
	fx_done(&fx);
}

const struct unit_test unit_tests_route[] = {
	{"route_replace_undo", test_route_replace_undo},
	{"route_roundtrip", test_route_roundtrip},
	{"route_missing", test_route_missing},
	{"route_malformed", test_route_malformed},
	{"route_unreadable", test_route_unreadable},
	{"route_no_tmp_left", test_route_no_tmp_left},
	{"route_creates_dir", test_route_creates_dir},
	{"route_forget", test_route_forget},
	{"route_refuses", test_route_refuses},
	{"route_now", test_route_now},
	{"route_async_ok", test_route_async_ok},
	{"route_async_fail", test_route_async_fail},
	{"route_async_order", test_route_async_order},
	{"route_shutdown_pending", test_route_shutdown_pending},
	{"route_shutdown_idle", test_route_shutdown_idle},
	{NULL, NULL},
};

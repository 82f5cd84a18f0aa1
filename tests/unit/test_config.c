/*
 * test_config.c - the configuration loader and the auth_file reader.
 *
 * Each test writes its files into a fresh mkdtemp() directory and loads them
 * from there.  The checks live in a check_*() function and the test wraps it
 * between fx_init() and fx_done(), so that a failed assertion, which returns
 * from the check, still frees the config and removes the files.
 */
#include "unit.h"

#include "proxy/core/config.h"
#include "proxy/auth/secret.h"
#include "proxy/auth/userlist.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define FX_MAX_FILES 8

/* One test's temporary directory and what was loaded from it. */
struct fx {
	char dir[64];              /* the mkdtemp() directory, "" if it failed */
	char *files[FX_MAX_FILES]; /* absolute paths written, removed by fx_done() */
	size_t nfiles;
	struct config *cfg;        /* last config_load() result */
	struct config_errors errs; /* its errors */
	struct userlist *ul;       /* last userlist_load() result */
	char *ul_err;              /* its error */
	char *path;                /* path of the last file written */
};

static void fx_init(struct fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pgcutover-test-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		fx->dir[0] = '\0';
}

static void fx_done(struct fx *fx)
{
	config_free(fx->cfg);
	config_errors_free(&fx->errs);
	userlist_free(fx->ul);
	free(fx->ul_err);
	for (size_t i = 0; i < fx->nfiles; i++) {
		unlink(fx->files[i]);
		free(fx->files[i]);
	}
	if (fx->dir[0])
		rmdir(fx->dir);
}

/* Writes 'text' to DIR/name and returns its path (owned by fx), NULL on failure. */
static const char *fx_write(struct fx *fx, const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (fx->dir[0] == '\0' || fx->nfiles == FX_MAX_FILES)
		return NULL;
	if (asprintf(&path, "%s/%s", fx->dir, name) < 0)
		return NULL;
	for (size_t i = 0; i < fx->nfiles; i++) {
		if (strcmp(fx->files[i], path) == 0) {
			free(path);
			path = fx->files[i];
			goto write;
		}
	}
	fx->files[fx->nfiles++] = path;
write:
	fp = fopen(path, "w");
	if (fp == NULL)
		return NULL;
	fputs(text, fp);
	fclose(fp);
	fx->path = path;
	return path;
}

/* Writes DIR/pgcutover.ini and loads it; the result is fx->cfg and fx->errs. */
static struct config *fx_load(struct fx *fx, const char *text)
{
	const char *path = fx_write(fx, "pgcutover.ini", text);

	config_free(fx->cfg);
	config_errors_free(&fx->errs);
	fx->cfg = path ? config_load(path, &fx->errs) : NULL;
	return fx->cfg;
}

/* Writes DIR/userlist.txt and loads it; the result is fx->ul and fx->ul_err. */
static struct userlist *fx_userlist(struct fx *fx, const char *text)
{
	const char *path = fx_write(fx, "userlist.txt", text);

	userlist_free(fx->ul);
	free(fx->ul_err);
	fx->ul = NULL;
	fx->ul_err = NULL;
	if (path)
		fx->ul = userlist_load(path, &fx->ul_err);
	return fx->ul;
}

/*
 * True when some error is "PATH:LINE: ..." (LINE 0: "PATH: ...") and
 * contains 'needle'; otherwise prints every error, to explain the failure.
 */
static bool fx_has_error(const struct fx *fx, int line, const char *needle)
{
	char prefix[160];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", fx->path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", fx->path);
	for (size_t i = 0; i < fx->errs.count; i++) {
		const struct config_error *e = &fx->errs.items[i];

		if (e->line == line && strncmp(e->message, prefix, strlen(prefix)) == 0 &&
		    strstr(e->message, needle) != NULL)
			return true;
	}
	fprintf(stderr, "  no error at line %d containing \"%s\"; errors:\n", line, needle);
	for (size_t i = 0; i < fx->errs.count; i++)
		fprintf(stderr, "    %s\n", fx->errs.items[i].message);
	return false;
}

/* Prints the errors of a load that should have succeeded. */
static void fx_print_errors(const struct fx *fx)
{
	for (size_t i = 0; i < fx->errs.count; i++)
		fprintf(stderr, "    %s\n", fx->errs.items[i].message);
}

#define FX_LOAD_OK(fx, text)                                   \
	do {                                                   \
		if (fx_load((fx), (text)) == NULL) {           \
			fx_print_errors(fx);                   \
			UT_FAIL("configuration did not load"); \
		}                                              \
	} while (0)

#define FX_LOAD_FAILS(fx, text)                                              \
	do {                                                                 \
		if (fx_load((fx), (text)) != NULL)                           \
			UT_FAIL("configuration loaded but should not have"); \
	} while (0)

/* The smallest valid database section, appended to [pgcutover] snippets. */
#define MIN_DB                \
	"[database \"db\"]\n" \
	"source = host=s\n"   \
	"target = host=t\n"   \
	"lag_method = none\n"

/* The example of PRODUCT.md, verbatim, with one more database. */
static const char product_example[] =
	"[pgcutover]\n"
	"listen_addr = 127.0.0.1          ; comma list; * = all interfaces\n"
	"listen_port = 6432\n"
	"unix_socket_dir =                ; optional: also listen on DIR/.s.PGSQL.<listen_port>\n"
	"admin_addr = 127.0.0.1\n"
	"admin_port = 6433\n"
	"admin_users = admin              ; who may use the admin console\n"
	"auth_type = scram-sha-256        ; trust | md5 | scram-sha-256 (client-facing)\n"
	"auth_file = userlist.txt         ; PgBouncer format: \"user\" \"secret\" per line\n"
	"pool_mode = session              ; session | transaction\n"
	"max_client_conn = 10000\n"
	"default_pool_size = 20\n"
	"state_dir = ./state              ; durable route state, one file per database\n"
	"metrics_addr = 127.0.0.1         ; Prometheus text format at http://ADDR:PORT/metrics\n"
	"metrics_port = 9127              ; 0 = off\n"
	"\n"
	"; defaults for every database; each may be overridden in a database section\n"
	"control_user = pgcutover         ; login used for lag, sequence and check queries\n"
	"drain_timeout = 10s              ; how long a switch waits for open transactions\n"
	"lag_timeout = 30s                ; how long a switch waits for replication to catch up\n"
	"max_switch_lag = 64MB            ; refuse to start a switch when lag is larger\n"
	"lag_method = lsn                 ; lsn | marker | none\n"
	"sequence_sync = all              ; all | none | comma list of schema.sequence\n"
	"sequence_margin = 0              ; added to each source value when set on the target\n"
	"\n"
	"[database \"appdb\"]               ; the name clients put in dbname\n"
	"source = host=127.0.0.1 port=5432 dbname=app\n"
	"target = host=127.0.0.1 port=5433 dbname=app\n"
	"replication_slot = app_to_target ; lag_method=lsn: the slot on the source feeding the target\n"
	"\n"
	"[database \"other\"]\n"
	"source = host=a dbname=o\n"
	"target = host=b dbname=o\n"
	"lag_method = marker\n"
	"marker_table = ops.marker\n"
	"drain_timeout = 250ms\n"
	"max_switch_lag = 1GB\n"
	"pool_size = 5\n"
	"pool_mode = transaction\n"
	"sequence_sync = public.a_seq, app.b_seq\n"
	"sequence_margin = 1000\n"
	"control_user = ops\n"
	"user = svc\n"
	"password = pw;with;semicolons\n";

static void check_product_example(struct fx *fx)
{
	const struct config *c;
	const struct db_config *db;
	char expect[128];

	FX_LOAD_OK(fx, product_example);
	c = fx->cfg;
	UT_EQ_STR(c->path, fx->path);
	UT_EQ_STR(c->dir, fx->dir);
	UT_EQ_STR(c->listen_addr, "127.0.0.1");
	UT_EQ_INT(c->listen_port, 6432);
	UT_EQ_STR(c->unix_socket_dir, "");
	UT_EQ_INT(c->admin_port, 6433);
	UT_EQ_STR(c->admin_users, "admin");
	UT_EQ_INT(c->auth_type, AUTH_SCRAM);
	snprintf(expect, sizeof(expect), "%s/userlist.txt", fx->dir);
	UT_EQ_STR(c->auth_file, expect);
	snprintf(expect, sizeof(expect), "%s/state", fx->dir);
	UT_EQ_STR(c->state_dir, expect);
	UT_EQ_STR(c->log_file, "");
	UT_EQ_INT(c->pool_mode, POOL_SESSION);
	UT_EQ_INT(c->max_client_conn, 10000);
	UT_EQ_INT(c->default_pool_size, 20);
	UT_EQ_INT(c->metrics_port, 9127);
	/* Defaults of keys the example leaves out. */
	UT_EQ_INT(c->client_login_timeout_ms, 60000);
	UT_EQ_INT(c->server_connect_timeout_ms, 15000);
	UT_EQ_INT(c->shutdown_timeout_ms, 30000);
	UT_EQ_INT(c->server_idle_timeout_ms, 600000);
	UT_EQ_INT(c->max_packet_size, 1073741823);
	UT_EQ_INT(c->conn_buffer_size, 256 * 1024);
	UT_EQ_INT(c->server_login_retry_ms, 15000);
	UT_EQ_INT(c->client_message_timeout_ms, 60000);
	UT_EQ_INT(c->max_user_connections, 0);
	UT_EQ_INT(c->defaults.query_wait_timeout_ms, 120000);
	UT_EQ_INT(c->defaults.idle_transaction_timeout_ms, 0);
	UT_EQ_INT(c->defaults.max_db_connections, 0);
	UT_EQ_STR(c->defaults.marker_table, "pgcutover_marker");
	UT_EQ_STR(c->defaults.control_user, "pgcutover");
	UT_EQ_INT(c->defaults.drain_timeout_ms, 10000);
	UT_EQ_INT(c->defaults.lag_timeout_ms, 30000);
	UT_EQ_INT(c->defaults.max_switch_lag, 64 * 1024 * 1024);
	UT_EQ_INT(c->defaults.lag_method, LAG_LSN);
	UT_EQ_STR(c->defaults.sequence_sync, "all");
	UT_EQ_INT(c->defaults.pool_size, 20);

	UT_EQ_INT(c->ndbs, 2);
	db = config_find_db(c, "appdb");
	UT_ASSERT(db != NULL);
	UT_EQ_STR(db->name, "appdb");
	UT_EQ_INT(db->line, 26);
	UT_EQ_STR(db->source, "host=127.0.0.1 port=5432 dbname=app");
	UT_EQ_STR(db->target, "host=127.0.0.1 port=5433 dbname=app");
	UT_EQ_STR(db->replication_slot, "app_to_target");
	UT_ASSERT(db->user == NULL && db->password == NULL);
	/* Inherited from [pgcutover]. */
	UT_EQ_INT(db->d.pool_size, 20);
	UT_EQ_INT(db->d.pool_mode, POOL_SESSION);
	UT_EQ_INT(db->d.lag_method, LAG_LSN);
	UT_EQ_INT(db->d.drain_timeout_ms, 10000);
	UT_EQ_INT(db->d.lag_timeout_ms, 30000);
	UT_EQ_INT(db->d.max_switch_lag, 64 * 1024 * 1024);
	UT_EQ_STR(db->d.control_user, "pgcutover");
	UT_EQ_STR(db->d.sequence_sync, "all");
	UT_EQ_STR(db->d.marker_table, "pgcutover_marker");
	UT_ASSERT(db->d.control_user != c->defaults.control_user); /* a copy of its own */

	db = config_find_db(c, "other");
	UT_ASSERT(db != NULL);
	UT_EQ_INT(db->d.lag_method, LAG_MARKER);
	UT_ASSERT(db->replication_slot == NULL);
	UT_EQ_STR(db->d.marker_table, "ops.marker");
	UT_EQ_INT(db->d.drain_timeout_ms, 250);
	UT_EQ_INT(db->d.lag_timeout_ms, 30000);
	UT_EQ_INT(db->d.max_switch_lag, 1024LL * 1024 * 1024);
	UT_EQ_INT(db->d.pool_size, 5);
	UT_EQ_INT(db->d.pool_mode, POOL_TRANSACTION);
	UT_EQ_STR(db->d.sequence_sync, "public.a_seq,app.b_seq");
	UT_EQ_INT(db->d.sequence_margin, 1000);
	UT_EQ_STR(db->d.control_user, "ops");
	UT_EQ_STR(db->user, "svc");
	UT_EQ_STR(db->password, "pw;with;semicolons"); /* ';' starts a comment only after a blank */

	UT_ASSERT(config_find_db(c, "APPDB") == NULL); /* names are case-sensitive */
	UT_ASSERT(config_find_db(c, "nope") == NULL);
}

static void test_config_product_example(void)
{
	struct fx fx;

	fx_init(&fx);
	check_product_example(&fx);
	fx_done(&fx);
}

/* Databases inherit [pgcutover] values even when their section comes first. */
static void check_inherit_any_order(struct fx *fx)
{
	const struct db_config *db;

	FX_LOAD_OK(fx, "[database \"first\"]\n"
		       "source = host=s\n"
		       "target = host=t\n"
		       "replication_slot = s1\n"
		       "\n"
		       "[pgcutover]\n"
		       "default_pool_size = 7\n"
		       "pool_mode = transaction\n"
		       "drain_timeout = 2min\n"
		       "control_user = ctl\n"
		       "max_switch_lag = 512kB\n"
		       "sequence_sync = NONE\n"
		       "sequence_margin = 42\n"
		       "marker_table = m\n");
	db = config_find_db(fx->cfg, "first");
	UT_ASSERT(db != NULL);
	UT_EQ_INT(db->d.pool_size, 7);
	UT_EQ_INT(db->d.pool_mode, POOL_TRANSACTION);
	UT_EQ_INT(db->d.drain_timeout_ms, 120000);
	UT_EQ_STR(db->d.control_user, "ctl");
	UT_EQ_INT(db->d.max_switch_lag, 512 * 1024);
	UT_EQ_STR(db->d.sequence_sync, "none");
	UT_EQ_INT(db->d.sequence_margin, 42);
	UT_EQ_STR(db->d.marker_table, "m");
	UT_EQ_INT(fx->cfg->defaults.pool_size, 7);
	UT_EQ_INT(fx->cfg->defaults.pool_mode, POOL_TRANSACTION);
}

static void test_config_inherit_any_order(void)
{
	struct fx fx;

	fx_init(&fx);
	check_inherit_any_order(&fx);
	fx_done(&fx);
}

static void check_unknown_key(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "; comment\n"
			  "[pgcutover]\n"
			  "\n"
			  "listen_port = 7000\n"
			  "bogus_key = 1\n" MIN_DB);
	UT_EQ_INT(fx->errs.count, 1);
	UT_EQ_INT(fx->errs.items[0].line, 5);
	UT_ASSERT(fx_has_error(fx, 5, "unrecognized configuration parameter \"bogus_key\""));

	/* In a database section too, and keys that belong elsewhere. */
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "source = host=x\n" MIN_DB "listen_port = 1\n"
			  "default_pool_size = 3\n"
			  "nope = 1\n");
	UT_EQ_INT(fx->errs.count, 4);
	UT_ASSERT(fx_has_error(fx, 2, "parameter \"source\" can only be set in a [database"));
	UT_ASSERT(fx_has_error(fx, 7, "parameter \"listen_port\" cannot be set in a [database"));
	UT_ASSERT(fx_has_error(fx, 8, "use pool_size"));
	UT_ASSERT(fx_has_error(fx, 9, "unrecognized configuration parameter \"nope\""));
}

static void test_config_unknown_key(void)
{
	struct fx fx;

	fx_init(&fx);
	check_unknown_key(&fx);
	fx_done(&fx);
}

static void check_bad_values(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "drain_timeout = 10x\n"             /* 2 */
			  "max_switch_lag = 64 mb\n"          /* 3 */
			  "pool_mode = statement\n"           /* 4 */
			  "listen_port = 70000\n"             /* 5 */
			  "admin_port = 0\n"                  /* 6 */
			  "metrics_port = -1\n"               /* 7 */
			  "auth_type = password\n"            /* 8 */
			  "lag_method = wal\n"                /* 9 */
			  "max_client_conn = 0\n"             /* 10 */
			  "default_pool_size = 1.5\n"         /* 11 */
			  "lag_timeout = 0\n"                 /* 12 */
			  "max_packet_size = 2GB\n"           /* 13 */
			  "conn_buffer_size = 100\n"          /* 14 */
			  "client_login_timeout = 3000000s\n" /* 15 */
			  "sequence_sync = public.a, b\n"     /* 16 */
			  "marker_table = \"quoted\"\n"       /* 17 */
			  "control_user =\n"                  /* 18 */
			  "listen_addr = 127.0.0.1,,::1\n"    /* 19 */
			  "sequence_margin = -5\n"            /* 20 */
			  "[database \"db\"]\n"               /* 21 */
			  "source = host=s\n"
			  "target = host=t\n"
			  "replication_slot = Bad-Slot\n" /* 24 */
			  "pool_size = 0\n");             /* 25 */
	UT_ASSERT(fx_has_error(fx, 2,
			       "invalid value for parameter \"drain_timeout\": \"10x\" "
			       "(expected a duration"));
	UT_ASSERT(fx_has_error(fx, 3, "\"max_switch_lag\": \"64 mb\" (expected a size"));
	UT_ASSERT(fx_has_error(fx, 4,
			       "\"pool_mode\": \"statement\" (expected session or transaction)"));
	UT_ASSERT(fx_has_error(fx, 5,
			       "\"listen_port\": \"70000\" (expected a port number between 1 "
			       "and 65535)"));
	UT_ASSERT(fx_has_error(fx, 6, "\"admin_port\": \"0\""));
	UT_ASSERT(fx_has_error(fx, 7, "between 0 and 65535 (0 = off)"));
	UT_ASSERT(fx_has_error(fx, 8, "expected trust, md5 or scram-sha-256"));
	UT_ASSERT(fx_has_error(fx, 9, "expected lsn, marker or none"));
	UT_ASSERT(fx_has_error(fx, 10, "\"max_client_conn\": \"0\" (expected an integer between 1"));
	UT_ASSERT(fx_has_error(fx, 11, "\"default_pool_size\": \"1.5\""));
	UT_ASSERT(fx_has_error(fx, 12, "\"lag_timeout\": \"0\" (must be between 1ms and"));
	UT_ASSERT(
		fx_has_error(fx, 13, "\"max_packet_size\": \"2GB\" (must be between 1kB and 1GB)"));
	UT_ASSERT(fx_has_error(fx, 14, "\"conn_buffer_size\": \"100\""));
	UT_ASSERT(fx_has_error(fx, 15, "\"client_login_timeout\""));
	UT_ASSERT(fx_has_error(fx, 16, "comma list of schema.sequence"));
	UT_ASSERT(fx_has_error(fx, 17, "\"marker_table\""));
	UT_ASSERT(fx_has_error(fx, 18, "\"control_user\": \"\" (must not be empty)"));
	UT_ASSERT(fx_has_error(fx, 19, "no empty item"));
	UT_ASSERT(fx_has_error(fx, 20, "\"sequence_margin\": \"-5\""));
	UT_ASSERT(fx_has_error(fx, 24, "\"replication_slot\": \"Bad-Slot\""));
	UT_ASSERT(fx_has_error(fx, 25, "\"pool_size\": \"0\""));
	/* Every one reported, and nothing more (no "no replication_slot" echo). */
	UT_EQ_INT(fx->errs.count, 21);
}

static void test_config_bad_values(void)
{
	struct fx fx;

	fx_init(&fx);
	check_bad_values(&fx);
	fx_done(&fx);
}

static void check_structure_errors(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "orphan = 1\n"                   /* 1 */
			  "[pgcutover]\n"                  /* 2 */
			  "listen_port = 6500\n"           /* 3 */
			  "listen_port = 6501\n"           /* 4 */
			  "this line has no equals sign\n" /* 5 */
			  "[databases]\n"                  /* 6 */
			  "foo = bar\n"                    /* 7: ignored with its section */
			  "[database \"a\"]\n"             /* 8 */
			  "source = host=s\n"              /* 9 */
			  "lag_method = none\n"            /* 10 */
			  "[database \"a\"]\n"             /* 11 */
			  "target = host=t\n"              /* 12: ignored */
			  "[database \"\"]\n"              /* 13 */
			  "[database noquote]\n"           /* 14 */
			  "[database \"x/y\"]\n"           /* 15 */
			  "[pgcutover\n"                   /* 16 */
			  "[pgcutover]\n"                  /* 17 */
			  "[database \"b\"] trailing\n"    /* 18 */
			  "= value\n"                      /* 19 */
			  "[database \"lsn\"]\n"           /* 20 */
			  "source = host=s\n"
			  "target = host=t\n");
	UT_ASSERT(fx_has_error(fx, 1, "parameter \"orphan\" appears before any section header"));
	UT_ASSERT(fx_has_error(fx, 4,
			       "parameter \"listen_port\" is set more than once in this "
			       "section (first at line 3)"));
	UT_ASSERT(fx_has_error(fx, 5, "syntax error"));
	UT_ASSERT(fx_has_error(fx, 6, "unrecognized section [databases]"));
	UT_ASSERT(fx_has_error(fx, 8, "database \"a\" has no target"));
	UT_ASSERT(fx_has_error(fx, 11, "duplicate database \"a\" (first defined at line 8)"));
	UT_ASSERT(fx_has_error(fx, 13, "database name must not be empty"));
	UT_ASSERT(fx_has_error(fx, 14, "must be quoted"));
	UT_ASSERT(fx_has_error(fx, 15, "must not contain \"/\""));
	UT_ASSERT(fx_has_error(fx, 16, "missing \"]\""));
	UT_ASSERT(fx_has_error(fx, 17, "duplicate section [pgcutover] (first at line 2)"));
	UT_ASSERT(fx_has_error(fx, 18, "unexpected text after section header"));
	UT_ASSERT(fx_has_error(fx, 19, "missing parameter name"));
	UT_ASSERT(fx_has_error(fx, 20,
			       "database \"lsn\" uses lag_method lsn but sets no "
			       "replication_slot"));
	UT_EQ_INT(fx->errs.count, 14);
	/* In line order, although some are found only after the whole file is read. */
	for (size_t i = 1; i < fx->errs.count; i++)
		UT_ASSERT(fx->errs.items[i - 1].line <= fx->errs.items[i].line);
}

static void test_config_structure_errors(void)
{
	struct fx fx;

	fx_init(&fx);
	check_structure_errors(&fx);
	fx_done(&fx);
}

static void check_missing_source(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "\n"
			  "[database \"appdb\"]  ; comment\n"
			  "target = host=t\n"
			  "lag_method = none\n");
	UT_EQ_INT(fx->errs.count, 1);
	UT_ASSERT(fx_has_error(fx, 3, "database \"appdb\" has no source"));

	/* No database at all. */
	FX_LOAD_FAILS(fx, "[pgcutover]\n");
	UT_EQ_INT(fx->errs.count, 1);
	UT_ASSERT(fx_has_error(fx, 0, "no database is configured"));
}

static void test_config_missing_source(void)
{
	struct fx fx;

	fx_init(&fx);
	check_missing_source(&fx);
	fx_done(&fx);
}

static void check_ports_must_differ(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "listen_port = 7000\n"
			  "admin_port = 7000\n"
			  "metrics_port = 7000\n" MIN_DB);
	UT_EQ_INT(fx->errs.count, 2);
	UT_ASSERT(fx_has_error(fx, 3, "admin_port and listen_port must differ"));
	UT_ASSERT(fx_has_error(fx, 4, "metrics_port must differ"));

	FX_LOAD_OK(fx, "[pgcutover]\nmetrics_port = 0\n" MIN_DB);
	UT_EQ_INT(fx->cfg->metrics_port, 0);
}

static void test_config_ports_must_differ(void)
{
	struct fx fx;

	fx_init(&fx);
	check_ports_must_differ(&fx);
	fx_done(&fx);
}

static void check_missing_file(struct fx *fx)
{
	char path[128];
	struct config *c;

	snprintf(path, sizeof(path), "%s/does-not-exist.ini", fx->dir);
	c = config_load(path, &fx->errs);
	UT_ASSERT(c == NULL);
	UT_EQ_INT(fx->errs.count, 1);
	UT_EQ_INT(fx->errs.items[0].line, 0);
	UT_ASSERT(strstr(fx->errs.items[0].message, path) == fx->errs.items[0].message);
	UT_ASSERT(strstr(fx->errs.items[0].message, "could not open configuration file: No such "
						    "file or directory") != NULL);
	config_errors_free(&fx->errs);

	/* A directory opens but cannot be read. */
	c = config_load(fx->dir, &fx->errs);
	UT_ASSERT(c == NULL);
	UT_EQ_INT(fx->errs.count, 1);
	UT_ASSERT(strstr(fx->errs.items[0].message, "could not read configuration file") != NULL);
}

static void test_config_missing_file(void)
{
	struct fx fx;

	fx_init(&fx);
	check_missing_file(&fx);
	fx_done(&fx);
}

static void check_paths(struct fx *fx)
{
	char expect[160], *cwd;
	struct config *c;

	FX_LOAD_OK(fx, "[pgcutover]\n"
		       "auth_file = ./conf/users.txt\n"
		       "state_dir = /var/lib/pgcutover\n"
		       "log_file = logs/pgcutover.log\n"
		       "unix_socket_dir = .\n" MIN_DB);
	snprintf(expect, sizeof(expect), "%s/conf/users.txt", fx->dir);
	UT_EQ_STR(fx->cfg->auth_file, expect);
	UT_EQ_STR(fx->cfg->state_dir, "/var/lib/pgcutover");
	snprintf(expect, sizeof(expect), "%s/logs/pgcutover.log", fx->dir);
	UT_EQ_STR(fx->cfg->log_file, expect);
	UT_EQ_STR(fx->cfg->unix_socket_dir, fx->dir);

	/* A relative config path: paths become absolute all the same. */
	cwd = getcwd(NULL, 0);
	UT_ASSERT(cwd != NULL);
	if (chdir(fx->dir) != 0) {
		free(cwd);
		UT_FAIL("chdir");
	}
	c = config_load("./pgcutover.ini", &fx->errs);
	if (chdir(cwd) != 0) {
		config_free(c);
		free(cwd);
		UT_FAIL("chdir back");
	}
	free(cwd);
	UT_ASSERT(c != NULL);
	snprintf(expect, sizeof(expect), "%s/pgcutover.ini", fx->dir);
	if (strcmp(c->path, expect) != 0 || strcmp(c->dir, fx->dir) != 0) {
		config_free(c);
		UT_FAIL("path %s, expected %s", expect, expect);
	}
	snprintf(expect, sizeof(expect), "%s/conf/users.txt", fx->dir);
	if (strcmp(c->auth_file, expect) != 0) {
		config_free(c);
		UT_FAIL("auth_file not resolved against the config's directory");
	}
	config_free(c);
}

static void test_config_paths(void)
{
	struct fx fx;

	fx_init(&fx);
	check_paths(&fx);
	fx_done(&fx);
}

/* What inih alone would get wrong: indentation, long lines, long names. */
static void check_syntax_details(struct fx *fx)
{
	char text[2048], longval[600], longname[80];
	const struct db_config *db;

	memset(longval, 'x', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	memcpy(longval, "host=", 5);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[63] = '\0';
	snprintf(text, sizeof(text),
		 "\xEF\xBB\xBF[pgcutover]\r\n"
		 "  listen_port = 7001\r\n"
		 "\tadmin_port=7002   ; tab-indented, no blanks around '='\n"
		 "metrics_port : 0\n"
		 "   # an indented comment\n"
		 "Admin_Users = alice , bob,carol\n"
		 "[ database  \"%s\" ]\n"
		 "source = %s ; a comment after a long value\n"
		 "target = host=t\n"
		 "lag_method = none\n"
		 "user =\n"
		 "password =\n"
		 "[database \"we\"\"ird ]\"]\n"
		 "source = s\n"
		 "target = t\n"
		 "replication_slot = slot_1\n",
		 longname, longval);
	FX_LOAD_OK(fx, text);
	UT_EQ_INT(fx->cfg->listen_port, 7001);
	UT_EQ_INT(fx->cfg->admin_port, 7002);
	UT_EQ_INT(fx->cfg->metrics_port, 0);
	UT_EQ_STR(fx->cfg->admin_users, "alice,bob,carol");
	db = config_find_db(fx->cfg, longname);
	UT_ASSERT(db != NULL);
	UT_EQ_STR(db->source, longval);
	UT_ASSERT(db->user == NULL);
	UT_EQ_STR(db->password, "");
	db = config_find_db(fx->cfg, "we\"ird ]");
	UT_ASSERT(db != NULL);
	UT_EQ_STR(db->replication_slot, "slot_1");

	/* A name of 64 bytes is too long for PostgreSQL. */
	longname[63] = 'n';
	longname[64] = '\0';
	snprintf(text, sizeof(text), "[database \"%s\"]\nsource=s\ntarget=t\nlag_method=none\n",
		 longname);
	FX_LOAD_FAILS(fx, text);
	UT_ASSERT(fx_has_error(fx, 1, "is too long (at most 63 bytes)"));

	/* A long line with an error still names its line. */
	snprintf(text, sizeof(text), "[pgcutover]\n\nmarker_table = %s\n" MIN_DB, longval);
	FX_LOAD_FAILS(fx, text);
	UT_EQ_INT(fx->errs.count, 1);
	UT_ASSERT(fx_has_error(fx, 3, "invalid value for parameter \"marker_table\""));
}

static void test_config_syntax_details(void)
{
	struct fx fx;

	fx_init(&fx);
	check_syntax_details(&fx);
	fx_done(&fx);
}

/*
 * Found by fuzzing (tests/fuzz/fuzz_config/regressions/double-bom-section):
 * inih strips a byte order mark from line 1 itself, so a second one (or one
 * after blanks) used to reach inih at the start of the line; inih stripped
 * it and took "[x = y]" for a section header, which it skips without a
 * word, while a long line of the same text was reported.  Now it is an
 * error whatever follows.
 */
static void check_second_bom(struct fx *fx)
{
	FX_LOAD_FAILS(fx, "\xEF\xBB\xBF\xEF\xBB\xBF[x = y]\n[pgcutover]\n" MIN_DB);
	UT_EQ_INT(fx->errs.count, 1);
	UT_ASSERT(fx_has_error(fx, 1, "unexpected byte order mark"));
	FX_LOAD_FAILS(fx, "\xEF\xBB\xBF  \xEF\xBB\xBF; listen_port = 1\n[pgcutover]\n" MIN_DB);
	UT_ASSERT(fx_has_error(fx, 1, "unexpected byte order mark"));
	FX_LOAD_FAILS(fx, " \xEF\xBB\xBF[pgcutover]\n" MIN_DB);
	UT_ASSERT(fx_has_error(fx, 1, "unexpected byte order mark"));
	/* one mark, and a mark on a later line, are what they were */
	FX_LOAD_OK(fx, "\xEF\xBB\xBF[pgcutover]\n" MIN_DB);
	FX_LOAD_FAILS(fx, "[pgcutover]\n\xEF\xBB\xBFlisten_port = 1\n" MIN_DB);
	UT_ASSERT(fx_has_error(fx, 2, "unrecognized configuration parameter"));
}

static void test_config_second_bom(void)
{
	struct fx fx;

	fx_init(&fx);
	check_second_bom(&fx);
	fx_done(&fx);
}

static void test_config_parse_duration(void)
{
	static const struct {
		const char *in;
		bool ok;
		int64_t ms;
	} cases[] = {
		{"10s", true, 10000},
		{"250ms", true, 250},
		{"2min", true, 120000},
		{"1h", true, 3600000},
		{"15", true, 15000},
		{"0", true, 0},
		{"10 s", true, 10000},
		{" 7ms ", true, 7},
		{"0ms", true, 0},
		{"", false, 0},
		{"s", false, 0},
		{"-1s", false, 0},
		{"+1s", false, 0},
		{"1.5s", false, 0},
		{"10x", false, 0},
		{"10S", false, 0},
		{"10sec", false, 0},
		{"10m", false, 0},
		{"10s5", false, 0},
		{"1 0s", false, 0},
		{"0x10", false, 0},
		{"9223372036854775807ms", true, INT64_MAX},
		{"9223372036854775808ms", false, 0},
		{"9223372036854775s", true, 9223372036854775000LL},
		{"9223372036854776s", false, 0},
		{"2562047788015215h", false, 0},
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		if (config_parse_duration(cases[i].in, &v) != cases[i].ok)
			UT_FAIL("config_parse_duration(\"%s\") should %s", cases[i].in,
				cases[i].ok ? "succeed" : "fail");
		if (cases[i].ok && v != cases[i].ms)
			UT_FAIL("config_parse_duration(\"%s\") = %lld", cases[i].in, (long long)v);
	}
	UT_ASSERT(!config_parse_duration(NULL, &v));
}

static void test_config_parse_size(void)
{
	static const struct {
		const char *in;
		bool ok;
		int64_t bytes;
	} cases[] = {
		{"64MB", true, 64LL << 20}, {"512kB", true, 512 << 10},
		{"1GB", true, 1LL << 30},   {"100", true, 100},
		{"100B", true, 100},        {"0", true, 0},
		{"8 kB", true, 8192},       {"", false, 0},
		{"kB", false, 0},           {"-1kB", false, 0},
		{"1.5GB", false, 0},        {"64mb", false, 0},
		{"64KB", false, 0},         {"1TB", false, 0},
		{"1 GB x", false, 0},       {"8589934591GB", true, 8589934591LL << 30},
		{"8589934592GB", false, 0}, {"99999999999999999999", false, 0},
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		if (config_parse_size(cases[i].in, &v) != cases[i].ok)
			UT_FAIL("config_parse_size(\"%s\") should %s", cases[i].in,
				cases[i].ok ? "succeed" : "fail");
		if (cases[i].ok && v != cases[i].bytes)
			UT_FAIL("config_parse_size(\"%s\") = %lld", cases[i].in, (long long)v);
	}
}

static void check_is_admin(struct fx *fx)
{
	FX_LOAD_OK(fx, "[pgcutover]\nadmin_users = admin, ops ,\tDBA\n" MIN_DB);
	UT_ASSERT(config_is_admin(fx->cfg, "admin"));
	UT_ASSERT(config_is_admin(fx->cfg, "ops"));
	UT_ASSERT(config_is_admin(fx->cfg, "DBA"));
	UT_ASSERT(!config_is_admin(fx->cfg, "dba"));
	UT_ASSERT(!config_is_admin(fx->cfg, "adm"));
	UT_ASSERT(!config_is_admin(fx->cfg, "admin, ops"));
	UT_ASSERT(!config_is_admin(fx->cfg, ""));

	FX_LOAD_OK(fx, "[pgcutover]\n" MIN_DB);
	UT_ASSERT(config_is_admin(fx->cfg, "admin"));
	UT_ASSERT(!config_is_admin(fx->cfg, "app"));
}

static void test_config_is_admin(void)
{
	struct fx fx;

	fx_init(&fx);
	check_is_admin(&fx);
	fx_done(&fx);
}

/* The limits and timeouts: units, 0 = off, per-database overrides, bad values by line. */
static void check_limits(struct fx *fx)
{
	const struct db_config *db;

	FX_LOAD_OK(fx, "[pgcutover]\n"
		       "server_login_retry = 250ms\n"
		       "client_message_timeout = 0\n"
		       "max_user_connections = 40\n"
		       "query_wait_timeout = 2min\n"
		       "idle_transaction_timeout = 30s\n"
		       "max_db_connections = 50\n"
		       "[database \"a\"]\n"
		       "source = host=s\n"
		       "target = host=t\n"
		       "lag_method = none\n"
		       "query_wait_timeout = 0\n"
		       "idle_transaction_timeout = 1500ms\n"
		       "max_db_connections = 5\n"
		       "[database \"b\"]\n"
		       "source = host=s\n"
		       "target = host=t\n"
		       "lag_method = none\n");
	UT_EQ_INT(fx->cfg->server_login_retry_ms, 250);
	UT_EQ_INT(fx->cfg->client_message_timeout_ms, 0);
	UT_EQ_INT(fx->cfg->max_user_connections, 40);
	db = config_find_db(fx->cfg, "a");
	UT_ASSERT(db != NULL);
	UT_EQ_INT(db->d.query_wait_timeout_ms, 0);
	UT_EQ_INT(db->d.idle_transaction_timeout_ms, 1500);
	UT_EQ_INT(db->d.max_db_connections, 5);
	db = config_find_db(fx->cfg, "b");
	UT_ASSERT(db != NULL);
	UT_EQ_INT(db->d.query_wait_timeout_ms, 120000);
	UT_EQ_INT(db->d.idle_transaction_timeout_ms, 30000);
	UT_EQ_INT(db->d.max_db_connections, 50);

	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "server_login_retry = 0\n"         /* 2 */
			  "client_message_timeout = 5 min\n" /* 3: fine */
			  "max_user_connections = -1\n"      /* 4 */
			  "query_wait_timeout = 10 years\n"  /* 5 */
			  "idle_transaction_timeout = 25d\n" /* 6 */
			  "max_db_connections = lots\n"      /* 7 */
			  "[database \"db\"]\n"
			  "source = host=s\n"
			  "target = host=t\n"
			  "lag_method = none\n"
			  "server_login_retry = 1s\n"         /* 12 */
			  "max_user_connections = 3\n"        /* 13 */
			  "query_wait_timeout = 3000000s\n"); /* 14 */
	UT_ASSERT(fx_has_error(fx, 2, "\"server_login_retry\": \"0\" (must be between 100ms and"));
	UT_ASSERT(fx_has_error(fx, 4,
			       "\"max_user_connections\": \"-1\" (expected an integer "
			       "between 0 and"));
	UT_ASSERT(fx_has_error(fx, 5, "\"query_wait_timeout\": \"10 years\" (expected a duration"));
	UT_ASSERT(fx_has_error(fx, 6, "\"idle_transaction_timeout\""));
	UT_ASSERT(fx_has_error(fx, 7, "\"max_db_connections\": \"lots\""));
	UT_ASSERT(fx_has_error(fx, 12,
			       "parameter \"server_login_retry\" cannot be set in a [database"));
	UT_ASSERT(fx_has_error(fx, 13, "parameter \"max_user_connections\" cannot be set in a"));
	UT_ASSERT(fx_has_error(fx, 14, "\"query_wait_timeout\": \"3000000s\" (must be between 0"));
	UT_EQ_INT(fx->errs.count, 8);
}

static void test_config_limits(void)
{
	struct fx fx;

	fx_init(&fx);
	check_limits(&fx);
	fx_done(&fx);
}

/* Collects config_dump() output as "key=value\n" lines. */
struct dump_buf {
	char text[4096]; /* every line emitted so far */
	int keys;        /* how many */
};

static void dump_emit(void *arg, const char *key, const char *value)
{
	struct dump_buf *b = arg;
	size_t len = strlen(b->text);

	snprintf(b->text + len, sizeof(b->text) - len, "%s=%s\n", key, value);
	b->keys++;
}

static void check_dump(struct fx *fx)
{
	struct dump_buf b;
	char expect[160];

	FX_LOAD_OK(fx, "[pgcutover]\n"
		       "drain_timeout = 250ms\n"
		       "lag_timeout = 90s\n"
		       "server_idle_timeout = 0\n"
		       "max_switch_lag = 1536kB\n"
		       "conn_buffer_size = 1025\n"
		       "lag_method = marker\n"
		       "pool_mode = Transaction\n" MIN_DB);
	memset(&b, 0, sizeof(b));
	config_dump(fx->cfg, dump_emit, &b);
	UT_EQ_INT(b.keys, 48);
	UT_ASSERT(strncmp(b.text, "listen_addr=127.0.0.1\nlisten_port=6432\n", 39) == 0);
	UT_ASSERT(strstr(b.text, "\nunix_socket_dir=\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nauth_type=scram-sha-256\n") != NULL);
	snprintf(expect, sizeof(expect), "\nauth_file=%s/userlist.txt\n", fx->dir);
	UT_ASSERT(strstr(b.text, expect) != NULL);
	UT_ASSERT(strstr(b.text, "\npool_mode=transaction\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nclient_login_timeout=1min\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nserver_connect_timeout=15s\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nserver_idle_timeout=0\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nmax_packet_size=1073741823\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nconn_buffer_size=1025\n") != NULL);
	UT_ASSERT(strstr(b.text, "\ndrain_timeout=250ms\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nlag_timeout=90s\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nmax_switch_lag=1536kB\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nlag_method=marker\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nsequence_margin=0\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nmarker_table=pgcutover_marker\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nclient_tls_sslmode=disable\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nclient_tls_protocols=tlsv1.2,tlsv1.3\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nclient_tls_ciphers=HIGH:!aNULL\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nserver_tls_sslmode=prefer\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nserver_tls_ca_file=\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nserver_login_retry=15s\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nclient_message_timeout=1min\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nmax_user_connections=0\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nquery_wait_timeout=2min\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nidle_transaction_timeout=0\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nmax_db_connections=0\n") != NULL);
	UT_ASSERT(strstr(b.text, "source=") == NULL); /* database keys are not [pgcutover]'s */
	UT_EQ_STR(config_pool_mode_name(POOL_SESSION), "session");
	UT_EQ_STR(config_auth_type_name(AUTH_MD5), "md5");
	UT_EQ_STR(config_lag_method_name(LAG_NONE), "none");
}

static void test_config_dump(void)
{
	struct fx fx;

	fx_init(&fx);
	check_dump(&fx);
	fx_done(&fx);
}

/* The example shipped in conf/ loads as it is (when run from the repository root). */
static void check_shipped_example(void)
{
	struct config_errors errs = {NULL, 0};
	struct config *c;
	struct userlist *ul;
	char *err = NULL;

	if (access("conf/pgcutover.ini", R_OK) != 0)
		return;
	c = config_load("conf/pgcutover.ini", &errs);
	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "    %s\n", errs.items[i].message);
	config_errors_free(&errs);
	UT_ASSERT(c != NULL);
	ul = userlist_load(c->auth_file, &err);
	if (ul == NULL) {
		fprintf(stderr, "    %s\n", err ? err : "(null)");
		free(err);
		config_free(c);
		UT_FAIL("conf/userlist.txt does not load");
	}
	if (config_find_db(c, "appdb") == NULL || userlist_secret(ul, "admin") == NULL ||
	    !config_is_admin(c, "admin")) {
		userlist_free(ul);
		config_free(c);
		UT_FAIL("conf/ example is inconsistent");
	}
	userlist_free(ul);
	config_free(c);
}

static void test_config_shipped_example(void)
{
	check_shipped_example();
}

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

/* config_load_keep: a config with errors comes back for later checks; key lines recorded. */
static void test_config_load_keep(void)
{
	struct fx fx;
	struct config *keep;
	const char *path;

	fx_init(&fx);
	path = fx_write(&fx, "pgcutover.ini",
			"[pgcutover]\n"                    /* 1 */
			"auth_file = users.txt\n"          /* 2 */
			"bogus = 1\n"                      /* 3 */
			"[database \"a\"]\n"               /* 4 */
			"lag_method = none\n"              /* 5: lsn needs a slot */
			"target = host=127.0.0.1 port=2\n" /* 6 */
			"source = host=127.0.0.1 port=1\n" /* 7 */
			"[database \"b\"]\n"               /* 8 */
			"lag_method = none\n"              /* 9 */
			"source = host=x\n"                /* 10 */
			"target = host=y\n");              /* 11 */
	UT_ASSERT(path != NULL);
	keep = config_load_keep(path, &fx.errs);
	UT_ASSERT(keep != NULL);
	UT_EQ_INT(fx.errs.count, 1);
	UT_ASSERT(fx_has_error(&fx, 3, "bogus"));
	UT_EQ_INT(keep->auth_file_line, 2);
	UT_EQ_INT(keep->ndbs, 2);
	UT_EQ_INT(keep->dbs[0].source_line, 7);
	UT_EQ_INT(keep->dbs[0].target_line, 6);
	UT_EQ_INT(keep->dbs[1].source_line, 10);
	UT_EQ_INT(keep->dbs[1].target_line, 11);
	/* errors added later are sorted in with the file's own */
	UT_ASSERT(config_errors_add(&fx.errs, path, 0, "tied to no line"));
	UT_ASSERT(config_errors_add(&fx.errs, path, 6, "conninfo of a"));
	UT_ASSERT(config_errors_add(&fx.errs, path, 2, "auth_file"));
	config_errors_sort(&fx.errs, 0);
	UT_EQ_INT(fx.errs.count, 4);
	UT_EQ_INT(fx.errs.items[0].line, 2);
	UT_EQ_INT(fx.errs.items[1].line, 3);
	UT_EQ_INT(fx.errs.items[2].line, 6);
	UT_EQ_INT(fx.errs.items[3].line, 0);
	config_free(keep);
	config_errors_free(&fx.errs);
	/* config_load itself still refuses it */
	UT_ASSERT(config_load(path, &fx.errs) == NULL);
	UT_EQ_INT(fx.errs.count, 1);
	fx_done(&fx);
}

/* The TLS keys: values, combinations, unreadable files (each error names its line). */
static void check_tls_keys(struct fx *fx)
{
	unsigned mask = 0;

	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "client_tls_sslmode = verify-everything\n"  /* 2 */
			  "server_tls_sslmode = allow\n"              /* 3 */
			  "client_tls_protocols = tlsv1.2, sslv3\n"   /* 4 */
			  "server_tls_protocols = \n"                 /* 5 */
			  "client_tls_ciphers =\n"                    /* 6 */
			  "server_tls_cert_file = nowhere/cert.pem\n" /* 7 */
		      MIN_DB);
	UT_ASSERT(fx_has_error(fx, 2,
			       "\"client_tls_sslmode\": \"verify-everything\" (expected "
			       "disable, allow, prefer, require, verify-ca or verify-full)"));
	UT_ASSERT(
		fx_has_error(fx, 3, "\"server_tls_sslmode\": \"allow\" (expected disable, prefer"));
	UT_ASSERT(fx_has_error(fx, 4, "\"client_tls_protocols\": \"tlsv1.2, sslv3\""));
	UT_ASSERT(fx_has_error(fx, 5, "\"server_tls_protocols\""));
	UT_ASSERT(fx_has_error(fx, 6, "\"client_tls_ciphers\": \"\" (must not be empty)"));
	UT_ASSERT(fx_has_error(fx, 7,
			       "server_tls_cert_file and server_tls_key_file must be set together"));
	UT_ASSERT(fx_has_error(fx, 7, "could not read server_tls_cert_file \""));
	UT_ASSERT(fx_has_error(fx, 7, "/nowhere/cert.pem\": No such file or directory"));

	/* a mode that needs files without them */
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "client_tls_sslmode = verify-full\n" /* 2 */
		      MIN_DB);
	UT_ASSERT(fx_has_error(fx, 2,
			       "client_tls_sslmode verify-full needs client_tls_cert_file and "
			       "client_tls_key_file"));
	UT_ASSERT(fx_has_error(fx, 2, "needs client_tls_ca_file"));

	/* readable files, relative to the config's directory; lists normalised */
	UT_ASSERT(fx_write(fx, "c.pem", "x\n") != NULL);
	UT_ASSERT(fx_write(fx, "k.pem", "x\n") != NULL);
	FX_LOAD_OK(fx, "[pgcutover]\n"
		       "client_tls_sslmode = REQUIRE\n"
		       "client_tls_cert_file = c.pem\n"
		       "client_tls_key_file = ./k.pem\n"
		       "client_tls_protocols = TLSv1.3\n"
		       "server_tls_sslmode = verify-full\n"
		       "server_tls_protocols = all\n" MIN_DB);
	UT_EQ_INT(fx->cfg->client_tls_sslmode, SSLMODE_REQUIRE);
	UT_EQ_INT(fx->cfg->server_tls_sslmode, SSLMODE_VERIFY_FULL);
	UT_EQ_STR(fx->cfg->client_tls_protocols, "tlsv1.3");
	UT_EQ_STR(fx->cfg->server_tls_protocols, "tlsv1.0,tlsv1.1,tlsv1.2,tlsv1.3");
	UT_ASSERT(strstr(fx->cfg->client_tls_key_file, "/k.pem") != NULL &&
		  fx->cfg->client_tls_key_file[0] == '/');

	UT_ASSERT(tls_parse_protocols("secure", &mask));
	UT_EQ_INT(mask, TLS_PROTO_V1_2 | TLS_PROTO_V1_3);
	UT_ASSERT(tls_parse_protocols(" tlsv1 , tlsv1.2", &mask));
	UT_EQ_INT(mask, TLS_PROTO_V1_0 | TLS_PROTO_V1_2);
	UT_ASSERT(!tls_parse_protocols("tlsv1.2,", &mask));
	UT_ASSERT(!tls_parse_protocols("", &mask));
}

static void test_config_tls_keys(void)
{
	struct fx fx;

	fx_init(&fx);
	check_tls_keys(&fx);
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

const struct unit_test unit_tests_config[] = {
	{"config_userlist_scram_cached", test_userlist_scram_cached},
	{"config_tls_keys", test_config_tls_keys},
	{"config_product_example", test_config_product_example},
	{"config_inherit_any_order", test_config_inherit_any_order},
	{"config_unknown_key", test_config_unknown_key},
	{"config_bad_values", test_config_bad_values},
	{"config_structure_errors", test_config_structure_errors},
	{"config_missing_source", test_config_missing_source},
	{"config_ports_must_differ", test_config_ports_must_differ},
	{"config_missing_file", test_config_missing_file},
	{"config_paths", test_config_paths},
	{"config_syntax_details", test_config_syntax_details},
	{"config_second_bom", test_config_second_bom},
	{"config_parse_duration", test_config_parse_duration},
	{"config_parse_size", test_config_parse_size},
	{"config_is_admin", test_config_is_admin},
	{"config_load_keep", test_config_load_keep},
	{"config_dump", test_config_dump},
	{"config_limits", test_config_limits},
	{"config_shipped_example", test_config_shipped_example},
	{"userlist_parse", test_userlist_parse},
	{"userlist_errors", test_userlist_errors},
	{NULL, NULL},
};

/*
 * test_config.c - loading a configuration file: the reader (sections,
 * syntax, byte order marks, errors by line), the work after the last line
 * (inheritance, paths, checks across keys), config_load_keep() and the
 * lookups.  Values, units and SHOW CONFIG are in test_config_values.c; the
 * fixture (fx_*) is config_fx.h.
 */
#include "config_fx.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

const struct unit_test unit_tests_config[] = {
	{"config_product_example", test_config_product_example},
	{"config_inherit_any_order", test_config_inherit_any_order},
	{"config_unknown_key", test_config_unknown_key},
	{"config_structure_errors", test_config_structure_errors},
	{"config_missing_source", test_config_missing_source},
	{"config_ports_must_differ", test_config_ports_must_differ},
	{"config_missing_file", test_config_missing_file},
	{"config_paths", test_config_paths},
	{"config_syntax_details", test_config_syntax_details},
	{"config_second_bom", test_config_second_bom},
	{"config_is_admin", test_config_is_admin},
	{"config_load_keep", test_config_load_keep},
	{"config_shipped_example", test_config_shipped_example},
	{NULL, NULL},
};

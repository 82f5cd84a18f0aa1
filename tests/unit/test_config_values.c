/*
 * test_config_values.c - the values of configuration keys: what each type
 * accepts and refuses, durations and sizes with their units, the limits and
 * timeouts, the TLS keys, and config_dump() (SHOW CONFIG).  The fixture
 * (fx_*) is config_fx.h.
 */
#include "config_fx.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	UT_EQ_INT(b.keys, 64);
	UT_ASSERT(strstr(b.text, "\nshadow=0\nshadow_queue=1000\nddl=pass\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nfence=on\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nignore_tables=\nverify_jobs=2\nswitch_verify=off\n"
				 "verify_budget=200ms\nswitch_verify_incomplete=abort\n") != NULL);
	UT_ASSERT(strstr(b.text, "\nreverse_replication=off\n") != NULL);
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
	UT_ASSERT(strstr(b.text, "\nlog_file=\nsyslog=off\nsyslog_ident=pgcutover\n"
				 "syslog_facility=daemon\n") != NULL);
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

/*
 * syslog, syslog_ident, syslog_facility: PgBouncer's three keys, with
 * PostgreSQL's spellings of a boolean besides PgBouncer's 0 and 1.
 */
static void check_syslog_keys(struct fx *fx)
{
	static const char *const on[] = {"on", "ON", "true", "Yes", "1"};
	static const char *const off[] = {"off", "False", "no", "0"};
	char text[200];

	FX_LOAD_OK(fx, "[pgcutover]\n" MIN_DB);
	UT_ASSERT(!fx->cfg->syslog);
	UT_EQ_STR(fx->cfg->syslog_ident, "pgcutover");
	UT_EQ_STR(fx->cfg->syslog_facility, "daemon");
	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		snprintf(text, sizeof(text), "[pgcutover]\nsyslog = %s\n" MIN_DB, on[i]);
		FX_LOAD_OK(fx, text);
		UT_ASSERT(fx->cfg->syslog);
	}
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		snprintf(text, sizeof(text), "[pgcutover]\nsyslog = %s\n" MIN_DB, off[i]);
		FX_LOAD_OK(fx, text);
		UT_ASSERT(!fx->cfg->syslog);
	}
	/* the facility is stored, and shown, in lower case */
	FX_LOAD_OK(fx, "[pgcutover]\nsyslog = on\nsyslog_ident = proxy-eu1\n"
		       "syslog_facility = LOCAL3\n" MIN_DB);
	UT_EQ_STR(fx->cfg->syslog_ident, "proxy-eu1");
	UT_EQ_STR(fx->cfg->syslog_facility, "local3");

	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "syslog = maybe\n"         /* 2 */
			  "syslog_facility = kern\n" /* 3 */
			  "syslog_ident =\n"         /* 4 */
			  "[database \"db\"]\n"      /* 5 */
			  "source = host=s\n"
			  "target = host=t\n"
			  "lag_method = none\n"
			  "syslog = on\n"); /* 9 */
	UT_ASSERT(fx_has_error(fx, 2, "\"syslog\": \"maybe\" (expected on or off)"));
	UT_ASSERT(fx_has_error(fx, 3,
			       "\"syslog_facility\": \"kern\" (expected auth, authpriv, daemon, "
			       "user or local0 to local7)"));
	UT_ASSERT(fx_has_error(fx, 4, "\"syslog_ident\": \"\" (must not be empty)"));
	UT_ASSERT(fx_has_error(fx, 9, "parameter \"syslog\" cannot be set in a [database"));
	UT_EQ_INT(fx->errs.count, 4);

	/* syslog keeps 63 bytes of an ident: a longer one is refused, not cut */
	snprintf(text, sizeof(text), "[pgcutover]\nsyslog_ident = %064d\n" MIN_DB, 0);
	FX_LOAD_FAILS(fx, text);
	UT_ASSERT(fx_has_error(fx, 2, "(at most 63 bytes)"));
}

static void test_config_syslog_keys(void)
{
	struct fx fx;

	fx_init(&fx);
	check_syslog_keys(&fx);
	fx_done(&fx);
}

/* shadow, shadow_queue and ddl: values, inheritance, errors naming their lines. */
static void check_shadow_keys(struct fx *fx)
{
	const struct db_config *db;
	struct dump_buf b;

	FX_LOAD_OK(fx, "[pgcutover]\n"
		       "shadow = 0.01\n"
		       "ddl = Block\n"
		       "[database \"a\"]\n"
		       "source = host=s\n"
		       "target = host=t\n"
		       "lag_method = none\n"
		       "shadow = 1\n"
		       "shadow_queue = 5\n"
		       "ddl = pass\n"
		       "[database \"b\"]\n"
		       "source = host=s\n"
		       "target = host=t\n"
		       "lag_method = none\n");
	db = config_find_db(fx->cfg, "a");
	UT_ASSERT(db != NULL && db->d.shadow == 1.0 && db->d.shadow_queue == 5 &&
		  db->d.ddl == DDL_PASS);
	db = config_find_db(fx->cfg, "b");
	UT_ASSERT(db != NULL && db->d.shadow == 0.01 && db->d.shadow_queue == 1000 &&
		  db->d.ddl == DDL_BLOCK);
	memset(&b, 0, sizeof(b));
	config_dump(fx->cfg, dump_emit, &b);
	UT_ASSERT(strstr(b.text, "\nshadow=0.01\nshadow_queue=1000\nddl=block\n") != NULL);
	FX_LOAD_FAILS(fx, "[pgcutover]\n"
			  "shadow = 1.5\n"     /* 2 */
			  "shadow_queue = 0\n" /* 3 */
			  "ddl = refuse\n"     /* 4 */
			  "[database \"x\"]\n"
			  "source = host=s\n"
			  "target = host=t\n"
			  "lag_method = none\n"
			  "shadow = -0.1\n" /* 9 */
			  "[database \"y\"]\n"
			  "source = host=s\n"
			  "target = host=t\n"
			  "lag_method = none\n"
			  "shadow = 1%\n" /* 14 */
	);
	UT_ASSERT(fx_has_error(fx, 2, "\"shadow\": \"1.5\" (expected a fraction between 0 and 1"));
	UT_ASSERT(fx_has_error(fx, 3, "\"shadow_queue\": \"0\""));
	UT_ASSERT(fx_has_error(fx, 4, "\"ddl\": \"refuse\" (expected pass or block)"));
	UT_ASSERT(fx_has_error(fx, 9, "\"shadow\": \"-0.1\""));
	UT_ASSERT(fx_has_error(fx, 14, "\"shadow\": \"1%\""));
}

static void test_config_shadow_keys(void)
{
	struct fx fx;

	fx_init(&fx);
	check_shadow_keys(&fx);
	fx_done(&fx);
}

const struct unit_test unit_tests_config_values[] = {
	{"config_syslog_keys", test_config_syslog_keys},
	{"config_tls_keys", test_config_tls_keys},
	{"config_bad_values", test_config_bad_values},
	{"config_parse_duration", test_config_parse_duration},
	{"config_parse_size", test_config_parse_size},
	{"config_dump", test_config_dump},
	{"config_limits", test_config_limits},
	{"config_shadow_keys", test_config_shadow_keys},
	{NULL, NULL},
};

/*
 * config_keys.c - the table of every configuration key (config_keys[]) and
 * how a value is checked, normalised and stored (config_set_value()).
 *
 * The table says, for each key, its type, the sections it may appear in,
 * where it is stored in struct config and struct db_config, and what a
 * database inherits from [pgcutover] when it does not set the key; the
 * reader (config_read.c), the checks after parsing (config_check.c) and
 * SHOW CONFIG (config_dump.c) are all driven by it.  The documentation of
 * every key is docs/reference.md; tests/unit/test_reference.c fails when the
 * two disagree.
 */
#include "proxy/core/config_int.h"

#include "proxy/core/log_syslog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------- */
/* The keys                                                               */
/* ---------------------------------------------------------------------- */

/* Offsets of a field of struct config, of its defaults, of struct db_config and of its d. */
#define CFG(field)     offsetof(struct config, field)
#define CFG_DEF(field) (offsetof(struct config, defaults) + offsetof(struct db_defaults, field))
#define DB(field)      offsetof(struct db_config, field)
#define DB_DEF(field)  (offsetof(struct db_config, d) + offsetof(struct db_defaults, field))

/*
 * Every key, [pgcutover] ones in the order of the documentation (which is
 * also the order of SHOW CONFIG), then the database-only ones.
 */
const struct config_key config_keys[] = {
	{"listen_addr", KT_LIST, SCOPE_MAIN, CFG(listen_addr), NO_OFFSET, NO_OFFSET, 1, 0},
	{"listen_port", KT_PORT, SCOPE_MAIN, CFG(listen_port), NO_OFFSET, NO_OFFSET, 1, 65535},
	{"unix_socket_dir", KT_PATH, SCOPE_MAIN, CFG(unix_socket_dir), NO_OFFSET, NO_OFFSET, 0, 0},
	{"admin_addr", KT_LIST, SCOPE_MAIN, CFG(admin_addr), NO_OFFSET, NO_OFFSET, 1, 0},
	{"admin_port", KT_PORT, SCOPE_MAIN, CFG(admin_port), NO_OFFSET, NO_OFFSET, 1, 65535},
	{"admin_users", KT_LIST, SCOPE_MAIN, CFG(admin_users), NO_OFFSET, NO_OFFSET, 1, 0},
	{"auth_type", KT_AUTH_TYPE, SCOPE_MAIN, CFG(auth_type), NO_OFFSET, NO_OFFSET, 0, 0},
	{"auth_file", KT_PATH, SCOPE_MAIN, CFG(auth_file), NO_OFFSET, NO_OFFSET, 1, 0},
	{"pool_mode", KT_POOL_MODE, SCOPE_BOTH, CFG(pool_mode), DB_DEF(pool_mode), CFG(pool_mode),
	 0, 0},
	{"max_client_conn", KT_INT, SCOPE_MAIN, CFG(max_client_conn), NO_OFFSET, NO_OFFSET, 1,
	 INT_MAX},
	{"default_pool_size", KT_INT, SCOPE_MAIN, CFG(default_pool_size), NO_OFFSET, NO_OFFSET, 1,
	 INT_MAX},
	{"state_dir", KT_PATH, SCOPE_MAIN, CFG(state_dir), NO_OFFSET, NO_OFFSET, 1, 0},
	{"fleet", KT_OPTSTRING, SCOPE_MAIN, CFG(fleet), NO_OFFSET, NO_OFFSET, 0, 0},
	{"instance_name", KT_OPTSTRING, SCOPE_MAIN, CFG(instance_name), NO_OFFSET, NO_OFFSET, 0, 0},
	{"fleet_lease", KT_DURATION, SCOPE_MAIN, CFG(fleet_lease_ms), NO_OFFSET, NO_OFFSET, 500,
	 3600 * 1000},
	{"metrics_addr", KT_STRING, SCOPE_MAIN, CFG(metrics_addr), NO_OFFSET, NO_OFFSET, 1, 0},
	{"metrics_port", KT_PORT, SCOPE_MAIN, CFG(metrics_port), NO_OFFSET, NO_OFFSET, 0, 65535},
	{"log_file", KT_PATH, SCOPE_MAIN, CFG(log_file), NO_OFFSET, NO_OFFSET, 0, 0},
	{"syslog", KT_BOOL, SCOPE_MAIN, CFG(syslog), NO_OFFSET, NO_OFFSET, 0, 0},
	/* an ident longer than log_syslog.c keeps would be cut without a word */
	{"syslog_ident", KT_STRING, SCOPE_MAIN, CFG(syslog_ident), NO_OFFSET, NO_OFFSET, 1, 63},
	{"syslog_facility", KT_FACILITY, SCOPE_MAIN, CFG(syslog_facility), NO_OFFSET, NO_OFFSET, 0,
	 0},
	{"client_login_timeout", KT_DURATION, SCOPE_MAIN, CFG(client_login_timeout_ms), NO_OFFSET,
	 NO_OFFSET, 1, CONFIG_DURATION_MAX_MS},
	{"server_connect_timeout", KT_DURATION, SCOPE_MAIN, CFG(server_connect_timeout_ms),
	 NO_OFFSET, NO_OFFSET, 1, CONFIG_DURATION_MAX_MS},
	{"shutdown_timeout", KT_DURATION, SCOPE_MAIN, CFG(shutdown_timeout_ms), NO_OFFSET,
	 NO_OFFSET, 0, CONFIG_DURATION_MAX_MS},
	{"server_idle_timeout", KT_DURATION, SCOPE_MAIN, CFG(server_idle_timeout_ms), NO_OFFSET,
	 NO_OFFSET, 0, CONFIG_DURATION_MAX_MS},
	{"max_packet_size", KT_SIZE, SCOPE_MAIN, CFG(max_packet_size), NO_OFFSET, NO_OFFSET,
	 CONFIG_KB, CONFIG_GB},
	{"conn_buffer_size", KT_SIZE, SCOPE_MAIN, CFG(conn_buffer_size), NO_OFFSET, NO_OFFSET,
	 CONFIG_KB, CONFIG_GB},
	{"max_prepared_statements", KT_INT, SCOPE_MAIN, CFG(max_prepared_statements), NO_OFFSET,
	 NO_OFFSET, 0, 100000},
	{"client_tls_sslmode", KT_SSLMODE, SCOPE_MAIN, CFG(client_tls_sslmode), NO_OFFSET,
	 NO_OFFSET, 0, SSLMODE_VERIFY_FULL},
	{"client_tls_cert_file", KT_PATH, SCOPE_MAIN, CFG(client_tls_cert_file), NO_OFFSET,
	 NO_OFFSET, 0, 0},
	{"client_tls_key_file", KT_PATH, SCOPE_MAIN, CFG(client_tls_key_file), NO_OFFSET, NO_OFFSET,
	 0, 0},
	{"client_tls_ca_file", KT_PATH, SCOPE_MAIN, CFG(client_tls_ca_file), NO_OFFSET, NO_OFFSET,
	 0, 0},
	{"client_tls_protocols", KT_TLS_PROTOCOLS, SCOPE_MAIN, CFG(client_tls_protocols), NO_OFFSET,
	 NO_OFFSET, 0, 0},
	{"client_tls_ciphers", KT_STRING, SCOPE_MAIN, CFG(client_tls_ciphers), NO_OFFSET, NO_OFFSET,
	 1, 0},
	{"server_tls_sslmode", KT_SSLMODE, SCOPE_MAIN, CFG(server_tls_sslmode), NO_OFFSET,
	 NO_OFFSET, 1, SSLMODE_VERIFY_FULL},
	{"server_tls_ca_file", KT_PATH, SCOPE_MAIN, CFG(server_tls_ca_file), NO_OFFSET, NO_OFFSET,
	 0, 0},
	{"server_tls_cert_file", KT_PATH, SCOPE_MAIN, CFG(server_tls_cert_file), NO_OFFSET,
	 NO_OFFSET, 0, 0},
	{"server_tls_key_file", KT_PATH, SCOPE_MAIN, CFG(server_tls_key_file), NO_OFFSET, NO_OFFSET,
	 0, 0},
	{"server_tls_protocols", KT_TLS_PROTOCOLS, SCOPE_MAIN, CFG(server_tls_protocols), NO_OFFSET,
	 NO_OFFSET, 0, 0},
	{"server_tls_ciphers", KT_STRING, SCOPE_MAIN, CFG(server_tls_ciphers), NO_OFFSET, NO_OFFSET,
	 1, 0},
	/* limits and timeouts (docs/security.md); at least 100ms so a refusing server is not hammered */
	{"server_login_retry", KT_DURATION, SCOPE_MAIN, CFG(server_login_retry_ms), NO_OFFSET,
	 NO_OFFSET, 100, CONFIG_DURATION_MAX_MS},
	{"client_message_timeout", KT_DURATION, SCOPE_MAIN, CFG(client_message_timeout_ms),
	 NO_OFFSET, NO_OFFSET, 0, CONFIG_DURATION_MAX_MS},
	{"max_user_connections", KT_INT, SCOPE_MAIN, CFG(max_user_connections), NO_OFFSET,
	 NO_OFFSET, 0, INT_MAX},

	{"control_user", KT_STRING, SCOPE_BOTH, CFG_DEF(control_user), DB_DEF(control_user),
	 CFG_DEF(control_user), 1, 0},
	{"drain_timeout", KT_DURATION, SCOPE_BOTH, CFG_DEF(drain_timeout_ms),
	 DB_DEF(drain_timeout_ms), CFG_DEF(drain_timeout_ms), 1, CONFIG_DURATION_MAX_MS},
	{"lag_timeout", KT_DURATION, SCOPE_BOTH, CFG_DEF(lag_timeout_ms), DB_DEF(lag_timeout_ms),
	 CFG_DEF(lag_timeout_ms), 1, CONFIG_DURATION_MAX_MS},
	{"max_switch_lag", KT_SIZE, SCOPE_BOTH, CFG_DEF(max_switch_lag), DB_DEF(max_switch_lag),
	 CFG_DEF(max_switch_lag), 0, NO_MAX},
	{"lag_method", KT_LAG_METHOD, SCOPE_BOTH, CFG_DEF(lag_method), DB_DEF(lag_method),
	 CFG_DEF(lag_method), 0, 0},
	{"sequence_sync", KT_SEQSYNC, SCOPE_BOTH, CFG_DEF(sequence_sync), DB_DEF(sequence_sync),
	 CFG_DEF(sequence_sync), 0, 0},
	{"sequence_margin", KT_INT64, SCOPE_BOTH, CFG_DEF(sequence_margin), DB_DEF(sequence_margin),
	 CFG_DEF(sequence_margin), 0, NO_MAX},
	{"marker_table", KT_TABLE, SCOPE_BOTH, CFG_DEF(marker_table), DB_DEF(marker_table),
	 CFG_DEF(marker_table), 0, 0},
	{"query_wait_timeout", KT_DURATION, SCOPE_BOTH, CFG_DEF(query_wait_timeout_ms),
	 DB_DEF(query_wait_timeout_ms), CFG_DEF(query_wait_timeout_ms), 0, CONFIG_DURATION_MAX_MS},
	{"idle_transaction_timeout", KT_DURATION, SCOPE_BOTH, CFG_DEF(idle_transaction_timeout_ms),
	 DB_DEF(idle_transaction_timeout_ms), CFG_DEF(idle_transaction_timeout_ms), 0,
	 CONFIG_DURATION_MAX_MS},
	{"max_db_connections", KT_INT, SCOPE_BOTH, CFG_DEF(max_db_connections),
	 DB_DEF(max_db_connections), CFG_DEF(max_db_connections), 0, INT_MAX},
	{"fence", KT_BOOL, SCOPE_BOTH, CFG_DEF(fence), DB_DEF(fence), CFG_DEF(fence), 0, 0},
	{"reverse_replication", KT_BOOL, SCOPE_BOTH, CFG_DEF(reverse_replication),
	 DB_DEF(reverse_replication), CFG_DEF(reverse_replication), 0, 0},
	/* validation: CHECK, VERIFY and the switch's re-check (docs/validation.md) */
	{"ignore_tables", KT_TABLES, SCOPE_BOTH, CFG_DEF(ignore_tables), DB_DEF(ignore_tables),
	 CFG_DEF(ignore_tables), 0, 0},
	{"verify_jobs", KT_INT, SCOPE_BOTH, CFG_DEF(verify_jobs), DB_DEF(verify_jobs),
	 CFG_DEF(verify_jobs), 1, 16},
	{"switch_verify", KT_BOOL, SCOPE_BOTH, CFG_DEF(switch_verify), DB_DEF(switch_verify),
	 CFG_DEF(switch_verify), 0, 0},
	{"verify_budget", KT_DURATION, SCOPE_BOTH, CFG_DEF(verify_budget_ms),
	 DB_DEF(verify_budget_ms), CFG_DEF(verify_budget_ms), 1, 60 * 1000},
	{"switch_verify_incomplete", KT_ABORT_PROCEED, SCOPE_BOTH, CFG_DEF(switch_verify_abort),
	 DB_DEF(switch_verify_abort), CFG_DEF(switch_verify_abort), 0, 0},
	/* shadow reads and schema changes during the move (docs/validation.md) */
	{"shadow", KT_FRACTION, SCOPE_BOTH, CFG_DEF(shadow), DB_DEF(shadow), CFG_DEF(shadow), 0, 0},
	{"shadow_queue", KT_INT, SCOPE_BOTH, CFG_DEF(shadow_queue), DB_DEF(shadow_queue),
	 CFG_DEF(shadow_queue), 1, 1000000},
	{"ddl", KT_DDL_MODE, SCOPE_BOTH, CFG_DEF(ddl), DB_DEF(ddl), CFG_DEF(ddl), 0, 0},

	{"source", KT_STRING, SCOPE_DB, NO_OFFSET, DB(source), NO_OFFSET, 1, 0},
	{"target", KT_STRING, SCOPE_DB, NO_OFFSET, DB(target), NO_OFFSET, 1, 0},
	{"replication_slot", KT_SLOT, SCOPE_DB, NO_OFFSET, DB(replication_slot), NO_OFFSET, 0, 0},
	{"user", KT_OPTSTRING, SCOPE_DB, NO_OFFSET, DB(user), NO_OFFSET, 0, 0},
	{"password", KT_STRING, SCOPE_DB, NO_OFFSET, DB(password), NO_OFFSET, 0, 0},
	{"pool_size", KT_INT, SCOPE_DB, NO_OFFSET, DB_DEF(pool_size), CFG(default_pool_size), 1,
	 INT_MAX},
	{"subscription", KT_OPTSTRING, SCOPE_DB, NO_OFFSET, DB(subscription), NO_OFFSET, 0, 0},
	{"reverse_connection", KT_OPTSTRING, SCOPE_DB, NO_OFFSET, DB(reverse_connection), NO_OFFSET,
	 0, 0},
};

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) == CONFIG_NKEYS,
	       "CONFIG_NKEYS (config_int.h) must be the number of entries of config_keys[]");

/* Keys compare case-insensitively, as PgBouncer's and PostgreSQL's do. */
const struct config_key *config_find_key(const char *name, size_t *index)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcasecmp(config_keys[i].name, name) == 0) {
			*index = i;
			return &config_keys[i];
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Values                                                                 */
/* ---------------------------------------------------------------------- */

static void bad_value(struct config_loader *ld, const struct config_key *k, const char *value,
		      const char *expected)
{
	config_ld_error(ld, ld->lineno, "invalid value for parameter \"%s\": \"%s\" (%s)", k->name,
			value, expected);
}

/* Letters, digits, '_' and '$', not starting with a digit: an unquoted SQL name. */
static bool is_sql_name(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_NAME_MAX || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '$')
			return false;
	}
	return true;
}

/* "name" or "schema.name"; with need_schema only the latter. */
static bool is_qualified_name(const char *s, size_t len, bool need_schema)
{
	const char *dot = memchr(s, '.', len);

	if (dot == NULL)
		return !need_schema && is_sql_name(s, len);
	return is_sql_name(s, (size_t)(dot - s)) &&
	       is_sql_name(dot + 1, len - (size_t)(dot - s) - 1);
}

/* Trims blanks around [*s, *s + *len). */
void config_trim_span(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/*
 * Walks a comma list, calling check(item, len) on each trimmed item; when
 * 'out' is set, writes the items joined by "," (no blanks) there.
 */
static bool walk_list(const char *value, bool (*check)(const char *, size_t), char *out)
{
	const char *p = value;
	bool first = true;

	if (out)
		*out = '\0';
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *item = p;

		config_trim_span(&item, &len);
		if (len == 0 || (check && !check(item, len)))
			return false;
		if (out) {
			if (!first)
				strcat(out, ",");
			strncat(out, item, len);
		}
		first = false;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

static bool is_sequence_name(const char *s, size_t len)
{
	return is_qualified_name(s, len, true);
}

/* An item of ignore_tables: [schema.]table, or schema.* for every table of a schema. */
static bool is_table_pattern(const char *s, size_t len)
{
	if (len > 2 && s[len - 1] == '*' && s[len - 2] == '.')
		return is_sql_name(s, len - 2);
	return is_qualified_name(s, len, false);
}

/* Frees the string at 'slot' and stores v (which may be NULL). */
void config_set_string(char **slot, char *v)
{
	free(*slot);
	*slot = v;
}

/*
 * The range check of durations and sizes, worded in their units; bounds are
 * shown as written in a config file ("1ms", "1GB").
 */
static bool check_unit_range(struct config_loader *ld, const struct config_key *k,
			     const char *value, int64_t v)
{
	char lo[32], hi[32], expected[96];

	if (v >= k->min && v <= k->max)
		return true;
	if (k->type == KT_DURATION) {
		config_format_duration(lo, sizeof(lo), k->min);
		config_format_duration(hi, sizeof(hi), k->max);
	} else {
		config_format_size(lo, sizeof(lo), k->min);
		config_format_size(hi, sizeof(hi), k->max);
	}
	if (k->max == NO_MAX)
		snprintf(expected, sizeof(expected), "must be at least %s", lo);
	else
		snprintf(expected, sizeof(expected), "must be between %s and %s", lo, hi);
	bad_value(ld, k, value, expected);
	return false;
}

/*
 * Parses 'value' for key k and stores it at 'field'.  False, with an error
 * recorded and the field unchanged, when the value is not acceptable.
 */
bool config_set_value(struct config_loader *ld, const struct config_key *k, const char *value,
		      void *field)
{
	size_t len = strlen(value);
	char *norm;
	int64_t v;

	switch (k->type) {
	case KT_STRING:
	case KT_PATH:
		if (k->min > 0 && len == 0) {
			bad_value(ld, k, value, "must not be empty");
			return false;
		}
		if (k->type == KT_STRING && k->max > 0 && len > (size_t)k->max) {
			char expected[64];

			snprintf(expected, sizeof(expected), "at most %" PRId64 " bytes", k->max);
			bad_value(ld, k, value, expected);
			return false;
		}
		config_set_string(field, config_ld_strdup(ld, value));
		return true;
	case KT_FACILITY: {
		const char *name;

		if (!log_syslog_facility_known(value, &name)) {
			bad_value(ld, k, value,
				  "expected auth, authpriv, daemon, user or local0 to local7");
			return false;
		}
		config_set_string(field, config_ld_strdup(ld, name));
		return true;
	}
	case KT_OPTSTRING:
		config_set_string(field, len ? config_ld_strdup(ld, value) : NULL);
		return true;
	case KT_LIST:
		/* The normalised list is never longer than the value. */
		norm = malloc(len + 1);
		if (norm == NULL) {
			ld->oom = true;
			return false;
		}
		if (!walk_list(value, NULL, norm)) {
			free(norm);
			bad_value(ld, k, value, "expected a comma list with no empty item");
			return false;
		}
		config_set_string(field, norm);
		return true;
	case KT_SLOT:
		if (len == 0) {
			config_set_string(field, NULL);
			return true;
		}
		if (len > CONFIG_NAME_MAX ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
			bad_value(ld, k, value,
				  "replication slot names may contain only lower case letters, numbers "
				  "and the underscore character, at most 63 of them");
			return false;
		}
		config_set_string(field, config_ld_strdup(ld, value));
		return true;
	case KT_TABLE:
		if (!is_qualified_name(value, len, false)) {
			bad_value(ld, k, value,
				  "expected a table name, optionally schema-qualified, made of letters, "
				  "digits, \"_\" and \"$\"");
			return false;
		}
		config_set_string(field, config_ld_strdup(ld, value));
		return true;
	case KT_SEQSYNC:
		/* Stored as "all", "none" or "a.b,c.d" so that users need no parsing. */
		if (strcasecmp(value, "all") == 0 || strcasecmp(value, "none") == 0) {
			config_set_string(field, config_ld_strdup(ld, strcasecmp(value, "all") == 0
									      ? "all"
									      : "none"));
			return true;
		}
		norm = malloc(len + 1);
		if (norm == NULL) {
			ld->oom = true;
			return false;
		}
		if (!walk_list(value, is_sequence_name, norm)) {
			free(norm);
			bad_value(ld, k, value,
				  "expected all, none or a comma list of schema.sequence");
			return false;
		}
		config_set_string(field, norm);
		return true;
	case KT_TABLES:
		/* Stored as "a.b,c.*" (no blanks), "" for none. */
		norm = malloc(len + 1);
		if (norm == NULL) {
			ld->oom = true;
			return false;
		}
		if (len > 0 && !walk_list(value, is_table_pattern, norm)) {
			free(norm);
			bad_value(ld, k, value,
				  "expected a comma list of table, schema.table or schema.*");
			return false;
		}
		if (len == 0)
			norm[0] = '\0';
		config_set_string(field, norm);
		return true;
	case KT_ABORT_PROCEED:
		if (strcasecmp(value, "abort") == 0)
			*(bool *)field = true;
		else if (strcasecmp(value, "proceed") == 0)
			*(bool *)field = false;
		else {
			bad_value(ld, k, value, "expected abort or proceed");
			return false;
		}
		return true;
	case KT_POOL_MODE:
		if (strcasecmp(value, "session") == 0)
			*(enum pool_mode *)field = POOL_SESSION;
		else if (strcasecmp(value, "transaction") == 0)
			*(enum pool_mode *)field = POOL_TRANSACTION;
		else {
			bad_value(ld, k, value, "expected session or transaction");
			return false;
		}
		return true;
	case KT_AUTH_TYPE:
		if (strcasecmp(value, "trust") == 0)
			*(enum auth_type *)field = AUTH_TRUST;
		else if (strcasecmp(value, "md5") == 0)
			*(enum auth_type *)field = AUTH_MD5;
		else if (strcasecmp(value, "scram-sha-256") == 0)
			*(enum auth_type *)field = AUTH_SCRAM;
		else {
			bad_value(ld, k, value, "expected trust, md5 or scram-sha-256");
			return false;
		}
		return true;
	case KT_BOOL:
		if (!config_parse_bool(value, (bool *)field)) {
			bad_value(ld, k, value, "expected on or off");
			return false;
		}
		return true;
	case KT_LAG_METHOD:
		if (strcasecmp(value, "lsn") == 0)
			*(enum lag_method *)field = LAG_LSN;
		else if (strcasecmp(value, "marker") == 0)
			*(enum lag_method *)field = LAG_MARKER;
		else if (strcasecmp(value, "none") == 0)
			*(enum lag_method *)field = LAG_NONE;
		else {
			bad_value(ld, k, value, "expected lsn, marker or none");
			return false;
		}
		return true;
	case KT_DDL_MODE:
		if (strcasecmp(value, "pass") == 0)
			*(enum ddl_mode *)field = DDL_PASS;
		else if (strcasecmp(value, "block") == 0)
			*(enum ddl_mode *)field = DDL_BLOCK;
		else {
			bad_value(ld, k, value, "expected pass or block");
			return false;
		}
		return true;
	case KT_FRACTION: {
		double d;

		if (!config_parse_fraction(value, &d)) {
			bad_value(ld, k, value, "expected a fraction between 0 and 1, such as 0.01");
			return false;
		}
		*(double *)field = d;
		return true;
	}
	case KT_SSLMODE: {
		enum tls_sslmode m;

		if (!tls_parse_sslmode(value, &m) || (k->min > 0 && m == SSLMODE_ALLOW)) {
			bad_value(ld, k, value,
				  k->min > 0
					  ? "expected disable, prefer, require, verify-ca or verify-full"
					  : "expected disable, allow, prefer, require, verify-ca or verify-full");
			return false;
		}
		*(enum tls_sslmode *)field = m;
		return true;
	}
	case KT_TLS_PROTOCOLS: {
		unsigned mask;
		char buf[64] = "";

		if (!tls_parse_protocols(value, &mask)) {
			bad_value(ld, k, value,
				  "expected secure, all, or a comma list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3");
			return false;
		}
		for (size_t i = 0; i < 4; i++) {
			static const char *const names[4] = {"tlsv1.0", "tlsv1.1", "tlsv1.2",
							     "tlsv1.3"};

			if (mask & (1u << i)) {
				if (buf[0])
					strcat(buf, ",");
				strcat(buf, names[i]);
			}
		}
		config_set_string(field, config_ld_strdup(ld, buf));
		return true;
	}
	case KT_INT:
	case KT_PORT:
	case KT_INT64: {
		const char *p = value;
		char expected[128];

		if (!config_parse_digits(&p, &v) || *p != '\0' || v < k->min || v > k->max) {
			snprintf(expected, sizeof(expected),
				 "expected %s between %" PRId64 " and %" PRId64 "%s",
				 k->type == KT_PORT ? "a port number" : "an integer", k->min,
				 k->max, k->type == KT_PORT && k->min == 0 ? " (0 = off)" : "");
			bad_value(ld, k, value, expected);
			return false;
		}
		if (k->type == KT_INT64)
			*(int64_t *)field = v;
		else
			*(int *)field = (int)v;
		return true;
	}
	case KT_DURATION:
		if (!config_parse_duration(value, &v)) {
			bad_value(ld, k, value,
				  "expected a duration such as 250ms, 10s, 5min or 1h");
			return false;
		}
		if (!check_unit_range(ld, k, value, v))
			return false;
		*(int64_t *)field = v;
		return true;
	case KT_SIZE:
		if (!config_parse_size(value, &v)) {
			bad_value(ld, k, value, "expected a size such as 512kB, 64MB or 1GB");
			return false;
		}
		if (!check_unit_range(ld, k, value, v))
			return false;
		*(int64_t *)field = v;
		return true;
	}
	return false;
}

/*
 * config.c - loading and freeing struct config, and looking things up in it.
 *
 * config_load_keep() runs one load: a config holding every default
 * (config_new), the file read line by line (config_read.c, which stores each
 * value through the key table of config_keys.c), then the work after the
 * last line (config_check.c).  Every problem is appended to the caller's
 * error list, in line order.  The parts of the module, and what they share,
 * are listed in config_int.h.
 */
#include "proxy/core/config.h"

#include "proxy/core/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A config holding every default; NULL when out of memory. */
static struct config *config_new(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->refs = 1;
	cfg->listen_addr = strdup("127.0.0.1");
	cfg->listen_port = 6432;
	cfg->unix_socket_dir = strdup("");
	cfg->admin_addr = strdup("127.0.0.1");
	cfg->admin_port = 6433;
	cfg->admin_users = strdup("admin");
	cfg->auth_type = AUTH_SCRAM;
	cfg->auth_file = strdup("userlist.txt");
	cfg->pool_mode = POOL_SESSION;
	cfg->max_client_conn = 10000;
	cfg->default_pool_size = 20;
	cfg->state_dir = strdup("./state");
	cfg->metrics_addr = strdup("127.0.0.1");
	cfg->metrics_port = 9127;
	cfg->log_file = strdup("");
	cfg->syslog = false;
	cfg->syslog_ident = strdup("pgcutover");
	cfg->syslog_facility = strdup("daemon"); /* PgBouncer's default */
	cfg->client_login_timeout_ms = 60 * 1000;
	cfg->server_connect_timeout_ms = 15 * 1000;
	cfg->shutdown_timeout_ms = 30 * 1000;
	cfg->fleet_lease_ms = 5 * 1000;
	cfg->server_idle_timeout_ms = 600 * 1000;
	cfg->max_packet_size = CONFIG_GB - 1; /* PostgreSQL's MaxAllocSize */
	cfg->conn_buffer_size = 256 * CONFIG_KB;
	cfg->max_prepared_statements = 200;
	cfg->client_tls_sslmode = SSLMODE_DISABLE;
	cfg->client_tls_cert_file = strdup("");
	cfg->client_tls_key_file = strdup("");
	cfg->client_tls_ca_file = strdup("");
	cfg->client_tls_protocols = strdup("tlsv1.2,tlsv1.3");
	cfg->client_tls_ciphers = strdup(CONFIG_TLS_DEFAULT_CIPHERS);
	cfg->server_tls_sslmode = SSLMODE_PREFER;
	cfg->server_tls_ca_file = strdup("");
	cfg->server_tls_cert_file = strdup("");
	cfg->server_tls_key_file = strdup("");
	cfg->server_tls_protocols = strdup("tlsv1.2,tlsv1.3");
	cfg->server_tls_ciphers = strdup(CONFIG_TLS_DEFAULT_CIPHERS);
	cfg->server_login_retry_ms = 15 * 1000;     /* PgBouncer's default */
	cfg->client_message_timeout_ms = 60 * 1000; /* see docs/security.md for why */
	cfg->max_user_connections = 0;

	cfg->defaults.control_user = strdup("pgcutover");
	cfg->defaults.drain_timeout_ms = 10 * 1000;
	cfg->defaults.lag_timeout_ms = 30 * 1000;
	cfg->defaults.max_switch_lag = 64 * 1024 * CONFIG_KB;
	cfg->defaults.lag_method = LAG_LSN;
	cfg->defaults.ignore_tables = strdup("");
	cfg->defaults.verify_jobs = 2;
	cfg->defaults.switch_verify = false;
	cfg->defaults.verify_budget_ms = 200;
	cfg->defaults.switch_verify_abort = true;
	cfg->defaults.fence = true;
	cfg->defaults.shadow = 0;
	cfg->defaults.shadow_queue = 1000;
	cfg->defaults.ddl = DDL_PASS;
	cfg->defaults.sequence_sync = strdup("all");
	cfg->defaults.sequence_margin = 0;
	cfg->defaults.marker_table = strdup("pgcutover_marker");
	cfg->defaults.query_wait_timeout_ms = 120 * 1000; /* PgBouncer's default */
	cfg->defaults.idle_transaction_timeout_ms = 0;
	cfg->defaults.max_db_connections = 0;
	cfg->defaults.pool_size = cfg->default_pool_size;
	cfg->defaults.pool_mode = cfg->pool_mode;

	if (!cfg->listen_addr || !cfg->unix_socket_dir || !cfg->admin_addr || !cfg->admin_users ||
	    !cfg->auth_file || !cfg->state_dir || !cfg->metrics_addr || !cfg->log_file ||
	    !cfg->syslog_ident || !cfg->syslog_facility || !cfg->defaults.control_user ||
	    !cfg->defaults.sequence_sync || !cfg->defaults.marker_table ||
	    !cfg->defaults.ignore_tables || !cfg->client_tls_cert_file ||
	    !cfg->client_tls_key_file || !cfg->client_tls_ca_file || !cfg->client_tls_protocols ||
	    !cfg->client_tls_ciphers || !cfg->server_tls_ca_file || !cfg->server_tls_cert_file ||
	    !cfg->server_tls_key_file || !cfg->server_tls_protocols || !cfg->server_tls_ciphers) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Sets cfg->path (absolute) and cfg->dir from the path the caller gave. */
static bool set_file_path(struct config *cfg, const char *path)
{
	char *slash;

	if (path[0] == '/') {
		cfg->path = strdup(path);
	} else {
		char *cwd = getcwd(NULL, 0);
		const char *p = path;

		if (cwd == NULL)
			return false;
		while (p[0] == '.' && p[1] == '/')
			p += 2;
		if (asprintf(&cfg->path, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", p) < 0)
			cfg->path = NULL;
		free(cwd);
	}
	if (cfg->path == NULL)
		return false;
	slash = strrchr(cfg->path, '/');
	if (slash == cfg->path)
		cfg->dir = strdup("/");
	else
		cfg->dir = strndup(cfg->path, (size_t)(slash - cfg->path));
	return cfg->dir != NULL;
}

struct config *config_load(const char *path, struct config_errors *errs)
{
	size_t before = errs->count;
	struct config *cfg = config_load_keep(path, errs);

	if (cfg && errs->count > before) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *config_load_keep(const char *path, struct config_errors *errs)
{
	struct config_loader ld;

	memset(&ld, 0, sizeof(ld));
	ld.errs = errs;
	ld.errs_before = errs->count;
	ld.path = path;
	ld.cfg = config_new();
	if (ld.cfg == NULL) {
		config_ld_error(&ld, 0, "out of memory");
		return NULL;
	}
	if (!set_file_path(ld.cfg, path)) {
		config_ld_error(&ld, 0, "could not resolve the path of the configuration file: %s",
				strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}
	ld.fp = fopen(path, "r");
	if (ld.fp == NULL) {
		config_ld_error(&ld, 0, "could not open configuration file: %s", strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}

	config_read(&ld);
	fclose(ld.fp);

	config_finish(&ld);
	free(ld.dbst);
	if (ld.oom)
		config_ld_error(&ld, 0, "out of memory");
	if (ld.oom) {
		config_errors_sort(errs, ld.errs_before);
		config_free(ld.cfg);
		return NULL;
	}
	config_errors_sort(errs, ld.errs_before);
	return ld.cfg;
}

static void db_defaults_free(struct db_defaults *d)
{
	free(d->control_user);
	free(d->sequence_sync);
	free(d->marker_table);
	free(d->ignore_tables);
}

struct config *config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL || --cfg->refs > 0)
		return;
	for (size_t i = 0; i < cfg->ndbs; i++) {
		struct db_config *db = &cfg->dbs[i];

		free(db->name);
		free(db->source);
		free(db->target);
		free(db->replication_slot);
		free(db->subscription);
		free(db->reverse_connection);
		free(db->user);
		free(db->password);
		db_defaults_free(&db->d);
	}
	free(cfg->dbs);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->listen_addr);
	free(cfg->unix_socket_dir);
	free(cfg->admin_addr);
	free(cfg->admin_users);
	free(cfg->auth_file);
	free(cfg->state_dir);
	free(cfg->fleet);
	free(cfg->instance_name);
	free(cfg->metrics_addr);
	free(cfg->log_file);
	free(cfg->syslog_ident);
	free(cfg->syslog_facility);
	free(cfg->client_tls_cert_file);
	free(cfg->client_tls_key_file);
	free(cfg->client_tls_ca_file);
	free(cfg->client_tls_protocols);
	free(cfg->client_tls_ciphers);
	free(cfg->server_tls_ca_file);
	free(cfg->server_tls_cert_file);
	free(cfg->server_tls_key_file);
	free(cfg->server_tls_protocols);
	free(cfg->server_tls_ciphers);
	db_defaults_free(&cfg->defaults);
	free(cfg);
}

const struct db_config *config_find_db(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
	}
	return NULL;
}

bool config_is_admin(const struct config *cfg, const char *user)
{
	const char *p = cfg->admin_users;
	size_t ulen = strlen(user);

	if (p == NULL || ulen == 0)
		return false;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *item = p;

		config_trim_span(&item, &len);
		if (len == ulen && memcmp(item, user, len) == 0)
			return true;
		if (comma == NULL)
			return false;
		p = comma + 1;
	}
}

/*
 * config_check.c - what the loader does once the last line has been read:
 * relative paths made absolute (relative to the configuration file's
 * directory), the [pgcutover] defaults a database did not override copied
 * into it, the TLS files checked for readability, and the checks that
 * involve several keys (TLS keys that go together, distinct ports, a source
 * and a target per database, a replication slot for lag_method lsn).
 *
 * Each message cites the line of the key concerned, or of its section when
 * the key was not set; a key whose own value was rejected already (its line
 * recorded negated, see struct config_db_state) is not reported again.
 */
#include "proxy/core/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Joins dir and a relative path; absolute and empty paths are kept. */
static char *resolve_path(struct config_loader *ld, const char *dir, const char *p)
{
	char *out;

	if (p[0] == '\0' || p[0] == '/')
		return config_ld_strdup(ld, p);
	while (p[0] == '.' && p[1] == '/') {
		p += 2;
		while (*p == '/')
			p++;
	}
	if (p[0] == '\0' || strcmp(p, ".") == 0)
		return config_ld_strdup(ld, dir);
	if (asprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", p) < 0) {
		ld->oom = true;
		return NULL;
	}
	return out;
}

/* Copies the [pgcutover] value of key k into an unset database field. */
static void inherit(struct config_loader *ld, const struct config_key *k, struct db_config *db)
{
	const char *src = (const char *)ld->cfg + k->inherit_off;
	char *dst = (char *)db + k->db_off;

	switch (k->type) {
	case KT_INT:
	case KT_PORT:
		*(int *)dst = *(const int *)src;
		break;
	case KT_INT64:
	case KT_DURATION:
	case KT_SIZE:
		*(int64_t *)dst = *(const int64_t *)src;
		break;
	case KT_POOL_MODE:
		*(enum pool_mode *)dst = *(const enum pool_mode *)src;
		break;
	case KT_AUTH_TYPE:
		*(enum auth_type *)dst = *(const enum auth_type *)src;
		break;
	case KT_LAG_METHOD:
		*(enum lag_method *)dst = *(const enum lag_method *)src;
		break;
	case KT_BOOL:
	case KT_ABORT_PROCEED:
		*(bool *)dst = *(const bool *)src;
		break;
	case KT_FRACTION:
		*(double *)dst = *(const double *)src;
		break;
	case KT_DDL_MODE:
		*(enum ddl_mode *)dst = *(const enum ddl_mode *)src;
		break;
	default: {
		const char *s = *(char *const *)src;

		config_set_string((char **)dst, s ? config_ld_strdup(ld, s) : NULL);
		break;
	}
	}
}

/*
 * db_state.key_line of a key for database i; for a key the database
 * inherits, that of [pgcutover], so that a rejected default stays quiet too.
 */
static int key_line(const struct config_loader *ld, size_t i, const char *key)
{
	size_t idx;

	if (!config_find_key(key, &idx))
		return 0;
	if (ld->dbst[i].key_line[idx] == 0 && (config_keys[idx].scope & SCOPE_MAIN))
		return ld->main_key_line[idx];
	return ld->dbst[i].key_line[idx];
}

/* The line a [pgcutover] key was set at, or its section's, or 0. */
static int main_line_of(const struct config_loader *ld, const char *key)
{
	size_t idx;

	if (config_find_key(key, &idx) && ld->main_key_line[idx])
		return abs(ld->main_key_line[idx]);
	return ld->main_line;
}

/* A TLS file that is set must be readable: --check says so, naming its line. */
static void check_tls_file(struct config_loader *ld, const char *key, const char *path)
{
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return;
	f = fopen(path, "r");
	if (f == NULL) {
		config_ld_error(ld, main_line_of(ld, key), "could not read %s \"%s\": %s", key,
				path, strerror(errno));
		return;
	}
	fclose(f);
}

static bool is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The TLS keys that only make sense together. */
static void check_tls(struct config_loader *ld)
{
	const struct config *cfg = ld->cfg;

	if (cfg->client_tls_sslmode != SSLMODE_DISABLE &&
	    (!is_set(cfg->client_tls_cert_file) || !is_set(cfg->client_tls_key_file)))
		config_ld_error(ld, main_line_of(ld, "client_tls_sslmode"),
				"client_tls_sslmode %s needs client_tls_cert_file and client_tls_key_file",
				tls_sslmode_name(cfg->client_tls_sslmode));
	if (cfg->client_tls_sslmode >= SSLMODE_VERIFY_CA && !is_set(cfg->client_tls_ca_file))
		config_ld_error(ld, main_line_of(ld, "client_tls_sslmode"),
				"client_tls_sslmode %s needs client_tls_ca_file to verify client certificates",
				tls_sslmode_name(cfg->client_tls_sslmode));
	if (is_set(cfg->client_tls_cert_file) != is_set(cfg->client_tls_key_file))
		config_ld_error(ld,
				main_line_of(ld, is_set(cfg->client_tls_cert_file)
							 ? "client_tls_cert_file"
							 : "client_tls_key_file"),
				"client_tls_cert_file and client_tls_key_file must be set together");
	if (is_set(cfg->server_tls_cert_file) != is_set(cfg->server_tls_key_file))
		config_ld_error(ld,
				main_line_of(ld, is_set(cfg->server_tls_cert_file)
							 ? "server_tls_cert_file"
							 : "server_tls_key_file"),
				"server_tls_cert_file and server_tls_key_file must be set together");
	check_tls_file(ld, "client_tls_cert_file", cfg->client_tls_cert_file);
	check_tls_file(ld, "client_tls_key_file", cfg->client_tls_key_file);
	check_tls_file(ld, "client_tls_ca_file", cfg->client_tls_ca_file);
	check_tls_file(ld, "server_tls_ca_file", cfg->server_tls_ca_file);
	check_tls_file(ld, "server_tls_cert_file", cfg->server_tls_cert_file);
	check_tls_file(ld, "server_tls_key_file", cfg->server_tls_key_file);
}

/* Inheritance, path resolution and the checks that involve several keys. */
void config_finish(struct config_loader *ld)
{
	struct config *cfg = ld->cfg;
	char **paths[] = {&cfg->auth_file,
			  &cfg->state_dir,
			  &cfg->log_file,
			  &cfg->unix_socket_dir,
			  &cfg->client_tls_cert_file,
			  &cfg->client_tls_key_file,
			  &cfg->client_tls_ca_file,
			  &cfg->server_tls_ca_file,
			  &cfg->server_tls_cert_file,
			  &cfg->server_tls_key_file};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (*paths[i] != NULL)
			config_set_string(paths[i], resolve_path(ld, cfg->dir, *paths[i]));
	}
	check_tls(ld);
	cfg->defaults.pool_size = cfg->default_pool_size;
	cfg->defaults.pool_mode = cfg->pool_mode;
	cfg->auth_file_line = main_line_of(ld, "auth_file");

	if (cfg->listen_port == cfg->admin_port)
		config_ld_error(ld, main_line_of(ld, "admin_port"),
				"admin_port and listen_port must differ (both are %d)",
				cfg->admin_port);
	if (cfg->metrics_port != 0 &&
	    (cfg->metrics_port == cfg->listen_port || cfg->metrics_port == cfg->admin_port))
		config_ld_error(ld, main_line_of(ld, "metrics_port"),
				"metrics_port must differ from listen_port and admin_port (it is %d)",
				cfg->metrics_port);
	if (cfg->ndbs == 0 && ld->errs->count == ld->errs_before)
		config_ld_error(ld, 0,
				"no database is configured: add a [database \"name\"] section");

	for (size_t i = 0; i < cfg->ndbs; i++) {
		struct db_config *db = &cfg->dbs[i];
		const struct config_db_state *st = &ld->dbst[i];

		for (size_t j = 0; j < CONFIG_NKEYS; j++) {
			const struct config_key *k = &config_keys[j];

			if (k->db_off != NO_OFFSET && k->inherit_off != NO_OFFSET &&
			    !st->key_line[j])
				inherit(ld, k, db);
		}
		db->source_line =
			key_line(ld, i, "source") ? abs(key_line(ld, i, "source")) : db->line;
		db->target_line =
			key_line(ld, i, "target") ? abs(key_line(ld, i, "target")) : db->line;
		if (db->source == NULL && key_line(ld, i, "source") == 0)
			config_ld_error(ld, db->line, "database \"%s\" has no source", db->name);
		if (db->target == NULL && key_line(ld, i, "target") == 0)
			config_ld_error(ld, db->line, "database \"%s\" has no target", db->name);
		if (db->d.lag_method == LAG_LSN && db->replication_slot == NULL &&
		    key_line(ld, i, "replication_slot") >= 0 && key_line(ld, i, "lag_method") >= 0)
			config_ld_error(ld, db->line,
					"database \"%s\" uses lag_method lsn but sets no replication_slot",
					db->name);
		if (db->d.reverse_replication && db->d.lag_method != LAG_LSN &&
		    key_line(ld, i, "reverse_replication") >= 0 &&
		    key_line(ld, i, "lag_method") >= 0)
			config_ld_error(ld,
					abs(key_line(ld, i, "reverse_replication"))
						? abs(key_line(ld, i, "reverse_replication"))
						: db->line,
					"database \"%s\": reverse_replication needs lag_method lsn (PostgreSQL logical replication)",
					db->name);
	}
}

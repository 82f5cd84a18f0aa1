/*
 * fuzz_config.c - fuzz target for the configuration loader (proxy/core/config*.c).
 *
 * The input is a whole pgcutover.ini.  It is put in an in-memory file and
 * loaded with config_load() itself, so the loader runs exactly as it does
 * for `pgcutover --check` and on SIGHUP: our line reader, inih's parsing of
 * each line, the key table, values, inheritance and the checks across keys.
 *
 * A load either fails with at least one error, each naming the file and
 * sorted by line, or gives a config that keeps every promise config.h
 * makes: absolute paths, distinct ports, non-empty unique database names
 * that config_find_db finds, every inherited default filled in; and
 * config_dump and config_is_admin work on it.  The duration and size
 * parsers are also run on short inputs directly.
 *
 * The loader promises that a line too long for inih's line buffer is split
 * by the same rules as a short one, and that CRLF line ends mean nothing.
 * So the input is also loaded a second time with every key line made long
 * by an inline comment ("   ; xxx...") and every "\n" turned into "\r\n":
 * both loads must agree, down to every value and every error message.
 */
#include "tests/fuzz/fuzz.h"

#include "proxy/core/config.h"

/* Longest input also handed to the duration and size parsers as one value. */
#define FUZZ_VALUE_MAX 64

/* Longer than inih's line buffer (200 bytes in Debian's libinih, and rarely more). */
#define FUZZ_LONG_COMMENT_LEN 300

/* What config_dump showed: every key once, each with a value, kept as text. */
struct dump_check {
	size_t nkeys; /* keys emitted */
	char *text;   /* "key=value\n" for every key, malloc'd */
	size_t len;
};

static void dump_emit(void *arg, const char *key, const char *value)
{
	struct dump_check *d = arg;
	size_t kl, vl;
	char *t;

	FUZZ_CHECK(key != NULL && key[0] != '\0');
	FUZZ_CHECK(value != NULL);
	kl = strlen(key);
	vl = strlen(value);
	FUZZ_CHECK(vl < 100000);
	t = realloc(d->text, d->len + kl + vl + 3);
	FUZZ_CHECK(t != NULL);
	memcpy(t + d->len, key, kl);
	t[d->len + kl] = '=';
	memcpy(t + d->len + kl + 1, value, vl);
	t[d->len + kl + 1 + vl] = '\n';
	d->len += kl + vl + 2;
	t[d->len] = '\0';
	d->text = t;
	d->nkeys++;
}

/* Everything a loaded config holds, as text, to compare two loads. */
static char *describe(const struct config *cfg)
{
	struct dump_check d = {0, NULL, 0};

	config_dump(cfg, dump_emit, &d);
	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_config *db = &cfg->dbs[i];
		char line[160];
		const char *strs[] = {db->name,           db->source,
				      db->target,         db->replication_slot,
				      db->user,           db->password,
				      db->d.control_user, db->d.sequence_sync,
				      db->d.marker_table};

		for (size_t j = 0; j < sizeof(strs) / sizeof(strs[0]); j++)
			dump_emit(&d, "db", strs[j] ? strs[j] : "(null)");
		snprintf(line, sizeof(line), "%lld %lld %lld %d %lld %d %d %d %d",
			 (long long)db->d.drain_timeout_ms, (long long)db->d.lag_timeout_ms,
			 (long long)db->d.max_switch_lag, (int)db->d.lag_method,
			 (long long)db->d.sequence_margin, db->d.pool_size, (int)db->d.pool_mode,
			 db->line, (int)i);
		dump_emit(&d, "db", line);
	}
	return d.text;
}

/*
 * The input with an inline comment longer than inih's buffer after every
 * line that holds a "name = value" (or "name : value"), and CRLF line ends.
 */
static char *lengthen(const uint8_t *data, size_t size, size_t *out_len)
{
	char *out = malloc(size * 2 + (size + 1) * (FUZZ_LONG_COMMENT_LEN + 8) + 1);
	size_t o = 0, i = 0;

	FUZZ_CHECK(out != NULL);
	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - data) : size, k = i;
		bool key_line;

		while (k < end && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' ||
				   data[k] == '\v' || data[k] == '\f'))
			k++;
		key_line = k < end && data[k] != '[' && data[k] != ';' && data[k] != '#' &&
			   (memchr(data + k, '=', end - k) || memchr(data + k, ':', end - k)) &&
			   !memchr(data + i, '\0', end - i);
		memcpy(out + o, data + i, end - i);
		o += end - i;
		if (key_line) {
			memcpy(out + o, "   ; ", 5);
			o += 5;
			memset(out + o, 'x', FUZZ_LONG_COMMENT_LEN);
			o += FUZZ_LONG_COMMENT_LEN;
		}
		if (nl) {
			memcpy(out + o, "\r\n", 2);
			o += 2;
		}
		i = end + 1;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static bool absolute_or_empty(const char *p)
{
	return p != NULL && (p[0] == '\0' || p[0] == '/');
}

/* Every promise of a config that loaded without error. */
static void check_config(const struct config *cfg)
{
	struct dump_check d = {0, NULL, 0};

	FUZZ_CHECK(cfg->path != NULL && cfg->path[0] == '/');
	FUZZ_CHECK(cfg->dir != NULL && cfg->dir[0] == '/');
	FUZZ_CHECK(cfg->auth_file != NULL && cfg->auth_file[0] == '/');
	FUZZ_CHECK(cfg->state_dir != NULL && cfg->state_dir[0] == '/');
	FUZZ_CHECK(absolute_or_empty(cfg->log_file));
	FUZZ_CHECK(absolute_or_empty(cfg->unix_socket_dir));
	FUZZ_CHECK(cfg->listen_addr && cfg->listen_addr[0] && cfg->admin_addr && cfg->admin_addr[0]);
	FUZZ_CHECK(cfg->admin_users && cfg->admin_users[0] && cfg->metrics_addr &&
		   cfg->metrics_addr[0]);
	FUZZ_CHECK(cfg->listen_port >= 1 && cfg->listen_port <= 65535);
	FUZZ_CHECK(cfg->admin_port >= 1 && cfg->admin_port <= 65535);
	FUZZ_CHECK(cfg->listen_port != cfg->admin_port);
	FUZZ_CHECK(cfg->metrics_port >= 0 && cfg->metrics_port <= 65535);
	FUZZ_CHECK(cfg->metrics_port == 0 ||
		   (cfg->metrics_port != cfg->listen_port && cfg->metrics_port != cfg->admin_port));
	FUZZ_CHECK(cfg->max_client_conn >= 1 && cfg->default_pool_size >= 1);
	FUZZ_CHECK(cfg->client_login_timeout_ms >= 1 && cfg->server_connect_timeout_ms >= 1);
	FUZZ_CHECK(cfg->shutdown_timeout_ms >= 0 && cfg->server_idle_timeout_ms >= 0);
	FUZZ_CHECK(cfg->max_packet_size >= 1024 && cfg->max_packet_size <= 1024 * 1024 * 1024);
	FUZZ_CHECK(cfg->conn_buffer_size >= 1024 && cfg->conn_buffer_size <= 1024 * 1024 * 1024);
	FUZZ_CHECK(cfg->ndbs > 0 && cfg->dbs != NULL);

	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_config *db = &cfg->dbs[i];

		FUZZ_CHECK(db->name != NULL && db->name[0] != '\0' && strlen(db->name) <= 63);
		FUZZ_CHECK(strchr(db->name, '/') == NULL);
		FUZZ_CHECK(config_find_db(cfg, db->name) == db); /* so names are unique */
		FUZZ_CHECK(db->source != NULL && db->target != NULL);
		FUZZ_CHECK(db->d.control_user != NULL && db->d.control_user[0] != '\0');
		FUZZ_CHECK(db->d.sequence_sync != NULL && db->d.marker_table != NULL);
		FUZZ_CHECK(db->d.pool_size >= 1);
		FUZZ_CHECK(db->d.drain_timeout_ms >= 1 && db->d.lag_timeout_ms >= 1);
		FUZZ_CHECK(db->d.max_switch_lag >= 0 && db->d.sequence_margin >= 0);
		FUZZ_CHECK(db->d.lag_method != LAG_LSN || db->replication_slot != NULL);
		FUZZ_CHECK(db->user == NULL || db->user[0] != '\0');
		FUZZ_CHECK(db->line > 0);
		FUZZ_CHECK(strcmp(config_pool_mode_name(db->d.pool_mode), "unknown") != 0);
		FUZZ_CHECK(strcmp(config_lag_method_name(db->d.lag_method), "unknown") != 0);
	}
	FUZZ_CHECK(strcmp(config_auth_type_name(cfg->auth_type), "unknown") != 0);

	config_dump(cfg, dump_emit, &d);
	FUZZ_CHECK(d.nkeys > 20);
	free(d.text);

	/* every name of the normalised admin_users list is an admin, "" never */
	FUZZ_CHECK(!config_is_admin(cfg, ""));
	for (const char *p = cfg->admin_users;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *u = fuzz_strndup(p, n);

		FUZZ_CHECK(n > 0 && config_is_admin(cfg, u));
		free(u);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/* The value parsers: what they accept is a non-negative amount. */
static void check_values(const uint8_t *data, size_t size)
{
	char *s;
	int64_t v;

	if (size > FUZZ_VALUE_MAX)
		return;
	s = fuzz_strndup(data, size);
	if (config_parse_duration(s, &v))
		FUZZ_CHECK(v >= 0);
	if (config_parse_size(s, &v))
		FUZZ_CHECK(v >= 0);
	free(s);
}

/*
 * The lengthened input must load the same: both fail with the same
 * messages, or both succeed with the same contents.
 */
static void check_lengthened(const uint8_t *data, size_t size, const struct config *cfg,
			     const struct config_errors *errs)
{
	struct config_errors errs2 = {NULL, 0};
	struct config *cfg2;
	size_t len;
	char *text = lengthen(data, size, &len), path[64];

	if (fuzz_memfile(text, len, path)) {
		cfg2 = config_load(path, &errs2);
		FUZZ_CHECK((cfg == NULL) == (cfg2 == NULL));
		if (cfg) {
			char *a = describe(cfg), *b = describe(cfg2);

			FUZZ_CHECK(strcmp(a, b) == 0);
			free(a);
			free(b);
		} else {
			FUZZ_CHECK(errs->count == errs2.count);
			for (size_t i = 0; i < errs->count; i++) {
				FUZZ_CHECK(errs->items[i].line == errs2.items[i].line);
				FUZZ_CHECK(strcmp(errs->items[i].message, errs2.items[i].message) ==
					   0);
			}
		}
		config_free(cfg2);
		config_errors_free(&errs2);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = {NULL, 0};
	struct config *cfg;
	char path[64];

	check_values(data, size);
	if (!fuzz_memfile(data, size, path))
		return 0;
	cfg = config_load(path, &errs);
	check_lengthened(data, size, cfg, &errs);
	if (cfg == NULL) {
		FUZZ_CHECK(errs.count > 0);
		for (size_t i = 0; i < errs.count; i++) {
			const struct config_error *e = &errs.items[i];

			FUZZ_CHECK(e->message != NULL);
			FUZZ_CHECK(strncmp(e->message, path, strlen(path)) == 0);
			FUZZ_CHECK(e->line >= 0);
			/* sorted by line, errors tied to no line (0) last */
			if (i > 0)
				FUZZ_CHECK((unsigned)errs.items[i - 1].line - 1 <=
					   (unsigned)e->line - 1);
		}
	} else {
		FUZZ_CHECK(errs.count == 0);
		check_config(cfg);
		config_free(cfg);
	}
	config_errors_free(&errs);
	return 0;
}

/*
 * config.c - loading, validating and describing struct config.
 *
 * inih splits "name = value" lines and strips inline comments; everything
 * else is ours.  We feed inih through ini_parse_stream() with our own reader
 * (ld_reader) that sees every physical line first, because Debian's libinih
 * gives the handler no line numbers, silently truncates lines longer than
 * 200 bytes and section names longer than 50, and treats an indented line
 * as the continuation of the previous value.  The reader therefore:
 *
 *   - counts lines, so every message names its line;
 *   - parses section headers itself ([pgcutover], [database "name"]) and
 *     hands inih a blank line instead, so long database names survive;
 *   - removes leading whitespace, so indentation never means continuation;
 *   - removes a byte order mark from line 1 and refuses a second one, which
 *     inih would remove too and then read the line differently from us;
 *   - reports lines inih would reject (no '=') itself, so that every such
 *     line is reported rather than only the first;
 *   - for a line too long for inih's buffer, splits it with the same rules
 *     (split_line) and hands inih just "name=", the handler taking the value
 *     from the loader.
 *
 * inih calls the handler for a line before it asks the reader for the next
 * one, so the loader's current line and section are those of the handler's
 * name and value.
 *
 * Every key is described once in config_keys[]: its type, where it may
 * appear and where it is stored.  The same table drives parsing, the
 * inheritance of [pgcutover] defaults by databases, and config_dump().
 */
#include "proxy/core/config.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* PostgreSQL's limits: NAMEDATALEN - 1 bytes per name, INT_MAX ms per timeout. */
#define CONFIG_NAME_MAX        63
#define CONFIG_DURATION_MAX_MS ((int64_t)INT_MAX)
#define CONFIG_KB              ((int64_t)1024)
#define CONFIG_GB              (CONFIG_KB * 1024 * 1024)

/* ---------------------------------------------------------------------- */
/* Durations and sizes                                                    */
/* ---------------------------------------------------------------------- */

/*
 * Reads the unsigned decimal integer at *p, advancing it.  False when there
 * is no digit or the value does not fit in an int64_t.
 */
static bool parse_digits(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		int d = *s - '0';

		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

/* One unit a number may carry, and what it multiplies by. */
struct unit {
	const char *name; /* as written after the number */
	int64_t factor;   /* milliseconds or bytes per unit */
};

/*
 * The common part of durations and sizes: digits, optional blanks, an
 * optional unit from 'units' (case-sensitive, as in PostgreSQL, because "mB"
 * and "Mb" are not the same thing to everyone), and nothing after.
 */
static bool parse_with_unit(const char *s, const struct unit *units, int64_t plain_factor,
			    int64_t *out)
{
	int64_t v, factor = plain_factor;

	if (s == NULL)
		return false;
	while (isspace((unsigned char)*s))
		s++;
	if (!parse_digits(&s, &v))
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0') {
		const struct unit *u;
		size_t len = strlen(s);

		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		for (u = units; u->name; u++) {
			if (strlen(u->name) == len && strncmp(s, u->name, len) == 0)
				break;
		}
		if (u->name == NULL)
			return false;
		factor = u->factor;
	}
	if (v > INT64_MAX / factor)
		return false;
	*out = v * factor;
	return true;
}

static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"min", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const struct unit size_units[] = {
	{"B", 1}, {"kB", CONFIG_KB}, {"MB", CONFIG_KB * 1024}, {"GB", CONFIG_GB}, {NULL, 0},
};

bool config_parse_duration(const char *s, int64_t *out_ms)
{
	return parse_with_unit(s, duration_units, 1000, out_ms);
}

bool config_parse_size(const char *s, int64_t *out_bytes)
{
	return parse_with_unit(s, size_units, 1, out_bytes);
}

/* The largest unit that divides v exactly, so that dumps read as written. */
static void format_with_unit(char *buf, size_t len, int64_t v, const struct unit *units)
{
	const struct unit *best = NULL;

	if (v != 0) {
		for (const struct unit *u = units; u->name; u++) {
			if (v % u->factor == 0)
				best = u;
		}
	}
	if (best == NULL)
		snprintf(buf, len, "%" PRId64, v);
	else
		snprintf(buf, len, "%" PRId64 "%s", v / best->factor, best->name);
}

/* Sizes below one kB are shown as plain bytes, not as "512B". */
static void format_size(char *buf, size_t len, int64_t v)
{
	format_with_unit(buf, len, v, size_units + 1);
}

static void format_duration(char *buf, size_t len, int64_t ms)
{
	format_with_unit(buf, len, ms, duration_units);
}

/* ---------------------------------------------------------------------- */
/* Enumerations                                                           */
/* ---------------------------------------------------------------------- */

const char *config_pool_mode_name(enum pool_mode m)
{
	switch (m) {
	case POOL_SESSION:
		return "session";
	case POOL_TRANSACTION:
		return "transaction";
	}
	return "unknown";
}

const char *config_auth_type_name(enum auth_type t)
{
	switch (t) {
	case AUTH_TRUST:
		return "trust";
	case AUTH_MD5:
		return "md5";
	case AUTH_SCRAM:
		return "scram-sha-256";
	}
	return "unknown";
}

const char *config_lag_method_name(enum lag_method m)
{
	switch (m) {
	case LAG_LSN:
		return "lsn";
	case LAG_MARKER:
		return "marker";
	case LAG_NONE:
		return "none";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------- */
/* The keys                                                               */
/* ---------------------------------------------------------------------- */

/* How a value is read, checked and stored. */
enum key_type {
	KT_STRING,        /* char *; min 1 = must not be empty */
	KT_OPTSTRING,     /* char *; empty means unset and is stored as NULL */
	KT_LIST,          /* char *; comma list of non-empty items */
	KT_PATH,          /* char *; made absolute after parsing; min 1 = must not be empty */
	KT_SLOT,          /* char *; replication slot name, NULL when empty */
	KT_TABLE,         /* char *; [schema.]table */
	KT_SEQSYNC,       /* char *; all, none or a comma list of schema.sequence */
	KT_INT,           /* int in [min, max] */
	KT_PORT,          /* int in [min, max], worded as a port */
	KT_INT64,         /* int64_t in [min, max] */
	KT_DURATION,      /* int64_t milliseconds in [min, max] */
	KT_SIZE,          /* int64_t bytes in [min, max] */
	KT_POOL_MODE,     /* enum pool_mode */
	KT_AUTH_TYPE,     /* enum auth_type */
	KT_LAG_METHOD,    /* enum lag_method */
	KT_SSLMODE,       /* enum tls_sslmode; max = the highest mode allowed, min 1 = no allow */
	KT_TLS_PROTOCOLS, /* char *; normalised comma list of tlsv1.x */
};

/* Where a key may appear. */
enum key_scope {
	SCOPE_MAIN = 1, /* [pgcutover] */
	SCOPE_DB = 2,   /* [database "name"] */
	SCOPE_BOTH = 3, /* a [pgcutover] default a database may override */
};

#define NO_OFFSET      SIZE_MAX
#define CFG(field)     offsetof(struct config, field)
#define CFG_DEF(field) (offsetof(struct config, defaults) + offsetof(struct db_defaults, field))
#define DB(field)      offsetof(struct db_config, field)
#define DB_DEF(field)  (offsetof(struct db_config, d) + offsetof(struct db_defaults, field))

struct config_key {
	const char *name;     /* as written in the file (compared case-insensitively) */
	enum key_type type;   /* how the value is parsed, checked, stored and dumped */
	enum key_scope scope; /* the sections it may appear in */
	size_t main_off;      /* offset in struct config, or NO_OFFSET */
	size_t db_off;        /* offset in struct db_config, or NO_OFFSET */
	size_t inherit_off;   /* offset in struct config a database copies when unset */
	int64_t min, max;     /* numeric range; for strings min 1 = non-empty */
};

#define NO_MAX INT64_MAX

/*
 * Every key, [pgcutover] ones in the order of the documentation (which is
 * also the order of SHOW CONFIG), then the database-only ones.
 */
static const struct config_key config_keys[] = {
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
	{"metrics_addr", KT_STRING, SCOPE_MAIN, CFG(metrics_addr), NO_OFFSET, NO_OFFSET, 1, 0},
	{"metrics_port", KT_PORT, SCOPE_MAIN, CFG(metrics_port), NO_OFFSET, NO_OFFSET, 0, 65535},
	{"log_file", KT_PATH, SCOPE_MAIN, CFG(log_file), NO_OFFSET, NO_OFFSET, 0, 0},
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

	{"source", KT_STRING, SCOPE_DB, NO_OFFSET, DB(source), NO_OFFSET, 1, 0},
	{"target", KT_STRING, SCOPE_DB, NO_OFFSET, DB(target), NO_OFFSET, 1, 0},
	{"replication_slot", KT_SLOT, SCOPE_DB, NO_OFFSET, DB(replication_slot), NO_OFFSET, 0, 0},
	{"user", KT_OPTSTRING, SCOPE_DB, NO_OFFSET, DB(user), NO_OFFSET, 0, 0},
	{"password", KT_STRING, SCOPE_DB, NO_OFFSET, DB(password), NO_OFFSET, 0, 0},
	{"pool_size", KT_INT, SCOPE_DB, NO_OFFSET, DB_DEF(pool_size), CFG(default_pool_size), 1,
	 INT_MAX},
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Keys compare case-insensitively, as PgBouncer's and PostgreSQL's do. */
static const struct config_key *find_key(const char *name, size_t *index)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcasecmp(config_keys[i].name, name) == 0) {
			*index = i;
			return &config_keys[i];
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Loader state and errors                                                */
/* ---------------------------------------------------------------------- */

/* Which kind of section the current line is in. */
enum section {
	SEC_NONE,   /* before any header: keys here are errors */
	SEC_MAIN,   /* [pgcutover] */
	SEC_DB,     /* [database "name"]: loader.cur_db */
	SEC_IGNORE, /* after a bad header: its keys are skipped, not reported again */
};

/* What the loader remembers about one database section, beside its db_config. */
struct db_state {
	/*
	 * Line where each key was set, 0 = not set, negated when its value was
	 * rejected: the checks after parsing then stay quiet about it rather
	 * than reporting the same mistake twice.
	 */
	int key_line[NKEYS];
};

struct loader {
	struct config *cfg;         /* being filled; starts with every default */
	struct config_errors *errs; /* the caller's: every problem is appended */
	size_t errs_before;         /* errs->count on entry: more means failure */
	const char *path;           /* as the caller gave it, for messages */
	FILE *fp;                   /* the file, read line by line by ld_reader */
	char *buf;                  /* getline() buffer holding the current line */
	size_t bufcap;              /* its allocated size */
	int lineno;                 /* current line, counted by ld_reader */
	bool oom;                   /* an allocation failed: the config is unusable */
	int read_errno;             /* errno of a failed read, 0 = none */

	enum section sec;         /* the section the current line belongs to */
	size_t cur_db;            /* SEC_DB: index in cfg->dbs */
	int main_line;            /* line of the [pgcutover] header, 0 = none yet */
	int main_key_line[NKEYS]; /* as db_state.key_line, for [pgcutover] */
	struct db_state *dbst;    /* parallel to cfg->dbs */
	size_t dbcap;             /* allocated entries of cfg->dbs and dbst */

	char *long_value; /* value of the current line when it was too long for inih */
	int long_line;    /* the line long_value belongs to */
};

static void ld_verror(struct loader *ld, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static bool errors_vadd(struct config_errors *errs, const char *path, int line, const char *fmt,
			va_list ap) __attribute__((format(printf, 4, 0)));

static bool errors_vadd(struct config_errors *errs, const char *path, int line, const char *fmt,
			va_list ap)
{
	struct config_error *items;
	char *msg = NULL, *full = NULL;
	int rc;

	if (vasprintf(&msg, fmt, ap) < 0)
		return false;
	if (line > 0)
		rc = asprintf(&full, "%s:%d: %s", path, line, msg);
	else
		rc = asprintf(&full, "%s: %s", path, msg);
	free(msg);
	if (rc < 0)
		return false;
	items = realloc(errs->items, (errs->count + 1) * sizeof(*items));
	if (items == NULL) {
		free(full);
		return false;
	}
	errs->items = items;
	items[errs->count].line = line;
	items[errs->count].message = full;
	errs->count++;
	return true;
}

bool config_errors_add(struct config_errors *errs, const char *path, int line, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = errors_vadd(errs, path, line, fmt, ap);
	va_end(ap);
	return ok;
}

static void ld_verror(struct loader *ld, int line, const char *fmt, va_list ap)
{
	if (!errors_vadd(ld->errs, ld->path, line, fmt, ap))
		ld->oom = true;
}

/* Records one error at 'line' (0 = not tied to a line). */
static void ld_error(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ld_error(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_verror(ld, line, fmt, ap);
	va_end(ap);
}

static char *ld_strdup(struct loader *ld, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		ld->oom = true;
	return p;
}

static char *ld_strndup(struct loader *ld, const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		ld->oom = true;
	return p;
}

void config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->count; i++)
		free(errs->items[i].message);
	free(errs->items);
	errs->items = NULL;
	errs->count = 0;
}

/* ---------------------------------------------------------------------- */
/* Lines                                                                  */
/* ---------------------------------------------------------------------- */

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
}

/*
 * inih's find_chars_or_comment(): the first character of 'chars' in s, or
 * the start of an inline comment (a ';' that follows whitespace), or the end.
 */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && (chars == NULL || strchr(chars, *s) == NULL) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * Splits the key line s (no leading blank) exactly as inih does: the name
 * ends at the first '=' or ':', the value loses its inline comment and its
 * surrounding blanks.  Sets [*name, *name_len) and [*value, *value_len);
 * false when there is no separator.
 */
static bool split_line(const char *s, const char **name, size_t *name_len, const char **value,
		       size_t *value_len)
{
	const char *sep = find_chars_or_comment(s, "=:");
	const char *v, *end;
	size_t n = (size_t)(sep - s);

	if (*sep != '=' && *sep != ':')
		return false;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	end = find_chars_or_comment(sep + 1, NULL);
	v = sep + 1;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	*name = s;
	*name_len = n;
	*value = v;
	*value_len = (size_t)(end - v);
	return true;
}

/* Empty, or only a comment: what may follow a section header. */
static bool only_comment(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0' || *s == ';' || *s == '#';
}

/*
 * Reads the double-quoted string at s (s[0] == '"'), where "" stands for one
 * quote, into a new string.  Sets *end past the closing quote.  NULL with
 * *end = NULL when it is not terminated; NULL with *end set when out of memory.
 */
static char *read_quoted(const char *s, const char **end)
{
	size_t len = strlen(s);
	char *out = malloc(len + 1), *o = out;

	*end = NULL;
	for (s++; *s; s++) {
		if (*s == '"') {
			if (s[1] != '"') {
				*end = s + 1;
				break;
			}
			s++;
		}
		if (out)
			*o++ = *s;
	}
	if (*end == NULL) {
		free(out);
		return NULL;
	}
	if (out)
		*o = '\0';
	return out;
}

/* A name clients can put in dbname and that is safe in state_dir/NAME.route. */
static bool check_db_name(struct loader *ld, const char *name)
{
	if (name[0] == '\0') {
		ld_error(ld, ld->lineno, "database name must not be empty");
		return false;
	}
	if (strlen(name) > CONFIG_NAME_MAX) {
		ld_error(ld, ld->lineno, "database name \"%s\" is too long (at most %d bytes)",
			 name, CONFIG_NAME_MAX);
		return false;
	}
	for (const char *p = name; *p; p++) {
		if (*p == '/' || iscntrl((unsigned char)*p)) {
			ld_error(ld, ld->lineno,
				 "database name \"%s\" must not contain \"/\" or control characters",
				 name);
			return false;
		}
	}
	return true;
}

/* Appends a [database] section; false when out of memory. */
static bool add_db(struct loader *ld, char *name)
{
	struct config *cfg = ld->cfg;
	struct db_config *db;

	if (cfg->ndbs == ld->dbcap) {
		size_t cap = ld->dbcap ? ld->dbcap * 2 : 4;
		struct db_config *dbs = realloc(cfg->dbs, cap * sizeof(*dbs));
		struct db_state *st;

		if (dbs == NULL)
			return false;
		cfg->dbs = dbs;
		st = realloc(ld->dbst, cap * sizeof(*st));
		if (st == NULL)
			return false;
		ld->dbst = st;
		ld->dbcap = cap;
	}
	db = &cfg->dbs[cfg->ndbs];
	memset(db, 0, sizeof(*db));
	memset(&ld->dbst[cfg->ndbs], 0, sizeof(ld->dbst[0]));
	db->name = name;
	db->line = ld->lineno;
	ld->cur_db = cfg->ndbs++;
	return true;
}

/* [database "name"]: 'rest' is what follows the word database. */
static void begin_db_section(struct loader *ld, const char *rest)
{
	const char *end;
	char *name;

	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest != '"') {
		ld_error(ld, ld->lineno,
			 "database section name must be quoted, as in [database \"name\"]");
		return;
	}
	name = read_quoted(rest, &end);
	if (name == NULL) {
		if (end)
			ld->oom = true;
		else
			ld_error(ld, ld->lineno,
				 "unterminated quoted database name in section header");
		return;
	}
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0') {
		ld_error(ld, ld->lineno,
			 "unexpected text after the database name in section header");
		free(name);
		return;
	}
	if (!check_db_name(ld, name)) {
		free(name);
		return;
	}
	for (size_t i = 0; i < ld->cfg->ndbs; i++) {
		if (strcmp(ld->cfg->dbs[i].name, name) == 0) {
			ld_error(ld, ld->lineno,
				 "duplicate database \"%s\" (first defined at line %d)", name,
				 ld->cfg->dbs[i].line);
			free(name);
			return;
		}
	}
	if (!add_db(ld, name)) {
		free(name);
		ld->oom = true;
		return;
	}
	ld->sec = SEC_DB;
}

/*
 * A line starting with '['.  Sets ld->sec; after any problem the section's
 * keys are ignored (SEC_IGNORE), so that one bad header gives one error.
 */
static void begin_section(struct loader *ld, char *line)
{
	char *p, *close = NULL;
	bool quoted = false;

	ld->sec = SEC_IGNORE;
	/* The first ']' outside quotes closes the header. */
	for (p = line + 1; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ']' && !quoted) {
			close = p;
			break;
		}
	}
	if (close == NULL) {
		ld_error(ld, ld->lineno, "syntax error in section header: missing \"]\"");
		return;
	}
	if (!only_comment(close + 1)) {
		ld_error(ld, ld->lineno, "unexpected text after section header");
		return;
	}
	*close = '\0';
	p = lskip(line + 1);
	rstrip(p);

	if (strcasecmp(p, "pgcutover") == 0) {
		if (ld->main_line) {
			ld_error(ld, ld->lineno, "duplicate section [pgcutover] (first at line %d)",
				 ld->main_line);
			return;
		}
		ld->main_line = ld->lineno;
		ld->sec = SEC_MAIN;
	} else if (strncasecmp(p, "database", 8) == 0 &&
		   (p[8] == '"' || isspace((unsigned char)p[8]))) {
		begin_db_section(ld, p + 8);
	} else {
		ld_error(ld, ld->lineno,
			 "unrecognized section [%s]: expected [pgcutover] or [database \"name\"]",
			 p);
	}
}

/* A UTF-8 byte order mark at s; strncmp stops at the end of a shorter line. */
static bool starts_with_bom(const char *s)
{
	return strncmp(s, "\xEF\xBB\xBF", 3) == 0;
}

/*
 * inih's reader: hands it the next line, prepared as the comment at the top
 * of this file says.  'num' is the size of inih's line buffer.
 */
static char *ld_reader(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	const char *name, *value;
	size_t name_len, value_len, len;
	ssize_t n;
	char *s;

	if (num < 3)
		return NULL;
	free(ld->long_value);
	ld->long_value = NULL;

	errno = 0;
	n = getline(&ld->buf, &ld->bufcap, ld->fp);
	if (n < 0) {
		if (ferror(ld->fp))
			ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	strcpy(str, "\n");

	if (memchr(ld->buf, '\0', (size_t)n) != NULL) {
		ld_error(ld, ld->lineno, "line contains a NUL byte");
		return str;
	}
	s = ld->buf;
	if (ld->lineno == 1 && starts_with_bom(s))
		s += 3; /* UTF-8 byte order mark */
	s = lskip(s);
	rstrip(s);
	/*
	 * inih strips a byte order mark from the start of line 1 as well.  Had
	 * we handed it one more (a second mark, or one after blanks), it would
	 * strip that one and then see the line differently from us: "[x]" or
	 * "; x = y" after it is a key line to us, a section or a comment that
	 * inih skips without a word.  So such a line is an error of its own.
	 */
	if (ld->lineno == 1 && starts_with_bom(s)) {
		ld_error(ld, ld->lineno, "syntax error: unexpected byte order mark");
		return str;
	}

	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		begin_section(ld, s);
		return str;
	}
	if (!split_line(s, &name, &name_len, &value, &value_len)) {
		ld_error(ld, ld->lineno, "syntax error: expected \"name = value\"");
		return str;
	}
	if (name_len == 0) {
		ld_error(ld, ld->lineno, "syntax error: missing parameter name before \"=\"");
		return str;
	}
	len = strlen(s);
	if (len + 2 <= (size_t)num) {
		memcpy(str, s, len);
		strcpy(str + len, "\n");
	} else if (name_len + 3 <= (size_t)num) {
		ld->long_value = ld_strndup(ld, value, value_len);
		ld->long_line = ld->lineno;
		memcpy(str, name, name_len);
		strcpy(str + name_len, "=\n");
	} else {
		ld_error(ld, ld->lineno, "parameter name is too long");
	}
	return str;
}

/* ---------------------------------------------------------------------- */
/* Values                                                                 */
/* ---------------------------------------------------------------------- */

static void bad_value(struct loader *ld, const struct config_key *k, const char *value,
		      const char *expected)
{
	ld_error(ld, ld->lineno, "invalid value for parameter \"%s\": \"%s\" (%s)", k->name, value,
		 expected);
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
static void trim_span(const char **s, size_t *len)
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

		trim_span(&item, &len);
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

/* Frees the string at 'slot' and stores v (which may be NULL). */
static void set_string(char **slot, char *v)
{
	free(*slot);
	*slot = v;
}

/*
 * The range check of durations and sizes, worded in their units; bounds are
 * shown as written in a config file ("1ms", "1GB").
 */
static bool check_unit_range(struct loader *ld, const struct config_key *k, const char *value,
			     int64_t v)
{
	char lo[32], hi[32], expected[96];

	if (v >= k->min && v <= k->max)
		return true;
	if (k->type == KT_DURATION) {
		format_duration(lo, sizeof(lo), k->min);
		format_duration(hi, sizeof(hi), k->max);
	} else {
		format_size(lo, sizeof(lo), k->min);
		format_size(hi, sizeof(hi), k->max);
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
static bool set_value(struct loader *ld, const struct config_key *k, const char *value, void *field)
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
		set_string(field, ld_strdup(ld, value));
		return true;
	case KT_OPTSTRING:
		set_string(field, len ? ld_strdup(ld, value) : NULL);
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
		set_string(field, norm);
		return true;
	case KT_SLOT:
		if (len == 0) {
			set_string(field, NULL);
			return true;
		}
		if (len > CONFIG_NAME_MAX ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) {
			bad_value(ld, k, value,
				  "replication slot names may contain only lower case letters, numbers "
				  "and the underscore character, at most 63 of them");
			return false;
		}
		set_string(field, ld_strdup(ld, value));
		return true;
	case KT_TABLE:
		if (!is_qualified_name(value, len, false)) {
			bad_value(ld, k, value,
				  "expected a table name, optionally schema-qualified, made of letters, "
				  "digits, \"_\" and \"$\"");
			return false;
		}
		set_string(field, ld_strdup(ld, value));
		return true;
	case KT_SEQSYNC:
		/* Stored as "all", "none" or "a.b,c.d" so that users need no parsing. */
		if (strcasecmp(value, "all") == 0 || strcasecmp(value, "none") == 0) {
			set_string(field,
				   ld_strdup(ld, strcasecmp(value, "all") == 0 ? "all" : "none"));
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
		set_string(field, norm);
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
		set_string(field, ld_strdup(ld, buf));
		return true;
	}
	case KT_INT:
	case KT_PORT:
	case KT_INT64: {
		const char *p = value;
		char expected[128];

		if (!parse_digits(&p, &v) || *p != '\0' || v < k->min || v > k->max) {
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

/* inih's handler: one "name = value" of the current line. */
static int ld_handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	const struct config_key *k;
	int *key_line;
	char *base;
	size_t idx, off;

	(void)section; /* the reader tracks sections: see begin_section() */
	if (ld->long_value != NULL && ld->long_line == ld->lineno)
		value = ld->long_value;
	if (value == NULL)
		value = "";

	switch (ld->sec) {
	case SEC_IGNORE:
		return 1;
	case SEC_NONE:
		ld_error(ld, ld->lineno,
			 "parameter \"%s\" appears before any section header: put it in [pgcutover]",
			 name);
		return 1;
	case SEC_MAIN:
	case SEC_DB:
		break;
	}

	k = find_key(name, &idx);
	if (k == NULL) {
		ld_error(ld, ld->lineno, "unrecognized configuration parameter \"%s\"", name);
		return 1;
	}
	if (ld->sec == SEC_MAIN) {
		if (!(k->scope & SCOPE_MAIN)) {
			ld_error(ld, ld->lineno,
				 "parameter \"%s\" can only be set in a [database \"name\"] section",
				 k->name);
			return 1;
		}
		key_line = ld->main_key_line;
		base = (char *)ld->cfg;
		off = k->main_off;
	} else {
		if (!(k->scope & SCOPE_DB)) {
			ld_error(ld, ld->lineno,
				 "parameter \"%s\" cannot be set in a [database \"name\"] section%s",
				 k->name,
				 strcmp(k->name, "default_pool_size") == 0 ? ": use pool_size" : "");
			return 1;
		}
		key_line = ld->dbst[ld->cur_db].key_line;
		base = (char *)&ld->cfg->dbs[ld->cur_db];
		off = k->db_off;
	}
	if (key_line[idx]) {
		ld_error(ld, ld->lineno,
			 "parameter \"%s\" is set more than once in this section "
			 "(first at line %d)",
			 k->name, abs(key_line[idx]));
		return 1;
	}
	key_line[idx] = set_value(ld, k, value, base + off) ? ld->lineno : -ld->lineno;
	return 1;
}

/* ---------------------------------------------------------------------- */
/* After parsing                                                          */
/* ---------------------------------------------------------------------- */

/* Joins dir and a relative path; absolute and empty paths are kept. */
static char *resolve_path(struct loader *ld, const char *dir, const char *p)
{
	char *out;

	if (p[0] == '\0' || p[0] == '/')
		return ld_strdup(ld, p);
	while (p[0] == '.' && p[1] == '/') {
		p += 2;
		while (*p == '/')
			p++;
	}
	if (p[0] == '\0' || strcmp(p, ".") == 0)
		return ld_strdup(ld, dir);
	if (asprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", p) < 0) {
		ld->oom = true;
		return NULL;
	}
	return out;
}

/* Copies the [pgcutover] value of key k into an unset database field. */
static void inherit(struct loader *ld, const struct config_key *k, struct db_config *db)
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
	default: {
		const char *s = *(char *const *)src;

		set_string((char **)dst, s ? ld_strdup(ld, s) : NULL);
		break;
	}
	}
}

/*
 * db_state.key_line of a key for database i; for a key the database
 * inherits, that of [pgcutover], so that a rejected default stays quiet too.
 */
static int key_line(const struct loader *ld, size_t i, const char *key)
{
	size_t idx;

	if (!find_key(key, &idx))
		return 0;
	if (ld->dbst[i].key_line[idx] == 0 && (config_keys[idx].scope & SCOPE_MAIN))
		return ld->main_key_line[idx];
	return ld->dbst[i].key_line[idx];
}

/* The line a [pgcutover] key was set at, or its section's, or 0. */
static int main_line_of(const struct loader *ld, const char *key)
{
	size_t idx;

	if (find_key(key, &idx) && ld->main_key_line[idx])
		return abs(ld->main_key_line[idx]);
	return ld->main_line;
}

/* A TLS file that is set must be readable: --check says so, naming its line. */
static void check_tls_file(struct loader *ld, const char *key, const char *path)
{
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return;
	f = fopen(path, "r");
	if (f == NULL) {
		ld_error(ld, main_line_of(ld, key), "could not read %s \"%s\": %s", key, path,
			 strerror(errno));
		return;
	}
	fclose(f);
}

static bool is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The TLS keys that only make sense together. */
static void check_tls(struct loader *ld)
{
	const struct config *cfg = ld->cfg;

	if (cfg->client_tls_sslmode != SSLMODE_DISABLE &&
	    (!is_set(cfg->client_tls_cert_file) || !is_set(cfg->client_tls_key_file)))
		ld_error(ld, main_line_of(ld, "client_tls_sslmode"),
			 "client_tls_sslmode %s needs client_tls_cert_file and client_tls_key_file",
			 tls_sslmode_name(cfg->client_tls_sslmode));
	if (cfg->client_tls_sslmode >= SSLMODE_VERIFY_CA && !is_set(cfg->client_tls_ca_file))
		ld_error(ld, main_line_of(ld, "client_tls_sslmode"),
			 "client_tls_sslmode %s needs client_tls_ca_file to verify client certificates",
			 tls_sslmode_name(cfg->client_tls_sslmode));
	if (is_set(cfg->client_tls_cert_file) != is_set(cfg->client_tls_key_file))
		ld_error(ld,
			 main_line_of(ld, is_set(cfg->client_tls_cert_file) ? "client_tls_cert_file"
									    : "client_tls_key_file"),
			 "client_tls_cert_file and client_tls_key_file must be set together");
	if (is_set(cfg->server_tls_cert_file) != is_set(cfg->server_tls_key_file))
		ld_error(ld,
			 main_line_of(ld, is_set(cfg->server_tls_cert_file) ? "server_tls_cert_file"
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
static void ld_finish(struct loader *ld)
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
			set_string(paths[i], resolve_path(ld, cfg->dir, *paths[i]));
	}
	check_tls(ld);
	cfg->defaults.pool_size = cfg->default_pool_size;
	cfg->defaults.pool_mode = cfg->pool_mode;
	cfg->auth_file_line = main_line_of(ld, "auth_file");

	if (cfg->listen_port == cfg->admin_port)
		ld_error(ld, main_line_of(ld, "admin_port"),
			 "admin_port and listen_port must differ (both are %d)", cfg->admin_port);
	if (cfg->metrics_port != 0 &&
	    (cfg->metrics_port == cfg->listen_port || cfg->metrics_port == cfg->admin_port))
		ld_error(ld, main_line_of(ld, "metrics_port"),
			 "metrics_port must differ from listen_port and admin_port (it is %d)",
			 cfg->metrics_port);
	if (cfg->ndbs == 0 && ld->errs->count == ld->errs_before)
		ld_error(ld, 0, "no database is configured: add a [database \"name\"] section");

	for (size_t i = 0; i < cfg->ndbs; i++) {
		struct db_config *db = &cfg->dbs[i];
		const struct db_state *st = &ld->dbst[i];

		for (size_t j = 0; j < NKEYS; j++) {
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
			ld_error(ld, db->line, "database \"%s\" has no source", db->name);
		if (db->target == NULL && key_line(ld, i, "target") == 0)
			ld_error(ld, db->line, "database \"%s\" has no target", db->name);
		if (db->d.lag_method == LAG_LSN && db->replication_slot == NULL &&
		    key_line(ld, i, "replication_slot") >= 0 && key_line(ld, i, "lag_method") >= 0)
			ld_error(ld, db->line,
				 "database \"%s\" uses lag_method lsn but sets no replication_slot",
				 db->name);
	}
}

/*
 * Puts the errors of this load in line order (stable; those tied to no line
 * last), since the checks after parsing add theirs at the end.
 */
void config_errors_sort(struct config_errors *errs, size_t from)
{
	for (size_t i = from + 1; i < errs->count; i++) {
		struct config_error e = errs->items[i];
		unsigned key = (unsigned)e.line - 1; /* line 0 wraps to the end */
		size_t j = i;

		while (j > from && (unsigned)errs->items[j - 1].line - 1 > key) {
			errs->items[j] = errs->items[j - 1];
			j--;
		}
		errs->items[j] = e;
	}
}

/* ---------------------------------------------------------------------- */
/* Public interface                                                       */
/* ---------------------------------------------------------------------- */

/* A config holding every default; NULL when out of memory. */
static struct config *config_new(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
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
	cfg->client_login_timeout_ms = 60 * 1000;
	cfg->server_connect_timeout_ms = 15 * 1000;
	cfg->shutdown_timeout_ms = 30 * 1000;
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
	    !cfg->defaults.control_user || !cfg->defaults.sequence_sync ||
	    !cfg->defaults.marker_table || !cfg->client_tls_cert_file ||
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
	struct loader ld;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.errs = errs;
	ld.errs_before = errs->count;
	ld.path = path;
	ld.cfg = config_new();
	if (ld.cfg == NULL) {
		ld_error(&ld, 0, "out of memory");
		return NULL;
	}
	if (!set_file_path(ld.cfg, path)) {
		ld_error(&ld, 0, "could not resolve the path of the configuration file: %s",
			 strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}
	ld.fp = fopen(path, "r");
	if (ld.fp == NULL) {
		ld_error(&ld, 0, "could not open configuration file: %s", strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}

	rc = ini_parse_stream(ld_reader, &ld, ld_handler, &ld);
	if (ld.read_errno)
		ld_error(&ld, 0, "could not read configuration file: %s", strerror(ld.read_errno));
	else if (rc > 0) /* a line inih rejected although the reader let it through */
		ld_error(&ld, rc, "syntax error");
	else if (rc < 0)
		ld.oom = true;
	fclose(ld.fp);
	free(ld.buf);
	free(ld.long_value);

	ld_finish(&ld);
	free(ld.dbst);
	if (ld.oom)
		ld_error(&ld, 0, "out of memory");
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
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->ndbs; i++) {
		struct db_config *db = &cfg->dbs[i];

		free(db->name);
		free(db->source);
		free(db->target);
		free(db->replication_slot);
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
	free(cfg->metrics_addr);
	free(cfg->log_file);
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

		trim_span(&item, &len);
		if (len == ulen && memcmp(item, user, len) == 0)
			return true;
		if (comma == NULL)
			return false;
		p = comma + 1;
	}
}

void config_dump(const struct config *cfg,
		 void (*emit)(void *arg, const char *key, const char *value), void *arg)
{
	char buf[64];

	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *field, *value = buf;

		if (k->main_off == NO_OFFSET)
			continue;
		field = (const char *)cfg + k->main_off;
		switch (k->type) {
		case KT_INT:
		case KT_PORT:
			snprintf(buf, sizeof(buf), "%d", *(const int *)field);
			break;
		case KT_INT64:
			snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)field);
			break;
		case KT_DURATION:
			format_duration(buf, sizeof(buf), *(const int64_t *)field);
			break;
		case KT_SIZE:
			format_size(buf, sizeof(buf), *(const int64_t *)field);
			break;
		case KT_POOL_MODE:
			value = config_pool_mode_name(*(const enum pool_mode *)field);
			break;
		case KT_AUTH_TYPE:
			value = config_auth_type_name(*(const enum auth_type *)field);
			break;
		case KT_LAG_METHOD:
			value = config_lag_method_name(*(const enum lag_method *)field);
			break;
		case KT_SSLMODE:
			value = tls_sslmode_name(*(const enum tls_sslmode *)field);
			break;
		default:
			value = *(char *const *)field;
			if (value == NULL)
				value = "";
			break;
		}
		emit(arg, k->name, value);
	}
}

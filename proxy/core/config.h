/*
 * config.h - pgcutover's configuration: one struct config, loaded from the
 * INI file by inih and swapped whole on reload.
 *
 * Loading never stops at the first problem: every error is collected with its
 * line number so that `pgcutover --check` can print them all.  A config that
 * has any error is never put in force.
 */
#ifndef PGCUTOVER_CONFIG_H
#define PGCUTOVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/io/tls.h"

enum pool_mode {
	POOL_SESSION = 0,
	POOL_TRANSACTION = 1,
};

enum auth_type {
	AUTH_TRUST = 0,
	AUTH_MD5 = 1,
	AUTH_SCRAM = 2,
};

/*
 * Default *_tls_ciphers: OpenSSL's strong suites without anonymous key
 * exchange (PostgreSQL's ssl_ciphers without MEDIUM).  TLS 1.3 suites are
 * OpenSSL's own defaults, all of them AEAD, and not affected by this list.
 */
#define CONFIG_TLS_DEFAULT_CIPHERS "HIGH:!aNULL"

enum lag_method {
	LAG_LSN = 0,
	LAG_MARKER = 1,
	LAG_NONE = 2,
};

/* What a database does with statements that change the schema (docs/validation.md). */
enum ddl_mode {
	DDL_PASS = 0,  /* recorded in SHOW DDL and run */
	DDL_BLOCK = 1, /* recorded and refused with 55000 while routed to the source */
};

/*
 * Settings that live in [pgcutover] as defaults and may be overridden in each
 * [database "name"] section.  Durations are in milliseconds, sizes in bytes.
 */
struct db_defaults {
	char *control_user;       /* login used for lag, sequence and check queries */
	int64_t drain_timeout_ms; /* how long a switch waits for open transactions */
	int64_t lag_timeout_ms;   /* how long a switch waits for replication */
	int64_t max_switch_lag;   /* bytes; refuse to start a switch above it */
	enum lag_method lag_method;
	char *sequence_sync;     /* "all", "none" or a comma list of schema.sequence */
	int64_t sequence_margin; /* added to each source value when set on the target */
	char *marker_table;      /* lag_method=marker: table to insert markers into */
	int pool_size;           /* server connections per (database, user) */
	enum pool_mode pool_mode;
	/*
	 * Limits (docs/security.md, "Limits and timeouts"); 0 = off for each.
	 * A client waiting for a server longer than query_wait_timeout_ms is
	 * closed (time held by PAUSE or SWITCH does not count); one idle inside
	 * a transaction longer than idle_transaction_timeout_ms is closed and
	 * its transaction rolled back; max_db_connections bounds the server
	 * connections of the database across all its pools.
	 */
	int64_t query_wait_timeout_ms;
	int64_t idle_transaction_timeout_ms;
	int max_db_connections;
	/*
	 * A switch fences the side it leaves (its application roles read-only
	 * there, their other sessions ended) and lifts any fence on the side it
	 * goes to (docs/cutover.md, "Fencing").
	 */
	bool fence;
	/*
	 * Validation (docs/validation.md): tables CHECK and VERIFY leave out
	 * ("schema.table" or "schema.*", comma list; "" = none), the queries
	 * VERIFY runs at once per side, and what a SWITCH re-checks in its pause.
	 */
	char *ignore_tables;
	int verify_jobs;
	bool switch_verify;       /* re-check what the last VERIFY left open, in the pause */
	int64_t verify_budget_ms; /* ... within this much of the pause */
	bool switch_verify_abort; /* unchecked when the budget runs out: abort (else proceed) */
	/*
	 * lag_method lsn with PostgreSQL logical replication: a switch prepares
	 * and starts replication from the new side back to the old one, so a
	 * switch back loses nothing (docs/cutover.md, "Reverse replication").
	 */
	bool reverse_replication;
	/*
	 * Shadow reads (docs/validation.md): the fraction of read-only
	 * transactions replayed on the target and compared, and how many
	 * sampled transactions may be held at once (more are dropped).
	 */
	double shadow;
	int shadow_queue;
	enum ddl_mode ddl; /* schema changes while routed to the source */
};

/* One [database "name"] section. */
struct db_config {
	char *name;             /* the name clients put in dbname */
	char *source;           /* libpq key=value conninfo of the source */
	char *target;           /* libpq key=value conninfo of the target */
	char *replication_slot; /* lag_method=lsn: slot on the source feeding the target; NULL when unset */
	char *user;             /* optional: log in to backends as this user ...; NULL when unset */
	char *password; /* ... with this password, instead of the client's; NULL when unset */
	/* the forward subscription on the target; NULL: the one whose slot is replication_slot */
	char *subscription;
	/*
	 * reverse_replication: the conninfo the old side's server uses to reach
	 * the new side; NULL: the new side's source/target with control_user
	 */
	char *reverse_connection;
	struct db_defaults d; /* the defaults with this section's overrides applied */
	int line;             /* line of the section header, for messages */
	int source_line;      /* line of its source = (the header's when unset), ... */
	int target_line;      /* ... and of target =: checks made later cite them */
};

struct config {
	/*
	 * References: the runtime holds one on the config in force; a database
	 * holds one on the config its section lives in, and a switch on the
	 * config it started with, so that a reload never changes a switch under
	 * it.  config_free() drops one.
	 */
	int refs;
	char *path; /* absolute path of the file loaded */
	char *dir;  /* its directory: relative paths are relative to it */

	char *listen_addr; /* comma list; "*" = all interfaces */
	int listen_port;
	char *unix_socket_dir; /* "" = no unix socket */
	char *admin_addr;
	int admin_port;
	char *admin_users; /* comma list */
	enum auth_type auth_type;
	char *auth_file; /* resolved to an absolute path */
	enum pool_mode pool_mode;
	int max_client_conn;
	int default_pool_size;
	char *state_dir;        /* resolved to an absolute path */
	char *fleet;            /* the fleet database's conninfo; NULL: a single instance */
	char *instance_name;    /* this instance in the fleet; NULL: <hostname>:<listen_port> */
	int64_t fleet_lease_ms; /* a heartbeat or a coordinator's lease older than this is dead */
	char *metrics_addr;
	int metrics_port;                  /* 0 = off */
	char *log_file;                    /* "" = stderr; resolved to an absolute path */
	bool syslog;                       /* every log line also goes to syslog */
	char *syslog_ident;                /* the program name syslog shows */
	char *syslog_facility;             /* its facility, lower case: daemon, local0... */
	int64_t client_login_timeout_ms;   /* a client must finish logging in within this */
	int64_t server_connect_timeout_ms; /* TCP connect + login to a backend */
	int64_t shutdown_timeout_ms;       /* SIGTERM: how long clients may finish */
	int64_t server_idle_timeout_ms; /* close pooled server connections idle this long; 0 = never */
	int64_t max_packet_size;        /* largest message accepted from either side */
	int64_t conn_buffer_size;       /* per-direction output limit before backpressure */
	/*
	 * Transaction pooling: named prepared statements kept per server
	 * connection (least recently used first out); 0 passes them through
	 * untouched, as PgBouncer before 1.21 did.
	 */
	int max_prepared_statements;

	/* TLS facing clients (and the admin console); files "" = unset, resolved to absolute paths */
	enum tls_sslmode client_tls_sslmode;
	char *client_tls_cert_file; /* our certificate (chain) shown to clients */
	char *client_tls_key_file;  /* its private key */
	char *client_tls_ca_file;   /* CAs that sign client certificates (verify-ca/full) */
	char *client_tls_protocols; /* normalised list, "tlsv1.2,tlsv1.3" */
	char *client_tls_ciphers;   /* OpenSSL cipher list for TLS 1.2 and below */
	/* TLS facing servers; a database's conninfo sslmode overrides the mode */
	enum tls_sslmode server_tls_sslmode;
	char *server_tls_ca_file;   /* CAs that sign server certificates; "" = system store */
	char *server_tls_cert_file; /* a client certificate to present to servers, optional */
	char *server_tls_key_file;  /* its private key */
	char *server_tls_protocols;
	char *server_tls_ciphers;
	int64_t server_login_retry_ms; /* after a connection error, wait this long before the next */
	int64_t client_message_timeout_ms; /* a message may stay incomplete this long with no byte; 0 = off */
	int max_user_connections; /* server connections per user across databases; 0 = unlimited */

	struct db_defaults defaults; /* [pgcutover] values of the overridable keys */
	int auth_file_line;          /* line of auth_file = (or of [pgcutover]), for messages */

	struct db_config *dbs;
	size_t ndbs;
};

/* One problem found while loading. */
struct config_error {
	int line; /* 0 when not tied to a line */
	char *message;
};

struct config_errors {
	struct config_error *items;
	size_t count;
};

/*
 * Load and validate 'path'.  Returns a new config, or NULL with every problem
 * appended to 'errs' (each "path:line: message").  Never exits.
 *
 * 'errs' must be zero-initialised (or hold earlier errors, which are kept);
 * release it with config_errors_free() whatever the result.  Paths in the
 * returned config are absolute; every string is malloc'd and owned by it.
 */
struct config *config_load(const char *path, struct config_errors *errs);
/*
 * The same, but a config with errors is returned too (NULL only when the
 * file cannot be read, or out of memory), so that the checks other modules
 * make (connection strings, auth_file) can still report theirs: --check
 * prints every error.  Such a config must never be put in force.
 */
struct config *config_load_keep(const char *path, struct config_errors *errs);
/* Take one more reference (see struct config.refs); returns cfg. */
struct config *config_ref(struct config *cfg);
/* Drop one reference; the last frees it.  NULL is fine. */
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);
/* Append "path:line: message" (line 0: "path: message"); false when out of memory. */
bool config_errors_add(struct config_errors *errs, const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), warn_unused_result));
/* Put errors[from..] in line order (stable; those tied to no line last). */
void config_errors_sort(struct config_errors *errs, size_t from);

/* Lookup by the name clients use; NULL when there is no such section. */
const struct db_config *config_find_db(const struct config *cfg, const char *name);

/* True when 'user' is in the comma list admin_users. */
bool config_is_admin(const struct config *cfg, const char *user);

/* Parse "10s", "250ms", "2min", "1h", plain number = seconds. */
bool config_parse_duration(const char *s, int64_t *out_ms);
/* Parse "64MB", "512kB", "1GB", plain number = bytes. */
bool config_parse_size(const char *s, int64_t *out_bytes);
/* Parse on/off, true/false, yes/no, 1/0 (case-insensitive), as PostgreSQL reads a boolean. */
bool config_parse_bool(const char *s, bool *out);

/* Human-readable name of an enum value, for SHOW CONFIG and logs. */
const char *config_pool_mode_name(enum pool_mode m);
const char *config_auth_type_name(enum auth_type t);
const char *config_lag_method_name(enum lag_method m);
const char *config_ddl_mode_name(enum ddl_mode m);

/*
 * Calls emit(arg, key, value) once for each [pgcutover] key, in the order of
 * the documentation, with its value in force as text: durations as "10s" or
 * "250ms", sizes as "64MB" or plain bytes, enums by name, paths resolved.
 * For SHOW CONFIG; 'value' is only valid during the call.
 */
void config_dump(const struct config *cfg,
		 void (*emit)(void *arg, const char *key, const char *value), void *arg);

#endif /* PGCUTOVER_CONFIG_H */

/*
 * admin_cmd.h - parsing of admin console commands.
 *
 * Pure string handling (no I/O), so it can be unit-tested and fuzzed alone.
 * Commands are case-insensitive words, one per query, with an optional
 * trailing semicolon; arguments are identifiers (optionally double-quoted).
 */
#ifndef PGCUTOVER_ADMIN_CMD_H
#define PGCUTOVER_ADMIN_CMD_H

#include <stdbool.h>
#include <stddef.h>

enum admin_cmd_kind {
	ADMIN_CMD_EMPTY, /* an empty query: answered with EmptyQueryResponse */
	ADMIN_CMD_SHOW_HELP,
	ADMIN_CMD_SHOW_VERSION,
	ADMIN_CMD_SHOW_DATABASES,
	ADMIN_CMD_SHOW_CLIENTS,
	ADMIN_CMD_SHOW_SERVERS,
	ADMIN_CMD_SHOW_POOLS,
	ADMIN_CMD_SHOW_STATS,
	ADMIN_CMD_SHOW_CONFIG,
	ADMIN_CMD_RELOAD,
	ADMIN_CMD_SHUTDOWN,
	ADMIN_CMD_KILL, /* KILL db */
	ADMIN_CMD_SHOW_SWITCHES,
	ADMIN_CMD_SHOW_LAG,          /* SHOW LAG [db] */
	ADMIN_CMD_SHOW_SEQUENCES,    /* SHOW SEQUENCES db */
	ADMIN_CMD_PAUSE,             /* PAUSE [db] */
	ADMIN_CMD_RESUME,            /* RESUME [db] */
	ADMIN_CMD_SWITCH,            /* SWITCH db [TO target|source] [DRY RUN] */
	ADMIN_CMD_ABORT,             /* ABORT db */
	ADMIN_CMD_FENCE,             /* FENCE db source|target */
	ADMIN_CMD_UNFENCE,           /* UNFENCE db source|target */
	ADMIN_CMD_SHOW_REPLICATION,  /* SHOW REPLICATION [db] */
	ADMIN_CMD_FINISH,            /* FINISH db */
	ADMIN_CMD_SHOW_LISTS,        /* PgBouncer's counts of its lists, for its exporters */
	ADMIN_CMD_SHOW_FLEET,        /* SHOW FLEET */
	ADMIN_CMD_SHOW_SHADOW,       /* SHOW SHADOW [db] */
	ADMIN_CMD_SHOW_SHADOW_DIFFS, /* SHOW SHADOW DIFFS db */
	ADMIN_CMD_SHOW_DDL,          /* SHOW DDL [db] */
	ADMIN_CMD_CHECK,             /* CHECK db [TO source|target] */
	ADMIN_CMD_VERIFY,            /* VERIFY db [table, ...] */
	ADMIN_CMD_VERIFY_STOP,       /* VERIFY db STOP */
	ADMIN_CMD_SHOW_VERIFY,       /* SHOW VERIFY [db] */
	ADMIN_CMD_SHOW_VERIFY_DIFFS, /* SHOW VERIFY DIFFS db */
};
/* The last kind: a new command is added before it, or becomes it. */
#define ADMIN_CMD_LAST ADMIN_CMD_SHOW_VERIFY_DIFFS

#define ADMIN_CMD_ARG_MAX 64
/* Tables one VERIFY may name. */
#define ADMIN_CMD_TABLES_MAX 32

/* A table VERIFY names: schema "" when not qualified. */
struct admin_cmd_table {
	char schema[ADMIN_CMD_ARG_MAX];
	char name[ADMIN_CMD_ARG_MAX];
};

struct admin_cmd {
	enum admin_cmd_kind kind;
	char db[ADMIN_CMD_ARG_MAX]; /* database argument, "" when absent */
	bool to_source;             /* SWITCH ... TO source (default: TO target); FENCE db source */
	bool dry_run;               /* SWITCH ... DRY RUN */
	bool force;      /* SWITCH ... FORCE: even when the switch back would lose writes */
	bool side_given; /* CHECK ... TO: a side was named (to_source says which) */
	int ntables;     /* VERIFY db t1, t2: the tables named (0: every table) */
	struct admin_cmd_table tables[ADMIN_CMD_TABLES_MAX];
};

/*
 * Parse one query string.  On failure returns false and writes a message
 * for the ErrorResponse (42601) into errbuf.
 */
bool admin_cmd_parse(const char *query, size_t len, struct admin_cmd *out, char *errbuf,
		     size_t errlen) __attribute__((warn_unused_result));

/* The help text rows: command, description; NULL-terminated. */
extern const char *const admin_cmd_help[][2];

#endif /* PGCUTOVER_ADMIN_CMD_H */

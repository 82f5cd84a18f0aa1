/*
 * session.h - what a client's server-side session holds, so that another
 * server connection can be made to hold the same.
 *
 * pgcutover does not parse SQL.  It looks at the first word of each
 * statement a client sends (session_classify()); when that word says the
 * statement may change session state (SET, RESET, LISTEN, PREPARE, CREATE,
 * DO...), the session is marked dirty, and at the next transaction boundary
 * pgcutover asks the server what the session now holds (SESSION_CAPTURE_*:
 * one query over pg_settings, pg_listening_channels(), pg_prepared_statements
 * and what cannot move).  Because the server answers after COMMIT or
 * ROLLBACK, only committed state is ever recorded: a SET in a rolled-back
 * transaction, or SET LOCAL, never is.  Named prepared statements are tracked
 * from the protocol messages themselves (prepared.h), not by asking.
 *
 * Restoring is the reverse: session_restore_sql() writes the settings (with
 * set_config), the LISTENs and the SQL-level PREPAREs as one query that runs
 * on the new server before the client's next message; protocol-level
 * statements are prepared again lazily, when the client first uses one.
 */
#ifndef PGCUTOVER_SESSION_H
#define PGCUTOVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/params.h"
#include "proxy/prepared.h"

/* What running a statement may do to the session, judged by its first words. */
enum session_kind {
	SK_PLAIN = 0,  /* nothing a later server would miss (SELECT, INSERT, BEGIN, COMMIT...) */
	SK_STATE,      /* may change settings, LISTENs, SQL prepared statements, or create
			  state that cannot move (SET, LISTEN, PREPARE, CREATE, DO, DECLARE...) */
	SK_DEALLOCATE, /* DEALLOCATE: forgets prepared statements */
	SK_DISCARD,    /* DISCARD: may forget everything */
};

/* Classify a statement from the start of its text (a prefix is enough). */
enum session_kind session_classify(const uint8_t *sql, size_t len);

/*
 * "DEALLOCATE [PREPARE] name" or "DEALLOCATE [PREPARE] ALL", alone (a
 * trailing semicolon allowed): *all says which, name gets the statement
 * name as the server would see it.  False for anything else.
 */
bool session_parse_deallocate(const uint8_t *sql, size_t len, bool *all, char *name, size_t namelen);
/* "DISCARD ALL", alone. */
bool session_is_discard_all(const uint8_t *sql, size_t len);

/* What a capture found the session holds; allocated only when it holds any. */
struct session_state {
	struct params settings; /* committed session settings: name -> value as pg_settings shows it */
	struct params listens;   /* channels LISTENed (the values are empty) */
	struct params sql_stmts; /* SQL-level PREPAREd statements: name -> the PREPARE text */
};

struct session {
	struct session_state *st; /* NULL while it holds nothing: most sessions, at no cost */
	struct ps_map stmts;      /* protocol-level named statements (Parse) */
	uint64_t id;              /* unique per client: whose settings a server carries */
	uint32_t gen;             /* bumped whenever settings change */
	bool dirty;               /* since the last capture a statement may have changed state */
	bool restore;             /* session pooling: the next server must first get this state */
	char *blocked;   /* what the last capture found that cannot move; NULL if nothing */
	char *untracked; /* why pgcutover lost track (a Parse too large to hold); NULL if not */
};

/* The state, or an empty one (never NULL, never to be changed). */
extern const struct session_state session_nothing;
static inline const struct session_state *session_st(const struct session *ss)
{
	return ss->st ? ss->st : &session_nothing;
}

void session_init(struct session *ss);
void session_free(struct session *ss);

/* Settings, LISTENs or SQL statements to re-establish (session_restore_sql() is non-empty). */
bool session_has_state(const struct session *ss);
/* Forget settings, LISTENs and SQL statements (DISCARD ALL). */
void session_reset(struct session *ss);

/*
 * The capture queries.  FULL also reports what cannot move and the names of
 * protocol-level statements (session pooling); SETTINGS the settings, and
 * the LISTENs and SQL-level statements the transaction left (transaction
 * pooling, where settings follow a client and LISTENs go to the pool's
 * listener: see session_cleanup_sql and listen_client.h).
 */
extern const char SESSION_CAPTURE_FULL[];
extern const char SESSION_CAPTURE_SETTINGS[];

/*
 * Apply a capture's rows (the first column of each, '\n'-joined, as
 * server_internal_query() delivers them) to the session.  'full' says which
 * query ran.  Protocol-level names the server no longer has are dropped
 * from ss->stmts (a DEALLOCATE or DISCARD did it); names the server has that
 * pgcutover never saw make the session blocked.  False when out of memory.
 */
bool session_apply_capture(struct session *ss, const char *rows, bool full)
	__attribute__((warn_unused_result));

/*
 * Transaction pooling, after a SETTINGS capture: the query that drops the
 * LISTENs ('L' rows: once the listener has them) and SQL-level statements
 * ('X' rows) the client's transaction left on the server, so that they
 * never reach its next client (its notifications, statements it could
 * EXECUTE, names its PREPARE would find taken).  NULL when there are none
 * (nearly always) or out of memory (*oom tells which).
 */
char *session_cleanup_sql(const char *rows, bool *oom);

/*
 * The query that gives a new server this session's settings, LISTENs and
 * SQL-level statements, prefixed with a reset of whatever another client
 * left there when 'reset' (transaction pooling).  Malloc'd; NULL when there
 * is nothing to run or out of memory (*oom tells which).
 */
char *session_restore_sql(const struct session *ss, bool reset, bool *oom);

struct pq_buf;
/*
 * Append the session's settings as one "SELECT pg_catalog.set_config(...),
 * ...; " (nothing when it has none): the restore query's part, also used by
 * shadow reads to give a replay the session's settings.
 */
void session_put_settings(struct pq_buf *b, const struct session_state *st);

#endif /* PGCUTOVER_SESSION_H */

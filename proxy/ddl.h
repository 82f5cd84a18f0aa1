/*
 * ddl.h - schema changes seen during the move (ddl.c): every statement that
 * changes the schema of a database is recorded (SHOW DDL), and with
 * ddl = block, while the database is routed to its source, refused with
 * 55000 by the server itself, so that the session stays consistent.
 *
 * Logical replication does not carry schema changes: a migration that runs
 * on the source during the move breaks the replication of the tables it
 * touches, or leaves the target's schema behind.  pgcutover looks at the
 * text of every Query and Parse (protocol/sqlclass.h says what it can and
 * cannot see).  A refused statement is replaced, before the server sees it,
 * by a DO block that raises the error: the server answers it in order, an
 * open transaction is aborted as by any error, and in the extended protocol
 * the server skips to the Sync.
 */
#ifndef PGCUTOVER_DDL_H
#define PGCUTOVER_DDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proxy/relay.h"

struct client;
struct evbuffer;

/* The schema changes SHOW DDL keeps (the oldest go first). */
#define DDL_LOG_MAX 1000
/* Bytes of a statement kept in the log (a longer one ends in "..."). */
#define DDL_STATEMENT_MAX 512
/* Bytes of a Query or Parse looked at: a statement further in is not seen. */
#define DDL_SCAN_MAX (64 * 1024)
/* Temporary objects remembered per session (their DROP is not a schema change). */
#define DDL_TEMPS_MAX 32

/* One schema change seen. */
struct ddl_entry {
	struct timespec when; /* wall clock */
	char database[64];
	char user[64];
	char what[64];                         /* "CREATE TABLE", "DO (ALTER TABLE)" */
	char statement[DDL_STATEMENT_MAX + 4]; /* its text, cut with "..." */
	bool blocked;
};

/* What a session keeps for the schema checks; allocated on first need. */
struct ddl_client {
	char temps[DDL_TEMPS_MAX][64]; /* its temporary tables, views and sequences */
	unsigned ntemps;               /* used entries (the oldest is overwritten when full) */
	unsigned next;                 /* where the next one goes */
	char what[64];                 /* the change the message being refused makes */
};

/*
 * A client's Query or Parse at the head of its direction (client_forward.c):
 * RELAY_PASS, or RELAY_STOP with c->stop = STOP_NEED_MORE (the statement
 * text must arrive first) or STOP_DDL (refused: ddl_refuse_head() rewrites
 * it).  Records what it finds.
 */
enum relay_verdict ddl_on_header(struct client *c, struct evbuffer *in, size_t off, size_t avail,
				 uint8_t type, uint32_t len);

/*
 * The message at the head of c's input was refused: replace it by one that
 * makes the server raise 55000.  False when the client was disconnected
 * (out of memory).
 */
bool ddl_refuse_head(struct client *c) __attribute__((warn_unused_result));

/* The client is freed: its books go. */
void ddl_client_free(struct client *c);

/*
 * Whether c's session created temporary tables, views or sequences (seen
 * in its statements, in either pool mode): shadow reads then leave it
 * alone, since a replay connection does not have them.
 */
bool ddl_client_has_temps(const struct client *c);

/* The log, oldest first: how many entries, and the i-th. */
size_t ddl_log_count(void);
const struct ddl_entry *ddl_log_get(size_t i);
/* Free the log (exit). */
void ddl_log_free(void);

#endif /* PGCUTOVER_DDL_H */

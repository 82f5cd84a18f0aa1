/*
 * resultset.h - what the admin console sends: result sets (a row
 * description, rows, the "SHOW" tag), command tags, errors and the one-byte
 * replies of the extended protocol.  Internal to admin/.
 *
 * Everything goes out through admin_send(), which applies the rules of an
 * Execute (see there).  A reply that cannot be sent closes the session
 * ("could not send"): the caller finds the client in CL_CLOSING.
 */
#ifndef PGCUTOVER_ADMIN_RESULTSET_H
#define PGCUTOVER_ADMIN_RESULTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/pq_build.h"

struct client;

/* Columns of a result set, from its static array of names. */
#define ADMIN_NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A result set being built: the row description, rows, then the tag. */
struct admin_rs {
	struct pq_buf b; /* the messages so far, sent whole by admin_rs_send() */
	int ncols;       /* columns of every row */
	int nrows;       /* rows added so far */
};

/* Start a result set of ncols columns named 'names' (its RowDescription). */
void admin_rs_begin(struct admin_rs *rs, int ncols, const char *const *names);
/* One row: rs->ncols values, NULL for SQL NULL. */
void admin_rs_row(struct admin_rs *rs, const char *const *values);
/* Finish with "SHOW" (PgBouncer's tag for its SHOW commands), send, free the buffer. */
void admin_rs_send(struct client *c, struct admin_rs *rs);
/* Free a result set that is not going to be sent. */
void admin_rs_free(struct admin_rs *rs);

/*
 * Send len bytes of well-formed messages of our own.  While an Execute runs
 * a command, its RowDescription is dropped (the extended protocol sends it
 * at Describe) and an ErrorResponse starts the state that ignores messages
 * until Sync.  False when the bytes could not be queued.
 */
bool admin_send(struct client *c, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));

/* Send the messages b holds and free it; a failure to build or to send closes the session. */
void admin_send_buf(struct client *c, struct pq_buf *b);
/* CommandComplete with 'tag' ("RELOAD", "PAUSE", ...). */
void admin_send_tag(struct client *c, const char *tag);
/* ErrorResponse (severity ERROR); hint may be NULL.  The session goes on. */
void admin_send_error(struct client *c, const char *sqlstate, const char *msg, const char *hint);
/* The error of a command that names a database there is none of. */
void admin_send_no_db(struct client *c, const char *name);
/* ReadyForQuery, idle (the console has no transactions). */
void admin_send_ready(struct client *c);
/* EmptyQueryResponse: the answer to an empty query. */
void admin_send_empty(struct client *c);
/* A one-byte reply without a body: ParseComplete, BindComplete, CloseComplete, NoData. */
void admin_send_bare(struct client *c, uint8_t type);

#endif /* PGCUTOVER_ADMIN_RESULTSET_H */

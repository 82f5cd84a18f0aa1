/*
 * console.h - internal to admin/: the admin console's session and what the
 * console's files call of each other.  Nothing outside admin/ includes it;
 * proxy/main.c knows the console through admin.h.
 *
 * The console's files, each with one job:
 *
 *   admin.c         start-up and exit of the admin layer (admin.h)
 *   console.c       the console as a kind of client: who may log in, the
 *                   welcome, the input loop, the end of each command
 *   console_ext.c   the extended query protocol (Parse, Bind, Execute, ...)
 *   resultset.c     what is sent: result sets, tags, errors
 *   commands.c      admin_run(): a parsed command to its handler; PAUSE,
 *                   RESUME, SWITCH, ABORT, RELOAD, SHUTDOWN
 *   show.c          the SHOW views answered at once, and KILL
 *   show_control.c  SHOW LAG and SHOW SEQUENCES: control connections, answered later
 *   admin_cmd.c     the command parser (pure, fuzzed)
 *   metrics.c       the Prometheus endpoint
 *
 * A command is answered either at once, inside admin_run(), or later (PAUSE
 * waits for the drain, SWITCH for the engine, SHOW LAG and SHOW SEQUENCES for
 * their control connections).  A command answered later marks the session
 * busy, so that the input loop reads nothing more, and calls admin_done()
 * once its reply is sent.
 */
#ifndef PGCUTOVER_ADMIN_CONSOLE_H
#define PGCUTOVER_ADMIN_CONSOLE_H

#include <stdbool.h>

#include "admin/console_ext.h"

struct client;
struct client_kind;

/* Admin queries are short; a longer message is refused. */
#define ADMIN_QUERY_MAX 8192

/* Per admin session (c->kind_data): whether a command is still being answered. */
struct admin_session {
	bool busy;            /* an asynchronous command runs: later messages wait */
	bool in_run;          /* inside admin_run(): a reply made now is finished by the caller */
	struct admin_ext ext; /* the extended protocol's statements, portals and flags */
};

/* The kind of client the admin port accepts (admin_client_kind() returns it). */
extern const struct client_kind admin_console_kind;

/* Whether an asynchronous command is being answered on this session. */
bool admin_busy(const struct client *c);
/* Mark an asynchronous command started (true) or over (false). */
void admin_set_busy(struct client *c, bool busy);

/*
 * A command has been answered: a Query ends with ReadyForQuery, an Execute
 * without (Sync sends it).
 */
void admin_command_end(struct client *c);

/*
 * The reply of a command answered later has been sent: the session is no
 * longer busy; unless admin_run() is still on the stack (whose caller ends
 * the command), end it and read the next message.
 */
void admin_done(struct client *c);

/* An asynchronous command failed: the error, then admin_done(). */
void admin_reply_error(struct client *c, const char *sqlstate, const char *msg, const char *hint);

#endif /* PGCUTOVER_ADMIN_CONSOLE_H */

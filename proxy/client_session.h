/*
 * client_session.h - what a client's server-side session holds, and moving
 * it to another server (client_session.c).
 */
#ifndef PGCUTOVER_CLIENT_SESSION_H
#define PGCUTOVER_CLIENT_SESSION_H

#include <stdbool.h>

struct client;

/*
 * A server was linked to a waiting client: send the welcome, or restore the
 * session's state on it and go on with the pending request.
 */
void client_server_ready(struct client *c);

/*
 * At a transaction boundary after a statement that may have changed session
 * state: ask the server what the session now holds (session.h).  False when
 * it could not start.
 */
bool client_capture(struct client *c) __attribute__((warn_unused_result));

/*
 * The server reported a changed setting where the statements did not show
 * one (set_config() in a SELECT, a function that runs SET): the session's
 * state is asked for at the boundary, as after a SET, so that in
 * transaction pooling it stays this client's.
 */
void client_param_changed(struct client *c);

/* "yes", or why the session could not move to another server now (SHOW CLIENTS). */
const char *client_movable(const struct client *c);

/*
 * Ask the client's server (at a boundary, database held) what session state
 * it holds; done() is called once c->move is MOVE_OK or MOVE_BLOCKED.  False
 * when the check could not start (then c->move is MOVE_BLOCKED).
 */
bool client_check_movable(struct client *c, void (*done)(struct client *c, void *arg), void *arg);
/* The query a deferred check waited for has ended: run the check now (server_internal.c). */
void client_check_deferred(struct client *c);

/*
 * Carry out the verdict after the route changed: a movable session leaves its
 * old server and gets one on the new side at its next transaction; a blocked
 * one is closed with a FATAL that says why.  Returns true when moved.
 */
bool client_apply_move(struct client *c);

/*
 * The session's server is on the side its database no longer routes to:
 * check the session and move it (a lazy move, at its next request).
 */
void client_relocate(struct client *c);

#endif /* PGCUTOVER_CLIENT_SESSION_H */

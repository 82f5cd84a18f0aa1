/*
 * cancel.h - cancel requests: the keys pgcutover hands its clients, and the
 * CancelRequests it forwards to servers (cancel.c).
 */
#ifndef PGCUTOVER_CANCEL_H
#define PGCUTOVER_CANCEL_H

#include <stdint.h>

struct client;
struct server;

/*
 * Give the client a BackendKeyData of our own (c->cancel_pid, c->cancel_key):
 * a random positive process ID and a random key.
 */
void cancel_register(struct client *c);
/* The client is told this process ID instead (its server's, in session pooling). */
void cancel_set_pid(struct client *c, uint32_t pid);
/* The client goes away: its key finds nobody any more. */
void cancel_unregister(struct client *c);
/* The client we gave this key to, or NULL. */
struct client *cancel_find(uint32_t pid, uint32_t key);

/*
 * A CancelRequest arrived on connection c (which carries nothing else):
 * forward it to the server of the client the key names, if it has one, and
 * close c.
 */
void cancel_request(struct client *c, uint32_t pid, uint32_t key);

#include <stdbool.h>

/*
 * Send a CancelRequest for this server's backend on a new connection.  The
 * connection 'requester' (a client's cancel connection, or NULL) is closed
 * once the server has closed this one, or it failed or timed out.  False
 * when nothing could be sent (requester untouched).
 */
bool cancel_send(struct server *s, struct client *requester) __attribute__((warn_unused_result));
/* A requester closed by itself: cancel_send() must not close it again. */
void cancel_forget_requester(struct client *c);

/* Free the cancel connections finished since the last call (the reaper). */
void cancel_reap(void);
/* At exit: free cancel requests whose server has not closed the connection yet. */
void cancel_free_all(void);

#endif /* PGCUTOVER_CANCEL_H */

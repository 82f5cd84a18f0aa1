/*
 * cancel.h - cancel requests: the keys pgcutover hands its clients, and the
 * CancelRequests it forwards to servers (cancel.c).
 */
#ifndef PGCUTOVER_CANCEL_H
#define PGCUTOVER_CANCEL_H

#include <stdint.h>

struct client;
struct server;

/* Give the client a random BackendKeyData of our own (c->cancel_pid, c->cancel_key). */
void cancel_register(struct client *c);
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

/* Send a CancelRequest for this server's backend on a new connection. */
void cancel_send(struct server *s);

/* Free the cancel connections finished since the last call (the reaper). */
void cancel_reap(void);
/* At exit: free cancel requests whose server has not closed the connection yet. */
void cancel_free_all(void);

#endif /* PGCUTOVER_CANCEL_H */

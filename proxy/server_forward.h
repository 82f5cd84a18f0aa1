/*
 * server_forward.h - a server's messages on their way to its client, and
 * its books of the requests sent to it (server_forward.c).
 */
#ifndef PGCUTOVER_SERVER_FORWARD_H
#define PGCUTOVER_SERVER_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/relay.h"

struct client;
struct evbuffer;
struct server;

/*
 * A request message (Query, Sync, Parse...) goes to this server: the
 * server's books (pending requests, an open extended-protocol sequence,
 * timings) and its database's query count.
 */
void server_count_request(struct server *s, uint8_t type);

/*
 * A NotificationResponse ('A') at 'off' of the server's input, 'avail' bytes
 * of it there, on its way to client c: one its own session sent gets the
 * process ID c was told.  RELAY_PASS, or RELAY_STOP to wait for that ID.
 */
enum relay_verdict server_own_notification(struct server *s, struct client *c, struct evbuffer *in,
					   size_t off, size_t avail, uint32_t len);

/* Forward what the server has sent to its client. */
void server_forward(struct server *s);

/*
 * Transaction pooling: the linked client's transaction is over; the server
 * goes back to the pool and the client waits for its next one.
 */
void server_txn_done(struct server *s);

#endif /* PGCUTOVER_SERVER_FORWARD_H */

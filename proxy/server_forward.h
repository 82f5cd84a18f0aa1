/*
 * server_forward.h - a server's messages on their way to its client, and
 * its books of the requests sent to it (server_forward.c).
 */
#ifndef PGCUTOVER_SERVER_FORWARD_H
#define PGCUTOVER_SERVER_FORWARD_H

#include <stdint.h>

struct server;

/*
 * A request message (Query, Sync, Parse...) goes to this server: the
 * server's books (pending requests, an open extended-protocol sequence,
 * timings) and its database's query count.
 */
void server_count_request(struct server *s, uint8_t type);

/* Forward what the server has sent to its client. */
void server_forward(struct server *s);

/*
 * Transaction pooling: the linked client's transaction is over; the server
 * goes back to the pool and the client waits for its next one.
 */
void server_txn_done(struct server *s);

#endif /* PGCUTOVER_SERVER_FORWARD_H */

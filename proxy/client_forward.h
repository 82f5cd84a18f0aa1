/*
 * client_forward.h - a client's messages on their way to its server
 * (client_forward.c).
 */
#ifndef PGCUTOVER_CLIENT_FORWARD_H
#define PGCUTOVER_CLIENT_FORWARD_H

struct client;

/* Forward what the client has sent to its server (also called on backpressure release). */
void client_forward(struct client *c);

/* An idle client (transaction pooling) has sent something: get it a server. */
void client_request_server(struct client *c);

/* Queue for a server now, with or without a request (a LISTEN session after a move). */
void client_wait_for_server(struct client *c);

#endif /* PGCUTOVER_CLIENT_FORWARD_H */

/*
 * track.h - the messages that create, use and drop named prepared
 * statements, on their way through.
 *
 * Client to server (track_client_message): a named Parse is remembered in
 * the client's statement map; in transaction pooling it is renamed to a
 * server-side name of pgcutover's own, or, when the server already has that
 * statement text, replaced by a Close of nothing whose CloseComplete becomes
 * the client's ParseComplete.  A Bind or Describe of a statement the current
 * server lacks is preceded by a Parse pgcutover injects (its ParseComplete is
 * swallowed), and in transaction pooling renamed.  DEALLOCATE and DISCARD ALL
 * are mirrored in the maps.
 *
 * The server's answers to all this are track_answer.h's.
 */
#ifndef PGCUTOVER_TRACK_H
#define PGCUTOVER_TRACK_H

#include <stdint.h>
#include <stddef.h>

#include "proxy/relay.h"

struct client;
struct server;
struct evbuffer;

enum track_result {
	TRACK_DONE,        /* handled: forwarding goes on */
	TRACK_WAIT,        /* more of the message must arrive first */
	TRACK_WAIT_SERVER, /* the server's answers to what went before must arrive first */
	TRACK_CLOSED,      /* the client was disconnected (an error it was told) */
};

/*
 * The message at the head of the client's input was stopped by
 * client_on_header() (STOP_REWRITE): write it (rewritten, or preceded by
 * what the server lacks) to the server's output, or arrange for it to be
 * forwarded as it is.  Accounts for it as a request (server_count_request).
 */
enum track_result track_client_message(struct client *c, struct server *s);

#endif /* PGCUTOVER_TRACK_H */

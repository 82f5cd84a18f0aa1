/*
 * track_answer.h - the server's answers to the prepared-statement messages
 * on their way back (track_answer.c): ParseComplete and CloseComplete are
 * matched, in order, with the queue of what was sent (prepared.h: struct
 * ps_queue); an ErrorResponse cancels what the server will now skip until
 * the next Sync.
 */
#ifndef PGCUTOVER_TRACK_ANSWER_H
#define PGCUTOVER_TRACK_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/relay.h"

struct evbuffer;
struct server;

/*
 * An answer from the server while statements are being tracked (psq not
 * empty): ParseComplete ('1'), CloseComplete ('3') or ErrorResponse ('E') at
 * offset 'off' of 'in', 'avail' bytes of it there.  RELAY_PASS, or RELAY_STOP
 * with s->swallow set when the message is pgcutover's own answer (with
 * s->answer set when the client gets a rewritten one instead), or RELAY_STOP
 * alone to wait for the rest of the message.
 */
enum relay_verdict track_server_answer(struct server *s, struct evbuffer *in, size_t off,
				       size_t avail, uint8_t type, uint32_t len);

/* A ReadyForQuery went to the client: the batch is over. */
void track_server_ready(struct server *s);

#endif /* PGCUTOVER_TRACK_ANSWER_H */

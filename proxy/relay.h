/*
 * relay.h - the forwarding loop shared by both directions.
 *
 * Bytes are moved from one connection's input to the other's output in
 * batches: message headers are read in place, a run of whole messages goes
 * over with one evbuffer_remove_buffer(), and a message larger than what has
 * arrived streams through by remembering how much of it is left.  Each
 * direction decides, per message header, whether to pass it, stop before it
 * (hold it, or wait for more of it) or stop right after it.
 */
#ifndef PGCUTOVER_RELAY_H
#define PGCUTOVER_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* A direction's decision about the message whose header was just read. */
enum relay_verdict {
	RELAY_PASS, /* forward it and go on */
	RELAY_STOP, /* leave it (and everything after it) in the input */
	RELAY_LAST, /* forward it, then stop */
};

/*
 * Called at each message header: 'off' is where the message starts in 'in',
 * 'avail' how many of its bytes (type byte included) have arrived, so that a
 * direction can read a small body in place (ReadyForQuery, ParameterStatus)
 * or ask to wait for it (RELAY_STOP).
 */
typedef enum relay_verdict (*relay_header_fn)(void *arg, struct evbuffer *in, size_t off,
					      size_t avail, uint8_t type, uint32_t len);

/* Why a batch ended. */
enum relay_end {
	RELAY_END_DRAINED,    /* everything complete was moved (maybe a partial header left) */
	RELAY_END_FULL,       /* the output reached its limit: stop reading this side */
	RELAY_END_STOPPED,    /* the direction said RELAY_STOP (type/len say at what) */
	RELAY_END_LAST,       /* the direction said RELAY_LAST (type/len say after what) */
	RELAY_END_BAD_LENGTH, /* a header declared a length below 4 or above the maximum */
};

struct relay_result {
	size_t moved; /* bytes moved to the output */
	enum relay_end end;
	uint8_t type; /* STOPPED, LAST, BAD_LENGTH: the message concerned */
	uint32_t len;
};

/*
 * Move messages from 'in' to 'out' until the input runs out, the output
 * holds 'limit' bytes, or the direction stops.  *msg_left carries the
 * unforwarded rest of a message across calls.
 */
void relay_forward(struct evbuffer *in, struct evbuffer *out, uint32_t *msg_left, size_t limit,
		   uint32_t max_len, relay_header_fn on_header, void *arg, struct relay_result *res);

#endif /* PGCUTOVER_RELAY_H */

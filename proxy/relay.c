/*
 * relay.c - the forwarding loop (see relay.h).
 *
 * This is the hot path: per message it costs one 5-byte copy of the header
 * and one call of the direction's header function; payload bytes are never
 * copied here, they move with the evbuffer chains.
 */
#include "proxy/relay.h"

#include <event2/buffer.h>

#include "protocol/pq.h"

void relay_forward(struct evbuffer *in, struct evbuffer *out, uint32_t *msg_left, size_t limit,
		   uint32_t max_len, relay_header_fn on_header, void *arg, struct relay_result *res)
{
	size_t avail = evbuffer_get_length(in), queued = evbuffer_get_length(out), batch = 0;

	res->end = RELAY_END_DRAINED;
	res->type = 0;
	res->len = 0;
	while (batch < avail) {
		uint8_t hdr[PQ_HEADER_SIZE], type;
		uint32_t len;
		struct evbuffer_ptr pos;
		enum relay_verdict v;

		if (queued + batch >= limit) {
			res->end = RELAY_END_FULL;
			break;
		}
		if (*msg_left > 0) {
			size_t n = avail - batch < *msg_left ? avail - batch : *msg_left;

			batch += n;
			*msg_left -= (uint32_t)n;
			continue;
		}
		if (avail - batch < PQ_HEADER_SIZE)
			break;
		evbuffer_ptr_set(in, &pos, batch, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, hdr, sizeof(hdr));
		if (pq_read_header(hdr, sizeof(hdr), &type, &len, max_len) != PQ_OK) {
			res->end = RELAY_END_BAD_LENGTH;
			res->type = type;
			res->len = len;
			break;
		}
		v = on_header(arg, in, batch, avail - batch, type, len);
		if (v == RELAY_STOP) {
			res->end = RELAY_END_STOPPED;
			res->type = type;
			res->len = len;
			break;
		}
		*msg_left = 1 + len;
		if (v == RELAY_LAST) {
			size_t n = avail - batch < *msg_left ? avail - batch : *msg_left;

			batch += n;
			*msg_left -= (uint32_t)n;
			res->end = RELAY_END_LAST;
			res->type = type;
			res->len = len;
			break;
		}
	}
	if (batch > 0)
		evbuffer_remove_buffer(in, out, batch);
	res->moved = batch;
}

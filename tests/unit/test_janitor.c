/*
 * test_janitor.c - janitor_client_mid_message(), the test behind
 * client_message_timeout: does a client's input end inside a message?
 *
 * A stream of messages is cut at every pair of points (x, y): the proxy has
 * forwarded the first x bytes (so the message containing x, if any, has
 * msg_left bytes to go) and y bytes have arrived.  The answer must be "mid
 * message" exactly when y is not a message boundary.
 */
#include "unit.h"

#include <event2/buffer.h>
#include <stdint.h>

#include "proxy/client.h"
#include "proxy/janitor.h"
#include "proxy/io/sock.h"

/* Query "select 1", Parse with an empty body, Sync: 14 + 5 + 5 bytes. */
static const uint8_t stream[] = {
	'Q', 0, 0,   0, 13, 's', 'e', 'l', 'e', 'c', 't', ' ',
	'1', 0, 'P', 0, 0,  0,   4,   'S', 0,   0,   0,   4,
};
static const size_t boundaries[] = {0, 14, 19, 24};

static bool is_boundary(size_t pos)
{
	for (size_t i = 0; i < sizeof(boundaries) / sizeof(boundaries[0]); i++)
		if (boundaries[i] == pos)
			return true;
	return false;
}

/*
 * msg_left after forwarding x bytes, or -1 when the forwarding code never
 * stops there (inside a header, which it reads whole before moving a byte).
 */
static long msg_left_at(size_t x)
{
	for (size_t i = 0; i + 1 < sizeof(boundaries) / sizeof(boundaries[0]); i++) {
		size_t start = boundaries[i], end = boundaries[i + 1];

		if (x == start)
			return 0;
		if (x > start && x < end)
			return x - start < 5 ? -1 : (long)(end - x);
	}
	return 0;
}

static bool client_init(struct client *c)
{
	memset(c, 0, sizeof(*c));
	return sock_init(&c->sock, -1, 1 << 16, NULL, NULL, NULL, NULL);
}

static void check_every_cut(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);

	for (size_t x = 0; x <= sizeof(stream); x++) {
		long left = msg_left_at(x);

		if (left < 0)
			continue;
		for (size_t y = x; y <= sizeof(stream); y++) {
			bool mid;

			evbuffer_drain(in, evbuffer_get_length(in));
			UT_ASSERT(evbuffer_add(in, stream + x, y - x) == 0);
			c->msg_left = (uint32_t)left;
			mid = janitor_client_mid_message(c);
			if (mid == is_boundary(y))
				UT_FAIL("forwarded %zu, arrived %zu: mid_message %d", x, y,
					(int)mid);
		}
	}
}

static void check_odd_inputs(struct client *c)
{
	struct evbuffer *in = sock_in(&c->sock);
	static const uint8_t bad_len[] = {'Q', 0, 0, 0, 2};
	uint8_t tiny[5] = {'S', 0, 0, 0, 4};

	/* a bad length is the forwarding code's to refuse, not a stall */
	evbuffer_drain(in, evbuffer_get_length(in));
	c->msg_left = 0;
	UT_ASSERT(evbuffer_add(in, bad_len, sizeof(bad_len)) == 0);
	UT_ASSERT(!janitor_client_mid_message(c));
	/* past 64 complete messages the client waits for us, whatever follows */
	evbuffer_drain(in, evbuffer_get_length(in));
	for (int i = 0; i < 70; i++)
		UT_ASSERT(evbuffer_add(in, tiny, sizeof(tiny)) == 0);
	UT_ASSERT(evbuffer_add(in, "Q", 1) == 0);
	UT_ASSERT(!janitor_client_mid_message(c));
	/* ... but a partial one among the first 64 counts */
	evbuffer_drain(in, evbuffer_get_length(in));
	for (int i = 0; i < 10; i++)
		UT_ASSERT(evbuffer_add(in, tiny, sizeof(tiny)) == 0);
	UT_ASSERT(evbuffer_add(in, "Q", 1) == 0);
	UT_ASSERT(janitor_client_mid_message(c));
	/* a forwarded message with more to come and nothing buffered */
	evbuffer_drain(in, evbuffer_get_length(in));
	c->msg_left = 100;
	UT_ASSERT(janitor_client_mid_message(c));
}

static void test_janitor_mid_message(void)
{
	struct client c;

	if (!client_init(&c))
		UT_FAIL("out of memory");
	check_every_cut(&c);
	if (!unit_failed)
		check_odd_inputs(&c);
	sock_free(&c.sock);
}

const struct unit_test unit_tests_janitor[] = {
	{"janitor_mid_message", test_janitor_mid_message},
	{NULL, NULL},
};

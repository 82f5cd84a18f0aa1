/*
 * test_pq.c - unit tests for protocol/pq.c: framing, the startup packet, the
 * cursor, ErrorResponse parsing and message names (the builders are
 * test_pq_build.c's).
 *
 * Inputs are copied into heap blocks of exactly their length before being
 * parsed, so that under AddressSanitizer any read past the end of a message
 * is caught rather than landing on a neighbouring stack byte.  Framing is
 * checked with the bytes split at every boundary, the way they may arrive
 * from a socket.
 */
#include "unit.h"

#include "protocol/pq.h"

#include <stdint.h>
#include <stdlib.h>

/* Big enough for every message these tests build or frame. */
#define TEST_MAX_LEN 65536

/* Copy n bytes into a block of exactly n bytes (ASan catches overreads). */
static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Write a big-endian 32-bit integer into hand-built test packets. */
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * What a connection's read loop does: frame every complete message at the
 * start of buf.  Returns how many were complete and sets *consumed to their
 * total size; -1 on a framing error.
 */
static int frame_stream(const uint8_t *buf, size_t avail, size_t *consumed)
{
	size_t off = 0;
	int n = 0;
	uint8_t type;
	uint32_t len;
	enum pq_status st;

	for (;;) {
		st = pq_read_header(buf + off, avail - off, &type, &len, TEST_MAX_LEN);
		if (st == PQ_NEED_MORE)
			break;
		if (st != PQ_OK)
			return -1;
		if (avail - off < 1 + (size_t)len)
			break;
		off += 1 + (size_t)len;
		n++;
	}
	*consumed = off;
	return n;
}

/* ---- framing ---- */

/* Every prefix shorter than the header is PQ_NEED_MORE, and then PQ_OK. */
static void test_header_every_prefix(void)
{
	static const uint8_t msg[] = {'Q', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0};
	uint8_t type;
	uint32_t len;

	for (size_t k = 0; k <= sizeof(msg); k++) {
		uint8_t *p = dup_exact(msg, k);
		enum pq_status st;

		UT_ASSERT(p);
		type = 0;
		len = 0;
		st = pq_read_header(p, k, &type, &len, TEST_MAX_LEN);
		free(p);
		if (k < PQ_HEADER_SIZE) {
			UT_EQ_INT(st, PQ_NEED_MORE);
			UT_EQ_INT(type, 0);
		} else {
			UT_EQ_INT(st, PQ_OK);
			UT_EQ_INT(type, 'Q');
			UT_EQ_INT(len, 13);
			UT_EQ_INT(1 + len, sizeof(msg));
		}
	}
}

/*
 * Two messages delivered in two reads split at every byte: nothing is framed
 * until a message is complete, and both are framed in the end.
 */
static void test_header_split_stream(void)
{
	static const uint8_t two[] = {
		'Q', 0, 0, 0, 9, 's', 'e', 'l', 'x', 0, 'X', 0, 0, 0, 4,
	};
	const size_t first_len = 10;

	for (size_t s = 0; s <= sizeof(two); s++) {
		uint8_t *p = dup_exact(two, s);
		size_t consumed = 0, consumed2 = 0;
		int n1, n2;

		UT_ASSERT(p);
		n1 = frame_stream(p, s, &consumed);
		free(p);
		if (s < first_len) {
			UT_EQ_INT(n1, 0);
			UT_EQ_INT(consumed, 0);
		} else if (s < sizeof(two)) {
			UT_EQ_INT(n1, 1);
			UT_EQ_INT(consumed, first_len);
		} else {
			UT_EQ_INT(n1, 2);
			UT_EQ_INT(consumed, sizeof(two));
		}
		/* The second read appends the rest; the leftover is reframed. */
		p = dup_exact(two + consumed, sizeof(two) - consumed);
		UT_ASSERT(p);
		n2 = frame_stream(p, sizeof(two) - consumed, &consumed2);
		free(p);
		UT_EQ_INT(n1 + n2, 2);
		UT_EQ_INT(consumed + consumed2, sizeof(two));
	}
}

/* A length below 4 or above the limit is refused, and reported for logging. */
static void test_header_bad_lengths(void)
{
	uint8_t h[PQ_HEADER_SIZE] = {'D', 0, 0, 0, 0};
	uint8_t type;
	uint32_t len;

	for (uint32_t l = 0; l < 4; l++) {
		put32(h + 1, l);
		type = 0;
		len = 99;
		UT_EQ_INT(pq_read_header(h, sizeof(h), &type, &len, 1000), PQ_ERR_LENGTH);
		UT_EQ_INT(type, 'D');
		UT_EQ_INT(len, l);
	}
	put32(h + 1, 4);
	UT_EQ_INT(pq_read_header(h, sizeof(h), &type, &len, 1000), PQ_OK);
	UT_EQ_INT(len, 4);
	put32(h + 1, 1000);
	UT_EQ_INT(pq_read_header(h, sizeof(h), &type, &len, 1000), PQ_OK);
	put32(h + 1, 1001);
	UT_EQ_INT(pq_read_header(h, sizeof(h), &type, &len, 1000), PQ_ERR_LENGTH);
	UT_EQ_INT(len, 1001);
	put32(h + 1, 0xffffffffu);
	UT_EQ_INT(pq_read_header(h, sizeof(h), &type, &len, 1000), PQ_ERR_LENGTH);
	UT_EQ_INT(len, 0xffffffffu);
	/* Framing errors are reported even when only the header has arrived. */
	put32(h + 1, 2);
	UT_EQ_INT(pq_read_header(h, 4, &type, &len, 1000), PQ_NEED_MORE);
}

static void test_startup_len_bounds(void)
{
	uint8_t w[4] = {0};
	uint32_t len;

	UT_EQ_INT(pq_read_startup_len(w, 0, &len), PQ_NEED_MORE);
	UT_EQ_INT(pq_read_startup_len(w, 3, &len), PQ_NEED_MORE);
	for (uint32_t l = 0; l < 8; l++) {
		put32(w, l);
		UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_ERR_LENGTH);
		UT_EQ_INT(len, l);
	}
	put32(w, 8);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_OK);
	UT_EQ_INT(len, 8);
	put32(w, PQ_STARTUP_MAX);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_OK);
	put32(w, PQ_STARTUP_MAX + 1);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_ERR_LENGTH);
	/* exactly PostgreSQL's bound: 10000 bytes after the length word */
	put32(w, 10004);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_OK);
	put32(w, 10005);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_ERR_LENGTH);
	put32(w, 0x80000000u);
	UT_EQ_INT(pq_read_startup_len(w, 4, &len), PQ_ERR_LENGTH);
}

/* ---- startup packet ---- */

/* A StartupMessage for 3.0 with four parameters, built by hand. */
static const uint8_t startup_pkt[] = {
	0,   0,   0,   77,  0,   3,   0,   0,   'u', 's', 'e', 'r', 0,   'a', 'l', 'i',
	'c', 'e', 0,   'd', 'a', 't', 'a', 'b', 'a', 's', 'e', 0,   'a', 'p', 'p', 0,
	'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '_', 'n', 'a', 'm', 'e',
	0,   'p', 's', 'q', 'l', 0,   'o', 'p', 't', 'i', 'o', 'n', 's', 0,   '-', 'c',
	' ', 'x', '=', '1', 0,   'e', 'm', 'p', 't', 'y', 0,   0,   0,
};

/* Check that 'st' holds exactly the parameters of startup_pkt. */
static void check_startup_params(const struct pq_startup *st)
{
	static const char *const want[] = {
		"user", "alice",   "database", "app",   "application_name",
		"psql", "options", "-c x=1",   "empty", "",
	};
	struct pq_cursor c;
	const char *name, *value;
	size_t i = 0;

	pq_cursor_init(&c, st->params, st->params_len);
	while (pq_startup_next(&c, &name, &value)) {
		UT_ASSERT(i + 1 < sizeof(want) / sizeof(want[0]));
		UT_EQ_STR(name, want[i]);
		UT_EQ_STR(value, want[i + 1]);
		i += 2;
	}
	UT_EQ_INT(i, sizeof(want) / sizeof(want[0]));
	UT_ASSERT(name == NULL && value == NULL);
	UT_ASSERT(pq_cursor_done(&c));
	/* Iterating past the end stays at the end. */
	UT_ASSERT(!pq_startup_next(&c, &name, &value));
}

static void test_startup_valid(void)
{
	struct pq_startup st;
	uint8_t *p = dup_exact(startup_pkt, sizeof(startup_pkt));

	UT_ASSERT(sizeof(startup_pkt) == 77);
	UT_ASSERT(p);
	UT_EQ_INT(pq_parse_startup(p, sizeof(startup_pkt), &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_PROTOCOL(3, 0));
	UT_ASSERT(st.params == p + 8);
	UT_EQ_INT(st.params_len, sizeof(startup_pkt) - 8);
	UT_EQ_INT(st.params[st.params_len - 1], 0);
	check_startup_params(&st);
	free(p);
}

/* The packet arriving one byte at a time, framed by pq_read_startup_len. */
static void test_startup_every_prefix(void)
{
	for (size_t k = 0; k <= sizeof(startup_pkt); k++) {
		uint8_t *p = dup_exact(startup_pkt, k);
		struct pq_startup st;
		uint32_t len = 0;
		enum pq_status s;

		UT_ASSERT(p);
		s = pq_read_startup_len(p, k, &len);
		if (k < 4) {
			UT_EQ_INT(s, PQ_NEED_MORE);
		} else {
			UT_EQ_INT(s, PQ_OK);
			UT_EQ_INT(len, sizeof(startup_pkt));
		}
		if (s == PQ_OK && k >= len) {
			UT_EQ_INT(pq_parse_startup(p, len, &st), PQ_OK);
			check_startup_params(&st);
			if (unit_failed) {
				free(p);
				return;
			}
		}
		free(p);
	}
}

/* Parse a hand-built packet after patching its length word to n. */
static enum pq_status parse_raw(const void *bytes, size_t n, struct pq_startup *st)
{
	uint8_t *p = dup_exact(bytes, n);
	enum pq_status s;

	if (!p)
		return PQ_ERR_FORMAT;
	if (n >= 4)
		put32(p, (uint32_t)n);
	s = pq_parse_startup(p, n, st);
	free(p);
	return s;
}

static void test_startup_requests(void)
{
	static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	static const uint8_t gss[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30};
	static const uint8_t cancel[] = {
		0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0x00, 0x00, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef,
	};
	uint8_t big[24] = {0};
	struct pq_startup st;

	UT_EQ_INT(parse_raw(ssl, sizeof(ssl), &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_SSL_REQUEST_CODE);
	UT_ASSERT(st.params == NULL);
	UT_EQ_INT(parse_raw(gss, sizeof(gss), &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_GSSENC_REQUEST_CODE);
	UT_EQ_INT(parse_raw(cancel, sizeof(cancel), &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_CANCEL_REQUEST_CODE);
	UT_EQ_INT(st.cancel_pid, 12345);
	UT_EQ_INT(st.cancel_key, 0xdeadbeefu);
	UT_ASSERT(st.params == NULL);

	/* Wrong lengths for each request. */
	memcpy(big, ssl, sizeof(ssl));
	UT_EQ_INT(parse_raw(big, 12, &st), PQ_ERR_FORMAT);
	memcpy(big, gss, sizeof(gss));
	UT_EQ_INT(parse_raw(big, 9, &st), PQ_ERR_FORMAT);
	memcpy(big, cancel, sizeof(cancel));
	UT_EQ_INT(parse_raw(big, 12, &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(big, 20, &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(big, 24, &st), PQ_ERR_FORMAT);
}

static void test_startup_malformed(void)
{
	static const uint8_t unterminated_value[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'b', 'o', 'b',
	};
	static const uint8_t missing_final[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'b', 'o', 'b', 0,
	};
	static const uint8_t trailing[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'b', 'o', 'b', 0, 0, 'x',
	};
	static const uint8_t trailing_nul[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'b', 'o', 'b', 0, 0, 0,
	};
	static const uint8_t name_only[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0,
	};
	static const uint8_t unterminated_name[] = {
		0, 0, 0, 0, 0, 3, 0, 0, 'u', 's', 'e', 'r',
	};
	static const uint8_t no_params[] = {0, 0, 0, 0, 0, 3, 0, 0};
	static const uint8_t only_final[] = {0, 0, 0, 0, 0, 3, 0, 0, 0};
	struct pq_startup st;

	UT_EQ_INT(parse_raw(unterminated_value, sizeof(unterminated_value), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(missing_final, sizeof(missing_final), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(trailing, sizeof(trailing), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(trailing_nul, sizeof(trailing_nul), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(name_only, sizeof(name_only), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(unterminated_name, sizeof(unterminated_name), &st), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_raw(no_params, sizeof(no_params), &st), PQ_ERR_FORMAT);
	UT_ASSERT(st.params == NULL);
	/* No parameters at all is well formed; the caller insists on "user". */
	UT_EQ_INT(parse_raw(only_final, sizeof(only_final), &st), PQ_OK);
	UT_EQ_INT(st.params_len, 1);

	/* Too short or too long for pq_parse_startup itself. */
	UT_EQ_INT(pq_parse_startup(startup_pkt, 7, &st), PQ_ERR_LENGTH);
	UT_EQ_INT(pq_parse_startup(startup_pkt, 0, &st), PQ_ERR_LENGTH);
	/* The length word must match the bytes given, either way. */
	{
		static const uint8_t word_13[] = {0, 0, 0, 13, 0, 3, 0, 0, 0};
		static const uint8_t word_8[] = {0, 0, 0, 8, 0, 3, 0, 0, 0};

		UT_EQ_INT(pq_parse_startup(word_13, sizeof(word_13), &st), PQ_ERR_FORMAT);
		UT_EQ_INT(pq_parse_startup(word_8, sizeof(word_8), &st), PQ_ERR_FORMAT);
	}

	/*
	 * Every proper truncation of a packet whose names and values are all
	 * non-empty is invalid, whatever the cut.
	 */
	{
		static const uint8_t pkt[] = {
			0,   0, 0,   0,   0,   3,   0,   0,   'u', 's', 'e', 'r', 0, 'b', 'o',
			'b', 0, 'd', 'a', 't', 'a', 'b', 'a', 's', 'e', 0,   'd', 0, 0,
		};

		UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_OK);
		for (size_t n = 8; n < sizeof(pkt); n++)
			UT_EQ_INT(parse_raw(pkt, n, &st), PQ_ERR_FORMAT);
	}
}

static void test_startup_versions(void)
{
	uint8_t pkt[] = {0, 0, 0, 0, 0, 3, 0, 0, 'u', 0, 'x', 0, 0};
	struct pq_startup st;

	put32(pkt + 4, PQ_PROTOCOL(2, 0));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_ERR_VERSION);
	UT_EQ_INT(st.code, PQ_PROTOCOL(2, 0));
	put32(pkt + 4, PQ_PROTOCOL(4, 0));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_ERR_VERSION);
	UT_EQ_INT(PQ_PROTOCOL_MAJOR(st.code), 4);
	put32(pkt + 4, PQ_PROTOCOL(1234, 5681));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_ERR_VERSION);
	put32(pkt + 4, PQ_PROTOCOL(3, 1));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_OK);
	UT_EQ_INT(PQ_PROTOCOL_MAJOR(st.code), 3);
	UT_EQ_INT(PQ_PROTOCOL_MINOR(st.code), 1);
	put32(pkt + 4, PQ_PROTOCOL(3, 2));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt), &st), PQ_OK);
	UT_EQ_INT(PQ_PROTOCOL_MINOR(st.code), 2);
	/* A bad parameter list under a good version is still a format error. */
	put32(pkt + 4, PQ_PROTOCOL(3, 0));
	UT_EQ_INT(parse_raw(pkt, sizeof(pkt) - 1, &st), PQ_ERR_FORMAT);
}

/* ---- cursor ---- */

static void test_cursor_reads(void)
{
	static const uint8_t body[] = {
		0x7f, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff,
		0xff, 0xfe, 'h',  'i',  0,    0,    0xaa, 0xbb,
	};
	uint8_t *p = dup_exact(body, sizeof(body));
	struct pq_cursor c;
	const uint8_t *raw;

	UT_ASSERT(p);
	pq_cursor_init(&c, p, sizeof(body));
	UT_EQ_INT(pq_cursor_left(&c), sizeof(body));
	UT_EQ_INT(pq_get_u8(&c), 0x7f);
	UT_EQ_INT(pq_get_u16(&c), 0x1234);
	UT_EQ_INT(pq_get_u32(&c), 0xdeadbeefu);
	UT_EQ_INT(pq_get_i32(&c), -2);
	UT_EQ_STR(pq_get_str(&c), "hi");
	UT_EQ_STR(pq_get_str(&c), "");
	UT_ASSERT(!pq_cursor_done(&c));
	raw = pq_get_bytes(&c, 2);
	UT_ASSERT(raw == p + sizeof(body) - 2);
	UT_ASSERT(pq_get_bytes(&c, 0) != NULL);
	UT_ASSERT(pq_cursor_done(&c));
	UT_EQ_INT(pq_cursor_left(&c), 0);
	free(p);
}

/* Each getter fails on a body one byte too short, and the failure sticks. */
static void test_cursor_underflow(void)
{
	static const uint8_t body[] = {1, 2, 3, 4};
	uint8_t *p = dup_exact(body, sizeof(body));
	struct pq_cursor c;

	UT_ASSERT(p);
	pq_cursor_init(&c, p, 0);
	UT_EQ_INT(pq_get_u8(&c), 0);
	UT_ASSERT(c.failed);
	UT_ASSERT(!pq_cursor_done(&c));

	pq_cursor_init(&c, p, 1);
	UT_EQ_INT(pq_get_u16(&c), 0);
	UT_ASSERT(c.failed);
	pq_cursor_init(&c, p, 3);
	UT_EQ_INT(pq_get_u32(&c), 0);
	UT_ASSERT(c.failed);
	pq_cursor_init(&c, p, 3);
	UT_EQ_INT(pq_get_i32(&c), 0);
	UT_ASSERT(c.failed);
	pq_cursor_init(&c, p, 4);
	UT_ASSERT(pq_get_bytes(&c, 5) == NULL);
	UT_ASSERT(c.failed);
	pq_cursor_init(&c, p, 4);
	UT_ASSERT(pq_get_bytes(&c, SIZE_MAX) == NULL);
	UT_ASSERT(c.failed);

	/* After a failure nothing more can be read, even what would fit. */
	pq_cursor_init(&c, p, 4);
	UT_EQ_INT(pq_get_u16(&c), 0x0102);
	UT_EQ_INT(pq_get_u32(&c), 0);
	UT_ASSERT(c.failed);
	UT_EQ_INT(pq_cursor_left(&c), 0);
	UT_EQ_INT(pq_get_u8(&c), 0);
	UT_ASSERT(pq_get_bytes(&c, 0) == NULL);
	UT_ASSERT(!pq_cursor_done(&c));

	/* An empty body with no buffer at all. */
	pq_cursor_init(&c, NULL, 0);
	UT_EQ_INT(pq_cursor_left(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));
	UT_ASSERT(pq_get_bytes(&c, 0) != NULL);
	UT_ASSERT(pq_cursor_done(&c));
	UT_EQ_STR(pq_get_str(&c), "");
	UT_ASSERT(c.failed);
	free(p);
}

static void test_cursor_strings(void)
{
	static const uint8_t body[] = {'a', 'b', 0, 'c', 'd'};
	uint8_t *p = dup_exact(body, sizeof(body));
	struct pq_cursor c;

	UT_ASSERT(p);
	pq_cursor_init(&c, p, sizeof(body));
	UT_EQ_STR(pq_get_str(&c), "ab");
	UT_EQ_INT(pq_cursor_left(&c), 2);
	UT_EQ_STR(pq_get_str(&c), "");
	UT_ASSERT(c.failed);
	UT_EQ_INT(pq_cursor_left(&c), 0);
	UT_EQ_STR(pq_get_str(&c), "");

	/* A terminator just past the declared end does not count. */
	pq_cursor_init(&c, p, 2);
	UT_EQ_STR(pq_get_str(&c), "");
	UT_ASSERT(c.failed);
	pq_cursor_init(&c, p, 3);
	UT_EQ_STR(pq_get_str(&c), "ab");
	UT_ASSERT(pq_cursor_done(&c));
	free(p);
}

/* ---- ErrorResponse ---- */

/*
 * Parse a hand-built error body from an exactly sized copy, which stays
 * alive (the fields point into it) until the next call; a NULL 'bytes'
 * only frees it.  A test that fails early leaves it reachable, not leaked.
 */
static enum pq_status parse_error_raw(const void *bytes, size_t n, struct pq_error_fields *f)
{
	static uint8_t *copy;

	free(copy);
	copy = NULL;
	if (!bytes)
		return PQ_OK;
	copy = dup_exact(bytes, n);
	if (!copy)
		return PQ_ERR_FORMAT;
	return pq_parse_error(copy, n, f);
}

static void test_parse_error_fields(void)
{
	/* 'V' after 'S' wins, unknown fields are skipped. */
	static const uint8_t v_after[] = {
		'S', 'F', 'E', 'H', 'L', 'E', 'R', 0, 'q', 'z',
		0,   'V', 'E', 'R', 'R', 'O', 'R', 0, 0,
	};
	/* 'V' before 'S' still wins. */
	static const uint8_t v_before[] = {
		'V', 'E', 'R', 'R', 'O', 'R', 0, 'S', 'F', 'E', 'H', 'L', 'E', 'R', 0, 0,
	};
	/* Only 'S': an old server. */
	static const uint8_t s_only[] = {'S', 'L', 'O', 'G', 0, 'M', 'x', 0, 0};
	static const uint8_t empty[] = {0};
	static const uint8_t no_final[] = {'S', 'E', 0};
	static const uint8_t unterminated[] = {'S', 'E', 0, 'M', 'x', 0, 'C', '1', '2'};
	static const uint8_t after_final[] = {'S', 'E', 0, 0, 'M', 'x', 0, 0};
	struct pq_error_fields f;

	UT_EQ_INT(parse_error_raw(v_after, sizeof(v_after), &f), PQ_OK);
	UT_EQ_STR(f.severity, "ERROR");
	UT_EQ_INT(parse_error_raw(v_before, sizeof(v_before), &f), PQ_OK);
	UT_EQ_STR(f.severity, "ERROR");
	UT_EQ_INT(parse_error_raw(s_only, sizeof(s_only), &f), PQ_OK);
	UT_EQ_STR(f.severity, "LOG");
	UT_EQ_STR(f.message, "x");
	UT_ASSERT(f.sqlstate == NULL && f.detail == NULL && f.hint == NULL);
	/* An empty field list: every field absent, none defaulted. */
	UT_EQ_INT(parse_error_raw(empty, sizeof(empty), &f), PQ_OK);
	UT_ASSERT(f.severity == NULL && f.sqlstate == NULL && f.message == NULL);

	UT_EQ_INT(parse_error_raw(empty, 0, &f), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_error_raw(no_final, sizeof(no_final), &f), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_error_raw(unterminated, sizeof(unterminated), &f), PQ_ERR_FORMAT);
	UT_EQ_INT(parse_error_raw(after_final, sizeof(after_final), &f), PQ_ERR_FORMAT);
	(void)parse_error_raw(NULL, 0, &f);
}

/* ---- names for logs ---- */

static void test_msg_name(void)
{
	static const struct {
		uint8_t type;
		bool backend;
		const char *name;
	} cases[] = {
		{'Q', false, "Query"},
		{'P', false, "Parse"},
		{'B', false, "Bind"},
		{'E', false, "Execute"},
		{'D', false, "Describe"},
		{'C', false, "Close"},
		{'S', false, "Sync"},
		{'H', false, "Flush"},
		{'F', false, "FunctionCall"},
		{'d', false, "CopyData"},
		{'c', false, "CopyDone"},
		{'f', false, "CopyFail"},
		{'X', false, "Terminate"},
		{'p', false, "PasswordMessage"},
		{'R', true, "Authentication"},
		{'K', true, "BackendKeyData"},
		{'S', true, "ParameterStatus"},
		{'Z', true, "ReadyForQuery"},
		{'T', true, "RowDescription"},
		{'D', true, "DataRow"},
		{'C', true, "CommandComplete"},
		{'E', true, "ErrorResponse"},
		{'N', true, "NoticeResponse"},
		{'A', true, "NotificationResponse"},
		{'G', true, "CopyInResponse"},
		{'H', true, "CopyOutResponse"},
		{'W', true, "CopyBothResponse"},
		{'d', true, "CopyData"},
		{'c', true, "CopyDone"},
		{'t', true, "ParameterDescription"},
		{'n', true, "NoData"},
		{'1', true, "ParseComplete"},
		{'2', true, "BindComplete"},
		{'3', true, "CloseComplete"},
		{'s', true, "PortalSuspended"},
		{'I', true, "EmptyQueryResponse"},
		{'V', true, "FunctionCallResponse"},
		{'v', true, "NegotiateProtocolVersion"},
		/* Types that exist only in the other direction, and garbage. */
		{'Z', false, "unknown"},
		{'T', false, "unknown"},
		{'Q', true, "unknown"},
		{'P', true, "unknown"},
		{'X', true, "unknown"},
		{'p', true, "unknown"},
		{0, false, "unknown"},
		{0, true, "unknown"},
		{0xff, true, "unknown"},
		{'?', false, "unknown"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		UT_EQ_STR(pq_msg_name(cases[i].type, cases[i].backend), cases[i].name);
	/* Every byte has a name, none NULL. */
	for (int t = 0; t < 256; t++) {
		UT_ASSERT(pq_msg_name((uint8_t)t, false) != NULL);
		UT_ASSERT(pq_msg_name((uint8_t)t, true) != NULL);
	}
}

/* ---- robustness ---- */

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Run every parser over one input held in an exactly sized block. */
static void parse_everything(const uint8_t *in, size_t n)
{
	uint8_t *p = dup_exact(in, n);
	struct pq_startup st;
	struct pq_error_fields f;
	struct pq_cursor c;
	const char *name, *value;
	uint8_t type;
	uint32_t len;

	if (!p)
		return;
	(void)pq_read_header(p, n, &type, &len, TEST_MAX_LEN);
	(void)pq_read_startup_len(p, n, &len);
	if (pq_parse_startup(p, n, &st) == PQ_OK && st.params) {
		pq_cursor_init(&c, st.params, st.params_len);
		while (pq_startup_next(&c, &name, &value))
			;
	}
	(void)pq_parse_error(p, n, &f);
	/* The iterator must be safe even on an unvalidated list. */
	pq_cursor_init(&c, p, n);
	while (pq_startup_next(&c, &name, &value))
		;
	free(p);
}

/*
 * Random inputs and single-byte mutations of valid packets: nothing here
 * checks results, it is AddressSanitizer that judges.
 */
static void test_random_inputs(void)
{
	uint8_t in[64];
	uint8_t pkt[sizeof(startup_pkt)];
	uint32_t seed = 0x2545f491u;

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rng_next(&seed) % sizeof(in);

		for (size_t i = 0; i < n; i++) {
			uint32_t r = rng_next(&seed);

			/* Lots of NULs and small bytes, where the parsers branch. */
			in[i] = (r & 3) == 0 ? 0 : (uint8_t)(r >> 8);
		}
		if (n >= 4 && (iter & 1))
			put32(in, (uint32_t)n);
		if (n >= 8 && (iter & 2))
			put32(in + 4, PQ_PROTOCOL(3, 0));
		parse_everything(in, n);
	}
	for (size_t i = 0; i < sizeof(startup_pkt); i++) {
		for (int v = 0; v < 256; v += 17) {
			memcpy(pkt, startup_pkt, sizeof(pkt));
			pkt[i] = (uint8_t)v;
			parse_everything(pkt, sizeof(pkt));
		}
	}
}

const struct unit_test unit_tests_pq[] = {
	{"pq_header_every_prefix", test_header_every_prefix},
	{"pq_header_split_stream", test_header_split_stream},
	{"pq_header_bad_lengths", test_header_bad_lengths},
	{"pq_startup_len_bounds", test_startup_len_bounds},
	{"pq_startup_valid", test_startup_valid},
	{"pq_startup_every_prefix", test_startup_every_prefix},
	{"pq_startup_requests", test_startup_requests},
	{"pq_startup_malformed", test_startup_malformed},
	{"pq_startup_versions", test_startup_versions},
	{"pq_cursor_reads", test_cursor_reads},
	{"pq_cursor_underflow", test_cursor_underflow},
	{"pq_cursor_strings", test_cursor_strings},
	{"pq_parse_error_fields", test_parse_error_fields},
	{"pq_msg_name", test_msg_name},
	{"pq_random_inputs", test_random_inputs},
	{NULL, NULL},
};

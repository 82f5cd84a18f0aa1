/*
 * test_pq.c - unit tests for protocol/pq.c: framing, parsing, building.
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

/* Read a big-endian 32-bit integer from test output. */
static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	       (uint32_t)p[3];
}

/*
 * Frame the typed message at data + *off, check its type, point 'c' at its
 * body and advance *off past it.  Returns false when the message is
 * incomplete, malformed or of another type, so tests can UT_ASSERT on it.
 */
static bool open_msg(const uint8_t *data, size_t avail, size_t *off, uint8_t want,
		     struct pq_cursor *c)
{
	uint8_t type;
	uint32_t len;

	if (*off > avail)
		return false;
	if (pq_read_header(data + *off, avail - *off, &type, &len, TEST_MAX_LEN) != PQ_OK)
		return false;
	if (type != want || avail - *off < 1 + (size_t)len)
		return false;
	pq_cursor_init(c, data + *off + PQ_HEADER_SIZE, len - 4);
	*off += 1 + (size_t)len;
	return true;
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

static void test_build_error_round_trip(void)
{
	static const uint8_t want[] = {
		'E', 0,   0,   0,   53,  'S', 'F', 'A', 'T', 'A', 'L', 0,   'V', 'F',
		'A', 'T', 'A', 'L', 0,   'C', '5', '7', 'P', '0', '1', 0,   'M', 'g',
		'o', 'i', 'n', 'g', ' ', 'a', 'w', 'a', 'y', 0,   'D', 'S', 'o', 'm',
		'e', '.', 0,   'H', 'R', 'e', 't', 'r', 'y', '.', 0,   0,
	};
	struct pq_buf b;
	struct pq_cursor c;
	struct pq_error_fields f;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_error(&b, "FATAL", "57P01", "going away", "Some.", "Retry.");
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, sizeof(want));
	UT_EQ_MEM(b.data, want, sizeof(want));
	UT_ASSERT(open_msg(b.data, b.len, &off, 'E', &c));
	UT_EQ_INT(off, b.len);
	UT_EQ_INT(pq_parse_error(c.p, pq_cursor_left(&c), &f), PQ_OK);
	UT_EQ_STR(f.severity, "FATAL");
	UT_EQ_STR(f.sqlstate, "57P01");
	UT_EQ_STR(f.message, "going away");
	UT_EQ_STR(f.detail, "Some.");
	UT_EQ_STR(f.hint, "Retry.");

	/* Without detail and hint the fields are absent, not empty. */
	pq_buf_reset(&b);
	pq_build_error(&b, "ERROR", "08P01", "invalid message", NULL, NULL);
	off = 0;
	UT_ASSERT(open_msg(b.data, b.len, &off, 'E', &c));
	UT_EQ_INT(pq_parse_error(c.p, pq_cursor_left(&c), &f), PQ_OK);
	UT_EQ_STR(f.severity, "ERROR");
	UT_EQ_STR(f.sqlstate, "08P01");
	UT_EQ_STR(f.message, "invalid message");
	UT_ASSERT(f.detail == NULL);
	UT_ASSERT(f.hint == NULL);

	/* Every truncation of the body fails, and none reads out of bounds. */
	{
		const uint8_t *body = b.data + PQ_HEADER_SIZE;
		size_t blen = b.len - PQ_HEADER_SIZE;

		for (size_t n = 0; n < blen; n++) {
			uint8_t *p = dup_exact(body, n);
			enum pq_status s;

			UT_ASSERT(p);
			s = pq_parse_error(p, n, &f);
			free(p);
			UT_EQ_INT(s, PQ_ERR_FORMAT);
		}
	}

	/* A NULL text is sent as an empty string rather than crashing. */
	pq_buf_reset(&b);
	pq_build_error(&b, "ERROR", "XX000", NULL, NULL, NULL);
	off = 0;
	UT_ASSERT(open_msg(b.data, b.len, &off, 'E', &c));
	UT_EQ_INT(pq_parse_error(c.p, pq_cursor_left(&c), &f), PQ_OK);
	UT_EQ_STR(f.message, "");
	pq_buf_free(&b);
}

/* The message of a server's error replaced, every other field kept in its order. */
static void test_build_error_remessaged(void)
{
	/* as a server sends it: S, V, C, M, F, L, R */
	static const uint8_t body[] =
		"SERROR\0VERROR\0C42P05\0Mprepared statement \"pgcutover_7\" already "
		"exists\0Fprepare.c\0L417\0RStorePreparedStatement\0";
	static const uint8_t want[] =
		"SERROR\0VERROR\0C42P05\0Mprepared statement \"mine\" already "
		"exists\0Fprepare.c\0L417\0RStorePreparedStatement\0";
	struct pq_buf b;
	struct pq_cursor c;
	struct pq_error_fields f;
	size_t off = 0;

	pq_buf_init(&b);
	UT_EQ_INT(pq_build_error_remessaged(&b, 'E', body, sizeof(body),
					    "prepared statement \"mine\" already exists"),
		  PQ_OK);
	UT_ASSERT(!b.failed);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'E', &c));
	UT_EQ_INT(off, b.len);
	UT_EQ_INT(pq_cursor_left(&c), sizeof(want));
	UT_EQ_MEM(c.p, want, sizeof(want));
	UT_EQ_INT(pq_parse_error(c.p, pq_cursor_left(&c), &f), PQ_OK);
	UT_EQ_STR(f.sqlstate, "42P05");

	/* malformed: refused, nothing written */
	pq_buf_reset(&b);
	UT_EQ_INT(pq_build_error_remessaged(&b, 'E', body, sizeof(body) - 1, "x"), PQ_ERR_FORMAT);
	UT_EQ_INT(b.len, 0);
	pq_buf_free(&b);
}

static void test_build_notice(void)
{
	struct pq_buf b;
	struct pq_cursor c;
	struct pq_error_fields f;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_notice(&b, "WARNING", "01000", "careful", NULL, "Be careful.");
	UT_ASSERT(!b.failed);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'N', &c));
	UT_EQ_INT(off, b.len);
	UT_EQ_INT(pq_parse_error(c.p, pq_cursor_left(&c), &f), PQ_OK);
	UT_EQ_STR(f.severity, "WARNING");
	UT_EQ_STR(f.sqlstate, "01000");
	UT_EQ_STR(f.message, "careful");
	UT_ASSERT(f.detail == NULL);
	UT_EQ_STR(f.hint, "Be careful.");
	pq_buf_free(&b);
}

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

/* ---- other builders ---- */

static void test_build_auth(void)
{
	static const uint8_t salt[4] = {1, 2, 3, 4};
	static const char *const mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", NULL};
	static const char *const none[] = {NULL};
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_auth(&b, PQ_AUTH_OK, NULL, 0);
	pq_build_auth(&b, PQ_AUTH_MD5, salt, sizeof(salt));
	pq_build_auth(&b, PQ_AUTH_SASL_FINAL, "v=abc", 5);
	pq_build_auth_sasl(&b, mechs);
	pq_build_auth_sasl(&b, none);
	UT_ASSERT(!b.failed);

	UT_ASSERT(open_msg(b.data, b.len, &off, 'R', &c));
	UT_EQ_INT(pq_get_u32(&c), PQ_AUTH_OK);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'R', &c));
	UT_EQ_INT(pq_get_u32(&c), PQ_AUTH_MD5);
	UT_EQ_MEM(pq_get_bytes(&c, 4), salt, 4);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'R', &c));
	UT_EQ_INT(pq_get_u32(&c), PQ_AUTH_SASL_FINAL);
	UT_EQ_INT(pq_cursor_left(&c), 5);
	UT_EQ_MEM(pq_get_bytes(&c, 5), "v=abc", 5);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'R', &c));
	UT_EQ_INT(pq_get_u32(&c), PQ_AUTH_SASL);
	UT_EQ_STR(pq_get_str(&c), "SCRAM-SHA-256-PLUS");
	UT_EQ_STR(pq_get_str(&c), "SCRAM-SHA-256");
	UT_EQ_INT(pq_get_u8(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'R', &c));
	UT_EQ_INT(pq_get_u32(&c), PQ_AUTH_SASL);
	UT_EQ_INT(pq_get_u8(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));
	UT_EQ_INT(off, b.len);
	pq_buf_free(&b);
}

/* The small fixed-layout messages, built into one buffer back to back. */
static void test_build_simple(void)
{
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_param_status(&b, "server_version", "16.2");
	pq_build_backend_key(&b, 4242, 0x80000001u);
	pq_build_ready(&b, 'T');
	pq_build_query(&b, "SELECT 1");
	pq_build_terminate(&b);
	pq_build_command_complete(&b, "SELECT 3");
	pq_build_empty_query(&b);
	UT_ASSERT(!b.failed);

	UT_ASSERT(open_msg(b.data, b.len, &off, 'S', &c));
	UT_EQ_STR(pq_get_str(&c), "server_version");
	UT_EQ_STR(pq_get_str(&c), "16.2");
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'K', &c));
	UT_EQ_INT(pq_get_u32(&c), 4242);
	UT_EQ_INT(pq_get_u32(&c), 0x80000001u);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'Z', &c));
	UT_EQ_INT(pq_get_u8(&c), 'T');
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'Q', &c));
	UT_EQ_STR(pq_get_str(&c), "SELECT 1");
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'X', &c));
	UT_EQ_INT(pq_cursor_left(&c), 0);

	UT_ASSERT(open_msg(b.data, b.len, &off, 'C', &c));
	UT_EQ_STR(pq_get_str(&c), "SELECT 3");
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'I', &c));
	UT_EQ_INT(pq_cursor_left(&c), 0);
	UT_EQ_INT(off, b.len);
	pq_buf_free(&b);
}

static void test_build_row_description(void)
{
	static const char *const names[] = {"name", "value"};
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_row_description(&b, 2, names);
	UT_ASSERT(!b.failed);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'T', &c));
	UT_EQ_INT(pq_get_u16(&c), 2);
	for (int i = 0; i < 2; i++) {
		UT_EQ_STR(pq_get_str(&c), names[i]);
		UT_EQ_INT(pq_get_u32(&c), 0);           /* table oid */
		UT_EQ_INT(pq_get_u16(&c), 0);           /* attnum */
		UT_EQ_INT(pq_get_u32(&c), 25);          /* text */
		UT_EQ_INT((int16_t)pq_get_u16(&c), -1); /* typlen */
		UT_EQ_INT(pq_get_i32(&c), -1);          /* typmod */
		UT_EQ_INT(pq_get_u16(&c), 0);           /* text format */
	}
	UT_ASSERT(pq_cursor_done(&c));

	/* No columns at all is a valid (if odd) description. */
	pq_buf_reset(&b);
	off = 0;
	pq_build_row_description(&b, 0, NULL);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'T', &c));
	UT_EQ_INT(pq_get_u16(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));

	/* A column count the wire cannot carry fails the buffer. */
	pq_buf_reset(&b);
	pq_build_row_description(&b, -1, names);
	UT_ASSERT(b.failed);
	pq_buf_reset(&b);
	pq_build_row_description(&b, 40000, names);
	UT_ASSERT(b.failed);
	pq_buf_free(&b);
}

static void test_build_data_row(void)
{
	static const char *const values[] = {"abc", NULL, "", "x"};
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_data_row(&b, 4, values);
	UT_ASSERT(!b.failed);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'D', &c));
	UT_EQ_INT(pq_get_u16(&c), 4);
	UT_EQ_INT(pq_get_i32(&c), 3);
	UT_EQ_MEM(pq_get_bytes(&c, 3), "abc", 3);
	UT_EQ_INT(pq_get_i32(&c), -1);
	UT_EQ_INT(pq_get_i32(&c), 0);
	UT_EQ_INT(pq_get_i32(&c), 1);
	UT_EQ_MEM(pq_get_bytes(&c, 1), "x", 1);
	UT_ASSERT(pq_cursor_done(&c));
	pq_buf_reset(&b);
	pq_build_data_row(&b, -3, values);
	UT_ASSERT(b.failed);
	pq_buf_free(&b);
}

static void test_build_negotiate_version(void)
{
	static const char *const opts[] = {"_pq_.foo", "_pq_.bar"};
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_negotiate_version(&b, 0, 2, opts);
	pq_build_negotiate_version(&b, 2, 0, NULL);
	UT_ASSERT(!b.failed);
	UT_ASSERT(open_msg(b.data, b.len, &off, 'v', &c));
	UT_EQ_INT(pq_get_i32(&c), 0);
	UT_EQ_INT(pq_get_i32(&c), 2);
	UT_EQ_STR(pq_get_str(&c), "_pq_.foo");
	UT_EQ_STR(pq_get_str(&c), "_pq_.bar");
	UT_ASSERT(pq_cursor_done(&c));
	UT_ASSERT(open_msg(b.data, b.len, &off, 'v', &c));
	UT_EQ_INT(pq_get_i32(&c), 2);
	UT_EQ_INT(pq_get_i32(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));
	UT_EQ_INT(off, b.len);
	pq_buf_free(&b);
}

/* A built StartupMessage goes through the same path as a client's. */
static void test_build_startup(void)
{
	static const char *const kv[] = {
		"user", "bob", "database", "shop", "application_name", "pgcutover",
	};
	struct pq_buf b;
	struct pq_startup st;
	struct pq_cursor c;
	const char *name, *value;
	uint32_t len;
	size_t i = 0;

	pq_buf_init(&b);
	pq_build_startup(&b, kv, 3);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(pq_read_startup_len(b.data, b.len, &len), PQ_OK);
	UT_EQ_INT(len, b.len);
	UT_EQ_INT(pq_parse_startup(b.data, len, &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_PROTOCOL(3, 0));
	pq_cursor_init(&c, st.params, st.params_len);
	while (pq_startup_next(&c, &name, &value)) {
		UT_ASSERT(i < 6);
		UT_EQ_STR(name, kv[i]);
		UT_EQ_STR(value, kv[i + 1]);
		i += 2;
	}
	UT_EQ_INT(i, 6);
	UT_ASSERT(pq_cursor_done(&c));

	/* No pairs: version word and the final NUL only. */
	pq_buf_reset(&b);
	pq_build_startup(&b, NULL, 0);
	UT_EQ_INT(b.len, 9);
	UT_EQ_INT(pq_parse_startup(b.data, b.len, &st), PQ_OK);
	UT_EQ_INT(st.params_len, 1);
	pq_buf_free(&b);
}

static void test_build_cancel_request(void)
{
	struct pq_buf b;
	struct pq_startup st;
	uint32_t len;

	pq_buf_init(&b);
	pq_build_cancel_request(&b, 777, 0xfeedfaceu);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, 16);
	UT_EQ_INT(pq_read_startup_len(b.data, b.len, &len), PQ_OK);
	UT_EQ_INT(len, 16);
	UT_EQ_INT(pq_parse_startup(b.data, len, &st), PQ_OK);
	UT_EQ_INT(st.code, PQ_CANCEL_REQUEST_CODE);
	UT_EQ_INT(st.cancel_pid, 777);
	UT_EQ_INT(st.cancel_key, 0xfeedfaceu);
	pq_buf_free(&b);
}

static void test_build_password_and_sasl(void)
{
	static const char first[] = "n,,n=,r=abc";
	struct pq_buf b;
	struct pq_cursor c;
	size_t off = 0;

	pq_buf_init(&b);
	pq_build_password(&b, "md5abcdef");
	pq_build_sasl_initial(&b, "SCRAM-SHA-256", first, sizeof(first) - 1);
	pq_build_sasl_initial(&b, "SCRAM-SHA-256", NULL, 0);
	pq_build_sasl_initial(&b, "SCRAM-SHA-256", "", 0);
	pq_build_sasl_response(&b, "c=biws", 6);
	UT_ASSERT(!b.failed);

	UT_ASSERT(open_msg(b.data, b.len, &off, 'p', &c));
	UT_EQ_STR(pq_get_str(&c), "md5abcdef");
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'p', &c));
	UT_EQ_STR(pq_get_str(&c), "SCRAM-SHA-256");
	UT_EQ_INT(pq_get_i32(&c), sizeof(first) - 1);
	UT_EQ_MEM(pq_get_bytes(&c, sizeof(first) - 1), first, sizeof(first) - 1);
	UT_ASSERT(pq_cursor_done(&c));

	/* NULL data: "no initial response", length -1 and nothing after. */
	UT_ASSERT(open_msg(b.data, b.len, &off, 'p', &c));
	UT_EQ_STR(pq_get_str(&c), "SCRAM-SHA-256");
	UT_EQ_INT(pq_get_i32(&c), -1);
	UT_ASSERT(pq_cursor_done(&c));

	/* Empty but present data: length 0. */
	UT_ASSERT(open_msg(b.data, b.len, &off, 'p', &c));
	UT_EQ_STR(pq_get_str(&c), "SCRAM-SHA-256");
	UT_EQ_INT(pq_get_i32(&c), 0);
	UT_ASSERT(pq_cursor_done(&c));

	UT_ASSERT(open_msg(b.data, b.len, &off, 'p', &c));
	UT_EQ_INT(pq_cursor_left(&c), 6);
	UT_EQ_MEM(pq_get_bytes(&c, 6), "c=biws", 6);
	UT_EQ_INT(off, b.len);
	pq_buf_free(&b);
}

/* ---- the buffer itself ---- */

/* The length word counts itself and the body, not the type byte. */
static void test_msg_length_patch(void)
{
	static const uint8_t want[] = {
		'Q', 0, 0, 0, 8, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 6, 0x01, 0x02, 'H', 0, 0, 0, 4,
	};
	struct pq_buf b;

	pq_buf_init(&b);
	pq_msg_begin(&b, 'Q');
	pq_put_u32(&b, 0xaabbccddu);
	pq_msg_end(&b);
	pq_msg_begin(&b, 0);
	pq_put_u8(&b, 1);
	pq_put_u8(&b, 2);
	pq_msg_end(&b);
	pq_msg_begin(&b, 'H');
	pq_msg_end(&b);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, sizeof(want));
	UT_EQ_MEM(b.data, want, sizeof(want));

	/* A message larger than the initial allocation, across a regrowth. */
	pq_buf_reset(&b);
	UT_EQ_INT(b.len, 0);
	pq_put_u8(&b, 0x55); /* something before it: msg_start is not 0 */
	pq_msg_begin(&b, 'd');
	for (uint32_t i = 0; i < 5000; i++)
		pq_put_u32(&b, i);
	pq_msg_end(&b);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, 1 + 1 + 4 + 20000);
	UT_EQ_INT(b.data[1], 'd');
	UT_EQ_INT(get32(b.data + 2), 4 + 20000);
	UT_EQ_INT(get32(b.data + 6 + 4 * 4999), 4999);
	UT_ASSERT(b.cap >= b.len);
	pq_buf_free(&b);
}

/* A put that cannot be honoured fails the buffer for good, until reset. */
static void test_buf_sticky_failure(void)
{
	static const uint8_t one = 1;
	struct pq_buf b;
	size_t len;

	pq_buf_init(&b);
	pq_build_query(&b, "SELECT 1");
	len = b.len;
	UT_ASSERT(!b.failed);
	/* The size alone is refused: the source bytes are never read. */
	pq_put_bytes(&b, &one, SIZE_MAX);
	UT_ASSERT(b.failed);
	pq_put_bytes(&b, &one, (size_t)INT32_MAX);
	pq_put_u8(&b, 1);
	pq_put_u16(&b, 1);
	pq_put_u32(&b, 1);
	pq_put_i32(&b, 1);
	pq_put_str(&b, "x");
	pq_build_terminate(&b);
	UT_ASSERT(b.failed);
	UT_EQ_INT(b.len, len);

	pq_buf_reset(&b);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, 0);
	pq_build_terminate(&b);
	UT_ASSERT(!b.failed);
	UT_EQ_INT(b.len, 5);

	/* Ending a message whose length word is gone is refused. */
	pq_buf_reset(&b);
	pq_msg_begin(&b, 'Q');
	pq_put_str(&b, "x");
	b.len = 0;
	pq_msg_end(&b);
	UT_ASSERT(b.failed);

	pq_buf_free(&b);
	UT_ASSERT(b.data == NULL && b.len == 0 && b.cap == 0 && !b.failed);
	pq_buf_free(&b); /* freeing twice is harmless */

	/* An untouched buffer frees cleanly too. */
	pq_buf_init(&b);
	pq_buf_free(&b);
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
	{"pq_build_error_remessaged", test_build_error_remessaged},
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
	{"pq_build_error_round_trip", test_build_error_round_trip},
	{"pq_build_notice", test_build_notice},
	{"pq_parse_error_fields", test_parse_error_fields},
	{"pq_build_auth", test_build_auth},
	{"pq_build_simple", test_build_simple},
	{"pq_build_row_description", test_build_row_description},
	{"pq_build_data_row", test_build_data_row},
	{"pq_build_negotiate_version", test_build_negotiate_version},
	{"pq_build_startup", test_build_startup},
	{"pq_build_cancel_request", test_build_cancel_request},
	{"pq_build_password_and_sasl", test_build_password_and_sasl},
	{"pq_msg_length_patch", test_msg_length_patch},
	{"pq_buf_sticky_failure", test_buf_sticky_failure},
	{"pq_msg_name", test_msg_name},
	{"pq_random_inputs", test_random_inputs},
	{NULL, NULL},
};

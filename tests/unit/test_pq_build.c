/*
 * test_pq_build.c - unit tests for protocol/pq_build.c: struct pq_buf and the
 * message builders.
 *
 * Every built message is framed and read back with protocol/pq.c's reader,
 * field by field, so the two modules are checked against each other; the
 * exact bytes are compared where the layout is fixed.
 */
#include "unit.h"

#include "protocol/pq.h"
#include "protocol/pq_build.h"

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

const struct unit_test unit_tests_pq_build[] = {
	{"pq_build_error_remessaged", test_build_error_remessaged},
	{"pq_build_error_round_trip", test_build_error_round_trip},
	{"pq_build_notice", test_build_notice},
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
	{NULL, NULL},
};

/*
 * pq_build.c - PostgreSQL frontend/backend protocol v3, writing: the growable
 * struct pq_buf and the builders of every message the proxy sends itself.
 *
 * The builders append to a struct pq_buf whose failure flag is sticky, so a
 * caller can build a whole message and check once at the end instead of
 * after every field.
 *
 * All integers on the wire are in network byte order; they are written byte
 * by byte, because the bytes in a buffer have no alignment guarantee.
 */
#include "protocol/pq_build.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq.h"

/*
 * Largest buffer a struct pq_buf may hold.  Every message length word is a
 * signed 32-bit integer on the wire, and the proxy only synthesises small
 * messages, so anything bigger is a bug; refusing it also keeps a runaway
 * caller from asking realloc() for absurd sizes.
 */
#define PQ_BUF_MAX ((size_t)INT32_MAX)

/* First allocation of a pq_buf: enough for every message the proxy builds
 * during a handshake, so most buffers never grow. */
#define PQ_BUF_INITIAL 256

/* Type OID of "text" in pg_type, used for every column we describe. */
#define PQ_TEXTOID 25

/* ---- byte order helpers ---- */

/* Write a big-endian 32-bit integer; used to patch length words in place. */
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- building ---- */

void pq_buf_init(struct pq_buf *b)
{
	memset(b, 0, sizeof(*b));
}

/* Leaves the buffer initialised and empty, so it may be reused or freed twice. */
void pq_buf_free(struct pq_buf *b)
{
	free(b->data);
	pq_buf_init(b);
}

void pq_buf_reset(struct pq_buf *b)
{
	b->len = 0;
	b->msg_start = 0;
	b->has_type = false;
	b->failed = false;
}

/*
 * Make room for n more bytes, doubling the capacity so that building a
 * message field by field costs amortised O(1) per byte.  On failure the old
 * contents stay allocated (pq_buf_free() releases them) but are marked
 * unsendable, and every later put becomes a no-op.
 */
static bool buf_reserve(struct pq_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->failed)
		return false;
	if (n > PQ_BUF_MAX - b->len) {
		b->failed = true;
		return false;
	}
	need = b->len + n;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : PQ_BUF_INITIAL;
	while (cap < need)
		cap *= 2; /* cannot overflow: need <= PQ_BUF_MAX, far below SIZE_MAX / 2 */
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void pq_put_u8(struct pq_buf *b, uint8_t v)
{
	if (!buf_reserve(b, 1))
		return;
	b->data[b->len++] = v;
}

void pq_put_u16(struct pq_buf *b, uint16_t v)
{
	if (!buf_reserve(b, 2))
		return;
	b->data[b->len++] = (uint8_t)(v >> 8);
	b->data[b->len++] = (uint8_t)v;
}

void pq_put_u32(struct pq_buf *b, uint32_t v)
{
	if (!buf_reserve(b, 4))
		return;
	wr32(b->data + b->len, v);
	b->len += 4;
}

/* Two's complement on the wire; the conversion to uint32_t is well defined. */
void pq_put_i32(struct pq_buf *b, int32_t v)
{
	pq_put_u32(b, (uint32_t)v);
}

/* n == 0 returns early so that (NULL, 0) never reaches memcpy(). */
void pq_put_bytes(struct pq_buf *b, const void *p, size_t n)
{
	if (n == 0 || !buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/*
 * A NULL string is written as "" rather than crashing: builders run on error
 * paths, where a missing message text should not take the process down.
 */
void pq_put_str(struct pq_buf *b, const char *s)
{
	if (!s)
		s = "";
	pq_put_bytes(b, s, strlen(s) + 1);
}

/*
 * Remember where the message starts and reserve its length word.  Only one
 * message can be open at a time: a nested begin would overwrite msg_start and
 * the outer length would be patched wrongly.
 */
void pq_msg_begin(struct pq_buf *b, uint8_t type)
{
	b->msg_start = b->len;
	b->has_type = type != 0;
	if (b->has_type)
		pq_put_u8(b, type);
	pq_put_u32(b, 0);
}

/*
 * The length counts itself and everything after it, but not the type byte.
 * A length word missing from the buffer (reset between begin and end) marks
 * the buffer failed rather than patching bytes that are not there.
 */
void pq_msg_end(struct pq_buf *b)
{
	size_t at, mlen;

	if (b->failed)
		return;
	at = b->msg_start + (b->has_type ? 1 : 0);
	if (at > b->len || b->len - at < 4) {
		b->failed = true;
		return;
	}
	mlen = b->len - at;
	if (mlen > (size_t)INT32_MAX) {
		b->failed = true;
		return;
	}
	wr32(b->data + at, (uint32_t)mlen);
}

/*
 * ErrorResponse and NoticeResponse share a layout.  Both 'S' and 'V' are sent
 * so that old clients see a severity and new ones a non-localized one.
 */
static void build_error_fields(struct pq_buf *b, uint8_t type, const char *severity,
			       const char *sqlstate, const char *message, const char *detail,
			       const char *hint)
{
	pq_msg_begin(b, type);
	pq_put_u8(b, 'S');
	pq_put_str(b, severity);
	pq_put_u8(b, 'V');
	pq_put_str(b, severity);
	pq_put_u8(b, 'C');
	pq_put_str(b, sqlstate);
	pq_put_u8(b, 'M');
	pq_put_str(b, message);
	if (detail) {
		pq_put_u8(b, 'D');
		pq_put_str(b, detail);
	}
	if (hint) {
		pq_put_u8(b, 'H');
		pq_put_str(b, hint);
	}
	pq_put_u8(b, 0);
	pq_msg_end(b);
}

void pq_build_error(struct pq_buf *b, const char *severity, const char *sqlstate,
		    const char *message, const char *detail, const char *hint)
{
	build_error_fields(b, 'E', severity, sqlstate, message, detail, hint);
}

void pq_build_notice(struct pq_buf *b, const char *severity, const char *sqlstate,
		     const char *message, const char *detail, const char *hint)
{
	build_error_fields(b, 'N', severity, sqlstate, message, detail, hint);
}

/*
 * The body is parsed first, so that a malformed one is refused before
 * anything is written; the copy then walks it again field by field.
 */
enum pq_status pq_build_error_remessaged(struct pq_buf *b, uint8_t type, const uint8_t *body,
					 size_t len, const char *message)
{
	struct pq_error_fields f;
	struct pq_cursor c;

	if (pq_parse_error(body, len, &f) != PQ_OK)
		return PQ_ERR_FORMAT;
	pq_msg_begin(b, type);
	pq_cursor_init(&c, body, len);
	for (;;) {
		uint8_t t = pq_get_u8(&c);
		const char *s;

		if (t == 0)
			break;
		s = pq_get_str(&c);
		pq_put_u8(b, t);
		pq_put_str(b, t == 'M' ? message : s);
	}
	pq_put_u8(b, 0);
	pq_msg_end(b);
	return PQ_OK;
}

void pq_build_auth(struct pq_buf *b, uint32_t code, const void *data, size_t len)
{
	pq_msg_begin(b, 'R');
	pq_put_u32(b, code);
	pq_put_bytes(b, data, len);
	pq_msg_end(b);
}

/* The mechanism list ends with an empty name, like the startup parameters. */
void pq_build_auth_sasl(struct pq_buf *b, const char *const *mechanisms)
{
	pq_msg_begin(b, 'R');
	pq_put_u32(b, PQ_AUTH_SASL);
	for (; mechanisms && *mechanisms; mechanisms++)
		pq_put_str(b, *mechanisms);
	pq_put_u8(b, 0);
	pq_msg_end(b);
}

void pq_build_param_status(struct pq_buf *b, const char *name, const char *value)
{
	pq_msg_begin(b, 'S');
	pq_put_str(b, name);
	pq_put_str(b, value);
	pq_msg_end(b);
}

void pq_build_backend_key(struct pq_buf *b, uint32_t pid, uint32_t key)
{
	pq_msg_begin(b, 'K');
	pq_put_u32(b, pid);
	pq_put_u32(b, key);
	pq_msg_end(b);
}

/* txn_status is 'I' (idle), 'T' (in a transaction) or 'E' (failed one). */
void pq_build_ready(struct pq_buf *b, char txn_status)
{
	pq_msg_begin(b, 'Z');
	pq_put_u8(b, (uint8_t)txn_status);
	pq_msg_end(b);
}

void pq_build_query(struct pq_buf *b, const char *sql)
{
	pq_msg_begin(b, 'Q');
	pq_put_str(b, sql);
	pq_msg_end(b);
}

void pq_build_parse(struct pq_buf *b, const char *name, const void *rest, size_t rest_len)
{
	pq_msg_begin(b, 'P');
	pq_put_str(b, name);
	pq_put_bytes(b, rest, rest_len);
	pq_msg_end(b);
}

void pq_build_close(struct pq_buf *b, char kind, const char *name)
{
	pq_msg_begin(b, 'C');
	pq_put_u8(b, (uint8_t)kind);
	pq_put_str(b, name);
	pq_msg_end(b);
}

void pq_build_terminate(struct pq_buf *b)
{
	pq_msg_begin(b, 'X');
	pq_msg_end(b);
}

/*
 * A column count that does not fit the wire's int16 is a caller bug; the
 * buffer is failed rather than sending a message the client would misparse.
 */
static bool check_ncols(struct pq_buf *b, int ncols)
{
	if (ncols < 0 || ncols > INT16_MAX) {
		b->failed = true;
		return false;
	}
	return true;
}

/*
 * Columns are not from a table (oid 0, attnum 0) and all are text in text
 * format: the proxy's own result sets (admin console) are made of strings.
 */
void pq_build_row_description(struct pq_buf *b, int ncols, const char *const *names)
{
	if (!check_ncols(b, ncols))
		return;
	pq_msg_begin(b, 'T');
	pq_put_u16(b, (uint16_t)ncols);
	for (int i = 0; i < ncols; i++) {
		pq_put_str(b, names[i]);
		pq_put_u32(b, 0);          /* table oid */
		pq_put_u16(b, 0);          /* column attribute number */
		pq_put_u32(b, PQ_TEXTOID); /* type oid */
		pq_put_u16(b, 0xffff);     /* typlen -1: variable length */
		pq_put_i32(b, -1);         /* typmod: none */
		pq_put_u16(b, 0);          /* format: text */
	}
	pq_msg_end(b);
}

/* Values are sent without their NUL; SQL NULL is the length -1. */
void pq_build_data_row(struct pq_buf *b, int ncols, const char *const *values)
{
	size_t n;

	if (!check_ncols(b, ncols))
		return;
	pq_msg_begin(b, 'D');
	pq_put_u16(b, (uint16_t)ncols);
	for (int i = 0; i < ncols; i++) {
		if (!values[i]) {
			pq_put_i32(b, -1);
			continue;
		}
		n = strlen(values[i]);
		if (n > (size_t)INT32_MAX) {
			b->failed = true;
			return;
		}
		pq_put_i32(b, (int32_t)n);
		pq_put_bytes(b, values[i], n);
	}
	pq_msg_end(b);
}

void pq_build_command_complete(struct pq_buf *b, const char *tag)
{
	pq_msg_begin(b, 'C');
	pq_put_str(b, tag);
	pq_msg_end(b);
}

void pq_build_empty_query(struct pq_buf *b)
{
	pq_msg_begin(b, 'I');
	pq_msg_end(b);
}

/*
 * Sent when a client asks for a newer minor or for "_pq_." options we do not
 * know: the newest minor we speak, then the options we did not recognise.
 */
void pq_build_negotiate_version(struct pq_buf *b, uint32_t newest_minor, int nopts,
				const char *const *opts)
{
	if (nopts < 0) {
		b->failed = true;
		return;
	}
	pq_msg_begin(b, 'v');
	pq_put_u32(b, newest_minor);
	pq_put_i32(b, (int32_t)nopts);
	for (int i = 0; i < nopts; i++)
		pq_put_str(b, opts[i]);
	pq_msg_end(b);
}

void pq_build_startup(struct pq_buf *b, const char *const *kv, size_t npairs)
{
	pq_msg_begin(b, 0);
	pq_put_u32(b, PQ_PROTOCOL(3, 0));
	for (size_t i = 0; i < npairs; i++) {
		pq_put_str(b, kv[2 * i]);
		pq_put_str(b, kv[2 * i + 1]);
	}
	pq_put_u8(b, 0);
	pq_msg_end(b);
}

void pq_build_cancel_request(struct pq_buf *b, uint32_t pid, uint32_t key)
{
	pq_msg_begin(b, 0);
	pq_put_u32(b, PQ_CANCEL_REQUEST_CODE);
	pq_put_u32(b, pid);
	pq_put_u32(b, key);
	pq_msg_end(b);
}

void pq_build_password(struct pq_buf *b, const char *password)
{
	pq_msg_begin(b, 'p');
	pq_put_str(b, password);
	pq_msg_end(b);
}

/* A NULL 'data' means "no initial response" (length -1), not an empty one. */
void pq_build_sasl_initial(struct pq_buf *b, const char *mechanism, const void *data, size_t len)
{
	pq_msg_begin(b, 'p');
	pq_put_str(b, mechanism);
	if (!data) {
		pq_put_i32(b, -1);
	} else if (len > (size_t)INT32_MAX) {
		b->failed = true;
		return;
	} else {
		pq_put_i32(b, (int32_t)len);
		pq_put_bytes(b, data, len);
	}
	pq_msg_end(b);
}

void pq_build_sasl_response(struct pq_buf *b, const void *data, size_t len)
{
	pq_msg_begin(b, 'p');
	pq_put_bytes(b, data, len);
	pq_msg_end(b);
}

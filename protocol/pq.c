/*
 * pq.c - PostgreSQL frontend/backend protocol v3: framing, parsing, building.
 *
 * Everything here works on caller-owned bytes: the readers never look past
 * the length they are given, whatever the input, and the builders append to a
 * struct pq_buf whose failure flag is sticky, so a caller can build a whole
 * message and check once at the end instead of after every field.
 *
 * All integers on the wire are in network byte order; they are assembled
 * byte by byte rather than through ntohl() on a cast pointer, because the
 * bytes in a receive buffer have no alignment guarantee.
 */
#include "protocol/pq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Length of a CancelRequest: length word, request code, pid and key. */
#define PQ_CANCEL_LEN 16

/* Length of an SSLRequest or GSSENCRequest: length word and request code. */
#define PQ_REQUEST_LEN 8

/* Type OID of "text" in pg_type, used for every column we describe. */
#define PQ_TEXTOID 25

/* ---- byte order helpers ---- */

/* Read a big-endian 16-bit integer from possibly unaligned bytes. */
static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* Read a big-endian 32-bit integer from possibly unaligned bytes. */
static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	       (uint32_t)p[3];
}

/* Write a big-endian 32-bit integer; used to patch length words in place. */
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- framing ---- */

/*
 * Only the header is needed to return PQ_OK: the caller decides whether to
 * wait for the whole body (1 + *len bytes) or to stream it, as it does for
 * large DataRow and CopyData messages.
 */
enum pq_status pq_read_header(const uint8_t *buf, size_t avail, uint8_t *type, uint32_t *len,
			      uint32_t max_len)
{
	uint32_t l;

	if (avail < PQ_HEADER_SIZE)
		return PQ_NEED_MORE;
	l = rd32(buf + 1);
	*type = buf[0];
	*len = l;
	if (l < 4 || l > max_len)
		return PQ_ERR_LENGTH;
	return PQ_OK;
}

/*
 * The minimum of 8 is the length word plus a protocol or request code; the
 * server itself refuses anything shorter or longer than PQ_STARTUP_MAX.
 */
enum pq_status pq_read_startup_len(const uint8_t *buf, size_t avail, uint32_t *len)
{
	uint32_t l;

	if (avail < 4)
		return PQ_NEED_MORE;
	l = rd32(buf);
	*len = l;
	if (l < 8 || l > PQ_STARTUP_MAX)
		return PQ_ERR_LENGTH;
	return PQ_OK;
}

/* ---- reading fields ---- */

/*
 * A NULL 'data' is allowed with len 0 (an empty body); no arithmetic is done
 * on it, since even NULL + 0 is undefined behaviour in C.
 */
void pq_cursor_init(struct pq_cursor *c, const void *data, size_t len)
{
	c->p = data;
	c->end = data ? (const uint8_t *)data + len : NULL;
	c->failed = false;
}

/*
 * Bytes left to read.  Equality rather than '<' is used because relational
 * comparison of two NULL pointers (an empty cursor) is undefined.
 */
size_t pq_cursor_left(const struct pq_cursor *c)
{
	if (c->failed || c->p == c->end)
		return 0;
	return (size_t)(c->end - c->p);
}

/*
 * Claim n bytes, or fail the cursor for good.  Once failed, the cursor stays
 * empty so that a parser which forgets to check after every field still never
 * reads garbage, and pq_cursor_done() reports the failure at the end.
 */
static const uint8_t *cursor_take(struct pq_cursor *c, size_t n)
{
	const uint8_t *p;

	if (c->failed || pq_cursor_left(c) < n) {
		c->failed = true;
		return NULL;
	}
	p = c->p;
	if (n > 0)
		c->p += n;
	return p;
}

uint8_t pq_get_u8(struct pq_cursor *c)
{
	const uint8_t *p = cursor_take(c, 1);

	return p ? p[0] : 0;
}

uint16_t pq_get_u16(struct pq_cursor *c)
{
	const uint8_t *p = cursor_take(c, 2);

	return p ? rd16(p) : 0;
}

uint32_t pq_get_u32(struct pq_cursor *c)
{
	const uint8_t *p = cursor_take(c, 4);

	return p ? rd32(p) : 0;
}

/* Conversion through uint32_t keeps two's complement values such as -1 exact. */
int32_t pq_get_i32(struct pq_cursor *c)
{
	uint32_t v = pq_get_u32(c);

	return v <= INT32_MAX ? (int32_t)v : (int32_t)(v - 0x80000000u) + INT32_MIN;
}

/*
 * The terminator is searched only inside the body, so a string running off
 * the end of a message can never make the caller read past it.  "" rather
 * than NULL on failure keeps careless callers from crashing on strcmp().
 */
const char *pq_get_str(struct pq_cursor *c)
{
	const uint8_t *nul;
	size_t left = pq_cursor_left(c);
	const char *s;

	if (c->failed || left == 0) {
		c->failed = true;
		return "";
	}
	nul = memchr(c->p, '\0', left);
	if (!nul) {
		c->failed = true;
		return "";
	}
	s = (const char *)c->p;
	c->p = nul + 1;
	return s;
}

/*
 * A zero-length read of an empty (NULL) body still returns a non-NULL
 * pointer, so that NULL always means failure to the caller.
 */
const uint8_t *pq_get_bytes(struct pq_cursor *c, size_t n)
{
	static const uint8_t empty[1] = {0};
	const uint8_t *p = cursor_take(c, n);

	if (!p && !c->failed)
		return empty;
	return p;
}

/* libpq's rule: a parsed message must be consumed exactly, no more, no less. */
bool pq_cursor_done(const struct pq_cursor *c)
{
	return !c->failed && pq_cursor_left(c) == 0;
}

/* ---- startup packet ---- */

/*
 * Walk a StartupMessage parameter list the way the server does
 * (ProcessStartupPacket): pairs of NUL-terminated strings, then an empty
 * name that must be the very last byte.
 */
static enum pq_status check_startup_params(const uint8_t *p, size_t len)
{
	struct pq_cursor c;

	pq_cursor_init(&c, p, len);
	for (;;) {
		const char *name = pq_get_str(&c);
		if (c.failed)
			return PQ_ERR_FORMAT; /* missing final NUL or unterminated name */
		if (name[0] == '\0')
			return pq_cursor_left(&c) == 0 ? PQ_OK : PQ_ERR_FORMAT;
		(void)pq_get_str(&c);
		if (c.failed)
			return PQ_ERR_FORMAT; /* name without value, or value unterminated */
	}
}

/*
 * The length word must agree with 'len': a caller that framed the packet with
 * pq_read_startup_len() passes exactly that many bytes, and a mismatch means
 * the two disagree about where the packet ends.  'out' is filled as far as it
 * was understood, so that on PQ_ERR_VERSION out->code tells the caller which
 * version was asked for.
 */
enum pq_status pq_parse_startup(const uint8_t *pkt, size_t len, struct pq_startup *out)
{
	uint32_t code;
	enum pq_status st;

	memset(out, 0, sizeof(*out));
	if (len < 8 || len > PQ_STARTUP_MAX)
		return PQ_ERR_LENGTH;
	if (rd32(pkt) != len)
		return PQ_ERR_FORMAT;
	code = rd32(pkt + 4);
	out->code = code;

	switch (code) {
	case PQ_SSL_REQUEST_CODE:
	case PQ_GSSENC_REQUEST_CODE:
		return len == PQ_REQUEST_LEN ? PQ_OK : PQ_ERR_FORMAT;
	case PQ_CANCEL_REQUEST_CODE:
		/* Protocol 3.0 keys only: 3.2's longer keys are not accepted. */
		if (len != PQ_CANCEL_LEN)
			return PQ_ERR_FORMAT;
		out->cancel_pid = rd32(pkt + 8);
		out->cancel_key = rd32(pkt + 12);
		return PQ_OK;
	default:
		break;
	}

	/* Any minor is accepted here: the caller negotiates it down. */
	if (PQ_PROTOCOL_MAJOR(code) != 3)
		return PQ_ERR_VERSION;
	st = check_startup_params(pkt + 8, len - 8);
	if (st != PQ_OK)
		return st;
	out->params = pkt + 8;
	out->params_len = len - 8;
	return PQ_OK;
}

/*
 * The list was validated by pq_parse_startup(), but the cursor checks are
 * kept anyway so that a caller passing an unvalidated list still cannot read
 * out of bounds; it just sees the iteration stop early.
 */
bool pq_startup_next(struct pq_cursor *c, const char **name, const char **value)
{
	const char *n, *v;

	*name = NULL;
	*value = NULL;
	n = pq_get_str(c);
	if (c->failed || n[0] == '\0')
		return false;
	v = pq_get_str(c);
	if (c->failed)
		return false;
	*name = n;
	*value = v;
	return true;
}

/* ---- ErrorResponse / NoticeResponse ---- */

/*
 * 'V' (the non-localized severity, since 9.6) wins over 'S' whatever their
 * order, since only it can be compared against "FATAL" or "PANIC" reliably.
 * Unknown field types are skipped, as the protocol asks.  Nothing may
 * follow the terminating 0 byte.
 */
enum pq_status pq_parse_error(const uint8_t *body, size_t len, struct pq_error_fields *out)
{
	struct pq_cursor c;
	bool have_v = false;

	memset(out, 0, sizeof(*out));
	pq_cursor_init(&c, body, len);
	for (;;) {
		uint8_t t = pq_get_u8(&c);
		const char *s;

		if (c.failed)
			return PQ_ERR_FORMAT; /* missing terminating 0 */
		if (t == 0)
			break;
		s = pq_get_str(&c);
		if (c.failed)
			return PQ_ERR_FORMAT;
		switch (t) {
		case 'V':
			out->severity = s;
			have_v = true;
			break;
		case 'S':
			if (!have_v)
				out->severity = s;
			break;
		case 'C':
			out->sqlstate = s;
			break;
		case 'M':
			out->message = s;
			break;
		case 'D':
			out->detail = s;
			break;
		case 'H':
			out->hint = s;
			break;
		default:
			break;
		}
	}
	return pq_cursor_left(&c) == 0 ? PQ_OK : PQ_ERR_FORMAT;
}

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

/* Blanks as the PostgreSQL lexer counts them. */
static bool sql_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Characters that may continue an unquoted identifier or keyword. */
static bool sql_ident_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '$' || ch >= 0x80;
}

/* Skip blanks and comments from off; returns the offset of the next token. */
static size_t sql_skip(const uint8_t *sql, size_t len, size_t off)
{
	while (off < len) {
		if (sql_blank(sql[off])) {
			off++;
		} else if (sql[off] == '-' && off + 1 < len && sql[off + 1] == '-') {
			while (off < len && sql[off] != '\n')
				off++;
		} else if (sql[off] == '/' && off + 1 < len && sql[off + 1] == '*') {
			int depth = 1;

			off += 2;
			while (off < len && depth > 0) {
				if (sql[off] == '*' && off + 1 < len && sql[off + 1] == '/') {
					depth--;
					off += 2;
				} else if (sql[off] == '/' && off + 1 < len && sql[off + 1] == '*') {
					depth++;
					off += 2;
				} else {
					off++;
				}
			}
		} else {
			break;
		}
	}
	return off;
}

enum pq_sql_tok pq_sql_token(const uint8_t *sql, size_t len, size_t *off, char *out, size_t outlen)
{
	size_t i = sql_skip(sql, len, *off), n = 0;

	if (outlen == 0)
		return PQ_SQL_OTHER;
	out[0] = '\0';
	if (i >= len || sql[i] == '\0') {
		*off = i;
		return PQ_SQL_END;
	}
	if (sql[i] == '"') {
		bool fits = true;

		for (i++; i < len && sql[i] != '\0'; i++) {
			if (sql[i] == '"') {
				if (i + 1 < len && sql[i + 1] == '"') {
					i++;
				} else {
					break;
				}
			}
			if (n + 1 < outlen)
				out[n++] = (char)sql[i];
			else
				fits = false;
		}
		out[n] = '\0';
		if (i >= len || sql[i] != '"') {
			*off = i;
			return PQ_SQL_END; /* cut off inside the quotes */
		}
		*off = i + 1;
		return fits ? PQ_SQL_QUOTED : PQ_SQL_OTHER;
	}
	if (!sql_ident_char(sql[i]) || (sql[i] >= '0' && sql[i] <= '9')) {
		out[0] = (char)sql[i];
		if (outlen > 1)
			out[1] = '\0';
		*off = i + 1;
		return PQ_SQL_OTHER;
	}
	for (; i < len && sql_ident_char(sql[i]); i++) {
		if (n + 1 >= outlen) {
			while (i < len && sql_ident_char(sql[i]))
				i++;
			*off = i;
			out[0] = '\0';
			return PQ_SQL_OTHER;
		}
		out[n++] = (char)(sql[i] >= 'A' && sql[i] <= 'Z' ? sql[i] + ('a' - 'A') : sql[i]);
	}
	out[n] = '\0';
	*off = i;
	return PQ_SQL_WORD;
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

/* ---- logging ---- */

/* Names of the messages a client sends. */
static const char *frontend_msg_name(uint8_t type)
{
	switch (type) {
	case 'Q':
		return "Query";
	case 'P':
		return "Parse";
	case 'B':
		return "Bind";
	case 'E':
		return "Execute";
	case 'D':
		return "Describe";
	case 'C':
		return "Close";
	case 'S':
		return "Sync";
	case 'H':
		return "Flush";
	case 'F':
		return "FunctionCall";
	case 'd':
		return "CopyData";
	case 'c':
		return "CopyDone";
	case 'f':
		return "CopyFail";
	case 'X':
		return "Terminate";
	case 'p':
		return "PasswordMessage"; /* also GSS/SASL responses */
	default:
		return "unknown";
	}
}

/* Names of the messages a server sends. */
static const char *backend_msg_name(uint8_t type)
{
	switch (type) {
	case 'R':
		return "Authentication";
	case 'K':
		return "BackendKeyData";
	case 'S':
		return "ParameterStatus";
	case 'Z':
		return "ReadyForQuery";
	case 'T':
		return "RowDescription";
	case 'D':
		return "DataRow";
	case 'C':
		return "CommandComplete";
	case 'E':
		return "ErrorResponse";
	case 'N':
		return "NoticeResponse";
	case 'A':
		return "NotificationResponse";
	case 'G':
		return "CopyInResponse";
	case 'H':
		return "CopyOutResponse";
	case 'W':
		return "CopyBothResponse";
	case 'd':
		return "CopyData";
	case 'c':
		return "CopyDone";
	case 't':
		return "ParameterDescription";
	case 'n':
		return "NoData";
	case '1':
		return "ParseComplete";
	case '2':
		return "BindComplete";
	case '3':
		return "CloseComplete";
	case 's':
		return "PortalSuspended";
	case 'I':
		return "EmptyQueryResponse";
	case 'V':
		return "FunctionCallResponse";
	case 'v':
		return "NegotiateProtocolVersion";
	default:
		return "unknown";
	}
}

/* The same byte means different messages in each direction ('E', 'D', ...). */
const char *pq_msg_name(uint8_t type, bool from_backend)
{
	return from_backend ? backend_msg_name(type) : frontend_msg_name(type);
}

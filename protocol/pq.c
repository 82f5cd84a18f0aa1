/*
 * pq.c - PostgreSQL frontend/backend protocol v3, reading: framing, the field
 * cursor, the startup packet, ErrorResponse fields and message names for logs.
 *
 * Everything here works on caller-owned bytes: the readers never look past
 * the length they are given, whatever the input.  Building messages is
 * pq_build.c's job, glancing at SQL text sqllex.c's.
 *
 * All integers on the wire are in network byte order; they are assembled
 * byte by byte rather than through ntohl() on a cast pointer, because the
 * bytes in a receive buffer have no alignment guarantee.
 */
#include "protocol/pq.h"

#include <stdint.h>
#include <string.h>

/* Length of a CancelRequest: length word, request code, pid and key. */
#define PQ_CANCEL_LEN 16

/* Length of an SSLRequest or GSSENCRequest: length word and request code. */
#define PQ_REQUEST_LEN 8

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

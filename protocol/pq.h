/*
 * pq.h - PostgreSQL frontend/backend protocol v3, reading: framing, parsing,
 * the wire's constants, and message names for logs.
 *
 * This module is pure: it uses libc only (no libevent, OpenSSL or libpq), does
 * no I/O and keeps no global state, so it can be unit-tested and fuzzed alone.
 *
 * Reading: pq_read_header() frames a regular message from the bytes seen so
 * far; a struct pq_cursor reads fields out of a message body and remembers a
 * failure (underflow, missing terminator) instead of reading out of bounds.
 *
 * Writing is pq_build.h's job (struct pq_buf and the pq_build_*() helpers);
 * the glance at SQL text is sqllex.h's.
 */
#ifndef PGCUTOVER_PQ_H
#define PGCUTOVER_PQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every regular message starts with a type byte and a 4-byte length. */
#define PQ_HEADER_SIZE 5

/*
 * The longest startup packet accepted, length word included: PostgreSQL
 * refuses one whose length after the length word exceeds
 * MAX_STARTUP_PACKET_LENGTH (10000), so do we (08P01 "invalid length of
 * startup packet"), before reading its body.
 */
#define PQ_STARTUP_MAX (10000 + 4)

/* Protocol versions and special request codes carried in the startup packet. */
#define PQ_PROTOCOL(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PQ_PROTOCOL_MAJOR(v)      ((v) >> 16)
#define PQ_PROTOCOL_MINOR(v)      ((v)&0xffff)
#define PQ_CANCEL_REQUEST_CODE    PQ_PROTOCOL(1234, 5678)
#define PQ_SSL_REQUEST_CODE       PQ_PROTOCOL(1234, 5679)
#define PQ_GSSENC_REQUEST_CODE    PQ_PROTOCOL(1234, 5680)

/* Authentication request codes ('R' messages). */
enum pq_auth_code {
	PQ_AUTH_OK = 0,
	PQ_AUTH_CLEARTEXT = 3,
	PQ_AUTH_MD5 = 5,
	PQ_AUTH_SASL = 10,
	PQ_AUTH_SASL_CONTINUE = 11,
	PQ_AUTH_SASL_FINAL = 12,
};

/* Result of the framing and parsing functions (the NGX_AGAIN idea). */
enum pq_status {
	PQ_OK = 0,           /* a complete, valid item is available */
	PQ_NEED_MORE = 1,    /* not enough bytes yet: read more and call again */
	PQ_ERR_LENGTH = -1,  /* declared length below the minimum or above the limit */
	PQ_ERR_FORMAT = -2,  /* contents malformed (bad terminator, underflow, trailing bytes) */
	PQ_ERR_VERSION = -3, /* startup packet asks for a protocol major we do not speak */
};

/*
 * Frame a regular (typed) message from the first 'avail' bytes of 'buf'.
 * On PQ_OK, *type is the type byte and *len the declared length, which counts
 * itself but not the type byte (so the whole message is 1 + *len bytes).
 * Fewer than PQ_HEADER_SIZE bytes -> PQ_NEED_MORE.  A length below 4 or above
 * max_len -> PQ_ERR_LENGTH (*type and *len are still filled in for logging).
 * PQ_OK needs only the header: the caller checks that 1 + *len bytes have
 * arrived before reading the body, or streams the body as it comes.
 */
enum pq_status pq_read_header(const uint8_t *buf, size_t avail, uint8_t *type, uint32_t *len,
			      uint32_t max_len);

/*
 * Frame an untyped startup-phase packet (StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest): a 4-byte length that counts itself.
 * A length below 8 or above PQ_STARTUP_MAX -> PQ_ERR_LENGTH.
 */
enum pq_status pq_read_startup_len(const uint8_t *buf, size_t avail, uint32_t *len);

/* ---- reading fields ---- */

/* A read cursor over one message body; every getter fails softly on underflow. */
struct pq_cursor {
	const uint8_t *p;   /* next byte to read */
	const uint8_t *end; /* one past the last byte of the body */
	bool failed;        /* set by the first read that ran past 'end' */
};

void pq_cursor_init(struct pq_cursor *c, const void *data, size_t len);
uint8_t pq_get_u8(struct pq_cursor *c);
uint16_t pq_get_u16(struct pq_cursor *c);
uint32_t pq_get_u32(struct pq_cursor *c);
int32_t pq_get_i32(struct pq_cursor *c);
/* A NUL-terminated string inside the body; "" and failure when unterminated. */
const char *pq_get_str(struct pq_cursor *c);
/* n raw bytes; NULL and failure when fewer remain. */
const uint8_t *pq_get_bytes(struct pq_cursor *c, size_t n);
size_t pq_cursor_left(const struct pq_cursor *c);
/* True when nothing failed and the body was consumed exactly. */
bool pq_cursor_done(const struct pq_cursor *c);

/* ---- startup packet ---- */

struct pq_startup {
	uint32_t code;         /* protocol version, or one of the *_REQUEST_CODEs */
	uint32_t cancel_pid;   /* CancelRequest only */
	uint32_t cancel_key;   /* CancelRequest only */
	const uint8_t *params; /* StartupMessage: the name/value pairs, ... */
	size_t params_len;     /* ... ending with the final NUL (included) */
};

/*
 * Parse a complete untyped packet (length word included, as framed by
 * pq_read_startup_len).  For a StartupMessage the whole parameter list is
 * validated: every name and value NUL-terminated inside the packet, a final
 * empty name, nothing after it (PQ_ERR_FORMAT otherwise).  A major version
 * other than 3 -> PQ_ERR_VERSION.  Requests must have their exact lengths.
 * 'len' must equal the length word (PQ_ERR_FORMAT otherwise); out->code is
 * set even on PQ_ERR_VERSION so the caller can report what was asked for.
 */
enum pq_status pq_parse_startup(const uint8_t *pkt, size_t len, struct pq_startup *out);

/*
 * Iterate over a validated StartupMessage's parameters: 'c' starts as
 * pq_cursor_init(c, st->params, st->params_len).  Returns false at the end.
 */
bool pq_startup_next(struct pq_cursor *c, const char **name, const char **value);

/* ---- ErrorResponse / NoticeResponse ---- */

struct pq_error_fields {
	const char *severity; /* 'V' when present, else 'S' */
	const char *sqlstate; /* 'C' */
	const char *message;  /* 'M' */
	const char *detail;   /* 'D', may be NULL */
	const char *hint;     /* 'H', may be NULL */
};

/*
 * Parse the body (after the header) of an 'E' or 'N' message.  Every field
 * absent from the message is left NULL, severity, sqlstate and message
 * included; the strings point into 'body'.  An unterminated string, a missing
 * final 0 byte or bytes after it -> PQ_ERR_FORMAT.
 */
enum pq_status pq_parse_error(const uint8_t *body, size_t len, struct pq_error_fields *out);

/* Human-readable name of a message type for logs ("Query", "DataRow", ...). */
const char *pq_msg_name(uint8_t type, bool from_backend);

#endif /* PGCUTOVER_PQ_H */

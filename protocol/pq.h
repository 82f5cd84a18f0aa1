/*
 * pq.h - PostgreSQL frontend/backend protocol v3: framing, parsing, building.
 *
 * This module is pure: it uses libc only (no libevent, OpenSSL or libpq), does
 * no I/O and keeps no global state, so it can be unit-tested and fuzzed alone.
 *
 * Reading: pq_read_header() frames a regular message from the bytes seen so
 * far; a struct pq_cursor reads fields out of a message body and remembers a
 * failure (underflow, missing terminator) instead of reading out of bounds.
 *
 * Writing: a struct pq_buf is a growable byte buffer with a sticky failure
 * flag; pq_msg_begin()/pq_msg_end() bracket one message and patch its length,
 * and the pq_build_*() helpers synthesise the messages the proxy sends itself.
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

struct pq_buf;

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

/*
 * An ErrorResponse or NoticeResponse ('type') with every field of 'body' (as
 * pq_parse_error reads it) in its order, except that the 'M' field says
 * 'message' instead.  PQ_ERR_FORMAT when body is malformed (b is untouched).
 */
enum pq_status pq_build_error_remessaged(struct pq_buf *b, uint8_t type, const uint8_t *body,
					 size_t len, const char *message);

/* ---- building ---- */

/* A growable output buffer with a sticky failure flag (allocation or limit). */
struct pq_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t msg_start; /* offset of the message being built (for the length patch) */
	bool has_type;    /* whether that message has a type byte */
	bool failed;      /* an allocation failed: the contents must not be sent */
};

void pq_buf_init(struct pq_buf *b);
void pq_buf_free(struct pq_buf *b);
void pq_buf_reset(struct pq_buf *b); /* empty it, keep the memory, clear failure */
void pq_put_u8(struct pq_buf *b, uint8_t v);
void pq_put_u16(struct pq_buf *b, uint16_t v);
void pq_put_u32(struct pq_buf *b, uint32_t v);
void pq_put_i32(struct pq_buf *b, int32_t v);
void pq_put_bytes(struct pq_buf *b, const void *p, size_t n);
void pq_put_str(struct pq_buf *b, const char *s); /* with its NUL; NULL is sent as "" */

/*
 * Start a message; type 0 starts an untyped (startup-phase) packet.  Only one
 * message may be open at a time: nested begin/end pairs are not supported.
 */
void pq_msg_begin(struct pq_buf *b, uint8_t type);
/* Finish it: patch the length word (bytes from the length word to the end). */
void pq_msg_end(struct pq_buf *b);

/* ErrorResponse ('E') or, with severity "NOTICE"/"WARNING", use pq_build_notice. */
void pq_build_error(struct pq_buf *b, const char *severity, const char *sqlstate,
		    const char *message, const char *detail, const char *hint);
void pq_build_notice(struct pq_buf *b, const char *severity, const char *sqlstate,
		     const char *message, const char *detail, const char *hint);
/* AuthenticationXXX ('R'): code plus optional payload. */
void pq_build_auth(struct pq_buf *b, uint32_t code, const void *data, size_t len);
/* AuthenticationSASL listing mechanisms (a NULL-terminated array). */
void pq_build_auth_sasl(struct pq_buf *b, const char *const *mechanisms);
void pq_build_param_status(struct pq_buf *b, const char *name, const char *value);
void pq_build_backend_key(struct pq_buf *b, uint32_t pid, uint32_t key);
void pq_build_ready(struct pq_buf *b, char txn_status);
void pq_build_query(struct pq_buf *b, const char *sql);
void pq_build_terminate(struct pq_buf *b);
/* RowDescription with all columns of type text. */
void pq_build_row_description(struct pq_buf *b, int ncols, const char *const *names);
/* DataRow; a NULL value is sent as SQL NULL. */
void pq_build_data_row(struct pq_buf *b, int ncols, const char *const *values);
void pq_build_command_complete(struct pq_buf *b, const char *tag);
void pq_build_empty_query(struct pq_buf *b);
/* NegotiateProtocolVersion ('v'). */
void pq_build_negotiate_version(struct pq_buf *b, uint32_t newest_minor, int nopts,
				const char *const *opts);
/* StartupMessage for protocol 3.0 from name/value pairs (kv has 2*npairs entries). */
void pq_build_startup(struct pq_buf *b, const char *const *kv, size_t npairs);
void pq_build_cancel_request(struct pq_buf *b, uint32_t pid, uint32_t key);
/* PasswordMessage ('p') carrying a NUL-terminated password. */
void pq_build_password(struct pq_buf *b, const char *password);
/* SASLInitialResponse ('p'): mechanism name, then length-prefixed data. */
void pq_build_sasl_initial(struct pq_buf *b, const char *mechanism, const void *data, size_t len);
/* SASLResponse ('p'): raw data. */
void pq_build_sasl_response(struct pq_buf *b, const void *data, size_t len);

/* Parse ('P'): a statement name, then 'rest' = query NUL, int16 count, int32 types. */
void pq_build_parse(struct pq_buf *b, const char *name, const void *rest, size_t rest_len);
/* Close ('C') of a statement ('S') or portal ('P'). */
void pq_build_close(struct pq_buf *b, char kind, const char *name);

/* ---- a glance at SQL text ---- */

/*
 * What pq_sql_token() found.  The proxy never parses SQL; it only looks at
 * the first words of a statement to see whether it may change session state
 * (SET, LISTEN, PREPARE...), the way PostgreSQL's own lexer splits words.
 */
enum pq_sql_tok {
	PQ_SQL_END,    /* nothing but blanks and comments left */
	PQ_SQL_WORD,   /* an unquoted word: out holds it folded to lower case */
	PQ_SQL_QUOTED, /* a "quoted identifier": out holds it as written, "" undoubled */
	PQ_SQL_OTHER,  /* any other character (out holds it), or a word too long for out */
};

/*
 * Read the next token of sql[0..len) from *off, skipping blanks, -- comments
 * and (nested) block comments; *off moves past it.  Words longer than
 * outlen - 1 bytes come back as PQ_SQL_OTHER.  Text cut off in the middle (a
 * prefix of a longer query) simply ends the scan.
 */
enum pq_sql_tok pq_sql_token(const uint8_t *sql, size_t len, size_t *off, char *out, size_t outlen);

/* Human-readable name of a message type for logs ("Query", "DataRow", ...). */
const char *pq_msg_name(uint8_t type, bool from_backend);

#endif /* PGCUTOVER_PQ_H */

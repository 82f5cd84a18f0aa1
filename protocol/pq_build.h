/*
 * pq_build.h - PostgreSQL frontend/backend protocol v3, writing: a buffer and
 * the builders of the messages the proxy sends itself.
 *
 * This module is pure: it uses libc only (no libevent, OpenSSL or libpq), does
 * no I/O and keeps no global state, so it can be unit-tested and fuzzed alone.
 *
 * A struct pq_buf is a growable byte buffer with a sticky failure flag;
 * pq_msg_begin()/pq_msg_end() bracket one message and patch its length, and
 * the pq_build_*() helpers synthesise the messages the proxy sends itself.
 */
#ifndef PGCUTOVER_PQ_BUILD_H
#define PGCUTOVER_PQ_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/pq.h"

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
/*
 * An ErrorResponse or NoticeResponse ('type') with every field of 'body' (as
 * pq_parse_error reads it) in its order, except that the 'M' field says
 * 'message' instead.  PQ_ERR_FORMAT when body is malformed (b is untouched).
 */
enum pq_status pq_build_error_remessaged(struct pq_buf *b, uint8_t type, const uint8_t *body,
					 size_t len, const char *message);
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

#endif /* PGCUTOVER_PQ_BUILD_H */

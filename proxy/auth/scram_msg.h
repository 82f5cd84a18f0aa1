/*
 * scram_msg.h - reading and assembling SCRAM-SHA-256 messages (RFC 5802):
 * the pieces scram_server.c and scram_client.c share, and secret.c's count
 * parser.  Internal to proxy/auth/; nothing outside it needs these.
 *
 * Messages are read with a small cursor over (pointer, end), so that nothing
 * relies on a terminator: SASL data comes from untrusted peers with an
 * explicit length.  Message formats follow PostgreSQL's own implementation
 * (auth-scram.c on the server, fe-auth-scram.c in libpq): where the RFC is
 * loose and PostgreSQL strict, we are strict too.
 *
 * Error strings handed back through `const char **err` are static, lower
 * case, and fit to be sent to the peer in an ErrorResponse.
 */
#ifndef PGCUTOVER_AUTH_SCRAM_MSG_H
#define PGCUTOVER_AUTH_SCRAM_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/auth/crypto.h"

/* Random bytes in a nonce, either side; base64 makes 24 characters of them. */
#define AUTH_SCRAM_NONCE_RAW_LEN 18
#define AUTH_SCRAM_NONCE_LEN     AUTH_B64_ENCODED_LEN(AUTH_SCRAM_NONCE_RAW_LEN)

/* Errors both sides report, each defined once so that the two cannot drift. */
extern const char auth_scram_err_order[];  /* a message arrived in the wrong state */
extern const char auth_scram_err_mext[];   /* a mandatory extension (m=) was sent */
extern const char auth_scram_err_oom[];    /* out of memory */
extern const char auth_scram_err_crypto[]; /* OpenSSL failed to compute a key */

/* Sets *err when the caller asked for it (err may be NULL). */
static inline void auth_scram_set_err(const char **err, const char *msg)
{
	if (err)
		*err = msg;
}

/* A read position inside a SCRAM message that is not NUL-terminated. */
struct auth_scram_cursor {
	const char *p;   /* next unread byte */
	const char *end; /* one past the last byte */
};

/*
 * Reads "<attr>=<value>" at the cursor; the value runs to the next ',' or the
 * end, and the cursor stops on that ',' (or the end).
 */
AUTH_MUST_CHECK bool auth_scram_read_attr(struct auth_scram_cursor *cur, char attr,
					  const char **val, size_t *val_len);

/* Consumes the ',' between attributes; one must follow it. */
AUTH_MUST_CHECK bool auth_scram_comma(struct auth_scram_cursor *cur);

/* True when the cursor is on "<attr>=". */
bool auth_scram_at_attr(const struct auth_scram_cursor *cur, char attr);

/* An optional extension attribute: ALPHA "=" 1*value-char (RFC 5802). */
AUTH_MUST_CHECK bool auth_scram_skip_extension(struct auth_scram_cursor *cur);

/* A nonce is 1*printable: %x21-7E except ','. */
bool auth_scram_valid_nonce(const char *n, size_t len);

/*
 * Parses a decimal iteration count: digits only, 1..INT_MAX.  Signs, spaces
 * and empty strings are refused (strtol would take them).
 */
AUTH_MUST_CHECK bool auth_scram_parse_count(const char *s, size_t len, int *out);

/*
 * AuthMessage = client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof; malloc'd, *len set.  NULL when out of
 * memory.
 */
AUTH_MUST_CHECK char *auth_scram_auth_message(const char *bare, size_t bare_len, const char *first,
					      size_t first_len, const char *final, size_t final_len,
					      size_t *len);

/* malloc'd copy of s[0..len) with a NUL; NULL when out of memory. */
AUTH_MUST_CHECK char *auth_scram_dup_bytes(const char *s, size_t len);

#endif /* PGCUTOVER_AUTH_SCRAM_MSG_H */

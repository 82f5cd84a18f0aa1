/*
 * md5.h - PostgreSQL's MD5 password authentication: the stored hash, the
 * response to an AuthenticationMD5Password challenge, and checking a
 * client's response, from a plaintext or MD5 auth_file secret (secret.h
 * says which is which).
 */
#ifndef PGCUTOVER_AUTH_MD5_H
#define PGCUTOVER_AUTH_MD5_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/auth/crypto.h"

/*
 * MD5 (PostgreSQL): stored = "md5" + hex(md5(password || user)).
 * out receives 35 characters and a NUL.  If MD5 is unavailable (an OpenSSL
 * in FIPS mode) out is set to "", which matches no response.
 */
void auth_md5_stored(const char *user, const char *password, char out[36]);

/*
 * The response to an AuthenticationMD5Password challenge:
 * "md5" + hex(md5(hex part of the stored hash || salt[4])), computed from a
 * plaintext or MD5 secret.  False for a SCRAM secret (which cannot answer an
 * MD5 challenge) or when MD5 is unavailable.
 */
AUTH_MUST_CHECK bool auth_md5_response(const char *user, const char *secret, const uint8_t salt[4],
				       char out[36]);

/*
 * Checks a client's PasswordMessage for an MD5 challenge against a plaintext
 * or MD5 secret, in constant time.  False for a SCRAM secret.
 */
AUTH_MUST_CHECK bool auth_md5_verify(const char *user, const char *secret, const uint8_t salt[4],
				     const char *response);

#endif /* PGCUTOVER_AUTH_MD5_H */

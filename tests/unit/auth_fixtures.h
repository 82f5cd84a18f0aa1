/*
 * auth_fixtures.h - what the proxy/auth/ unit tests share: known answers
 * from outside this code (the RFC 7677 test vector, a secret made by
 * PostgreSQL 15 itself, values computed with Python's hashlib/hmac) and
 * helpers that feed the SCRAM functions as the wire does.
 *
 * SCRAM messages are copied into heap blocks of exactly their length with no
 * terminator, as they arrive off the wire, so that AddressSanitizer catches
 * any read past the end.
 */
#ifndef PGCUTOVER_AUTH_FIXTURES_H
#define PGCUTOVER_AUTH_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/scram_client.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"

/* RFC 7677 section 3: SCRAM-SHA-256 exchange for user "user", password "pencil". */
#define RFC_CLIENT_NONCE          "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE          "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT                  "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST          "n,,n=user,r=" RFC_CLIENT_NONCE
#define RFC_SERVER_FIRST          "r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL_NO_PROOF "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE
#define RFC_CLIENT_FINAL          RFC_CLIENT_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
/* As printed in RFC 7677 and recomputed with Python (hmac over the AuthMessage). */
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* Made by PostgreSQL 15: CREATE ROLE u1 PASSWORD 'pencil' with scram-sha-256. */
#define PG_SECRET_PENCIL                                                             \
	"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d" \
	"/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc="

/*
 * Python (hashlib.pbkdf2_hmac / hmac): "pencil", salt bytes 0..15, 4096
 * iterations (test_scram_client.c holds the ClientKey that goes with it).
 */
#define PY_SECRET_PENCIL                                                               \
	"SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+" \
	"E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="

/* base64 of 32, 31 and 33 zero bytes: a well-formed wrong proof and two bad sizes. */
#define ZERO_PROOF_32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define ZERO_PROOF_31 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
#define ZERO_PROOF_33 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* Copy n bytes into a block of exactly n bytes, no terminator (ASan catches overreads). */
char *ut_dup_exact(const char *p, size_t n);

/* The API calls, fed an exact-size unterminated copy of a C string prefix. */
char *ut_srv_first_n(struct auth_scram_server *s, const char *msg, size_t n, const char **err);
char *ut_srv_first(struct auth_scram_server *s, const char *msg, const char **err);
char *ut_srv_final_n(struct auth_scram_server *s, const char *msg, size_t n, bool *wrong,
		     const char **err);
char *ut_srv_final(struct auth_scram_server *s, const char *msg, bool *wrong, const char **err);
char *ut_cli_final(struct auth_scram_client *c, const char *msg, const char **err);
bool ut_cli_verify(struct auth_scram_client *c, const char *msg, const char **err);

/* Decodes a base64 literal the tests trust (a failure shows as an empty result). */
size_t ut_b64(const char *s, uint8_t *out, size_t cap);

/* Outcome of ut_run_exchange(): how far a full client<->server exchange got. */
enum exchange_result {
	EXCHANGE_OK,
	EXCHANGE_CLIENT_FIRST,  /* client could not produce client-first */
	EXCHANGE_SERVER_FIRST,  /* server refused client-first */
	EXCHANGE_CLIENT_FINAL,  /* client refused server-first */
	EXCHANGE_SERVER_FINAL,  /* server refused client-final (see *wrong) */
	EXCHANGE_CLIENT_VERIFY, /* client refused server-final */
};

/* Runs auth_scram_client_* against auth_scram_server_*, both already initialised. */
enum exchange_result ut_run_exchange(struct auth_scram_server *s, struct auth_scram_client *c,
				     bool *wrong, const char **err);

/* The RFC 7677 secret: "pencil" with the RFC's salt and 4096 iterations. */
bool ut_rfc_secret(struct auth_scram_secret *secret);

#endif /* PGCUTOVER_AUTH_FIXTURES_H */

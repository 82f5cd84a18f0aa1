/*
 * test_scram_client.c - unit tests for proxy/auth/scram_client.c: the
 * RFC 7677 exchange in password and keys mode, logging in with a recovered
 * ClientKey, the order of the calls on both sides, and malformed server
 * messages.
 */
#include "unit.h"

#include "auth_fixtures.h"
#include "proxy/auth/crypto.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/scram_msg.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"

#include <stdint.h>
#include <stdlib.h>

/*
 * Python (hashlib.pbkdf2_hmac / hmac): the ClientKey that goes with
 * PY_SECRET_PENCIL ("pencil", salt bytes 0..15, 4096 iterations).
 */
static const uint8_t py_client_key[32] = {
	0x05, 0x6d, 0x77, 0x12, 0x6a, 0x04, 0xe6, 0x5d, 0x7e, 0xfa, 0x55,
	0x12, 0x7b, 0x19, 0xa9, 0x26, 0x31, 0xa6, 0x94, 0x7d, 0xff, 0xf7,
	0xb5, 0x97, 0xe9, 0xa2, 0xf2, 0xe5, 0xf1, 0xd1, 0x9c, 0xb9,
};

static void test_scram_rfc7677_client(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	struct auth_scram_client c;
	const char *err = NULL;
	char *m;
	bool wrong;

	/* Password mode reproduces the RFC's messages exactly. */
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	UT_ASSERT(auth_scram_client_set_nonce_for_tests(&c, RFC_CLIENT_NONCE, "user"));
	m = auth_scram_client_first(&c);
	UT_EQ_STR(m, RFC_CLIENT_FIRST);
	free(m);
	m = ut_cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_EQ_STR(m, RFC_CLIENT_FINAL);
	free(m);
	UT_ASSERT(ut_cli_verify(&c, RFC_SERVER_FINAL, &err));
	UT_ASSERT(err == NULL);
	auth_scram_client_free(&c);

	/* Keys mode, with the ClientKey a server recovered from the RFC's proof, does too. */
	UT_ASSERT(ut_rfc_secret(&secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	m = ut_srv_first(&s, RFC_CLIENT_FIRST, &err);
	free(m);
	m = ut_srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
	UT_ASSERT(m);
	free(m);
	UT_ASSERT(auth_scram_client_init_keys(&c, auth_scram_server_client_key(&s), &secret));
	auth_scram_server_free(&s);
	UT_ASSERT(auth_scram_client_set_nonce_for_tests(&c, RFC_CLIENT_NONCE, "user"));
	m = auth_scram_client_first(&c);
	UT_EQ_STR(m, RFC_CLIENT_FIRST);
	free(m);
	m = ut_cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_EQ_STR(m, RFC_CLIENT_FINAL);
	free(m);
	UT_ASSERT(ut_cli_verify(&c, RFC_SERVER_FINAL, &err));
	auth_scram_client_free(&c);
}

static void test_scram_exchange_password_then_keys(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	struct auth_scram_client c;
	uint8_t salt[16], first_key[32];
	const char *err;
	bool wrong;

	UT_ASSERT(auth_random_bytes(salt, sizeof(salt)));
	UT_ASSERT(auth_scram_secret_from_password("correct horse", salt, sizeof(salt), 4096,
						  &secret));

	/* 1: the client knows the password; the server recovers its ClientKey. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "correct horse"));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_INT(c.state, AUTH_SCRAM_CLIENT_DONE);
	UT_EQ_INT(s.state, AUTH_SCRAM_SERVER_DONE);
	UT_ASSERT(auth_scram_server_client_key(&s));
	memcpy(first_key, auth_scram_server_client_key(&s), 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* 2: the proxy logs in elsewhere with only that key and the secret. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_keys(&c, first_key, &secret));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_MEM(auth_scram_server_client_key(&s), first_key, 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* The PostgreSQL-made secret works against our password client too. */
	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* And Python's, whose ClientKey we know. */
	UT_ASSERT(auth_scram_parse_secret(PY_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_MEM(auth_scram_server_client_key(&s), py_client_key, 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);
}

static void test_scram_keys_secret_mismatch(void)
{
	struct auth_scram_secret secret, other;
	struct auth_scram_server s;
	struct auth_scram_client c;
	const char *err;
	bool wrong;

	/* The server stores the PostgreSQL secret; the userlist a different-salt one. */
	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	UT_ASSERT(auth_scram_parse_secret(PY_SECRET_PENCIL, &other));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_keys(&c, py_client_key, &other));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_CLIENT_FINAL);
	UT_EQ_STR(err, "the SCRAM secret in auth_file does not match the server's "
		       "(different salt or iterations)");
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* Same salt, different iterations: the key recovered at 8192 rounds is useless at 4096. */
	{
		struct auth_scram_secret at8192, at4096;
		uint8_t key[32];

		UT_ASSERT(auth_scram_secret_from_password("pencil", secret.salt, secret.salt_len,
							  8192, &at8192));
		UT_ASSERT(auth_scram_secret_from_password("pencil", secret.salt, secret.salt_len,
							  4096, &at4096));
		auth_scram_server_init(&s, &at8192);
		UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
		UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
		memcpy(key, auth_scram_server_client_key(&s), 32);
		auth_scram_server_free(&s);
		auth_scram_client_free(&c);

		auth_scram_server_init(&s, &at4096);
		UT_ASSERT(auth_scram_client_init_keys(&c, key, &at8192));
		UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_CLIENT_FINAL);
		UT_EQ_STR(err, "the SCRAM secret in auth_file does not match the server's "
			       "(different salt or iterations)");
		auth_scram_server_free(&s);
		auth_scram_client_free(&c);
	}
}

static void test_scram_order(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	struct auth_scram_client c;
	const char *err;
	bool wrong;
	char *r;

	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	r = ut_srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && !wrong && err);
	auth_scram_server_free(&s);

	auth_scram_server_init(&s, &secret);
	r = ut_srv_first(&s, "n,,n=,r=abc", &err);
	UT_ASSERT(r);
	free(r);
	r = ut_srv_first(&s, "n,,n=,r=abc", &err);
	UT_ASSERT(!r && err);
	auth_scram_server_free(&s);

	/* Test hooks only work before the first message. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(!auth_scram_server_set_nonce_for_tests(&s, "a,b"));
	r = ut_srv_first(&s, "n,,n=,r=abc", &err);
	free(r);
	UT_ASSERT(!auth_scram_server_set_nonce_for_tests(&s, "SN"));
	auth_scram_server_free(&s);

	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	r = ut_cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_ASSERT(!r && err);
	UT_ASSERT(!ut_cli_verify(&c, RFC_SERVER_FINAL, &err));
	UT_ASSERT(!auth_scram_client_first(&c));
	auth_scram_client_free(&c);

	/* Our own nonce is 24 base64 characters, and differs each time. */
	{
		struct auth_scram_client c2;
		char *m1, *m2;

		UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
		UT_ASSERT(auth_scram_client_init_password(&c2, "pencil"));
		m1 = auth_scram_client_first(&c);
		m2 = auth_scram_client_first(&c2);
		UT_ASSERT(m1 && m2);
		UT_EQ_INT(strlen(m1), strlen("n,,n=,r=") + AUTH_SCRAM_NONCE_LEN);
		UT_ASSERT(strncmp(m1, "n,,n=,r=", 8) == 0);
		UT_ASSERT(strcmp(m1, m2) != 0);
		free(m1);
		free(m2);
		auth_scram_client_free(&c);
		auth_scram_client_free(&c2);
	}
}

/* A client (RFC nonce) that has sent client-first and awaits server-first. */
static bool rfc_client_ready(struct auth_scram_client *c)
{
	char *m;

	if (!auth_scram_client_init_password(c, "pencil") ||
	    !auth_scram_client_set_nonce_for_tests(c, RFC_CLIENT_NONCE, "user"))
		return false;
	m = auth_scram_client_first(c);
	free(m);
	return m != NULL;
}

static void test_scram_client_server_first_malformed(void)
{
	static const struct {
		const char *msg;
		const char *err; /* NULL = any */
	} cases[] = {
		{"", NULL},
		{"r=" RFC_CLIENT_NONCE ",s=" RFC_SALT ",i=4096",
		 "invalid SCRAM response from server (nonce mismatch)"},
		{"r=rOprNGfwEbeRWgbNEkqX"
		 "abc,s=" RFC_SALT ",i=4096",
		 "invalid SCRAM response from server (nonce mismatch)"},
		{"r=rOprNG,s=" RFC_SALT ",i=4096",
		 "invalid SCRAM response from server (nonce mismatch)"},
		{"r=" RFC_CLIENT_NONCE "a b,s=" RFC_SALT ",i=4096",
		 "invalid SCRAM response from server (nonce mismatch)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=!!!!,i=4096",
		 "malformed SCRAM message from server (invalid salt)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
		 "malformed SCRAM message from server (invalid salt)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=,i=4096",
		 "malformed SCRAM message from server (invalid salt)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=0",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=-1",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=40x",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=99999999999",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=2000000",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=",
		 "malformed SCRAM message from server (invalid iteration count)"},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=4096,x=1", NULL},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=4096,", NULL},
		{"r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT, NULL},
		{"r=" RFC_CLIENT_NONCE "abc,i=4096,s=" RFC_SALT, NULL},
		{"m=x,r=" RFC_CLIENT_NONCE "abc,s=" RFC_SALT ",i=4096", NULL},
		{"s=" RFC_SALT ",i=4096", NULL},
	};
	struct auth_scram_client c;
	const char *err;
	bool accepted;
	char *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		UT_ASSERT(rfc_client_ready(&c));
		err = NULL;
		r = ut_cli_final(&c, cases[i].msg, &err);
		auth_scram_client_free(&c);
		if (r) {
			free(r);
			UT_FAIL("accepted server-first #%zu \"%s\"", i, cases[i].msg);
		}
		if (!err)
			UT_FAIL("no error for server-first #%zu", i);
		if (cases[i].err && strcmp(err, cases[i].err) != 0)
			UT_FAIL("server-first #%zu: \"%s\", expected \"%s\"", i, err, cases[i].err);
	}
	/* Truncations of a valid server-first. */
	for (size_t n = 0; n < strlen(RFC_SERVER_FIRST); n++) {
		char *d = ut_dup_exact(RFC_SERVER_FIRST, n);

		UT_ASSERT(rfc_client_ready(&c));
		r = auth_scram_client_final(&c, d, n, &err);
		free(d);
		auth_scram_client_free(&c);
		accepted = r != NULL;
		free(r);
		/* Cutting digits off "i=4096" leaves a valid, smaller count; anything shorter fails. */
		if (accepted != (n >= strlen(RFC_SERVER_FIRST) - 3))
			UT_FAIL("server-first truncated to %zu: %s", n, accepted ? "accepted" : err);
	}
}

static void test_scram_client_server_final(void)
{
	static const struct {
		const char *msg;
		const char *err;
	} cases[] = {
		{"", "malformed SCRAM message from server (server-final-message)"},
		{"v=", "malformed SCRAM message from server (server-final-message)"},
		{RFC_SERVER_FINAL ",x=1",
		 "malformed SCRAM message from server (server-final-message)"},
		{RFC_SERVER_FINAL "=", "malformed SCRAM message from server (server-final-message)"},
		{"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJzTugGhgk",
		 "malformed SCRAM message from server (server-final-message)"},
		{"v=" ZERO_PROOF_33, "malformed SCRAM message from server (server-final-message)"},
		{"v=" ZERO_PROOF_31, "malformed SCRAM message from server (server-final-message)"},
		{"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJzTugGhgk=",
		 "incorrect server signature in SCRAM exchange"},
		{"v=" ZERO_PROOF_32, "incorrect server signature in SCRAM exchange"},
		{"e=invalid-proof", "SCRAM error from server: invalid-proof"},
		{"e=other-error", "SCRAM error from server: other-error"},
		{"e=something-new", "SCRAM error from server"},
		{"e=", "SCRAM error from server"},
	};
	struct auth_scram_client c;
	const char *err;
	char *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		UT_ASSERT(rfc_client_ready(&c));
		r = ut_cli_final(&c, RFC_SERVER_FIRST, &err);
		UT_ASSERT(r);
		free(r);
		err = NULL;
		if (ut_cli_verify(&c, cases[i].msg, &err)) {
			auth_scram_client_free(&c);
			UT_FAIL("accepted server-final #%zu \"%s\"", i, cases[i].msg);
		}
		auth_scram_client_free(&c);
		if (!err || strcmp(err, cases[i].err) != 0)
			UT_FAIL("server-final #%zu: \"%s\", expected \"%s\"", i,
				err ? err : "(null)", cases[i].err);
	}
}

const struct unit_test unit_tests_scram_client[] = {
	{"scram_client_rfc7677", test_scram_rfc7677_client},
	{"scram_client_password_then_keys", test_scram_exchange_password_then_keys},
	{"scram_client_keys_secret_mismatch", test_scram_keys_secret_mismatch},
	{"scram_order", test_scram_order},
	{"scram_client_server_first_malformed", test_scram_client_server_first_malformed},
	{"scram_client_server_final", test_scram_client_server_final},
	{NULL, NULL},
};

/*
 * test_scram_server.c - unit tests for proxy/auth/scram_server.c: the
 * RFC 7677 exchange, wrong passwords, malformed client messages (every
 * truncation included) and SCRAM-SHA-256-PLUS channel binding.
 */
#include "unit.h"

#include "auth_fixtures.h"
#include "proxy/auth/crypto.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void test_scram_rfc7677_server(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	const char *err = NULL;
	bool wrong = true;
	char *first, *final;

	UT_ASSERT(ut_rfc_secret(&secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	first = ut_srv_first(&s, RFC_CLIENT_FIRST, &err);
	UT_ASSERT(first);
	UT_EQ_STR(first, RFC_SERVER_FIRST);
	free(first);
	UT_ASSERT(auth_scram_server_client_key(&s) == NULL);

	final = ut_srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
	UT_ASSERT(final);
	UT_ASSERT(!wrong);
	UT_EQ_STR(final, RFC_SERVER_FINAL);
	free(final);
	UT_ASSERT(auth_scram_server_client_key(&s) != NULL);
	UT_ASSERT(s.have_client_key);
	{
		/* The recovered key belongs to the secret (init_keys checks SHA256(key) == StoredKey). */
		struct auth_scram_client c;

		UT_ASSERT(auth_scram_client_init_keys(&c, s.client_key, &secret));
		auth_scram_client_free(&c);
	}
	/* A finished exchange accepts nothing more. */
	final = ut_srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
	UT_ASSERT(!final);
	UT_ASSERT(err != NULL);
	auth_scram_server_free(&s);
	UT_ASSERT(!s.have_client_key);
}

static void test_scram_wrong_password(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	struct auth_scram_client c;
	const char *err;
	bool wrong;

	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil2"));
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_SERVER_FINAL);
	UT_ASSERT(wrong);
	UT_EQ_STR(err, "password authentication failed");
	UT_ASSERT(auth_scram_server_client_key(&s) == NULL);
	UT_EQ_INT(s.state, AUTH_SCRAM_SERVER_FAILED);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* A well-formed proof of zeros: wrong password, not malformed. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
	{
		char *m = ut_srv_first(&s, "n,,n=,r=CN", &err);

		UT_EQ_STR(m, "r=CNSN,s=BClBpXv0l4iyccm4vnYmig==,i=4096");
		free(m);
		m = ut_srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
		UT_ASSERT(!m);
		UT_ASSERT(wrong);
	}
	auth_scram_server_free(&s);

	/* A key that does not belong to the secret is refused up front. */
	{
		uint8_t key[32] = {0};

		UT_ASSERT(!auth_scram_client_init_keys(&c, key, &secret));
		auth_scram_client_free(&c);
	}
}

static void test_scram_server_first_malformed(void)
{
	static const struct {
		const char *msg;
		size_t len;      /* 0 = strlen */
		const char *err; /* NULL = any */
	} cases[] = {
		{"", 0, NULL},
		{"n", 0, NULL},
		{"n,", 0, NULL},
		{"n,,", 0, NULL},
		{"x,,n=,r=abc", 0, NULL},
		{"y,n=,r=abc", 0, NULL},
		{"p=tls-server-end-point,,n=,r=abc", 0, "SCRAM channel binding is not supported"},
		{"p=tls-unique,,n=,r=abc", 0, "SCRAM channel binding is not supported"},
		{"n,a=bob,n=,r=abc", 0, "SCRAM authorization identity is not supported"},
		{"n,,m=ext,n=,r=abc", 0, "SCRAM mandatory extensions are not supported"},
		{"n,,r=abc", 0, NULL},
		{"n,,n=user", 0, NULL},
		{"n,,n=user,", 0, NULL},
		{"n,,n=user,r=", 0, NULL},
		{"n,,n=user,r=ab c", 0, NULL},
		{"n,,n=user,r=ab\x01", 0, NULL},
		{"n,,n=user,r=ab\x7f", 0, NULL},
		{"n,,n=user,r=abc,", 0, NULL},
		{"n,,n=user,r=abc,1=x", 0, NULL},
		{"n,,n=user,r=abc,x=", 0, NULL},
		{"n,,n=user,r=abc,x", 0, NULL},
		{"n,,n=user,x=1,r=abc", 0, NULL},
		{"n,,n=user,r=abc\0def", 19, NULL},
		{"n,,n=us\0r,r=abc", 15, NULL},
	};
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	const char *err;
	char *r;

	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);

		auth_scram_server_init(&s, &secret);
		err = NULL;
		r = ut_srv_first_n(&s, cases[i].msg, len, &err);
		auth_scram_server_free(&s);
		if (r) {
			free(r);
			UT_FAIL("accepted client-first #%zu", i);
		}
		if (!err)
			UT_FAIL("no error for client-first #%zu", i);
		if (cases[i].err && strcmp(err, cases[i].err) != 0)
			UT_FAIL("client-first #%zu: \"%s\", expected \"%s\"", i, err, cases[i].err);
	}

	/* Accepted: "y,,", an empty or odd user name, trailing extensions. */
	{
		static const char *const good[] = {
			"y,,n=,r=abc",
			"n,,n=,r=abc,x=1,y=2",
			"n,,n=bob=2Cx,r=!#~",
			"n,,n=us er,r=a",
		};

		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			auth_scram_server_init(&s, &secret);
			r = ut_srv_first(&s, good[i], &err);
			auth_scram_server_free(&s);
			if (!r)
				UT_FAIL("refused client-first \"%s\": %s", good[i], err);
			free(r);
		}
	}

	/* Every truncation short of a one-character nonce is refused. */
	for (size_t n = 0; n <= strlen(RFC_CLIENT_FIRST); n++) {
		auth_scram_server_init(&s, &secret);
		r = ut_srv_first_n(&s, RFC_CLIENT_FIRST, n, &err);
		auth_scram_server_free(&s);
		if ((r != NULL) != (n >= strlen("n,,n=user,r=") + 1))
			UT_FAIL("client-first truncated to %zu: %s", n, r ? "accepted" : err);
		free(r);
	}
}

static void test_scram_server_final_malformed(void)
{
	static const struct {
		const char *msg;
		const char *err; /* NULL = any */
	} cases[] = {
		{"", NULL},
		{"c=biws", NULL},
		{"c=biws,", NULL},
		{"c=biws,r=CNSN", NULL},
		{"c=biws,r=CNSN,", NULL},
		{"c=biws,r=CNSN,p=", NULL},
		{"c=biws,r=CNSN,p=" ZERO_PROOF_31, NULL},
		{"c=biws,r=CNSN,p=" ZERO_PROOF_33, NULL},
		{"c=biws,r=CNSN,p=" ZERO_PROOF_32 ",x=1", NULL},
		{"c=biws,r=CNSN,p=" ZERO_PROOF_32 ",", NULL},
		{"c=biws,r=CNSN,p=AAAA!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL},
		{"c=biws,r=CNSN,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL},
		{"c=biws,r=CNSN,1=x,p=" ZERO_PROOF_32, NULL},
		{"c=biws,r=CNSN,x=,p=" ZERO_PROOF_32, NULL},
		{"c=eSws,r=CNSN,p=" ZERO_PROOF_32, "SCRAM channel binding check failed"},
		{"c=cD10bHMtdW5pcXVlLCw=,r=CNSN,p=" ZERO_PROOF_32,
		 "SCRAM channel binding check failed"},
		{"c=bi!s,r=CNSN,p=" ZERO_PROOF_32, NULL},
		{"c=biw,r=CNSN,p=" ZERO_PROOF_32, NULL},
		{"c=,r=CNSN,p=" ZERO_PROOF_32, NULL},
		{"c=biws,r=CNSX,p=" ZERO_PROOF_32, "malformed SCRAM message (nonce mismatch)"},
		{"c=biws,r=CN,p=" ZERO_PROOF_32, "malformed SCRAM message (nonce mismatch)"},
		{"c=biws,r=CNSNX,p=" ZERO_PROOF_32, "malformed SCRAM message (nonce mismatch)"},
		{"c=biws,r=,p=" ZERO_PROOF_32, "malformed SCRAM message (nonce mismatch)"},
		{"r=CNSN,c=biws,p=" ZERO_PROOF_32, NULL},
		{"c=biws,p=" ZERO_PROOF_32, NULL},
		{"p=" ZERO_PROOF_32, NULL},
	};
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	const char *err;
	bool wrong;
	char *r;

	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		auth_scram_server_init(&s, &secret);
		UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
		r = ut_srv_first(&s, "n,,n=,r=CN", &err);
		UT_ASSERT(r);
		free(r);
		err = NULL;
		wrong = true;
		r = ut_srv_final(&s, cases[i].msg, &wrong, &err);
		auth_scram_server_free(&s);
		if (r) {
			free(r);
			UT_FAIL("accepted client-final #%zu \"%s\"", i, cases[i].msg);
		}
		if (wrong)
			UT_FAIL("client-final #%zu \"%s\" counted as a wrong password", i,
				cases[i].msg);
		if (!err)
			UT_FAIL("no error for client-final #%zu", i);
		if (cases[i].err && strcmp(err, cases[i].err) != 0)
			UT_FAIL("client-final #%zu: \"%s\", expected \"%s\"", i, err, cases[i].err);
	}

	/* "y,," must be echoed as "eSws"; an extension before p= is well formed. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
	r = ut_srv_first(&s, "y,,n=,r=CN", &err);
	free(r);
	r = ut_srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && !wrong);
	UT_EQ_STR(err, "SCRAM channel binding check failed");
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
	r = ut_srv_first(&s, "y,,n=,r=CN", &err);
	free(r);
	r = ut_srv_final(&s, "c=eSws,r=CNSN,x=1,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && wrong);
	auth_scram_server_free(&s);

	/* Every truncation of the RFC's client-final is malformed, never a wrong password. */
	UT_ASSERT(ut_rfc_secret(&secret));
	for (size_t n = 0; n < strlen(RFC_CLIENT_FINAL); n++) {
		auth_scram_server_init(&s, &secret);
		UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
		r = ut_srv_first(&s, RFC_CLIENT_FIRST, &err);
		UT_ASSERT(r);
		free(r);
		r = ut_srv_final_n(&s, RFC_CLIENT_FINAL, n, &wrong, &err);
		auth_scram_server_free(&s);
		if (r || wrong) {
			free(r);
			UT_FAIL("client-final truncated to %zu not refused as malformed", n);
		}
	}
}

/*
 * SCRAM-SHA-256-PLUS (tls-server-end-point): the gs2 flags each negotiation
 * allows, and c= carrying the header plus the binding data.  A zero proof
 * that gets as far as "wrong password" has passed the channel binding check.
 */
static char *plus_final(const uint8_t *cb, size_t cblen, const char *header)
{
	uint8_t raw[128];
	char enc[AUTH_B64_ENCODED_LEN(sizeof(raw)) + 1], *out;
	size_t hl = strlen(header);

	memcpy(raw, header, hl);
	memcpy(raw + hl, cb, cblen);
	auth_b64_encode(raw, hl + cblen, enc);
	if (asprintf(&out, "c=%s,r=CNSN,p=" ZERO_PROOF_32, enc) < 0)
		return NULL;
	return out;
}

static void test_scram_channel_binding(void)
{
	static const char hdr[] = "p=tls-server-end-point,,";
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	uint8_t cb[32], other[32];
	const char *err;
	bool wrong;
	char *r, *fin;

	for (size_t i = 0; i < sizeof(cb); i++) {
		cb[i] = (uint8_t)(i + 1);
		other[i] = (uint8_t)(i + 2);
	}
	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));

	/* selected: the p= header, then c= = header + our binding data */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
	r = ut_srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
	UT_ASSERT(r != NULL);
	free(r);
	fin = plus_final(cb, sizeof(cb), hdr);
	r = ut_srv_final(&s, fin, &wrong, &err);
	free(fin);
	UT_ASSERT(r == NULL && wrong); /* binding accepted, zero proof refused */
	auth_scram_server_free(&s);

	/* selected: another certificate's hash, or the header alone, fails the binding */
	for (int k = 0; k < 2; k++) {
		auth_scram_server_init(&s, &secret);
		UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
		UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
		r = ut_srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
		free(r);
		fin = plus_final(other, k == 0 ? sizeof(other) : 0, hdr);
		r = ut_srv_final(&s, fin, &wrong, &err);
		free(fin);
		UT_ASSERT(r == NULL && !wrong);
		UT_EQ_STR(err, "SCRAM channel binding check failed");
		auth_scram_server_free(&s);
	}

	/* selected: no binding data, or another binding type, is refused at the first message */
	{
		static const struct {
			const char *first;
			const char *err;
		} bad[] = {
			{"n,,n=,r=CN",
			 "malformed SCRAM message (SCRAM-SHA-256-PLUS selected but no channel binding data sent)"},
			{"y,,n=,r=CN",
			 "malformed SCRAM message (SCRAM-SHA-256-PLUS selected but no channel binding data sent)"},
			{"p=tls-unique,,n=,r=CN",
			 "unsupported SCRAM channel-binding type (expected tls-server-end-point)"},
			{"p=tls-server-end-point",
			 "unsupported SCRAM channel-binding type (expected tls-server-end-point)"},
			{"p=tls-server-end-point,a=x,n=,r=CN",
			 "SCRAM authorization identity is not supported"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			auth_scram_server_init(&s, &secret);
			UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
			err = NULL;
			r = ut_srv_first(&s, bad[i].first, &err);
			auth_scram_server_free(&s);
			if (r) {
				free(r);
				UT_FAIL("accepted \"%s\"", bad[i].first);
			}
			if (err == NULL || strcmp(err, bad[i].err) != 0)
				UT_FAIL("\"%s\": \"%s\", expected \"%s\"", bad[i].first,
					err ? err : "(null)", bad[i].err);
		}
	}

	/* offered, not selected: "n" is fine, "y" is a downgrade, "p" is refused */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), false));
	r = ut_srv_first(&s, "n,,n=,r=CN", &err);
	UT_ASSERT(r != NULL);
	free(r);
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), false));
	r = ut_srv_first(&s, "y,,n=,r=CN", &err);
	UT_ASSERT(r == NULL);
	UT_ASSERT(strstr(err, "SCRAM channel binding negotiation error") == err);
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), false));
	r = ut_srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
	UT_ASSERT(r == NULL);
	UT_EQ_STR(err,
		  "malformed SCRAM message (channel binding data sent without selecting SCRAM-SHA-256-PLUS)");
	auth_scram_server_free(&s);

	/* misuse: no data, too much, or too late */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, 0, true));
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, AUTH_SCRAM_CBIND_MAX + 1, true));
	r = ut_srv_first(&s, "n,,n=,r=CN", &err);
	free(r);
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
	auth_scram_server_free(&s);
}

const struct unit_test unit_tests_scram_server[] = {
	{"scram_server_rfc7677", test_scram_rfc7677_server},
	{"scram_server_wrong_password", test_scram_wrong_password},
	{"scram_server_first_malformed", test_scram_server_first_malformed},
	{"scram_server_final_malformed", test_scram_server_final_malformed},
	{"scram_server_channel_binding", test_scram_channel_binding},
	{NULL, NULL},
};

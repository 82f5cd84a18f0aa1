/*
 * test_crypto.c - unit tests for proxy/auth_crypto.c: base64, userlist
 * secrets, MD5 and both ends of SCRAM-SHA-256.
 *
 * Known answers come from outside this code: the RFC 7677 test vector, a
 * secret made by PostgreSQL 15 itself, and MD5/SCRAM values computed with
 * Python's hashlib/hmac.  SCRAM messages are copied into heap blocks of
 * exactly their length with no terminator, as they arrive off the wire, so
 * that AddressSanitizer catches any read past the end.
 */
#include "unit.h"

#include "proxy/auth/auth_crypto.h"

#include <stdint.h>
#include <stdlib.h>

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
 * iterations, and the ClientKey that goes with it.
 */
#define PY_SECRET_PENCIL                                                               \
	"SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+" \
	"E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
static const uint8_t py_client_key[32] = {
	0x05, 0x6d, 0x77, 0x12, 0x6a, 0x04, 0xe6, 0x5d, 0x7e, 0xfa, 0x55,
	0x12, 0x7b, 0x19, 0xa9, 0x26, 0x31, 0xa6, 0x94, 0x7d, 0xff, 0xf7,
	0xb5, 0x97, 0xe9, 0xa2, 0xf2, 0xe5, 0xf1, 0xd1, 0x9c, 0xb9,
};

/* base64 of 32, 31 and 33 zero bytes: a well-formed wrong proof and two bad sizes. */
#define ZERO_PROOF_32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define ZERO_PROOF_31 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
#define ZERO_PROOF_33 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* Copy n bytes into a block of exactly n bytes, no terminator (ASan catches overreads). */
static char *dup_exact(const char *p, size_t n)
{
	char *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* The API calls, fed an exact-size unterminated copy of a C string prefix. */
static char *srv_first_n(struct auth_scram_server *s, const char *msg, size_t n, const char **err)
{
	char *d = dup_exact(msg, n);
	char *r = auth_scram_server_first(s, d, n, err);

	free(d);
	return r;
}

static char *srv_first(struct auth_scram_server *s, const char *msg, const char **err)
{
	return srv_first_n(s, msg, strlen(msg), err);
}

static char *srv_final_n(struct auth_scram_server *s, const char *msg, size_t n, bool *wrong,
			 const char **err)
{
	char *d = dup_exact(msg, n);
	char *r = auth_scram_server_final(s, d, n, wrong, err);

	free(d);
	return r;
}

static char *srv_final(struct auth_scram_server *s, const char *msg, bool *wrong, const char **err)
{
	return srv_final_n(s, msg, strlen(msg), wrong, err);
}

static char *cli_final(struct auth_scram_client *c, const char *msg, const char **err)
{
	size_t n = strlen(msg);
	char *d = dup_exact(msg, n);
	char *r = auth_scram_client_final(c, d, n, err);

	free(d);
	return r;
}

static bool cli_verify(struct auth_scram_client *c, const char *msg, const char **err)
{
	size_t n = strlen(msg);
	char *d = dup_exact(msg, n);
	bool ok = auth_scram_client_verify(c, d, n, err);

	free(d);
	return ok;
}

/* Decodes a base64 literal the tests trust (a failure shows as an empty result). */
static size_t b64(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (!auth_b64_decode(s, strlen(s), out, cap, &n))
		return 0;
	return n;
}

/* Outcome of run_exchange(): how far a full client<->server exchange got. */
enum exchange_result {
	EXCHANGE_OK,
	EXCHANGE_CLIENT_FIRST,  /* client could not produce client-first */
	EXCHANGE_SERVER_FIRST,  /* server refused client-first */
	EXCHANGE_CLIENT_FINAL,  /* client refused server-first */
	EXCHANGE_SERVER_FINAL,  /* server refused client-final (see *wrong) */
	EXCHANGE_CLIENT_VERIFY, /* client refused server-final */
};

/* Runs auth_scram_client_* against auth_scram_server_*, both already initialised. */
static enum exchange_result run_exchange(struct auth_scram_server *s, struct auth_scram_client *c,
					 bool *wrong, const char **err)
{
	char *m1, *m2, *m3, *m4;
	bool ok;

	*wrong = false;
	*err = NULL;
	if (!(m1 = auth_scram_client_first(c)))
		return EXCHANGE_CLIENT_FIRST;
	m2 = srv_first(s, m1, err);
	free(m1);
	if (!m2)
		return EXCHANGE_SERVER_FIRST;
	m3 = cli_final(c, m2, err);
	free(m2);
	if (!m3)
		return EXCHANGE_CLIENT_FINAL;
	m4 = srv_final(s, m3, wrong, err);
	free(m3);
	if (!m4)
		return EXCHANGE_SERVER_FINAL;
	ok = cli_verify(c, m4, err);
	free(m4);
	return ok ? EXCHANGE_OK : EXCHANGE_CLIENT_VERIFY;
}

/* The RFC 7677 secret: "pencil" with the RFC's salt and 4096 iterations. */
static bool rfc_secret(struct auth_scram_secret *secret)
{
	uint8_t salt[16];
	size_t n = b64(RFC_SALT, salt, sizeof(salt));

	return n == 16 && auth_scram_secret_from_password("pencil", salt, n, 4096, secret);
}

static void test_random_bytes(void)
{
	uint8_t a[64], b[64], zero[64] = {0};

	UT_ASSERT(auth_random_bytes(a, sizeof(a)));
	UT_ASSERT(auth_random_bytes(b, sizeof(b)));
	UT_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	UT_ASSERT(memcmp(a, zero, sizeof(a)) != 0);
	UT_ASSERT(auth_random_bytes(a, 0));
}

static void test_base64(void)
{
	static const struct {
		const char *raw;
		const char *enc;
	} known[] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
		{"n,,", "biws"},
		{"y,,", "eSws"},
	};
	static const char *const bad[] = {
		"Zg=",   "Zg",     "Z",    "Zm9v=", "Zg==Zg==", "Z===", "====", "Zm8=Zm9v",
		"Zm 9v", "Zm9v\n", "Zm-v", "Zm_v",  "Zh==",     "Zm9=", "=m9v", "Zm=v",
	};
	uint8_t buf[16];
	char enc[32];
	size_t n;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t raw_len = strlen(known[i].raw);
		char *d = dup_exact(known[i].enc, strlen(known[i].enc));

		UT_EQ_INT(auth_b64_encode((const uint8_t *)known[i].raw, raw_len, enc),
			  strlen(known[i].enc));
		UT_EQ_STR(enc, known[i].enc);
		UT_ASSERT(auth_b64_decode(d, strlen(known[i].enc), buf, sizeof(buf), &n));
		free(d);
		UT_EQ_INT(n, raw_len);
		UT_EQ_MEM(buf, known[i].raw, raw_len);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = dup_exact(bad[i], strlen(bad[i]));
		bool ok = auth_b64_decode(d, strlen(bad[i]), buf, sizeof(buf), &n);

		free(d);
		if (ok)
			UT_FAIL("accepted bad base64 \"%s\"", bad[i]);
	}
	/* The destination bound is exact: 6 bytes fit in 6, not in 5. */
	UT_ASSERT(auth_b64_decode("Zm9vYmFy", 8, buf, 6, &n) && n == 6);
	UT_ASSERT(!auth_b64_decode("Zm9vYmFy", 8, buf, 5, &n));
	UT_ASSERT(auth_b64_decode("Zm9vYg==", 8, buf, 4, &n) && n == 4);
	UT_ASSERT(!auth_b64_decode("Zm9vYg==", 8, buf, 3, &n));
}

static void test_secret_kind(void)
{
	UT_EQ_INT(auth_secret_kind("md5e473002ecaa9bfd0c982506b1bc2fe0b"), AUTH_SECRET_MD5);
	/* Uppercase hex, wrong length or a non-hex digit: a plaintext password, as in PostgreSQL. */
	UT_EQ_INT(auth_secret_kind("md5E473002ECAA9BFD0C982506B1BC2FE0B"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind("md5e473002ecaa9bfd0c982506b1bc2fe0"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind("md5e473002ecaa9bfd0c982506b1bc2fe0b0"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind("md5g473002ecaa9bfd0c982506b1bc2fe0b"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind(PG_SECRET_PENCIL), AUTH_SECRET_SCRAM);
	UT_EQ_INT(auth_secret_kind(PY_SECRET_PENCIL), AUTH_SECRET_SCRAM);
	UT_EQ_INT(auth_secret_kind("SCRAM-SHA-256$4096:salt"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind("pencil"), AUTH_SECRET_PLAIN);
	UT_EQ_INT(auth_secret_kind(""), AUTH_SECRET_PLAIN);
}

static void test_md5(void)
{
	/* hashlib: "md5" + md5(b"md5_pass" + b"md5_user"), then md5(hex + bytes([1,2,3,4])). */
	static const char stored_expected[] = "md5e473002ecaa9bfd0c982506b1bc2fe0b";
	static const char response_expected[] = "md5c6ee6bd10a7adf513019b25f24df0925";
	static const uint8_t salt[4] = {1, 2, 3, 4};
	static const uint8_t other_salt[4] = {1, 2, 3, 5};
	char out[36];

	auth_md5_stored("md5_user", "md5_pass", out);
	UT_EQ_STR(out, stored_expected);

	UT_ASSERT(auth_md5_response("md5_user", "md5_pass", salt, out));
	UT_EQ_STR(out, response_expected);
	UT_ASSERT(auth_md5_response("md5_user", stored_expected, salt, out));
	UT_EQ_STR(out, response_expected);
	UT_ASSERT(!auth_md5_response("md5_user", PG_SECRET_PENCIL, salt, out));

	UT_ASSERT(auth_md5_verify("md5_user", "md5_pass", salt, response_expected));
	UT_ASSERT(auth_md5_verify("md5_user", stored_expected, salt, response_expected));
	UT_ASSERT(!auth_md5_verify("md5_user", "md5_pasS", salt, response_expected));
	UT_ASSERT(!auth_md5_verify("other", stored_expected, other_salt, response_expected));
	UT_ASSERT(!auth_md5_verify("md5_user", stored_expected, other_salt, response_expected));
	UT_ASSERT(!auth_md5_verify("md5_usr", "md5_pass", salt, response_expected));
	UT_ASSERT(!auth_md5_verify("md5_user", "md5_pass", salt,
				   "md5c6ee6bd10a7adf513019b25f24df092"));
	UT_ASSERT(!auth_md5_verify("md5_user", "md5_pass", salt,
				   "md5c6ee6bd10a7adf513019b25f24df09250"));
	UT_ASSERT(!auth_md5_verify("md5_user", "md5_pass", salt, ""));
	UT_ASSERT(!auth_md5_verify("md5_user", PG_SECRET_PENCIL, salt, response_expected));
}

static void test_scram_secret_postgres(void)
{
	struct auth_scram_secret parsed, derived;
	char *again;

	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &parsed));
	UT_EQ_INT(parsed.iterations, 4096);
	UT_EQ_INT(parsed.salt_len, 16);
	/* Our derivation from the password gives PostgreSQL's keys. */
	UT_ASSERT(auth_scram_secret_from_password("pencil", parsed.salt, parsed.salt_len,
						  parsed.iterations, &derived));
	UT_EQ_MEM(derived.stored_key, parsed.stored_key, 32);
	UT_EQ_MEM(derived.server_key, parsed.server_key, 32);
	again = auth_scram_secret_to_string(&derived);
	UT_ASSERT(again);
	UT_EQ_STR(again, PG_SECRET_PENCIL);
	free(again);

	/* And Python's, for a salt we chose. */
	{
		uint8_t salt[16];

		for (int i = 0; i < 16; i++)
			salt[i] = (uint8_t)i;
		UT_ASSERT(auth_scram_secret_from_password("pencil", salt, sizeof(salt), 4096,
							  &derived));
		again = auth_scram_secret_to_string(&derived);
		UT_ASSERT(again);
		UT_EQ_STR(again, PY_SECRET_PENCIL);
		free(again);
	}

	/* Derivation refuses what it cannot do safely. */
	UT_ASSERT(!auth_scram_secret_from_password("pencil", parsed.salt, 0, 4096, &derived));
	UT_ASSERT(!auth_scram_secret_from_password("pencil", parsed.salt, 65, 4096, &derived));
	UT_ASSERT(!auth_scram_secret_from_password("pencil", parsed.salt, 16, 0, &derived));
	UT_ASSERT(!auth_scram_secret_from_password("pencil", parsed.salt, 16,
						   AUTH_SCRAM_MAX_ITERATIONS + 1, &derived));
}

static void test_scram_secret_parse_bad(void)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-1$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"scram-sha-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$0:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$-1:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$+4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$ 4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$99999999999:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$4096:$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig=$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9g==:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=:",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc= ",
		"SCRAM-SHA-256$4096:BClBpXv0l4iyccm4vnYmig==$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=",
		/* A salt longer than 64 bytes does not fit. */
		"SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$rBFQK5sjjFNspxLnNP624DSgAJ4K1d/6hEoduzqH9gY=:jVg5+wv7C7hd22VweN0WhmKMgI0BMpk2VwOLFOHw+Uc=",
	};
	struct auth_scram_secret s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (auth_scram_parse_secret(bad[i], &s))
			UT_FAIL("accepted bad secret #%zu \"%s\"", i, bad[i]);
	}
}

static void test_scram_rfc7677_server(void)
{
	struct auth_scram_secret secret;
	struct auth_scram_server s;
	const char *err = NULL;
	bool wrong = true;
	char *first, *final;

	UT_ASSERT(rfc_secret(&secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	first = srv_first(&s, RFC_CLIENT_FIRST, &err);
	UT_ASSERT(first);
	UT_EQ_STR(first, RFC_SERVER_FIRST);
	free(first);
	UT_ASSERT(auth_scram_server_client_key(&s) == NULL);

	final = srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
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
	final = srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
	UT_ASSERT(!final);
	UT_ASSERT(err != NULL);
	auth_scram_server_free(&s);
	UT_ASSERT(!s.have_client_key);
}

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
	m = cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_EQ_STR(m, RFC_CLIENT_FINAL);
	free(m);
	UT_ASSERT(cli_verify(&c, RFC_SERVER_FINAL, &err));
	UT_ASSERT(err == NULL);
	auth_scram_client_free(&c);

	/* Keys mode, with the ClientKey a server recovered from the RFC's proof, does too. */
	UT_ASSERT(rfc_secret(&secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
	m = srv_first(&s, RFC_CLIENT_FIRST, &err);
	free(m);
	m = srv_final(&s, RFC_CLIENT_FINAL, &wrong, &err);
	UT_ASSERT(m);
	free(m);
	UT_ASSERT(auth_scram_client_init_keys(&c, auth_scram_server_client_key(&s), &secret));
	auth_scram_server_free(&s);
	UT_ASSERT(auth_scram_client_set_nonce_for_tests(&c, RFC_CLIENT_NONCE, "user"));
	m = auth_scram_client_first(&c);
	UT_EQ_STR(m, RFC_CLIENT_FIRST);
	free(m);
	m = cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_EQ_STR(m, RFC_CLIENT_FINAL);
	free(m);
	UT_ASSERT(cli_verify(&c, RFC_SERVER_FINAL, &err));
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
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_INT(c.state, AUTH_SCRAM_CLIENT_DONE);
	UT_EQ_INT(s.state, AUTH_SCRAM_SERVER_DONE);
	UT_ASSERT(auth_scram_server_client_key(&s));
	memcpy(first_key, auth_scram_server_client_key(&s), 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* 2: the proxy logs in elsewhere with only that key and the secret. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_keys(&c, first_key, &secret));
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_MEM(auth_scram_server_client_key(&s), first_key, 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* The PostgreSQL-made secret works against our password client too. */
	UT_ASSERT(auth_scram_parse_secret(PG_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);

	/* And Python's, whose ClientKey we know. */
	UT_ASSERT(auth_scram_parse_secret(PY_SECRET_PENCIL, &secret));
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
	UT_EQ_MEM(auth_scram_server_client_key(&s), py_client_key, 32);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);
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
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_SERVER_FINAL);
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
		char *m = srv_first(&s, "n,,n=,r=CN", &err);

		UT_EQ_STR(m, "r=CNSN,s=BClBpXv0l4iyccm4vnYmig==,i=4096");
		free(m);
		m = srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
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
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_CLIENT_FINAL);
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
		UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_OK);
		memcpy(key, auth_scram_server_client_key(&s), 32);
		auth_scram_server_free(&s);
		auth_scram_client_free(&c);

		auth_scram_server_init(&s, &at4096);
		UT_ASSERT(auth_scram_client_init_keys(&c, key, &at8192));
		UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_CLIENT_FINAL);
		UT_EQ_STR(err, "the SCRAM secret in auth_file does not match the server's "
			       "(different salt or iterations)");
		auth_scram_server_free(&s);
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
		r = srv_first_n(&s, cases[i].msg, len, &err);
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
			r = srv_first(&s, good[i], &err);
			auth_scram_server_free(&s);
			if (!r)
				UT_FAIL("refused client-first \"%s\": %s", good[i], err);
			free(r);
		}
	}

	/* Every truncation short of a one-character nonce is refused. */
	for (size_t n = 0; n <= strlen(RFC_CLIENT_FIRST); n++) {
		auth_scram_server_init(&s, &secret);
		r = srv_first_n(&s, RFC_CLIENT_FIRST, n, &err);
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
		r = srv_first(&s, "n,,n=,r=CN", &err);
		UT_ASSERT(r);
		free(r);
		err = NULL;
		wrong = true;
		r = srv_final(&s, cases[i].msg, &wrong, &err);
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
	r = srv_first(&s, "y,,n=,r=CN", &err);
	free(r);
	r = srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && !wrong);
	UT_EQ_STR(err, "SCRAM channel binding check failed");
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
	r = srv_first(&s, "y,,n=,r=CN", &err);
	free(r);
	r = srv_final(&s, "c=eSws,r=CNSN,x=1,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && wrong);
	auth_scram_server_free(&s);

	/* Every truncation of the RFC's client-final is malformed, never a wrong password. */
	UT_ASSERT(rfc_secret(&secret));
	for (size_t n = 0; n < strlen(RFC_CLIENT_FINAL); n++) {
		auth_scram_server_init(&s, &secret);
		UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, RFC_SERVER_NONCE));
		r = srv_first(&s, RFC_CLIENT_FIRST, &err);
		UT_ASSERT(r);
		free(r);
		r = srv_final_n(&s, RFC_CLIENT_FINAL, n, &wrong, &err);
		auth_scram_server_free(&s);
		if (r || wrong) {
			free(r);
			UT_FAIL("client-final truncated to %zu not refused as malformed", n);
		}
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
	r = srv_final(&s, "c=biws,r=CNSN,p=" ZERO_PROOF_32, &wrong, &err);
	UT_ASSERT(!r && !wrong && err);
	auth_scram_server_free(&s);

	auth_scram_server_init(&s, &secret);
	r = srv_first(&s, "n,,n=,r=abc", &err);
	UT_ASSERT(r);
	free(r);
	r = srv_first(&s, "n,,n=,r=abc", &err);
	UT_ASSERT(!r && err);
	auth_scram_server_free(&s);

	/* Test hooks only work before the first message. */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(!auth_scram_server_set_nonce_for_tests(&s, "a,b"));
	r = srv_first(&s, "n,,n=,r=abc", &err);
	free(r);
	UT_ASSERT(!auth_scram_server_set_nonce_for_tests(&s, "SN"));
	auth_scram_server_free(&s);

	UT_ASSERT(auth_scram_client_init_password(&c, "pencil"));
	r = cli_final(&c, RFC_SERVER_FIRST, &err);
	UT_ASSERT(!r && err);
	UT_ASSERT(!cli_verify(&c, RFC_SERVER_FINAL, &err));
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
		r = cli_final(&c, cases[i].msg, &err);
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
		char *d = dup_exact(RFC_SERVER_FIRST, n);

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
		r = cli_final(&c, RFC_SERVER_FIRST, &err);
		UT_ASSERT(r);
		free(r);
		err = NULL;
		if (cli_verify(&c, cases[i].msg, &err)) {
			auth_scram_client_free(&c);
			UT_FAIL("accepted server-final #%zu \"%s\"", i, cases[i].msg);
		}
		auth_scram_client_free(&c);
		if (!err || strcmp(err, cases[i].err) != 0)
			UT_FAIL("server-final #%zu: \"%s\", expected \"%s\"", i,
				err ? err : "(null)", cases[i].err);
	}
}

static void test_scram_mock(void)
{
	struct auth_scram_secret a, b, other;
	struct auth_scram_server s;
	struct auth_scram_client c;
	const char *err;
	bool wrong;

	UT_ASSERT(auth_scram_mock_secret("ghost", &a));
	UT_ASSERT(auth_scram_mock_secret("ghost", &b));
	UT_ASSERT(auth_scram_mock_secret("ghost2", &other));
	UT_EQ_INT(a.salt_len, 16);
	UT_EQ_INT(a.iterations, AUTH_SCRAM_DEFAULT_ITERATIONS);
	UT_EQ_MEM(a.salt, b.salt, 16);
	UT_ASSERT(memcmp(a.salt, other.salt, 16) != 0);
	UT_ASSERT(memcmp(a.stored_key, b.stored_key, 32) != 0);

	auth_scram_server_init(&s, &a);
	UT_ASSERT(auth_scram_client_init_password(&c, "anything"));
	UT_EQ_INT(run_exchange(&s, &c, &wrong, &err), EXCHANGE_SERVER_FINAL);
	UT_ASSERT(wrong);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);
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
	r = srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
	UT_ASSERT(r != NULL);
	free(r);
	fin = plus_final(cb, sizeof(cb), hdr);
	r = srv_final(&s, fin, &wrong, &err);
	free(fin);
	UT_ASSERT(r == NULL && wrong); /* binding accepted, zero proof refused */
	auth_scram_server_free(&s);

	/* selected: another certificate's hash, or the header alone, fails the binding */
	for (int k = 0; k < 2; k++) {
		auth_scram_server_init(&s, &secret);
		UT_ASSERT(auth_scram_server_set_nonce_for_tests(&s, "SN"));
		UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
		r = srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
		free(r);
		fin = plus_final(other, k == 0 ? sizeof(other) : 0, hdr);
		r = srv_final(&s, fin, &wrong, &err);
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
			r = srv_first(&s, bad[i].first, &err);
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
	r = srv_first(&s, "n,,n=,r=CN", &err);
	UT_ASSERT(r != NULL);
	free(r);
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), false));
	r = srv_first(&s, "y,,n=,r=CN", &err);
	UT_ASSERT(r == NULL);
	UT_ASSERT(strstr(err, "SCRAM channel binding negotiation error") == err);
	auth_scram_server_free(&s);
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), false));
	r = srv_first(&s, "p=tls-server-end-point,,n=,r=CN", &err);
	UT_ASSERT(r == NULL);
	UT_EQ_STR(err,
		  "malformed SCRAM message (channel binding data sent without selecting SCRAM-SHA-256-PLUS)");
	auth_scram_server_free(&s);

	/* misuse: no data, too much, or too late */
	auth_scram_server_init(&s, &secret);
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, 0, true));
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, AUTH_SCRAM_CBIND_MAX + 1, true));
	r = srv_first(&s, "n,,n=,r=CN", &err);
	free(r);
	UT_ASSERT(!auth_scram_server_set_channel_binding(&s, cb, sizeof(cb), true));
	auth_scram_server_free(&s);
}

const struct unit_test unit_tests_crypto[] = {
	{"crypto_scram_channel_binding", test_scram_channel_binding},
	{"crypto_random_bytes", test_random_bytes},
	{"crypto_base64", test_base64},
	{"crypto_secret_kind", test_secret_kind},
	{"crypto_md5", test_md5},
	{"crypto_scram_secret_postgres", test_scram_secret_postgres},
	{"crypto_scram_secret_parse_bad", test_scram_secret_parse_bad},
	{"crypto_scram_rfc7677_server", test_scram_rfc7677_server},
	{"crypto_scram_rfc7677_client", test_scram_rfc7677_client},
	{"crypto_scram_exchange_password_then_keys", test_scram_exchange_password_then_keys},
	{"crypto_scram_wrong_password", test_scram_wrong_password},
	{"crypto_scram_keys_secret_mismatch", test_scram_keys_secret_mismatch},
	{"crypto_scram_server_first_malformed", test_scram_server_first_malformed},
	{"crypto_scram_server_final_malformed", test_scram_server_final_malformed},
	{"crypto_scram_order", test_scram_order},
	{"crypto_scram_client_server_first_malformed", test_scram_client_server_first_malformed},
	{"crypto_scram_client_server_final", test_scram_client_server_final},
	{"crypto_scram_mock", test_scram_mock},
	{NULL, NULL},
};

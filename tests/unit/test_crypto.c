/*
 * test_crypto.c - unit tests for proxy/auth/crypto.c: random bytes and
 * strict base64 (the hashes and the key schedule are checked through the
 * known secrets in test_secret.c).
 */
#include "unit.h"

#include "auth_fixtures.h"
#include "proxy/auth/crypto.h"

#include <stdint.h>
#include <stdlib.h>

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
		char *d = ut_dup_exact(known[i].enc, strlen(known[i].enc));

		UT_EQ_INT(auth_b64_encode((const uint8_t *)known[i].raw, raw_len, enc),
			  strlen(known[i].enc));
		UT_EQ_STR(enc, known[i].enc);
		UT_ASSERT(auth_b64_decode(d, strlen(known[i].enc), buf, sizeof(buf), &n));
		free(d);
		UT_EQ_INT(n, raw_len);
		UT_EQ_MEM(buf, known[i].raw, raw_len);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = ut_dup_exact(bad[i], strlen(bad[i]));
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

const struct unit_test unit_tests_crypto[] = {
	{"crypto_random_bytes", test_random_bytes},
	{"crypto_base64", test_base64},
	{NULL, NULL},
};

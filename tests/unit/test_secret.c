/*
 * test_secret.c - unit tests for proxy/auth/secret.c: telling secrets apart,
 * SCRAM secrets against PostgreSQL's and Python's, malformed secrets, and
 * the mock secret of an unknown user.
 */
#include "unit.h"

#include "auth_fixtures.h"
#include "proxy/auth/scram_client.h"
#include "proxy/auth/scram_server.h"
#include "proxy/auth/secret.h"

#include <stdint.h>
#include <stdlib.h>

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
	UT_EQ_INT(ut_run_exchange(&s, &c, &wrong, &err), EXCHANGE_SERVER_FINAL);
	UT_ASSERT(wrong);
	auth_scram_server_free(&s);
	auth_scram_client_free(&c);
}

const struct unit_test unit_tests_secret[] = {
	{"secret_kind", test_secret_kind},
	{"secret_scram_postgres", test_scram_secret_postgres},
	{"secret_scram_parse_bad", test_scram_secret_parse_bad},
	{"secret_scram_mock", test_scram_mock},
	{NULL, NULL},
};

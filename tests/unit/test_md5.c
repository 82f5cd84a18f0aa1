/*
 * test_md5.c - unit tests for proxy/auth/md5.c: the stored hash, the
 * challenge response from a plaintext or MD5 secret, and its check, against
 * values computed with Python's hashlib.
 */
#include "unit.h"

#include "auth_fixtures.h"
#include "proxy/auth/md5.h"

#include <stdint.h>

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

const struct unit_test unit_tests_md5[] = {
	{"md5", test_md5},
	{NULL, NULL},
};

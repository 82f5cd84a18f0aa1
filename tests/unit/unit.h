/*
 * unit.h - the tiny unit-test framework used by tests/unit/.
 *
 * A test is a void function; UT_* macros record a failure with file and line
 * and return from the test.  Each test file exports one NULL-terminated array
 * of struct unit_test that tests/unit/runner.c lists.
 */
#ifndef PGCUTOVER_UNIT_H
#define PGCUTOVER_UNIT_H

#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

/* Set by the macros when the running test fails; read by the runner. */
extern int unit_failed;

#define UT_FAIL(...)                                              \
	do {                                                      \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                     \
		fprintf(stderr, "\n");                            \
		unit_failed = 1;                                  \
		return;                                           \
	} while (0)

#define UT_ASSERT(cond)                                         \
	do {                                                    \
		if (!(cond))                                    \
			UT_FAIL("assertion failed: %s", #cond); \
	} while (0)

#define UT_EQ_INT(a, b)                                                                   \
	do {                                                                              \
		long long ut_a_ = (long long)(a), ut_b_ = (long long)(b);                 \
		if (ut_a_ != ut_b_)                                                       \
			UT_FAIL("%s == %lld, expected %s == %lld", #a, ut_a_, #b, ut_b_); \
	} while (0)

#define UT_EQ_STR(a, b)                                                                        \
	do {                                                                                   \
		const char *ut_a_ = (a), *ut_b_ = (b);                                         \
		if (ut_a_ == NULL || ut_b_ == NULL || strcmp(ut_a_, ut_b_) != 0)               \
			UT_FAIL("%s == \"%s\", expected \"%s\"", #a, ut_a_ ? ut_a_ : "(null)", \
				ut_b_ ? ut_b_ : "(null)");                                     \
	} while (0)

#define UT_EQ_MEM(a, b, n)                                                                 \
	do {                                                                               \
		if (memcmp((a), (b), (n)) != 0)                                            \
			UT_FAIL("%s differs from %s over %zu bytes", #a, #b, (size_t)(n)); \
	} while (0)

/* The suites; each file defines one. */
extern const struct unit_test unit_tests_pq[];
extern const struct unit_test unit_tests_pq_build[];
extern const struct unit_test unit_tests_sqllex[];
extern const struct unit_test unit_tests_crypto[];
extern const struct unit_test unit_tests_secret[];
extern const struct unit_test unit_tests_md5[];
extern const struct unit_test unit_tests_scram_server[];
extern const struct unit_test unit_tests_scram_client[];
extern const struct unit_test unit_tests_config[];
extern const struct unit_test unit_tests_config_values[];
extern const struct unit_test unit_tests_userlist[];
extern const struct unit_test unit_tests_route[];
extern const struct unit_test unit_tests_admin[];
extern const struct unit_test unit_tests_session[];
extern const struct unit_test unit_tests_sqlquote[];
extern const struct unit_test unit_tests_seqread[];
extern const struct unit_test unit_tests_janitor[];
extern const struct unit_test unit_tests_reference[];
extern const struct unit_test unit_tests_fence_names[];
extern const struct unit_test unit_tests_fleet_sql[];
extern const struct unit_test unit_tests_validation[];
extern const struct unit_test unit_tests_log[];
extern const struct unit_test unit_tests_sqlclass[];
extern const struct unit_test unit_tests_pqdigest[];
extern const struct unit_test unit_tests_listen[];

#endif /* PGCUTOVER_UNIT_H */

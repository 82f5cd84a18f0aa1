/*
 * runner.c - runs every unit test, or those whose name contains argv[1].
 *
 * Prints one line per failing test and a closing "N passed, N failed" line;
 * exits 1 when anything failed.
 */
#include "unit.h"

#include <stdlib.h>

int unit_failed;

static const struct unit_test *const suites[] = {
	unit_tests_pq,           unit_tests_pq_build,
	unit_tests_sqllex,       unit_tests_crypto,
	unit_tests_secret,       unit_tests_md5,
	unit_tests_scram_server, unit_tests_scram_client,
	unit_tests_config,       unit_tests_config_values,
	unit_tests_userlist,     unit_tests_route,
	unit_tests_admin,        unit_tests_session,
	unit_tests_sqlquote,     unit_tests_seqread,
	unit_tests_janitor,      unit_tests_reference,
	unit_tests_fence_names,  unit_tests_fleet_sql,
	unit_tests_validation,   unit_tests_log,
	unit_tests_listen,       unit_tests_sqlclass,
	unit_tests_pqdigest,
};

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0;

	for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
		for (const struct unit_test *t = suites[s]; t->name; t++) {
			if (filter && !strstr(t->name, filter))
				continue;
			unit_failed = 0;
			t->fn();
			if (unit_failed) {
				fprintf(stderr, "FAIL %s\n", t->name);
				failed++;
			} else {
				passed++;
			}
		}
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

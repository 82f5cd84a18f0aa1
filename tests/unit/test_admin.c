#include "unit.h"

const struct unit_test unit_tests_admin[] = {
	{NULL, NULL},
};

/*
 * config_fx.h - the fixture of the configuration and auth_file unit tests
 * (test_config.c, test_config_values.c, test_userlist.c).
 *
 * Each test writes its files into a fresh mkdtemp() directory and loads them
 * from there.  The checks live in a check_*() function and the test wraps it
 * between fx_init() and fx_done(), so that a failed assertion, which returns
 * from the check, still frees the config and removes the files.
 */
#ifndef PGCUTOVER_CONFIG_FX_H
#define PGCUTOVER_CONFIG_FX_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/auth/userlist.h"
#include "proxy/core/config.h"

#include "unit.h"

#define FX_MAX_FILES 8

/* One test's temporary directory and what was loaded from it. */
struct fx {
	char dir[64];              /* the mkdtemp() directory, "" if it failed */
	char *files[FX_MAX_FILES]; /* absolute paths written, removed by fx_done() */
	size_t nfiles;
	struct config *cfg;        /* last config_load() result */
	struct config_errors errs; /* its errors */
	struct userlist *ul;       /* last userlist_load() result */
	char *ul_err;              /* its error */
	char *path;                /* path of the last file written */
};

/* Makes the temporary directory (fx->dir is "" when that failed). */
void fx_init(struct fx *fx);
/* Frees what was loaded and removes the files and the directory. */
void fx_done(struct fx *fx);
/* Writes 'text' to DIR/name and returns its path (owned by fx), NULL on failure. */
const char *fx_write(struct fx *fx, const char *name, const char *text);
/* Writes DIR/pgcutover.ini and loads it; the result is fx->cfg and fx->errs. */
struct config *fx_load(struct fx *fx, const char *text);
/* Writes DIR/userlist.txt and loads it; the result is fx->ul and fx->ul_err. */
struct userlist *fx_userlist(struct fx *fx, const char *text);
/*
 * True when some error is "PATH:LINE: ..." (LINE 0: "PATH: ...") and
 * contains 'needle'; otherwise prints every error, to explain the failure.
 */
bool fx_has_error(const struct fx *fx, int line, const char *needle);
/* Prints the errors of a load that should have succeeded. */
void fx_print_errors(const struct fx *fx);

#define FX_LOAD_OK(fx, text)                                   \
	do {                                                   \
		if (fx_load((fx), (text)) == NULL) {           \
			fx_print_errors(fx);                   \
			UT_FAIL("configuration did not load"); \
		}                                              \
	} while (0)

#define FX_LOAD_FAILS(fx, text)                                              \
	do {                                                                 \
		if (fx_load((fx), (text)) != NULL)                           \
			UT_FAIL("configuration loaded but should not have"); \
	} while (0)

/* The smallest valid database section, appended to [pgcutover] snippets. */
#define MIN_DB                \
	"[database \"db\"]\n" \
	"source = host=s\n"   \
	"target = host=t\n"   \
	"lag_method = none\n"

#endif /* PGCUTOVER_CONFIG_FX_H */

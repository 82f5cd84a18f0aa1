/*
 * fuzz_conninfo.c - fuzz target for conninfo_parse() (proxy/core/conninfo.c),
 * which reads a database section's source and target strings with libpq's
 * PQconninfoParse and picks out what pgcutover uses.
 *
 * The input is one connection string (up to its first NUL byte, as it would
 * be once read from the configuration).  Accepted: a host with no ',', a
 * port in 1..65535, an sslmode pgcutover can honour.  Refused: a message in
 * the error buffer, whatever its size, and nothing left allocated.
 */
#include "tests/fuzz/fuzz.h"

#include <strings.h>

#include "proxy/core/conninfo.h"

/* The error buffer sizes tried: the callers' 256, and tiny ones that truncate. */
static const size_t errlens[] = {256, 1, 7};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);

	for (size_t i = 0; i < sizeof(errlens) / sizeof(errlens[0]); i++) {
		char *err = malloc(errlens[i]);
		struct backend_addr a;
		bool ok;

		FUZZ_CHECK(err != NULL);
		memset(err, 'x', errlens[i]);
		ok = conninfo_parse(s, &a, err, errlens[i]);
		if (ok) {
			FUZZ_CHECK(a.host != NULL && a.host[0] != '\0' &&
				   strchr(a.host, ',') == NULL);
			FUZZ_CHECK(a.port >= 1 && a.port <= 65535);
			/* one of the six modes, in any case (as libpq and the config accept it) */
			FUZZ_CHECK(a.sslmode == NULL || strcasecmp(a.sslmode, "disable") == 0 ||
				   strcasecmp(a.sslmode, "allow") == 0 ||
				   strcasecmp(a.sslmode, "prefer") == 0 ||
				   strcasecmp(a.sslmode, "require") == 0 ||
				   strcasecmp(a.sslmode, "verify-ca") == 0 ||
				   strcasecmp(a.sslmode, "verify-full") == 0);
			FUZZ_CHECK(a.dbname == NULL || a.dbname[0] != '\0');
			FUZZ_CHECK(a.user == NULL || a.user[0] != '\0');
			conninfo_free_addr(&a);
		} else {
			/* a NUL-terminated message that fits, and the address emptied */
			FUZZ_CHECK(memchr(err, '\0', errlens[i]) != NULL);
			FUZZ_CHECK(errlens[i] == 1 || err[0] != '\0');
			FUZZ_CHECK(a.host == NULL && a.dbname == NULL && a.user == NULL &&
				   a.password == NULL && a.sslmode == NULL);
		}
		FUZZ_CHECK(a.host == NULL && a.password == NULL);
		free(err);
	}
	free(s);
	return 0;
}

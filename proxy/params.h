/*
 * params.h - small ordered name/value lists: a client's startup parameters,
 * the ParameterStatus values a server reported, the ones a client was told.
 *
 * Lists are short (a dozen entries), so lookups are linear.
 */
#ifndef PGCUTOVER_PARAMS_H
#define PGCUTOVER_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

struct params {
	char **names;  /* malloc'd strings */
	char **values; /* malloc'd strings, parallel to names */
	size_t count;
	size_t cap;
	bool exact;    /* names compare exactly (identifiers), not case-insensitively (GUCs) */
};

void params_init(struct params *p);
/* A list whose names are case-sensitive identifiers (channels, statement names). */
void params_init_exact(struct params *p);
void params_free(struct params *p);
/* Set or replace; names compare case-insensitively as GUC names do. */
bool params_set(struct params *p, const char *name, const char *value)
	__attribute__((warn_unused_result));
const char *params_get(const struct params *p, const char *name);
bool params_copy(struct params *dst, const struct params *src)
	__attribute__((warn_unused_result));

/*
 * A canonical string of the list (sorted by name, "name=value" joined by NUL
 * bytes), malloc'd: two clients whose fingerprints are equal asked for the
 * same session, so a server opened for one can serve the other.
 */
char *params_fingerprint(const struct params *p, size_t *len_out);

#endif /* PGCUTOVER_PARAMS_H */

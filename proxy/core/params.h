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

#include "proxy/core/htab.h"

struct params {
	char **names;  /* malloc'd strings */
	char **values; /* malloc'd strings, parallel to names */
	size_t count;
	size_t cap;
	bool exact; /* names compare exactly (identifiers), not case-insensitively (GUCs) */
};

void params_init(struct params *p);
/* A list whose names are case-sensitive identifiers (channels, statement names). */
void params_init_exact(struct params *p);
void params_free(struct params *p);
/* Set or replace; names compare case-insensitively as GUC names do. */
bool params_set(struct params *p, const char *name, const char *value)
	__attribute__((warn_unused_result));
const char *params_get(const struct params *p, const char *name);
bool params_copy(struct params *dst, const struct params *src) __attribute__((warn_unused_result));

/*
 * A canonical string of the list (sorted by name, "name=value" joined by NUL
 * bytes), malloc'd: two clients whose fingerprints are equal asked for the
 * same session, so a server opened for one can serve the other.
 */
char *params_fingerprint(const struct params *p, size_t *len_out);

/*
 * An immutable list interned by its fingerprint, shared by everyone who
 * holds the same one: thousands of clients that sent the same startup
 * parameters, or were told the same server parameters, hold one copy, and
 * "same parameters" is a pointer comparison.
 */
struct params_snap {
	struct hnode hnode; /* in the intern table, by the fingerprint's hash */
	unsigned refs;
	struct params p;   /* the list itself (never changed) */
	char *fingerprint; /* params_fingerprint(&p) */
	size_t fp_len;
};

/* The interned snapshot of p, with a reference taken; NULL when out of memory. */
struct params_snap *params_snap_get(const struct params *p);
struct params_snap *params_snap_ref(struct params_snap *s);
/* Drop a reference (NULL is fine); the last one frees it. */
void params_snap_put(struct params_snap *s);
/* Snapshots alive (tests). */
size_t params_snap_count(void);

#endif /* PGCUTOVER_PARAMS_H */

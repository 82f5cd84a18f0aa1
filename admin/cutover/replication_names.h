/*
 * replication_names.h - the names of the replication objects of a database
 * (replication_names.c): pure text, unit-tested.
 *
 * The reverse direction's publication, slot and subscription all carry one
 * name: "pgcutover_rev_" + the database's name reduced to lower-case
 * letters, digits and '_' (at most 40 of them) + "_" + 8 hex digits of a
 * hash of the full name, so that two databases whose names reduce alike
 * never share a slot (slots are named per cluster).
 */
#ifndef PGCUTOVER_REPLICATION_NAMES_H
#define PGCUTOVER_REPLICATION_NAMES_H

#include <stdbool.h>
#include <stddef.h>

struct db_config;

/* Each name raw, quoted as an identifier, and quoted as a string literal. */
struct repl_names {
	char rev[64];            /* the reverse direction's objects */
	char rev_ident[140];     /* "..." */
	char rev_lit[140];       /* '...' */
	char fwd_slot_lit[140];  /* replication_slot, as a literal ('' when unset) */
	char fwd_sub_ident[140]; /* the forward subscription ("" when not known yet) */
	char fwd_sub_lit[140];
	/*
	 * An SQL expression giving the forward subscription's name on the target:
	 * the configured `subscription`, else the one whose slot is
	 * replication_slot (NULL when none is).
	 */
	char fwd_sub_query[420];
};

/* The reverse objects' name for database 'db' into out (at least 64 bytes). */
void replication_reverse_name(const char *db, char *out, size_t len);

/*
 * Every name for a section; fwd_sub is the forward subscription's name when
 * known (else NULL: the configured one, or none yet).  False when one does
 * not fit (names longer than PostgreSQL allows).
 */
bool replication_names(const struct db_config *dc, const char *fwd_sub, struct repl_names *out)
	__attribute__((warn_unused_result));

#endif /* PGCUTOVER_REPLICATION_NAMES_H */

/*
 * check_schema.h - the comparison behind CHECK's schema and indexes rows
 * (check_schema.c): two sides' catalog items, compared; pure (no I/O),
 * unit-tested.
 *
 * An item is one line of the schema query (check_sql.c): a table ('t'), a
 * column ('c': item = its name, detail = its type with any collation, flags
 * = 'n' NOT NULL, 'd' has a default), a primary key ('k': item = its
 * columns), an index ('i': item = its definition without its name) or a
 * sequence ('s': detail = its type).
 */
#ifndef PGCUTOVER_CHECK_SCHEMA_H
#define PGCUTOVER_CHECK_SCHEMA_H

#include <stddef.h>

struct schema_item {
	char kind; /* t c k i s */
	const char *schema, *table, *item, *detail, *flags;
};

/* What the comparison finds; the old side is the one a switch leaves. */
enum schema_finding {
	SF_TABLE_MISSING,    /* a table of the old side is not on the new side (fail) */
	SF_TABLE_EXTRA,      /* a table only on the new side (noted) */
	SF_COLUMN_MISSING,   /* a column of the old side is not there (fail) */
	SF_COLUMN_TYPE,      /* a column's type or collation differs (fail) */
	SF_COLUMN_REQUIRED,  /* a NOT NULL column without a default only on the new side (fail) */
	SF_COLUMN_EXTRA,     /* another column only on the new side (warn) */
	SF_COLUMN_NOT_NULL,  /* NOT NULL on the new side only (warn) */
	SF_PK_MISSING,       /* the new side's table has no primary key (fail) */
	SF_PK_DIFFERS,       /* its primary key has other columns (fail) */
	SF_INDEX_MISSING,    /* an index of the old side is not there (warn, indexes row) */
	SF_SEQUENCE_MISSING, /* a sequence of the old side is not there (fail) */
	SF_SEQUENCE_TYPE,    /* a sequence of another type (warn) */
	SF_NFINDINGS
};

/*
 * Sort both arrays (in place) and call found(arg, finding, old item, new
 * item) for each difference (either item NULL when absent), in the order of
 * the items.  The caller leaves out what it does not want compared
 * (ignore_tables) before.
 */
void schema_compare(struct schema_item *old, size_t nold, struct schema_item *neu, size_t nnew,
		    void (*found)(void *arg, enum schema_finding f, const struct schema_item *o,
				  const struct schema_item *n),
		    void *arg);

#endif /* PGCUTOVER_CHECK_SCHEMA_H */

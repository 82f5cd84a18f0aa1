/*
 * sqlclass.h - what the statements of a query string do, as far as their
 * words show it: which change the schema (for ddl = block and SHOW DDL),
 * and whether they only read (for shadow reads).
 *
 * Nothing here parses SQL.  The text is split into statements at its
 * semicolons (those inside strings, comments and BEGIN ATOMIC bodies do not
 * split), and each statement is judged by its tokens (sqltok.h).  What the
 * words do not show cannot be seen: a function or procedure that changes
 * the schema when it is called (SELECT f(), CALL p()), an EXECUTE of a
 * statement prepared earlier, SQL built at run time from pieces that are
 * not string constants.  The judgement errs on the safe side: a statement
 * is called read-only only when nothing in it says otherwise.
 *
 * Pure like the rest of protocol/.
 */
#ifndef PGCUTOVER_SQLCLASS_H
#define PGCUTOVER_SQLCLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- schema changes ---- */

/* How deep DO bodies and the strings their EXECUTEs run are looked into. */
#define SQLCLASS_DEPTH_MAX 4

/* One schema-changing statement found. */
struct sqlclass_ddl {
	size_t start; /* the statement in the text (a DO: the whole DO statement) */
	size_t len;
	char what[64]; /* "CREATE TABLE", "ALTER TABLE", "SELECT INTO", "DO (DROP INDEX)" */
};

/*
 * The session's temporary objects, so that creating and dropping them is
 * not taken for a schema change (both callbacks may be NULL).  Names are
 * unqualified, folded as SQL folds them.
 */
struct sqlclass_temps {
	bool (*known)(void *arg, const char *name);   /* created as temporary earlier */
	void (*created)(void *arg, const char *name); /* a temporary object is created now */
	void *arg;
};

typedef void (*sqlclass_ddl_fn)(void *arg, const struct sqlclass_ddl *d);

/*
 * Whether sql[0..len) may change the schema: false means it certainly does
 * not (one statement whose first words say so, the common case, decided
 * without a full scan); true means sqlclass_find_ddl() must look.
 */
bool sqlclass_ddl_maybe(const uint8_t *sql, size_t len);

/*
 * Call fn for every statement of sql[0..len) that changes the schema:
 * CREATE, ALTER, DROP, COMMENT ON, GRANT, REVOKE, SECURITY LABEL, IMPORT
 * FOREIGN SCHEMA, REASSIGN OWNED, SELECT ... INTO, also behind EXPLAIN
 * ANALYZE, and those a DO block runs (its PL/pgSQL statements and the
 * string constants its EXECUTEs run).  Temporary tables, views and
 * sequences are not schema changes: creating one reports it to temps, and
 * dropping or altering only such objects (or pg_temp.*) is not reported.
 * Returns how many were found.
 */
unsigned sqlclass_find_ddl(const uint8_t *sql, size_t len, const struct sqlclass_temps *temps,
			   sqlclass_ddl_fn fn, void *arg);

/* ---- reads ---- */

/* What a query string is, for shadow reads. */
enum sqlclass_read_kind {
	SQLCLASS_READ,     /* every statement only reads: SELECT, WITH, VALUES, TABLE, SHOW */
	SQLCLASS_BEGIN_RO, /* BEGIN or START TRANSACTION ... READ ONLY (maybe followed by reads) */
	SQLCLASS_END,   /* one COMMIT, END, ROLLBACK or ABORT (not TO SAVEPOINT, not AND CHAIN) */
	SQLCLASS_TXN,   /* reads and what a read-only transaction may also hold: SAVEPOINT,
			      RELEASE, ROLLBACK TO, SET and RESET of a setting */
	SQLCLASS_OTHER, /* anything else: a write, a function that writes or depends on the
			      session (nextval, set_config, advisory locks...), SELECT ... INTO,
			      FOR UPDATE, cursors, an empty string */
};

struct sqlclass_read {
	enum sqlclass_read_kind kind;
	unsigned statements;
	/* every reading statement has an ORDER BY at its top level: row order counts */
	bool ordered;
	/*
	 * a reading statement's answer depends on the server or the moment
	 * (now(), random(), pg_* catalogs and functions, system columns, OIDs,
	 * version()...): only errors and columns can be compared
	 */
	bool shape_only;
	/* SQLCLASS_BEGIN_RO: where the statements after the BEGIN start (len: none) */
	size_t rest;
};

/* Judge sql[0..len). */
void sqlclass_read(const uint8_t *sql, size_t len, struct sqlclass_read *out);

#endif /* PGCUTOVER_SQLCLASS_H */

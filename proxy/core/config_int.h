/*
 * config_int.h - INTERNAL to the configuration module (proxy/core/config*.c):
 * what its files share and nothing else may use.  The public interface is
 * config.h; no file outside proxy/core/config*.c includes this one (the one
 * exception is the unit test that holds the documentation to the key table,
 * tests/unit/test_reference.c).
 *
 * The module's files, each with one job:
 *
 *   config.c        config_load(), config_free(), the defaults, the lookups
 *   config_read.c   the reader: inih's callbacks, lines, sections, the error list
 *   config_keys.c   the table of keys and how a value is checked and stored
 *   config_units.c  durations, sizes and enum names, both ways
 *   config_check.c  after the last line: inheritance, paths, TLS files, the
 *                   checks across keys
 *   config_dump.c   config_dump() for SHOW CONFIG
 *
 * Every key is described once in config_keys[]: its type, where it may
 * appear and where it is stored.  The same table drives parsing, the
 * inheritance of [pgcutover] defaults by databases, and config_dump().
 */
#ifndef PGCUTOVER_CONFIG_INT_H
#define PGCUTOVER_CONFIG_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proxy/core/config.h"

/* PostgreSQL's limits: NAMEDATALEN - 1 bytes per name, INT_MAX ms per timeout. */
#define CONFIG_NAME_MAX        63
#define CONFIG_DURATION_MAX_MS ((int64_t)INT_MAX)
#define CONFIG_KB              ((int64_t)1024)
#define CONFIG_GB              (CONFIG_KB * 1024 * 1024)

/* ---------------------------------------------------------------------- */
/* The keys (config_keys.c)                                               */
/* ---------------------------------------------------------------------- */

/* How a value is read, checked and stored. */
enum config_key_type {
	KT_STRING,        /* char *; min 1 = must not be empty */
	KT_OPTSTRING,     /* char *; empty means unset and is stored as NULL */
	KT_LIST,          /* char *; comma list of non-empty items */
	KT_PATH,          /* char *; made absolute after parsing; min 1 = must not be empty */
	KT_SLOT,          /* char *; replication slot name, NULL when empty */
	KT_TABLE,         /* char *; [schema.]table */
	KT_SEQSYNC,       /* char *; all, none or a comma list of schema.sequence */
	KT_INT,           /* int in [min, max] */
	KT_PORT,          /* int in [min, max], worded as a port */
	KT_INT64,         /* int64_t in [min, max] */
	KT_DURATION,      /* int64_t milliseconds in [min, max] */
	KT_SIZE,          /* int64_t bytes in [min, max] */
	KT_POOL_MODE,     /* enum pool_mode */
	KT_AUTH_TYPE,     /* enum auth_type */
	KT_LAG_METHOD,    /* enum lag_method */
	KT_SSLMODE,       /* enum tls_sslmode; max = the highest mode allowed, min 1 = no allow */
	KT_TLS_PROTOCOLS, /* char *; normalised comma list of tlsv1.x */
	KT_BOOL,          /* bool; on/off, true/false, yes/no, 1/0 */
	KT_FACILITY,      /* char *; a syslog facility, stored in lower case */
	KT_TABLES,        /* char *; comma list of [schema.]table or schema.*, "" = none */
	KT_ABORT_PROCEED, /* bool; abort (true) or proceed (false) */
	KT_FRACTION,      /* double in [0, 1]: 0.01, 1, 0 */
	KT_DDL_MODE,      /* enum ddl_mode */
};

/* Where a key may appear. */
enum config_key_scope {
	SCOPE_MAIN = 1, /* [pgcutover] */
	SCOPE_DB = 2,   /* [database "name"] */
	SCOPE_BOTH = 3, /* a [pgcutover] default a database may override */
};

/* An offset a key does not have (struct config_key's *_off). */
#define NO_OFFSET SIZE_MAX
/* No upper bound (struct config_key's max). */
#define NO_MAX INT64_MAX

struct config_key {
	const char *name;            /* as written in the file (compared case-insensitively) */
	enum config_key_type type;   /* how the value is parsed, checked, stored and dumped */
	enum config_key_scope scope; /* the sections it may appear in */
	size_t main_off;             /* offset in struct config, or NO_OFFSET */
	size_t db_off;               /* offset in struct db_config, or NO_OFFSET */
	size_t inherit_off;          /* offset in struct config a database copies when unset */
	int64_t min, max;            /* numeric range; for strings min 1 = non-empty */
};

/*
 * The number of entries of config_keys[]: the loader keeps a line number per
 * key and section.  config_keys.c checks at compile time that the table has
 * exactly this many entries; adding a key means raising it.
 */
#define CONFIG_NKEYS 72

/*
 * Every key, [pgcutover] ones in the order of the documentation (which is
 * also the order of SHOW CONFIG), then the database-only ones.
 */
extern const struct config_key config_keys[];

/* The key called 'name' (case-insensitively) and its index; NULL when unknown. */
const struct config_key *config_find_key(const char *name, size_t *index);

/* ---------------------------------------------------------------------- */
/* The loader (config.c drives it)                                        */
/* ---------------------------------------------------------------------- */

/* Which kind of section the current line is in. */
enum config_section {
	SEC_NONE,   /* before any header: keys here are errors */
	SEC_MAIN,   /* [pgcutover] */
	SEC_DB,     /* [database "name"]: loader.cur_db */
	SEC_IGNORE, /* after a bad header: its keys are skipped, not reported again */
};

/* What the loader remembers about one database section, beside its db_config. */
struct config_db_state {
	/*
	 * Line where each key was set, 0 = not set, negated when its value was
	 * rejected: the checks after parsing then stay quiet about it rather
	 * than reporting the same mistake twice.
	 */
	int key_line[CONFIG_NKEYS];
};

/* One load of one file, from config_load_keep() to its return. */
struct config_loader {
	struct config *cfg;         /* being filled; starts with every default */
	struct config_errors *errs; /* the caller's: every problem is appended */
	size_t errs_before;         /* errs->count on entry: more means failure */
	const char *path;           /* as the caller gave it, for messages */
	FILE *fp;                   /* the file, read line by line by the reader */
	char *buf;                  /* getline() buffer holding the current line */
	size_t bufcap;              /* its allocated size */
	int lineno;                 /* current line, counted by the reader */
	bool oom;                   /* an allocation failed: the config is unusable */
	int read_errno;             /* errno of a failed read, 0 = none */

	enum config_section sec;         /* the section the current line belongs to */
	size_t cur_db;                   /* SEC_DB: index in cfg->dbs */
	int main_line;                   /* line of the [pgcutover] header, 0 = none yet */
	int main_key_line[CONFIG_NKEYS]; /* as config_db_state.key_line, for [pgcutover] */
	struct config_db_state *dbst;    /* parallel to cfg->dbs */
	size_t dbcap;                    /* allocated entries of cfg->dbs and dbst */

	char *long_value; /* value of the current line when it was too long for inih */
	int long_line;    /* the line long_value belongs to */
};

/* ---------------------------------------------------------------------- */
/* Between the files                                                      */
/* ---------------------------------------------------------------------- */

/* config_read.c: records one error at 'line' (0 = not tied to a line). */
void config_ld_error(struct config_loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* config_read.c: strdup() that marks the load out of memory when it fails. */
char *config_ld_strdup(struct config_loader *ld, const char *s);
/*
 * config_read.c: reads ld->fp to its end through inih, filling ld->cfg and
 * recording every problem; frees the reader's buffers, not the file.
 */
void config_read(struct config_loader *ld);

/*
 * config_keys.c: parses 'value' for key k and stores it at 'field'.  False,
 * with an error recorded and the field unchanged, when it is not acceptable.
 */
bool config_set_value(struct config_loader *ld, const struct config_key *k, const char *value,
		      void *field);
/* config_keys.c: frees the string at 'slot' and stores v (which may be NULL). */
void config_set_string(char **slot, char *v);
/* config_keys.c: trims blanks around [*s, *s + *len). */
void config_trim_span(const char **s, size_t *len);

/*
 * config_units.c: reads the unsigned decimal integer at *p, advancing it.
 * False when there is no digit or the value does not fit in an int64_t.
 */
bool config_parse_digits(const char **p, int64_t *out);
/* config_units.c: a fraction in [0, 1] written as 0.01, .5 or 1; false otherwise. */
bool config_parse_fraction(const char *s, double *out);
/* config_units.c: a fraction as SHOW CONFIG shows it: 0.01, 1, 0. */
void config_format_fraction(char *buf, size_t len, double v);
/* config_units.c: "10s", "250ms", "10min"; "0" for 0. */
void config_format_duration(char *buf, size_t len, int64_t ms);
/* config_units.c: "64MB", "256kB"; plain bytes below one kB or when no unit divides. */
void config_format_size(char *buf, size_t len, int64_t bytes);

/*
 * config_check.c: after the last line: resolves paths, fills in what each
 * database inherits, and records the problems that involve several keys.
 */
void config_finish(struct config_loader *ld);

#endif /* PGCUTOVER_CONFIG_INT_H */

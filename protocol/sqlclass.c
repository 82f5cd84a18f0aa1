/*
 * sqlclass.c - schema changes and reads, judged by the words of each
 * statement (see sqlclass.h).
 *
 * A statement is a run of tokens up to a semicolon; a BEGIN ATOMIC body
 * (with its CASE ... END pairs) holds its semicolons.  A DO block's body is
 * read as PL/pgSQL: a statement starts at its beginning and after ';',
 * BEGIN, THEN, ELSE, LOOP and a label's '>>'; the string constants that
 * follow an EXECUTE are read as SQL in turn.
 */
#include "protocol/sqlclass.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include "protocol/sqltok.h"

/* ---- statements ---- */

/* One statement: [start, end) of the text, end before its semicolon. */
struct stmt {
	size_t start, end;
};

/*
 * The next statement from *off; false at the end of the text.  Empty
 * statements (";;") are skipped.
 */
static bool next_stmt(const uint8_t *sql, size_t len, size_t *off, struct stmt *st)
{
	struct sqltok t, prev;
	unsigned atomic = 0; /* inside BEGIN ATOMIC: CASE/BEGIN ... END depth */
	bool have = false;

	memset(&prev, 0, sizeof(prev));
	for (;;) {
		size_t before = *off;

		if (sqltok_next(sql, len, off, &t) == SQLTOK_END) {
			if (!have)
				return false;
			st->end = before;
			return true;
		}
		if (sqltok_punct(&t, ';') && atomic == 0) {
			if (!have)
				continue;
			st->end = t.start;
			return true;
		}
		if (!have) {
			st->start = t.start;
			have = true;
		}
		if (atomic == 0 && sqltok_is(&t, "atomic") && sqltok_is(&prev, "begin"))
			atomic = 1;
		else if (atomic > 0 && (sqltok_is(&t, "case") || sqltok_is(&t, "begin")))
			atomic++;
		else if (atomic > 0 && sqltok_is(&t, "end"))
			atomic--;
		prev = t;
	}
}

/* The first token of [st] at or after *off; SQLTOK_END past its end. */
static enum sqltok_kind stmt_tok(const uint8_t *sql, const struct stmt *st, size_t *off,
				 struct sqltok *t)
{
	return sqltok_next(sql, st->end, off, t);
}

/* Append an upper-cased word to a "what" text. */
static void what_add(char *what, size_t size, const char *word)
{
	size_t n = strlen(what);

	if (n > 0 && n + 1 < size)
		what[n++] = ' ';
	for (; *word && n + 1 < size; word++)
		what[n++] = (char)(*word >= 'a' && *word <= 'z' ? *word - ('a' - 'A') : *word);
	what[n] = '\0';
}

/* ---- schema changes ---- */

/* What a scan for schema changes carries along. */
struct ddl_scan {
	const struct sqlclass_temps *temps;
	sqlclass_ddl_fn fn;
	void *arg;
	unsigned found;
	size_t outer_start, outer_len; /* the top-level statement being looked into (a DO) */
	unsigned depth;                /* DO bodies and EXECUTE strings entered */
};

static void scan_sql(struct ddl_scan *sc, const uint8_t *sql, size_t len);

static void report(struct ddl_scan *sc, size_t start, size_t len, const char *what)
{
	struct sqlclass_ddl d;

	sc->found++;
	if (sc->fn == NULL)
		return;
	memset(&d, 0, sizeof(d));
	if (sc->depth > 0) {
		d.start = sc->outer_start;
		d.len = sc->outer_len;
		snprintf(d.what, sizeof(d.what), "DO (%s)", what);
	} else {
		d.start = start;
		d.len = len;
		snprintf(d.what, sizeof(d.what), "%s", what);
	}
	sc->fn(sc->arg, &d);
}

/* Words after a DDL verb that say what kind of object follows, not which. */
static bool object_modifier(const struct sqltok *t)
{
	static const char *const mods[] = {
		"or",       "replace",    "unique",    "materialized", "foreign", "default",
		"unlogged", "global",     "local",     "event",        "text",    "access",
		"trusted",  "procedural", "recursive", "constraint",   "large",   "concurrently",
	};

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
		if (sqltok_is(t, mods[i]))
			return true;
	return false;
}

/*
 * The name at *off of a statement ("a", "s.a", "\"A\""): its last part
 * into name (folded as SQL folds it), *pg_temp when qualified by pg_temp.
 * False when there is none, or it is too long.
 */
static bool read_name(const uint8_t *sql, const struct stmt *st, size_t *off, char *name,
		      bool *pg_temp)
{
	struct sqltok t;
	size_t save;

	*pg_temp = false;
	for (;;) {
		if (stmt_tok(sql, st, off, &t) != SQLTOK_WORD && t.kind != SQLTOK_IDENT)
			return false;
		if (t.word[0] == '\0')
			return false;
		memcpy(name, t.word, sizeof(t.word));
		save = *off;
		if (stmt_tok(sql, st, off, &t) != SQLTOK_PUNCT || !sqltok_punct(&t, '.')) {
			*off = save;
			return true;
		}
		if (strcmp(name, "pg_temp") == 0 || strncmp(name, "pg_temp_", 8) == 0)
			*pg_temp = true;
	}
}

/* Skip "IF EXISTS" / "IF NOT EXISTS" at *off. */
static void skip_if_exists(const uint8_t *sql, const struct stmt *st, size_t *off)
{
	struct sqltok t;
	size_t save = *off;

	if (stmt_tok(sql, st, off, &t) != SQLTOK_WORD || !sqltok_is(&t, "if")) {
		*off = save;
		return;
	}
	while (stmt_tok(sql, st, off, &t) == SQLTOK_WORD && !sqltok_is(&t, "exists"))
		;
}

static bool temp_known(const struct ddl_scan *sc, const char *name)
{
	return sc->temps && sc->temps->known && sc->temps->known(sc->temps->arg, name);
}

static void temp_created(const struct ddl_scan *sc, const char *name)
{
	if (sc->temps && sc->temps->created)
		sc->temps->created(sc->temps->arg, name);
}

static bool temp_object(const struct sqltok *t)
{
	return sqltok_is(t, "table") || sqltok_is(t, "view") || sqltok_is(t, "sequence");
}

/*
 * CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP|TEMPORARY [RECURSIVE] TABLE|VIEW|
 * SEQUENCE [IF NOT EXISTS] name: remember the name; true when it is one.
 */
static bool create_temp(struct ddl_scan *sc, const uint8_t *sql, const struct stmt *st, size_t off)
{
	struct sqltok t;
	bool temp = false, pg_temp;
	char name[SQLTOK_WORD_MAX + 1];

	while (stmt_tok(sql, st, &off, &t) == SQLTOK_WORD) {
		if (sqltok_is(&t, "temp") || sqltok_is(&t, "temporary"))
			temp = true;
		else if (temp_object(&t))
			break;
		else if (!sqltok_is(&t, "or") && !sqltok_is(&t, "replace") &&
			 !sqltok_is(&t, "global") && !sqltok_is(&t, "local") &&
			 !sqltok_is(&t, "recursive"))
			return false;
	}
	if (!temp || !temp_object(&t))
		return false;
	skip_if_exists(sql, st, &off);
	if (read_name(sql, st, &off, name, &pg_temp))
		temp_created(sc, name);
	return true;
}

/*
 * DROP|ALTER TABLE|VIEW|SEQUENCE [IF EXISTS] name [, name...]: true when
 * every name is a temporary object of the session (or in pg_temp).
 */
static bool only_temps(struct ddl_scan *sc, const uint8_t *sql, const struct stmt *st, size_t off)
{
	struct sqltok t;
	char name[SQLTOK_WORD_MAX + 1];
	bool pg_temp, any = false;

	if (stmt_tok(sql, st, &off, &t) != SQLTOK_WORD || !temp_object(&t))
		return false;
	skip_if_exists(sql, st, &off);
	for (;;) {
		size_t save;

		if (!read_name(sql, st, &off, name, &pg_temp) || (!pg_temp && !temp_known(sc, name)))
			return false;
		any = true;
		save = off;
		if (stmt_tok(sql, st, &off, &t) != SQLTOK_PUNCT || !sqltok_punct(&t, ',')) {
			off = save;
			break;
		}
	}
	return any;
}

/*
 * SELECT ... INTO [TEMP] name at the statement's top level (after a SELECT,
 * not an INSERT): true with *temp when it creates a table.
 */
static bool select_into(struct ddl_scan *sc, const uint8_t *sql, const struct stmt *st, size_t off)
{
	struct sqltok t;
	int depth = 0;
	bool select = false;

	while (stmt_tok(sql, st, &off, &t) != SQLTOK_END) {
		if (sqltok_punct(&t, '(') || sqltok_punct(&t, '['))
			depth++;
		else if ((sqltok_punct(&t, ')') || sqltok_punct(&t, ']')) && depth > 0)
			depth--;
		if (depth != 0 || t.kind != SQLTOK_WORD)
			continue;
		if (sqltok_is(&t, "select"))
			select = true;
		else if (sqltok_is(&t, "insert") || sqltok_is(&t, "update") ||
			 sqltok_is(&t, "delete") || sqltok_is(&t, "merge"))
			select = false;
		else if (sqltok_is(&t, "into") && select) {
			struct stmt rest = {off, st->end};
			size_t o = off;
			struct sqltok n;
			char name[SQLTOK_WORD_MAX + 1];
			bool pg_temp;

			if (stmt_tok(sql, &rest, &o, &n) == SQLTOK_WORD &&
			    (sqltok_is(&n, "temp") || sqltok_is(&n, "temporary"))) {
				size_t o2 = o;

				if (stmt_tok(sql, &rest, &o2, &n) == SQLTOK_WORD &&
				    sqltok_is(&n, "table"))
					o = o2;
				if (read_name(sql, &rest, &o, name, &pg_temp))
					temp_created(sc, name);
				return false;
			}
			return true;
		}
	}
	return false;
}

/* Whether a DO names a language other than PL/pgSQL (its body cannot be read then). */
static bool do_body(const uint8_t *sql, const struct stmt *st, size_t off, struct sqltok *body)
{
	struct sqltok t;
	bool have = false, plpgsql = true;

	while (stmt_tok(sql, st, &off, &t) != SQLTOK_END) {
		if (t.kind == SQLTOK_STRING && !have) {
			*body = t;
			have = true;
		} else if (sqltok_is(&t, "language")) {
			struct sqltok l;

			if (stmt_tok(sql, st, &off, &l) == SQLTOK_WORD || l.kind == SQLTOK_IDENT ||
			    l.kind == SQLTOK_STRING) {
				const char *w = l.word;
				char lang[SQLTOK_WORD_MAX + 1] = "";

				if (l.kind == SQLTOK_STRING && l.body_len < sizeof(lang)) {
					memcpy(lang, sql + l.body, l.body_len);
					lang[l.body_len] = '\0';
					w = lang;
				}
				plpgsql = strcmp(w, "plpgsql") == 0;
			}
		}
	}
	return have && plpgsql;
}

static bool ddl_verb(const struct sqltok *t)
{
	static const char *const verbs[] = {"create", "alter",    "drop",   "comment", "grant",
					    "revoke", "security", "import", "reassign"};

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (sqltok_is(t, verbs[i]))
			return true;
	return false;
}

/* A PL/pgSQL body: its statements, and what its EXECUTEs run. */
static void scan_plpgsql(struct ddl_scan *sc, const uint8_t *sql, size_t len)
{
	struct sqltok t;
	size_t off = 0;
	bool at_start = true, execute = false;

	while (sqltok_next(sql, len, &off, &t) != SQLTOK_END) {
		if (at_start && ddl_verb(&t)) {
			/* the SQL statement from here to its semicolon */
			size_t o = t.start;
			struct stmt st;

			if (!next_stmt(sql, len, &o, &st))
				break;
			scan_sql(sc, sql + st.start, st.end - st.start);
			off = st.end;
			at_start = false;
			continue;
		}
		if (sqltok_is(&t, "execute"))
			execute = true;
		else if (execute && t.kind == SQLTOK_STRING)
			scan_sql(sc, sql + t.body, t.body_len);
		if (sqltok_punct(&t, ';'))
			execute = false;
		at_start = sqltok_punct(&t, ';') || sqltok_is(&t, "begin") ||
			   sqltok_is(&t, "then") || sqltok_is(&t, "else") ||
			   sqltok_is(&t, "loop") ||
			   (t.kind == SQLTOK_OP && strcmp(t.word, ">>") == 0);
	}
}

/*
 * A DO body: dollar-quoted it is read as it is; in quotes ('...', E'...')
 * its doubled quotes (and, in E'...', backslash escapes) are undone first,
 * in a copy, so that the strings its EXECUTEs run read as strings.
 */
static void scan_body(struct ddl_scan *sc, const uint8_t *sql, const struct sqltok *body)
{
	const uint8_t *b = sql + body->body;
	bool escapes = (sql[body->start] | 0x20) == 'e';
	uint8_t *copy;
	size_t n = 0;

	if (sql[body->start] == '$' || body->body_len == 0 ||
	    (copy = malloc(body->body_len)) == NULL) {
		scan_plpgsql(sc, b, body->body_len);
		return;
	}
	for (size_t i = 0; i < body->body_len; i++) {
		if ((b[i] == '\'' || (escapes && b[i] == '\\')) && i + 1 < body->body_len)
			i++;
		copy[n++] = b[i];
	}
	scan_plpgsql(sc, copy, n);
	free(copy);
}

/* One statement of SQL: report it when it changes the schema. */
static void scan_stmt(struct ddl_scan *sc, const uint8_t *sql, const struct stmt *st)
{
	struct sqltok t, n;
	size_t off = st->start, after;
	char what[64] = "";

	/* "(SELECT ...)", EXPLAIN [ANALYZE] [(...)] ... : what they run */
	while (stmt_tok(sql, st, &off, &t) == SQLTOK_PUNCT && sqltok_punct(&t, '('))
		;
	if (sqltok_is(&t, "explain")) {
		for (;;) {
			after = off;
			if (stmt_tok(sql, st, &off, &t) == SQLTOK_PUNCT && sqltok_punct(&t, '(')) {
				while (stmt_tok(sql, st, &off, &t) != SQLTOK_END &&
				       !sqltok_punct(&t, ')'))
					;
				continue;
			}
			if (sqltok_is(&t, "analyze") || sqltok_is(&t, "analyse") ||
			    sqltok_is(&t, "verbose"))
				continue;
			break;
		}
		off = after;
		if (stmt_tok(sql, st, &off, &t) == SQLTOK_END)
			return;
	}
	if (t.kind != SQLTOK_WORD)
		return;
	after = off;
	if (sqltok_is(&t, "select") || sqltok_is(&t, "with")) {
		if (select_into(sc, sql, st, t.start))
			report(sc, st->start, st->end - st->start, "SELECT INTO");
		return;
	}
	if (sqltok_is(&t, "do")) {
		struct sqltok body;

		memset(&body, 0, sizeof(body));
		if (sc->depth >= SQLCLASS_DEPTH_MAX || !do_body(sql, st, off, &body))
			return;
		if (sc->depth == 0) {
			sc->outer_start = st->start;
			sc->outer_len = st->end - st->start;
		}
		sc->depth++;
		scan_body(sc, sql, &body);
		sc->depth--;
		return;
	}
	if (!ddl_verb(&t))
		return;
	if (stmt_tok(sql, st, &off, &n) != SQLTOK_WORD)
		return;
	if ((sqltok_is(&t, "comment") && !sqltok_is(&n, "on")) ||
	    (sqltok_is(&t, "security") && !sqltok_is(&n, "label")) ||
	    (sqltok_is(&t, "import") && !sqltok_is(&n, "foreign")) ||
	    (sqltok_is(&t, "reassign") && !sqltok_is(&n, "owned")))
		return;
	if (sqltok_is(&t, "create") && create_temp(sc, sql, st, after))
		return;
	if ((sqltok_is(&t, "drop") || sqltok_is(&t, "alter")) && only_temps(sc, sql, st, after))
		return;
	what_add(what, sizeof(what), t.word);
	if (!sqltok_is(&t, "grant") && !sqltok_is(&t, "revoke")) {
		/* the kind of object: "CREATE OR REPLACE FUNCTION", "DROP INDEX" */
		for (int k = 0; k < 4; k++) {
			what_add(what, sizeof(what), n.word);
			if (!object_modifier(&n) || stmt_tok(sql, st, &off, &n) != SQLTOK_WORD)
				break;
		}
	}
	report(sc, st->start, st->end - st->start, what);
}

static void scan_sql(struct ddl_scan *sc, const uint8_t *sql, size_t len)
{
	size_t off = 0;
	struct stmt st;

	if (sc->depth > SQLCLASS_DEPTH_MAX)
		return;
	if (sc->depth > 0)
		sc->depth++;
	while (next_stmt(sql, len, &off, &st))
		scan_stmt(sc, sql, &st);
	if (sc->depth > 0)
		sc->depth--;
}

/* A case-insensitive "into" somewhere in the text (a fast look, strings included). */
static bool has_into(const uint8_t *sql, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if ((sql[i] | 0x20) == 'i' && (sql[i + 1] | 0x20) == 'n' &&
		    (sql[i + 2] | 0x20) == 't' && (sql[i + 3] | 0x20) == 'o')
			return true;
	}
	return false;
}

bool sqlclass_ddl_maybe(const uint8_t *sql, size_t len)
{
	struct sqltok t;
	size_t off = 0;
	const uint8_t *semi;

	while (sqltok_next(sql, len, &off, &t) == SQLTOK_PUNCT && sqltok_punct(&t, '('))
		;
	if (t.kind == SQLTOK_END)
		return false;
	if (t.kind != SQLTOK_WORD || ddl_verb(&t) || sqltok_is(&t, "do") || sqltok_is(&t, "explain"))
		return true;
	if ((sqltok_is(&t, "select") || sqltok_is(&t, "with")) && has_into(sql + off, len - off))
		return true;
	/*
	 * Another statement after this one: a semicolon with something after it
	 * (one that only ends the statement, as pgbench and many drivers send
	 * it, is not: that case was the full scan of nearly every query).
	 */
	semi = memchr(sql + off, ';', len - off);
	if (semi == NULL)
		return false;
	for (const uint8_t *p = semi + 1; p < sql + len; p++)
		if (*p != ';' && !isspace(*p))
			return true;
	return false;
}

unsigned sqlclass_find_ddl(const uint8_t *sql, size_t len, const struct sqlclass_temps *temps,
			   sqlclass_ddl_fn fn, void *arg)
{
	struct ddl_scan sc;

	memset(&sc, 0, sizeof(sc));
	sc.temps = temps;
	sc.fn = fn;
	sc.arg = arg;
	scan_sql(&sc, sql, len);
	return sc.found;
}

/* ---- reads ---- */

static bool in_list(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

static bool has_prefix(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(w, list[i], strlen(list[i])) == 0)
			return true;
	return false;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Words that make a statement more than a read: writes, locks, session state. */
static bool denied_word(const char *w)
{
	static const char *const words[] = {
		"insert",
		"update",
		"delete",
		"merge",
		"into",
		"share",
		"nextval",
		"setval",
		"currval",
		"lastval",
		"set_config",
		"setseed",
		"pg_notify",
		"pg_temp",
		"txid_current",
		"pg_current_xact_id",
		"pg_promote",
		"pg_reload_conf",
		"pg_rotate_logfile",
		"pg_switch_wal",
		"pg_terminate_backend",
		"pg_cancel_backend",
		"pg_export_snapshot",
	};
	static const char *const prefixes[] = {
		"lo_",      "dblink",          "pg_advisory",   "pg_try_advisory", "pg_create_",
		"pg_drop_", "pg_replication_", "pg_stat_reset", "pg_logical_",     "pg_import_",
		"pg_file_", "pg_temp_",        "pg_sequence_",  "pg_wal_replay",
	};

	return in_list(w, words, NELEM(words)) || has_prefix(w, prefixes, NELEM(prefixes));
}

/* Words whose value depends on the server or the moment. */
static bool shape_word(const char *w)
{
	static const char *const words[] = {
		"now",
		"random",
		"random_normal",
		"clock_timestamp",
		"statement_timestamp",
		"transaction_timestamp",
		"timeofday",
		"current_timestamp",
		"current_time",
		"current_date",
		"localtime",
		"localtimestamp",
		"gen_random_uuid",
		"version",
		"inet_server_addr",
		"inet_server_port",
		"inet_client_addr",
		"inet_client_port",
		"tableoid",
		"ctid",
		"xmin",
		"xmax",
		"cmin",
		"cmax",
		"oid",
		"regclass",
		"regproc",
		"regprocedure",
		"regtype",
		"regoper",
		"regoperator",
		"regnamespace",
		"regrole",
		"regconfig",
		"regdictionary",
		"regcollation",
		"tablesample",
		"information_schema",
	};
	static const char *const prefixes[] = {"pg_", "uuid_generate"};

	return in_list(w, words, NELEM(words)) || has_prefix(w, prefixes, NELEM(prefixes));
}

/* What one statement is, with its order and shape flags. */
static enum sqlclass_read_kind read_stmt(const uint8_t *sql, const struct stmt *st, bool *ordered,
					 bool *shape)
{
	struct sqltok t, n, prev;
	size_t off = st->start;
	int depth = 0;
	bool read_only = false, write = false;

	*ordered = false;
	*shape = false;
	while (stmt_tok(sql, st, &off, &t) == SQLTOK_PUNCT && sqltok_punct(&t, '('))
		depth++;
	if (t.kind != SQLTOK_WORD)
		return SQLCLASS_OTHER;
	if (sqltok_is(&t, "begin") || sqltok_is(&t, "start")) {
		if (sqltok_is(&t, "start") &&
		    (stmt_tok(sql, st, &off, &n) != SQLTOK_WORD || !sqltok_is(&n, "transaction")))
			return SQLCLASS_OTHER;
		memset(&prev, 0, sizeof(prev));
		while (stmt_tok(sql, st, &off, &n) != SQLTOK_END) {
			if (sqltok_is(&prev, "read") && sqltok_is(&n, "only"))
				read_only = true;
			if (sqltok_is(&prev, "read") && sqltok_is(&n, "write"))
				write = true;
			prev = n;
		}
		return read_only && !write ? SQLCLASS_BEGIN_RO : SQLCLASS_OTHER;
	}
	if (sqltok_is(&t, "commit") || sqltok_is(&t, "end") || sqltok_is(&t, "rollback") ||
	    sqltok_is(&t, "abort")) {
		bool to = false;

		while (stmt_tok(sql, st, &off, &n) != SQLTOK_END) {
			if (sqltok_is(&n, "chain") || sqltok_is(&n, "prepared"))
				return SQLCLASS_OTHER;
			if (sqltok_is(&n, "to"))
				to = true;
		}
		return to ? SQLCLASS_TXN : SQLCLASS_END;
	}
	if (sqltok_is(&t, "savepoint") || sqltok_is(&t, "release"))
		return SQLCLASS_TXN;
	if (sqltok_is(&t, "set") || sqltok_is(&t, "reset")) {
		if (stmt_tok(sql, st, &off, &n) != SQLTOK_WORD)
			return SQLCLASS_OTHER;
		if (sqltok_is(&n, "local") || sqltok_is(&n, "session")) {
			if (stmt_tok(sql, st, &off, &n) != SQLTOK_WORD && n.kind != SQLTOK_IDENT)
				return SQLCLASS_OTHER;
		}
		if (sqltok_is(&n, "transaction") || sqltok_is(&n, "constraints") ||
		    sqltok_is(&n, "characteristics") || sqltok_is(&n, "authorization") ||
		    sqltok_is(&n, "session") || sqltok_is(&n, "role") || sqltok_is(&n, "all"))
			return SQLCLASS_OTHER;
		return SQLCLASS_TXN;
	}
	if (sqltok_is(&t, "show")) {
		*shape = true;
		return SQLCLASS_READ;
	}
	if (!sqltok_is(&t, "select") && !sqltok_is(&t, "with") && !sqltok_is(&t, "values") &&
	    !sqltok_is(&t, "table"))
		return SQLCLASS_OTHER;
	memset(&prev, 0, sizeof(prev));
	do {
		if (sqltok_punct(&t, '(') || sqltok_punct(&t, '['))
			depth++;
		else if (sqltok_punct(&t, ')') || sqltok_punct(&t, ']'))
			depth--;
		if (t.kind == SQLTOK_WORD) {
			if (t.word[0] == '\0' || denied_word(t.word))
				return SQLCLASS_OTHER;
			if (shape_word(t.word))
				*shape = true;
			if (depth <= 0 && sqltok_is(&prev, "order") && sqltok_is(&t, "by"))
				*ordered = true;
		}
		prev = t;
	} while (stmt_tok(sql, st, &off, &t) != SQLTOK_END);
	return SQLCLASS_READ;
}

void sqlclass_read(const uint8_t *sql, size_t len, struct sqlclass_read *out)
{
	size_t off = 0;
	struct stmt st;
	bool all_ordered = true, any_read = false, any_txn = false, begin_ro = false;

	memset(out, 0, sizeof(*out));
	out->kind = SQLCLASS_OTHER;
	out->rest = len;
	while (next_stmt(sql, len, &off, &st)) {
		bool ordered, shape;
		enum sqlclass_read_kind k = read_stmt(sql, &st, &ordered, &shape);

		out->statements++;
		if (out->statements == 1 && k == SQLCLASS_BEGIN_RO) {
			begin_ro = true;
			out->rest = off;
			continue;
		}
		if (out->statements == 1 && k == SQLCLASS_END) {
			out->kind = SQLCLASS_END;
			continue;
		}
		if (out->kind == SQLCLASS_END || k == SQLCLASS_OTHER || k == SQLCLASS_END ||
		    k == SQLCLASS_BEGIN_RO) {
			out->kind = SQLCLASS_OTHER;
			return;
		}
		if (k == SQLCLASS_TXN) {
			any_txn = true;
			continue;
		}
		any_read = true;
		all_ordered = all_ordered && ordered;
		out->shape_only = out->shape_only || shape;
	}
	if (out->statements == 0 || out->kind == SQLCLASS_END)
		return;
	out->ordered = any_read && all_ordered;
	if (begin_ro) {
		out->kind = SQLCLASS_BEGIN_RO;
		if (out->statements == 1)
			out->rest = len;
		return;
	}
	out->kind = any_txn ? SQLCLASS_TXN : SQLCLASS_READ;
}

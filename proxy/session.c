/*
 * session.c - classify statements, capture and restore session state (see
 * session.h).
 */
#include "proxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/pq_build.h"
#include "protocol/sqllex.h"
#include "protocol/sqlquote.h"

/* Longest keyword or name looked at. */
#define WORD_MAX 64

/* First words that cannot leave anything in the session a later server would need. */
static const char *const plain_words[] = {
	"abort",     "alter",    "analyze", "begin",   "checkpoint", "close",    "cluster",
	"comment",   "commit",   "copy",    "delete",  "drop",       "end",      "execute",
	"explain",   "fetch",    "grant",   "insert",  "lock",       "merge",    "move",
	"notify",    "reassign", "refresh", "reindex", "release",    "revoke",   "rollback",
	"savepoint", "security", "show",    "start",   "table",      "truncate", "update",
	"vacuum",    "values",   "with",
};

static bool is_plain_word(const char *w)
{
	for (size_t i = 0; i < sizeof(plain_words) / sizeof(plain_words[0]); i++)
		if (strcmp(w, plain_words[i]) == 0)
			return true;
	return false;
}

/* A SELECT whose first item calls set_config() or takes an advisory lock. */
static bool select_changes_state(const uint8_t *sql, size_t len, size_t off)
{
	char w[WORD_MAX];
	enum sqllex_tok t = sqllex_token(sql, len, &off, w, sizeof(w));

	if (t == SQLLEX_WORD && strcmp(w, "pg_catalog") == 0) {
		if (sqllex_token(sql, len, &off, w, sizeof(w)) != SQLLEX_OTHER || w[0] != '.')
			return false;
		t = sqllex_token(sql, len, &off, w, sizeof(w));
	}
	if (t != SQLLEX_WORD)
		return false;
	return strcmp(w, "set_config") == 0 || strncmp(w, "pg_advisory", 11) == 0 ||
	       strncmp(w, "pg_try_advisory", 15) == 0;
}

enum session_kind session_classify(const uint8_t *sql, size_t len)
{
	char w[WORD_MAX];
	size_t off = 0;
	enum sqllex_tok t = sqllex_token(sql, len, &off, w, sizeof(w));

	if (t == SQLLEX_END)
		return SK_PLAIN;
	if (t == SQLLEX_OTHER && w[0] == '(') {
		/* "(SELECT ...)": look inside */
		t = sqllex_token(sql, len, &off, w, sizeof(w));
	}
	if (t != SQLLEX_WORD)
		return SK_STATE; /* cannot tell: ask the server afterwards */
	if (strcmp(w, "select") == 0)
		return select_changes_state(sql, len, off) ? SK_STATE : SK_PLAIN;
	if (strcmp(w, "deallocate") == 0)
		return SK_DEALLOCATE;
	if (strcmp(w, "discard") == 0)
		return SK_DISCARD;
	return is_plain_word(w) ? SK_PLAIN : SK_STATE;
}

/* Nothing but blanks, comments and at most one semicolon from off on. */
static bool at_statement_end(const uint8_t *sql, size_t len, size_t off)
{
	char w[WORD_MAX];
	enum sqllex_tok t = sqllex_token(sql, len, &off, w, sizeof(w));

	if (t == SQLLEX_OTHER && w[0] == ';')
		t = sqllex_token(sql, len, &off, w, sizeof(w));
	return t == SQLLEX_END;
}

bool session_parse_deallocate(const uint8_t *sql, size_t len, bool *all, char *name, size_t namelen)
{
	char w[WORD_MAX];
	size_t off = 0;
	enum sqllex_tok t;

	if (sqllex_token(sql, len, &off, w, sizeof(w)) != SQLLEX_WORD ||
	    strcmp(w, "deallocate") != 0)
		return false;
	t = sqllex_token(sql, len, &off, name, namelen);
	if (t == SQLLEX_WORD && strcmp(name, "prepare") == 0) {
		size_t save = off;
		char next[WORD_MAX];

		/* "DEALLOCATE prepare" names a statement called prepare */
		if (sqllex_token(sql, len, &save, next, sizeof(next)) != SQLLEX_END &&
		    !(next[0] == ';' && at_statement_end(sql, len, save)))
			t = sqllex_token(sql, len, &off, name, namelen);
	}
	if (t != SQLLEX_WORD && t != SQLLEX_QUOTED)
		return false;
	*all = t == SQLLEX_WORD && strcmp(name, "all") == 0;
	return at_statement_end(sql, len, off);
}

bool session_is_discard_all(const uint8_t *sql, size_t len)
{
	char w[WORD_MAX];
	size_t off = 0;

	if (sqllex_token(sql, len, &off, w, sizeof(w)) != SQLLEX_WORD || strcmp(w, "discard") != 0)
		return false;
	if (sqllex_token(sql, len, &off, w, sizeof(w)) != SQLLEX_WORD || strcmp(w, "all") != 0)
		return false;
	return at_statement_end(sql, len, off);
}

/* ---- the session ---- */

static uint64_t next_session_id = 1;

const struct session_state session_nothing = {{NULL, NULL, 0, 0, false},
					      {NULL, NULL, 0, 0, true},
					      {NULL, NULL, 0, 0, true}};

static void state_free(struct session_state *st)
{
	if (st == NULL)
		return;
	params_free(&st->settings);
	params_free(&st->listens);
	params_free(&st->sql_stmts);
	free(st);
}

void session_init(struct session *ss)
{
	memset(ss, 0, sizeof(*ss));
	ps_map_init(&ss->stmts);
	ss->id = next_session_id++;
}

void session_free(struct session *ss)
{
	state_free(ss->st);
	ss->st = NULL;
	ps_map_free(&ss->stmts);
	free(ss->blocked);
	free(ss->untracked);
	ss->blocked = ss->untracked = NULL;
}

bool session_has_state(const struct session *ss)
{
	const struct session_state *st = session_st(ss);

	return st->settings.count > 0 || st->listens.count > 0 || st->sql_stmts.count > 0;
}

void session_reset(struct session *ss)
{
	if (session_st(ss)->settings.count > 0)
		ss->gen++;
	state_free(ss->st);
	ss->st = NULL;
}

/* ---- capture ---- */

#define CAPTURE_SETTINGS_SQL                                                                        \
	"SELECT 'S' || name || '=' || setting FROM pg_catalog.pg_settings WHERE source = 'session'" \
	" UNION ALL SELECT 'Srole=' || pg_catalog.current_setting('role')"                          \
	" WHERE pg_catalog.current_setting('role') <> 'none'"

/*
 * Transaction pooling also reports what the transaction left on the server
 * that must not reach its next client: 'L<channel>' per channel it LISTENs
 * on (handed over to the pool's listener, listen_client.h, then dropped),
 * 'X<name>' per SQL-level statement (README: SQL PREPARE lives within a
 * transaction).  See session_cleanup_sql.
 */
const char SESSION_CAPTURE_SETTINGS[] = CAPTURE_SETTINGS_SQL
	" UNION ALL SELECT 'L' || c FROM pg_catalog.pg_listening_channels() AS c"
	" UNION ALL SELECT 'X' || name FROM pg_catalog.pg_prepared_statements WHERE from_sql";

/*
 * B rows: state that cannot move; S: settings; L: channels; P: SQL-level
 * statements as "<length of name>:<name><PREPARE text>"; N: protocol-level
 * statement names.
 */
const char SESSION_CAPTURE_FULL[] =
	"SELECT 'B' || r FROM (VALUES"
	" (CASE WHEN pg_catalog.pg_my_temp_schema() <> 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_class"
	"   WHERE relnamespace = pg_catalog.pg_my_temp_schema()) THEN 'temporary tables' END),"
	" (CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable) THEN 'WITH HOLD cursors' END),"
	" (CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory'"
	"   AND pid = pg_catalog.pg_backend_pid()) THEN 'advisory locks' END),"
	/* this backend's entry only: the pg_stat_activity view reads every backend's (a
	   check per session made moving N idle sessions cost N * N) */
	" (CASE WHEN session_user <> (SELECT r.rolname FROM pg_catalog.pg_stat_get_activity("
	"   pg_catalog.pg_backend_pid()) a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid)"
	"   THEN 'SET SESSION AUTHORIZATION' END)"
	") AS t(r) WHERE r IS NOT NULL"
	" UNION ALL " CAPTURE_SETTINGS_SQL
	" UNION ALL SELECT 'L' || c FROM pg_catalog.pg_listening_channels() AS c"
	" UNION ALL SELECT 'P' || pg_catalog.length(name) || ':' || name || statement"
	" FROM pg_catalog.pg_prepared_statements WHERE from_sql"
	" UNION ALL SELECT 'N' || name FROM pg_catalog.pg_prepared_statements WHERE NOT from_sql";

/* Append "what" to a ", "-separated reason list. */
static void add_reason(struct pq_buf *why, const char *what, size_t n)
{
	if (why->len > 0)
		pq_put_bytes(why, ", ", 2);
	pq_put_bytes(why, what, n);
}

/* A PREPARE text that is one statement (so running it again runs nothing else). */
static bool single_prepare(const char *text)
{
	const uint8_t *t = (const uint8_t *)text;
	size_t len = strlen(text), off = 0;
	char w[WORD_MAX];

	if (sqllex_token(t, len, &off, w, sizeof(w)) != SQLLEX_WORD || strcmp(w, "prepare") != 0)
		return false;
	/* conservative: a semicolon anywhere but at the very end is refused */
	for (const char *p = strchr(text, ';'); p; p = strchr(p + 1, ';'))
		if (!at_statement_end(t, len, (size_t)(p - text)))
			return false;
	return true;
}

/* Drop an entry the server no longer has (ps_map_each callback). */
struct reconcile {
	struct ps_map *m;
	struct params *names; /* the names the server has */
	char **gone;          /* names to drop, collected (the map cannot change while walked) */
	size_t ngone, cap;
	bool oom;
};

static void reconcile_entry(struct ps_entry *e, void *arg)
{
	struct reconcile *r = arg;
	char key[64];

	/* the server shows the first 63 bytes of a name (see prepared.c) */
	snprintf(key, sizeof(key), "%.63s", e->name);
	if (!ps_map_present(r->m, e) || params_get(r->names, key))
		return;
	if (r->ngone == r->cap) {
		size_t n = r->cap ? r->cap * 2 : 8;
		char **g = realloc(r->gone, n * sizeof(*g));

		if (g == NULL) {
			r->oom = true;
			return;
		}
		r->gone = g;
		r->cap = n;
	}
	r->gone[r->ngone] = strdup(e->name);
	if (r->gone[r->ngone] == NULL)
		r->oom = true;
	else
		r->ngone++;
}

static bool names_add(struct params *names, const char *name)
{
	return params_set(names, name, "");
}

bool session_apply_capture(struct session *ss, const char *rows, bool full)
{
	struct params settings, listens, sql_stmts, names;
	struct pq_buf why;
	bool ok = true, changed;
	const char *p = rows;

	params_init(&settings);
	params_init_exact(&listens);
	params_init_exact(&sql_stmts);
	params_init_exact(&names);
	pq_buf_init(&why);
	while (*p && ok) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *row = strndup(p, n);

		if (row == NULL) {
			ok = false;
			break;
		}
		switch (row[0]) {
		case 'B':
			add_reason(&why, row + 1, n - 1);
			break;
		case 'S': {
			char *eq = strchr(row + 1, '=');

			if (eq) {
				*eq = '\0';
				ok = params_set(&settings, row + 1, eq + 1);
			}
			break;
		}
		case 'L':
			ok = params_set(&listens, row + 1, "");
			break;
		case 'P': {
			char *colon = strchr(row + 1, ':');
			long nlen = colon ? strtol(row + 1, NULL, 10) : -1;

			if (colon == NULL || nlen < 0 || (size_t)nlen > strlen(colon + 1)) {
				add_reason(&why,
					   "an SQL prepared statement pgcutover could not read", 51);
				break;
			}
			{
				char *name = strndup(colon + 1, (size_t)nlen);
				const char *text = colon + 1 + nlen;

				if (name == NULL) {
					ok = false;
				} else if (!single_prepare(text)) {
					add_reason(&why,
						   "an SQL prepared statement created in a multi-statement query",
						   60);
				} else {
					ok = params_set(&sql_stmts, name, text);
				}
				free(name);
			}
			break;
		}
		case 'N':
			ok = names_add(&names, row + 1);
			break;
		default:
			break;
		}
		free(row);
		p += n;
		if (*p == '\n')
			p++;
	}
	if (ok && full) {
		struct reconcile r = {&ss->stmts, &names, NULL, 0, 0, false};

		/* the server forgot some of ours (DEALLOCATE, DISCARD ALL): so do we */
		ps_map_each(&ss->stmts, reconcile_entry, &r);
		for (size_t i = 0; i < r.ngone; i++) {
			ps_map_remove(&ss->stmts, r.gone[i]);
			free(r.gone[i]);
		}
		free(r.gone);
		ok = !r.oom;
		/* and the server has some pgcutover never saw prepared */
		for (size_t i = 0; ok && i < names.count; i++) {
			if (ps_map_find(&ss->stmts, names.names[i]) == NULL) {
				add_reason(&why, "prepared statements pgcutover did not track", 43);
				break;
			}
		}
	}
	ok = ok && !why.failed;
	if (ok) {
		const struct session_state *old_st = session_st(ss);
		struct session_state *st = ss->st;

		changed = settings.count != old_st->settings.count;
		for (size_t i = 0; !changed && i < settings.count; i++) {
			const char *old = params_get(&old_st->settings, settings.names[i]);

			changed = old == NULL || strcmp(old, settings.values[i]) != 0;
		}
		if (changed)
			ss->gen++;
		if (!full) {
			/* a settings-only capture keeps what the last full one found */
			params_free(&listens);
			params_free(&sql_stmts);
			listens = st ? st->listens : session_nothing.listens;
			sql_stmts = st ? st->sql_stmts : session_nothing.sql_stmts;
			if (st) {
				params_init_exact(&st->listens);
				params_init_exact(&st->sql_stmts);
			}
		}
		if (st == NULL && (settings.count || listens.count || sql_stmts.count)) {
			st = calloc(1, sizeof(*st));
			if (st == NULL) {
				params_free(&settings);
				params_free(&listens);
				params_free(&sql_stmts);
				params_free(&names);
				pq_buf_free(&why);
				return false;
			}
			ss->st = st;
		}
		if (st) {
			params_free(&st->settings);
			params_free(&st->listens);
			params_free(&st->sql_stmts);
			st->settings = settings;
			st->listens = listens;
			st->sql_stmts = sql_stmts;
			if (settings.count == 0 && listens.count == 0 && sql_stmts.count == 0) {
				state_free(st);
				ss->st = NULL;
			}
		}
		if (full) {
			free(ss->blocked);
			ss->blocked = NULL;
			if (why.len > 0) {
				pq_put_u8(&why, 0);
				ss->blocked = why.failed ? NULL : strdup((const char *)why.data);
				ok = ss->blocked != NULL;
			}
		}
		ss->dirty = false;
	} else {
		params_free(&settings);
		params_free(&listens);
		params_free(&sql_stmts);
	}
	params_free(&names);
	pq_buf_free(&why);
	return ok;
}

/* ---- restore ---- */

char *session_cleanup_sql(const char *rows, bool *oom)
{
	struct pq_buf b;
	bool unlisten = false;
	char *out;

	*oom = false;
	pq_buf_init(&b);
	for (const char *p = rows; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (p[0] == 'L') {
			unlisten = true;
		} else if (n > 1 && p[0] == 'X') {
			char *name = strndup(p + 1, n - 1);

			if (name == NULL) {
				pq_buf_free(&b);
				*oom = true;
				return NULL;
			}
			pq_put_bytes(&b, "DEALLOCATE ", 11);
			sqlquote_put_ident(&b, name);
			pq_put_bytes(&b, "; ", 2);
			free(name);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	if (unlisten)
		pq_put_bytes(&b, "UNLISTEN *; ", 12);
	if (b.len == 0 && !b.failed) {
		pq_buf_free(&b);
		return NULL;
	}
	pq_put_u8(&b, 0);
	out = b.failed ? NULL : strdup((const char *)b.data);
	pq_buf_free(&b);
	if (out == NULL)
		*oom = true;
	return out;
}

void session_put_settings(struct pq_buf *b, const struct session_state *st)
{
	for (size_t i = 0; i < st->settings.count; i++) {
		pq_put_bytes(b, i == 0 ? "SELECT " : ", ", i == 0 ? 7 : 2);
		pq_put_bytes(b, "pg_catalog.set_config(", 22);
		sqlquote_put_literal(b, st->settings.names[i]);
		pq_put_bytes(b, ", ", 2);
		sqlquote_put_literal(b, st->settings.values[i]);
		pq_put_bytes(b, ", false)", 8);
	}
	if (st->settings.count > 0)
		pq_put_bytes(b, "; ", 2);
}

char *session_restore_sql(const struct session *ss, bool reset, bool *oom)
{
	struct pq_buf b;
	char *out;

	const struct session_state *st = session_st(ss);

	*oom = false;
	if (!reset && !session_has_state(ss))
		return NULL;
	pq_buf_init(&b);
	if (reset)
		pq_put_bytes(&b, "RESET ALL; RESET ROLE; ", 23);
	session_put_settings(&b, st);
	for (size_t i = 0; i < st->listens.count; i++) {
		pq_put_bytes(&b, "LISTEN ", 7);
		sqlquote_put_ident(&b, st->listens.names[i]);
		pq_put_bytes(&b, "; ", 2);
	}
	for (size_t i = 0; i < st->sql_stmts.count; i++) {
		const char *text = st->sql_stmts.values[i];
		size_t n = strlen(text);

		/* strip a trailing semicolon: statements are joined with our own */
		while (n > 0 && (text[n - 1] == ';' || text[n - 1] == ' ' || text[n - 1] == '\n' ||
				 text[n - 1] == '\t' || text[n - 1] == '\r'))
			n--;
		pq_put_bytes(&b, text, n);
		pq_put_bytes(&b, "; ", 2);
	}
	pq_put_u8(&b, 0);
	if (b.failed) {
		pq_buf_free(&b);
		*oom = true;
		return NULL;
	}
	out = strdup((const char *)b.data);
	pq_buf_free(&b);
	if (out == NULL)
		*oom = true;
	return out;
}

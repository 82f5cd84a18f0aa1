/*
 * config_read.c - the reader of the configuration file: inih's callbacks,
 * lines, section headers, and the list of errors every part of the loader
 * appends to.
 *
 * inih splits "name = value" lines and strips inline comments; everything
 * else is ours.  We feed inih through ini_parse_stream() with our own reader
 * (ld_reader) that sees every physical line first, because Debian's libinih
 * gives the handler no line numbers, silently truncates lines longer than
 * 200 bytes and section names longer than 50, and treats an indented line
 * as the continuation of the previous value.  The reader therefore:
 *
 *   - counts lines, so every message names its line;
 *   - parses section headers itself ([pgcutover], [database "name"]) and
 *     hands inih a blank line instead, so long database names survive;
 *   - removes leading whitespace, so indentation never means continuation;
 *   - removes a byte order mark from line 1 and refuses a second one, which
 *     inih would remove too and then read the line differently from us;
 *   - reports lines inih would reject (no '=') itself, so that every such
 *     line is reported rather than only the first;
 *   - for a line too long for inih's buffer, splits it with the same rules
 *     (split_line) and hands inih just "name=", the handler taking the value
 *     from the loader.
 *
 * inih calls the handler for a line before it asks the reader for the next
 * one, so the loader's current line and section are those of the handler's
 * name and value.  The handler looks the name up in the key table and
 * stores the value through config_set_value() (config_keys.c).
 */
#include "proxy/core/config_int.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ---------------------------------------------------------------------- */
/* Errors                                                                 */
/* ---------------------------------------------------------------------- */

static void ld_verror(struct config_loader *ld, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static bool errors_vadd(struct config_errors *errs, const char *path, int line, const char *fmt,
			va_list ap) __attribute__((format(printf, 4, 0)));

static bool errors_vadd(struct config_errors *errs, const char *path, int line, const char *fmt,
			va_list ap)
{
	struct config_error *items;
	char *msg = NULL, *full = NULL;
	int rc;

	if (vasprintf(&msg, fmt, ap) < 0)
		return false;
	if (line > 0)
		rc = asprintf(&full, "%s:%d: %s", path, line, msg);
	else
		rc = asprintf(&full, "%s: %s", path, msg);
	free(msg);
	if (rc < 0)
		return false;
	items = realloc(errs->items, (errs->count + 1) * sizeof(*items));
	if (items == NULL) {
		free(full);
		return false;
	}
	errs->items = items;
	items[errs->count].line = line;
	items[errs->count].message = full;
	errs->count++;
	return true;
}

bool config_errors_add(struct config_errors *errs, const char *path, int line, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = errors_vadd(errs, path, line, fmt, ap);
	va_end(ap);
	return ok;
}

static void ld_verror(struct config_loader *ld, int line, const char *fmt, va_list ap)
{
	if (!errors_vadd(ld->errs, ld->path, line, fmt, ap))
		ld->oom = true;
}

void config_ld_error(struct config_loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_verror(ld, line, fmt, ap);
	va_end(ap);
}

char *config_ld_strdup(struct config_loader *ld, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		ld->oom = true;
	return p;
}

static char *ld_strndup(struct config_loader *ld, const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		ld->oom = true;
	return p;
}

void config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->count; i++)
		free(errs->items[i].message);
	free(errs->items);
	errs->items = NULL;
	errs->count = 0;
}

/*
 * Puts the errors of this load in line order (stable; those tied to no line
 * last), since the checks after parsing add theirs at the end.
 */
void config_errors_sort(struct config_errors *errs, size_t from)
{
	for (size_t i = from + 1; i < errs->count; i++) {
		struct config_error e = errs->items[i];
		unsigned key = (unsigned)e.line - 1; /* line 0 wraps to the end */
		size_t j = i;

		while (j > from && (unsigned)errs->items[j - 1].line - 1 > key) {
			errs->items[j] = errs->items[j - 1];
			j--;
		}
		errs->items[j] = e;
	}
}

/* ---------------------------------------------------------------------- */
/* Lines                                                                  */
/* ---------------------------------------------------------------------- */

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
}

/*
 * inih's find_chars_or_comment(): the first character of 'chars' in s, or
 * the start of an inline comment (a ';' that follows whitespace), or the end.
 */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && (chars == NULL || strchr(chars, *s) == NULL) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * Splits the key line s (no leading blank) exactly as inih does: the name
 * ends at the first '=' or ':', the value loses its inline comment and its
 * surrounding blanks.  Sets [*name, *name_len) and [*value, *value_len);
 * false when there is no separator.
 */
static bool split_line(const char *s, const char **name, size_t *name_len, const char **value,
		       size_t *value_len)
{
	const char *sep = find_chars_or_comment(s, "=:");
	const char *v, *end;
	size_t n = (size_t)(sep - s);

	if (*sep != '=' && *sep != ':')
		return false;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	end = find_chars_or_comment(sep + 1, NULL);
	v = sep + 1;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	*name = s;
	*name_len = n;
	*value = v;
	*value_len = (size_t)(end - v);
	return true;
}

/* Empty, or only a comment: what may follow a section header. */
static bool only_comment(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0' || *s == ';' || *s == '#';
}

/*
 * Reads the double-quoted string at s (s[0] == '"'), where "" stands for one
 * quote, into a new string.  Sets *end past the closing quote.  NULL with
 * *end = NULL when it is not terminated; NULL with *end set when out of memory.
 */
static char *read_quoted(const char *s, const char **end)
{
	size_t len = strlen(s);
	char *out = malloc(len + 1), *o = out;

	*end = NULL;
	for (s++; *s; s++) {
		if (*s == '"') {
			if (s[1] != '"') {
				*end = s + 1;
				break;
			}
			s++;
		}
		if (out)
			*o++ = *s;
	}
	if (*end == NULL) {
		free(out);
		return NULL;
	}
	if (out)
		*o = '\0';
	return out;
}

/* A name clients can put in dbname and that is safe in state_dir/NAME.route. */
static bool check_db_name(struct config_loader *ld, const char *name)
{
	if (name[0] == '\0') {
		config_ld_error(ld, ld->lineno, "database name must not be empty");
		return false;
	}
	if (strlen(name) > CONFIG_NAME_MAX) {
		config_ld_error(ld, ld->lineno,
				"database name \"%s\" is too long (at most %d bytes)", name,
				CONFIG_NAME_MAX);
		return false;
	}
	for (const char *p = name; *p; p++) {
		if (*p == '/' || iscntrl((unsigned char)*p)) {
			config_ld_error(ld, ld->lineno,
					"database name \"%s\" must not contain \"/\" or control characters",
					name);
			return false;
		}
	}
	return true;
}

/* Appends a [database] section; false when out of memory. */
static bool add_db(struct config_loader *ld, char *name)
{
	struct config *cfg = ld->cfg;
	struct db_config *db;

	if (cfg->ndbs == ld->dbcap) {
		size_t cap = ld->dbcap ? ld->dbcap * 2 : 4;
		struct db_config *dbs = realloc(cfg->dbs, cap * sizeof(*dbs));
		struct config_db_state *st;

		if (dbs == NULL)
			return false;
		cfg->dbs = dbs;
		st = realloc(ld->dbst, cap * sizeof(*st));
		if (st == NULL)
			return false;
		ld->dbst = st;
		ld->dbcap = cap;
	}
	db = &cfg->dbs[cfg->ndbs];
	memset(db, 0, sizeof(*db));
	memset(&ld->dbst[cfg->ndbs], 0, sizeof(ld->dbst[0]));
	db->name = name;
	db->line = ld->lineno;
	ld->cur_db = cfg->ndbs++;
	return true;
}

/* [database "name"]: 'rest' is what follows the word database. */
static void begin_db_section(struct config_loader *ld, const char *rest)
{
	const char *end;
	char *name;

	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest != '"') {
		config_ld_error(ld, ld->lineno,
				"database section name must be quoted, as in [database \"name\"]");
		return;
	}
	name = read_quoted(rest, &end);
	if (name == NULL) {
		if (end)
			ld->oom = true;
		else
			config_ld_error(ld, ld->lineno,
					"unterminated quoted database name in section header");
		return;
	}
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0') {
		config_ld_error(ld, ld->lineno,
				"unexpected text after the database name in section header");
		free(name);
		return;
	}
	if (!check_db_name(ld, name)) {
		free(name);
		return;
	}
	for (size_t i = 0; i < ld->cfg->ndbs; i++) {
		if (strcmp(ld->cfg->dbs[i].name, name) == 0) {
			config_ld_error(ld, ld->lineno,
					"duplicate database \"%s\" (first defined at line %d)",
					name, ld->cfg->dbs[i].line);
			free(name);
			return;
		}
	}
	if (!add_db(ld, name)) {
		free(name);
		ld->oom = true;
		return;
	}
	ld->sec = SEC_DB;
}

/*
 * A line starting with '['.  Sets ld->sec; after any problem the section's
 * keys are ignored (SEC_IGNORE), so that one bad header gives one error.
 */
static void begin_section(struct config_loader *ld, char *line)
{
	char *p, *close = NULL;
	bool quoted = false;

	ld->sec = SEC_IGNORE;
	/* The first ']' outside quotes closes the header. */
	for (p = line + 1; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ']' && !quoted) {
			close = p;
			break;
		}
	}
	if (close == NULL) {
		config_ld_error(ld, ld->lineno, "syntax error in section header: missing \"]\"");
		return;
	}
	if (!only_comment(close + 1)) {
		config_ld_error(ld, ld->lineno, "unexpected text after section header");
		return;
	}
	*close = '\0';
	p = lskip(line + 1);
	rstrip(p);

	if (strcasecmp(p, "pgcutover") == 0) {
		if (ld->main_line) {
			config_ld_error(ld, ld->lineno,
					"duplicate section [pgcutover] (first at line %d)",
					ld->main_line);
			return;
		}
		ld->main_line = ld->lineno;
		ld->sec = SEC_MAIN;
	} else if (strncasecmp(p, "database", 8) == 0 &&
		   (p[8] == '"' || isspace((unsigned char)p[8]))) {
		begin_db_section(ld, p + 8);
	} else {
		config_ld_error(ld, ld->lineno,
				"unrecognized section [%s]: expected [pgcutover] or [database \"name\"]",
				p);
	}
}

/* A UTF-8 byte order mark at s; strncmp stops at the end of a shorter line. */
static bool starts_with_bom(const char *s)
{
	return strncmp(s, "\xEF\xBB\xBF", 3) == 0;
}

/*
 * inih's reader: hands it the next line, prepared as the comment at the top
 * of this file says.  'num' is the size of inih's line buffer.
 */
static char *ld_reader(char *str, int num, void *stream)
{
	struct config_loader *ld = stream;
	const char *name, *value;
	size_t name_len, value_len, len;
	ssize_t n;
	char *s;

	if (num < 3)
		return NULL;
	free(ld->long_value);
	ld->long_value = NULL;

	errno = 0;
	n = getline(&ld->buf, &ld->bufcap, ld->fp);
	if (n < 0) {
		if (ferror(ld->fp))
			ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	strcpy(str, "\n");

	if (memchr(ld->buf, '\0', (size_t)n) != NULL) {
		config_ld_error(ld, ld->lineno, "line contains a NUL byte");
		return str;
	}
	s = ld->buf;
	if (ld->lineno == 1 && starts_with_bom(s))
		s += 3; /* UTF-8 byte order mark */
	s = lskip(s);
	rstrip(s);
	/*
	 * inih strips a byte order mark from the start of line 1 as well.  Had
	 * we handed it one more (a second mark, or one after blanks), it would
	 * strip that one and then see the line differently from us: "[x]" or
	 * "; x = y" after it is a key line to us, a section or a comment that
	 * inih skips without a word.  So such a line is an error of its own.
	 */
	if (ld->lineno == 1 && starts_with_bom(s)) {
		config_ld_error(ld, ld->lineno, "syntax error: unexpected byte order mark");
		return str;
	}

	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		begin_section(ld, s);
		return str;
	}
	if (!split_line(s, &name, &name_len, &value, &value_len)) {
		config_ld_error(ld, ld->lineno, "syntax error: expected \"name = value\"");
		return str;
	}
	if (name_len == 0) {
		config_ld_error(ld, ld->lineno, "syntax error: missing parameter name before \"=\"");
		return str;
	}
	len = strlen(s);
	if (len + 2 <= (size_t)num) {
		memcpy(str, s, len);
		strcpy(str + len, "\n");
	} else if (name_len + 3 <= (size_t)num) {
		ld->long_value = ld_strndup(ld, value, value_len);
		ld->long_line = ld->lineno;
		memcpy(str, name, name_len);
		strcpy(str + name_len, "=\n");
	} else {
		config_ld_error(ld, ld->lineno, "parameter name is too long");
	}
	return str;
}

/* ---------------------------------------------------------------------- */
/* Keys                                                                   */
/* ---------------------------------------------------------------------- */

/* inih's handler: one "name = value" of the current line. */
static int ld_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_loader *ld = user;
	const struct config_key *k;
	int *key_line;
	char *base;
	size_t idx, off;

	(void)section; /* the reader tracks sections: see begin_section() */
	if (ld->long_value != NULL && ld->long_line == ld->lineno)
		value = ld->long_value;
	if (value == NULL)
		value = "";

	switch (ld->sec) {
	case SEC_IGNORE:
		return 1;
	case SEC_NONE:
		config_ld_error(ld, ld->lineno,
				"parameter \"%s\" appears before any section header: put it in [pgcutover]",
				name);
		return 1;
	case SEC_MAIN:
	case SEC_DB:
		break;
	}

	k = config_find_key(name, &idx);
	if (k == NULL) {
		config_ld_error(ld, ld->lineno, "unrecognized configuration parameter \"%s\"", name);
		return 1;
	}
	if (ld->sec == SEC_MAIN) {
		if (!(k->scope & SCOPE_MAIN)) {
			config_ld_error(ld, ld->lineno,
					"parameter \"%s\" can only be set in a [database \"name\"] section",
					k->name);
			return 1;
		}
		key_line = ld->main_key_line;
		base = (char *)ld->cfg;
		off = k->main_off;
	} else {
		if (!(k->scope & SCOPE_DB)) {
			config_ld_error(ld, ld->lineno,
					"parameter \"%s\" cannot be set in a [database \"name\"] section%s",
					k->name,
					strcmp(k->name, "default_pool_size") == 0 ? ": use pool_size"
										  : "");
			return 1;
		}
		key_line = ld->dbst[ld->cur_db].key_line;
		base = (char *)&ld->cfg->dbs[ld->cur_db];
		off = k->db_off;
	}
	if (key_line[idx]) {
		config_ld_error(ld, ld->lineno,
				"parameter \"%s\" is set more than once in this section "
				"(first at line %d)",
				k->name, abs(key_line[idx]));
		return 1;
	}
	key_line[idx] = config_set_value(ld, k, value, base + off) ? ld->lineno : -ld->lineno;
	return 1;
}

void config_read(struct config_loader *ld)
{
	int rc = ini_parse_stream(ld_reader, ld, ld_handler, ld);

	if (ld->read_errno)
		config_ld_error(ld, 0, "could not read configuration file: %s",
				strerror(ld->read_errno));
	else if (rc > 0) /* a line inih rejected although the reader let it through */
		config_ld_error(ld, rc, "syntax error");
	else if (rc < 0)
		ld->oom = true;
	free(ld->buf);
	ld->buf = NULL;
	free(ld->long_value);
	ld->long_value = NULL;
}

/*
 * test_reference.c - docs/reference.md held to the code, so that neither can
 * drift from the other (the page says so to its readers):
 *
 *   - every key of the configuration parser's table (config_keys[] in
 *     proxy/core/config_keys.c) has exactly one row in the page's key
 *     tables, the tables whose header is "| key | where | default | ...";
 *   - every key those tables document is one the parser knows, spelt as
 *     the parser spells it;
 *   - a row's "where" cell names the sections the key may be set in
 *     ([pgcutover], [database]), and its "default" cell shows, in backquotes,
 *     the value SHOW CONFIG shows for a file that sets nothing (the word
 *     "empty" for an empty one; paths, which SHOW CONFIG shows resolved, are
 *     only held to "empty");
 *   - every command SHOW HELP lists (admin_cmd_help[]) has a heading of its
 *     own in the page's admin console section ("#### `SHOW LAG [db]`"), and
 *     every such heading is a command SHOW HELP lists.
 *
 * Every problem is printed before the test fails, each with its line in the
 * page.  The columns of each command's result set are held to the page by
 * tests/integration/test_reference.py, which needs a running pgcutover.
 */
#include "unit.h"

#include "admin/admin_cmd.h"
#include "proxy/core/config.h"
#include "proxy/core/config_int.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* The repository the unit runner was built from (Makefile); "." when unknown. */
#ifndef PGCUTOVER_SRCDIR
#define PGCUTOVER_SRCDIR "."
#endif

#define REF_PATH "docs/reference.md"

/* Cells of a table row we look at: key, where, default (the rest is prose). */
#define REF_CELLS 4

/* One row of a key table. */
struct ref_key_row {
	char *cells[REF_CELLS]; /* trimmed, malloc'd; NULL past the row's last cell */
	int line;               /* in the page, for messages */
};

/* A heading of the admin console section that is one code span: a command. */
struct ref_heading {
	char *command; /* the text between the backquotes, malloc'd */
	int line;
};

/* What the test read from the page. */
struct ref_doc {
	char *text; /* the whole file, its lines NUL-terminated in place */
	struct ref_key_row *rows;
	size_t nrows;
	struct ref_heading *headings;
	size_t nheadings;
	int problems; /* printed so far */
};

static void ref_problem(struct ref_doc *doc, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prints one problem, "docs/reference.md:LINE: ...", and counts it. */
static void ref_problem(struct ref_doc *doc, int line, const char *fmt, ...)
{
	va_list ap;

	if (line > 0)
		fprintf(stderr, "  %s:%d: ", REF_PATH, line);
	else
		fprintf(stderr, "  %s: ", REF_PATH);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	doc->problems++;
}

/* The page from the source tree, or from the current directory; NULL when neither. */
static char *ref_read(void)
{
	const char *paths[] = {PGCUTOVER_SRCDIR "/" REF_PATH, REF_PATH};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		FILE *f = fopen(paths[i], "r");
		char *text;
		long len;

		if (f == NULL)
			continue;
		if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
		    fseek(f, 0, SEEK_SET) != 0 || (text = malloc((size_t)len + 1)) == NULL) {
			fclose(f);
			return NULL;
		}
		if (fread(text, 1, (size_t)len, f) != (size_t)len) {
			free(text);
			fclose(f);
			return NULL;
		}
		text[len] = '\0';
		fclose(f);
		return text;
	}
	return NULL;
}

/* A copy of [s, s + len) without the blanks around it. */
static char *ref_trimmed(const char *s, size_t len)
{
	char *out;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	out = malloc(len + 1);
	if (out) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

/*
 * Splits the table row 'line' ("| a | b | c |") into its first REF_CELLS
 * cells; a "\|" stays inside its cell.  Returns how many cells were stored.
 */
static size_t ref_split_row(const char *line, char **cells)
{
	const char *p = line + 1; /* past the leading '|' */
	size_t n = 0;

	for (size_t i = 0; i < REF_CELLS; i++)
		cells[i] = NULL;
	while (*p && n < REF_CELLS) {
		const char *end = p;

		while (*end && !(*end == '|' && end[-1] != '\\'))
			end++;
		if (*end == '\0')
			break; /* text after the last '|' is not a cell */
		cells[n++] = ref_trimmed(p, (size_t)(end - p));
		p = end + 1;
	}
	return n;
}

static void ref_free_cells(char **cells)
{
	for (size_t i = 0; i < REF_CELLS; i++) {
		free(cells[i]);
		cells[i] = NULL;
	}
}

/* "|---|---|": the line under a table's header. */
static bool ref_is_separator(const char *line)
{
	return strspn(line, "|-: \t") == strlen(line);
}

/* The text of "`text`" (the whole string one code span) as a new string, else NULL. */
static char *ref_code_span(const char *s)
{
	size_t len = strlen(s);

	if (len < 3 || s[0] != '`' || s[len - 1] != '`' || memchr(s + 1, '`', len - 2) != NULL)
		return NULL;
	return ref_trimmed(s + 1, len - 2);
}

static bool ref_add_row(struct ref_doc *doc, char **cells, int line)
{
	struct ref_key_row *rows = realloc(doc->rows, (doc->nrows + 1) * sizeof(*rows));

	if (rows == NULL)
		return false;
	doc->rows = rows;
	memcpy(rows[doc->nrows].cells, cells, sizeof(rows[0].cells));
	rows[doc->nrows].line = line;
	doc->nrows++;
	return true;
}

static bool ref_add_heading(struct ref_doc *doc, char *command, int line)
{
	struct ref_heading *h = realloc(doc->headings, (doc->nheadings + 1) * sizeof(*h));

	if (h == NULL)
		return false;
	doc->headings = h;
	h[doc->nheadings].command = command;
	h[doc->nheadings].line = line;
	doc->nheadings++;
	return true;
}

/*
 * Reads the page: the rows of its key tables and the command headings of its
 * admin console section (the "## " heading that names "Admin console", up
 * to the next "## ").  False when the page cannot be read.
 */
static bool ref_load(struct ref_doc *doc)
{
	char *line, *next;
	bool in_table = false, key_table = false, in_admin = false;
	int lineno = 0;

	memset(doc, 0, sizeof(*doc));
	doc->text = ref_read();
	if (doc->text == NULL)
		return false;
	for (line = doc->text; line && *line; line = next) {
		char *cells[REF_CELLS];
		size_t n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (line[0] != '|') {
			in_table = false;
		} else if (!in_table) {
			/* a table's header */
			in_table = true;
			n = ref_split_row(line, cells);
			key_table = n >= 1 && cells[0] && strcmp(cells[0], "key") == 0;
			if (key_table && (n < 3 || strcmp(cells[1], "where") != 0 ||
					  strcmp(cells[2], "default") != 0))
				ref_problem(doc, lineno,
					    "a key table's columns are: key | where | default | meaning");
			ref_free_cells(cells);
			continue;
		} else if (key_table && !ref_is_separator(line)) {
			n = ref_split_row(line, cells);
			if (n < 3) {
				ref_problem(doc, lineno,
					    "a key table row needs key, where and default");
				ref_free_cells(cells);
			} else if (!ref_add_row(doc, cells, lineno)) {
				ref_free_cells(cells);
				return false;
			}
			continue;
		}
		if (strncmp(line, "## ", 3) == 0)
			in_admin = strstr(line, "Admin console") != NULL;
		if (in_admin && line[0] == '#') {
			const char *t = line + strspn(line, "#");
			char *command;

			if (*t == ' ' && (command = ref_code_span(t + 1)) != NULL &&
			    !ref_add_heading(doc, command, lineno)) {
				free(command);
				return false;
			}
		}
	}
	return true;
}

static void ref_free(struct ref_doc *doc)
{
	for (size_t i = 0; i < doc->nrows; i++)
		ref_free_cells(doc->rows[i].cells);
	for (size_t i = 0; i < doc->nheadings; i++)
		free(doc->headings[i].command);
	free(doc->rows);
	free(doc->headings);
	free(doc->text);
}

/* ---------------------------------------------------------------------- */
/* Keys                                                                   */
/* ---------------------------------------------------------------------- */

/* What SHOW CONFIG shows for a file that sets nothing in [pgcutover]. */
struct ref_dump {
	char *keys[CONFIG_NKEYS];
	char *values[CONFIG_NKEYS];
	size_t n;
};

static void ref_dump_emit(void *arg, const char *key, const char *value)
{
	struct ref_dump *d = arg;

	if (d->n < CONFIG_NKEYS) {
		d->keys[d->n] = strdup(key);
		d->values[d->n] = strdup(value);
		d->n++;
	}
}

static const char *ref_dump_value(const struct ref_dump *d, const char *key)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->keys[i] && strcmp(d->keys[i], key) == 0)
			return d->values[i];
	}
	return NULL;
}

static void ref_dump_free(struct ref_dump *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->keys[i]);
		free(d->values[i]);
	}
	d->n = 0;
}

/* Loads the smallest valid file (one database, nothing else) and dumps it; false on failure. */
static bool ref_default_dump(struct ref_dump *d)
{
	char dir[] = "/tmp/pgcutover-ref-XXXXXX", path[64];
	struct config_errors errs = {NULL, 0};
	struct config *cfg = NULL;
	FILE *f;

	memset(d, 0, sizeof(*d));
	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(path, sizeof(path), "%s/pgcutover.ini", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("[database \"db\"]\nsource = host=s\ntarget = host=t\nlag_method = none\n", f);
		fclose(f);
		cfg = config_load(path, &errs);
	}
	for (size_t i = 0; i < errs.count; i++)
		fprintf(stderr, "    %s\n", errs.items[i].message);
	config_errors_free(&errs);
	if (cfg)
		config_dump(cfg, ref_dump_emit, d);
	config_free(cfg);
	unlink(path);
	rmdir(dir);
	return cfg != NULL;
}

/* The row's "where" and "default" cells against key k. */
static void ref_check_row(struct ref_doc *doc, const struct ref_key_row *r,
			  const struct config_key *k, const struct ref_dump *dump)
{
	const char *where = r->cells[1], *deflt = r->cells[2];
	bool main_doc = strstr(where, "[pgcutover]") != NULL;
	bool db_doc = strstr(where, "[database") != NULL;
	const char *value;

	if (main_doc != ((k->scope & SCOPE_MAIN) != 0) || db_doc != ((k->scope & SCOPE_DB) != 0))
		ref_problem(doc, r->line, "\"%s\" may be set in %s, but the page says \"%s\"",
			    k->name,
			    k->scope == SCOPE_BOTH   ? "[pgcutover] and [database]"
			    : k->scope == SCOPE_MAIN ? "[pgcutover] only"
						     : "[database] only",
			    where);
	value = ref_dump_value(dump, k->name);
	if (value == NULL)
		return; /* not a [pgcutover] key: no default to hold it to */
	if (value[0] == '\0') {
		if (strstr(deflt, "empty") == NULL)
			ref_problem(doc, r->line,
				    "the default of \"%s\" is empty, but the page says \"%s\"",
				    k->name, deflt);
	} else if (k->type != KT_PATH) {
		char want[300];

		snprintf(want, sizeof(want), "`%s`", value);
		if (strstr(deflt, want) == NULL)
			ref_problem(doc, r->line,
				    "the default of \"%s\" is %s (as SHOW CONFIG shows it), but the "
				    "page says \"%s\"",
				    k->name, want, deflt);
	}
}

static void test_reference_documents_every_key(void)
{
	struct ref_doc doc;
	struct ref_dump dump;
	int rows_of[CONFIG_NKEYS] = {0};

	if (!ref_load(&doc)) {
		ref_free(&doc);
		UT_FAIL("could not read %s (from %s or the current directory)", REF_PATH,
			PGCUTOVER_SRCDIR);
	}
	if (!ref_default_dump(&dump)) {
		ref_dump_free(&dump);
		ref_free(&doc);
		UT_FAIL("the smallest configuration did not load");
	}
	for (size_t i = 0; i < doc.nrows; i++) {
		const struct ref_key_row *r = &doc.rows[i];
		char *name = ref_code_span(r->cells[0]);
		const struct config_key *k;
		size_t idx;

		if (name == NULL) {
			ref_problem(&doc, r->line,
				    "a key table row names one key, as `key`: \"%s\"", r->cells[0]);
			continue;
		}
		k = config_find_key(name, &idx);
		if (k == NULL || strcmp(k->name, name) != 0) {
			ref_problem(&doc, r->line,
				    "documents \"%s\", which the configuration parser does not know "
				    "(config_keys[] in proxy/core/config_keys.c)",
				    name);
		} else {
			if (rows_of[idx]++ > 0)
				ref_problem(&doc, r->line, "documents \"%s\" a second time", name);
			ref_check_row(&doc, r, k, &dump);
		}
		free(name);
	}
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (rows_of[i] == 0)
			ref_problem(&doc, 0,
				    "does not document the key \"%s\": add a row to a key table "
				    "(| `%s` | where | default | meaning |)",
				    config_keys[i].name, config_keys[i].name);
	}
	ref_dump_free(&dump);
	ref_free(&doc);
	if (doc.problems > 0)
		UT_FAIL("%s and the key table disagree (%d problems above)", REF_PATH, doc.problems);
}

/* ---------------------------------------------------------------------- */
/* Commands                                                               */
/* ---------------------------------------------------------------------- */

static void test_reference_documents_every_command(void)
{
	struct ref_doc doc;

	if (!ref_load(&doc)) {
		ref_free(&doc);
		UT_FAIL("could not read %s (from %s or the current directory)", REF_PATH,
			PGCUTOVER_SRCDIR);
	}
	for (int k = 0; admin_cmd_help[k][0]; k++) {
		size_t found = 0;

		for (size_t i = 0; i < doc.nheadings; i++)
			found += strcmp(doc.headings[i].command, admin_cmd_help[k][0]) == 0;
		if (found != 1)
			ref_problem(&doc, 0,
				    "SHOW HELP lists \"%s\", which needs exactly one heading "
				    "\"#### `%s`\" in the admin console section (found %zu)",
				    admin_cmd_help[k][0], admin_cmd_help[k][0], found);
	}
	for (size_t i = 0; i < doc.nheadings; i++) {
		bool listed = false;

		for (int k = 0; admin_cmd_help[k][0]; k++)
			listed |= strcmp(doc.headings[i].command, admin_cmd_help[k][0]) == 0;
		if (!listed)
			ref_problem(&doc, doc.headings[i].line,
				    "documents the command \"%s\", which SHOW HELP does not list "
				    "(admin_cmd_help[] in admin/admin_cmd.c)",
				    doc.headings[i].command);
	}
	ref_free(&doc);
	if (doc.problems > 0)
		UT_FAIL("%s and SHOW HELP disagree (%d problems above)", REF_PATH, doc.problems);
}

const struct unit_test unit_tests_reference[] = {
	{"reference_documents_every_key", test_reference_documents_every_key},
	{"reference_documents_every_command", test_reference_documents_every_command},
	{NULL, NULL},
};

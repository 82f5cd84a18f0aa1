/*
 * check_schema.c - schema differences that matter to a switch (see
 * check_schema.h): schema_compare() over two sides' catalog items, and
 * CHECK's schema and indexes rows from it.
 *
 * The comparison sorts both sides with strcmp (the servers' own ORDER BY
 * would follow their collations, which may differ) and walks them together.
 * Tables, primary keys and sequences are matched by their names; columns by
 * table and column name; indexes by their whole definition (name left out),
 * so an index whose columns or method differ counts as missing.
 */
#include "admin/cutover/check_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/check_int.h"
#include "proxy/core/config.h"

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* Whether the item is part of an item's identity for its kind. */
static bool keyed_by_item(char kind)
{
	return kind == 'c' || kind == 'i';
}

static int item_cmp(const struct schema_item *a, const struct schema_item *b)
{
	int c;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if ((c = strcmp(nz(a->schema), nz(b->schema))) != 0)
		return c;
	if ((c = strcmp(nz(a->table), nz(b->table))) != 0)
		return c;
	return keyed_by_item(a->kind) ? strcmp(nz(a->item), nz(b->item)) : 0;
}

static int item_qsort(const void *a, const void *b)
{
	return item_cmp(a, b);
}

/* Whether the new side has table schema.table ('t' items of a sorted array). */
static bool has_table(const struct schema_item *neu, size_t n, const char *schema, const char *table)
{
	struct schema_item key = {'t', schema, table, "", "", ""};

	return bsearch(&key, neu, n, sizeof(*neu), item_qsort) != NULL;
}

/* Both sides have an item of this identity: how do they differ? */
static void compare_same(const struct schema_item *o, const struct schema_item *n,
			 void (*found)(void *, enum schema_finding, const struct schema_item *,
				       const struct schema_item *),
			 void *arg)
{
	switch (o->kind) {
	case 'c':
		if (strcmp(nz(o->detail), nz(n->detail)) != 0)
			found(arg, SF_COLUMN_TYPE, o, n);
		else if (strchr(nz(n->flags), 'n') && !strchr(nz(o->flags), 'n'))
			found(arg, SF_COLUMN_NOT_NULL, o, n);
		break;
	case 'k':
		if (strcmp(nz(o->item), nz(n->item)) != 0)
			found(arg, SF_PK_DIFFERS, o, n);
		break;
	case 's':
		if (strcmp(nz(o->detail), nz(n->detail)) != 0)
			found(arg, SF_SEQUENCE_TYPE, o, n);
		break;
	default:
		break;
	}
}

/* An item only on the old side. */
static void only_old(const struct schema_item *o, const struct schema_item *neu, size_t nnew,
		     void (*found)(void *, enum schema_finding, const struct schema_item *,
				   const struct schema_item *),
		     void *arg)
{
	switch (o->kind) {
	case 't':
		found(arg, SF_TABLE_MISSING, o, NULL);
		break;
	case 's':
		found(arg, SF_SEQUENCE_MISSING, o, NULL);
		break;
	default:
		/* a missing table says it all for its columns, key and indexes */
		if (!has_table(neu, nnew, o->schema, o->table))
			break;
		found(arg,
		      o->kind == 'c'   ? SF_COLUMN_MISSING
		      : o->kind == 'k' ? SF_PK_MISSING
				       : SF_INDEX_MISSING,
		      o, NULL);
		break;
	}
}

/* An item only on the new side. */
static void only_new(const struct schema_item *n,
		     void (*found)(void *, enum schema_finding, const struct schema_item *,
				   const struct schema_item *),
		     void *arg, const struct schema_item *old, size_t nold)
{
	if (n->kind == 't')
		found(arg, SF_TABLE_EXTRA, NULL, n);
	else if (n->kind == 'c' && has_table(old, nold, n->schema, n->table))
		found(arg,
		      strchr(nz(n->flags), 'n') && !strchr(nz(n->flags), 'd') ? SF_COLUMN_REQUIRED
									      : SF_COLUMN_EXTRA,
		      NULL, n);
}

void schema_compare(struct schema_item *old, size_t nold, struct schema_item *neu, size_t nnew,
		    void (*found)(void *arg, enum schema_finding f, const struct schema_item *o,
				  const struct schema_item *n),
		    void *arg)
{
	size_t i = 0, k = 0;

	if (nold)
		qsort(old, nold, sizeof(*old), item_qsort);
	if (nnew)
		qsort(neu, nnew, sizeof(*neu), item_qsort);
	while (i < nold || k < nnew) {
		int c = i == nold ? 1 : k == nnew ? -1 : item_cmp(&old[i], &neu[k]);

		if (c == 0) {
			compare_same(&old[i++], &neu[k++], found, arg);
		} else if (c < 0) {
			only_old(&old[i++], neu, nnew, found, arg);
		} else {
			only_new(&neu[k++], found, arg, old, nold);
		}
	}
}

/* ---- CHECK's rows ---- */

/* Bounded lists of what was found, per finding. */
struct schema_report {
	char text[SF_NFINDINGS][400];
	int count[SF_NFINDINGS];
	int tables; /* tables compared */
};

static void add_found(void *arg, enum schema_finding f, const struct schema_item *o,
		      const struct schema_item *n)
{
	struct schema_report *r = arg;
	const struct schema_item *it = o ? o : n;
	char one[300];
	size_t len = strlen(r->text[f]);

	if (r->count[f]++ >= 6) {
		return;
	}
	switch (f) {
	case SF_COLUMN_TYPE:
		snprintf(one, sizeof(one), "%s.%s.%s (%s here, %s there)", it->schema, it->table,
			 it->item, nz(o->detail), nz(n->detail));
		break;
	case SF_PK_DIFFERS:
		snprintf(one, sizeof(one), "%s.%s (%s here, %s there)", it->schema, it->table,
			 nz(o->item), nz(n->item));
		break;
	case SF_COLUMN_MISSING:
	case SF_COLUMN_REQUIRED:
	case SF_COLUMN_EXTRA:
	case SF_COLUMN_NOT_NULL:
		snprintf(one, sizeof(one), "%s.%s.%s", it->schema, it->table, it->item);
		break;
	case SF_INDEX_MISSING:
		snprintf(one, sizeof(one), "%s", nz(it->item));
		break;
	default:
		snprintf(one, sizeof(one), "%s.%s", it->schema, it->table);
		break;
	}
	snprintf(r->text[f] + len, sizeof(r->text[f]) - len, "%s%s", len ? ", " : "", one);
}

/* "a, b and 3 more" */
static const char *found_text(const struct schema_report *r, enum schema_finding f)
{
	static char buf[460];

	if (r->count[f] > 6)
		snprintf(buf, sizeof(buf), "%s and %d more", r->text[f], r->count[f] - 6);
	else
		snprintf(buf, sizeof(buf), "%s", r->text[f]);
	return buf;
}

/* The items of one side's schema answer, ignored tables left out; NULL when out of memory. */
static struct schema_item *items_of(const struct check_run *run, const PGresult *res, size_t *n,
				    int *tables)
{
	int rows = PQntuples(res);
	struct schema_item *items = calloc(rows ? (size_t)rows : 1, sizeof(*items));

	*n = 0;
	if (items == NULL)
		return NULL;
	for (int i = 0; i < rows; i++) {
		const char *kind = check_val(res, i, SC_KIND);
		struct schema_item *it = &items[*n];

		if (kind == NULL ||
		    (kind[0] != 's' && check_ignored(run->dc, check_val(res, i, SC_SCHEMA),
						     check_val(res, i, SC_TABLE))))
			continue;
		it->kind = kind[0];
		it->schema = check_val(res, i, SC_SCHEMA);
		it->table = check_val(res, i, SC_TABLE);
		it->item = check_val(res, i, SC_ITEM);
		it->detail = check_val(res, i, SC_DETAIL);
		it->flags = check_val(res, i, SC_FLAGS);
		if (it->kind == 't' && tables)
			(*tables)++;
		(*n)++;
	}
	return items;
}

void check_eval_schema(struct check_run *run)
{
	static const struct {
		enum schema_finding f;
		enum check_id row;
		enum check_status st;
		const char *what;
	} say[] = {
		{SF_TABLE_MISSING, CHECK_SCHEMA, CHECK_STATUS_FAIL, "tables missing on the %s"},
		{SF_COLUMN_MISSING, CHECK_SCHEMA, CHECK_STATUS_FAIL, "columns missing on the %s"},
		{SF_COLUMN_TYPE, CHECK_SCHEMA, CHECK_STATUS_FAIL,
		 "columns of another type on the %s"},
		{SF_COLUMN_REQUIRED, CHECK_SCHEMA, CHECK_STATUS_FAIL,
		 "NOT NULL columns without a default only on the %s (inserts would fail there)"},
		{SF_PK_MISSING, CHECK_SCHEMA, CHECK_STATUS_FAIL, "no primary key on the %s"},
		{SF_PK_DIFFERS, CHECK_SCHEMA, CHECK_STATUS_FAIL, "another primary key on the %s"},
		{SF_SEQUENCE_MISSING, CHECK_SCHEMA, CHECK_STATUS_FAIL,
		 "sequences missing on the %s"},
		{SF_SEQUENCE_TYPE, CHECK_SCHEMA, CHECK_STATUS_WARN,
		 "sequences of another type on the %s"},
		{SF_COLUMN_NOT_NULL, CHECK_SCHEMA, CHECK_STATUS_WARN, "NOT NULL only on the %s"},
		{SF_COLUMN_EXTRA, CHECK_SCHEMA, CHECK_STATUS_WARN, "columns only on the %s"},
		{SF_TABLE_EXTRA, CHECK_SCHEMA, CHECK_STATUS_OK, "tables only on the %s"},
		{SF_INDEX_MISSING, CHECK_INDEXES, CHECK_STATUS_WARN, "indexes missing on the %s"},
	};
	const PGresult *o = check_need(run, CHECK_SCHEMA, run->from, QR_SCHEMA, "the schema");
	const PGresult *n = check_need(run, CHECK_SCHEMA, run->to, QR_SCHEMA, "the schema");
	struct schema_item *oi, *ni;
	struct schema_report *r;
	size_t no, nn;
	int nindexes = 0;

	if (o == NULL || n == NULL) {
		run->rep.rows[CHECK_INDEXES] = run->rep.rows[CHECK_SCHEMA];
		return;
	}
	r = calloc(1, sizeof(*r));
	oi = items_of(run, o, &no, &r->tables);
	ni = items_of(run, n, &nn, NULL);
	if (r == NULL || oi == NULL || ni == NULL) {
		check_set(run, CHECK_SCHEMA, CHECK_STATUS_FAIL, "out of memory");
		free(r);
		free(oi);
		free(ni);
		return;
	}
	for (size_t i = 0; i < no; i++)
		nindexes += oi[i].kind == 'i';
	schema_compare(oi, no, ni, nn, add_found, r);
	check_set(run, CHECK_SCHEMA, CHECK_STATUS_OK, "%d tables compared", r->tables);
	check_set(run, CHECK_INDEXES, CHECK_STATUS_OK, "%d indexes compared", nindexes);
	for (size_t k = 0; k < sizeof(say) / sizeof(say[0]); k++) {
		char what[200];

		if (r->count[say[k].f] == 0)
			continue;
		snprintf(what, sizeof(what), say[k].what, route_side_name(run->to));
		check_add(run, say[k].row, say[k].st, "%s: %s", what, found_text(r, say[k].f));
		if (say[k].st == CHECK_STATUS_FAIL && run->rep.rows[say[k].row].error[0] == '\0')
			check_text(run->rep.rows[say[k].row].error, sizeof(run->rep.rows[0].error),
				   "schema check: %s: %s", what, found_text(r, say[k].f));
	}
	free(r);
	free(oi);
	free(ni);
}

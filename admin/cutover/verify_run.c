/*
 * verify_run.c - the life of a VERIFY run (see verify.h): VERIFY db starts
 * one (its connections, then the listing of the tables on both sides), it
 * runs (verify.c), it ends or is stopped, and what it found stays for SHOW
 * VERIFY, SHOW VERIFY DIFFS, CHECK, the metrics and the switch's re-check
 * until the next VERIFY of the same database.
 *
 * A table is compared when it is a regular, permanent table of the side the
 * database is routed to, not left out by ignore_tables (nor by the list
 * VERIFY names), readable by control_user, and present on the other side
 * with the same columns of the same types; any other table is listed as
 * skipped, with the reason.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/cutover/check.h"
#include "admin/cutover/control.h"
#include "admin/cutover/control_open.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Columns of the listing (verify_sql_list). */
enum { L_SCHEMA, L_TABLE, L_PERSISTENCE, L_TUPLES, L_COLUMN, L_TYPE, L_FLOAT, L_KEYPOS, L_SELECT };

/* Every database's last VERIFY. */
static struct list_node runs = {&runs, &runs};

static struct verify_run *run_of(const char *name)
{
	struct list_node *n;

	list_for_each(n, &runs) {
		struct verify_run *run = list_entry(n, struct verify_run, node);

		if (strcmp(run->dbname, name) == 0)
			return run;
	}
	return NULL;
}

static void table_free(struct verify_table *t)
{
	for (int i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].type);
	}
	free(t->cols);
	verify_values_free(t->cursor, t->nkey);
	free(t->schema);
	free(t->name);
	free(t->qname);
	free(t->label);
	free(t->rowhash);
	free(t);
}

static void close_connections(struct verify_run *run)
{
	for (int w = 0; w < run->nworkers; w++)
		for (int side = 0; side < 2; side++)
			if (run->workers[w].ctl[side]) {
				control_conn_free(run->workers[w].ctl[side]);
				run->workers[w].ctl[side] = NULL;
			}
	for (int side = 0; side < 2; side++)
		if (run->coord[side]) {
			control_conn_free(run->coord[side]);
			run->coord[side] = NULL;
		}
	run->coord_pending = 0;
	run->polling = false;
	verify_wait_stop(run);
}

static void run_free(struct verify_run *run)
{
	run->stopping = true;
	verify_tasks_drop(run);
	close_connections(run);
	list_remove(&run->node);
	for (int i = 0; i < run->npending; i++) {
		verify_values_free(run->pending[i].lo.v, run->pending[i].t->nkey);
		verify_values_free(run->pending[i].hi.v, run->pending[i].t->nkey);
	}
	free(run->pending);
	while (!list_empty(&run->tables)) {
		struct verify_table *t = list_entry(run->tables.next, struct verify_table, node);

		list_remove(&t->node);
		table_free(t);
	}
	for (int i = 0; i < run->ndiffs; i++) {
		free(run->diffs[i].table);
		free(run->diffs[i].key);
		free(run->diffs[i].kind);
		free(run->diffs[i].found_at);
	}
	free(run->diffs);
	free(run->workers);
	for (int i = 0; i < run->nnamed; i++) {
		free(run->named_schema[i]);
		free(run->named_table[i]);
	}
	free(run->named_schema);
	free(run->named_table);
	PQclear(run->list[0]);
	PQclear(run->list[1]);
	if (run->kick)
		event_free(run->kick);
	config_free(run->cfg);
	free(run->dbname);
	free(run);
}

void verify_run_end(struct verify_run *run, const char *why)
{
	struct list_node *n;
	char end[40];

	if (!run->running)
		return;
	if (why) {
		snprintf(run->error, sizeof(run->error), "%s", why);
		run->stopping = true;
		verify_tasks_drop(run);
	}
	run->running = false;
	close_connections(run);
	list_for_each(n, &run->tables) {
		struct verify_table *t = list_entry(n, struct verify_table, node);

		if (t->state == VT_QUEUED || t->state == VT_RUNNING)
			t->state = why ? VT_STOPPED : VT_DONE;
	}
	verify_now_text(end, sizeof(end));
	log_info("verify %s: %s at %s (%d differences kept, %d ranges pending)%s%s", run->dbname,
		 why ? "stopped" : "done", end, run->ndiffs, run->npending + run->pending_dropped,
		 run->error[0] ? ": " : "", run->error);
}

/* ---- the listing ---- */

/* Whether VERIFY named this table (every table when it named none). */
static bool named(const struct verify_run *run, const char *schema, const char *table)
{
	if (run->nnamed == 0)
		return true;
	for (int i = 0; i < run->nnamed; i++)
		if (strcmp(run->named_table[i], table) == 0 &&
		    (run->named_schema[i][0] == '\0' || strcmp(run->named_schema[i], schema) == 0))
			return true;
	return false;
}

/* The rows [*first, *end) of one table in a listing sorted by schema and table. */
static bool next_table(const PGresult *res, int *first, int *end)
{
	int n = PQntuples(res);

	if (*end >= n)
		return false;
	*first = *end;
	*end = *first + 1;
	while (*end < n &&
	       strcmp(PQgetvalue(res, *end, L_SCHEMA), PQgetvalue(res, *first, L_SCHEMA)) == 0 &&
	       strcmp(PQgetvalue(res, *end, L_TABLE), PQgetvalue(res, *first, L_TABLE)) == 0)
		(*end)++;
	return true;
}

/* The type of column 'col' of schema.table in the new side's listing, or NULL. */
static const char *new_type(const PGresult *res, const char *schema, const char *table,
			    const char *col, bool *table_found)
{
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, L_SCHEMA), schema) != 0 ||
		    strcmp(PQgetvalue(res, i, L_TABLE), table) != 0)
			continue;
		*table_found = true;
		if (strcmp(PQgetvalue(res, i, L_COLUMN), col) == 0)
			return PQgetvalue(res, i, L_TYPE);
	}
	return NULL;
}

static struct verify_table *table_new(struct verify_run *run, const char *schema, const char *name)
{
	struct verify_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->run = run;
	t->schema = strdup(schema);
	t->name = strdup(name);
	t->state = VT_QUEUED;
	if (t->schema == NULL || t->name == NULL || !verify_sql_table(t)) {
		table_free(t);
		return NULL;
	}
	list_append(&run->tables, &t->node);
	return t;
}

static void skip(struct verify_table *t, const char *why)
{
	t->state = VT_SKIPPED;
	snprintf(t->why, sizeof(t->why), "%s", why);
}

/* One table of the old side's listing, rows [first, end). */
static void add_table(struct verify_run *run, const PGresult *old, const PGresult *neu, int first,
		      int end)
{
	const char *schema = PQgetvalue(old, first, L_SCHEMA),
		   *name = PQgetvalue(old, first, L_TABLE);
	struct verify_table *t;
	char why[200] = "";
	bool found = false;

	if (!named(run, schema, name))
		return;
	if (check_table_ignored(run->dc, schema, name)) {
		/* left out; listed only when VERIFY named it, so that it does not look forgotten */
		if (run->nnamed && (t = table_new(run, schema, name)) != NULL)
			skip(t, "listed in ignore_tables");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return;
	t->run = run;
	t->schema = strdup(schema);
	t->name = strdup(name);
	t->ncols = end - first;
	t->cols = calloc((size_t)t->ncols, sizeof(*t->cols));
	t->state = VT_QUEUED;
	t->estimate = strtoll(PQgetvalue(old, first, L_TUPLES), NULL, 10);
	if (t->schema == NULL || t->name == NULL || t->cols == NULL) {
		table_free(t);
		return;
	}
	for (int i = first; i < end; i++) {
		struct verify_column *c = &t->cols[i - first];
		const char *type;

		c->name = strdup(PQgetvalue(old, i, L_COLUMN));
		c->type = strdup(PQgetvalue(old, i, L_TYPE));
		c->is_float = strcmp(PQgetvalue(old, i, L_FLOAT), "t") == 0;
		if (c->name == NULL || c->type == NULL) {
			table_free(t);
			return;
		}
		if (!PQgetisnull(old, i, L_KEYPOS)) {
			int pos = atoi(PQgetvalue(old, i, L_KEYPOS));

			if (pos >= 1 && pos <= VERIFY_KEY_MAX) {
				t->key[pos - 1] = i - first;
				if (pos > t->nkey)
					t->nkey = pos;
			}
		}
		type = new_type(neu, schema, name, c->name, &found);
		if (why[0] == '\0' && found && (type == NULL || strcmp(type, c->type) != 0))
			snprintf(why, sizeof(why),
				 "skipped: column %s is %s on the %s, %s on the %s", c->name,
				 c->type, route_side_name(run->old_side), type ? type : "missing",
				 route_side_name(run->new_side));
	}
	if (!verify_sql_table(t)) {
		table_free(t);
		return;
	}
	list_append(&run->tables, &t->node);
	if (!found)
		snprintf(why, sizeof(why), "skipped: no such table on the %s",
			 route_side_name(run->new_side));
	else if (strcmp(PQgetvalue(old, first, L_PERSISTENCE), "u") == 0)
		snprintf(why, sizeof(why), "skipped: unlogged, so not replicated");
	else if (strcmp(PQgetvalue(old, first, L_SELECT), "t") != 0)
		snprintf(why, sizeof(why), "skipped: control_user may not read it");
	if (why[0])
		skip(t, why + strlen("skipped: "));
}

static void build_tables(struct verify_run *run)
{
	const PGresult *old = run->list[run->old_side], *neu = run->list[run->new_side];
	int first = 0, end = 0;

	while (next_table(old, &first, &end))
		add_table(run, old, neu, first, end);
	/* a table VERIFY named that the old side does not have */
	for (int i = 0; i < run->nnamed; i++) {
		struct list_node *n;
		bool seen = false;

		list_for_each(n, &run->tables) {
			struct verify_table *t = list_entry(n, struct verify_table, node);

			if (strcmp(t->name, run->named_table[i]) == 0 &&
			    (run->named_schema[i][0] == '\0' ||
			     strcmp(t->schema, run->named_schema[i]) == 0))
				seen = true;
		}
		if (!seen) {
			struct verify_table *t =
				table_new(run, run->named_schema[i][0] ? run->named_schema[i] : "?",
					  run->named_table[i]);

			if (t)
				skip(t, run->named_schema[i][0]
						? "no such table on the side routed to"
						: "no table of that name on the side routed to");
		}
	}
}

static void list_cb(void *arg, const struct control_result *r, int side)
{
	struct verify_run *run = arg;

	run->coord_pending--;
	if (!run->running)
		return;
	if (!r->ok || r->res == NULL) {
		snprintf(run->error, sizeof(run->error), "could not list the tables of the %s: %s",
			 route_side_name((enum route_side)side), r->error ? r->error : "no answer");
		verify_run_end(run, run->error);
		return;
	}
	run->list[side] = PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	if (run->list[side] == NULL) {
		verify_run_end(run, "out of memory");
		return;
	}
	if (run->list[0] && run->list[1]) {
		run->listing = false;
		build_tables(run);
		PQclear(run->list[0]);
		PQclear(run->list[1]);
		run->list[0] = run->list[1] = NULL;
		verify_schedule_soon(run);
	}
}

static void list_source_cb(void *arg, const struct control_result *r)
{
	list_cb(arg, r, SIDE_SOURCE);
}

static void list_target_cb(void *arg, const struct control_result *r)
{
	list_cb(arg, r, SIDE_TARGET);
}

/* ---- start, stop ---- */

static bool open_connections(struct verify_run *run)
{
	run->nworkers = run->dc->d.verify_jobs;
	run->workers = calloc((size_t)run->nworkers, sizeof(*run->workers));
	if (run->workers == NULL)
		return false;
	for (int side = 0; side < 2; side++) {
		run->coord[side] = control_open(run->cfg, rt.users, run->dc, (enum route_side)side);
		if (run->coord[side] == NULL)
			return false;
		for (int w = 0; w < run->nworkers; w++) {
			run->workers[w].ctl[side] =
				control_open(run->cfg, rt.users, run->dc, (enum route_side)side);
			if (run->workers[w].ctl[side] == NULL)
				return false;
		}
	}
	return true;
}

bool verify_start(struct database *db, const char *const *schemas, const char *const *names, int n,
		  char *errbuf, size_t errlen)
{
	struct verify_run *run = run_of(db->name), *old = run;
	struct pq_buf b;

	if (run && run->running) {
		snprintf(errbuf, errlen,
			 "a VERIFY of database \"%s\" is already running (started %s)", db->name,
			 run->started);
		return false;
	}
	if (db->cfg == NULL || db->cfg_owner == NULL) {
		snprintf(errbuf, errlen, "database \"%s\" is no longer configured", db->name);
		return false;
	}
	if (cutover_running(db)) {
		snprintf(errbuf, errlen, "database \"%s\" is switching: VERIFY it before or after",
			 db->name);
		return false;
	}
	run = calloc(1, sizeof(*run));
	if (run == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	list_init(&run->tables);
	list_init(&run->ready);
	list_init(&run->waiting);
	list_init(&run->node);
	run->dbname = strdup(db->name);
	run->db = db;
	run->cfg = config_ref(db->cfg_owner);
	run->dc = db->cfg;
	run->old_side = db->route;
	run->new_side = db->route == SIDE_SOURCE ? SIDE_TARGET : SIDE_SOURCE;
	run->t_start = rt_now_us();
	verify_now_text(run->started, sizeof(run->started));
	run->nnamed = n;
	run->named_schema = calloc(n ? (size_t)n : 1, sizeof(char *));
	run->named_table = calloc(n ? (size_t)n : 1, sizeof(char *));
	for (int i = 0; run->named_schema && run->named_table && i < n; i++) {
		run->named_schema[i] = strdup(schemas[i]);
		run->named_table[i] = strdup(names[i]);
	}
	list_append(&runs, &run->node);
	if (run->dbname == NULL || run->named_schema == NULL || run->named_table == NULL ||
	    !open_connections(run)) {
		run_free(run);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	if (old)
		run_free(old);
	run->running = true;
	run->listing = true;
	log_info("verify %s: started (%s against %s, %d jobs per side)", db->name,
		 route_side_name(run->old_side), route_side_name(run->new_side), run->nworkers);
	pq_buf_init(&b);
	verify_sql_list(&b);
	if (b.failed) {
		pq_buf_free(&b);
		verify_run_end(run, "out of memory");
		return true;
	}
	verify_coord_query(run, SIDE_SOURCE, (const char *)b.data, list_source_cb, run);
	verify_coord_query(run, SIDE_TARGET, (const char *)b.data, list_target_cb, run);
	pq_buf_free(&b);
	return true;
}

bool verify_stop(struct database *db, char *errbuf, size_t errlen)
{
	struct verify_run *run = run_of(db->name);

	if (run == NULL || !run->running) {
		snprintf(errbuf, errlen, "no VERIFY of database \"%s\" is running", db->name);
		return false;
	}
	verify_run_end(run, "stopped by VERIFY STOP");
	return true;
}

void verify_shutdown(void)
{
	while (!list_empty(&runs))
		run_free(list_entry(runs.next, struct verify_run, node));
}

/* ---- what it found ---- */

/* The rows of a table: counted once it is done, else the estimate (or what was seen, when more). */
static int64_t table_total(const struct verify_table *t)
{
	if (t->state == VT_DONE)
		return t->rows_seen;
	return t->estimate > t->rows_seen ? t->estimate : t->rows_seen;
}

bool verify_summary(const struct database *db, struct verify_summary *out)
{
	const struct verify_run *run = run_of(db->name);
	struct list_node *n;

	memset(out, 0, sizeof(*out));
	if (run == NULL)
		return false;
	out->running = run->running;
	snprintf(out->started, sizeof(out->started), "%s", run->started);
	list_for_each(n, &run->tables) {
		const struct verify_table *t = list_entry(n, struct verify_table, node);

		out->tables++;
		out->rows_checked += t->rows_checked;
		out->rows_total += table_total(t);
		out->chunks_matched += t->chunks_matched;
		out->chunks_mismatched += t->chunks_mismatched;
		out->chunks_pending += t->chunks_pending;
		out->missing += t->rows_missing;
		out->extra += t->rows_extra;
		out->different += t->rows_different;
		out->failed += t->state == VT_FAILED;
		out->stopped += t->state == VT_STOPPED;
		out->skipped += t->state == VT_SKIPPED;
	}
	snprintf(out->error, sizeof(out->error), "%s", run->error);
	out->pending = run->npending + run->pending_dropped;
	out->differences = out->missing + out->extra + out->different;
	return true;
}

static const char *state_text(const struct verify_table *t, char *buf, size_t len)
{
	switch (t->state) {
	case VT_QUEUED:
		return "queued";
	case VT_RUNNING:
		return "running";
	case VT_DONE:
		return "done";
	case VT_STOPPED:
		return "stopped";
	case VT_SKIPPED:
		snprintf(buf, len, "skipped: %s", t->why);
		return buf;
	case VT_FAILED:
		snprintf(buf, len, "failed: %s", t->why);
		return buf;
	}
	return "?";
}

static void each_table_of(const struct verify_run *run,
			  void (*fn)(void *arg, const struct verify_table_view *v), void *arg)
{
	struct list_node *n;
	int64_t elapsed_us = (int64_t)(rt_now_us() - run->t_start), checked = 0;
	double rate;

	list_for_each(n, &run->tables)
		checked += list_entry(n, struct verify_table, node)->rows_checked;
	rate = elapsed_us > 0 ? (double)checked * 1e6 / (double)elapsed_us : 0;
	list_for_each(n, &run->tables) {
		const struct verify_table *t = list_entry(n, struct verify_table, node);
		struct verify_table_view v;
		char state[260];
		int64_t total = table_total(t);

		memset(&v, 0, sizeof(v));
		v.db = run->dbname;
		v.table = t->label;
		v.state = state_text(t, state, sizeof(state));
		v.rows_checked = t->rows_checked;
		v.rows_total = total;
		v.chunks_matched = t->chunks_matched;
		v.chunks_mismatched = t->chunks_mismatched;
		v.chunks_pending = t->chunks_pending + (t->state == VT_RUNNING ? t->tasks : 0);
		v.rows_missing = t->rows_missing;
		v.rows_extra = t->rows_extra;
		v.rows_different = t->rows_different;
		v.started = run->started;
		v.eta_s = -1;
		if (run->running && (t->state == VT_RUNNING || t->state == VT_QUEUED) && rate > 0)
			v.eta_s = (int64_t)((double)(total - t->rows_checked) / rate);
		fn(arg, &v);
	}
}

void verify_each_table(const struct database *db,
		       void (*fn)(void *arg, const struct verify_table_view *v), void *arg)
{
	struct list_node *n;

	list_for_each(n, &runs) {
		const struct verify_run *run = list_entry(n, struct verify_run, node);

		if (db == NULL || strcmp(run->dbname, db->name) == 0)
			each_table_of(run, fn, arg);
	}
}

void verify_each_diff(const struct database *db,
		      void (*fn)(void *arg, const struct verify_diff_view *v), void *arg)
{
	const struct verify_run *run = run_of(db->name);

	for (int i = 0; run && i < run->ndiffs; i++) {
		struct verify_diff_view v = {run->diffs[i].table, run->diffs[i].key,
					     run->diffs[i].kind, run->diffs[i].found_at};

		fn(arg, &v);
	}
}

const struct verify_run *verify_last_run(const struct database *db)
{
	return run_of(db->name);
}

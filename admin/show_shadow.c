/*
 * show_shadow.c - SHOW SHADOW, SHOW SHADOW DIFFS, SHOW DDL and their
 * metrics (see show_shadow.h): views of the books proxy/shadow*.c and
 * proxy/ddl.c keep.  Every column is text; a time that was never measured
 * is NULL.
 */
#include "admin/show_shadow.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin/console.h"
#include "admin/resultset.h"
#include "proxy/client.h"
#include "proxy/core/list.h"
#include "proxy/database.h"
#include "proxy/ddl.h"
#include "proxy/runtime.h"
#include "proxy/shadow.h"

static const char *const shadow_cols[] = {
	"fingerprint",   "query",         "samples",       "matched",
	"differed",      "target_errors", "inconclusive",  "dropped",
	"source_p50_ms", "source_p99_ms", "target_p50_ms", "target_p99_ms",
	"database",      "slower",        "compared",      "last_difference",
};

static const char *const diffs_cols[] = {
	"time", "fingerprint", "query", "reason", "source", "target", "source_ms", "target_ms",
};

static const char *const ddl_cols[] = {
	"time", "database", "user", "statement", "blocked", "change",
};

/* A wall-clock time as SHOW DDL and SHOW SHADOW DIFFS show it: UTC, ISO 8601, milliseconds. */
static void time_text(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	char base[32];

	if (gmtime_r(&ts->tv_sec, &tm) == NULL ||
	    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%s.%03ldZ", base, ts->tv_nsec / 1000000);
}

/* A quantile in milliseconds, NULL (false) when nothing was measured. */
static bool quantile(const struct shadow_hist *h, double q, char *buf, size_t len)
{
	double ms = shadow_hist_ms(h, q);

	if (ms < 0)
		return false;
	snprintf(buf, len, "%.3f", ms);
	return true;
}

/* The databases a [db] argument selects; false (with the error sent) for an unknown one. */
static bool known_db(struct client *c, const char *name)
{
	if (name[0] && db_find(name) == NULL) {
		admin_send_no_db(c, name);
		return false;
	}
	return true;
}

void admin_show_shadow(struct client *c, const char *name)
{
	struct admin_rs rs;
	struct list_node *n;

	if (!known_db(c, name))
		return;
	admin_rs_begin(&rs, ADMIN_NCOLS(shadow_cols), shadow_cols);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct shadow_db *sdb = shadow_books(db);

		if (db->removed || (name[0] && strcmp(db->name, name) != 0) || sdb == NULL)
			continue;
		for (size_t i = 0; i < shadow_stmt_count(sdb); i++) {
			const struct shadow_stmt *st = shadow_stmt_at(sdb, i);
			char v[11][32];
			const char *vals[ADMIN_NCOLS(shadow_cols)];

			snprintf(v[0], 32, "%" PRIu64, st->samples);
			snprintf(v[1], 32, "%" PRIu64, st->matched);
			snprintf(v[2], 32, "%" PRIu64, st->differed);
			snprintf(v[3], 32, "%" PRIu64, st->target_errors);
			snprintf(v[4], 32, "%" PRIu64, st->inconclusive);
			snprintf(v[5], 32, "%" PRIu64, st->dropped);
			snprintf(v[10], 32, "%" PRIu64, st->slower);
			vals[0] = st->fingerprint;
			vals[1] = st->query;
			for (int k = 0; k < 6; k++)
				vals[2 + k] = v[k];
			vals[8] = quantile(&st->source_time, 0.5, v[6], 32) ? v[6] : NULL;
			vals[9] = quantile(&st->source_time, 0.99, v[7], 32) ? v[7] : NULL;
			vals[10] = quantile(&st->target_time, 0.5, v[8], 32) ? v[8] : NULL;
			vals[11] = quantile(&st->target_time, 0.99, v[9], 32) ? v[9] : NULL;
			vals[12] = db->name;
			vals[13] = v[10];
			vals[14] = st->writes ? "writes" : st->shape_only ? "shape" : "answers";
			vals[15] = st->last_difference[0] ? st->last_difference : NULL;
			admin_rs_row(&rs, vals);
		}
	}
	admin_rs_send(c, &rs);
}

void admin_show_shadow_diffs(struct client *c, const char *name)
{
	struct admin_rs rs;
	struct database *db = db_find(name);
	const struct shadow_db *sdb;

	if (db == NULL) {
		admin_send_no_db(c, name);
		return;
	}
	admin_rs_begin(&rs, ADMIN_NCOLS(diffs_cols), diffs_cols);
	sdb = shadow_books(db);
	for (size_t i = 0; sdb && i < shadow_diff_count(sdb); i++) {
		const struct shadow_diff *d = shadow_diff_at(sdb, i);
		char when[48], sms[32], tms[32];
		const char *vals[ADMIN_NCOLS(diffs_cols)];

		time_text(&d->when, when, sizeof(when));
		snprintf(sms, sizeof(sms), "%.3f", d->source_ms);
		snprintf(tms, sizeof(tms), "%.3f", d->target_ms);
		vals[0] = when;
		vals[1] = d->fingerprint;
		vals[2] = d->query;
		vals[3] = d->reason;
		vals[4] = d->source;
		vals[5] = d->target;
		vals[6] = sms;
		vals[7] = tms;
		admin_rs_row(&rs, vals);
	}
	admin_rs_send(c, &rs);
}

void admin_show_ddl(struct client *c, const char *name)
{
	struct admin_rs rs;

	if (!known_db(c, name))
		return;
	admin_rs_begin(&rs, ADMIN_NCOLS(ddl_cols), ddl_cols);
	for (size_t i = 0; i < ddl_log_count(); i++) {
		const struct ddl_entry *e = ddl_log_get(i);
		char when[48];
		const char *vals[ADMIN_NCOLS(ddl_cols)];

		if (name[0] && strcmp(e->database, name) != 0)
			continue;
		time_text(&e->when, when, sizeof(when));
		vals[0] = when;
		vals[1] = e->database;
		vals[2] = e->user;
		vals[3] = e->statement;
		vals[4] = e->blocked ? "yes" : "no";
		vals[5] = e->what;
		admin_rs_row(&rs, vals);
	}
	admin_rs_send(c, &rs);
}

bool admin_show_shadow_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
	switch (kind) {
	case ADMIN_CMD_SHOW_SHADOW:
		*ncols = ADMIN_NCOLS(shadow_cols);
		*cols = shadow_cols;
		return true;
	case ADMIN_CMD_SHOW_SHADOW_DIFFS:
		*ncols = ADMIN_NCOLS(diffs_cols);
		*cols = diffs_cols;
		return true;
	case ADMIN_CMD_SHOW_DDL:
		*ncols = ADMIN_NCOLS(ddl_cols);
		*cols = ddl_cols;
		return true;
	default:
		return false;
	}
}

static void help(struct evbuffer *out, const char *name, const char *type, const char *text)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* The per-database shadow values a family shows. */
enum shadow_value {
	SHADOW_TARGET_ERRORS,
	SHADOW_SLOWER,
	SHADOW_QUEUE,
	SHADOW_CONNECTIONS, /* two series: side="source" and side="target" */
};

/* One metric family over the databases that have shadow books. */
static void shadow_family(struct evbuffer *out, const char *name, const char *type,
			  const char *text, enum shadow_value what)
{
	struct list_node *n;

	help(out, name, type, text);
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct shadow_db *sdb = shadow_books(db);
		struct shadow_totals t;

		if (sdb == NULL)
			continue;
		shadow_totals(sdb, &t);
		switch (what) {
		case SHADOW_TARGET_ERRORS:
		case SHADOW_SLOWER:
			evbuffer_add_printf(out, "%s{database=\"%s\"} %" PRIu64 "\n", name, db->name,
					    what == SHADOW_SLOWER ? t.slower : t.target_errors);
			break;
		case SHADOW_QUEUE:
			evbuffer_add_printf(out, "%s{database=\"%s\"} %d\n", name, db->name,
					    shadow_held(sdb));
			break;
		case SHADOW_CONNECTIONS:
			evbuffer_add_printf(out,
					    "%s{database=\"%s\",side=\"source\"} %d\n"
					    "%s{database=\"%s\",side=\"target\"} %d\n",
					    name, db->name, shadow_connections(sdb, SIDE_SOURCE),
					    name, db->name, shadow_connections(sdb, SIDE_TARGET));
			break;
		}
	}
}

void admin_shadow_metrics(struct evbuffer *out)
{
	struct list_node *n;

	help(out, "pgcutover_ddl_statements_total", "counter",
	     "schema changes seen, by what became of them (passed, blocked by ddl = block)");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);

		evbuffer_add_printf(
			out,
			"pgcutover_ddl_statements_total{database=\"%s\",action=\"passed\"} %" PRIu64
			"\npgcutover_ddl_statements_total{database=\"%s\",action=\"blocked\"} %" PRIu64
			"\n",
			db->name, db->ddl_passed, db->name, db->ddl_blocked);
	}
	help(out, "pgcutover_shadow_samples_total", "counter",
	     "shadow reads done, by result: matched, differed, inconclusive, dropped");
	list_for_each(n, &rt.databases) {
		struct database *db = list_entry(n, struct database, node);
		const struct shadow_db *sdb = shadow_books(db);
		struct shadow_totals t;
		static const char *const results[4] = {"matched", "differed", "inconclusive",
						       "dropped"};
		uint64_t values[4];

		if (sdb == NULL)
			continue;
		shadow_totals(sdb, &t);
		values[0] = t.matched;
		values[1] = t.differed;
		values[2] = t.inconclusive;
		values[3] = t.dropped;
		for (int k = 0; k < 4; k++)
			evbuffer_add_printf(out,
					    "pgcutover_shadow_samples_total{database=\"%s\",result=\"%s\"} %" PRIu64
					    "\n",
					    db->name, results[k], values[k]);
	}
	shadow_family(out, "pgcutover_shadow_target_errors_total", "counter",
		      "shadow reads the target failed where the source did not (or with another SQLSTATE)",
		      SHADOW_TARGET_ERRORS);
	shadow_family(out, "pgcutover_shadow_slower_total", "counter",
		      "shadow reads the target answered alike but much more slowly", SHADOW_SLOWER);
	shadow_family(out, "pgcutover_shadow_queue", "gauge", "sampled transactions held now",
		      SHADOW_QUEUE);
	shadow_family(out, "pgcutover_shadow_connections", "gauge",
		      "replay connections open, by side", SHADOW_CONNECTIONS);
}

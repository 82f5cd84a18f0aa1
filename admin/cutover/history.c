/*
 * history.c - what the engine remembers of switches for SHOW SWITCHES and
 * the metrics: the last HISTORY_MAX switches (dry runs included), counters
 * per database that never go down, and the last measured replication lag
 * of each database.
 *
 * Databases are few (a [database] section each), so the per-database
 * tables are small arrays searched by name; a name keeps its entry when its
 * section goes, so a counter survives a reload that drops and re-adds it.
 */
#include <stdio.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "proxy/pool.h"

/* Switches remembered for SHOW SWITCHES (the oldest go first). */
#define HISTORY_MAX 256
/* Databases whose counters and lag are kept (more than a config can hold). */
#define HISTORY_DBS 1024

static struct switch_record history[HISTORY_MAX];
static int nhistory;

/* One database's counters and last lag. */
struct db_entry {
	char db[64];
	struct switch_counts counts;
	int64_t lag;          /* -1 unknown */
	char repl_error[600]; /* why the way back did not start ("" when it did) */
};
static struct db_entry entries[HISTORY_DBS];
static int nentries;

static struct db_entry *entry(const char *name, bool create)
{
	for (int i = 0; i < nentries; i++)
		if (strcmp(entries[i].db, name) == 0)
			return &entries[i];
	if (!create || nentries == HISTORY_DBS)
		return NULL;
	memset(&entries[nentries], 0, sizeof(entries[nentries]));
	snprintf(entries[nentries].db, sizeof(entries[nentries].db), "%s", name);
	entries[nentries].lag = -1;
	return &entries[nentries++];
}

const struct switch_record *cutover_history(int *count)
{
	*count = nhistory;
	return history;
}

void cutover_history_add(const struct database *db, const struct switch_record *rec, bool ok)
{
	struct db_entry *e = entry(db->name, true);

	if (nhistory == HISTORY_MAX) {
		memmove(history, history + 1, sizeof(history[0]) * (HISTORY_MAX - 1));
		nhistory--;
	}
	history[nhistory++] = *rec;
	if (e == NULL)
		return;
	e->counts.switches[rec->dry_run ? SWITCH_DRY_RUN : ok ? SWITCH_OK : SWITCH_FAILED]++;
	if (!rec->dry_run) {
		e->counts.have_last = true;
		e->counts.last_ms[TIMING_PAUSED] = rec->ms_paused;
		e->counts.last_ms[TIMING_DRAIN] = rec->ms_drain;
		e->counts.last_ms[TIMING_LAG] = rec->ms_lag;
		e->counts.last_ms[TIMING_SEQUENCES] = rec->ms_sequences;
		e->counts.last_ms[TIMING_FENCE] = rec->ms_fence;
		e->counts.last_ms[TIMING_REPLICATION] = rec->ms_replication;
		e->counts.last_ms[TIMING_PREPARE] = rec->ms_prepare;
		e->counts.last_ms[TIMING_VERIFY] = rec->ms_verify;
	}
}

struct switch_counts cutover_counts(const struct database *db)
{
	struct db_entry *e = entry(db->name, false);
	struct switch_counts none;

	if (e)
		return e->counts;
	memset(&none, 0, sizeof(none));
	return none;
}

void cutover_record_lag(const struct database *db, int64_t lag)
{
	struct db_entry *e = entry(db->name, true);

	if (e)
		e->lag = lag;
}

int64_t cutover_last_lag(const struct database *db)
{
	struct db_entry *e = entry(db->name, false);

	return e ? e->lag : -1;
}

void cutover_note_replication_error(const struct database *db, const char *msg)
{
	struct db_entry *e = entry(db->name, true);

	if (e)
		snprintf(e->repl_error, sizeof(e->repl_error), "%s", msg ? msg : "");
}

const char *cutover_replication_error(const struct database *db)
{
	struct db_entry *e = entry(db->name, false);

	return e && e->repl_error[0] ? e->repl_error : NULL;
}

void cutover_history_free(void)
{
	nhistory = 0;
	nentries = 0;
}

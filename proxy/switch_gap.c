/*
 * switch_gap.c - the gap of a switch as clients see it (see switch_gap.h).
 */
#include "proxy/switch_gap.h"

#include "proxy/client.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

static void (*gap_hook)(struct database *db, int64_t gap_ms);

void db_set_gap_hook(void (*hook)(struct database *db, int64_t gap_ms))
{
	gap_hook = hook;
}

void db_gap_reset(struct database *db)
{
	db->gap = (struct db_gap){0};
}

void db_gap_note_hold(struct database *db)
{
	if ((db->holds & DB_HOLD_SWITCH) && db->gap.first_hold_us == 0)
		db->gap.first_hold_us = rt_now_us();
}

void db_gap_arm(struct database *db)
{
	db->gap.armed = true;
	db->gap.pending = 0;
	db->gap.last_start_us = 0;
}

void db_gap_mark(struct client *c)
{
	struct database *db = c->db;

	if (!db->gap.armed || c->gap_wait)
		return;
	c->gap_wait = true;
	db->gap.pending++;
}

/* The last counted client started (or there was none): tell the engine. */
static void gap_report(struct database *db)
{
	int64_t ms = 0;

	db->gap.armed = false;
	if (db->gap.first_hold_us && db->gap.last_start_us > db->gap.first_hold_us)
		ms = (int64_t)(db->gap.last_start_us - db->gap.first_hold_us) / 1000;
	log_debug("database %s: the held transactions all run on the new side: gap %lld ms",
		  db->name, (long long)ms);
	if (gap_hook)
		gap_hook(db, ms);
}

void db_gap_armed_done(struct database *db)
{
	if (db->gap.armed && db->gap.pending == 0)
		gap_report(db);
}

int db_gap_pending(const struct database *db)
{
	return db->gap.armed ? db->gap.pending : 0;
}

void db_gap_started(struct client *c)
{
	struct database *db = c->db;

	if (!c->gap_wait)
		return;
	c->gap_wait = false;
	if (!db->gap.armed || db->gap.pending <= 0)
		return;
	db->gap.last_start_us = rt_now_us();
	if (--db->gap.pending == 0)
		gap_report(db);
}

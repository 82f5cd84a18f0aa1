/*
 * switch_gap.h - what clients see of a switch: the gap (switch_gap.c).
 *
 * The pause runs from the drain to the resume; what clients notice is
 * longer: from the first transaction the switch held to the moment the last
 * of the held transactions was sent to a server on the new side.  That is
 * the gap, reported beside the pause in SHOW SWITCHES (gap_ms).  It is
 * measured here, per database: the first hold is noted while the switch
 * holds the database; at the resume every held client is marked, and each
 * one counts off when its first message reaches a server on the side the
 * database is routed to (or when it closes).  The last one tells the hook.
 */
#ifndef PGCUTOVER_SWITCH_GAP_H
#define PGCUTOVER_SWITCH_GAP_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct database;

/* The switch's hold began: forget the last gap. */
void db_gap_reset(struct database *db);
/* A client of db was held (it sent a transaction while db is held). */
void db_gap_note_hold(struct database *db);
/*
 * The switch is about to release db on its new side: from now on the held
 * clients are counted as db_resume() releases them (db_gap_mark).
 */
void db_gap_arm(struct database *db);
/* db_resume() releases a held client: count it until it starts on the new side. */
void db_gap_mark(struct client *c);
/* The resume is over: the gap is known now if nothing was counted (see db_gap_pending). */
void db_gap_armed_done(struct database *db);
/* Held clients not started on the new side yet. */
int db_gap_pending(const struct database *db);
/* A counted client's message went to a server on the new side, or it closed. */
void db_gap_started(struct client *c);
/*
 * Who is told once the last held client started (the cutover engine):
 * gap_ms is 0 when nothing was held.
 */
void db_set_gap_hook(void (*hook)(struct database *db, int64_t gap_ms));

#endif /* PGCUTOVER_SWITCH_GAP_H */

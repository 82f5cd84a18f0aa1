/*
 * relocate.h - after a switch's resume, the idle sessions still on the old
 * side move in the background (relocate.c).
 *
 * In session pooling each idle client holds a server; checking each one's
 * state inside the pause (one query per server) made the pause grow with
 * the number of idle clients.  Only sessions with a transaction waiting are
 * checked and moved inside it (database.h, db_check_sessions); the others
 * stay on their old server, which nothing can use meanwhile (a request at a
 * boundary on a server of the side the database left is held and its
 * session moved first, client_relocate()), and move right after the resume:
 * at most RELOCATE_PARALLEL checks at a time, each session moved or closed
 * exactly as at the resume (a LISTEN session gets its new server at once),
 * its old server released.
 */
#ifndef PGCUTOVER_RELOCATE_H
#define PGCUTOVER_RELOCATE_H

#include <stdbool.h>

struct database;

/*
 * Session checks running at once in one database's background move.  Few:
 * the move goes as fast as the old side answers them anyway, and a session
 * that sends a request meanwhile has its own check queue behind these on a
 * busy server (with 64, such a transaction waited up to 2 s behind the move
 * of 1 000 idle sessions, measured by bench/scale.py).
 */
#define RELOCATE_PARALLEL 16

/*
 * Move db's sessions still linked to a server on the side it no longer
 * routes to.  done(db, moved, closed) is called once the last one has moved
 * or closed, never from inside this call.  False when there is none (done is
 * not called).
 */
bool db_relocate_start(struct database *db,
		       void (*done)(struct database *db, int moved, int closed));
/* Checks of db's background move running now (0 when none runs). */
int db_relocate_left(const struct database *db);
struct client;
/*
 * A session moved by itself (client_relocate(): it sent a request first):
 * counted by the background move of its database, if one runs.
 */
void db_relocate_note(struct client *c, bool moved);
/* At exit: forget the background moves (their sessions are gone). */
void db_relocate_free(void);

#endif /* PGCUTOVER_RELOCATE_H */

/*
 * show_replication.h - SHOW REPLICATION [db] (show_replication.c): both
 * replication directions of each database, read from both sides.  Internal
 * to admin/.
 */
#ifndef PGCUTOVER_ADMIN_SHOW_REPLICATION_H
#define PGCUTOVER_ADMIN_SHOW_REPLICATION_H

#include <stdbool.h>

struct client;

/* SHOW REPLICATION [db] (name "" = every database using lag_method lsn). */
void admin_show_replication(struct client *c, const char *name);

/* Its columns, for Describe. */
bool admin_show_replication_columns(int *ncols, const char *const **cols);

#endif /* PGCUTOVER_ADMIN_SHOW_REPLICATION_H */

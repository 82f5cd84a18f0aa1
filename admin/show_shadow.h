/*
 * show_shadow.h - the admin console's views of what pgcutover watches
 * during the move (show_shadow.c): SHOW SHADOW, SHOW SHADOW DIFFS and
 * SHOW DDL, and their metrics.  Internal to admin/: commands.c and
 * metrics.c call them.
 */
#ifndef PGCUTOVER_ADMIN_SHOW_SHADOW_H
#define PGCUTOVER_ADMIN_SHOW_SHADOW_H

#include <stdbool.h>

#include "admin/admin_cmd.h"

struct client;
struct evbuffer;

/* SHOW SHADOW [db]: one row per statement fingerprint of each database. */
void admin_show_shadow(struct client *c, const char *name);
/* SHOW SHADOW DIFFS db: the latest samples whose answers differed. */
void admin_show_shadow_diffs(struct client *c, const char *name);
/* SHOW DDL [db]: the schema changes seen since start. */
void admin_show_ddl(struct client *c, const char *name);

/* The columns of these commands' result sets; false for any other command. */
bool admin_show_shadow_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols);

/* Their metrics, in Prometheus' text format (metrics.c). */
void admin_shadow_metrics(struct evbuffer *out);

#endif /* PGCUTOVER_ADMIN_SHOW_SHADOW_H */

/*
 * show_control.h - SHOW LAG and SHOW SEQUENCES: the admin console's views
 * that query the databases themselves, over control connections
 * (admin/cutover/control_open.h: control_user, the server_tls_* settings).
 * Internal to admin/.
 *
 * Each runs as a job: the session is marked busy (console.h), the control
 * queries go out, and the reply is sent, then admin_done() called, once
 * every query is back (within the call when there is nothing to query).
 */
#ifndef PGCUTOVER_ADMIN_SHOW_CONTROL_H
#define PGCUTOVER_ADMIN_SHOW_CONTROL_H

#include <stdbool.h>

#include "admin/admin_cmd.h"

struct client;

/*
 * SHOW LAG [db] (name "" = every database): per database its lag_method
 * and, for lag_method lsn, the source's position, the slot's confirmed
 * position, the lag in bytes and when it was measured.  A side that cannot
 * be queried leaves NULLs in its row (and a warning in the log).
 */
void admin_show_lag(struct client *c, const char *name);

/*
 * SHOW SEQUENCES db: every sequence of the source with its value on both
 * sides and whether the target is behind; an error when a side cannot be
 * read.
 */
void admin_show_sequences(struct client *c, const char *name);

/* The columns of SHOW LAG and SHOW SEQUENCES; false for any other command. */
bool admin_show_control_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols);

#endif /* PGCUTOVER_ADMIN_SHOW_CONTROL_H */

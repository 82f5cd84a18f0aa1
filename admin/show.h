/*
 * show.h - the admin console's SHOW views answered at once (from the
 * runtime's lists, the configuration and the switch history), and KILL.
 * Internal to admin/: commands.c calls them.
 *
 * Each sends its whole reply (a result set, or an error) before it returns.
 */
#ifndef PGCUTOVER_ADMIN_SHOW_H
#define PGCUTOVER_ADMIN_SHOW_H

#include <stdbool.h>

#include "admin/admin_cmd.h"

struct admin_rs;
struct client;
struct switch_record;

void admin_show_help(struct client *c);
void admin_show_version(struct client *c);
/* Per database: route, state, both sides' addresses, client and server counts. */
void admin_show_databases(struct client *c);
/* Per pool (database, user): clients and servers by state. */
void admin_show_pools(struct client *c);
/* Every client: logging in, in a pool, or of a kind (admin sessions). */
void admin_show_clients(struct client *c);
/* Every server connection of every pool. */
void admin_show_servers(struct client *c);
/* Per database: transaction and query counts, bytes, average times. */
void admin_show_stats(struct client *c);
/* PgBouncer's SHOW LISTS: one (list, items) row per count its exporters read. */
void admin_show_lists(struct client *c);
/* Every configuration key and its value. */
void admin_show_config(struct client *c);
/* The switch history, then the switches running now. */
void admin_show_switches(struct client *c);

/* KILL db: disconnect every client of the database, close its idle servers. */
void admin_kill(struct client *c, const char *name);

/* A result set with the columns of SHOW SWITCHES (the reply of SWITCH too). */
void admin_switch_begin(struct admin_rs *rs);
/* One switch as a row of such a result set. */
void admin_switch_row(struct admin_rs *rs, const struct switch_record *r);

/*
 * The columns of the result of a command answered here, and of SWITCH;
 * false for any other command.
 */
bool admin_show_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols);

#endif /* PGCUTOVER_ADMIN_SHOW_H */

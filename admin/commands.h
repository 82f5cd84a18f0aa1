/*
 * commands.h - the admin console's commands: a query's text, parsed
 * (admin_cmd.h), to the handler that answers it.  Internal to admin/.
 */
#ifndef PGCUTOVER_ADMIN_COMMANDS_H
#define PGCUTOVER_ADMIN_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/admin_cmd.h"

struct client;

/*
 * Run the command in query[0..len) for admin session c.  Its reply is sent
 * before this returns, or later for a command that marks the session busy
 * (PAUSE, SWITCH, SHOW LAG, SHOW SEQUENCES: see console.h).  The caller
 * ends the command (ReadyForQuery) when it is answered already.  A query
 * that does not parse gets 42601 with a hint at SHOW HELP.
 */
void admin_run(struct client *c, const char *query, size_t len);

/*
 * The columns of a command's result, for Describe (console_ext.c); false
 * when it returns no rows.
 */
bool admin_command_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols);

#endif /* PGCUTOVER_ADMIN_COMMANDS_H */

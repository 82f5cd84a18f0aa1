/*
 * validation.h - the admin console's validation commands (validation.c):
 * CHECK db [TO source|target] (the switch's checks, one row each), VERIFY
 * db [table, ...] and VERIFY db STOP (the data comparison, in the
 * background), SHOW VERIFY [db] and SHOW VERIFY DIFFS db.  Internal to
 * admin/; the work is admin/cutover/check.h's and verify.h's.
 */
#ifndef PGCUTOVER_ADMIN_VALIDATION_H
#define PGCUTOVER_ADMIN_VALIDATION_H

#include <stdbool.h>

#include "admin/admin_cmd.h"

struct client;

/* CHECK db [TO side]: answered once every check has run (the session is busy meanwhile). */
void admin_check(struct client *c, const struct admin_cmd *cmd);
/* VERIFY db [table, ...] and VERIFY db STOP: answered at once. */
void admin_verify(struct client *c, const struct admin_cmd *cmd);
/* SHOW VERIFY [db] and SHOW VERIFY DIFFS db. */
void admin_show_verify(struct client *c, const char *name);
void admin_show_verify_diffs(struct client *c, const char *name);
/*
 * After a DRY RUN's row: the rows of the checks its preflight ran, as a
 * result set of CHECK's columns, when the query came as a simple Query (an
 * Execute answers with one result set only).
 */
void admin_checks_rows(struct client *c, const char *db);
/* The columns of the commands above; false for any other command. */
bool admin_validation_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols);
/* The session goes away: a CHECK of it still running answers nobody. */
void admin_validation_forget(const struct client *c);
/* Free what is left (exit). */
void admin_validation_free(void);

#endif /* PGCUTOVER_ADMIN_VALIDATION_H */

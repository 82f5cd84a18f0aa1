/*
 * admin.h - the admin console: a client that logged in on the admin port as
 * one of admin_users speaks to pgcutover itself (SHOW ..., RELOAD, ...).
 */
#ifndef PGCUTOVER_ADMIN_H
#define PGCUTOVER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct client;

bool admin_init(char *errbuf, size_t errlen) __attribute__((warn_unused_result));
void admin_shutdown(void);

/*
 * The kind of client the admin port accepts (proxy/ports.c): once the
 * password is checked it verifies admin_users, sends its own welcome and
 * answers commands.
 */
const struct client_kind *admin_client_kind(void);
/* Close every admin session (exit). */
void admin_close_all(void);

#endif /* PGCUTOVER_ADMIN_H */

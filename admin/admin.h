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

/* Authentication passed on the admin port: check admin_users, send the welcome. */
void admin_client_start(struct client *c);
/* Queries from an admin client. */
void admin_handle_input(struct client *c);
/* Release what an admin session holds (called when the client is freed). */
void admin_client_free(struct client *c);
/* Close every admin session (exit). */
void admin_close_all(void);

#endif /* PGCUTOVER_ADMIN_H */

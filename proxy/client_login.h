/*
 * client_login.h - a client's login, from its first byte to its welcome
 * (client_login.c).
 */
#ifndef PGCUTOVER_CLIENT_LOGIN_H
#define PGCUTOVER_CLIENT_LOGIN_H

#include <stdbool.h>

struct client;
struct params_snap;

/* Bytes arrived from a client in CL_LOGIN: go on with its login. */
void client_handle_login(struct client *c);

/*
 * The welcome: AuthenticationOk, the server's parameters, our cancel key,
 * ReadyForQuery.  False when the client was closed.
 */
bool client_send_welcome(struct client *c, struct params_snap *server_params)
	__attribute__((warn_unused_result));

/*
 * Tell the client every server parameter whose value it has not seen yet;
 * afterwards it has seen exactly 'snap'.  False when it could not be sent.
 */
bool client_sync_params(struct client *c, struct params_snap *snap)
	__attribute__((warn_unused_result));

/*
 * A ParameterStatus passed to the client: its view of name changes to
 * value.  False when out of memory.
 */
bool client_param_reported(struct client *c, const char *name, const char *value)
	__attribute__((warn_unused_result));

#endif /* PGCUTOVER_CLIENT_LOGIN_H */

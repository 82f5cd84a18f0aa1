/*
 * server_internal.h - queries of pgcutover's own on a linked server
 * (server_internal.c).
 */
#ifndef PGCUTOVER_SERVER_INTERNAL_H
#define PGCUTOVER_SERVER_INTERNAL_H

#include <stdbool.h>

#include "proxy/server.h"

/*
 * Run a query of pgcutover's own on a server linked to a client that is held
 * at a boundary; the replies are consumed, not forwarded.  False when it
 * could not be sent.
 */
bool server_internal_query(struct server *s, const char *sql, server_query_cb done, void *arg)
	__attribute__((warn_unused_result));

/* Bytes arrived while an internal query runs: consume its answer. */
void server_handle_internal(struct server *s);

#endif /* PGCUTOVER_SERVER_INTERNAL_H */

/*
 * console_ext.h - the admin console's emulation of the extended query
 * protocol, so that drivers work with their defaults.  Internal to admin/.
 *
 * Parse checks the command and keeps its text under the statement name,
 * Bind makes a portal of it (no parameters: the commands take none),
 * Describe answers from the command's fixed columns, Execute runs the
 * command then (never earlier: PAUSE or SWITCH must not run at Describe),
 * Sync answers ReadyForQuery.  After an error every message up to the next
 * Sync is ignored, as PostgreSQL does.
 */
#ifndef PGCUTOVER_ADMIN_CONSOLE_EXT_H
#define PGCUTOVER_ADMIN_CONSOLE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;

/* Prepared statements and portals one admin session may hold. */
#define ADMIN_STMT_MAX   64
#define ADMIN_PORTAL_MAX 16

/* A prepared statement or a portal: its name ("" = the unnamed one) and command text. */
struct admin_named {
	char *name;  /* malloc'd */
	char *query; /* malloc'd; checked by the parser at Parse */
};

/* The extended protocol's state of one admin session (in struct admin_session). */
struct admin_ext {
	bool exec; /* an Execute runs the command: its RowDescription is not sent */
	bool skip; /* an extended-protocol message failed: ignore everything until Sync */
	struct admin_named stmts[ADMIN_STMT_MAX];     /* Parse'd, until Close or the end */
	int nstmts;                                   /* used entries of stmts */
	struct admin_named portals[ADMIN_PORTAL_MAX]; /* Bind'ed, until Close or Sync */
	int nportals;                                 /* used entries of portals */
};

/*
 * One extended-protocol message: Parse, Bind, Describe, Execute, Close,
 * Flush or Sync ('P', 'B', 'D', 'E', 'C', 'H', 'S'), its body copied out of
 * the input buffer.  An Execute may leave the session busy (an asynchronous
 * command) or closed.
 */
void admin_ext_message(struct client *c, uint8_t type, const uint8_t *body, size_t len);

/* Free every statement and portal (the session ends). */
void admin_ext_clear(struct admin_ext *x);

#endif /* PGCUTOVER_ADMIN_CONSOLE_EXT_H */

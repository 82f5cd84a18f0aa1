/*
 * listen_sql.h - what the statements of a client's query do to its LISTENs
 * (listen_sql.c), for transaction pooling, where pgcutover's listener
 * listens on a client's behalf.
 *
 * The LISTENs a transaction committed are read from its server afterwards
 * (pg_listening_channels()); what cannot be read there is what the text
 * says: an UNLISTEN of a channel the listener holds for the client (its
 * server never had it), and a NOTIFY, after which the client's own
 * notifications must be told apart.  So the text is split into statements
 * the way PostgreSQL's lexer would split it (quotes, dollar quotes and
 * comments are skipped, a ';' inside them ends nothing), and each statement
 * is classified by its first words.  Pure string handling, unit-tested.
 */
#ifndef PGCUTOVER_LISTEN_SQL_H
#define PGCUTOVER_LISTEN_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest channel name PostgreSQL keeps (NAMEDATALEN - 1 bytes). */
#define LISTEN_NAME_MAX 63

/* What one statement does to the session's notifications. */
enum listen_stmt {
	LS_OTHER = 0,    /* nothing known */
	LS_LISTEN,       /* LISTEN (the channel is read from the server afterwards) */
	LS_UNLISTEN,     /* UNLISTEN name (the name is returned) */
	LS_UNLISTEN_ALL, /* UNLISTEN *, DISCARD ALL */
	LS_NOTIFY,       /* NOTIFY, or a statement that calls pg_notify(...) */
};

/*
 * The end of the statement that starts at 'off' in sql[0..len): the offset
 * just past its terminating ';', or len.  Quotes, quoted identifiers,
 * dollar quotes, comments and parentheses are skipped as PostgreSQL's lexer
 * skips them.
 */
size_t listen_sql_next(const uint8_t *sql, size_t len, size_t off);

/*
 * Classify the one statement sql[0..len).  For LS_UNLISTEN, name (namelen
 * at least LISTEN_NAME_MAX + 1) gets the channel as the server names it:
 * folded to lower case unless quoted, cut to LISTEN_NAME_MAX bytes on a
 * character boundary.
 */
enum listen_stmt listen_sql_classify(const uint8_t *sql, size_t len, char *name, size_t namelen);

/*
 * Call fn for every statement of sql[0..len) that is not LS_OTHER (name is
 * "" unless the kind is LS_UNLISTEN).
 */
void listen_sql_scan(const uint8_t *sql, size_t len,
		     void (*fn)(void *arg, enum listen_stmt kind, const char *name), void *arg);

/* The fields of a NotificationResponse body: false when malformed. */
bool listen_sql_parse_notification(const uint8_t *body, size_t len, uint32_t *pid,
				   const char **channel, const char **payload);

#endif /* PGCUTOVER_LISTEN_SQL_H */

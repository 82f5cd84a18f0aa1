/*
 * janitor.h - the timeouts that apply to logged-in clients and idle servers,
 * checked by one periodic sweep (the janitor) rather than by a timer per
 * connection, so that the forwarding path only stores a timestamp:
 *
 *   query_wait_timeout        a client waits for a server longer than this
 *                             (time its database is held by PAUSE or SWITCH
 *                             does not count): FATAL 08P01
 *   idle_transaction_timeout  a client idle inside a transaction longer than
 *                             this: FATAL 25P03, its server closed (rollback)
 *   client_message_timeout    a client leaves a message incomplete this long
 *                             with no byte arriving while pgcutover reads:
 *                             FATAL 08P01, its server closed if it saw part
 *   server_idle_timeout       a server idle in its pool this long is closed
 *
 * client_login_timeout and server_connect_timeout keep their timers on the
 * connections (client.c, server.c); server_login_retry, max_db_connections
 * and max_user_connections are the pool's (pool.c).  What each protects
 * against: docs/security.md, "Limits and timeouts".
 */
#ifndef PGCUTOVER_JANITOR_H
#define PGCUTOVER_JANITOR_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct database;

/* Start the janitor (after the event base and rt.cfg exist). */
bool janitor_init(void) __attribute__((warn_unused_result));
/* The configuration changed: the sweep period follows the smallest timeout. */
void janitor_reconfigure(void);
/* At exit. */
void janitor_free(void);

/* How often the janitor sweeps now, in milliseconds. */
int64_t janitor_period_ms(void);

/*
 * Whether the client's input ends inside a message: the message being
 * forwarded is unfinished, or what is buffered ends with part of one.
 */
bool janitor_client_mid_message(const struct client *c);

#endif /* PGCUTOVER_JANITOR_H */

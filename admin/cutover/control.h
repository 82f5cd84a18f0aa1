/*
 * control.h - control connections: the cutover engine's own libpq sessions
 * to a source or target server, for preflight checks, replication-lag
 * polling, sequence sync and marker rows.
 *
 * Everything runs on the event loop thread and nothing blocks it: host names
 * are resolved with evdns before libpq sees them, libpq is driven through its
 * non-blocking API, and a query that runs too long is abandoned by closing
 * its connection (PQcancel would block) rather than cancelled.
 *
 * A control_conn holds one connection and a FIFO of queries, run one at a
 * time.  The connection opens lazily at the first query, stays open between
 * queries, and reopens at the next query after it breaks or times out.
 * Every queued query gets exactly one callback, always from the loop and
 * never from inside control_conn_query(), unless the queue is dropped with
 * control_conn_reset() or control_conn_free().  A callback may queue more
 * queries, reset the connection or free it.
 */
#ifndef PGCUTOVER_CONTROL_H
#define PGCUTOVER_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

struct event_base;
struct evdns_base;

/*
 * The time limit of each query pgcutover runs on a control connection for
 * a switch or for SHOW LAG and SHOW SEQUENCES (reaching a server is bounded
 * by server_connect_timeout instead).
 */
#define CONTROL_QUERY_TIMEOUT_MS 10000

/* Opaque: one libpq connection to one server plus its queue of queries. */
struct control_conn;

/* What a query's callback receives.  Valid during the callback only. */
struct control_result {
	bool ok;             /* the query (all its statements) succeeded */
	char sqlstate[6];    /* on failure: the server's SQLSTATE, "08006" for
			      * connection problems, "57014" for a timeout */
	const char *error;   /* on failure: a one-line message, "could not
			      * connect to 127.0.0.1:5433: Connection refused"
			      * or the server's primary message */
	const PGresult *res; /* on success: the last result of the query
			      * (multi-statement strings allowed), or NULL */
};

typedef void (*control_cb)(void *arg, const struct control_result *r);

/*
 * A control connection to the server conninfo names (a libpq key=value
 * string or URI: host, hostaddr, port, dbname, user, password, sslmode...).
 * Nothing is opened until the first query.  dns resolves host names; with
 * NULL only numeric addresses and unix socket directories work.  label names
 * the connection in logs ("app source").  Returns NULL when out of memory; an
 * invalid conninfo is reported by every query, as a connection problem.
 */
struct control_conn *control_conn_new(struct event_base *base, struct evdns_base *dns,
				      const char *conninfo, const char *label);

/*
 * Queue sql; cb(arg, result) is called exactly once, later, from the loop.
 * timeout_ms (<= 0: none) bounds the query from the moment it starts, that is
 * when the queries queued before it are done, and covers connecting if a
 * connection has to be opened for it; on expiry the connection is closed and
 * the query fails with 57014.  Returns false only when out of memory (cb will
 * not be called).
 */
bool control_conn_query(struct control_conn *cc, const char *sql, int64_t timeout_ms, control_cb cb,
			void *arg) __attribute__((warn_unused_result));

/*
 * Drop every queued and running query without calling their callbacks and
 * close the connection.  The control_conn stays usable: the next query opens
 * a new connection.
 */
void control_conn_reset(struct control_conn *cc);

/* Close and free; queued callbacks are not called.  Safe inside a callback. */
void control_conn_free(struct control_conn *cc);

/*
 * Called with each NOTIFY the connection receives (after a LISTEN it ran),
 * whether idle or between queries; NULL stops it.  The strings are valid
 * during the call only.
 */
typedef void (*control_notify_cb)(void *arg, const char *channel, const char *payload);
void control_conn_on_notify(struct control_conn *cc, control_notify_cb cb, void *arg);

/* Whether a connection is established right now (for SHOW and metrics). */
bool control_conn_is_up(const struct control_conn *cc);

/* The label given to control_conn_new(), for the caller's own messages. */
const char *control_conn_label(const struct control_conn *cc);

#endif /* PGCUTOVER_CONTROL_H */

/*
 * listen.h - LISTEN in transaction pooling: one listening server connection
 * per pool (database, user), whose notifications are fanned out to the
 * clients of the pool that listen on their channel (listen.c; its markers:
 * listen_mark.c).
 *
 * In transaction pooling a client's server changes with every transaction,
 * so its LISTENs cannot stay on one: what a transaction LISTENed is read
 * from its server at the boundary and handed to the pool's listener, a
 * server connection of pgcutover's own (never given to a client, not
 * counted against pool_size or the connection limits) that LISTENs on the
 * union of its clients' channels, one reference per client.  The client's
 * side of this (what its statements do, the hand-over at the boundary, its
 * bounded queue of notifications) is listen_client.h's.
 *
 * Markers.  The listener also LISTENs on a channel of its own, named after
 * its backend's process ID.  A client's server sends a marker there
 * (pg_notify(channel, sequence number)) when its LISTENs change hands and
 * after a transaction that may have notified: PostgreSQL delivers every
 * notification in commit order, so the listener knows exactly which of the
 * notifications it received were committed before the marker.  That gives
 * the instant a client's channels are added or removed (no notification is
 * lost or delivered twice in the hand-over), and tells a client's own
 * notifications apart: those its server's backend committed between a fence
 * (a marker sent when the client's transaction began) and the marker at its
 * end carry the client's own process ID, as on a direct connection.
 *
 * A switch moves the listener: a second connection is opened on the new
 * side while the switch waits for replication (db_check_sessions), LISTENs
 * on every channel, and takes over at the flip; until it has, the database
 * stays held (DB_HOLD_LISTEN).  A lost listener connection closes the
 * clients that listened through it, as a lost server closes a
 * session-pooled client.
 */
#ifndef PGCUTOVER_LISTEN_H
#define PGCUTOVER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/htab.h"
#include "proxy/core/list.h"
#include "proxy/core/route.h"

struct client;
struct listener;
struct pool;
struct server;

/* A listener's connections: the one in use, and its replacement during a move. */
#define LISTEN_CONNS 2
/*
 * The input of a listener's connection holds at least this much (whatever
 * conn_buffer_size says): it reads whole notifications, about 8 kB at most.
 */
#define LISTEN_IN_MIN (64 * 1024)

/* A channel that clients of a pool listen on, or are about to. */
struct listen_chan {
	struct hnode hnode;    /* in the listener's table, by name */
	struct list_node node; /* on the listener's list of channels */
	char *name;
	/*
	 * References: clients subscribed, plus clients whose hand-over will
	 * subscribe them.  The listener LISTENs while there is one.
	 */
	unsigned refs;
	struct client **subs; /* subscribed clients, in the order they came */
	uint32_t nsubs, cap;
	uint8_t on;       /* bit per connection slot: that connection LISTENs on it */
	uint8_t inflight; /* bit per slot: a batch in flight changes it */
	uint8_t target;   /* bit per slot: what that batch makes 'on' */
};

/*
 * A marker sent by a client's server, not yet received by the listener.
 * Every notification the listener receives from that backend before it was
 * committed by the marker's own transaction or an earlier one.
 */
struct listen_mark {
	struct list_node node; /* on the listener's list, in the order sent */
	uint32_t pid;          /* the backend that sends it */
	/*
	 * Its number (the payload); 0 while the entry is open: the client's
	 * transaction runs on that backend, and what the backend commits is
	 * the client's until the entry gets its marker (listen_mark_sql) or is
	 * dropped when the backend leaves the client (listen_server_done).
	 */
	uint64_t seq;
	/*
	 * The client whose transaction it ends: notified when it arrives (its
	 * hand-over goes on), and, with 'own', the sender of what that backend
	 * committed before it.  NULL for a fence, or once the client is gone.
	 */
	struct client *client;
	bool own;
};

/* The pool's listener, created on first use; NULL when out of memory. */
struct listener *listen_get(struct pool *pool);
/* Free a pool's listener (pool_free: its connections and clients are gone). */
void listen_free(struct listener *l);

/* ---- channels ---- */

/* A reference to the channel 'name' (created as needed); NULL when out of memory. */
struct listen_chan *listen_chan_ref(struct listener *l, const char *name);
/* Drop a reference; the listener UNLISTENs once none is left. */
void listen_chan_unref(struct listener *l, struct listen_chan *ch);
/* Subscribe c (which holds a reference) / unsubscribe it (dropping the reference). */
bool listen_chan_subscribe(struct listen_chan *ch, struct client *c)
	__attribute__((warn_unused_result));
void listen_chan_unsubscribe(struct listener *l, struct listen_chan *ch, struct client *c);
/* Send what the connections must LISTEN or UNLISTEN now (after references changed). */
void listen_sync(struct listener *l);
/* The connection in use is logged in and LISTENs on ch. */
bool listen_covers(const struct listener *l, const struct listen_chan *ch);
/* A client waits (node: its listen_sub.cover_node) until listen_covers() its new channels. */
void listen_wait_cover(struct listener *l, struct list_node *node);
/* The connection in use is ready (logged in, its first batch done). */
bool listen_ready(const struct listener *l);
/* Why the listener cannot serve now ("" while it can or is getting ready). */
const char *listen_failure(const struct listener *l);

/* ---- markers ---- */

/*
 * The query that sends a marker from server s for client c (NULL: a fence)
 * to the connection in use, queued as not yet received; 'listen' also makes
 * s LISTEN on the marker channel itself (so that s delivers the marker to
 * pgcutover too).  Malloc'd; NULL when the listener is not ready or out of
 * memory.  *seq gets the marker's number.
 */
char *listen_mark_sql(struct listener *l, const struct server *s, struct client *c, bool own,
		      bool listen, uint64_t *seq);
/*
 * A listening client's transaction starts on server s (after its fence, if
 * any): what s commits belongs to c until its marker.  False when nothing
 * was recorded (the listener is not ready, out of memory).
 */
bool listen_open(struct listener *l, const struct server *s, struct client *c);
/* Server s leaves its client: an entry still open for it (no marker came) is dropped. */
void listen_server_done(struct listener *l, const struct server *s);
/* A marker's query failed: it will never arrive. */
void listen_mark_cancel(struct listener *l, uint64_t seq);
/* The marker channel of the connection in use ("" when none). */
const char *listen_mark_channel(const struct listener *l);
/* The client goes away: markers keep their place, without it. */
void listen_forget_client(struct listener *l, struct client *c);

/* ---- its server connections (server.c, server_login.c) ---- */

/* A listener connection logged in (SV_LISTEN): its first batch goes out. */
void listen_conn_ready(struct server *s);
/* Bytes arrived on a listener connection. */
void listen_conn_input(struct server *s);
/* Its login failed: 'msg' says why (for the clients that waited). */
void listen_conn_failed(struct server *s, const char *msg);
/* server_close() of a listener connection. */
void listen_conn_closed(struct server *s, const char *reason);

/* ---- switch and reload (database.c) ---- */

/* A switch waits for replication: open a connection on 'side', to take over at the flip. */
void listen_prepare_move(struct listener *l, enum route_side side);
/* The switch failed: the connection on the other side goes. */
void listen_cancel_move(struct listener *l);
/*
 * The flip happened: the connection on the new side takes over.  False
 * when it is not ready yet: the database stays held (DB_HOLD_LISTEN) until
 * it is, or has failed.
 */
bool listen_finish_move(struct listener *l);
/* A reload moved the side the listener is on: reconnect there (the database is not held). */
void listen_reopen(struct listener *l);

/* Clients listening through the pool's listener, and its connection's state (SHOW, logs). */
int listen_nsubscribers(const struct listener *l);
/*
 * The backend process IDs of the listener's connections on 'side' (at most
 * max, into out): pgcutover's own, which a fence spares.  Returns how many.
 */
size_t listen_server_pids(const struct listener *l, enum route_side side, uint32_t *out, size_t max);

#endif /* PGCUTOVER_LISTEN_H */

/*
 * listen_client.h - a transaction-pooled client's side of LISTEN: what its
 * statements do to its channels, its bounded queue of notifications
 * (listen_client.c), and the hand-over of its LISTENs to the pool's
 * listener at the end of a transaction (listen_flow.c).
 *
 * The hand-over.  A transaction that LISTENed leaves the channels on its
 * server X.  Its ReadyForQuery is held; X is asked what it LISTENs (the
 * session capture), the listener LISTENs on those channels too, then X
 * sends a marker to the listener (listen.h) and UNLISTENs.  Until X has
 * delivered its own copy of the marker, X's notifications reach the client;
 * from the marker on, the listener's do: none is lost, none arrives twice.
 * Only then does the client get its ReadyForQuery, so a NOTIFY sent after
 * its LISTEN returned always reaches it.  An UNLISTEN (which X cannot show:
 * it never had the channel) is read from the statement text and applied,
 * at the marker, only when its transaction ended without an error or a
 * ROLLBACK.  After a transaction that may have notified (NOTIFY,
 * pg_notify(...)), a listening client's server sends a marker too, and the
 * ReadyForQuery waits for it: the client's own notifications arrive before
 * it, with the client's own process ID.
 *
 * Delivery.  A notification goes to the client's output at once when the
 * client is between two messages of its server's (or has no server) and its
 * output is below conn_buffer_size; otherwise it waits in the client's
 * queue, flushed at the next message boundary or when the output drains.
 * The listener never stops reading for a client, so the queue is what a
 * burst fills while the client catches up.  A client is told FATAL 53200
 * and closed when its queue holds more than listen_queue_bytes() (4 x
 * conn_buffer_size) and it has read nothing for LISTEN_STALL_MS: it does
 * not read its notifications; or, whatever it reads, more than
 * LISTEN_QUEUE_HARD x conn_buffer_size or LISTEN_QUEUE_COUNT notifications.
 */
#ifndef PGCUTOVER_LISTEN_CLIENT_H
#define PGCUTOVER_LISTEN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/list.h"
#include "proxy/relay.h"

struct client;
struct evbuffer;
struct listen_chan;
struct listener;
struct server;

/*
 * Notifications waiting for one client, at most: LISTEN_QUEUE_HARD x
 * conn_buffer_size bytes (16 MB by default) and LISTEN_QUEUE_COUNT of them;
 * more than listen_queue_bytes() only while the client reads.
 */
#define LISTEN_QUEUE_HARD  64
#define LISTEN_QUEUE_COUNT 262144
/* A client with a full queue that read nothing for this long does not read its notifications. */
#define LISTEN_STALL_MS 1000
/* Queries longer than this are scanned for UNLISTEN and NOTIFY in their first statement only. */
#define LISTEN_SCAN_MAX (64 * 1024)

/* Where a client's hand-over is (struct listen_sub.step). */
enum listen_step {
	LST_NONE = 0,
	LST_CAPTURE, /* the session capture runs on its server */
	LST_COVER,   /* the listener must LISTEN on the new channels first */
	LST_MARK,    /* the marker query runs on its server */
	LST_CUT,     /* its server must deliver its own copy of the marker */
	LST_CLEANUP, /* UNLISTEN * (and DEALLOCATEs) run on its server */
	LST_ARRIVE,  /* the marker must reach the listener */
};

/* An UNLISTEN seen in a request whose transaction has not ended yet. */
struct listen_pending {
	uint32_t batch; /* the request (Sync number on its server) it belongs to */
	char *name;     /* NULL: UNLISTEN * */
};

/* A client's notifications, allocated when it first LISTENs. */
struct listen_sub {
	struct client *c;
	struct listener *l;         /* its pool's listener, once it has needed one */
	struct listen_chan **chans; /* the channels it listens on through the listener */
	uint32_t n, cap;
	/* the transaction under way */
	bool saw_listen; /* a LISTEN: the ReadyForQuery waits for the hand-over */
	bool saw_notify; /* a NOTIFY or pg_notify(): its own come back with its own ID */
	bool doomed;     /* an error or a ROLLBACK: its UNLISTENs do not count */
	struct listen_pending *pend;
	uint32_t npend, pcap;
	/* UNLISTENs of transactions that ended well, applied at the next hand-over */
	bool unl_all;
	char **unl;
	uint32_t nunl, ucap;
	/* the hand-over */
	enum listen_step step;
	bool busy;     /* a query of the hand-over runs on the server */
	bool captured; /* it began with a session capture (the server goes back at its end) */
	bool z_held;   /* its ReadyForQuery was held back (sent when the hand-over ends) */
	bool cut;      /* its server LISTENs on the marker channel (it delivers until the marker) */
	bool x_cut;    /* ... and has delivered it: what it sends now is the listener's */
	bool marked;   /* the marker reached the listener (the changes are applied) */
	bool need_mark;
	bool hold_q; /* the listener's notifications wait in 'held' until x_cut */
	uint64_t seq;
	char cut_payload[24];      /* the marker's payload, as its server sends it */
	char cut_chan[48];         /* the channel it was sent on */
	struct listen_chan **adds; /* channels to subscribe at the marker (referenced) */
	struct listen_chan **dels; /* channels to unsubscribe at the marker */
	uint32_t nadds, ndels, cap_adds, cap_dels;
	/*
	 * Channels subscribed at the marker while its server has not delivered
	 * its own copy of it yet: what the server sends on them until then came
	 * before the marker, so the client gets it from the server, not from
	 * the listener.
	 */
	struct listen_chan **fresh;
	uint32_t nfresh, cap_fresh;
	bool fresh_lost; /* out of memory recording one: the hand-over fails (rather than lose) */
	char *cleanup;   /* what runs on the server once it is handed over */
	bool fence_pending; /* a fence runs with the session restore */
	uint64_t fence_seq;
	struct list_node cover_node; /* on the listener's list while it waits in LST_COVER */
	/* delivery */
	struct evbuffer *q; /* notifications waiting (whole messages) */
	size_t qbytes;
	uint32_t qcount;
	struct evbuffer *held; /* the listener's, while hold_q (they go after the queue's) */
	size_t hbytes;
	uint32_t hcount;
	uint64_t progress_us; /* when its output last drained, or its queue began */
};

/* ---- what the client's statements do (client_forward.c, track.c) ---- */

/*
 * A Query passing to server s (the whole message may be looked at: 'peek'
 * holds its first bytes).  RELAY_STOP: wait for more of it.
 */
enum relay_verdict listen_client_note_query(struct client *c, struct server *s, struct evbuffer *in,
					    size_t off, size_t avail, uint32_t len,
					    const uint8_t *peek, size_t npeek);
/* A Parse of the unnamed statement at 'off' (RELAY_STOP: wait for more of it). */
enum relay_verdict listen_client_note_parse(struct client *c, struct server *s, struct evbuffer *in,
					    size_t off, size_t avail, uint32_t len);
/* One statement the client executes (a Bind of a named statement: its text). */
void listen_client_note_stmt(struct client *c, struct server *s, const uint8_t *sql, size_t len);

/* ---- what its server answers (server_forward.c) ---- */

/* A ReadyForQuery with this status passed (after the server's books). */
void listen_client_ready(struct client *c, const struct server *s, char status);
/* An ErrorResponse passed. */
void listen_client_error(struct client *c);
/* A CommandComplete at 'off' of the server's input (RELAY_STOP: wait for its tag). */
enum relay_verdict listen_client_tag(struct client *c, struct evbuffer *in, size_t off,
				     size_t avail, uint32_t len);
/*
 * A NotificationResponse from its own server (which LISTENs during the
 * transaction): one the listener delivers too is dropped (s->swallow).
 */
enum relay_verdict listen_client_relay_a(struct server *s, struct client *c, struct evbuffer *in,
					 size_t off, size_t avail, uint32_t len);
/*
 * The transaction ended (ReadyForQuery 'I', nothing pending): whether its
 * ReadyForQuery must wait for a hand-over.  When not, the transaction's
 * notes are forgotten.
 */
bool listen_client_at_boundary(struct client *c);

/* ---- the hand-over ---- */

/* Start it on server s (the ReadyForQuery was held back when z_held). */
void listen_flow_start(struct client *c, struct server *s, bool z_held);
/*
 * The session capture answered (client_capture_done): true when the
 * hand-over takes it from here (it was waiting for it, or the server was
 * found LISTENing).
 */
bool listen_flow_captured(struct client *c, struct server *s, const char *rows, const char *error);
/* Bytes arrived on a server that waits in a hand-over, with no query running. */
void listen_flow_input(struct server *s);
/*
 * A notification from the client's own server while pgcutover's queries run
 * there (msg: the whole message): true when handled here.
 */
bool listen_client_x_notification(struct server *s, struct client *c, const uint8_t *msg, size_t n);

/* A fence for a listening client's transaction on s (to run before it), or NULL. */
char *listen_client_fence(struct client *c, struct server *s);
void listen_client_fence_done(struct client *c, struct server *s, bool ok);

/* ---- from the listener (listen.c) ---- */

/* The bytes of notifications that may wait for a client that does not read: 4 x conn_buffer_size. */
size_t listen_queue_bytes(void);
/* Queue or send a notification of the listener's; false when the client is full (close it). */
bool listen_client_deliver(struct client *c, const uint8_t *msg, size_t n);
/* The same for one its own server delivers during a hand-over (never held back). */
bool listen_client_deliver_now(struct client *c, const uint8_t *msg, size_t n);
/* The server delivered the marker: the listener's notifications held meanwhile go. */
void listen_client_release_held(struct client *c);
/* Move what waits in the queue to the output, when the client can take it. */
void listen_client_flush(struct client *c);
/* The client's output drained (it reads): the queue goes on. */
void listen_client_drained(struct client *c);
/* The listener LISTENs on more channels now. */
void listen_client_covered(struct client *c);
/* Its marker reached the listener (already off the listener's list). */
void listen_client_marked(struct client *c);
/* The listener cannot serve it: FATAL, closed. */
void listen_client_lost(struct client *c, const char *why);
/* Its queue was full: FATAL 53200, closed. */
void listen_client_overflow(struct client *c);

/* ---- between listen_client.c and listen_flow.c ---- */

/* The client's database is transaction-pooled (now: a reload may change it). */
bool listen_txn_pooled(const struct client *c);
/* Its listen_sub, allocated on first use; NULL when out of memory. */
struct listen_sub *listen_sub_get(struct client *c);
/* The channel 'name' when the client listens on it through the listener. */
struct listen_chan *listen_sub_find(const struct listen_sub *ls, const char *name);
/* Append a channel to a growing array; false when out of memory. */
bool listen_chan_push(struct listen_chan ***v, uint32_t *n, uint32_t *cap, struct listen_chan *ch)
	__attribute__((warn_unused_result));
/* Forget the UNLISTENs waiting for the next hand-over. */
void listen_unl_clear(struct listen_sub *ls);

/* The client goes away (client.c): its channels, markers and queue go. */
void listen_client_gone(struct client *c);
/* Channels it listens on through the listener (SHOW CLIENTS). */
uint32_t listen_client_nchannels(const struct client *c);

#endif /* PGCUTOVER_LISTEN_CLIENT_H */

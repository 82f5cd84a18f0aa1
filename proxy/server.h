/*
 * server.h - server connections: connect, log in as the client's user,
 * forward the server's messages to the linked client, reset between clients.
 */
#ifndef PGCUTOVER_SERVER_H
#define PGCUTOVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/pq_build.h"
#include "proxy/auth/scram_client.h"
#include "proxy/core/list.h"
#include "proxy/core/params.h"
#include "proxy/pool.h"
#include "protocol/pq.h"
#include "proxy/prepared.h"
#include "proxy/io/sock.h"

struct event;
struct client;
struct listener;
struct server;

typedef void (*server_query_cb)(struct server *s, void *arg, const char *rows, const char *error);

enum server_state {
	SV_CONNECT, /* resolving and connecting */
	SV_LOGIN,   /* startup and authentication exchange */
	SV_IDLE,    /* logged in and clean, waiting in its pool */
	SV_ACTIVE,  /* linked to a client */
	SV_RESET,   /* running DISCARD ALL after its client left */
	SV_FREE,    /* closed; on the reap list */
	SV_LISTEN,  /* a listener's connection (listen.h): never linked to a client */
};

/* server.mark_owner: transactions of more than one client since its last marker. */
#define SERVER_MARK_MIXED UINT64_MAX

/* Where the TLS negotiation of a server connection is (in SV_CONNECT). */
enum server_tls_step {
	SERVER_TLS_NONE = 0,  /* not negotiating: plaintext, or TLS already up */
	SERVER_TLS_ASKED,     /* SSLRequest sent, waiting for the one-byte answer */
	SERVER_TLS_HANDSHAKE, /* the server said 'S': handshake running */
};

struct server {
	struct list_node node; /* on the pool list of its state */
	enum server_state state;
	struct sock sock;    /* the socket and its input/output buffers */
	struct event *timer; /* connect/login deadline, then idle timeout */
	struct pool *pool;
	struct client *client;         /* linked client while SV_ACTIVE */
	enum route_side side;          /* which side of the database it is connected to */
	unsigned addr_gen;             /* db->addr_gen[side] when opened (see server_current) */
	struct backend_addr addr;      /* where it connected: a reload may move db->addr since */
	enum server_tls_step tls_step; /* TLS negotiation before the StartupMessage */

	struct params_snap *startup; /* startup parameters it was opened with (interned, see params.h) */
	struct params reported;      /* ParameterStatus values the server has reported */
	struct params_snap *reported_snap; /* 'reported' interned; NULL when it changed since */

	uint32_t be_pid; /* BackendKeyData from the server: for cancel requests */
	uint32_t be_key;

	struct auth_scram_client scram; /* SCRAM exchange while logging in */
	bool scram_active;

	char txn_status;             /* from the last ReadyForQuery: 'I', 'T' or 'E' */
	uint32_t pending_syncs;      /* Query/Sync/FunctionCall sent, ReadyForQuery not yet seen */
	bool unsynced;               /* extended-protocol messages sent since the last Sync */
	uint32_t msg_left;           /* bytes of the current server message still to forward */
	uint64_t xact_start_us;      /* when the current transaction's first request went out */
	uint64_t query_start_us;     /* when the oldest pending request went out */
	uint64_t idle_since_us;      /* when it became idle, for server_idle_timeout */
	bool read_paused;            /* reading stopped because the client's output is full */
	server_query_cb internal_cb; /* set while an internal query runs (see server_internal_query) */
	void *internal_arg;
	char *internal_rows;  /* collected first columns of the internal query's rows */
	char *internal_error; /* the internal query's error message, if any */
	unsigned claim_gen;   /* pool_service() pass that promised it to a waiting client */

	/*
	 * Prepared statements and session state.  Requests are numbered by the
	 * Sync-like messages (Sync, Query, FunctionCall) that end them: syncs_sent
	 * counts those forwarded, syncs_done the ReadyForQuery seen, so the
	 * answers the server sends now belong to batch number syncs_done.
	 */
	uint32_t syncs_sent;
	uint32_t syncs_done;
	uint32_t ps_unqueued; /* Parse/Close passed since the last queued one in this batch */
	struct ps_queue psq;  /* Parse/Close answers still to come that need handling */
	struct ps_cache psc; /* transaction pooling: statements prepared here, by pgcutover's names */
	bool swallow;        /* the message at the head of the input is pgcutover's own answer */
	uint8_t *answer;     /* with swallow: the client gets this instead of the message, */
	size_t answer_len;
	size_t answer_replaces; /* whose length this is (all of it is in the input) */
	bool ps_broken;         /* the server holds what pgcutover's books do not say (statements
				      disagree, a session state it could not read or clean): not reused */
	bool closing;           /* server_close() is running: callbacks must not close again */
	bool capture_next;      /* at this boundary, ask what the client's session now holds */
	uint64_t sess_owner; /* transaction pooling: client (session id) whose settings it holds; 0 = none */
	uint32_t sess_gen; /* that client's settings generation */
	/*
	 * LISTEN in transaction pooling (listen.h).  'listener': set on the
	 * connections of a pool's listener, which are never given to clients.
	 * 'listen_flow': its client's LISTENs are being handed over (its
	 * ReadyForQuery, drained from the input when 'hold_ready' said so,
	 * waits).  'mark_owner': whose transactions it ran since its last marker
	 * (session id; 0 none, SERVER_MARK_MIXED several), to tell a client's
	 * own notifications apart.
	 */
	struct listener *listener;
	bool listen_flow;
	bool hold_ready;
	uint64_t mark_owner;
	char label[96]; /* "app/alice@127.0.0.1:5432" for logs */
	/*
	 * Opened in advance for a switch, on the side it goes to, before the
	 * route flips (prewarm.h): nobody waits for it until then, and it serves
	 * only if it logged in with the client's default_transaction_read_only
	 * (prewarm_ro: 1 "on", 0 "off"), not with a fence still up there.
	 */
	bool prewarmed;
	signed char prewarm_ro;
};

/*
 * Whether new work may go to this server: it is on the side its database is
 * routed to, at the address in force (no reload moved that side since it
 * was opened).
 */
static inline bool server_current(const struct server *s)
{
	const struct database *db = s->pool->db;

	return s->side == db->route && s->addr_gen == db->addr_gen[s->side];
}

/* Open a new server connection for this pool, with these startup parameters. */
struct server *server_launch(struct pool *pool, struct params_snap *startup);
/*
 * Open a connection for the pool's listener l on 'side': not counted in the
 * pool's servers (pool_size, max_db_connections, max_user_connections).
 */
struct server *server_launch_listener(struct pool *pool, struct params_snap *startup,
				      enum route_side side, struct listener *l);
/* The same to a given side of the database (a switch opens the side it goes to early; shadow reads replay on the target). */
struct server *server_launch_side(struct pool *pool, struct params_snap *startup,
				  enum route_side side);

/* The parameters the server reported, interned (what a client is told); NULL when out of memory. */
struct params_snap *server_reported(struct server *s);

void server_set_state(struct server *s, enum server_state st);
const char *server_state_name(enum server_state st);

/* Link an idle server to a client. */
void server_link(struct server *s, struct client *c);
/*
 * The client is done with its server (it left, or its transaction ended in
 * transaction pooling): reset or keep the server if it is clean, close it
 * otherwise.
 */
void server_release(struct server *s);

/*
 * At a transaction boundary: no request pending, not inside a transaction or
 * an unsynced extended-protocol sequence, no partial message either way.
 */
static inline bool server_at_boundary(const struct server *s)
{
	return s->pending_syncs == 0 && !s->unsynced && s->txn_status == 'I' && s->msg_left == 0;
}

/* Close the connection; clients linked to it are told and closed. */
void server_close(struct server *s, const char *reason);
/*
 * Close politely: a Terminate first, so the server logs no "unexpected EOF".
 * Only at a message boundary (an idle server, or one whose client sent whole
 * messages only), or the Terminate would be read as part of a message.
 */
void server_terminate(struct server *s, const char *reason);

/* Bytes queued towards the server; the reading pause/resume pair for backpressure. */
size_t server_output_len(const struct server *s);
void server_pause_reading(struct server *s);
void server_resume_reading(struct server *s);

/* Free the servers closed since the last call (called by the reaper). */
void server_reap_all(void);

/* ---- between the server files ---- */

/* Largest message accepted from a server outside forwarding (login, reset, internal queries). */
#define SERVER_LOGIN_MSG_MAX (1024 * 1024)

/* Handle what is in the server's input now, by state (also its read callback). */
void server_on_input(struct server *s);
/* Send what a builder holds and free it; false when it failed or could not be sent. */
bool server_send_msg(struct server *s, struct pq_buf *b) __attribute__((warn_unused_result));
/* (Re)arm a server's timer to fire in ms milliseconds. */
void server_set_timer_ms(struct event *ev, int64_t ms);
/*
 * Peek at the next complete message in the input.  PQ_OK with *type, *len
 * and *msg (the whole message, header included, contiguous); PQ_NEED_MORE;
 * or an error for a bad length.
 */
enum pq_status server_next_msg(struct server *s, uint32_t max, uint8_t *type, uint32_t *len,
			       const uint8_t **msg);
/* A reported parameter changed: its interned copy is stale.  False when out of memory. */
bool server_set_reported(struct server *s, const char *name, const char *value)
	__attribute__((warn_unused_result));
/* Record a ParameterStatus body; false when malformed. */
bool server_take_param(struct server *s, const uint8_t *body, size_t len)
	__attribute__((warn_unused_result));
/* The SQLSTATE and message of an ErrorResponse, for logs and for clients waiting on a login. */
void server_error_text(const uint8_t *body, size_t len, char *sqlstate, char *msg, size_t msglen);

#endif /* PGCUTOVER_SERVER_H */

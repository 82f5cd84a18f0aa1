/*
 * client.h - client connections: the struct, their states and lifecycle.
 *
 * A client moves through explicit states, each with its own list; only
 * client_set_state() moves it.  Every failure goes through client_disconnect(),
 * which sends an ErrorResponse, logs and closes.  The rest of a client's work
 * is in client_login.h (startup, TLS, authentication, the welcome),
 * client_forward.h (its messages to its server) and client_session.h (what
 * its server-side session holds, and moving it); cancel.h holds its cancel key.
 */
#ifndef PGCUTOVER_CLIENT_H
#define PGCUTOVER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/auth/scram_server.h"
#include "proxy/core/list.h"
#include "proxy/core/params.h"
#include "proxy/session.h"
#include "proxy/io/sock.h"

struct event;
struct client;
struct pool;
struct server;
struct database;
struct listen_sub;
struct pq_buf;
struct ddl_client;
struct shadow_sample;

enum client_state {
	CL_LOGIN,      /* reading the startup packet or authenticating */
	CL_WAIT_LOGIN, /* authenticated; waiting for a server to complete the welcome */
	CL_IDLE,       /* logged in, no server linked (transaction pooling, between transactions) */
	CL_WAIT,       /* has a request to send, waiting for a server */
	CL_ACTIVE,     /* linked to a server, messages flow */
	CL_CLOSING,    /* flushing a last message before the socket closes */
	CL_FREE,       /* closed; on the reap list */
};

/* Whether a session's server-side state can be carried to another server. */
enum client_move {
	MOVE_UNKNOWN = 0, /* not checked */
	MOVE_CHECKING,    /* the state check query runs on its server */
	MOVE_OK,          /* nothing but startup parameters and replayable settings */
	MOVE_BLOCKED,     /* holds state that cannot move (move_reason says which) */
};

/* Why the client-to-server direction stopped before a message (client_forward). */
enum client_stop {
	STOP_NONE = 0,
	STOP_HELD,      /* a new transaction while paused, checked, or due to move */
	STOP_TERMINATE, /* Terminate: the session ends here */
	STOP_NEED_MORE, /* the start of the message is needed to decide, and has not arrived */
	STOP_REWRITE,   /* the message must be rewritten or preceded (prepared statements) */
	STOP_WAIT_SERVER, /* the message waits for the server's pending answers (server_forward resumes) */
	STOP_DDL,         /* a schema change refused (ddl = block): ddl.c rewrites the message */
};

/* Where a client is in the authentication exchange. */
enum client_auth_step {
	AUTH_STEP_STARTUP,     /* no startup packet yet */
	AUTH_STEP_MD5,         /* sent AuthenticationMD5Password */
	AUTH_STEP_SCRAM_FIRST, /* sent AuthenticationSASL */
	AUTH_STEP_SCRAM_FINAL, /* sent AuthenticationSASLContinue */
	AUTH_STEP_DONE,
};

/*
 * A kind of client that is not an application's: a higher layer (the admin
 * console, admin/) registers one and gets the connections of the listener
 * it was given to (proxy/ports.c).  proxy/ handles their TLS, startup packet
 * and password like any client's, then hands them over; it knows nothing
 * else about them.
 */
struct client_kind {
	const char *name;     /* for logs: "admin console" */
	bool always_password; /* asks for a password even with auth_type = trust */
	/*
	 * Authenticated: the kind takes over (checks who may use it, sends the
	 * welcome, sets CL_ACTIVE, where the client sits on rt.kind_clients).
	 */
	void (*logged_in)(struct client *c);
	/* Bytes arrived while CL_ACTIVE. */
	void (*input)(struct client *c);
	/* About to be freed: release what c->kind_data holds. */
	void (*freed)(struct client *c);
};

/* What only a SCRAM login needs: allocated for it, freed when it is over. */
struct client_login {
	struct auth_scram_server scram; /* the exchange */
	bool scram_active;              /* 'scram' holds memory to free */
	bool scram_plus;   /* SCRAM-SHA-256-PLUS offered: TLS, and cbind holds its data */
	uint8_t cbind[64]; /* tls-server-end-point hash of our certificate (TLS_END_POINT_MAX) */
	size_t cbind_len;
};

struct client {
	struct list_node node; /* on the list of its state */
	enum client_state state;
	struct sock sock;    /* the socket and its input/output buffers */
	struct event *timer; /* client_login_timeout, then the closing deadline */
	char addr[64];       /* peer address for logs ("127.0.0.1:51234", "unix") */

	char *user;   /* from the startup packet */
	char *dbname; /* from the startup packet (defaults to user) */
	/*
	 * Every other startup parameter, as sent, interned: the servers opened
	 * with the same snapshot are the ones that fit this client.
	 */
	struct params_snap *startup;
	struct params_snap *reported; /* ParameterStatus values it has been told (interned) */

	struct database *db;
	struct pool *pool;
	struct server *server; /* linked server while CL_ACTIVE */

	enum client_auth_step auth_step;
	bool ssl_done; /* answered an SSLRequest already: a second one is refused
				    * (inside TLS too); sock.tls is set when we answered 'S' */
	bool gss_done; /* answered a GSSENCRequest already */
	uint8_t md5_salt[4];
	struct client_login *login; /* SCRAM state while authenticating; NULL otherwise */

	uint32_t cancel_pid; /* BackendKeyData we gave the client */
	uint32_t cancel_key;
	struct client *cancel_next; /* chain in the cancel-key hash table */

	uint32_t msg_left; /* bytes of the current message still to forward */
	uint64_t connect_time_us;
	/*
	 * When it began waiting for a server (CL_WAIT, CL_WAIT_LOGIN), for
	 * query_wait_timeout; the janitor (janitor.c) moves it forward while the
	 * database is paused, so that time held by PAUSE or SWITCH does not count.
	 */
	uint64_t wait_start_us;
	/*
	 * When bytes last arrived, for client_message_timeout; the janitor moves
	 * it forward while pgcutover itself is not reading (backpressure).
	 */
	uint64_t last_input_us;
	bool read_paused;               /* reading stopped because the server's output is full */
	const struct client_kind *kind; /* NULL for an application's client */
	bool is_unix;    /* came in on the unix socket: TLS is neither offered nor required */
	bool held;       /* has a new transaction waiting while its database is paused */
	bool gap_wait;   /* held by a switch and released: counted until it starts (switch_gap.h) */
	bool cancelling; /* a cancel connection whose request is on its way (cancel.c closes it) */
	/*
	 * A switch's session check waits for pgcutover's own query on the
	 * client's server to end (client_check_deferred() runs it then).
	 */
	bool check_deferred;
	/*
	 * The unnamed statement it parsed last has not been bound yet (it may
	 * Describe or execute it in its next round trip: transaction pooling
	 * keeps its server until then), and whether that statement may change
	 * session state (checked at the boundary once it is bound).
	 */
	bool unnamed_unbound;
	bool unnamed_stateful;
	void *kind_data;       /* what its kind keeps for it (NULL for an application's) */
	enum client_move move; /* outcome of the last session state check */
	enum client_stop stop; /* why forwarding stopped before the current message */
	struct session sess;   /* what its server-side session holds (see session.h) */
	/*
	 * Transaction pooling: the channels it listens on through its pool's
	 * listener, its hand-over and its queue of notifications
	 * (listen_client.h); NULL until it first LISTENs.
	 */
	struct listen_sub *lsub;
	void (*move_done)(struct client *c, void *arg); /* who asked for the check */
	void *move_arg;
	struct ddl_client *ddl; /* its temporary objects, for the schema checks (ddl.h); NULL: none */
	/* the transaction being copied for a shadow read (shadow.h); NULL: none */
	struct shadow_sample *shadow;
};

/*
 * Accept a new client socket (a listener's hook): kind is NULL for an
 * application's client, else the kind registered for that listener.
 */
void client_accept(const struct client_kind *kind, int fd, const struct sockaddr *sa);

const char *client_state_name(enum client_state st);

/* Move a client to another state (and list); checks the transition. */
void client_set_state(struct client *c, enum client_state st);

/*
 * Send an ErrorResponse (FATAL) with this SQLSTATE and message, log it, and
 * close the connection once the error is flushed.
 */
void client_disconnect(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Close without sending anything (peer gone). */
void client_close(struct client *c, const char *reason);

/* Send bytes the proxy built itself. */
bool client_send(struct client *c, const void *data, size_t len) __attribute__((warn_unused_result));
/* Send what a builder holds and free it; false when it failed or could not be sent. */
bool client_send_buf(struct client *c, struct pq_buf *b) __attribute__((warn_unused_result));

/* Stop reading from this client (its server cannot take more) / start again. */
void client_pause_reading(struct client *c);
void client_resume_reading(struct client *c);

/* Free the clients closed since the last call (called by the reaper). */
void client_reap_all(void);

/* How many bytes are queued towards the client. */
size_t client_output_len(const struct client *c);

/*
 * Between the client files: the login deadline is over (logged in, or
 * closing), so the client's timer goes; what only authentication needed
 * goes; the linked server, if any, is unlinked and given back to its pool.
 */
void client_drop_timer(struct client *c);
void client_free_login(struct client *c);
void client_drop_server(struct client *c);

#endif /* PGCUTOVER_CLIENT_H */

/*
 * pool.h - the server connection pools.
 *
 * A struct pool holds the server connections of one (database, user) pair
 * and the clients of that pair, each on the list of its state.
 * pool_service() is the single place that hands idle servers to waiting
 * clients and opens new server connections.  The databases themselves are
 * database.h's.
 */
#ifndef PGCUTOVER_POOL_H
#define PGCUTOVER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/list.h"
#include "proxy/core/params.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

/* Welcome messages remembered per pool (distinct startup parameter sets). */
#define POOL_WELCOME_MAX 32

struct client;
struct pool;
struct listener;
struct server;
struct db_config;
struct cutover;
struct event;

/*
 * The ParameterStatus values a server reported at login, for one set of
 * startup parameters on one side: a client whose parameters match is welcomed
 * from here at once, without waiting for a server (it gets one at its first
 * query), which is how clients log in while a database is paused or its pool
 * is busy.
 */
struct pool_welcome {
	struct pool_welcome *next;
	enum route_side side;
	struct params_snap *startup; /* the startup parameters (interned: compared by pointer) */
	struct params_snap *params;  /* what the server reported */
};

/*
 * A pool that is not among its database's pools (pool_new_owned): its owner
 * hands out its servers itself.  Shadow reads keep their replay connections
 * in such pools, so that they log in as any server does (as the client's
 * user, with its startup parameters) yet serve no client and count in no
 * limit.
 */
struct pool_owner {
	void (*service)(struct pool *pool); /* instead of pool_service(): something changed */
	void (*input)(struct server *s);    /* bytes arrived on one of its SV_ACTIVE servers */
	/* instead of pool_login_failed(): a server's login was refused */
	void (*login_failed)(struct pool *pool, const char *sqlstate, const char *message);
};

struct pool {
	struct list_node node; /* in db->pools (an owned pool: on no list) */
	struct database *db;
	char *user;                       /* the client user this pool serves */
	struct list_node idle_servers;    /* SV_IDLE: logged in, clean, unlinked */
	struct list_node active_servers;  /* SV_ACTIVE: linked to a client */
	struct list_node new_servers;     /* SV_CONNECT, SV_LOGIN, SV_RESET: not usable yet */
	struct list_node listen_servers;  /* its listener's connections, in any state (listen.h) */
	struct list_node waiting_clients; /* CL_WAIT_LOGIN and CL_WAIT, in arrival order */
	struct list_node active_clients;  /* CL_ACTIVE: linked to a server */
	struct list_node idle_clients;    /* CL_IDLE: logged in, no server (transaction pooling) */
	int nservers;                     /* servers in any state, bounded by the pool size */
	int nclients;                     /* clients in any of the lists above */
	struct pool_welcome *welcomes;    /* most recent first, at most POOL_WELCOME_MAX */
	uint8_t client_key[32];           /* SCRAM ClientKey recovered from a client's login, */
	bool have_client_key;             /* used to log in to servers with a SCRAM secret */
	unsigned claim_gen;               /* current pool_service() pass (see server.claim_gen) */
	bool in_service;                  /* pool_service() is running: do not recurse */
	bool service_again;               /* something changed meanwhile: run another pass */
	/*
	 * server_login_retry: after a connection error (refused, timeout, reset)
	 * the pool opens no server on that side until retry_timer fires, so a
	 * server that is down is not hammered; waiting clients keep waiting,
	 * bounded by query_wait_timeout, whose error quotes last_error.
	 */
	struct event *retry_timer;  /* pending while the pool waits before its next attempt */
	enum route_side retry_side; /* the side that failed: a switch to the other retries at once */
	char last_error[256];       /* the last connection error; "" after a successful login */
	const struct pool_owner *owner; /* NULL: one of its database's pools */
	void *owner_arg;                /* what the owner keeps for it */
	/* transaction pooling: LISTENs of its clients (listen.h); NULL until the first */
	struct listener *listener;
};

/* The pool of (db, user), created on first use; NULL when out of memory. */
struct pool *pool_get(struct database *db, const char *user);
/* A pool of (db, user) that 'owner' runs (see struct pool_owner); NULL when out of memory. */
struct pool *pool_new_owned(struct database *db, const char *user, const struct pool_owner *owner,
			    void *arg);

/*
 * A server logged in: remember what it reported (see struct pool_welcome);
 * the pool's last connection error is forgotten.
 */
void pool_remember_welcome(struct pool *pool, struct server *s);
/* The remembered welcome for this client's parameters on the current side, or NULL. */
struct params_snap *pool_find_welcome(const struct pool *pool, const struct client *c);

/* A client needs a server: queue it and let pool_service() find one. */
void pool_request_server(struct client *c);
/*
 * Hand idle servers to waiting clients, open new servers where the pool has
 * room, replace idle servers opened with other startup parameters.
 */
void pool_service(struct pool *pool);
/* A server failed to log in: fail the clients waiting for it. */
void pool_login_failed(struct pool *pool, const struct params_snap *startup, const char *sqlstate,
		       const char *message);
/*
 * A server of this pool could not connect ('message' says why: refused,
 * server_connect_timeout, reset before login): open no other on that side
 * for server_login_retry.  The waiting clients are not failed: they are
 * served once an attempt succeeds, or get query_wait_timeout's error.
 * Call it before closing the server, so that closing opens no replacement.
 */
void pool_connect_failed(struct pool *pool, enum route_side side, const char *message);
/*
 * Whether the pool may open another server now: under pool_size,
 * max_db_connections and max_user_connections.
 */
bool pool_can_open(const struct pool *pool);
/* The pool waits out server_login_retry on its current side. */
bool pool_retry_pending(const struct pool *pool);
/*
 * Clients of the pool waiting for something to run: queued for a server, or
 * (session pooling) holding one while their database is held by PAUSE or a
 * switch.  For SHOW DATABASES, SHOW POOLS and the metrics.
 */
int pool_waiting_clients(const struct pool *pool);
/* Free a pool (at exit; its clients and servers are gone). */
void pool_free(struct pool *pool);
/* A side of the pool's database moved: what its servers reported no longer welcomes anyone. */
void pool_forget_welcomes(struct pool *pool, enum route_side side);

#endif /* PGCUTOVER_POOL_H */

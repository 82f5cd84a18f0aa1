/*
 * pool.h - databases, their routes, and the server connection pools.
 *
 * A struct database is one [database "name"] section: where its source and
 * target are and which side it is routed to.  A struct pool holds the server
 * connections of one (database, user) pair and the clients of that pair, each
 * on the list of its state.  pool_service() is the single place that hands
 * idle servers to waiting clients and opens new server connections.
 */
#ifndef PGCUTOVER_POOL_H
#define PGCUTOVER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/core/conninfo.h"
#include "proxy/core/list.h"
#include "proxy/core/route.h"
#include "proxy/core/params.h"

/* Welcome messages remembered per pool (distinct startup parameter sets). */
#define POOL_WELCOME_MAX 32

struct client;
struct server;
struct db_config;
struct cutover;
struct event;

/* Result classes of the switch counters: a bounded label set for the metrics. */
enum switch_class {
	SWITCH_OK,      /* a switch that flipped the route */
	SWITCH_FAILED,  /* a switch that failed or was aborted before its flip */
	SWITCH_DRY_RUN, /* a DRY RUN, whatever its outcome */
	SWITCH_NCLASSES
};

/* Per-database counters behind SHOW STATS and the metrics. */
struct db_stats {
	uint64_t xact_count;    /* transactions completed (ReadyForQuery 'I' after work) */
	uint64_t query_count;   /* Query and Sync messages sent to servers */
	uint64_t bytes_in;      /* bytes received from clients */
	uint64_t bytes_out;     /* bytes sent to clients */
	uint64_t xact_time_us;  /* summed transaction time */
	uint64_t query_time_us; /* summed query time */
	/*
	 * Switches since start by result class: monotonic counters, kept apart
	 * from the bounded history of SHOW SWITCHES so that they never go down.
	 */
	uint64_t switches[SWITCH_NCLASSES];
	bool have_last_switch;     /* the phase times below are those of a real switch */
	int64_t last_switch_ms[4]; /* paused, drain, lag wait, sequence sync of the latest one */
};

struct database {
	struct list_node node;       /* in rt.databases */
	char *name;                  /* the name clients put in dbname */
	const struct db_config *cfg; /* its section in rt.cfg; refreshed on reload */
	struct backend_addr addr[2]; /* indexed by enum route_side */
	/*
	 * Bumped when a reload changes that side's address (host, port, dbname,
	 * credentials): servers opened with an older generation are retired, idle
	 * ones at once, busy ones when released, so that no new session or
	 * transaction lands on the old address (see server_current()).
	 */
	unsigned addr_gen[2];
	enum route_side route;  /* the side new server connections go to */
	struct list_node pools; /* struct pool of this database */
	bool removed;           /* dropped from the config: refuse new clients */
	int pool_size;          /* from the config in force (kept if the section goes) */
	int pool_mode;          /* enum pool_mode, likewise */
	struct db_stats stats;
	bool admin_paused;  /* PAUSE from the admin console */
	bool switch_paused; /* a SWITCH holds new transactions */
	/*
	 * Called (on the loop) whenever a transaction or request of this database
	 * ends while it is paused, so PAUSE and SWITCH learn when it has drained.
	 */
	void (*on_progress)(struct database *db);
	struct cutover *on_progress_owner; /* the switch running on this database, if any */
};

/* New transactions of this database are held (PAUSE or SWITCH). */
static inline bool pool_db_paused(const struct database *db)
{
	return db->admin_paused || db->switch_paused;
}

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

struct pool {
	struct list_node node; /* in db->pools */
	struct database *db;
	char *user;                       /* the client user this pool serves */
	struct list_node idle_servers;    /* SV_IDLE: logged in, clean, unlinked */
	struct list_node active_servers;  /* SV_ACTIVE: linked to a client */
	struct list_node new_servers;     /* SV_CONNECT, SV_LOGIN, SV_RESET: not usable yet */
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
};

/* Create the databases of rt.cfg, or refresh them after a reload. */
bool pool_apply_config(char *errbuf, size_t errlen) __attribute__((warn_unused_result));

struct database *pool_find_db(const char *name);
/* The pool of (db, user), created on first use; NULL when out of memory. */
struct pool *pool_get(struct database *db, const char *user);

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
/* The pool waits out server_login_retry on its current side. */
bool pool_retry_pending(const struct pool *pool);
/* The max_db_connections in force for db (0 = unlimited). */
int pool_db_max_connections(const struct database *db);
/*
 * Number of transactions or requests of this database still running: servers
 * linked to a client and not at a transaction boundary.
 */
int pool_db_in_flight(const struct database *db);
/* Something ended: tell the pauser if the database is paused. */
void pool_note_progress(struct database *db);
/* Release held clients after PAUSE/SWITCH: forward what they sent meanwhile. */
void pool_db_resume(struct database *db);

/* Free every database and pool (at exit; clients and servers are gone). */
void pool_free_all(void);

#endif /* PGCUTOVER_POOL_H */

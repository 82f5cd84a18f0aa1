/*
 * database.h - the logical databases (database.c): one per [database
 * "name"] section, where its source and target are, which side it is routed
 * to, whether its new transactions are held, and the API through which a
 * switch checks and moves its sessions.
 */
#ifndef PGCUTOVER_DATABASE_H
#define PGCUTOVER_DATABASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/conninfo.h"
#include "proxy/core/list.h"
#include "proxy/core/route.h"

struct config;
struct db_config;
struct shadow_db;

/* Per-database counters behind SHOW STATS and the metrics. */
struct db_stats {
	uint64_t xact_count;       /* transactions completed (ReadyForQuery 'I' after work) */
	uint64_t query_count;      /* Query and Sync messages sent to servers */
	uint64_t bytes_in;         /* bytes received from clients */
	uint64_t bytes_out;        /* bytes sent to clients */
	uint64_t xact_time_us;     /* summed transaction time */
	uint64_t query_time_us;    /* summed query time */
	uint64_t notifications;    /* notifications delivered to clients by listeners (listen.h) */
	uint64_t notify_overflows; /* clients closed for not reading their notifications */
};

/*
 * Why new transactions of a database are held: bits of database.holds.  A
 * database runs again once no bit is left.
 */
enum db_hold {
	DB_HOLD_PAUSE = 1u << 0,  /* PAUSE from the admin console */
	DB_HOLD_SWITCH = 1u << 1, /* a SWITCH, from its drain to its resume */
	/*
	 * A database seen for the first time (start-up, or a new section on
	 * reload) until pgcutover has made sure the side it is routed to
	 * carries no fence left by a switch that was cut short.
	 */
	DB_HOLD_GUARD = 1u << 2,
	/*
	 * The fleet (several instances, admin/cutover/fleet_follow.c): another
	 * instance's switch of the database runs, or this instance has not yet
	 * read the fleet's route for it.
	 */
	DB_HOLD_FLEET = 1u << 3,
	DB_HOLD_LISTEN = 1u << 4, /* after a flip, until its listeners listen on the new side */
};

/*
 * The session-state checks a switch runs on a database's sessions before it
 * moves them (db_check_sessions): how many are still out, and whom to
 * tell when the last one answers.
 */
struct db_checks {
	int pending;
	void (*done)(void *arg);
	void *arg;
};

/* The gap of the running switch, as clients see it (switch_gap.h). */
struct db_gap {
	uint64_t first_hold_us; /* the first transaction the switch held (0: none yet) */
	uint64_t last_start_us; /* the last held one sent to a server on the new side */
	int pending;            /* held clients released and not started there yet */
	bool armed;             /* the switch released the database: count what it held */
};

struct database {
	struct list_node node;       /* in rt.databases */
	char *name;                  /* the name clients put in dbname */
	const struct db_config *cfg; /* its section; refreshed on reload (NULL once removed) */
	struct config *cfg_owner;    /* the config 'cfg' lives in: a reference held */
	struct backend_addr addr[2]; /* indexed by enum route_side */
	/*
	 * Bumped when a reload changes that side's address (host, port, dbname,
	 * credentials): servers opened with an older generation are retired, idle
	 * ones at once, busy ones when released, so that no new session or
	 * transaction lands on the old address (see server_current()).
	 */
	unsigned addr_gen[2];
	enum route_side route; /* the side new server connections go to */
	/*
	 * What its route file says (side "source" and nothing else when it has
	 * none): read at start-up, rewritten by each switch.  A switch back
	 * compares the side's transaction IDs with new_side_xid.
	 */
	struct route_state recorded;
	struct list_node pools; /* struct pool of this database */
	bool removed;           /* dropped from the config: refuse new clients */
	int pool_size;          /* from the config in force (kept if the section goes) */
	int pool_mode;          /* enum pool_mode, likewise */
	struct db_stats stats;
	unsigned holds;          /* enum db_hold bits: new transactions are held */
	struct db_checks checks; /* session checks of a switch in progress */
	struct db_gap gap;       /* what clients see of a switch: switch_gap.h */
	bool busy;               /* a switch runs on it: a reload may not remove it */
	bool added;              /* new in this db_apply_config(): for the added hook */
	/* schema changes seen since start: let through / refused with ddl = block (ddl.h) */
	uint64_t ddl_passed;
	uint64_t ddl_blocked;
	/* shadow reads: the share of read-only transactions sampled (the shadow key, cached) */
	double shadow_rate;
	struct shadow_db *shadow; /* shadow reads' books (shadow.h); NULL until first needed */
	/*
	 * Held, but query_wait_timeout counts for its waiting clients anyway (a
	 * fleet's database held while the fleet database cannot be read): a
	 * hold normally stops those clocks.
	 */
	bool hold_times_out;
	int listen_moves; /* listeners still moving to the new side (DB_HOLD_LISTEN) */
};

/* New transactions of this database are held (PAUSE or SWITCH). */
/* Whether the clients of a held database wait without a limit (see hold_times_out). */
static inline bool db_hold_stops_clocks(const struct database *db)
{
	return db->holds != 0 && !db->hold_times_out;
}

static inline bool db_paused(const struct database *db)
{
	return db->holds != 0;
}

/*
 * Create the databases of rt.cfg, or refresh them after a reload.  False
 * with a message in errbuf when nothing could be applied.  A database a
 * switch runs on keeps its whole section when the new one changes what the
 * switch depends on (source, target, replication_slot, lag_method,
 * marker_table, sequence_sync, sequence_margin): 'refused' then names the
 * database and the keys ("" when nothing was refused).
 */
bool db_apply_config(char *errbuf, size_t errlen, char *refused, size_t refusedlen)
	__attribute__((warn_unused_result));
/* The database clients name, or NULL (a removed section counts as none). */
struct database *db_find(const char *name);
/* The max_db_connections in force for db (0 = unlimited). */
int db_max_connections(const struct database *db);

/*
 * Number of transactions or requests of this database still running: servers
 * linked to a client and not at a transaction boundary.
 */
int db_in_flight(const struct database *db);
/* Something ended: tell the progress hook if the database is held. */
void db_note_progress(struct database *db);
/*
 * Who is told whenever a transaction or request of a held database ends, so
 * that PAUSE and SWITCH learn when it has drained (the cutover engine, which
 * registers itself at start-up).  Called on the loop, never from inside
 * db_hold().
 */
void db_set_progress_hook(void (*hook)(struct database *db));
/*
 * Who is told of every database a reload adds (the cutover engine's guard
 * against a fence left on the side routed to).  Called at the end of
 * db_apply_config(), once the database has its section.
 */
void db_set_added_hook(void (*hook)(struct database *db));
/* Hold new transactions of db for this reason (enum db_hold). */
void db_hold(struct database *db, unsigned why);
/*
 * Drop one reason to hold; once none is left, held clients are released and
 * what they sent meanwhile is forwarded.
 */
void db_release(struct database *db, unsigned why);

/*
 * The process IDs of pgcutover's own server connections to one side of db
 * (at most max of them, into out; how many were written): a fence spares them.
 */
size_t db_server_pids(const struct database *db, enum route_side side, uint32_t *out, size_t max);
/* Server connections of db, in any state, on either side. */
size_t db_server_count(const struct database *db);

/*
 * A switch asks, at a boundary with the database held and drained, whether
 * each session linked to a server on 'side' that has a transaction waiting
 * (held) holds state that can move to the other side (session.h): the
 * checks run in parallel on those servers.  Idle sessions are not checked
 * here: they move after the resume (relocate.h).
 * done(arg) is called once the last one has answered, never from inside this
 * call.  Returns how many were started; with 0, done is never called.
 */
int db_check_sessions(struct database *db, enum route_side side, void (*done)(void *arg), void *arg);
/* A switch that failed forgets its checks: the sessions stay where they are. */
void db_cancel_checks(struct database *db);
/*
 * After the flip to db->route: each session linked to a server on the old
 * side that was checked moves (or, when its check found state that cannot
 * move, is closed with a FATAL that says why); sessions without a server
 * move by themselves; the old side's idle servers close.  *moved and
 * *closed count the sessions.  Sessions left on the old side (idle: not
 * checked) are db_relocate_start()'s.
 */
void db_move_sessions(struct database *db, int *moved, int *closed);

/* A listener that held the database after a flip has moved (or failed to). */
void db_listener_moved(struct database *db);

/* Free every database and its pools (at exit; clients and servers are gone). */
void db_free_all(void);

#endif /* PGCUTOVER_DATABASE_H */

/*
 * fleet.h - several pgcutover instances in front of the same databases,
 * switching them as one, coordinated through a PostgreSQL database (the
 * fleet database, `fleet` in [pgcutover]; see fleet_sql.h for its tables
 * and docs/fleet.md for the picture).
 *
 * fleet.c is what every instance does: a heartbeat and a poll of the
 * fleet's databases (LISTEN/NOTIFY wakes it up, the poll is the truth).
 * fleet_follow.c is, for a switch that another instance coordinates, the
 * follower's side: hold, drain, capture, acknowledge, then flip on the
 * decision or resume on the old side on the abort, or take the abort over
 * from a coordinator whose lease expired.  fleet_switch.c is the
 * coordinator's side, as phases of the switch engine (engine.h).
 *
 * With `fleet` empty every function here does nothing and pgcutover is a
 * single instance, exactly as without this file.
 */
#ifndef PGCUTOVER_FLEET_H
#define PGCUTOVER_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "admin/cutover/control.h"

struct database;

/* Whether a fleet is configured. */
bool fleet_on(void);
/* This instance's name in the fleet (instance_name, or <hostname>:<listen_port>). */
const char *fleet_me(void);
/* The fleet's conninfo and lease in force. */
const char *fleet_conninfo(void);
int64_t fleet_lease_ms(void);

/*
 * Start being a member: the schema is made if missing, the heartbeat and
 * the poll begin, and every database is held until the fleet's route for
 * it has been read once (at most fleet_lease: then the route file's route
 * serves, with a warning).  Called from cutover_init().
 */
void fleet_start(void);
void fleet_stop(void);

/* A database a reload added: held until the fleet's route for it has been read. */
void fleet_added(struct database *db);
/* A transaction of a held database ended (the engine's progress hook). */
void fleet_progress(struct database *db);
/* Poll now rather than at the next beat (a coordinator changed something). */
void fleet_poll_soon(void);

/* Queue a query on this instance's fleet connection (SHOW FLEET); false when out of memory. */
bool fleet_query(const char *sql, control_cb cb, void *arg) __attribute__((warn_unused_result));

/* For SHOW FLEET and the metrics. */
int fleet_live_instances(void);                 /* at the last poll; -1 before any */
int64_t fleet_heartbeat_age_ms(void);           /* since the last successful beat; -1 before any */
int64_t fleet_epoch(const struct database *db); /* the last epoch seen; -1 when unknown */

#endif /* PGCUTOVER_FLEET_H */

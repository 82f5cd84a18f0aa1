-- fleet-schema.sql - the tables of a pgcutover fleet (docs/fleet.md).
--
-- pgcutover creates them itself, the first time an instance with `fleet` set
-- reaches the fleet database, when its user may (CREATE on the database).
-- Otherwise an operator runs this file there once, as a role that may, and
-- grants the fleet's user SELECT, INSERT, UPDATE on the three tables and
-- USAGE on the schema.  The text is the same as pgcutover's own (a unit test
-- holds the two together).

SELECT pg_catalog.pg_advisory_xact_lock(7173826221);

CREATE SCHEMA IF NOT EXISTS pgcutover;

-- one row per instance: its heartbeat, and what it serves
CREATE TABLE IF NOT EXISTS pgcutover.instances (
    name text PRIMARY KEY,
    address text NOT NULL DEFAULT '',
    started timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now(),
    dbs text[] NOT NULL DEFAULT '{}',
    routes text[] NOT NULL DEFAULT '{}',
    paused boolean[] NOT NULL DEFAULT '{}'
);

-- one row per logical database: the route every instance follows, and the
-- switch of its latest epoch
CREATE TABLE IF NOT EXISTS pgcutover.databases (
    db text PRIMARY KEY,
    route text NOT NULL CHECK (route IN ('source', 'target')),
    epoch bigint NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'idle'
        CHECK (state IN ('idle', 'pausing', 'decided', 'aborting', 'aborted')),
    switch_to text CHECK (switch_to IN ('source', 'target')),
    coordinator text,
    lease_until timestamptz,
    updated timestamptz NOT NULL DEFAULT now()
);

-- who paused and drained for which switch, and its servers on the old side
CREATE TABLE IF NOT EXISTS pgcutover.acks (
    db text NOT NULL,
    epoch bigint NOT NULL,
    instance text NOT NULL,
    ok boolean NOT NULL,
    detail text NOT NULL DEFAULT '',
    pids integer[] NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (db, epoch, instance)
);

"""Helpers of the fleet tests: a fleet database on the target cluster, and
several pgcutover instances (on loopback, each with its own state_dir) in
front of one replicated database, each under its own pgbench load."""

import os
import time

import psycopg
from psycopg import sql

from pgutil import PASSWORDS, Cluster
from replication import admin, cutover_proxy, route_of, wait_until

FLEET_DB = "pgcutover_fleet"


def start_fleet_cluster():
    """A third PostgreSQL cluster for the fleet database alone, so that a
    test can stop it without touching replication."""
    c = Cluster("fleet")
    c.init()
    c.start()
    c.setup_roles()
    return c


def fleet_conninfo(cluster):
    return (f"host=127.0.0.1 port={cluster.port} dbname={FLEET_DB} user=pgcutover "
            f"password={PASSWORDS['pgcutover']}")


def create_fleet_db(cluster):
    with cluster.admin_connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(FLEET_DB)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER pgcutover").format(
            sql.Identifier(FLEET_DB)))


def drop_fleet_db(cluster):
    if not cluster.started:
        return
    with cluster.admin_connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(FLEET_DB)))


def fleet_rows(cluster, db):
    """The fleet database's row of db: (route, epoch, state, coordinator)."""
    with psycopg.connect(fleet_conninfo(cluster), autocommit=True) as c:
        return c.execute("SELECT route, epoch, state, coordinator FROM pgcutover.databases "
                         "WHERE db = %s", (db,)).fetchone()


def start_fleet(proxy_factory, rdb, fleet_cluster, n=3, lease="3s", pool_mode="session",
                **section):
    """n instances named i0..i(n-1) of one fleet, in front of rdb."""
    out = []
    for k in range(n):
        p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, name=f"fleet-{k}",
                          settings={"fleet": fleet_conninfo(fleet_cluster),
                                    "instance_name": f"i{k}", "fleet_lease": lease},
                          **section)
        out.append(p)
    # every one is a live member before a test switches
    wait_until(lambda: all(len(admin(p.admin_port, "SHOW FLEET")) >= n for p in out)
               and live_count(out[0]) == n, 15, what="every instance live in the fleet")
    return out


def live_count(p):
    return len({r["instance"] for r in admin(p.admin_port, "SHOW FLEET") if r["live"] == "yes"})


def wait_routes(proxies, db, route, timeout=15):
    wait_until(lambda: all(route_of(p.admin_port, db) == (route, "running") for p in proxies),
               timeout, what=f"every instance routing {db} to its {route}")


def nothing_lost(rdb, side, results, table="pgbench_history"):
    """Rows on the side routed to against the transactions the pgbench logs
    say committed, added up over every instance."""
    committed = sum(len(r.completion_times()) for r in results)
    with (rdb.src() if side == "source" else rdb.tgt()) as c:
        rows = c.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                         ).fetchone()[0]
    return rows, committed


__all__ = ["FLEET_DB", "start_fleet_cluster", "fleet_conninfo", "create_fleet_db", "drop_fleet_db", "fleet_rows",
           "start_fleet", "live_count", "wait_routes", "nothing_lost", "os", "time"]

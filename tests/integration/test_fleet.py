"""Several pgcutover instances switch a database as one (issue 12).

Three instances on loopback (i0, i1, i2), each with its own state_dir, in
front of one logically replicated database, coordinated through a fleet
database on the target cluster; each instance under its own pgbench load
with a per-transaction log.  After every test the rows on the side routed
to are added up against the three logs: nothing acknowledged is lost.
SIGKILL and SIGSTOP stand in for crashes and partitions.
"""

import signal
import threading
import time

import psycopg
import pytest

from fleetutil import (create_fleet_db, drop_fleet_db, fleet_rows, nothing_lost, start_fleet,
                       wait_routes)
from replication import (AdminError, Pgbench, admin, replicated_fixtures, route_of, switch,
                         wait_until)

DB = "cut_fleet"


def _reset(repl):
    repl.truncate_history()


repl, rdb = replicated_fixtures(DB, reset=_reset)


@pytest.fixture
def fleet_db(rdb):
    create_fleet_db(rdb.target)
    yield rdb.target
    drop_fleet_db(rdb.target)


def loads(proxies, seconds, clients=3):
    return [Pgbench(p.port, DB, clients=clients, seconds=seconds, log=True) for p in proxies]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_plain_switch_moves_every_instance(proxy_factory, rdb, fleet_db, mode):
    """SWITCH on i0: all three pause, the decision is committed, all three
    route to the target; 0 failed transactions, 0 closed sessions, the
    target holds every transaction the three logs saw committed."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, pool_mode=mode)
    benches = loads(ps, 5)
    for b in benches:
        b.start()
    time.sleep(1.5)
    row = switch(ps[0], rdb)
    results = [b.wait() for b in benches]
    assert row["result"] == "ok", row
    assert row["instances"] == "3" and row["instances_acked"] == "3", row
    assert row["sessions_closed"] == "0", row
    for r in results:
        assert r.rc == 0 and r.failed == 0, r.stdout
    wait_routes(ps, DB, "target")
    assert fleet_rows(fleet_db, DB)[0] == "target"
    rows, committed = nothing_lost(rdb, "target", results)
    assert rows == committed, (rows, committed)
    # SHOW SWITCHES on the followers knows nothing of it, SHOW FLEET does
    fl = admin(ps[1].admin_port, "SHOW FLEET")
    assert {(r["instance"], r["route"]) for r in fl if r["db"] == DB} == \
        {("i0", "target"), ("i1", "target"), ("i2", "target")}, fl

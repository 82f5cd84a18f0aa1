"""Several pgcutover instances switch a database as one (issue 12).

Three instances on loopback (i0, i1, i2), each with its own state_dir, in
front of one logically replicated database, coordinated through a fleet
database on the target cluster; each instance under its own pgbench load
with a per-transaction log.  After every test the rows on the side routed
to are added up against the three logs: nothing acknowledged is lost.
SIGKILL and SIGSTOP stand in for crashes and partitions.
"""

import os
import signal
import threading
import time

import psycopg
import pytest

from fleetutil import (create_fleet_db, drop_fleet_db, fleet_conninfo, fleet_rows, nothing_lost,
                       start_fleet, start_fleet_cluster, wait_routes)
from proxyutil import SLOW
from test_reference import reference_commands
from replication import (AdminError, Pgbench, admin, apply_stalled, replicated_fixtures,
                         route_of, server_port, switch, wait_until)

DB = "cut_fleet"


def _reset(repl):
    repl.truncate_history()


repl, rdb = replicated_fixtures(DB, reset=_reset)


@pytest.fixture(scope="module")
def fleet_cluster():
    c = start_fleet_cluster()
    yield c
    c.cleanup()


@pytest.fixture
def fleet_db(rdb, fleet_cluster):
    """A fresh fleet database (on a cluster of its own) for each test; the
    source unfenced afterwards."""
    if not fleet_cluster.started:
        fleet_cluster.start()
    create_fleet_db(fleet_cluster)
    yield fleet_cluster
    if not fleet_cluster.started:
        fleet_cluster.start()
    drop_fleet_db(fleet_cluster)
    rdb.unfence()


# Each instance's load writes rows nobody else's touches: an instance frozen
# (SIGSTOP) inside a transaction would otherwise hold row locks (pgbench's
# single branch row) that block the other instances' transactions, so that
# their drains could only time out, as they would in production (docs/fleet.md).
INSERT_SCRIPT = """\
\\set aid random(1, 100000 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);
INSERT INTO orders (note) VALUES ('fleet');
END;
"""


CLIENTS = 3  # per instance


def loads(proxies, seconds, clients=CLIENTS):
    return [Pgbench(p.port, DB, clients=clients, seconds=seconds, log=True, script=INSERT_SCRIPT)
            for p in proxies]


def kill(p):
    """SIGKILL p, a crash: its clients' transactions in flight are in doubt."""
    p.proc.kill()
    p.proc.wait(timeout=10)
    p.expect_exit = True


def nothing_lost_but_in_doubt(rdb, side, results, clients=CLIENTS):
    """After i0 was killed (kill): the other instances' clients saw no error,
    and the rows on the side routed to are those the logs saw committed, give
    or take the killed instance's transactions in doubt (committed with their
    answer lost, at most one per client): more rows, never fewer."""
    for r in results[1:]:
        assert r.rc == 0 and r.failed == 0, r.stdout
    if side == "source":
        rdb.wait_caught_up()
    rows, committed = nothing_lost(rdb, side, results)
    assert committed <= rows <= committed + clients, (rows, committed)


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
    # SHOW SWITCHES on every instance shows the switch (a follower: instances 0)
    for p in ps[1:]:
        rows = [r for r in admin(p.admin_port, "SHOW SWITCHES") if r["db"] == DB]
        assert rows and rows[-1]["result"] == "ok" and rows[-1]["to"] == "target", rows
        assert rows[-1]["instances"] == "0" and int(rows[-1]["paused_ms"]) > 0, rows[-1]
    # SHOW FLEET knows where each instance routes it, with the documented columns
    fl = admin(ps[1].admin_port, "SHOW FLEET")
    assert list(fl.columns) == reference_commands()["SHOW FLEET"][1], fl.columns
    assert {(r["instance"], r["route"]) for r in fl if r["db"] == DB} == \
        {("i0", "target"), ("i1", "target"), ("i2", "target")}, fl


# -- faults ---------------------------------------------------------------------------


def fenced(rdb, side):
    """Whether a direct session as alice is read-only on that side."""
    cluster = rdb.source if side == "source" else rdb.target
    with psycopg.connect(cluster.conninfo(user="alice", dbname=DB), autocommit=True) as c:
        return c.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"


def switch_in_thread(p, rdb, extra=""):
    out = {}

    def run():
        try:
            out["row"] = switch(p, rdb, extra)
        except Exception as e:  # the test looks at it
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


@pytest.mark.timeout(120)
def test_coordinator_killed_before_the_decision(proxy_factory, rdb, fleet_db):
    """i0 is killed in its lag wait (after its fence, before the decision):
    i1 and i2 take the abort over once its lease expires, lift the source's
    fence first, and resume there within fleet_lease plus a second; their
    clients see no error; nothing any log saw committed is missing."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="2s", lag_timeout="60s")
    benches = loads(ps, 10)
    for b in benches:
        b.start()
    time.sleep(1.0)
    with apply_stalled(rdb):
        mark = ps[0].log_mark()
        t, out = switch_in_thread(ps[0], rdb)
        assert ps[0].wait_log(r"the source is fenced", since=mark, timeout=15)
        assert fenced(rdb, "source")
        kill(ps[0])
        t_kill = time.monotonic()
        wait_until(lambda: all(route_of(p.admin_port, DB) == ("source", "running")
                               for p in ps[1:]), 10, what="i1 and i2 running on the source")
        took = time.monotonic() - t_kill
    assert took <= (2.0 + 1.0) * SLOW + 0.5, took
    assert fleet_rows(fleet_db, DB)[2] == "aborted"
    assert not fenced(rdb, "source")
    results = [b.wait() for b in benches]
    nothing_lost_but_in_doubt(rdb, "source", results)


@pytest.mark.timeout(120)
def test_coordinator_killed_after_the_decision(proxy_factory, rdb, fleet_db):
    """i0 is killed as soon as it logs the decision: i1 and i2 flip to the
    target; i0, restarted with whatever its route file says, serves the
    target from its first client; nothing is lost."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="2s")
    benches = loads(ps, 6)
    for b in benches:
        b.start()
    time.sleep(1.0)
    mark = ps[0].log_mark()
    t, out = switch_in_thread(ps[0], rdb)
    assert ps[0].wait_log(r"decided, route target", since=mark, timeout=20)
    kill(ps[0])
    wait_routes(ps[1:], DB, "target")
    results = [b.wait() for b in benches]
    ps[0].expect_exit = False
    ps[0].start()
    with ps[0].connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port
    assert route_of(ps[0].admin_port, DB) == ("target", "running")
    nothing_lost_but_in_doubt(rdb, "target", results)


@pytest.mark.timeout(120)
def test_follower_stopped_before_the_switch(proxy_factory, rdb, fleet_db):
    """i2 is stopped (SIGSTOP) for longer than fleet_lease before the switch:
    the switch goes on without it (2 instances); once continued, its old
    sessions on the source are gone (the fence) and a new one cannot write
    there, it learns the route within a heartbeat and serves the target;
    nothing any of the three logs saw committed is lost."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="2s")
    benches = loads(ps, 8)
    for b in benches:
        b.start()
    time.sleep(1.0)
    ps[2].signal(signal.SIGSTOP)
    try:
        time.sleep(2.5)
        row = switch(ps[0], rdb)
        assert row["result"] == "ok" and row["instances"] == "2", row
        assert fenced(rdb, "source")
    finally:
        ps[2].signal(signal.SIGCONT)
    wait_routes(ps, DB, "target", timeout=5)
    with ps[2].connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port
    results = [b.wait() for b in benches]
    for r in results[:2]:
        assert r.rc == 0 and r.failed == 0, r.stdout
    rows, committed = nothing_lost(rdb, "target", results)
    assert rows == committed, (rows, committed)


@pytest.mark.timeout(120)
def test_follower_stopped_during_the_drain(proxy_factory, rdb, fleet_db):
    """i1 is stopped as the switch starts: it never says it paused, the
    switch fails when drain_timeout expires, and all three resume on the
    source (i1 once continued); nothing is lost, no client saw an error."""
    # a lease long enough that i1, stopped, is still live when the fleet pause
    # counts the instances (slow builds take seconds from the preparation there)
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="10s", drain_timeout="2s")
    # i1 carries no load: stopped with clients in a transaction, it would fail
    # the preflight's long-transaction check instead; stopped once the
    # preflight has passed, it could have acked the pause already (it is fast)
    benches = loads([ps[0], ps[2]], 8)
    for b in benches:
        b.start()
    time.sleep(1.0)
    ps[1].signal(signal.SIGSTOP)
    t, out = switch_in_thread(ps[0], rdb)
    try:
        t.join(60)
    finally:
        ps[1].signal(signal.SIGCONT)
    err = out.get("error")
    assert isinstance(err, AdminError), out
    assert "fleet drain failed" in err.message and "i1" in err.message, err
    # the follower that paused says so in its own SHOW SWITCHES
    rows = [r for r in admin(ps[2].admin_port, "SHOW SWITCHES") if r["db"] == DB]
    assert rows and rows[-1]["result"] == "aborted", rows
    wait_routes(ps, DB, "source")
    assert fleet_rows(fleet_db, DB)[2] == "aborted"
    assert not fenced(rdb, "source")
    results = [b.wait() for b in benches]
    for r in results:
        assert r.rc == 0 and r.failed == 0, r.stdout
    rows, committed = nothing_lost(rdb, "source", results)
    assert rows == committed, (rows, committed)


@pytest.mark.timeout(150)
def test_fleet_database_stopped_mid_switch(proxy_factory, rdb, fleet_db):
    """The fleet database goes down while i0 waits for the lag: no instance
    resumes on either side meanwhile (each holds the database); once it is
    back, all three converge on one route; nothing is lost."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="2s", lag_timeout="60s")
    benches = loads(ps, 14)
    for b in benches:
        b.start()
    time.sleep(1.0)
    with apply_stalled(rdb):
        mark = ps[0].log_mark()
        t, out = switch_in_thread(ps[0], rdb)
        assert ps[0].wait_log(r"the source is fenced", since=mark, timeout=15)
        fleet_db.stop()
    try:
        time.sleep(3.0)   # longer than the lease: still nobody resumes
        for p in ps:
            assert route_of(p.admin_port, DB)[1] in ("paused", "switching"), \
                route_of(p.admin_port, DB)
    finally:
        fleet_db.start()
    t.join(60)
    wait_until(lambda: len({route_of(p.admin_port, DB) for p in ps}) == 1
               and route_of(ps[0].admin_port, DB)[1] == "running", 20,
               what="the three instances on one route, running")
    side = route_of(ps[0].admin_port, DB)[0]
    results = [b.wait(timeout=60) for b in benches]
    for r in results:
        assert r.rc == 0 and r.failed == 0, r.stdout
    rdb.wait_caught_up() if side == "source" else None
    rows, committed = nothing_lost(rdb, side, results)
    assert rows == committed, (side, rows, committed)
    assert not fenced(rdb, side)


@pytest.mark.timeout(120)
def test_fleet_database_loses_the_switch(proxy_factory, rdb, fleet_db):
    """The fleet database loses the switch's row while i0 waits for the lag
    (as a restore or a failover to a replica behind would): i0 cannot commit
    its decision and says why; the abort is recorded again (by i0 after it
    lifted its fence, or by a follower that lifts it first), and all three
    resume on the source; nothing is lost.  (The fleet's own writes are
    committed with synchronous_commit on: the suite's servers run with it off,
    which made a crash of the fleet database lose the row the same way.)"""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="2s", lag_timeout="60s")
    benches = loads(ps, 10)
    for b in benches:
        b.start()
    time.sleep(1.0)
    with apply_stalled(rdb):
        mark = ps[0].log_mark()
        t, out = switch_in_thread(ps[0], rdb)
        assert ps[0].wait_log(r"the source is fenced", since=mark, timeout=15)
        with psycopg.connect(fleet_conninfo(fleet_db), autocommit=True) as c:
            c.execute("DELETE FROM pgcutover.databases WHERE db = %s", (DB,))
    t.join(60)
    # the lease's renewal or the decision finds the row gone, whichever comes
    # first, or a follower has already taken the lost epoch's abort over
    assert "error" in out and any(m in str(out["error"]) for m in (
        "has lost this switch", "no longer has this switch", "another instance aborted it")), out
    # its own record of the abort, or a follower's that took it over first
    assert ps[0].wait_log(r"fleet epoch \d+ (recorded as )?aborted", since=mark, timeout=15)
    wait_routes(ps, DB, "source")
    wait_until(lambda: all(route_of(p.admin_port, DB) == ("source", "running") for p in ps), 20,
               what="the three instances running on the source")
    row = fleet_rows(fleet_db, DB)
    assert row[0] == "source" and row[2] == "aborted", row
    results = [b.wait(timeout=60) for b in benches]
    for r in results:
        assert r.rc == 0 and r.failed == 0, r.stdout
    rdb.wait_caught_up()
    rows, committed = nothing_lost(rdb, "source", results)
    assert rows == committed, (rows, committed)
    assert not fenced(rdb, "source")


@pytest.mark.timeout(120)
def test_fleet_database_loses_the_switch_of_a_dead_coordinator(proxy_factory, rdb, fleet_db):
    """i0 is killed in its lag wait and the fleet database loses the switch's
    row: nobody can decide it any more, and its coordinator cannot record the
    abort.  i1 and i2, holding for an epoch the fleet no longer has, take its
    abort over (the row made again), lift the source's fence and resume there;
    their clients see no error; nothing is lost."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, lease="3s", lag_timeout="60s")
    benches = loads(ps, 10)
    for b in benches:
        b.start()
    time.sleep(1.0)
    with apply_stalled(rdb):
        marks = [p.log_mark() for p in ps]
        t, out = switch_in_thread(ps[0], rdb)
        assert ps[0].wait_log(r"the source is fenced", since=marks[0], timeout=15)
        kill(ps[0])
        with psycopg.connect(fleet_conninfo(fleet_db), autocommit=True) as c:
            c.execute("DELETE FROM pgcutover.databases WHERE db = %s", (DB,))
        wait_until(lambda: all(route_of(p.admin_port, DB) == ("source", "running")
                               for p in ps[1:]), 10 * SLOW, what="i1 and i2 running on the source")
    assert any(p.wait_log(r"has lost fleet epoch 1", since=m, timeout=1)
               for p, m in zip(ps[1:], marks[1:]))
    row = fleet_rows(fleet_db, DB)
    assert row[0] == "source" and row[1] == 1 and row[2] == "aborted", row
    assert not fenced(rdb, "source")
    results = [b.wait() for b in benches]
    nothing_lost_but_in_doubt(rdb, "source", results)


@pytest.mark.timeout(90)
def test_new_instance_follows_the_fleet_over_its_route_file(proxy_factory, rdb, fleet_db):
    """The fleet is on the target; an instance starts with a route file that
    says source: its very first client is served by the target."""
    ps = start_fleet(proxy_factory, rdb, fleet_db, n=2)
    assert switch(ps[0], rdb)["result"] == "ok"
    wait_routes(ps, DB, "target")
    late = proxy_factory.new(
        settings={"pool_mode": "session", "fleet": fleet_conninfo(fleet_db),
                  "instance_name": "late", "fleet_lease": "3s"},
        databases={DB: rdb.section("lsn")}, name="fleet-late", start=False)
    os.makedirs(os.path.join(late.dir, "state"), exist_ok=True)
    with open(os.path.join(late.dir, "state", f"{DB}.route"), "w") as f:
        f.write("route = source\nswitched_at = 2026-01-01T00:00:00Z\nsource_lsn =\n")
    late.start()
    with late.connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port
    assert route_of(late.admin_port, DB) == ("target", "running")

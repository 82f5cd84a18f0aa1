"""A switch that cannot finish leaves the database routed to its source,
running, with nothing lost, and its error names the phase.

Each test runs a writer (autocommit inserts into `orders` through the proxy)
across the failed switch: it must see delays at most, never an error, and
every row it saw committed must be on the source.

How the lag is kept from reaching zero while the slot stays active (the
preflight refuses an inactive slot): the target's apply worker is held on a
lock (replication.apply_stalled).  With lag_method=marker, the subscription
is simply disabled.  "The target goes down during the lag wait" is a third
cluster, dedicated to that test, stopped with `pg_ctl -m immediate` while
the switch waits for its lag.
"""

import os
import re
import threading
import time

import pytest

from pgutil import Cluster, free_port
from replication import (replicated_fixtures, AdminError, ReplicatedDB, Writer, admin, admin_connect, admin_query,
                         apply_stalled, cutover_proxy, route_of, server_port, switch, wait_until)

DB = "cut_fail"


def _truncate_orders(repl):
    with repl.src() as s:
        s.execute("TRUNCATE orders")


repl, rdb = replicated_fixtures(DB, reset=_truncate_orders)


def assert_on_source_and_running(p, db, writer=None):
    """Routed to the source, running, queries land there, nothing lost."""
    assert route_of(p.admin_port, db.name) == ("source", "running")
    with p.connect(dbname=db.name) as c:
        assert server_port(c) == db.source.port
        c.execute("INSERT INTO orders (note) VALUES ('after the failed switch')")
    if writer is not None:
        assert writer.ids, "the writer committed nothing"
        assert writer.ports == {db.source.port}, writer.ports
        with db.src() as s:
            got = {r[0] for r in s.execute("SELECT id FROM orders WHERE note = %s",
                                           (writer.note,))}
        assert got == set(writer.ids), (
            f"{len(set(writer.ids) - got)} committed rows missing on the source")
    failed = [r for r in admin(p.admin_port, "SHOW SWITCHES") if r["db"] == db.name]
    assert failed and failed[-1]["result"] != "ok", failed
    assert failed[-1]["error"], failed[-1]


def check_sqlstate(err):
    """An ErrorResponse always carries a SQLSTATE (PRODUCT.md, admin console).
    Checked last, so that a missing one does not hide the other checks."""
    assert re.fullmatch(r"[0-9A-Z]{5}", err.sqlstate or ""), \
        f"ErrorResponse without a valid SQLSTATE: {err.sqlstate!r} ({err.message})"


def expect_switch_error(p, db, extra="", conn=None):
    t0 = time.monotonic()
    with pytest.raises(AdminError) as ei:
        switch(p, db, extra, conn=conn)
    print(f"SWITCH {db.name} {extra}: {ei.value}")
    return ei.value, time.monotonic() - t0


@pytest.mark.timeout(60)
def test_target_down_at_preflight(proxy_factory, rdb):
    dead = free_port()       # nobody listens there
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session",
                      target=f"host=127.0.0.1 port={dead} dbname={DB}")
    w = Writer(p, DB, note="preflight-writer")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        err, took = expect_switch_error(p, rdb)
        assert "preflight" in err.message, err
        assert took < 15, took
        time.sleep(0.2)
    finally:
        w.stop()
    assert_on_source_and_running(p, rdb, w)
    # A failed preflight paused nothing.
    assert w.max_latency < 1.0, w.max_latency
    check_sqlstate(err)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["marker_subscription_disabled", "lsn_apply_stalled"])
def test_lag_never_reaches_zero(proxy_factory, rdb, how):
    """lag_timeout=2s expires: the switch fails in its lag wait and traffic
    resumes on the source; the clients held meanwhile get no error."""
    if how.startswith("marker"):
        p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_method="marker",
                          lag_timeout="2s")
    else:
        p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_timeout="2s")
    w = Writer(p, DB, note="lag-writer")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        if how.startswith("marker"):
            rdb.set_subscription(False)
            with rdb.src() as s:
                s.execute("INSERT INTO orders (note) VALUES ('not replicated')")
            err, took = expect_switch_error(p, rdb)
        else:
            with apply_stalled(rdb):
                err, took = expect_switch_error(p, rdb)
        assert "lag wait" in err.message and "lag_timeout" in err.message, err
        assert 2.0 <= took < 8.0, took
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the failure")
    finally:
        w.stop()
    # The writer was held (about lag_timeout) but never failed.
    assert w.max_latency >= 1.5, w.max_latency
    assert_on_source_and_running(p, rdb, w)
    check_sqlstate(err)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_open_transaction_past_drain_timeout(proxy_factory, rdb, pool_mode):
    """drain_timeout=1s runs out while a transaction is open: the switch
    fails in its drain, the open transaction is not killed and commits."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, drain_timeout="1s")
    w = Writer(p, DB, note="drain-writer")
    with p.connect(dbname=DB) as open_tx:
        open_tx.execute("BEGIN")
        open_tx.execute("INSERT INTO orders (note) VALUES ('open-tx-1')")
        w.start()
        try:
            wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
            err, took = expect_switch_error(p, rdb)
            assert "drain" in err.message, err
            assert 1.0 <= took < 6.0, took
            # Still usable, still on the source, and it commits.
            open_tx.execute("INSERT INTO orders (note) VALUES ('open-tx-2')")
            assert server_port(open_tx) == rdb.source.port
            open_tx.execute("COMMIT")
        finally:
            w.stop()
    with rdb.src() as s:
        assert s.execute("SELECT count(*) FROM orders WHERE note LIKE 'open-tx-%'").fetchone()[0] == 2
    assert_on_source_and_running(p, rdb, w)
    check_sqlstate(err)


@pytest.mark.timeout(60)
def test_abort_during_lag_wait(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_timeout="30s")
    w = Writer(p, DB, note="abort-writer")
    w.start()
    out = {}
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        with apply_stalled(rdb):
            mark = p.log_mark()

            def run():
                t0 = time.monotonic()
                try:
                    out["row"] = switch(p, rdb)
                except AdminError as e:
                    out["error"] = e
                out["took"] = time.monotonic() - t0

            t = threading.Thread(target=run)
            t.start()
            assert p.wait_log(rf"switch {DB}: waiting for the slot", since=mark, timeout=10), \
                "the switch never reached its lag wait"
            time.sleep(0.3)
            assert route_of(p.admin_port, DB)[1] == "switching"
            t_abort = time.monotonic()
            with admin_connect(p.admin_port) as a:
                admin_query(a, f"ABORT {DB}")
            t.join(10)
            assert not t.is_alive(), "SWITCH did not return after ABORT"
            print(out)
            assert "error" in out, out
            assert "abort" in out["error"].message.lower(), out["error"]
            assert "lag wait" in out["error"].message, out["error"]
            assert time.monotonic() - t_abort < 3, "ABORT took effect late"
            assert out["took"] < 15, out
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the abort")
    finally:
        w.stop()
    assert_on_source_and_running(p, rdb, w)
    assert admin(p.admin_port, "SHOW SWITCHES")[-1]["result"] != "ok"
    check_sqlstate(out["error"])


@pytest.fixture
def third_cluster(clusters):
    """A target of our own, to stop in the middle of a switch."""
    c = Cluster("target3")
    try:
        c.init()
        c.start()
        c.setup_roles(carol_secret=clusters.carol_secret)
        yield c
    finally:
        c.cleanup()


@pytest.mark.timeout(90)
def test_target_down_during_lag_wait(proxy_factory, clusters, third_cluster):
    db = ReplicatedDB(clusters.source, third_cluster, "cut_down")
    db.create()
    try:
        p = cutover_proxy(proxy_factory, db, pool_mode="transaction", lag_timeout="20s")
        w = Writer(p, db.name, note="down-writer")
        w.start()
        out = {}
        try:
            wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
            mark = p.log_mark()
            with apply_stalled(db):
                def run():
                    t0 = time.monotonic()
                    try:
                        out["row"] = switch(p, db)
                    except AdminError as e:
                        out["error"] = e
                    out["took"] = time.monotonic() - t0

                t = threading.Thread(target=run)
                t.start()
                assert p.wait_log(rf"switch {db.name}: waiting for the slot", since=mark,
                                  timeout=10), "the switch never reached its lag wait"
                time.sleep(0.3)
                t_down = time.monotonic()
                third_cluster.stop()          # immediate: the target is gone
                t.join(25)
                assert not t.is_alive(), "SWITCH did not return"
            print(out)
            assert "error" in out, out
            assert "lag wait" in out["error"].message, out["error"]
            assert time.monotonic() - t_down < 10, \
                "the switch waited for lag_timeout instead of noticing the target was gone"
            n = len(w.ids)
            wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the failure")
        finally:
            w.stop()
        # Routed to the source, running, nothing lost.
        assert route_of(p.admin_port, db.name) == ("source", "running")
        with p.connect(dbname=db.name) as c:
            assert server_port(c) == db.source.port
        with db.src() as s:
            got = {r[0] for r in s.execute("SELECT id FROM orders WHERE note = 'down-writer'")}
        assert got == set(w.ids)
        assert w.ports == {db.source.port}
        check_sqlstate(out["error"])
    finally:
        db.drop()


# -- preflight refusals ----------------------------------------------------------

def lag_wal(db, nbytes):
    """Write about nbytes of WAL on the source (a non-transactional logical
    message, which subscribers ignore)."""
    with db.src() as s:
        s.execute("SELECT pg_logical_emit_message(false, 'pgcutover-test', repeat('x', %s))",
                  (nbytes,))


def preflight_refusal(proxy_factory, rdb, expect, **section):
    """A switch refused at preflight: 55000, the phase and `expect` in the
    message, no pause for a writer running across it, still on the source."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", **section)
    w = Writer(p, DB, note="refusal-writer")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        err, took = expect_switch_error(p, rdb)
        assert err.sqlstate == "55000", err
        assert err.message.startswith("preflight failed"), err
        assert re.search(expect, err.message), err
        assert took < 15, took
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on")
    finally:
        w.stop()
    assert w.max_latency < 1.0, f"a refused switch paused traffic ({w.max_latency:.2f}s)"
    assert_on_source_and_running(p, rdb, w)
    assert not os.path.exists(os.path.join(p.dir, "state", f"{DB}.route"))
    return p, err


@pytest.mark.timeout(60)
def test_preflight_refuses_a_missing_slot(proxy_factory, rdb):
    preflight_refusal(proxy_factory, rdb, r"replication slot check: it does not exist",
                      replication_slot="no_such_slot")


@pytest.mark.timeout(60)
def test_preflight_refuses_an_inactive_slot(proxy_factory, rdb):
    rdb.set_subscription(False)
    try:
        preflight_refusal(proxy_factory, rdb, r"replication slot check: it is not active")
    finally:
        rdb.set_subscription(True)


@pytest.mark.timeout(60)
def test_preflight_refuses_lag_above_max_switch_lag(proxy_factory, rdb):
    with apply_stalled(rdb):
        lag_wal(rdb, 200_000)
        assert rdb.lag_bytes() > 100_000
        _, err = preflight_refusal(proxy_factory, rdb,
                                   r"replication lag check: lag is \d+ bytes, above "
                                   r"max_switch_lag \(65536\)", max_switch_lag="64kB")
    lag = int(re.search(r"lag is (\d+) bytes", err.message).group(1))
    assert lag > 100_000, err


# -- ABORT during the drain ------------------------------------------------------

@pytest.mark.timeout(60)
def test_abort_during_drain(proxy_factory, rdb):
    """A transaction held open keeps the switch in its drain; ABORT ends the
    switch there (the error names the drain), traffic resumes on the source
    and the open transaction commits there."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", drain_timeout="30s")
    w = Writer(p, DB, note="abort-drain-writer")
    out = {}
    with p.connect(dbname=DB) as open_tx:
        open_tx.execute("BEGIN")
        open_tx.execute("INSERT INTO orders (note) VALUES ('abort-drain-tx-1')")
        w.start()
        try:
            wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
            mark = p.log_mark()

            def run():
                t0 = time.monotonic()
                try:
                    out["row"] = switch(p, rdb)
                except AdminError as e:
                    out["error"] = e
                out["took"] = time.monotonic() - t0

            t = threading.Thread(target=run)
            t.start()
            # the open transaction, and maybe one of the writer's still finishing
            assert p.wait_log(rf"switch {DB}: draining \([12] transactions open\)", since=mark,
                              timeout=10), p.log_since(mark)
            time.sleep(0.3)
            assert route_of(p.admin_port, DB)[1] == "switching"
            assert t.is_alive(), out
            t_abort = time.monotonic()
            with admin_connect(p.admin_port) as a:
                assert admin_query(a, f"ABORT {DB}").status == "ABORT"
            t.join(10)
            assert not t.is_alive(), "SWITCH did not return after ABORT"
            assert time.monotonic() - t_abort < 3, "ABORT took effect late"
            assert "error" in out, out
            assert out["error"].message.startswith("drain failed"), out["error"]
            assert "abort" in out["error"].message.lower(), out["error"]
            n = len(w.ids)
            wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the abort")
            # the open transaction is still there, on the source, and commits
            open_tx.execute("INSERT INTO orders (note) VALUES ('abort-drain-tx-2')")
            assert server_port(open_tx) == rdb.source.port
            open_tx.execute("COMMIT")
        finally:
            w.stop()
    with rdb.src() as s:
        assert s.execute("SELECT count(*) FROM orders WHERE note LIKE 'abort-drain-tx-%'"
                         ).fetchone()[0] == 2
    assert_on_source_and_running(p, rdb, w)
    last = admin(p.admin_port, "SHOW SWITCHES")[-1]
    assert last["result"] == "aborted" and last["error"].startswith("drain failed"), last
    check_sqlstate(out["error"])

"""Session pooling limits and routing errors (issue points 6 and 7):
default_pool_size makes extra clients wait, max_client_conn refuses with
53300, an unknown database gets 3D000, replication connections are refused."""

import socket
import threading
import time

import psycopg
import pytest

import wire
from pgutil import PASSWORDS
from proxyutil import SLOW


def count_servers(source, appname):
    with source.admin_connect() as c:
        return c.execute("select count(*) from pg_stat_activity where application_name = %s",
                         (appname,)).fetchone()[0]


def test_client_over_pool_size_waits(proxy_factory, source):
    p = proxy_factory.new(settings={"default_pool_size": 2})
    c1 = p.connect(application_name="poolwait")
    c2 = p.connect(application_name="poolwait")
    try:
        c1.execute("select 1")
        c2.execute("select 1")
        result = {}

        def third():
            t0 = time.monotonic()
            try:
                with p.connect(application_name="poolwait", connect_timeout=30) as c3:
                    result["value"] = c3.execute("select 'third'").fetchone()[0]
            except Exception as e:  # reported below
                result["value"] = e
            result["elapsed"] = time.monotonic() - t0

        th = threading.Thread(target=third)
        th.start()
        th.join(2.0)
        assert th.is_alive(), f"the third client did not wait for a server: {result}"
        assert count_servers(source, "poolwait") == 2
        c1.close()
        th.join(15 * SLOW)
        assert not th.is_alive(), "the third client was not served after a server was freed"
        assert result["value"] == "third", result
        assert result["elapsed"] >= 1.5
    finally:
        c1.close()
        c2.close()


def test_max_client_conn(proxy_factory):
    p = proxy_factory.new(settings={"max_client_conn": 3})
    conns = []

    def connect_retrying():
        # The start-up probe's connection may not have been reaped yet.
        deadline = time.monotonic() + 5 * SLOW
        while True:
            try:
                return p.connect()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    try:
        for _ in range(3):
            conns.append(connect_retrying())
        for c in conns:
            c.execute("select 1")
        msgs, closed = wire.login_attempt(p.port, {"user": "alice", "database": "app"},
                                          password=PASSWORDS["alice"])
        errs = wire.errors(msgs)
        assert errs, f"4th client not refused: {msgs}"
        assert errs[0].sqlstate == "53300", errs[0]
        text = errs[0].fields.get("M", "").lower()
        assert any(w in text for w in ("max_client_conn", "too many", "no more connections")), text
        assert closed
        with pytest.raises(psycopg.OperationalError):
            p.connect()
        # the 3 clients are unaffected, and a freed slot is usable again
        for c in conns:
            assert c.execute("select 2").fetchone() == (2,)
        conns.pop().close()
        with connect_retrying() as c:   # the proxy may not have seen the close yet
            assert c.execute("select 3").fetchone() == (3,)
    finally:
        for c in conns:
            c.close()


def test_unknown_database(proxy):
    with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
        proxy.connect(dbname="nope")
    msgs, closed = wire.login_attempt(proxy.port, {"user": "alice", "database": "nope"},
                                      password=PASSWORDS["alice"])
    errs = wire.errors(msgs)
    assert errs, msgs
    assert errs[-1].sqlstate == "3D000"
    assert errs[-1].fields["S"] == "FATAL"
    assert errs[-1].fields["M"] == 'database "nope" does not exist'
    assert not any(m.type == "Z" for m in msgs)
    assert closed
    with proxy.connect() as c:
        c.execute("select 1")


@pytest.mark.parametrize("value", ["database", "true"])
def test_replication_connection_refused(proxy, value):
    msgs, closed = wire.login_attempt(
        proxy.port, {"user": "pgcutover", "database": "app", "replication": value},
        password=PASSWORDS["pgcutover"])
    errs = wire.errors(msgs)
    assert errs, f"replication={value} was not refused: {msgs}"
    assert errs[-1].fields["S"] == "FATAL"
    assert errs[-1].sqlstate in ("08P01", "28000", "0A000", "42501"), errs[-1]
    assert "replication" in errs[-1].fields["M"].lower(), errs[-1]
    assert not any(m.type == "Z" for m in msgs)
    assert closed
    with pytest.raises(psycopg.OperationalError, match="(?i)replication"):
        proxy.connect(user="pgcutover", replication=value)
    with proxy.connect() as c:
        c.execute("select 1")


def test_waiting_client_that_leaves(proxy_factory):
    """A client that gives up while waiting for a server is forgotten: the
    freed server goes to the next live client, not to the departed one."""
    p = proxy_factory.new(settings={"default_pool_size": 1})
    c1 = p.connect()
    c1.execute("select 1")
    waiters = []
    try:
        for _ in range(3):
            w = wire.RawConn(port=p.port)
            waiters.append(w)
            w.send_startup({"user": "alice", "database": "app"})
            # pgcutover may hold the login (or the first query) until a
            # server is free: go as far as it lets us within a second.
            try:
                w.authenticate("alice", PASSWORDS["alice"], timeout=1)
                w.finish_login(timeout=1)
                w.send(wire.query_msg("select 1"))
                w.read_msg(timeout=1)
            except (socket.timeout, TimeoutError):
                pass
        time.sleep(0.3)
        for w in waiters:
            w.close()
        time.sleep(0.3)
        c1.close()
        t0 = time.monotonic()
        with p.connect(connect_timeout=20) as c2:
            assert c2.execute("select 'served'").fetchone()[0] == "served"
        assert time.monotonic() - t0 < 10 * SLOW
    finally:
        c1.close()
        for w in waiters:
            w.close()


@pytest.mark.timeout(60)
def test_idle_servers_are_a_stack_and_the_unused_ones_time_out(proxy_factory, source):
    """Transaction pooling, three servers opened by three concurrent
    transactions: afterwards a lone client keeps getting the server that went
    idle last (the same backend pid every time), so the two it does not need
    stay unused and server_idle_timeout closes them while it keeps working;
    its own server survives because it is never idle that long."""
    app = "pool-lifo"
    p = proxy_factory.new(settings={"pool_mode": "transaction", "default_pool_size": 3,
                                    "server_idle_timeout": "1500ms"})
    mark = p.log_mark()
    conns = [p.connect(application_name=app, autocommit=False) for _ in range(3)]
    try:
        # three open transactions at once: three servers
        pids = {c.execute("select pg_backend_pid()").fetchone()[0] for c in conns}
        assert len(pids) == 3, pids
        for c in conns:
            c.rollback()
        for c in conns[1:]:
            c.close()
        lone = conns[0]
        lone.autocommit = True
        assert count_servers(source, app) == 3
        seen = []
        deadline = time.monotonic() + 4.5 * SLOW
        while time.monotonic() < deadline:
            seen.append(lone.execute("select pg_backend_pid()").fetchone()[0])
            if len(seen) > 10 and count_servers(source, app) == 1:
                break
            time.sleep(0.1)
        assert len(set(seen)) == 1, f"the lone client went round the servers: {seen}"
        assert seen[0] in pids
        assert count_servers(source, app) == 1, "the unused servers were not closed"
        assert p.wait_log(r"server_idle_timeout expired", since=mark), p.log_since(mark)
        # the survivor is the lone client's, and it still answers
        assert lone.execute("select pg_backend_pid()").fetchone()[0] == seen[0]
    finally:
        for c in conns:
            c.close()

"""A reload that moves a database's source or target: no new session or
transaction lands on the old address, even through a server connection that
was pooled before the reload; sessions in progress keep their server until
they end, and that server is then closed, not reused.

"Elsewhere" is the other cluster of the suite: both have the `app` database
and the same roles, and inet_server_port() tells them apart.
"""

import signal
import time

import pytest

from proxyutil import SLOW
from replication import admin, route_of, server_port


def reload(p, databases):
    p.databases = databases
    p.write_config()
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    line = p.wait_log(r"reload", since=mark, timeout=10)
    assert line and "reject" not in line.lower(), p.log_since(mark)
    return mark


def servers(p, db="app"):
    return [r for r in admin(p.admin_port, "SHOW SERVERS") if r["database"] == db]


def app(source, target, **kw):
    # fence off: "app" is shared by every module, a fence would outlive the test
    d = {"source": source.proxy_target(), "target": target.proxy_target(),
         "lag_method": "none", "sequence_sync": "none", "fence": "off"}
    d.update(kw)
    return {"app": d}


APPNAME = "reload-test"


def connect(p):
    """A session of this module: its servers carry APPNAME, so that backends
    other modules' proxies leave behind (a query still sleeping) do not count."""
    return p.connect(application_name=APPNAME)


def alice_backends(cluster):
    """alice's backends in `app` on a cluster opened for this module's sessions."""
    with cluster.admin_connect() as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' "
                         "AND datname = 'app' AND application_name = %s",
                         (APPNAME,)).fetchone()[0]


def wait_no_backends(cluster, what, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while alice_backends(cluster):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_servers(p, pred, what, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        rows = servers(p)
        if pred(rows):
            return rows
        assert time.monotonic() < deadline, f"{what}: {rows}"
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_reload_retires_idle_pooled_servers(proxy_factory, source, target):
    """Session pooling: alice's server goes back to the pool when she leaves;
    after a reload points the source elsewhere, her next session runs there
    and the pooled server to the old address is closed at once."""
    p = proxy_factory.new(databases=app(source, target))
    with connect(p) as c:
        assert server_port(c) == source.port
    wait_servers(p, lambda rows: [r["state"] for r in rows] == ["idle"], "alice's server not pooled")
    old_pid = servers(p)[0]["backend_pid"]

    mark = reload(p, app(target, target))
    # the idle server to the old address is gone without waiting for a client
    wait_servers(p, lambda rows: rows == [], "the idle server to the old source was kept")
    with connect(p) as c:
        assert server_port(c) == target.port
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert str(pid) != old_pid
    assert p.wait_log(r"app: its source is now 127\.0\.0\.1:%d" % target.port, since=mark), \
        p.log_since(mark)
    # (its reset, DISCARD ALL, may still be running when the client has gone)
    wait_servers(p, lambda rows: [(r["addr"], r["state"]) for r in rows]
                 == [(f"127.0.0.1:{target.port}", "idle")], "her server on the new source")
    wait_no_backends(source, "a backend of the proxy stayed on the old source")


@pytest.mark.timeout(60)
def test_reload_retires_busy_server_when_released(proxy_factory, source, target):
    """A session in progress during the reload keeps its server (its state
    stays); when it ends, that server is closed instead of pooled."""
    p = proxy_factory.new(databases=app(source, target))
    with connect(p) as c:
        c.execute("SET application_name = 'kept-through-reload'")
        assert server_port(c) == source.port
        reload(p, app(target, target))
        assert server_port(c) == source.port
        assert c.execute("SHOW application_name").fetchone()[0] == "kept-through-reload"
        # a second session meanwhile goes to the new address
        with connect(p) as d:
            assert server_port(d) == target.port
    wait_servers(p, lambda rows: all(r["addr"] == f"127.0.0.1:{target.port}" for r in rows),
                 "a server to the old source stayed after its session ended")
    wait_no_backends(source, "the old source's server was kept after its session ended")
    for _ in range(2):
        with connect(p) as c:
            assert server_port(c) == target.port


@pytest.mark.timeout(60)
def test_reload_transaction_pooling_next_transaction_moves(proxy_factory, source, target):
    """Transaction pooling: the server goes back to the pool after every
    transaction; the first transaction after the reload runs at the new address,
    in the same client session."""
    p = proxy_factory.new(settings={"pool_mode": "transaction"}, databases=app(source, target))
    with connect(p) as c:
        for _ in range(3):
            assert server_port(c) == source.port
        reload(p, app(target, target))
        ports = {server_port(c) for _ in range(5)}
        assert ports == {target.port}, ports
    wait_servers(p, lambda rows: rows and all(r["addr"] == f"127.0.0.1:{target.port}" for r in rows),
                 "servers to the old source stayed")
    wait_no_backends(source, "a backend of the proxy stayed on the old source")


@pytest.mark.timeout(60)
def test_reload_transaction_pooling_busy_server_retired_at_commit(proxy_factory, source, target):
    """Transaction pooling: a transaction open during the reload keeps its
    server; at its end that server is closed, even when no client waits for
    one (it must not sit in the pool connected to the old address)."""
    p = proxy_factory.new(settings={"pool_mode": "transaction"}, databases=app(source, target))
    with connect(p) as c:
        c.execute("BEGIN")
        assert server_port(c) == source.port
        reload(p, app(target, target))
        c.execute("COMMIT")
        wait_servers(p, lambda rows: all(r["addr"] == f"127.0.0.1:{target.port}" for r in rows),
                     "a server to the old source was pooled after its transaction")
        wait_no_backends(source, "the old source's server was kept after its transaction")
        assert server_port(c) == target.port


@pytest.mark.timeout(60)
def test_reload_changed_target_applies_to_next_switch(proxy_factory, source, target):
    """The target configured at start-up is the source cluster itself (a
    mistake); the operator fixes it and reloads; the next SWITCH goes to the
    corrected target."""
    p = proxy_factory.new(databases=app(source, source))
    with connect(p) as c:
        assert server_port(c) == source.port
    reload(p, app(source, target))
    assert [r["target"] for r in admin(p.admin_port, "SHOW DATABASES") if r["name"] == "app"] \
        == [f"127.0.0.1:{target.port}/app"]
    row = admin(p.admin_port, "SWITCH app")[0]
    assert row["result"] == "ok", row
    assert route_of(p.admin_port, "app") == ("target", "running")
    with connect(p) as c:
        assert server_port(c) == target.port
    admin(p.admin_port, "SWITCH app TO source")

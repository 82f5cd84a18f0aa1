"""PAUSE / RESUME: new transactions are held (not refused), in-flight ones
run to their end, PAUSE returns once the database is drained, and nothing
that waits gets an error.  In both pool modes, on the shared `app` database
(no table is needed: the transactions are SELECTs)."""

import threading
import time
import urllib.request

import pytest

from replication import admin, admin_connect, admin_query


def db_row(p, db="app"):
    return {r["name"]: r for r in admin(p.admin_port, "SHOW DATABASES")}[db]


def paused_metric(p, db="app"):
    with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as r:
        for ln in r.read().decode().splitlines():
            if ln.startswith("pgcutover_paused{") and f'database="{db}"' in ln:
                return float(ln.split()[-1])
    raise AssertionError("no pgcutover_paused sample")


class Timed(threading.Thread):
    """Runs fn in a thread; records when it returned, its result or error."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = None
        self.error = None
        self.done_at = None

    def run(self):
        try:
            self.result = self.fn()
        except Exception as e:
            self.error = e
        self.done_at = time.monotonic()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_pause_returns_once_open_transaction_commits(proxy_factory, pool_mode):
    p = proxy_factory.new(settings={"pool_mode": pool_mode}, name=f"pause-{pool_mode}")
    with p.connect() as tx, admin_connect(p.admin_port) as a:
        tx.execute("BEGIN")
        tx.execute("SELECT 1")
        pause = Timed(lambda: admin_query(a, "PAUSE app"))
        pause.start()
        time.sleep(1.0)
        assert pause.is_alive(), f"PAUSE returned with a transaction open: {pause.result} {pause.error}"
        # The open transaction runs on undisturbed.
        assert tx.execute("SELECT 2").fetchone()[0] == 2
        t_commit = time.monotonic()
        tx.execute("COMMIT")
        pause.join(10)
        assert not pause.is_alive(), "PAUSE did not return after the commit"
        assert pause.error is None, pause.error
        assert pause.result.status == "PAUSE", pause.result.status
        assert t_commit <= pause.done_at < t_commit + 1.0, pause.done_at - t_commit
        assert db_row(p)["state"] == "paused"
        assert paused_metric(p) == 1.0
        admin_query(a, "RESUME app")
        assert db_row(p)["state"] == "running"
        assert paused_metric(p) == 0.0
        assert tx.execute("SELECT 3").fetchone()[0] == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_clients_wait_during_pause_and_run_after_resume(proxy_factory, pool_mode):
    p = proxy_factory.new(settings={"pool_mode": pool_mode}, name=f"pause-{pool_mode}")
    idle = p.connect()
    idle.execute("SELECT 1")        # logged in, has had its server
    newcomer_login = {}
    try:
        with admin_connect(p.admin_port) as a:
            t0 = time.monotonic()
            assert admin_query(a, "PAUSE").status == "PAUSE"     # all databases
            assert time.monotonic() - t0 < 2, "PAUSE with nothing open took long"

            held = Timed(lambda: idle.execute("SELECT 'held'").fetchone()[0])
            held.start()

            def newcomer():
                c = p.connect()
                newcomer_login["at"] = time.monotonic()
                try:
                    return c.execute("SELECT 'newcomer'").fetchone()[0]
                finally:
                    c.close()

            fresh = Timed(newcomer)
            fresh.start()
            time.sleep(1.0)
            assert held.is_alive(), f"a query ran during PAUSE: {held.result} {held.error}"
            assert fresh.is_alive(), f"a new client ran a query during PAUSE: {fresh.result} {fresh.error}"
            assert int(db_row(p)["waiting_clients"]) >= 1, db_row(p)
            assert db_row(p)["state"] == "paused"

            t_resume = time.monotonic()
            assert admin_query(a, "RESUME").status == "RESUME"
            held.join(10)
            fresh.join(10)
        assert held.error is None and held.result == "held", held.error
        assert fresh.error is None and fresh.result == "newcomer", fresh.error
        assert t_resume <= held.done_at < t_resume + 1.0
        assert t_resume <= fresh.done_at < t_resume + 1.0
        assert db_row(p)["state"] == "running"
        assert int(db_row(p)["waiting_clients"]) == 0
        assert idle.execute("SELECT 1").fetchone()[0] == 1
        # Issue 3, point 2: "Clients that connect during a pause log in and
        # wait": the login completes during the pause (a client's connect
        # timeout must not run out during a long pause); the first query waits.
        assert newcomer_login["at"] < t_resume, (
            f"a client connecting during PAUSE was logged in only "
            f"{newcomer_login['at'] - t_resume:.3f}s after RESUME")
    finally:
        idle.close()


@pytest.mark.timeout(60)
def test_pause_one_database_leaves_the_others_running(proxy_factory, clusters):
    p = proxy_factory.new(settings={"pool_mode": "transaction"}, databases={
        "app": {"source": clusters.source.proxy_target(), "target": clusters.target.proxy_target(),
                "lag_method": "none"},
        "other": {"source": clusters.source.proxy_target(),
                  "target": clusters.target.proxy_target(), "lag_method": "none"},
    }, name="pause-one")
    with p.connect() as c_app, p.connect(dbname="other") as c_other, \
            admin_connect(p.admin_port) as a:
        admin_query(a, "PAUSE app")
        held = Timed(lambda: c_app.execute("SELECT 'app'").fetchone()[0])
        held.start()
        t0 = time.monotonic()
        assert c_other.execute("SELECT 'other'").fetchone()[0] == "other"
        assert time.monotonic() - t0 < 0.5
        assert held.is_alive()
        admin_query(a, "RESUME app")
        held.join(10)
        assert held.result == "app" and held.error is None, held.error

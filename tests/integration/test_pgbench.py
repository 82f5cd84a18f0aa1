"""pgbench through the proxy: simple, extended and prepared protocol, several
clients, zero failed transactions.  The tables are created directly on the
source (which the proxy routes to)."""

import os
import re
import subprocess
import time

import pytest

from pgutil import PASSWORDS, pg_bin


@pytest.fixture(scope="module")
def pgbench_tables(source):
    env = dict(os.environ, PGPASSWORD=PASSWORDS["alice"])
    r = subprocess.run([pg_bin("pgbench"), "-i", "-s", "1", "-q", "-h", "127.0.0.1",
                        "-p", str(source.port), "-U", "alice", "app"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    yield
    with source.admin_connect(dbname="app") as c:
        c.execute("drop table if exists pgbench_accounts, pgbench_branches, "
                  "pgbench_tellers, pgbench_history")


def run_pgbench(p, args, timeout=180, appname="pgbench", sample=None):
    """Run pgbench through proxy p.  sample: a callable run every 50 ms while
    pgbench runs (to watch the servers)."""
    env = dict(os.environ, PGPASSWORD=PASSWORDS["alice"], PGCONNECT_TIMEOUT="10",
               PGAPPNAME=appname)
    argv = [pg_bin("pgbench"), "-h", "127.0.0.1", "-p", str(p.port), "-U", "alice"] + args + ["app"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pgbench did not finish within {timeout}s")
            if sample:
                sample()
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate(timeout=30)[0]
    return subprocess.CompletedProcess(argv, proc.returncode, out)


def check_output(r, expected):
    assert r.returncode == 0, r.stdout
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", r.stdout)
    assert m, r.stdout
    assert int(m.group(1)) == int(m.group(2)) == expected, r.stdout
    m = re.search(r"number of failed transactions: (\d+)", r.stdout)
    assert m, r.stdout
    assert int(m.group(1)) == 0, r.stdout
    assert "error" not in r.stdout.lower(), r.stdout


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_tpcb(proxy, pgbench_tables, mode):
    r = run_pgbench(proxy, ["-M", mode, "-c", "4", "-j", "2", "-t", "50"])
    check_output(r, 200)


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(proxy, pgbench_tables, mode):
    r = run_pgbench(proxy, ["-S", "-M", mode, "-c", "4", "-j", "2", "-t", "200"])
    check_output(r, 800)


def test_pgbench_reconnect_more_clients_than_servers(proxy_factory, pgbench_tables, source):
    """8 clients on a pool of 3, a new connection per transaction (-C) with
    prepared statements: clients wait for a server instead of failing, and a
    reused server connection has been reset (DISCARD ALL), or pgbench's
    PREPARE would fail with 'prepared statement already exists'.  One thread
    per client, because pgbench connects synchronously."""
    p = proxy_factory.new(settings={"default_pool_size": 3})
    counts = []
    with source.admin_connect() as admin:
        def sample():
            counts.append(admin.execute(
                "select count(*) from pg_stat_activity where application_name = 'pgbench-pool3'"
            ).fetchone()[0])
        r = run_pgbench(p, ["-C", "-M", "prepared", "-c", "8", "-j", "8", "-t", "25"],
                        appname="pgbench-pool3", sample=sample)
    check_output(r, 200)
    assert counts and max(counts) <= 3, f"up to {max(counts)} server connections for a pool of 3"


@pytest.mark.parametrize("script", [[], ["-S"]], ids=["tpcb", "select-only"])
def test_pgbench_prepared_transaction_pooling(proxy_factory, pgbench_tables, script):
    """Named prepared statements in transaction pooling (issue 4): 8 clients
    on a pool of 3, each preparing P_0, P_1... under the same names; every
    transaction may land on another server, where pgcutover prepares the
    statement under a name of its own.  One thread per client: pgbench
    prepares with a blocking PQprepare, and a thread serving several clients
    would wait for a server another of its clients holds (with any pooler)."""
    p = proxy_factory.new(settings={"pool_mode": "transaction", "default_pool_size": 3})
    r = run_pgbench(p, script + ["-M", "prepared", "-c", "8", "-j", "8", "-t", "100"])
    check_output(r, 800)

"""Control connections (admin/cutover/control.c) against real and fake servers.

Drives tests/tools/control_probe, which runs queries through a control_conn
on its own libevent loop and prints one line per query ("ok NTUPLES FIRST" or
"error SQLSTATE MESSAGE"), then "max_loop_lag_ms N" (the worst lateness of a
10 ms timer: a blocked loop shows there) and "total_ms N".

The probe is $PGCUTOVER_CONTROL_PROBE, else build/control_probe in the
repository (make build/control_probe).
"""

import os
import socket
import subprocess
import threading
import time

import pytest

import proxyutil
from pgutil import PASSWORDS, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Sanitizer builds are slower; every "within N seconds" gets this factor.
SLOW = proxyutil.SLOW

# A loop that never blocks wakes its 10 ms timer on time, give or take the
# scheduler; a blocking connect or DNS lookup would show as hundreds of ms.
MAX_LOOP_LAG_MS = 50

# Logging in with scram-sha-256 costs libpq a PBKDF2 of 4096 rounds inside
# PQconnectPoll(): CPU time on the loop, not waiting (about 2 ms optimised,
# 20-50 ms under ASan on a busy machine).  Tests that log in allow for it;
# a blocking wait on the network would still show as hundreds of ms.
MAX_LOGIN_LAG_MS = 250


def probe_bin():
    path = os.environ.get("PGCUTOVER_CONTROL_PROBE",
                          os.path.join(REPO, "build", "control_probe"))
    return os.path.abspath(path)


@pytest.fixture(scope="module")
def probe():
    path = probe_bin()
    if not os.access(path, os.X_OK):
        pytest.skip(f"control_probe not found at {path}: build it with "
                    "`make build/control_probe` or set PGCUTOVER_CONTROL_PROBE")
    return path


class ProbeRun:
    """The parsed output of one control_probe run."""

    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.results = []        # ("ok", ntuples, first) or ("error", sqlstate, message)
        self.conninfo = None
        self.max_lag_ms = None
        self.total_ms = None
        for line in proc.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "ok":
                n, _, first = rest.partition(" ")
                self.results.append(("ok", int(n), first))
            elif kind == "error":
                state, _, msg = rest.partition(" ")
                self.results.append(("error", state, msg))
            elif kind == "conninfo":
                self.conninfo = rest
            elif kind == "max_loop_lag_ms":
                self.max_lag_ms = int(rest)
            elif kind == "total_ms":
                self.total_ms = int(rest)

    def __repr__(self):
        return (f"<probe rc={self.rc} elapsed={self.elapsed:.3f}s\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr[-3000:]}>")


def run_probe(probe, conninfo, sql, timeout_ms=5000, *extra, budget=60):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    argv = [probe, *extra, conninfo, sql, str(timeout_ms)]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=budget * SLOW, env=env)
    run = ProbeRun(proc, time.monotonic() - start)
    assert not proxyutil.SANITIZER_PATTERNS.search(proc.stderr), run
    assert run.max_lag_ms is not None and run.total_ms is not None, run
    return run


def ctl_conninfo(cluster, **kw):
    """A TCP conninfo for the control user (scram-sha-256 on 127.0.0.1)."""
    return cluster.conninfo(user="pgcutover", dbname="app", **kw)


class SilentServer:
    """Accepts TCP connections and never says a word (a hung server)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # kept open, never answered

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for c in self.accepted:
            c.close()
        self.sock.close()


# -- (1) a real server, scram-sha-256 ------------------------------------------

def test_query_with_scram_password(probe, source):
    run = run_probe(probe, ctl_conninfo(source),
                    "SELECT current_user || '/' || current_setting('application_name')")
    assert run.rc == 0, run
    assert run.results == [("ok", 1, "pgcutover/pgcutover_control")], run
    assert run.max_lag_ms < MAX_LOGIN_LAG_MS * SLOW, run


def test_multi_statement_returns_last_result(probe, source):
    run = run_probe(probe, ctl_conninfo(source),
                    "SELECT 1; SELECT g FROM generate_series(7, 9) g")
    assert run.rc == 0, run
    assert run.results == [("ok", 3, "7")], run


def test_command_without_rows_and_null(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SET search_path = public", 5000,
                    "--then", "SELECT NULL::int")
    assert run.rc == 0, run
    assert run.results == [("ok", 0, "-"), ("ok", 1, "NULL")], run


def test_application_name_given_is_kept(probe, source):
    run = run_probe(probe, ctl_conninfo(source, application_name="mine"),
                    "SELECT current_setting('application_name')")
    assert run.results == [("ok", 1, "mine")], run


# -- (2) authentication failure keeps the server's SQLSTATE ---------------------

def test_wrong_password_gives_28P01(probe, source):
    run = run_probe(probe, ctl_conninfo(source, password="not-the-password"), "SELECT 1")
    assert run.rc == 1, run
    assert len(run.results) == 1, run
    kind, state, msg = run.results[0]
    assert (kind, state) == ("error", "28P01"), run
    assert msg.startswith(f"could not connect to 127.0.0.1:{source.port}: "), run
    assert 'password authentication failed for user "pgcutover"' in msg, run


def test_unknown_database_gives_3D000(probe, source):
    run = run_probe(probe, source.conninfo(user="pgcutover", dbname="no_such_db"), "SELECT 1")
    assert run.results[0][:2] == ("error", "3D000"), run


# -- (3) nobody listening --------------------------------------------------------

def test_connection_refused_is_08006_and_quick(probe):
    port = free_port()
    run = run_probe(probe, f"host=127.0.0.1 port={port} user=pgcutover dbname=app",
                    "SELECT 1", 10000)
    assert run.rc == 1, run
    assert run.results == [
        ("error", "08006", f"could not connect to 127.0.0.1:{port}: Connection refused")], run
    assert run.total_ms < 1000 * SLOW, run


# -- (4) a hung server: the timeout fires and the loop never blocks ----------------

def test_hung_server_times_out_without_blocking_the_loop(probe):
    srv = SilentServer()
    try:
        run = run_probe(probe, f"host=127.0.0.1 port={srv.port} user=pgcutover dbname=app "
                        "sslmode=disable", "SELECT 1", 1000, "--hang-probe")
    finally:
        srv.close()
    assert run.rc == 1, run
    assert len(run.results) == 1, run
    kind, state, msg = run.results[0]
    assert (kind, state) == ("error", "57014"), run
    assert "timeout of 1000 ms expired" in msg, run
    assert 900 <= run.total_ms <= 1000 + 1000 * SLOW, run
    assert run.max_lag_ms < MAX_LOOP_LAG_MS, run
    assert srv.accepted, "the probe never reached the silent server"


def test_hung_server_during_ssl_negotiation(probe):
    """sslmode=prefer sends SSLRequest first and waits for one byte: still no block."""
    srv = SilentServer()
    try:
        run = run_probe(probe, f"host=127.0.0.1 port={srv.port} user=pgcutover dbname=app "
                        "sslmode=prefer", "SELECT 1", 500, "--then", "SELECT 2")
    finally:
        srv.close()
    assert [r[:2] for r in run.results] == [("error", "57014")] * 2, run
    assert run.max_lag_ms < MAX_LOOP_LAG_MS, run
    # each query got its own connection attempt (the first was closed on timeout)
    assert len(srv.accepted) == 2, (srv.accepted, run)


def test_long_query_times_out_and_connection_is_reopened(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT pg_sleep(30)", 1000,
                    "--then", "SELECT 42")
    assert run.results[0][:2] == ("error", "57014"), run
    assert run.results[1] == ("ok", 1, "42"), run
    assert run.total_ms < 1000 + 2000 * SLOW, run
    assert run.max_lag_ms < MAX_LOGIN_LAG_MS * SLOW, run


# -- (5) host names go through evdns ----------------------------------------------

def test_localhost_resolves_through_evdns(probe, source):
    run = run_probe(probe, ctl_conninfo(source, host="localhost"), "SELECT inet_server_addr()")
    assert run.rc == 0, run
    assert run.results == [("ok", 1, "127.0.0.1")], run


def test_host_name_without_resolver_is_an_error(probe, source):
    run = run_probe(probe, ctl_conninfo(source, host="localhost"), "SELECT 1", 5000, "--no-dns")
    assert run.results == [
        ("error", "08006", 'could not translate host name "localhost" to address: '
                           'cannot resolve host names without a resolver')], run


def test_unresolvable_name_then_next_host(probe, source):
    """A name that does not resolve is skipped like libpq skips a host it cannot reach."""
    run = run_probe(probe, ctl_conninfo(source, host="no-such-host.invalid,127.0.0.1"),
                    "SELECT 1", 10000)
    assert run.results == [("ok", 1, "1")], run


def test_unix_socket_needs_no_resolver(probe, source):
    run = run_probe(probe, f"host={source.dir} port={source.port} user=postgres dbname=app",
                    "SELECT 1", 5000, "--no-dns")
    assert run.results == [("ok", 1, "1")], run


# -- (6) a failed query leaves the connection usable -------------------------------

def test_syntax_error_then_next_query_on_same_connection(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT pg_backend_pid()", 5000,
                    "--then", "SELEC 1", "--then", "SELECT pg_backend_pid()")
    assert run.rc == 1, run
    first, err, last = run.results
    assert first[0] == "ok" and last[0] == "ok", run
    assert err == ("error", "42601", 'syntax error at or near "SELEC"'), run
    assert first[2] == last[2], "the connection was reopened after a query error"


def test_error_in_multi_statement_reports_first_error(probe, source):
    run = run_probe(probe, ctl_conninfo(source),
                    "SELECT 1; SELECT 1/0; SELECT 3", 5000, "--then", "SELECT 4")
    assert run.results == [("error", "22012", "division by zero"), ("ok", 1, "4")], run


def test_repeat_reuses_connection(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT pg_backend_pid()", 5000,
                    "--repeat", "5")
    assert run.rc == 0, run
    assert len(run.results) == 5 and len({r[2] for r in run.results}) == 1, run


# -- broken connections, queues, reentrancy ---------------------------------------

def test_connection_killed_mid_query_then_reconnects(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT pg_backend_pid()", 5000,
                    "--then", "SELECT pg_terminate_backend(pg_backend_pid())",
                    "--then", "SELECT pg_backend_pid()")
    first, killed, last = run.results
    assert killed[:2] == ("error", "08006"), run
    assert first[0] == "ok" and last[0] == "ok" and first[2] != last[2], run


def test_queue_all_runs_in_order(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT 1", 5000,
                    "--then", "SELEC", "--then", "SELECT 3", "--repeat", "3", "--queue-all")
    assert [r[:2] for r in run.results] == [
        ("ok", 1), ("error", "42601"), ("ok", 1)] * 3, run
    assert [r[2] for r in run.results if r[0] == "ok"] == ["1", "3"] * 3, run


def test_free_inside_callback(probe, source):
    run = run_probe(probe, ctl_conninfo(source), "SELECT 1", 5000,
                    "--then", "SELECT 2", "--free-in-callback")
    assert run.rc == 0 and [r[2] for r in run.results] == ["1", "2"], run


def test_free_inside_callback_with_queries_queued(probe):
    """Queries queued together against a dead port each fail on their own
    connection attempt, in order; the last callback frees the control_conn."""
    port = free_port()
    run = run_probe(probe, f"host=127.0.0.1 port={port} user=x dbname=x", "SELECT 1", 2000,
                    "--repeat", "3", "--queue-all", "--free-in-callback")
    assert [r[:2] for r in run.results] == [("error", "08006")] * 3, run


def test_invalid_conninfo_fails_each_query(probe):
    run = run_probe(probe, "host=127.0.0.1 bogus_option=1", "SELECT 1", 1000,
                    "--then", "SELECT 2")
    assert [r[:2] for r in run.results] == [("error", "08006")] * 2, run
    assert 'invalid connection option "bogus_option"' in run.results[0][2], run


# -- control_conninfo_with_user ----------------------------------------------------

def test_conninfo_with_user_overrides_login(probe, source):
    base = source.conninfo(user="alice", password="wrong", dbname="app")
    run = run_probe(probe, base, "SELECT current_user", 5000,
                    "--user", "pgcutover", "--password", PASSWORDS["pgcutover"])
    assert run.results == [("ok", 1, "pgcutover")], run
    assert "user='pgcutover'" in run.conninfo and "alice" not in run.conninfo, run


def test_conninfo_with_user_quotes_values(probe, source):
    role, password = "ctl o'q", "p w'\\x"
    with source.admin_connect() as c:
        c.execute(f'DROP ROLE IF EXISTS "{role}"')
        c.execute("SET password_encryption = 'scram-sha-256'")
        c.execute(f"""CREATE ROLE "{role}" LOGIN PASSWORD {quote_literal(password)}""")
    try:
        run = run_probe(probe, source.conninfo(user="alice", dbname="app"),
                        "SELECT current_user", 5000, "--user", role, "--password", password)
        assert run.results == [("ok", 1, role)], run
        # without --password the base conninfo's password is kept (and is wrong for role)
        run = run_probe(probe, source.conninfo(user="alice", dbname="app"),
                        "SELECT current_user", 5000, "--user", role)
        assert run.results[0][:2] == ("error", "28P01"), run
    finally:
        with source.admin_connect() as c:
            c.execute(f'DROP ROLE IF EXISTS "{role}"')


def quote_literal(s):
    return "E'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_connect_timeout_from_conninfo(probe):
    """libpq only enforces connect_timeout in blocking calls: control.c does it."""
    srv = SilentServer()
    try:
        run = run_probe(probe, f"host=127.0.0.1 port={srv.port} user=x dbname=x "
                        "sslmode=disable connect_timeout=2", "SELECT 1", 10000)
    finally:
        srv.close()
    assert run.results == [
        ("error", "08006", f"could not connect to 127.0.0.1:{srv.port}: timeout expired")], run
    assert 1900 <= run.total_ms <= 2000 + 1000 * SLOW, run
    assert run.max_lag_ms < MAX_LOOP_LAG_MS, run

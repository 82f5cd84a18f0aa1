"""SWITCH under load, session moving, durability of the route, metrics.

Every test here runs against its own replicated database (`cut_switch`,
logical replication source -> target, see replication.py), never the shared
`app` database.  A test that routed writes to the target marks the pair
dirty and the next test starts from a fresh copy of the source.
"""

import os
import re
import signal
import threading
import time
import urllib.request

import pytest

import wire
from pgutil import PASSWORDS
from replication import (replicated_fixtures, SWITCH_COLUMNS, AdminError, Pgbench, Writer, admin,
                         admin_connect, admin_query, apply_stalled, cutover_proxy, route_of, server_port, stuck_clients,
                         switch, wait_until)

DB = "cut_switch"


repl, rdb = replicated_fixtures(DB)


def ms(row, key):
    v = row[key]
    assert v is not None and re.fullmatch(r"\d+", str(v)), f"{key} = {v!r}"
    return int(v)


def check_switch_row(row, wall_ms, frm="source", to="target"):
    """The row SWITCH answers: ok, and phase milliseconds that add up."""
    assert row["db"] == DB
    assert (row["from"], row["to"]) == (frm, to), row
    assert row["result"] == "ok", row
    assert not row["error"], row
    paused, drain, lag, seq = (ms(row, k) for k in
                               ("paused_ms", "drain_ms", "lag_wait_ms", "sequence_sync_ms"))
    # The pause covers drain, lag wait and sequence sync (plus the flip),
    # and cannot be longer than the SWITCH command itself.
    assert paused + 2 >= drain + lag + seq, row
    assert paused <= wall_ms + 2, (row, wall_ms)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d.*", row["started"]), row
    return paused, drain, lag, seq


# -- 1. pgbench through a SWITCH ------------------------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_mode,mode", [("session", "simple"), ("transaction", "extended")])
def test_switch_under_pgbench(proxy_factory, rdb, pool_mode, mode):
    clients = 8
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode)
    rdb.truncate_history()
    assert route_of(p.admin_port, DB) == ("source", "running")

    with Pgbench(p.port, DB, clients=clients, seconds=6, mode=mode) as pb:
        pb.start()
        wait_until(lambda: rdb.count("source", "pgbench_history") >= 200, 20,
                   what="pgbench committing on the source")
        t0 = time.monotonic()
        row = switch(p, rdb)
        wall_ms = (time.monotonic() - t0) * 1000
        source_rows_at_flip = rdb.count("source", "pgbench_history")
        assert pb.proc.poll() is None, "pgbench ended before the switch: the test proves nothing"
        res = pb.wait(timeout=pb.seconds + 20, on_timeout=lambda: stuck_clients(p))
    target_rows_at_end = rdb.count("target", "pgbench_history")

    # pgbench: exit 0, nothing failed, no client aborted, no error at all.
    assert res.rc == 0, res.stdout
    assert res.committed and res.committed > 0, res.stdout
    assert res.failed == 0, res.stdout
    assert not res.aborted, res.stdout
    assert not res.errors, res.stdout            # duplicate key, serialization, ...
    assert not res.warnings, res.stdout          # no transaction in progress, ...

    # The row: ok, plausible phases, every pgbench session moved, none closed.
    paused, drain, lag, seq = check_switch_row(row, wall_ms)
    assert ms(row, "sequences_synced") >= 1, row       # orders_id_seq
    assert ms(row, "sessions_closed") == 0, row
    if pool_mode == "session":
        assert ms(row, "sessions_moved") == clients, row

    # Nothing ran on the source after the flip: its history stopped growing.
    assert rdb.count("source", "pgbench_history") == source_rows_at_flip
    assert 0 < source_rows_at_flip < res.committed

    # Every committed transaction is on the target: the source's part was
    # replicated before the flip, the rest ran there.
    final = wait_until(lambda: (lambda n: n if n >= res.committed else None)(
        rdb.count("target", "pgbench_history")), 10, what="history settled") \
        if target_rows_at_end < res.committed else target_rows_at_end
    assert final == res.committed, \
        f"target has {final} pgbench_history rows, pgbench committed {res.committed}"
    assert target_rows_at_end == res.committed, (
        f"only {target_rows_at_end} of {res.committed} rows on the target when pgbench ended: "
        f"the flip came before replication had caught up")
    assert rdb.count("target", "orders") == res.committed

    # Sequences: the target is at or beyond the source, and a new order
    # through the proxy lands on the target without a duplicate key.
    src_seq = rdb.sequence_values("source")["public.orders_id_seq"]
    tgt_seq = rdb.sequence_values("target")["public.orders_id_seq"]
    assert tgt_seq is not None and src_seq is not None and tgt_seq >= src_seq, (src_seq, tgt_seq)
    with p.connect(dbname=DB) as c:
        new_id, port = c.execute("INSERT INTO orders (note) VALUES ('after') "
                                 "RETURNING id, inet_server_port()").fetchone()
    assert port == rdb.target.port
    with rdb.src() as s:
        assert new_id > s.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]

    assert route_of(p.admin_port, DB) == ("target", "running")
    history = admin(p.admin_port, "SHOW SWITCHES")
    assert history.columns == SWITCH_COLUMNS
    assert [r["result"] for r in history if r["db"] == DB] == ["ok"]
    print(f"{pool_mode}: committed {res.committed}, paused {paused} ms "
          f"(drain {drain}, lag {lag}, sequences {seq})")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_repeated_switches_under_pgbench(proxy_factory, rdb, pool_mode):
    """Six switches back and forth (lag_method none: the pause is short)
    while 8 pgbench clients run: every client is served after every flip.
    A client left without a server would hang pgbench."""
    clients = 8
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, lag_method="none")
    rdb.truncate_history()
    rows = []
    with Pgbench(p.port, DB, clients=clients, seconds=5, mode="extended") as pb:
        pb.start()
        wait_until(lambda: rdb.count("source", "orders") >= 100, 20, what="pgbench running")
        for k in range(6):
            # lag_method none carries nothing back: a switch back after
            # writes on the target is refused unless FORCE (test_reversible)
            rows.append(switch(p, rdb, "TO target" if k % 2 == 0 else "TO source FORCE"))
            time.sleep(0.3)
        assert pb.proc.poll() is None, "pgbench ended before the last switch"
        res = pb.wait(timeout=pb.seconds + 15, on_timeout=lambda: stuck_clients(p))
    assert res.rc == 0 and res.failed == 0 and not res.aborted and not res.errors, res.stdout
    assert not res.warnings, res.stdout
    # Replication runs source -> target all along and the sequences were
    # synced at every flip: once it has caught up, the target holds every
    # committed transaction, those that ran on either side.
    rdb.wait_caught_up()
    assert rdb.count("target", "pgbench_history") == res.committed
    assert rdb.count("target", "orders") == res.committed
    for r in rows:
        assert r["result"] == "ok" and ms(r, "sessions_closed") == 0, r
        if pool_mode == "session":
            assert ms(r, "sessions_moved") == clients, r
    assert route_of(p.admin_port, DB) == ("source", "running")


# -- 7. session moving ------------------------------------------------------------

def raw_login(p, dbname=DB, user="alice"):
    r = wire.RawConn(port=p.port, timeout=10)
    r.login(user, PASSWORDS[user], database=dbname)
    return r


def no_message(r, wait=0.3):
    """True if the connection stays silent (no unsolicited message) for `wait` s."""
    try:
        m = r.read_msg(timeout=wait)
    except (TimeoutError, OSError):
        return True
    except wire.Closed:
        return False
    raise AssertionError(f"unexpected message {m!r}")


UNMOVABLE = {
    "temp_table": ["CREATE TEMP TABLE t_moving (x int)"],
    "with_hold_cursor": ["BEGIN", "DECLARE cur_moving CURSOR WITH HOLD FOR SELECT 1", "COMMIT"],
    "advisory_lock": ["SELECT pg_advisory_lock(4242)"],
}

# State that moves with the session since issue 4 (test_session_move.py
# covers it in depth): each kind's statements, then a query that must give
# the same rows on the target after the switch.
MOVABLE = {
    "prepared": (["PREPARE stmt_moving AS SELECT 1"], "EXECUTE stmt_moving", [["1"]]),
    "listen": (["LISTEN moving_channel"],
               "SELECT count(*) FROM pg_listening_channels() WHERE pg_listening_channels = "
               "'moving_channel'", [["1"]]),
}


@pytest.mark.timeout(90)
def test_session_moving(proxy_factory, rdb):
    """Session pooling: idle sessions move to the target with their SET
    settings, prepared statements and LISTENs; sessions whose state cannot
    move are closed with 57P01."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")

    # A psycopg session with settings of its own.
    a = p.connect(dbname=DB)
    a.execute("SET search_path = moved_schema, public")
    a.execute("SET statement_timeout = '12345ms'")
    a.execute("SET application_name = 'moving-a'")
    assert server_port(a) == rdb.source.port
    pid_before = a.execute("SELECT pg_backend_pid()").fetchone()[0]

    # A plain raw session, and one raw session per kind of unmovable state.
    plain = raw_login(p)
    assert plain.scalar("SELECT inet_server_port()") == str(rdb.source.port)
    stuck = {}
    for kind, stmts in UNMOVABLE.items():
        r = raw_login(p)
        for q in stmts:
            r.query_values(q)
        stuck[kind] = r
    movers = {}
    for kind, (stmts, _, _) in MOVABLE.items():
        r = raw_login(p)
        for q in stmts:
            r.query_values(q)
        movers[kind] = r

    try:
        t0 = time.monotonic()
        row = switch(p, rdb)
        check_switch_row(row, (time.monotonic() - t0) * 1000)
        assert ms(row, "sessions_moved") == 2 + len(MOVABLE), row   # a, plain, movers
        assert ms(row, "sessions_closed") == len(UNMOVABLE), row

        # The unmovable sessions got FATAL 57P01 "... moved ... reconnect", then EOF.
        for kind, r in stuck.items():
            m = r.read_msg(timeout=5)
            assert m.type == "E", (kind, m)
            f = m.fields
            assert f.get("S") == "FATAL" and f.get("C") == "57P01", (kind, f)
            assert "moved" in f.get("M", "") and "reconnect" in f.get("M", ""), (kind, f)
            assert r.wait_closed(5), f"{kind}: connection not closed after the FATAL"

        # The plain session was not disturbed and now runs on the target.
        assert no_message(plain)
        assert plain.scalar("SELECT inet_server_port()") == str(rdb.target.port)

        # So do the sessions with prepared statements or LISTENs, state included.
        for kind, (_, check, rows) in MOVABLE.items():
            r = movers[kind]
            assert no_message(r), kind
            assert r.scalar("SELECT inet_server_port()") == str(rdb.target.port), kind
            assert r.query_values(check) == rows, kind

        # The psycopg session kept its settings, on a new backend on the target.
        assert server_port(a) == rdb.target.port
        assert a.execute("SHOW search_path").fetchone()[0] == "moved_schema, public"
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "12345ms"
        assert a.execute("SHOW application_name").fetchone()[0] == "moving-a"
        assert a.execute("SELECT pg_backend_pid()").fetchone()[0] != pid_before
        assert a.execute("SELECT 1").fetchone()[0] == 1
    finally:
        a.close()
        plain.close()
        for r in list(stuck.values()) + list(movers.values()):
            r.close()


@pytest.mark.timeout(60)
def test_session_in_transaction_moves_at_its_boundary(proxy_factory, rdb):
    """A session inside a transaction when SWITCH starts runs it to its end
    on the source (the drain waits for it); its next transaction runs on the
    target, and what it committed is there."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    c = p.connect(dbname=DB)
    try:
        c.execute("BEGIN")
        c.execute("INSERT INTO orders (note) VALUES ('in-flight')")
        out = {}

        def do_switch():
            try:
                out["row"] = switch(p, rdb)
            except Exception as e:
                out["error"] = e

        t = threading.Thread(target=do_switch)
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), f"SWITCH returned while a transaction was open: {out}"
        assert route_of(p.admin_port, DB)[1] in ("switching", "paused")
        assert server_port(c) == rdb.source.port        # still inside its transaction
        c.execute("COMMIT")
        t.join(30)
        assert not t.is_alive()
        assert "row" in out, out
        assert out["row"]["result"] == "ok"
        # the drain waited for the COMMIT (its length depends on how long the preflight took)
        assert 0 < ms(out["row"], "drain_ms") <= ms(out["row"], "paused_ms"), out["row"]
        assert server_port(c) == rdb.target.port
        with rdb.tgt() as tc:
            assert tc.execute("SELECT count(*) FROM orders WHERE note = 'in-flight'").fetchone()[0] == 1
    finally:
        c.close()


# -- 3. durability ---------------------------------------------------------------

def route_file(p, db=DB):
    return os.path.join(p.dir, "state", f"{db}.route")


@pytest.mark.timeout(90)
def test_route_survives_sigkill_and_reload(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction")
    with p.connect(dbname=DB) as c:
        assert server_port(c) == rdb.source.port
        c.execute("INSERT INTO orders (note) VALUES ('before kill')")
    row = switch(p, rdb)
    assert row["result"] == "ok"
    # Killed at once, no chance to write anything more.
    p.proc.kill()
    p.proc.wait(timeout=10)
    p.expect_exit = True
    assert os.path.exists(route_file(p)), os.listdir(os.path.join(p.dir, "state"))
    with open(route_file(p)) as f:
        assert "target" in f.read()

    p.expect_exit = False
    p.start()
    assert route_of(p.admin_port, DB) == ("target", "running")
    with p.connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port
        assert c.execute("SELECT count(*) FROM orders WHERE note = 'before kill'").fetchone()[0] == 1

    # RELOAD (admin) and SIGHUP keep the route.
    rows = admin(p.admin_port, "RELOAD")
    assert rows.status == "RELOAD", rows.status
    assert route_of(p.admin_port, DB) == ("target", "running")
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    assert p.wait_log(r"reload", since=mark, timeout=5), "no log line for the SIGHUP reload"
    assert route_of(p.admin_port, DB) == ("target", "running")
    with p.connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port


@pytest.mark.timeout(60)
def test_switch_back_to_source(proxy_factory, rdb):
    """SWITCH TO source goes back (lag_method none: the operator vouches),
    and that decision is durable too."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_method="none")
    row = switch(p, rdb)
    assert (row["to"], row["result"]) == ("target", "ok")
    with pytest.raises(AdminError):   # already there
        switch(p, rdb, "TO target")
    row = switch(p, rdb, "TO source")
    assert (row["from"], row["to"], row["result"]) == ("target", "source", "ok"), row
    assert route_of(p.admin_port, DB) == ("source", "running")
    with p.connect(dbname=DB) as c:
        assert server_port(c) == rdb.source.port
    assert p.stop() == []
    p.start()
    assert route_of(p.admin_port, DB) == ("source", "running")
    assert [r["to"] for r in admin(p.admin_port, "SHOW SWITCHES")] == []  # history is per run


# -- 8. metrics -----------------------------------------------------------------

METRICS = ["pgcutover_clients", "pgcutover_servers", "pgcutover_transactions_total",
           "pgcutover_queries_total", "pgcutover_bytes_received_total",
           "pgcutover_bytes_sent_total", "pgcutover_replication_lag_bytes",
           "pgcutover_route_target", "pgcutover_paused", "pgcutover_switches_total",
           "pgcutover_last_switch_phase_seconds"]


def scrape(p):
    with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
        return r.read().decode()


def samples(text, name):
    """{labels-string: value} of every sample of metric `name`."""
    out = {}
    for ln in text.splitlines():
        if ln.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", ln)
        if m and m.group(1) == name:
            out[m.group(2) or ""] = float(m.group(3))
    return out


RESULT_CLASSES = {"ok", "failed", "dry_run"}


def switch_counts(text, db=DB):
    """{result: value} of pgcutover_switches_total for one database."""
    out = {}
    for labels, v in samples(text, "pgcutover_switches_total").items():
        if f'database="{db}"' in labels:
            out[re.search(r'result="([^"]*)"', labels).group(1)] = int(v)
    return out


def assert_bounded_labels(text):
    """The result label takes one of a few fixed values (never a number or a
    message), and no label value of the switch metrics carries digits."""
    for name in ("pgcutover_switches_total", "pgcutover_last_switch_phase_seconds"):
        for labels in samples(text, name):
            for key, value in re.findall(r'(\w+)="([^"]*)"', labels):
                if key == "result":
                    assert value in RESULT_CLASSES, labels
                if key != "database":
                    assert not re.search(r"\d", value), labels


def of_db(text, name):
    s = {k: v for k, v in samples(text, name).items() if f'database="{DB}"' in k}
    assert s, f"no {name} sample for {DB}:\n{text}"
    return s


@pytest.mark.timeout(60)
def test_metrics(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction")
    with p.connect(dbname=DB) as c:
        for _ in range(5):
            c.execute("SELECT 1")
        # SHOW LAG measures the lag: the gauge has a value from then on
        # ("last measured replication lag (by SHOW LAG or a switch)").
        lag_rows = admin(p.admin_port, f"SHOW LAG {DB}")
        assert lag_rows and lag_rows[0]["lag_bytes"] is not None, lag_rows
        before = scrape(p)
        for name in METRICS:
            assert re.search(rf"^# TYPE {name} (gauge|counter)$", before, re.M), \
                f"{name} not typed:\n{before}"
        # Before any switch, every per-database series has a sample (switch
        # counters and phase durations come with the first switch; the lag
        # gauge is checked last).
        for name in METRICS[:-2]:
            if name != "pgcutover_replication_lag_bytes":
                assert re.search(rf"^{name}(\{{|\s)", before, re.M), f"{name} missing:\n{before}"
        assert list(of_db(before, "pgcutover_route_target").values()) == [0.0]
        assert list(of_db(before, "pgcutover_paused").values()) == [0.0]
        assert sum(of_db(before, "pgcutover_queries_total").values()) >= 5
        assert sum(of_db(before, "pgcutover_transactions_total").values()) >= 5
        assert sum(of_db(before, "pgcutover_clients").values()) >= 1
        assert sum(of_db(before, "pgcutover_bytes_received_total").values()) > 0
        assert sum(of_db(before, "pgcutover_bytes_sent_total").values()) > 0
        switches_before = sum(samples(before, "pgcutover_switches_total").values())
        # the counters exist from the start, one per result class, at 0
        assert switch_counts(before) == {"ok": 0, "failed": 0, "dry_run": 0}, before

        row = switch(p, rdb)
        assert row["result"] == "ok"
        after = scrape(p)
    for name in METRICS:
        assert re.search(rf"^{name}(\{{|\s)", after, re.M), f"{name} missing after a switch:\n{after}"
    assert list(of_db(after, "pgcutover_route_target").values()) == [1.0]
    assert sum(samples(after, "pgcutover_switches_total").values()) == switches_before + 1
    assert switch_counts(after) == {"ok": 1, "failed": 0, "dry_run": 0}, after
    assert_bounded_labels(after)
    phases = of_db(after, "pgcutover_last_switch_phase_seconds")
    assert any('phase="lag_wait"' in k or 'phase="lag wait"' in k or "lag" in k for k in phases), phases
    assert all(v >= 0 for v in phases.values())
    lag = of_db(after, "pgcutover_replication_lag_bytes")
    assert all(v >= 0 for v in lag.values()), lag
    # SHOW LAG measured the lag before the switch: the gauge had it then.
    assert samples(before, "pgcutover_replication_lag_bytes"), \
        "pgcutover_replication_lag_bytes has no sample after SHOW LAG measured the lag"


@pytest.mark.timeout(60)
def test_show_stats_and_metrics_agree(proxy_factory, rdb):
    """SHOW STATS and /metrics read the same counters: for the same database
    they give the same numbers (read while the client is connected and idle)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_method="none")
    pairs = {"total_xact_count": "pgcutover_transactions_total",
             "total_query_count": "pgcutover_queries_total",
             "total_received": "pgcutover_bytes_received_total",
             "total_sent": "pgcutover_bytes_sent_total"}
    with p.connect(dbname=DB) as c:
        for i in range(7):
            c.execute("SELECT %s::int", (i,))          # extended protocol
        c.execute("BEGIN")
        c.execute("SELECT 1")
        c.execute("COMMIT")
        c.execute("SELECT repeat('x', 100000)")
        stats = {r["database"]: r for r in admin(p.admin_port, "SHOW STATS")}[DB]
        text = scrape(p)
        again = {r["database"]: r for r in admin(p.admin_port, "SHOW STATS")}[DB]
    assert stats == again, "the counters moved while nothing ran"
    assert int(stats["total_xact_count"]) >= 9 and int(stats["total_sent"]) > 100000, stats
    for col, metric in pairs.items():
        assert int(stats[col]) == sum(of_db(text, metric).values()), (col, metric, stats, text)


def proxy_backends(cluster, dbname=DB):
    """Client backends of `dbname` that are not pgcutover's control user or
    the suite's superuser: the proxy's pooled server connections."""
    with cluster.admin_connect() as s:
        return s.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                         "AND backend_type = 'client backend' "
                         "AND usename NOT IN ('pgcutover', 'postgres')", (dbname,)).fetchone()[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_no_backend_left_on_source_after_switch(proxy_factory, rdb, pool_mode):
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, lag_method="none")
    clients = [p.connect(dbname=DB) for _ in range(4)]
    try:
        for c in clients:
            assert server_port(c) == rdb.source.port
        with p.connect(dbname=DB) as gone:      # leaves an idle pooled server behind
            gone.execute("SELECT 1")
        assert proxy_backends(rdb.source) >= (5 if pool_mode == "session" else 1)
        row = switch(p, rdb)
        assert row["result"] == "ok", row
        for c in clients:
            assert server_port(c) == rdb.target.port
        wait_until(lambda: proxy_backends(rdb.source) == 0, 5,
                   what="no proxy backend left on the source")
        assert [r for r in admin(p.admin_port, "SHOW SERVERS")
                if r["database"] == DB and r["side"] != "target"] == []
    finally:
        for c in clients:
            c.close()


@pytest.mark.timeout(60)
def test_moved_session_gets_parameter_status(proxy_factory, rdb):
    """The target reports TimeZone differently (a database default set on the
    target only): a session moved at the switch receives a ParameterStatus
    with the new value, as PostgreSQL sends when a reported setting changes,
    without reconnecting."""
    with rdb.tgt() as t:
        t.execute(f"ALTER DATABASE {DB} SET TimeZone = 'Asia/Tokyo'")
    try:
        p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_method="none")
        with p.connect(dbname=DB) as c:
            before = c.info.parameter_status("TimeZone")
            assert before and before != "Asia/Tokyo", before
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            row = switch(p, rdb)
            assert row["result"] == "ok" and ms(row, "sessions_moved") == 1, row
            assert server_port(c) == rdb.target.port
            assert c.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
            assert c.info.parameter_status("TimeZone") == "Asia/Tokyo"
            assert c.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
        # a raw client sees the message itself, before its next query's answer
        r = raw_login(p)
        try:
            assert r.params.get("TimeZone") == "Asia/Tokyo", r.params
        finally:
            r.close()
    finally:
        with rdb.tgt() as t:
            t.execute(f"ALTER DATABASE {DB} RESET TimeZone")


@pytest.mark.timeout(60)
def test_dry_run_measures_and_changes_nothing(proxy_factory, rdb):
    """DRY RUN reports the lag it measured (a real one: the apply worker is
    held and WAL written) and the number of sequences to sync, pauses nothing
    and changes nothing."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    with p.connect(dbname=DB) as c:
        for _ in range(3):
            c.execute("INSERT INTO orders (note) VALUES ('dry run')")
    with rdb.src() as s:
        nseq = s.execute("SELECT count(*) FROM pg_sequences").fetchone()[0]
    assert nseq >= 1
    w = Writer(p, DB, note="dry-run-writer")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        with apply_stalled(rdb):
            with rdb.src() as s:
                s.execute("SELECT pg_logical_emit_message(false, 'pgcutover-test', "
                          "repeat('x', 50000))")
            lag_before = rdb.lag_bytes()
            target_seqs = rdb.sequence_values("target")
            row = switch(p, rdb, "DRY RUN")
            lag_after = rdb.lag_bytes()
            assert rdb.sequence_values("target") == target_seqs
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on")
    finally:
        w.stop()
    m = re.fullmatch(r"dry run: ok \(lag (\d+) bytes, (\d+) sequences to sync\)", row["result"])
    assert m, row
    lag, sequences = int(m.group(1)), int(m.group(2))
    assert 50000 <= lag_before <= lag <= lag_after, (lag_before, lag, lag_after)
    assert sequences == nseq, (sequences, nseq)
    assert (row["db"], row["from"], row["to"]) == (DB, "source", "target"), row
    for k in ("paused_ms", "drain_ms", "lag_wait_ms", "sequence_sync_ms", "sequences_synced",
              "sessions_moved", "sessions_closed"):
        assert ms(row, k) == 0, (k, row)
    assert not row["error"], row
    # nothing paused, flipped or written
    assert w.max_latency < 1.0, w.max_latency
    assert w.ports == {rdb.source.port}, w.ports
    assert route_of(p.admin_port, DB) == ("source", "running")
    assert not os.path.exists(route_file(p))
    assert admin(p.admin_port, "SHOW SWITCHES")[-1]["result"] == row["result"]


@pytest.mark.timeout(120)
def test_switch_counters_outlive_the_bounded_history(proxy_factory, rdb):
    """SHOW SWITCHES keeps the last 256 switches; pgcutover_switches_total
    counts every one, by result class.  Preflight fails at once here (a slot
    that does not exist): 260 dry runs, then 2 real switches that fail."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", replication_slot="no_such_slot",
                      sequence_sync="none")
    dry_runs = 260
    with admin_connect(p.admin_port) as a:
        for _ in range(dry_runs):
            with pytest.raises(AdminError) as ei:
                admin_query(a, f"SWITCH {DB} DRY RUN")
            assert ei.value.sqlstate == "55000", ei.value
        for _ in range(2):
            with pytest.raises(AdminError):
                admin_query(a, f"SWITCH {DB}")
        history = admin_query(a, "SHOW SWITCHES")
    assert len(history) == 256, len(history)
    assert all(r["result"] == "failed" for r in history[-2:]), history[-2:]
    text = scrape(p)
    assert switch_counts(text) == {"ok": 0, "failed": 2, "dry_run": dry_runs}, text
    assert_bounded_labels(text)
    # phase times are those of the latest real switch, not of a dry run
    assert set(of_db(text, "pgcutover_last_switch_phase_seconds").values()) == {0.0}


@pytest.mark.timeout(60)
def test_marker_lag_with_a_schema_qualified_marker_table(proxy_factory, rdb):
    """marker_table may be schema-qualified; each part is read as SQL reads an
    unquoted name (folded to lower case) and quoted in the control queries."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_method="marker",
                      marker_table="Public.PgCutover_Marker")
    with rdb.tgt() as t:
        before = t.execute("SELECT count(*) FROM public.pgcutover_marker").fetchone()[0]
    row = switch(p, rdb)
    assert row["result"] == "ok", row
    with rdb.tgt() as t:
        ids = [r[0] for r in t.execute("SELECT id FROM public.pgcutover_marker")]
    assert len(ids) == before + 1, ids
    assert any(re.fullmatch(rf"{DB}-[0-9a-f]{{24}}", i) for i in ids), ids

"""Sessions survive a SWITCH with their state (issue 4): named prepared
statements, session settings (SET) and LISTEN channels move to the target
with the session; only state that cannot move (a temporary table, an advisory
lock, a WITH HOLD cursor) closes it, with the clear FATAL of the SWITCH issue.

Every test here runs against its own replicated database (`cut_move`,
logical replication source -> target, see replication.py), except the SHOW
CLIENTS one, which needs no switch.  Clients are pgbench -M prepared, psycopg
(prepare_threshold=0: every query a named server-side statement), raw
protocol connections (wire.py: to see every message the client gets, and
none more) and pgjdbc (java/JdbcSwitch.java, prepareThreshold=1).

What the implementation must match (names taken from PRODUCT.md and admin/):
SHOW SWITCHES' sessions_moved / sessions_closed; SHOW CLIENTS' new columns
prepared_statements (a count) and movable ("yes" or the reason, which names
"temporary" for a temporary table, "advisory" for an advisory lock, "hold"
for a WITH HOLD cursor); the FATAL of a closed session: SQLSTATE 57P01, a
message with "moved" and "reconnect" (proxy/client.c client_apply_move).
"""

import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest
from psycopg import pq

import wire
from pgutil import PASSWORDS
from proxyutil import HERE, SLOW
from replication import (replicated_fixtures, Pgbench, admin, cutover_proxy, route_of,
                         server_port, stuck_clients, switch, wait_until)

DB = "cut_move"

repl, rdb = replicated_fixtures(DB)


def ms(row, key):
    v = row[key]
    assert v is not None and re.fullmatch(r"\d+", str(v)), f"{key} = {v!r} in {row}"
    return int(v)


def check_ok(row, moved=None, closed=0):
    """The SWITCH row: ok, to the target, and the session counts expected."""
    assert (row["from"], row["to"], row["result"]) == ("source", "target", "ok"), row
    assert not row["error"], row
    assert ms(row, "sessions_closed") == closed, row
    if moved is not None:
        assert ms(row, "sessions_moved") == moved, row


def psy(p, threshold=None, dbname=DB):
    """psycopg through the proxy, autocommit.  threshold=None: nothing is
    ever server-side prepared (psycopg's default would prepare a query after
    5 executions, which would make a "settings only" session hold
    statements); 0: every query is prepared under a name _pg3_N."""
    return psycopg.connect(p.conninfo(dbname=dbname), autocommit=True,
                           prepare_threshold=threshold)


def target_defaults(db, names):
    """What a fresh session on the target shows for each setting."""
    with psycopg.connect(db.target.conninfo(dbname=DB), autocommit=True,
                         prepare_threshold=None) as d:
        return {n: d.execute(f"SHOW {n}").fetchone()[0] for n in names}


# -- the raw protocol (extended query messages wire.py does not build) ---------

INT4 = 23


def parse_msg(name, sql, types=()):
    return wire.message("P", name.encode() + b"\0" + sql.encode() + b"\0" +
                        struct.pack("!H", len(types)) +
                        b"".join(struct.pack("!I", t) for t in types))


def bind_msg(stmt, params=(), portal=""):
    body = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!H", 0)
    body += struct.pack("!H", len(params))
    for v in params:
        b = str(v).encode()
        body += struct.pack("!i", len(b)) + b
    return wire.message("B", body + struct.pack("!H", 0))


def execute_msg(portal=""):
    return wire.message("E", portal.encode() + b"\0" + struct.pack("!I", 0))


def close_stmt_msg(name):
    return wire.message("C", b"S" + name.encode() + b"\0")


SYNC = wire.message("S")


def raw_login(p, dbname=DB, user="alice"):
    r = wire.RawConn(port=p.port, timeout=10)
    r.login(user, PASSWORDS[user], database=dbname)
    return r


def raw_prepare(r, name, sql, types=()):
    """Parse a named statement + Sync: expects ParseComplete, ReadyForQuery."""
    r.send(parse_msg(name, sql, types) + SYNC)
    msgs = read_reply(r, f"Parse {name}")
    assert [m.type for m in msgs] == ["1", "Z"], msgs


def raw_execute(r, name, params=()):
    """Bind + Execute + Sync on a named statement: (message types, rows)."""
    r.send(bind_msg(name, params) + execute_msg() + SYNC)
    msgs = read_reply(r, f"Bind {name}")
    return [m.type for m in msgs], [wire.parse_datarow(m.payload) for m in msgs if m.type == "D"]


def read_reply(r, what):
    """Messages up to ReadyForQuery; a close (after a FATAL) fails the test
    with what came before it."""
    msgs = []
    while True:
        try:
            m = r.read_msg()
        except wire.Closed:
            raise AssertionError(f"{what}: the proxy closed the session after {msgs}") from None
        msgs.append(m)
        if m.type == "Z":
            return msgs


def raw_simple(r, sql):
    """A simple query: (message types, rows); an ErrorResponse fails the test."""
    r.send(wire.query_msg(sql))
    msgs = read_reply(r, sql)
    errs = [m for m in msgs if m.type == "E"]
    assert not errs, f"{sql}: {errs}"
    return [m.type for m in msgs], [wire.parse_datarow(m.payload) for m in msgs if m.type == "D"]


def assert_not_closed(r, what):
    """Nothing unsolicited (above all no FATAL) arrives for 0.3 s."""
    try:
        m = r.read_msg(timeout=0.3)
    except (TimeoutError, OSError):
        return
    except wire.Closed:
        raise AssertionError(f"{what}: the proxy closed the session at the switch")
    raise AssertionError(f"{what}: unsolicited message after the switch: {m!r}")


def notification(m):
    """NotificationResponse payload: (pid, channel, payload)."""
    pid = struct.unpack("!I", m.payload[:4])[0]
    channel, payload = m.payload[4:].split(b"\0")[:2]
    return pid, channel.decode(), payload.decode()


def next_notification(r, timeout, what):
    """The next NotificationResponse, or None on timeout.  ParameterStatus
    is tolerated; anything else (an ErrorResponse: the session was closed)
    fails the test with what it was."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            m = r.read_msg(timeout=left)
        except (TimeoutError, OSError):
            return None
        except wire.Closed:
            raise AssertionError(f"{what}: the proxy closed the session")
        if m.type == "A":
            return notification(m)
        if m.type != "S":
            raise AssertionError(f"{what}: unexpected message while waiting for a "
                                 f"notification: {m!r}")


# -- 1. pgbench -M prepared through a SWITCH ------------------------------------

@pytest.mark.timeout(150)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_pgbench_prepared_through_switch(proxy_factory, rdb, pool_mode):
    """8 pgbench clients with named prepared statements (-M prepared) across
    a SWITCH: no failed transaction, no session closed, every client still
    connected, every committed transaction on the target.  In transaction
    pooling the pool (4) is smaller than the clients (8): their statements
    of the same names (P_0, P_1...) meet on shared servers."""
    clients = 8
    section = {"pool_size": 4} if pool_mode == "transaction" else {}
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, **section)
    rdb.truncate_history()

    # pgbench prepares each statement with a blocking PQprepare at its first
    # use: in transaction pooling with fewer servers than clients, one thread
    # serving several clients would wait for a server that another of its own
    # clients holds (with any pooler), so every client gets its own thread.
    jobs = clients if pool_mode == "transaction" else None
    with Pgbench(p.port, DB, clients=clients, seconds=6, mode="prepared", jobs=jobs) as pb:
        pb.start()
        try:
            wait_until(lambda: pb.proc.poll() is not None or
                       rdb.count("source", "pgbench_history") >= 200, 20 * SLOW,
                       what="pgbench committing on the source")
        except AssertionError as e:
            raise AssertionError(f"{e}:\n{pb._stdout()}\n{stuck_clients(p)}") from None
        assert pb.proc.poll() is None, f"pgbench ended before the switch:\n{pb._stdout()}"
        row = switch(p, rdb)
        source_rows_at_flip = rdb.count("source", "pgbench_history")
        connected = [r for r in admin(p.admin_port, "SHOW CLIENTS")
                     if r["database"] == DB and r["type"] == "client"]
        res = pb.wait(timeout=pb.seconds + 20, on_timeout=lambda: stuck_clients(p))
    target_rows_at_end = rdb.count("target", "pgbench_history")

    # pgbench: exit 0, nothing failed, no client aborted, no error, no warning
    # ("prepared statement ... does not exist / already exists" show here).
    assert res.rc == 0, res.stdout
    assert res.committed and res.committed > 0, res.stdout
    assert res.failed == 0, res.stdout
    assert not res.aborted, res.stdout
    assert not res.errors, res.stdout
    assert not res.warnings, res.stdout

    # Every client was still connected right after the switch, none closed.
    assert len(connected) == clients, connected
    check_ok(row, moved=clients, closed=0)

    # Nothing ran on the source after the flip; every committed transaction
    # is on the target (replicated before the flip, or run there after it).
    assert rdb.count("source", "pgbench_history") == source_rows_at_flip
    assert 0 < source_rows_at_flip < res.committed, (source_rows_at_flip, res.committed)
    assert target_rows_at_end == res.committed, \
        f"target has {target_rows_at_end} pgbench_history rows, pgbench committed {res.committed}"
    assert rdb.count("target", "orders") == res.committed
    assert route_of(p.admin_port, DB) == ("target", "running")


# -- 2. psycopg: prepared statements and settings ---------------------------------

MOVED_SETTINGS = {"search_path": "move_schema, public", "TimeZone": "Asia/Kathmandu",
                  "statement_timeout": "1777ms"}
MOVED_SETS = ["SET search_path = move_schema, public", "SET TimeZone = 'Asia/Kathmandu'",
              "SET statement_timeout = '1777ms'"]

PROBE = ("SELECT inet_server_port(), %s::int + 1, current_setting('search_path'), "
         "current_setting('TimeZone'), current_setting('statement_timeout')")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_psycopg_prepared_and_settings_survive_switch(proxy_factory, rdb, pool_mode):
    """One psycopg connection, prepare_threshold=0 (its SETs, SHOWs and
    SELECTs are all named server-side statements), with search_path,
    TimeZone and statement_timeout SET: after a SWITCH the same connection
    shows the same settings, and the statements it prepared before (executed
    by name only: Bind, no Parse) run on the target."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode)
    c = psy(p, threshold=0)
    try:
        for q in MOVED_SETS:
            c.execute(q)
        expect = tuple(MOVED_SETTINGS.values())

        def probe(i):
            return c.execute(PROBE, (i,)).fetchone()

        def shows():
            return {n: c.execute(f"SHOW {n}").fetchone()[0] for n in MOVED_SETTINGS}

        for i in range(3):
            assert probe(i) == (rdb.source.port, i + 1) + expect
        assert shows() == MOVED_SETTINGS
        # A statement of our own name, prepared through libpq: executing it
        # later sends Bind/Execute only, so it must exist on the new server.
        res = c.pgconn.prepare(b"move_named", b"SELECT $1::int * 2, inet_server_port()")
        assert res.status == pq.ExecStatus.COMMAND_OK, res.error_message
        res = c.pgconn.exec_prepared(b"move_named", [b"20"])
        assert res.status == pq.ExecStatus.TUPLES_OK, res.error_message
        assert (res.get_value(0, 0), res.get_value(0, 1)) == (b"40", str(rdb.source.port).encode())

        row = switch(p, rdb)

        assert probe(7) == (rdb.target.port, 8) + expect
        assert shows() == MOVED_SETTINGS
        res = c.pgconn.exec_prepared(b"move_named", [b"21"])
        assert res.status == pq.ExecStatus.TUPLES_OK, res.error_message
        assert (res.get_value(0, 0), res.get_value(0, 1)) == (b"42", str(rdb.target.port).encode())
        for i in range(3):
            assert probe(i) == (rdb.target.port, i + 1) + expect
        check_ok(row, moved=1, closed=0)
        # statement_timeout is in force on the target, not only shown
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(6)")
        assert time.monotonic() - t0 < 5, "statement_timeout not in force"
        assert probe(9) == (rdb.target.port, 10) + expect
    finally:
        c.close()


# -- 3. LISTEN -----------------------------------------------------------------

@pytest.mark.timeout(60)
def test_listen_notify_through_proxy(proxy_factory, rdb):
    """Without a switch: a session LISTENing through the proxy gets the
    NOTIFY of another proxied session and of one straight on the source."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    r = raw_login(p)
    try:
        raw_simple(r, "LISTEN plain_chan")
        with psy(p) as other:
            other.execute("NOTIFY plain_chan, 'via proxy'")
        n = next_notification(r, 5, "listener")
        assert n and n[1:] == ("plain_chan", "via proxy"), n
        with rdb.src() as s:
            s.execute("NOTIFY plain_chan, 'on the source'")
        n = next_notification(r, 5, "listener")
        assert n and n[1:] == ("plain_chan", "on the source"), n
    finally:
        r.close()


@pytest.mark.timeout(90)
def test_listen_survives_switch(proxy_factory, rdb):
    """Two sessions LISTEN on move_chan before the SWITCH.  After it, a
    NOTIFY sent on the target (straight to the cluster) reaches them:
    - `busy` sends a query first: the notification sent after that query's
      answer must arrive;
    - `idle` sends nothing at all after the switch (a pure listener): the
      proxy must restore its LISTEN by itself.  Notifications are sent every
      0.25 s for 5 s and one must arrive, so a restoration that completes
      shortly after SWITCH answers is accepted.
    Only committed LISTENs move: `idle` also ran LISTEN in a transaction
    that rolled back, and LISTEN then UNLISTEN on other channels; those
    channels' notifications, sent first in the same transactions on the
    target, must never arrive."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    idle = raw_login(p)
    busy = raw_login(p)
    try:
        for r in (idle, busy):
            raw_simple(r, "LISTEN move_chan")
        raw_simple(idle, "BEGIN")
        raw_simple(idle, "LISTEN move_rolled_back")
        raw_simple(idle, "ROLLBACK")
        raw_simple(idle, "LISTEN move_unlistened")
        raw_simple(idle, "UNLISTEN move_unlistened")
        with rdb.src() as s:
            s.execute("NOTIFY move_rolled_back, 'before'; NOTIFY move_unlistened, 'before'; "
                      "NOTIFY move_chan, 'before'")
        for name, r in (("idle", idle), ("busy", busy)):
            n = next_notification(r, 5, name)
            assert n and n[1:] == ("move_chan", "before"), (name, n)

        row = switch(p, rdb)

        # busy: a query, answered by the target with nothing extra, then a NOTIFY.
        types, rows = raw_simple(busy, "SELECT inet_server_port()")
        assert types == ["T", "D", "C", "Z"], types
        assert rows == [[str(rdb.target.port)]]
        with rdb.tgt() as t:
            t.execute("NOTIFY move_chan, 'after busy'")
        n = next_notification(busy, 5, "busy")
        assert n and n[1:] == ("move_chan", "after busy"), n

        # idle: silent since before the switch.
        got = None
        deadline = time.monotonic() + 5 * SLOW
        k = 0
        with rdb.tgt() as t:
            while got is None and time.monotonic() < deadline:
                k += 1
                t.execute(f"NOTIFY move_rolled_back, 'x{k}'; NOTIFY move_unlistened, 'x{k}'; "
                          f"NOTIFY move_chan, 'after idle {k}'")
                got = next_notification(idle, 0.25, "idle")
        assert got is not None, \
            f"the idle listener got none of {k} notifications sent on the target after the switch"
        # ("after busy" too, if the LISTEN was back on the target by then)
        assert got[1] == "move_chan" and got[2].startswith("after "), got
        # the others of its kind may follow; none of another channel
        while (n := next_notification(idle, 0.3, "idle")) is not None:
            assert n[1] == "move_chan", n
        check_ok(row, moved=2, closed=0)
    finally:
        idle.close()
        busy.close()


@pytest.mark.timeout(90)
def test_own_notification_pid_after_switch(proxy_factory, rdb):
    """After its session moved to the target, a client's own NOTIFY comes
    back with the process ID it was told at login (its old server's), not
    the new server's: applications filter their own notifications by it."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    with psy(p) as c:
        got = []
        c.add_notify_handler(got.append)
        pid = c.info.backend_pid
        c.execute("LISTEN own_move")
        c.execute("NOTIFY own_move, 'before'")
        row = switch(p, rdb)
        assert row["result"] == "ok", row
        assert c.execute("SELECT inet_server_port(), pg_backend_pid()").fetchone()[0] == \
            rdb.target.port
        c.execute("NOTIFY own_move, 'after'")
        c.execute("SELECT 1")
        assert [(n.payload, n.pid) for n in got] == [("before", pid), ("after", pid)], got


# -- 4. only committed settings move -------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_rolled_back_and_local_settings_not_restored(proxy_factory, rdb, pool_mode):
    """After the SWITCH the session shows what PostgreSQL had committed for
    it: a SET in a transaction that rolled back, in a savepoint rolled back
    to, in a transaction that failed, and SET LOCAL, are not carried; a SET
    in a committed transaction and a plain SET are."""
    names = ["statement_timeout", "search_path", "TimeZone", "work_mem", "application_name",
             "lock_timeout", "idle_in_transaction_session_timeout", "DateStyle"]
    default = target_defaults(rdb, names)
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode)
    c = psy(p)
    try:
        c.execute("SET statement_timeout = '1111ms'")
        c.execute("SET search_path = committed_schema, public")
        # rolled back
        c.execute("BEGIN")
        c.execute("SET statement_timeout = '2222ms'")
        c.execute("SET search_path = rolled_back")
        c.execute("SET SESSION TimeZone = 'Asia/Tokyo'")
        c.execute("ROLLBACK")
        # SET LOCAL in a committed transaction
        c.execute("BEGIN")
        c.execute("SET LOCAL work_mem = '7MB'")
        c.execute("SET LOCAL application_name = 'local only'")
        c.execute("COMMIT")
        # committed in a transaction, with a savepoint rolled back to
        c.execute("BEGIN")
        c.execute("SET lock_timeout = '3333ms'")
        c.execute("SAVEPOINT sp")
        c.execute("SET lock_timeout = '4444ms'")
        c.execute("SET idle_in_transaction_session_timeout = '5555ms'")
        c.execute("ROLLBACK TO SAVEPOINT sp")
        c.execute("COMMIT")
        # a transaction that failed, then rolled back
        c.execute("BEGIN")
        c.execute("SET DateStyle = 'SQL, DMY'")
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1/0")
        c.execute("ROLLBACK")

        expect = dict(default)
        expect.update({"statement_timeout": "1111ms", "search_path": "committed_schema, public",
                       "lock_timeout": "3333ms"})

        def shows():
            return {n: c.execute(f"SHOW {n}").fetchone()[0] for n in names}

        assert shows() == expect, "PostgreSQL itself disagrees: the test is wrong"
        assert server_port(c) == rdb.source.port

        row = switch(p, rdb)

        assert server_port(c) == rdb.target.port
        got = shows()
        assert got == expect, {n: (got[n], expect[n]) for n in names if got[n] != expect[n]}
        check_ok(row, moved=1, closed=0)
    finally:
        c.close()


# -- 5. a temporary table closes its session; the others move ---------------------

@pytest.mark.timeout(90)
def test_temp_table_session_closed_others_move(proxy_factory, rdb):
    """Four sessions at the SWITCH: one holding a temporary table is closed
    with FATAL 57P01 (message: moved, temporary, reconnect); a plain one, one
    with settings and one with named prepared statements (a protocol-level
    Parse and an SQL PREPARE) move and keep working, and the prepared one
    sees no reply it did not ask for (no ParseComplete from the restoration)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    temp = raw_login(p)
    prepared = raw_login(p)
    plain = psy(p)
    settings = psy(p)
    try:
        raw_simple(temp, "CREATE TEMP TABLE t_move (x int)")
        raw_simple(temp, "INSERT INTO t_move VALUES (1)")
        assert plain.execute("SELECT 1").fetchone()[0] == 1
        settings.execute("SET search_path = s5_schema, public")
        settings.execute("SET TimeZone = 'America/Denver'")
        raw_prepare(prepared, "p5_named", "SELECT $1::int + 1, inet_server_port()", [INT4])
        raw_simple(prepared, "PREPARE p5_sql(int) AS SELECT $1 * 10, inet_server_port()")
        assert raw_execute(prepared, "p5_named", [1]) == \
            (["2", "D", "C", "Z"], [["2", str(rdb.source.port)]])
        assert raw_simple(prepared, "EXECUTE p5_sql(1)")[1] == [["10", str(rdb.source.port)]]

        row = switch(p, rdb)

        # the prepared session: nothing unsolicited, both statements on the target
        assert_not_closed(prepared, "session with prepared statements")
        assert raw_execute(prepared, "p5_named", [41]) == \
            (["2", "D", "C", "Z"], [["42", str(rdb.target.port)]])
        assert raw_simple(prepared, "EXECUTE p5_sql(4)") == \
            (["T", "D", "C", "Z"], [["40", str(rdb.target.port)]])
        # a new statement after the move works too, and Close of an old one
        raw_prepare(prepared, "p5_after", "SELECT 'after'")
        assert raw_execute(prepared, "p5_after")[1] == [["after"]]
        prepared.send(close_stmt_msg("p5_named") + SYNC)
        assert [m.type for m in read_reply(prepared, "Close p5_named")] == ["3", "Z"]

        assert server_port(plain) == rdb.target.port
        assert server_port(settings) == rdb.target.port
        assert settings.execute("SHOW search_path").fetchone()[0] == "s5_schema, public"
        assert settings.execute("SHOW TimeZone").fetchone()[0] == "America/Denver"

        # the temporary table's session: FATAL, then closed
        m = temp.read_msg(timeout=5)
        assert m.type == "E", m
        f = m.fields
        assert f.get("S") == "FATAL" and f.get("C") == "57P01", f
        msg = f.get("M", "")
        assert "moved" in msg and "reconnect" in msg and "temporary" in msg, msg
        assert temp.wait_closed(5), "the temporary table's session was not closed after its FATAL"

        check_ok(row, moved=3, closed=1)
        history = [r for r in admin(p.admin_port, "SHOW SWITCHES") if r["db"] == DB]
        assert len(history) == 1 and ms(history[0], "sessions_closed") == 1 \
            and ms(history[0], "sessions_moved") == 3, history
    finally:
        for r in (temp, prepared):
            r.close()
        plain.close()
        settings.close()


# -- SHOW CLIENTS: prepared_statements and movable --------------------------------

@pytest.mark.timeout(60)
def test_show_clients_prepared_and_movable(proxy_factory):
    """SHOW CLIENTS counts each session's named prepared statements (Parse,
    PREPARE, less Close and DEALLOCATE) and says whether it could move:
    "yes", or the reason (temporary table, advisory lock, WITH HOLD cursor)."""
    p = proxy_factory.new(name="show-clients")
    conns = {k: raw_login(p, dbname="app") for k in
             ("two_named", "sql_prepared", "closed_one", "temp", "advisory", "hold", "plain")}
    try:
        c = conns["two_named"]
        raw_prepare(c, "s1", "SELECT 1")
        raw_prepare(c, "s2", "SELECT $1::int", [INT4])
        c = conns["sql_prepared"]
        raw_simple(c, "PREPARE q1 AS SELECT 1")
        raw_simple(c, "PREPARE q2 AS SELECT 2")
        raw_simple(c, "DEALLOCATE q1")
        c = conns["closed_one"]
        for n in ("c1", "c2", "c3"):
            raw_prepare(c, n, f"SELECT '{n}'")
        c.send(close_stmt_msg("c3") + SYNC)
        assert [m.type for m in read_reply(c, "Close c3")] == ["3", "Z"]
        raw_simple(conns["temp"], "CREATE TEMP TABLE t_show (x int)")
        raw_simple(conns["advisory"], "SELECT pg_advisory_lock(4343)")
        for q in ("BEGIN", "DECLARE cur_show CURSOR WITH HOLD FOR SELECT 1", "COMMIT"):
            raw_simple(conns["hold"], q)
        raw_simple(conns["plain"], "SELECT 1")

        expect_count = {"two_named": "2", "sql_prepared": "1", "closed_one": "2", "temp": "0",
                        "advisory": "0", "hold": "0", "plain": "0"}
        expect_reason = {"temp": "temporary", "advisory": "advisory", "hold": "hold"}
        by_port = {r.local_port: k for k, r in conns.items()}

        cols = admin(p.admin_port, "SHOW CLIENTS").columns
        missing = [k for k in ("prepared_statements", "movable") if k not in cols]
        assert not missing, f"SHOW CLIENTS has no column {missing}: {cols}"

        def rows():
            out = {}
            got = admin(p.admin_port, "SHOW CLIENTS")
            for row in got:
                port = int(row["addr"].rsplit(":", 1)[1]) if ":" in row["addr"] else None
                if port in by_port:
                    out[by_port[port]] = row
            return out

        def settled():
            r = rows()
            if set(r) != set(conns):
                return None
            for k in conns:
                if r[k]["prepared_statements"] != expect_count[k]:
                    return None
                mv = (r[k]["movable"] or "").lower()
                if k in expect_reason:
                    if expect_reason[k] not in mv or mv == "yes":
                        return None
                elif mv != "yes":
                    return None
            return r

        try:
            wait_until(settled, 5 * SLOW, what="SHOW CLIENTS settled")
        except AssertionError:
            r = rows()
            raise AssertionError("SHOW CLIENTS: " + "; ".join(
                f"{k}: prepared_statements={r[k]['prepared_statements']!r} "
                f"(want {expect_count[k]}), movable={r[k]['movable']!r} "
                f"(want {expect_reason.get(k, 'yes')!r})" if k in r else f"{k}: no row"
                for k in conns)) from None
    finally:
        for r in conns.values():
            r.close()


# -- 8. JDBC --------------------------------------------------------------------

JDBC_JAR = "/usr/share/java/postgresql.jar"
JAVA_SRC = os.path.join(HERE, "java", "JdbcSwitch.java")


@pytest.fixture(scope="module")
def jdbc_classes():
    """JdbcSwitch compiled into a temporary directory: (classpath, java)."""
    java, javac = shutil.which("java"), shutil.which("javac")
    if not java or not javac:
        pytest.skip("java or javac not found on PATH: the JDBC tests need a JDK")
    assert os.path.exists(JDBC_JAR), \
        f"{JDBC_JAR} missing: install libpostgresql-jdbc-java (.ci/deps.sh lists it)"
    out = tempfile.mkdtemp(prefix="pgcutover-jdbc-", dir="/tmp")
    try:
        r = subprocess.run([javac, "-d", out, "-cp", JDBC_JAR, JAVA_SRC],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        assert r.returncode == 0, f"javac failed:\n{r.stdout}"
        yield f"{out}:{JDBC_JAR}", java
    finally:
        shutil.rmtree(out, ignore_errors=True)


class JdbcRun:
    """java JdbcSwitch in the background; its stdout lines collected by a thread."""

    def __init__(self, classes, p, max_seconds=40):
        cp, java = classes
        self.tmp = tempfile.mkdtemp(prefix="pgcutover-jdbcrun-", dir="/tmp")
        self.stop_file = os.path.join(self.tmp, "stop")
        url = (f"jdbc:postgresql://127.0.0.1:{p.port}/{DB}?prepareThreshold=1"
               f"&connectTimeout=10&socketTimeout=30&ApplicationName=jdbc-switch")
        self.argv = [java, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     "-cp", cp, "JdbcSwitch", url, "alice", PASSWORDS["alice"],
                     self.stop_file, str(max_seconds)]
        self.lines = []
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, prefix):
        return any(ln.startswith(prefix) for ln in list(self.lines))

    def wait_for(self, prefix, timeout):
        wait_until(lambda: self.saw(prefix) or self.proc.poll() is not None, timeout,
                   what=f"JdbcSwitch printing {prefix!r}")
        assert self.saw(prefix), f"JdbcSwitch ended before {prefix!r}:\n" + "\n".join(self.lines)

    def finish(self, timeout=30):
        """Create the stop file, wait for the exit: {key: int} of RESULT."""
        open(self.stop_file, "w").close()
        self.proc.wait(timeout=timeout)
        self.reader.join(10)
        text = "\n".join(self.lines)
        res = [ln for ln in self.lines if ln.startswith("RESULT ")]
        assert res, f"JdbcSwitch printed no RESULT (exit {self.proc.returncode}):\n{text}"
        out = {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", res[-1])}
        out["rc"] = self.proc.returncode
        out["text"] = text
        return out

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def jdbc_orders(db):
    with db.tgt() as t:
        return t.execute("SELECT count(*) FROM orders WHERE note = 'jdbc'").fetchone()[0]


@pytest.mark.timeout(90)
def test_jdbc_through_proxy(proxy_factory, rdb, jdbc_classes):
    """Without a switch: pgjdbc (prepareThreshold=1) through the proxy in
    session pooling runs its prepared statements without a failure."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    with JdbcRun(jdbc_classes, p) as j:
        j.start()
        j.wait_for("READY", 40 * SLOW)
        res = j.finish()
    assert res["rc"] == 0 and res["failures"] == 0, res["text"]
    assert res["iterations"] >= 20 and res["committed"] == res["iterations"], res["text"]
    assert res["last_port"] == rdb.source.port, res["text"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_jdbc_through_switch(proxy_factory, rdb, jdbc_classes, pool_mode):
    """pgjdbc with prepareThreshold=1 (named statements S_1, S_2... from the
    first execution) and a SET statement_timeout runs its loop while the
    test runs SWITCH: zero failures, it ends on the target, its session
    setting held all along, and every row it committed is on the target."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode)
    rdb.truncate_history()  # orders of earlier tests would count below
    with JdbcRun(jdbc_classes, p) as j:
        j.start()
        j.wait_for("READY", 40 * SLOW)
        assert j.proc.poll() is None, "\n".join(j.lines)
        row = switch(p, rdb)
        # keep going on the target a little: the statements must run there
        # (a client failing every iteration never gets there: RESULT tells)
        deadline = time.monotonic() + 15 * SLOW
        while time.monotonic() < deadline and j.proc.poll() is None and \
                not j.saw(f"PORT {rdb.target.port}"):
            time.sleep(0.05)
        time.sleep(0.5)
        res = j.finish()
    assert res["rc"] == 0 and res["failures"] == 0, res["text"]
    assert res["last_port"] == rdb.target.port, res["text"]
    assert f"PORT {rdb.source.port} 1" in res["text"], res["text"]
    check_ok(row, closed=0)
    if pool_mode == "session":
        check_ok(row, moved=1, closed=0)
    assert jdbc_orders(rdb) == res["committed"], res["text"]


@pytest.mark.timeout(120)
def test_sessions_leaving_while_the_background_move_checks_them(proxy_factory, rdb):
    """Session pooling: idle sessions move after the resume, a few checks at a
    time (relocate.h).  Sessions that leave (Terminate, then close) while
    theirs is in flight are counted off: never moved, never served what they
    sent, never closed twice (the check's answer used to re-enter the close:
    "illegal state change free -> free", which proxy.stop() reports)."""
    n = 100
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session",
                      settings={"default_pool_size": str(n + 20),
                                "max_client_conn": str(n + 50)})
    idle = [raw_login(p) for _ in range(n)]
    assert idle[-1].scalar("SELECT inet_server_port()") == str(rdb.source.port)
    result = {}
    t = threading.Thread(target=lambda: result.update(row=switch(p, rdb)), daemon=True)
    t.start()
    try:
        # the background move starts with the resume: leave while it runs
        wait_until(lambda: f"switch {DB}: resume" in p.log(), timeout=30 * SLOW, interval=0.005)
        for r in idle:
            r.send(b"X\x00\x00\x00\x04")
            r.close()
    finally:
        t.join(timeout=60 * SLOW)
    assert not t.is_alive(), "SWITCH did not return"
    assert result["row"]["result"] == "ok", result
    log = p.log()
    assert "illegal state change" not in log, log[-3000:]
    # and the proxy serves on, on the target
    c = p.connect(dbname=DB)
    assert server_port(c) == rdb.target.port
    c.close()
    wait_until(lambda: len([r for r in admin(p.admin_port, "SHOW CLIENTS")
                            if r["database"] == DB]) == 0, timeout=10 * SLOW)

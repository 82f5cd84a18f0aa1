"""Everything the protocol carries passes through unchanged (issue point 8):
simple and extended query protocol, pipelines (with an error in the middle),
prepared statements, COPY in both directions, NoticeResponse, LISTEN/NOTIFY,
empty queries, large rows and results, FunctionCall, cancel."""

import hashlib
import os
import select
import struct
import threading
import time

import psycopg
import pytest
from psycopg import pq

import wire
from pgutil import PASSWORDS
from proxyutil import SLOW


# -- helpers ------------------------------------------------------------------

def pq_connect(conninfo):
    """A bare libpq connection (psycopg.pq), blocking mode for sending."""
    pgc = pq.PGconn.connect(conninfo.encode())
    assert pgc.status == pq.ConnStatus.OK, pgc.error_message
    return pgc


def pq_next_result(pgc, timeout=15.0):
    """PQgetResult without ever blocking longer than timeout."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        pgc.consume_input()
        if not pgc.is_busy():
            return pgc.get_result()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out waiting for a result")
        select.select([pgc.socket], [], [], remaining)


def wait_for_activity(admin, query_prefix, timeout=10.0):
    """Wait until a backend runs a query starting with query_prefix; returns its pid."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        row = admin.execute(
            "select pid from pg_stat_activity where state = 'active' and query like %s",
            (query_prefix + "%",)).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError(f"no backend started {query_prefix!r}")


# -- simple and extended protocol ------------------------------------------------

def test_simple_and_extended_with_params(proxy):
    with proxy.connect() as conn:
        # simple protocol (no parameters)
        assert conn.execute("select 1, 'a'::text, null::int").fetchone() == (1, "a", None)
        vals = (7, "héllo wörld", b"\x00\x01\xff" * 100, None, 3.25)
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute("select %s::int, %s::text, %s::bytea, %s::int, %s::float8", vals)
            assert cur.fetchone() == vals
        # multi-statement simple query: every statement runs, every result arrives
        cur = conn.cursor()
        cur.execute("create temp table m(i int); insert into m values (1),(2); "
                    "select sum(i) from m; select 'last'")
        results = []
        while True:
            if cur.pgresult.status == pq.ExecStatus.TUPLES_OK:
                results.append(cur.fetchall())
            if not cur.nextset():
                break
        assert results == [[(3,)], [("last",)]]


def test_transaction_status(proxy):
    """ReadyForQuery's transaction status passes through."""
    with proxy.connect() as conn:
        T = pq.TransactionStatus
        assert conn.info.transaction_status == T.IDLE
        conn.execute("begin")
        assert conn.info.transaction_status == T.INTRANS
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("select 1/0")
        assert conn.info.transaction_status == T.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("select 1")
        conn.execute("rollback")
        assert conn.info.transaction_status == T.IDLE
        assert conn.execute("select 1").fetchone() == (1,)


def test_prepared_statements(proxy):
    with proxy.connect() as conn:
        cur = conn.cursor()
        for i in range(10):
            cur.execute("select %s::int * 2, %s::text", (i, f"v{i}"), prepare=True)
            assert cur.fetchone() == (i * 2, f"v{i}")
        n = conn.execute("select count(*) from pg_prepared_statements "
                         "where statement like 'select $1::int * 2%%'").fetchone()[0]
        assert n == 1, "the statement was not prepared on the server once"
        # SQL-level PREPARE/EXECUTE through the simple protocol
        conn.execute("prepare sq(int) as select $1 + 100")
        assert conn.execute("execute sq(5)").fetchone() == (105,)
        conn.execute("deallocate sq")


def test_pipeline_many_statements(proxy):
    with proxy.connect() as conn:
        conn.execute("create temp table pl(i int)")
        with conn.pipeline():
            for i in range(500):
                conn.execute("insert into pl values (%s)", (i,))
            cur = conn.execute("select count(*), sum(i) from pl")
        assert cur.fetchone() == (500, sum(range(500)))


def pipeline_with_error(conninfo):
    """libpq pipeline: 3 good queries, an error, 3 more, one Sync; then a second
    batch.  Returns the sequence of result statuses (and the error's SQLSTATE)."""
    pgc = pq_connect(conninfo)
    try:
        pgc.enter_pipeline_mode()
        for i in range(3):
            pgc.send_query_params(b"select $1::int", [str(i).encode()])
        pgc.send_query_params(b"select 1/0", None)
        for i in range(3):
            pgc.send_query_params(b"select $1::int", [b"9"])
        pgc.pipeline_sync()
        pgc.send_query_params(b"select 'after'::text", None)
        pgc.pipeline_sync()
        out = []
        syncs = 0
        while syncs < 2:
            res = pq_next_result(pgc)
            if res is None:
                continue
            st = pq.ExecStatus(res.status)
            if st == pq.ExecStatus.PIPELINE_SYNC:
                syncs += 1
                out.append("SYNC")
            elif st == pq.ExecStatus.TUPLES_OK:
                out.append(("ROW", res.get_value(0, 0).decode()))
            elif st == pq.ExecStatus.FATAL_ERROR:
                out.append(("ERROR", res.error_field(pq.DiagnosticField.SQLSTATE).decode()))
            else:
                out.append(st.name)
        pgc.exit_pipeline_mode()
        res = pgc.exec_(b"select 'usable'")
        out.append(res.get_value(0, 0).decode())
        return out
    finally:
        pgc.finish()


def test_pipeline_error_in_the_middle(proxy, source):
    got = pipeline_with_error(proxy.conninfo())
    assert got == [("ROW", "0"), ("ROW", "1"), ("ROW", "2"), ("ERROR", "22012"),
                   "PIPELINE_ABORTED", "PIPELINE_ABORTED", "PIPELINE_ABORTED", "SYNC",
                   ("ROW", "after"), "SYNC", "usable"]
    assert got == pipeline_with_error(source.conninfo())


def test_pipeline_error_psycopg(proxy):
    """psycopg's pipeline: the error surfaces, the statements after it in the
    same pipeline did not run (PipelineAborted on the server side), and the
    connection stays usable."""
    with proxy.connect() as conn:
        conn.execute("create temp table pe(i int)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.pipeline():
                conn.execute("insert into pe values (1)")
                conn.execute("select 1/0")
                conn.execute("insert into pe values (2)")
        # The statements after the error were aborted; everything in that
        # implicit transaction rolled back, as directly.
        assert conn.execute("select count(*) from pe where i = 2").fetchone()[0] == 0
        assert conn.execute("select 'still usable'").fetchone()[0] == "still usable"
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE


def test_extended_error_then_sync(proxy):
    """Raw extended protocol: an error in Bind skips to Sync; the next batch runs."""
    with wire.RawConn(port=proxy.port) as c:
        c.login("alice", PASSWORDS["alice"])
        batch = (wire.message("P", b"\0select $1::int\0" + struct.pack("!H", 0))
                 + wire.message("B", b"\0\0" + struct.pack("!HHI", 0, 1, 3) + b"abc"
                                + struct.pack("!H", 0))
                 + wire.message("E", b"\0" + struct.pack("!I", 0))
                 + wire.message("S"))
        c.send(batch)
        msgs = c.read_until_ready()
        types = [m.type for m in msgs]
        assert types == ["1", "E", "Z"], msgs
        assert msgs[1].sqlstate == "22P02"
        ok = (wire.message("P", b"\0select $1::int + 1\0" + struct.pack("!H", 0))
              + wire.message("B", b"\0\0" + struct.pack("!HHI", 0, 1, 2) + b"41"
                             + struct.pack("!H", 0))
              + wire.message("E", b"\0" + struct.pack("!I", 0))
              + wire.message("S"))
        c.send(ok)
        msgs = c.read_until_ready()
        assert [m.type for m in msgs] == ["1", "2", "D", "C", "Z"], msgs
        assert wire.parse_datarow(msgs[2].payload) == ["42"]


# -- COPY ----------------------------------------------------------------------

N_COPY = 100_000


def test_copy_in_and_out(proxy):
    rows = [(i, f"row-{i}-{'x' * (i % 50)}") for i in range(N_COPY)]
    text = "".join(f"{i}\t{s}\n" for i, s in rows).encode()
    with proxy.connect() as conn:
        conn.execute("create temp table cp(i int, s text)")
        cur = conn.cursor()
        with cur.copy("copy cp (i, s) from stdin") as cp:
            for r in rows:
                cp.write_row(r)
        assert cur.rowcount == N_COPY
        cnt, total, digest = conn.execute(
            "select count(*), sum(i), md5(string_agg(s, ',' order by i)) from cp").fetchone()
        assert cnt == N_COPY
        assert total == sum(range(N_COPY))
        assert digest == hashlib.md5(",".join(s for _, s in rows).encode()).hexdigest()

        got = bytearray()
        with cur.copy("copy (select i, s from cp order by i) to stdout") as cp:
            for chunk in cp:
                got += chunk
        assert len(got) == len(text)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(text).hexdigest()

        # COPY FROM STDIN with raw (non row-by-row) data in large writes
        conn.execute("truncate cp")
        with cur.copy("copy cp (i, s) from stdin") as cp:
            for off in range(0, len(text), 1 << 20):
                cp.write(text[off:off + (1 << 20)])
        assert conn.execute("select count(*) from cp").fetchone()[0] == N_COPY


def test_copy_error_keeps_session(proxy):
    with proxy.connect() as conn:
        conn.execute("create temp table ce(i int)")
        cur = conn.cursor()
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with cur.copy("copy ce from stdin") as cp:
                cp.write("1\n2\nnot-a-number\n4\n")
        assert conn.execute("select count(*) from ce").fetchone()[0] == 0
        # client-side abort of COPY (CopyFail)
        with pytest.raises(psycopg.errors.QueryCanceled):
            with cur.copy("copy ce from stdin") as cp:
                cp.write("1\n")
                raise psycopg.errors.QueryCanceled("client gave up")  # psycopg sends CopyFail
        assert conn.execute("select 'usable'").fetchone()[0] == "usable"


# -- asynchronous messages ------------------------------------------------------

def test_listen_notify_across_sessions(proxy):
    with proxy.connect() as listener, proxy.connect(user="carol") as sender:
        got = []
        listener.add_notify_handler(got.append)
        listener.execute("listen pgc_chan")
        sender_pid = sender.execute("select pg_backend_pid()").fetchone()[0]
        sender.execute("notify pgc_chan, 'hello from carol'")
        # The notification must arrive while the listener is idle: the proxy
        # forwards it without the client asking for anything.
        r, _, _ = select.select([listener.fileno()], [], [], 10 * SLOW)
        assert r, "no NotificationResponse reached the idle listener"
        deadline = time.monotonic() + 10 * SLOW
        while not got and time.monotonic() < deadline:
            listener.execute("select 1")
            time.sleep(0.05)
        assert len(got) == 1, got
        assert got[0].channel == "pgc_chan"
        assert got[0].payload == "hello from carol"
        assert got[0].pid == sender_pid
        # notify inside a transaction: delivered at commit
        with sender.transaction():
            sender.execute("select pg_notify('pgc_chan', 'tx')")
        deadline = time.monotonic() + 10 * SLOW
        while len(got) < 2 and time.monotonic() < deadline:
            listener.execute("select 1")
            time.sleep(0.05)
        assert [n.payload for n in got] == ["hello from carol", "tx"]


def test_notice_response(proxy):
    with proxy.connect() as conn:
        notices = []
        # A Diagnostic is only valid inside the handler: copy its fields.
        conn.add_notice_handler(lambda d: notices.append(
            (d.severity_nonlocalized, d.sqlstate, d.message_primary, d.message_detail)))
        conn.execute("do $$ begin raise notice 'hello %', 42; "
                     "raise warning 'careful' using detail = 'some detail'; end $$")
        assert notices == [("NOTICE", "00000", "hello 42", None),
                           ("WARNING", "01000", "careful", "some detail")]


# -- edge cases ------------------------------------------------------------------

def test_empty_query(proxy):
    with proxy.connect() as conn:
        cur = conn.cursor()
        cur.execute("")
        assert cur.pgresult.status == pq.ExecStatus.EMPTY_QUERY
        cur.execute(";")
        assert cur.pgresult.status == pq.ExecStatus.EMPTY_QUERY
        assert conn.execute("select 1").fetchone() == (1,)
    r = proxy.psql("")
    assert r.returncode == 0, r.stderr
    with wire.RawConn(port=proxy.port) as c:
        c.login("alice", PASSWORDS["alice"])
        assert [m.type for m in c.query("")] == ["I", "Z"]
        # extended protocol empty query: Parse/Bind/Execute/Sync
        c.send(wire.message("P", b"\0\0" + struct.pack("!H", 0))
               + wire.message("B", b"\0\0" + struct.pack("!HHH", 0, 0, 0))
               + wire.message("E", b"\0" + struct.pack("!I", 0))
               + wire.message("S"))
        assert [m.type for m in c.read_until_ready()] == ["1", "2", "I", "Z"]
        assert c.scalar("select 'ok'") == "ok"


def test_large_row_both_directions(proxy):
    size = 50 * 1024 * 1024
    with proxy.connect() as conn:
        v = conn.execute("select repeat('x', %s)", (size,)).fetchone()[0]
        assert len(v) == size and v == "x" * size
        del v
        blob = os.urandom(20 * 1024 * 1024)
        n, digest = conn.execute("select length(%s::bytea), md5(%s::bytea)",
                                 (blob, blob)).fetchone()
        assert n == len(blob)
        assert digest == hashlib.md5(blob).hexdigest()
        cur = conn.cursor(binary=True)
        cur.execute("select %s::bytea", (blob,))
        assert cur.fetchone()[0] == blob


def test_large_result(proxy):
    with proxy.connect() as conn:
        cur = conn.cursor()
        cur.execute("select i, 'r' || i from generate_series(1, 1000000) i")
        rows = cur.fetchall()
        assert len(rows) == 1_000_000
        assert sum(r[0] for r in rows) == 1_000_000 * 1_000_001 // 2
        assert rows[-1] == (1_000_000, "r1000000")


# -- FunctionCall ------------------------------------------------------------------

def test_function_call_psql_large_objects(proxy, tmp_path):
    """psql's \\lo_import and \\lo_export use libpq's large-object API, which
    speaks FunctionCall (PQfn)."""
    data = os.urandom(300_000)
    src = tmp_path / "blob.in"
    dst = tmp_path / "blob.out"
    src.write_bytes(data)
    r = proxy.psql(f"\\lo_import {src}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("lo_import "), r.stdout
    oid = int(r.stdout.split()[1])
    try:
        r = proxy.psql(f"\\lo_export {oid} {dst}")
        assert r.returncode == 0, r.stderr
        assert dst.read_bytes() == data
    finally:
        proxy.psql(f"\\lo_unlink {oid}")


def test_function_call_raw(proxy):
    with wire.RawConn(port=proxy.port) as c:
        c.login("alice", PASSWORDS["alice"])
        oid = int(c.scalar("select 'int4pl'::regproc::oid"))
        args = struct.pack("!IiIi", 4, 40, 4, 2)
        c.send(wire.message("F", struct.pack("!IHHH", oid, 1, 1, 2) + args + struct.pack("!H", 1)))
        msgs = c.read_until_ready()
        assert [m.type for m in msgs] == ["V", "Z"], msgs
        ln, val = struct.unpack("!ii", msgs[0].payload)
        assert (ln, val) == (4, 42)
        # an error in a FunctionCall (division by zero in int4div) keeps the session
        oid = int(c.scalar("select 'int4div'::regproc::oid"))
        c.send(wire.message("F", struct.pack("!IHHH", oid, 1, 1, 2)
                            + struct.pack("!IiIi", 4, 1, 4, 0) + struct.pack("!H", 1)))
        msgs = c.read_until_ready()
        assert [m.type for m in msgs] == ["E", "Z"], msgs
        assert msgs[0].sqlstate == "22012"
        assert c.scalar("select 'ok'") == "ok"


# -- cancel --------------------------------------------------------------------

def test_cancel(proxy, source):
    with proxy.connect() as conn, proxy.connect() as other, source.admin_connect() as admin:
        result = {}

        def run_other():
            try:
                t0 = time.monotonic()
                other.execute("select pg_sleep(2) /* other */")
                result["other"] = time.monotonic() - t0
            except Exception as e:  # reported by the main thread
                result["other"] = e

        th = threading.Thread(target=run_other)
        th.start()
        wait_for_activity(admin, "select pg_sleep(2) /* other */")

        def cancel_later():
            wait_for_activity(admin, "select pg_sleep(30)")
            conn.cancel()

        canceller = threading.Thread(target=cancel_later)
        canceller.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as ei:
            conn.execute("select pg_sleep(30)")
        elapsed = time.monotonic() - t0
        canceller.join(10)
        assert ei.value.sqlstate == "57014"
        assert elapsed < 15, f"cancel took {elapsed:.1f}s"
        assert conn.execute("select 'usable'").fetchone()[0] == "usable"
        th.join(30)
        # The cancel reached the right server: the other session was not touched.
        assert isinstance(result.get("other"), float), result


def test_cancel_with_wrong_key_is_ignored(proxy, source):
    with wire.RawConn(port=proxy.port) as c, source.admin_connect() as admin:
        c.login("alice", PASSWORDS["alice"])
        pid, secret = c.key
        c.send(wire.query_msg("select pg_sleep(1.5) /* wrongkey */"))
        wait_for_activity(admin, "select pg_sleep(1.5) /* wrongkey */")
        wire.cancel_request("127.0.0.1", proxy.port, pid, secret ^ 0x5a5a5a5a)
        wire.cancel_request("127.0.0.1", proxy.port, pid ^ 0x1, secret)
        msgs = c.read_until_ready(timeout=15)
        assert "E" not in [m.type for m in msgs], msgs
        # and the right key does cancel
        c.send(wire.query_msg("select pg_sleep(30) /* rightkey */"))
        wait_for_activity(admin, "select pg_sleep(30) /* rightkey */")
        wire.cancel_request("127.0.0.1", proxy.port, pid, secret)
        msgs = c.read_until_ready(timeout=15)
        errs = wire.errors(msgs)
        assert errs and errs[0].sqlstate == "57014", msgs


def test_backend_key_data_pid_is_the_servers_key_is_pgcutover_own(proxy, source):
    """Session pooling (issue 18): the client's BackendKeyData carries its
    server's process id, so pg_backend_pid() agrees with it, and a secret key
    of pgcutover's own: every session gets a key of its own, the key cancels
    through pgcutover, and a CancelRequest with the process id and a wrong
    key cancels nothing."""
    conns = [wire.RawConn(port=proxy.port) for _ in range(3)]
    try:
        keys, backends = [], []
        for c in conns:
            c.login("alice", PASSWORDS["alice"])
            assert c.key is not None, "no BackendKeyData"
            keys.append(c.key)
            backends.append(int(c.scalar("select pg_backend_pid()")))
        with source.admin_connect() as admin:
            pids = {r[0] for r in admin.execute(
                "select pid from pg_stat_activity where usename = 'alice'")}
        assert set(backends) <= pids, (backends, pids)
        for (pid, _), backend in zip(keys, backends):
            assert pid == backend, (pid, backend)
        assert len({k for _, k in keys}) == len(keys), keys
        c = conns[0]
        c.send(wire.query_msg("select pg_sleep(30) /* own key */"))
        with source.admin_connect() as admin:
            wait_for_activity(admin, "select pg_sleep(30) /* own key */")
        # the right process id with a wrong key: nothing happens
        wire.cancel_request("127.0.0.1", proxy.port, keys[0][0], (keys[0][1] + 1) & 0xffffffff)
        with pytest.raises((TimeoutError, OSError)):
            c.read_msg(timeout=0.5)
        # the proxy's key cancels (it is mapped to the server's)
        wire.cancel_request("127.0.0.1", proxy.port, *keys[0])
        errs = wire.errors(c.read_until_ready(timeout=15))
        assert errs and errs[0].sqlstate == "57014", errs
    finally:
        for c in conns:
            c.close()

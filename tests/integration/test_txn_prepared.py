"""Transaction pooling keeps each client's session its own (issue 4, points
4 and 1): named prepared statements work whichever server a client's next
transaction lands on, even when every client uses the same names for
different texts, and a client's SETs apply to each of its later
transactions and never to another client's.

The pools here are smaller than the number of clients (pool size 1 or 2), so
the clients' transactions interleave on the same server connections.  No
switch is involved: the shared `app` database on the source is enough.

psycopg with prepare_threshold=0 prepares every query under the names
_pg3_0, _pg3_1... in the order a connection first runs them: the same names
in every client.  Statements of our own names go through libpq
(pgconn.prepare / exec_prepared: Parse once, then Bind/Execute only).  After
a rolled-back transaction psycopg sends DEALLOCATE ALL (through the extended
protocol, an unnamed Parse) and forgets its names: that must drop this
client's statements only.
"""

import random
import threading
import time

import psycopg
import pytest
from psycopg import pq

from proxyutil import SLOW

OK = pq.ExecStatus.COMMAND_OK
TUPLES = pq.ExecStatus.TUPLES_OK


def txn_proxy(factory, pool_size, name):
    return factory.new(settings={"pool_mode": "transaction", "default_pool_size": pool_size},
                       name=name)


def psy(p, threshold):
    return psycopg.connect(p.conninfo(), autocommit=True, prepare_threshold=threshold)


def result_error(res):
    return f"{pq.ExecStatus(res.status).name} {res.error_field(pq.DiagnosticField.SQLSTATE)!r} " \
           f"{(res.error_message or b'').decode(errors='replace').strip()}"


def run_clients(n, body, timeout):
    """Run body(k, barrier, out) in n threads started together; returns the
    list of per-client dicts.  A thread still running after `timeout` fails
    the test (the watchdog kills the proxy if a libpq call is stuck)."""
    barrier = threading.Barrier(n)
    outs = [{"errors": [], "pids": set(), "executions": 0} for _ in range(n)]

    def wrap(k):
        try:
            body(k, barrier, outs[k])
        except threading.BrokenBarrierError:
            outs[k]["errors"].append(f"client {k}: did not start: another client failed first")
        except Exception as e:  # reported below
            outs[k]["errors"].append(f"client {k}: {type(e).__name__}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=wrap, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = [k for k, t in enumerate(threads) if t.is_alive()]
    assert not stuck, f"clients {stuck} still running after {timeout}s"
    return outs


def check_outs(outs, pool_size, min_executions):
    errors = [e for o in outs for e in o["errors"]]
    assert not errors, f"{len(errors)} errors, first ones:\n" + "\n".join(errors[:15])
    pids = set().union(*(o["pids"] for o in outs))
    # every client ran on the pool's few servers: they did share them
    assert 1 <= len(pids) <= pool_size, pids
    for k, o in enumerate(outs):
        assert o["executions"] >= min_executions, (k, o["executions"])


# -- 6. same statement names, different texts, shared servers ---------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("rollbacks", [False, True], ids=["plain", "with_rollbacks"])
def test_txn_prepared_same_names(proxy_factory, rollbacks):
    """6 clients, pool size 2.  Each prepares, under the same names as the
    others, statements whose results are its own (psycopg's _pg3_N, plus
    "shared_name" of our own through libpq, plus unnamed statements), and
    runs them many times, alone or several in one transaction: every
    execution returns that client's own result, and there is no "prepared
    statement already exists / does not exist" error.

    with_rollbacks: every 7th iteration is a transaction that rolls back;
    psycopg then sends DEALLOCATE ALL and prepares its queries again under
    new names.  DEALLOCATE ALL drops this client's statements, all of them
    (shared_name must be gone for it, then prepare again without "already
    exists"), and none of another client's."""
    clients, pool_size, iterations = 6, 2, 80
    p = txn_proxy(proxy_factory, pool_size, "txn-same-names")

    def body(k, barrier, out):
        errors = out["errors"]
        q_a = f"SELECT 'client-{k}', %s::int + {k * 1000}, pg_backend_pid()"
        q_b = f"SELECT %s::text || ' from client {k}'"
        shared_sql = f"SELECT {k} * 100000 + $1::int".encode()
        with psy(p, 0) as c:
            pg = c.pgconn

            def check_a(i):
                r = c.execute(q_a, (i,)).fetchone()
                if r[:2] != (f"client-{k}", i + k * 1000):
                    errors.append(f"client {k} iteration {i}: _pg3 statement A returned {r[:2]}")
                out["pids"].add(r[2])
                out["executions"] += 1

            def check_b(i):
                r = c.execute(q_b, (f"v{i}",)).fetchone()
                if r != (f"v{i} from client {k}",):
                    errors.append(f"client {k} iteration {i}: _pg3 statement B returned {r}")
                out["executions"] += 1

            def check_shared(i):
                res = pg.exec_prepared(b"shared_name", [str(i).encode()])
                if res.status != TUPLES:
                    errors.append(f"client {k} iteration {i}: shared_name: {result_error(res)}")
                    return
                v = int(res.get_value(0, 0))
                if v != k * 100000 + i:
                    errors.append(f"client {k} iteration {i}: shared_name returned {v} "
                                  f"(client {v // 100000}'s statement)")
                out["executions"] += 1

            def check_unnamed(i):
                res = pg.exec_params(f"SELECT $1::int + {k}".encode(), [str(i).encode()])
                if res.status != TUPLES or int(res.get_value(0, 0)) != i + k:
                    errors.append(f"client {k} iteration {i}: unnamed: "
                                  f"{result_error(res) if res.status != TUPLES else res.get_value(0, 0)}")

            def prepare_shared(i):
                res = pg.prepare(b"shared_name", shared_sql)
                if res.status != OK:
                    errors.append(f"client {k} iteration {i}: prepare shared_name: "
                                  f"{result_error(res)}")

            # The same order in every client: _pg3_0 is A, _pg3_1 is B everywhere.
            check_a(-1)
            check_b(-1)
            prepare_shared(-1)
            barrier.wait(timeout=30)
            rnd = random.Random(k)
            for i in range(iterations):
                if len(errors) > 20:
                    return
                if rollbacks and i % 7 == 3:
                    with c.transaction():
                        check_a(i)
                        raise psycopg.Rollback()
                    # DEALLOCATE ALL went with the ROLLBACK: shared_name is gone
                    res = pg.exec_prepared(b"shared_name", [b"0"])
                    if res.status == TUPLES or \
                            res.error_field(pq.DiagnosticField.SQLSTATE) != b"26000":
                        errors.append(f"client {k} iteration {i}: shared_name still executes "
                                      f"after DEALLOCATE ALL: {result_error(res)}")
                    prepare_shared(i)
                steps = [check_a, check_b, check_shared, check_unnamed]
                rnd.shuffle(steps)
                if i % 5 == 0:
                    with c.transaction():
                        for s in steps:
                            s(i)
                else:
                    for s in steps:
                        s(i)
                if i % 10 == 0:
                    time.sleep(0.001 * rnd.random())

    outs = run_clients(clients, body, 90 * SLOW)
    check_outs(outs, pool_size, min_executions=3 * iterations)


@pytest.mark.timeout(120)
def test_txn_many_prepared_statements(proxy_factory):
    """2 clients, pool size 1, 300 named statements each under the same 300
    names (more than a bounded per-server cache would hold at once): every
    one still executes with its client's text, in a random order, twice."""
    clients, pool_size, count = 2, 1, 300
    p = txn_proxy(proxy_factory, pool_size, "txn-many")

    def body(k, barrier, out):
        errors = out["errors"]
        with psy(p, None) as c:
            pg = c.pgconn
            for j in range(count):
                res = pg.prepare(f"many_{j}".encode(), f"SELECT {k}, {j}, pg_backend_pid()".encode())
                if res.status != OK:
                    errors.append(f"client {k}: prepare many_{j}: {result_error(res)}")
                    return
            barrier.wait(timeout=30)
            order = list(range(count)) * 2
            random.Random(k).shuffle(order)
            for j in order:
                if len(errors) > 20:
                    return
                res = pg.exec_prepared(f"many_{j}".encode(), [])
                if res.status != TUPLES:
                    errors.append(f"client {k}: many_{j}: {result_error(res)}")
                    continue
                got = (int(res.get_value(0, 0)), int(res.get_value(0, 1)))
                if got != (k, j):
                    errors.append(f"client {k}: many_{j} returned {got}")
                out["pids"].add(int(res.get_value(0, 2)))
                out["executions"] += 1

    outs = run_clients(clients, body, 90 * SLOW)
    check_outs(outs, pool_size, min_executions=2 * count)


# -- 7. SET is each client's own ------------------------------------------------------

NAMES = ["statement_timeout", "search_path", "TimeZone"]


def seen(conn, in_tx):
    """(settings, backend pid) as conn sees them, in one transaction or in
    autocommit statements (each its own transaction)."""
    def q():
        got = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in NAMES}
        return got, conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    if in_tx:
        with conn.transaction():
            return q()
    return q()


@pytest.mark.timeout(90)
def test_txn_settings_are_per_client(proxy_factory, source):
    """Pool size 1: clients A and B share one server connection.  A SETs
    statement_timeout and search_path (simple queries, SET and SET SESSION);
    B SETs TimeZone through the extended protocol.  In every later
    transaction, alone or several statements long, each sees its own values
    and the defaults for the rest; A's statement_timeout is in force for A
    only; RESET and RESET ALL act on their client alone; a new client sees
    the defaults."""
    with psycopg.connect(source.conninfo(), autocommit=True, prepare_threshold=None) as d:
        default = {n: d.execute(f"SHOW {n}").fetchone()[0] for n in NAMES}
    assert default["statement_timeout"] == "0" and default["TimeZone"] != "Pacific/Chatham"
    p = txn_proxy(proxy_factory, 1, "txn-settings")
    a = psy(p, None)
    b = psy(p, None)
    try:
        a.execute("SET statement_timeout TO 1500")
        a.execute("SET SESSION search_path = foo, public")
        res = b.pgconn.exec_params(b"SET TimeZone = 'Pacific/Chatham'", [])
        assert res.status == OK, result_error(res)
        want_a = dict(default, statement_timeout="1500ms", search_path="foo, public")
        want_b = dict(default, TimeZone="Pacific/Chatham")

        pids = set()
        for i in range(12):
            for who, conn, want in (("A", a, want_a), ("B", b, want_b)):
                got, pid = seen(conn, in_tx=i % 2 == 1)
                assert got == want, f"{who}, round {i}: sees {got}, its own settings are {want}"
                pids.add(pid)
        assert len(pids) == 1, f"A and B did not share one server: {pids}"

        # In force, not only shown: A is cancelled, B (on the same server) is not.
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            a.execute("SELECT pg_sleep(4)")
        assert time.monotonic() - t0 < 3.5
        assert b.execute("SELECT pg_sleep(2), 'B not cancelled'").fetchone()[1] == "B not cancelled"

        # A SET in a transaction of A that commits is A's; one that rolls back is not.
        with a.transaction():
            a.execute("SET search_path = public, foo")
        with a.transaction():
            a.execute("SET statement_timeout = '2500ms'")
            raise psycopg.Rollback()
        want_a["search_path"] = "public, foo"
        for conn, want in ((b, want_b), (a, want_a), (b, want_b)):
            assert seen(conn, False)[0] == want

        # RESET, then RESET ALL, affect their own client only.
        a.execute("RESET statement_timeout")
        want_a["statement_timeout"] = default["statement_timeout"]
        for conn, want in ((a, want_a), (b, want_b), (a, want_a)):
            assert seen(conn, True)[0] == want
        b.execute("RESET ALL")
        for conn, want in ((b, default), (a, want_a), (b, default)):
            assert seen(conn, False)[0] == want

        with psy(p, None) as c:
            assert seen(c, False)[0] == default, "a new client inherits another one's settings"
            assert seen(c, True)[0] == default
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(60)
def test_txn_hidden_reported_setting_stays_its_clients(proxy_factory, source):
    """Pool size 1, transaction pooling: A changes TimeZone and DateStyle
    where no first keyword shows it (set_config() inside a SELECT, and a
    function that runs SET).  The server reports both (ParameterStatus), so
    pgcutover asks for the session's state at the boundary: B, on the same
    server, keeps the defaults; A keeps its values in later transactions."""
    with psycopg.connect(source.conninfo(), autocommit=True) as d:
        d.execute("CREATE OR REPLACE FUNCTION pgc_set_datestyle() RETURNS int "
                  "LANGUAGE plpgsql AS $$ BEGIN SET DateStyle = 'SQL, DMY'; RETURN 1; END $$")
        d.execute("GRANT EXECUTE ON FUNCTION pgc_set_datestyle() TO PUBLIC")
        default = {n: d.execute(f"SHOW {n}").fetchone()[0] for n in ("TimeZone", "DateStyle")}
    assert default["TimeZone"] != "Asia/Kathmandu" and default["DateStyle"] != "SQL, DMY"
    p = txn_proxy(proxy_factory, 1, "txn-hidden-set")
    a = psy(p, None)
    b = psy(p, None)
    try:
        a.execute("SELECT 1, set_config('TimeZone', 'Asia/Kathmandu', false)")
        a.execute("SELECT pgc_set_datestyle()")
        want_a = {"TimeZone": "Asia/Kathmandu", "DateStyle": "SQL, DMY"}
        pids = set()
        for i in range(4):
            for who, conn, want in (("B", b, default), ("A", a, want_a)):
                got = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in want}
                assert got == want, f"{who}, round {i}: sees {got}, its own settings are {want}"
                pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        assert len(pids) == 1, f"A and B did not share one server: {pids}"
    finally:
        a.close()
        b.close()

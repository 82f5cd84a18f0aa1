"""What drivers' own test suites found (issue 18): each test here failed
through an earlier pgcutover and passes directly against PostgreSQL.

- A statement made stale by DDL: after ALTER TABLE ... TYPE, a driver
  prepares the same text again under a new name (asyncpg does, after
  "cached plan must not change result type"); it must get a statement with
  the new definition (its ParameterDescription, its result), never the old
  server statement that pgcutover already had for that text.
"""

import asyncio
import threading

import psycopg
import pytest
from psycopg import pq

from pgutil import PASSWORDS

MODES = ["session", "transaction"]


def proxy_for(factory, mode, **settings):
    s = {"pool_mode": mode, "default_pool_size": 2}
    s.update(settings)
    return factory.new(settings=s, name=f"drivers-{mode}")


@pytest.fixture
def stale_table(source):
    """app.stale_t(a int) on the source, owned by alice; dropped afterwards."""
    with source.admin_connect(dbname="app") as c:
        c.execute("DROP TABLE IF EXISTS stale_t")
        c.execute("CREATE TABLE stale_t (a int)")
        c.execute("INSERT INTO stale_t VALUES (1), (2)")
        c.execute("ALTER TABLE stale_t OWNER TO alice")
    yield "stale_t"
    with source.admin_connect(dbname="app") as c:
        c.execute("DROP TABLE IF EXISTS stale_t")


def alter_to_text(source):
    """The DDL, from a session that does not go through pgcutover."""
    with source.admin_connect(dbname="app") as c:
        c.execute("ALTER TABLE stale_t ALTER a TYPE text")
        c.execute("INSERT INTO stale_t VALUES ('x')")


QUERY = b"SELECT a FROM stale_t WHERE a = $1"


@pytest.mark.parametrize("mode", MODES)
def test_prepare_again_after_alter_type_gets_the_new_definition(proxy_factory, source,
                                                               stale_table, mode):
    """libpq, as a driver would: Parse, Describe, Execute; ALTER ... TYPE from
    another session; Parse the same text under a new name: its Describe says
    text, and executing it with a text parameter works."""
    p = proxy_for(proxy_factory, mode)
    # a second client of the same user prepares the text too (transaction
    # pooling shares server connections between them)
    with p.connect() as other, p.connect() as c:
        for conn in (other, c):
            pg = conn.pgconn
            assert pg.prepare(b"s1", QUERY).status == pq.ExecStatus.COMMAND_OK
            d = pg.describe_prepared(b"s1")
            assert d.nparams == 1 and d.param_type(0) == 23, d.param_type(0)  # int4
            r = pg.exec_prepared(b"s1", [b"1"])
            assert r.status == pq.ExecStatus.TUPLES_OK, r.error_message
        alter_to_text(source)
        pg = c.pgconn
        # as directly: the old statement keeps its int4 parameter, which no longer compares
        r = pg.exec_prepared(b"s1", [b"1"])
        assert r.status == pq.ExecStatus.FATAL_ERROR
        assert r.error_field(pq.DiagnosticField.SQLSTATE) == b"42883", r.error_message
        # the driver's retry: the same text under a new name
        assert pg.prepare(b"s2", QUERY).status == pq.ExecStatus.COMMAND_OK
        d = pg.describe_prepared(b"s2")
        assert d.nparams == 1 and d.param_type(0) == 25, d.param_type(0)  # text
        assert d.nfields == 1 and d.ftype(0) == 25, d.ftype(0)
        for _ in range(4):  # whichever server each execution lands on
            r = pg.exec_prepared(b"s2", [b"x"])
            assert r.status == pq.ExecStatus.TUPLES_OK, r.error_message
            assert r.ntuples == 1 and r.get_value(0, 0) == b"x"
        # the other client, which prepared before the ALTER, prepares the text again too
        assert other.pgconn.prepare(b"s3", QUERY).status == pq.ExecStatus.COMMAND_OK
        d = other.pgconn.describe_prepared(b"s3")
        assert d.param_type(0) == 25, d.param_type(0)
        r = other.pgconn.exec_prepared(b"s3", [b"x"])
        assert r.status == pq.ExecStatus.TUPLES_OK, r.error_message


@pytest.mark.parametrize("mode", MODES)
def test_asyncpg_retries_a_stale_statement(proxy_factory, source, stale_table, mode):
    """asyncpg caches statements; after ALTER ... TYPE its cached one gets
    0A000 "cached plan must not change result type", and asyncpg prepares the
    text again, which must work (it failed the same way forever before)."""
    asyncpg = pytest.importorskip("asyncpg")
    p = proxy_for(proxy_factory, mode)

    async def body():
        conn = await asyncpg.connect(host=p.listen_host(), port=p.port, user="alice",
                                     password=PASSWORDS["alice"], database="app",
                                     statement_cache_size=100)
        try:
            q = "SELECT a FROM stale_t ORDER BY a LIMIT 1"
            assert await conn.fetchval(q) == 1
            await asyncio.get_running_loop().run_in_executor(None, alter_to_text, source)
            # asyncpg's own retry of "cached plan must not change result type"
            assert await conn.fetchval(q) == "1"
            for _ in range(4):  # whichever server each lands on
                assert await conn.fetchval(q) == "1"
        finally:
            await conn.close()

    asyncio.run(body())


# -- the unnamed statement across round trips (psql's \gdesc) --------------------


@pytest.mark.parametrize("mode", MODES)
def test_psql_gdesc(proxy_factory, source, mode):
    """psql's \\gdesc Parses the unnamed statement, then Describes it in a
    second round trip; for a utility statement it prints that there is no
    result, and runs nothing."""
    p = proxy_for(proxy_factory, mode)
    with source.admin_connect(dbname="app") as c:
        c.execute("DROP TABLE IF EXISTS bububu")
    r = p.psql(input="CREATE TABLE bububu(a int) \\gdesc\nSELECT 1 AS x, 'a'::text AS y \\gdesc\n")
    assert r.returncode == 0, r.stderr
    assert "ERROR" not in r.stderr, r.stderr
    assert "The command has no result, or the result has no columns." in r.stdout, r.stdout
    assert "x|integer" in r.stdout and "y|text" in r.stdout, r.stdout
    with source.admin_connect(dbname="app") as c:
        assert c.execute("SELECT to_regclass('bububu')").fetchone()[0] is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sql,ncols", [(b"SELECT 1 AS a, 2 AS b", 2),
                                       (b"SET work_mem = '3MB'", 0),
                                       (b"CREATE TEMP TABLE IF NOT EXISTS gd (a int)", 0)])
def test_unnamed_prepare_then_describe_and_execute(proxy_factory, mode, sql, ncols):
    """PQprepare with an empty name, then PQdescribePrepared and
    PQexecPrepared of it, each in its own round trip."""
    p = proxy_for(proxy_factory, mode)
    with p.connect() as c:
        pg = c.pgconn
        assert pg.prepare(b"", sql).status == pq.ExecStatus.COMMAND_OK
        d = pg.describe_prepared(b"")
        assert d.status == pq.ExecStatus.COMMAND_OK, d.error_message
        assert d.nfields == ncols
        r = pg.exec_prepared(b"", [])
        assert r.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK), r.error_message
        if sql.startswith(b"SET"):
            # executed: the setting is this session's, in both pool modes
            assert c.execute("SHOW work_mem").fetchone()[0] == "3MB"
        # and again, on a fresh unnamed statement
        assert pg.prepare(b"", b"SELECT 42").status == pq.ExecStatus.COMMAND_OK
        r = pg.exec_prepared(b"", [])
        assert r.status == pq.ExecStatus.TUPLES_OK and r.get_value(0, 0) == b"42"


# -- a cancel never hits the next query ------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_cancel_then_next_query_is_never_cancelled(proxy_factory, mode):
    """As DBD::Pg's t/08async.t does: a short query sent asynchronously,
    PQcancel, the result consumed, the next query at once.  PQcancel returns
    when its connection closes; pgcutover closes it only once the server has
    closed the forwarded one (the signal went out), so the signal can never
    arrive during the next query."""
    p = proxy_for(proxy_factory, mode)
    hits = []
    with p.connect() as c:
        pg = c.pgconn
        for i in range(150):
            # a query that is over before any cancel can reach it; the signal
            # of a cancel still on its way would hit the next one
            pg.send_query(b"SELECT 1")
            c.cancel()
            while True:
                r = pg.get_result()
                if r is None:
                    break
            r = pg.exec_(b"SELECT pg_sleep(0.01), 1")
            if r.status != pq.ExecStatus.TUPLES_OK:
                hits.append((i, r.error_field(pq.DiagnosticField.SQLSTATE),
                             (r.error_message or b"").decode(errors="replace").strip()))
    assert not hits, f"{len(hits)} of 150 next queries were cancelled: {hits[:3]}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_cancel_still_cancels(proxy_factory, mode):
    """The cancel itself works: a long query is cancelled with 57014."""
    p = proxy_for(proxy_factory, mode)
    with p.connect() as c:
        pg = c.pgconn
        pg.send_query(b"SELECT pg_sleep(30)")
        import time
        time.sleep(0.3)
        t = time.monotonic()
        c.cancel()
        r = pg.get_result()
        assert r.error_field(pq.DiagnosticField.SQLSTATE) == b"57014", r.error_message
        while pg.get_result() is not None:
            pass
        assert time.monotonic() - t < 5
        assert c.execute("SELECT 1").fetchone()[0] == 1


# -- the process ID a client sees ---------------------------------------------------


def test_session_pooling_pid_is_the_servers(proxy_factory, source):
    """Session pooling: PQbackendPID is the server's process ID, so
    pg_backend_pid(), pg_stat_activity.pid and pg_terminate_backend() agree
    with it; the cancel key stays pgcutover's own (cancels still work:
    test_cancel_still_cancels)."""
    p = proxy_for(proxy_factory, "session")
    with p.connect(application_name="pid-check") as c:
        pid = c.info.backend_pid
        assert pid > 0
        assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        with source.admin_connect() as a:
            row = a.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s",
                            (pid,)).fetchone()
            assert row and row[0] == "pid-check", row
            assert a.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")


def test_transaction_pooling_pid_is_positive(proxy_factory):
    """Transaction pooling: a process ID of pgcutover's own, but positive as
    PostgreSQL's are (they used to be negative half of the time)."""
    p = proxy_for(proxy_factory, "transaction")
    pids = set()
    for _ in range(20):
        with p.connect() as c:
            pids.add(c.info.backend_pid)
            c.execute("SELECT 1")
    assert all(0 < x < 2 ** 31 for x in pids), pids
    assert len(pids) == 20


def test_session_pooling_own_notification_carries_own_pid(proxy_factory):
    """LISTEN and NOTIFY on the same session: the notification's sender is
    the client's own PQbackendPID (applications filter their own
    notifications that way)."""
    p = proxy_for(proxy_factory, "session")
    with p.connect() as c:
        got = []
        c.add_notify_handler(got.append)
        c.execute("LISTEN own_chan")
        c.execute("NOTIFY own_chan, 'me'")
        c.execute("SELECT 1")
        assert [(n.channel, n.payload) for n in got] == [("own_chan", "me")], got
        assert got[0].pid == c.info.backend_pid

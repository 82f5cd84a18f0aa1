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

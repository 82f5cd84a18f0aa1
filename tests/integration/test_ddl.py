"""Schema changes during the move (ddl = pass | block, SHOW DDL): every
statement that changes the schema is recorded; with ddl = block it is refused
with 55000 and the session goes on as after any server error.

Detection is tested in the simple protocol, the extended protocol (psycopg,
and raw messages with a pipeline after the refused statement), multi-statement
queries and DO blocks; temporary objects are not schema changes.  Both pool
modes.  The shared database "app" is routed to its source, but for the test
that routes it to its target (where ddl = block no longer refuses), and what
the statement scanner cannot see (DDL run by a function that a SELECT calls)
is shown to pass, as docs/validation.md says.
"""

import os
import struct
import urllib.request

import psycopg
import pytest

from replication import admin, admin_query, admin_connect
from wire import RawConn, message

REFUSED = "55000"


def ddl_proxy(proxy_factory, clusters, mode, pool_mode="session"):
    return proxy_factory.new(
        settings={"pool_mode": pool_mode},
        databases={"app": {"source": clusters.source.proxy_target(),
                           "target": clusters.target.proxy_target(),
                           "lag_method": "none", "fence": "off", "ddl": mode}},
        name=f"ddl-{mode}-{pool_mode}")


def on_source(clusters, sql, side="source"):
    with getattr(clusters, side).admin_connect(dbname="app") as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


def table_exists(clusters, name, side="source"):
    return on_source(clusters, f"SELECT to_regclass('public.{name}') IS NOT NULL", side)[0][0]


def refused(conn, sql, **kw):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, **kw)
    assert e.value.sqlstate == REFUSED, (e.value.sqlstate, str(e.value))
    return e.value


@pytest.fixture
def clean(clusters):
    names = ["ddl_t1", "ddl_t2", "ddl_t3", "ddl_t4", "ddl_t5", "ddl_pass", "ddl_hidden",
             "ddl_after"]
    drop = "; ".join(f"DROP TABLE IF EXISTS {n}" for n in names) + \
        "; DROP FUNCTION IF EXISTS ddl_maker()"
    for side in ("source", "target"):
        on_source(clusters, drop, side)
        on_source(clusters, "CREATE TABLE IF NOT EXISTS ddl_base (a int)", side)
        on_source(clusters, "GRANT ALL ON ddl_base TO alice; GRANT CREATE ON SCHEMA public TO alice",
                  side)
    yield
    for side in ("source", "target"):
        on_source(clusters, drop, side)


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_block_refuses_and_the_session_goes_on(proxy_factory, clusters, clean, pool_mode):
    p = ddl_proxy(proxy_factory, clusters, "block", pool_mode)
    with p.connect() as c:
        # simple protocol (psql's way)
        r = p.psql("CREATE TABLE ddl_t1 (a int)")
        assert r.returncode != 0 and "schema changes are held" in r.stderr, r.stderr
        assert "cutover.md" in r.stderr and "SWITCH app" in r.stderr, r.stderr
        assert not table_exists(clusters, "ddl_t1")
        # extended protocol (psycopg), then the session answers as before
        e = refused(c, "ALTER TABLE ddl_base ADD COLUMN b int")
        assert "ALTER TABLE refused" in str(e), str(e)
        assert e.diag.message_hint and "Finish the move" in e.diag.message_hint
        assert c.execute("SELECT 1").fetchone() == (1,)
        assert on_source(clusters, "SELECT count(*) FROM information_schema.columns "
                         "WHERE table_name = 'ddl_base'")[0][0] == 1
        # a multi-statement query: nothing of it runs
        r = p.psql("INSERT INTO ddl_base VALUES (7); CREATE INDEX ddl_i ON ddl_base (a)")
        assert r.returncode != 0 and "CREATE INDEX refused" in r.stderr, r.stderr
        assert on_source(clusters, "SELECT count(*) FROM ddl_base WHERE a = 7")[0][0] == 0
        # DO blocks: its own statements, and what EXECUTE runs
        refused(c, "DO $$BEGIN CREATE TABLE ddl_t2 (a int); END$$")
        refused(c, "DO $$BEGIN EXECUTE 'DROP TABLE ' || 'ddl_base'; END$$")
        assert table_exists(clusters, "ddl_base") and not table_exists(clusters, "ddl_t2")
        # inside a transaction: aborted, as by any server error
        c.execute("BEGIN")
        c.execute("SELECT 1")
        refused(c, "CREATE TABLE ddl_t3 (a int)")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.execute("ROLLBACK")
        assert c.execute("SELECT 2").fetchone() == (2,)
        # temporary objects are the session's own: not schema changes
        if pool_mode == "session":
            c.execute("CREATE TEMP TABLE ddl_tmp (a int)")
            c.execute("DROP TABLE ddl_tmp")
    rows = admin(p.admin_port, "SHOW DDL app")
    changes = [(r["change"], r["blocked"], r["user"]) for r in rows]
    assert ("CREATE TABLE", "yes", "alice") in changes, changes
    assert ("ALTER TABLE", "yes", "alice") in changes, changes
    assert ("CREATE INDEX", "yes", "alice") in changes, changes
    assert ("DO (CREATE TABLE)", "yes", "alice") in changes, changes
    assert ("DO (DROP TABLE)", "yes", "alice") in changes, changes
    assert all("ddl_tmp" not in r["statement"] for r in rows), rows
    assert any(r["statement"] == "CREATE TABLE ddl_t1 (a int)" for r in rows), rows


def test_extended_pipeline_skips_to_sync(proxy_factory, clusters, clean):
    """A refused Parse in a pipeline: the server raises at its Execute and
    skips to the Sync, as it does for any error; the next Sync's work runs."""
    p = ddl_proxy(proxy_factory, clusters, "block")

    def parse(name, sql, ntypes=0):
        return message("P", name.encode() + b"\0" + sql.encode() + b"\0" +
                       struct.pack("!H", ntypes) + b"\0\0\0\x17" * ntypes)

    bind = message("B", b"\0\0" + struct.pack("!HHH", 0, 0, 0))
    execute = message("E", b"\0" + struct.pack("!I", 0))
    sync = message("S")
    with RawConn(port=p.port) as w:
        w.login("alice", "alice_pw", database="app")
        w.send(parse("", "SELECT 1") + bind + execute +
               parse("s1", "CREATE TABLE ddl_t4 (a int)", 1) +
               message("B", b"\0s1\0" + struct.pack("!HHi", 0, 1, 1) + b"5" +
                       struct.pack("!H", 0)) + execute +
               parse("", "SELECT 2") + bind + execute + sync +
               parse("", "SELECT 3") + bind + execute + sync)
        seen = []
        for _ in range(2):
            while True:
                m = w.read_msg()
                seen.append((m.type, m.sqlstate if m.type == "E" else None))
                if m.type == "Z":
                    break
        types = [t for t, _ in seen]
        errors = [s for t, s in seen if t == "E"]
        assert errors == [REFUSED], seen
        # SELECT 1 ran, the refused statement's Parse answered, SELECT 2 was skipped
        assert types.count("Z") == 2 and types.count("C") == 2, seen
    assert not table_exists(clusters, "ddl_t4")


def test_pass_records_and_runs(proxy_factory, clusters, clean):
    p = ddl_proxy(proxy_factory, clusters, "pass")
    with p.connect() as c:
        c.execute("CREATE TABLE ddl_pass (a int)")
    r = p.psql("SELECT 1; COMMENT ON TABLE ddl_pass IS 'x'")
    assert r.returncode == 0, r.stderr
    assert table_exists(clusters, "ddl_pass")
    rows = admin(p.admin_port, "SHOW DDL")
    assert [(r["database"], r["change"], r["blocked"]) for r in rows] == [
        ("app", "CREATE TABLE", "no"), ("app", "COMMENT ON", "no")], rows
    with admin_connect(p.admin_port) as a:
        with pytest.raises(Exception):
            admin_query(a, "SHOW DDL nosuchdb")
    with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as u:
        metrics = u.read().decode()
    assert 'pgcutover_ddl_statements_total{database="app",action="passed"} 2' in metrics
    assert 'pgcutover_ddl_statements_total{database="app",action="blocked"} 0' in metrics


def test_block_holds_only_while_routed_to_the_source(proxy_factory, clusters, clean):
    """Once the database is routed to its target (a route file, as a switch
    leaves it), ddl = block no longer refuses: the change is recorded as
    passed and runs on the target."""
    p = proxy_factory.new(
        settings={"pool_mode": "session"},
        databases={"app": {"source": clusters.source.proxy_target(),
                           "target": clusters.target.proxy_target(),
                           "lag_method": "none", "fence": "off", "ddl": "block"}},
        start=False, name="ddl-routed-target")
    os.makedirs(os.path.join(p.dir, "state"), exist_ok=True)
    with open(os.path.join(p.dir, "state", "app.route"), "w") as f:
        f.write("route = target\nswitched_at = 2026-01-01T00:00:00Z\nsource_lsn = \n")
    p.start()
    assert [r["route"] for r in admin(p.admin_port, "SHOW DATABASES") if r["name"] == "app"] \
        == ["target"]
    with p.connect() as c:
        c.execute("CREATE TABLE ddl_after (a int)")
    assert table_exists(clusters, "ddl_after", "target")
    assert not table_exists(clusters, "ddl_after", "source")
    rows = admin(p.admin_port, "SHOW DDL app")
    assert [(r["change"], r["blocked"]) for r in rows] == [("CREATE TABLE", "no")], rows


def test_ddl_inside_a_called_function_is_not_seen(proxy_factory, clusters, clean):
    """The limit docs/validation.md states: a function that changes the
    schema when a SELECT calls it is invisible to the scanner."""
    on_source(clusters, "CREATE FUNCTION ddl_maker() RETURNS int LANGUAGE plpgsql AS "
                        "$$BEGIN CREATE TABLE ddl_hidden (a int); RETURN 1; END$$; "
                        "GRANT EXECUTE ON FUNCTION ddl_maker() TO alice")
    p = ddl_proxy(proxy_factory, clusters, "block")
    with p.connect() as c:
        assert c.execute("SELECT ddl_maker()").fetchone() == (1,)
    assert table_exists(clusters, "ddl_hidden")
    assert admin(p.admin_port, "SHOW DDL app") == [], "nothing was seen"

"""The admin console: every command of PRODUCT.md with exactly its columns,
who may log in, malformed commands, KILL and SHUTDOWN; and control
connections that never block the event loop (a target that never answers).

The proxy routes `cut_admin`, a database replicated source -> target (see
replication.py), so that SHOW LAG, SHOW SEQUENCES and SWITCH DRY RUN have
something real to measure.
"""

import re
import socket
import threading
import time

import psycopg
import pytest

import wire
from pgutil import PASSWORDS
from replication import (replicated_fixtures, SWITCH_COLUMNS, AdminError, admin, admin_connect,
                         admin_psql, admin_query, cutover_proxy, route_of, server_port,
                         wait_until)

DB = "cut_admin"

COLUMNS = {
    "SHOW HELP": ("command", "description"),
    "SHOW VERSION": ("version",),
    "SHOW DATABASES": ("name", "route", "state", "source", "target", "clients",
                       "waiting_clients", "servers", "host", "port", "database", "force_user",
                       "pool_size", "min_pool_size", "reserve_pool", "pool_mode",
                       "max_connections", "current_connections", "paused", "disabled"),
    "SHOW CLIENTS": ("user", "database", "state", "addr", "connected_s", "backend_pid", "type",
                     "tls", "prepared_statements", "movable", "listen_channels"),
    "SHOW SERVERS": ("user", "database", "side", "state", "addr", "backend_pid", "client", "tls"),
    "SHOW POOLS": ("database", "user", "cl_active", "cl_waiting", "cl_idle", "sv_active",
                   "sv_idle", "sv_login", "pool_mode", "pool_size"),
    "SHOW STATS": ("database", "total_xact_count", "total_query_count", "total_received",
                   "total_sent", "avg_xact_time_us", "avg_query_time_us", "total_xact_time",
                   "total_query_time", "total_requests"),
    "SHOW LISTS": ("list", "items"),
    "SHOW CONFIG": ("key", "value"),
    "SHOW LAG": ("db", "method", "source_position", "target_position", "lag_bytes",
                 "measured_at"),
    f"SHOW LAG {DB}": ("db", "method", "source_position", "target_position", "lag_bytes",
                       "measured_at"),
    f"SHOW SEQUENCES {DB}": ("sequence", "source_value", "target_value", "target_behind"),
    "SHOW SWITCHES": SWITCH_COLUMNS,
    f"SWITCH {DB} DRY RUN": SWITCH_COLUMNS,
}

# The commands of PRODUCT.md's table, as SHOW HELP must list them.
HELP_COMMANDS = ["SHOW HELP", "SHOW DATABASES", "SHOW CLIENTS", "SHOW SERVERS", "SHOW POOLS",
                 "SHOW STATS", "SHOW CONFIG", "SHOW VERSION", "SHOW LAG", "SHOW SEQUENCES",
                 "SHOW SWITCHES", "PAUSE", "RESUME", "SWITCH", "ABORT", "RELOAD", "SHUTDOWN",
                 "KILL"]

MALFORMED = ["SHOW", "SWITCH", "SWITCH x TO nowhere", "FOO", "SHOW NOTHING", "SHOW SEQUENCES",
             "SHOW DATABASES; SHOW POOLS", "PAUSE a b", f"SWITCH {DB} DRY", "KILL",
             f"SWITCH {DB} TO", "ABORT"]


repl, rdb = replicated_fixtures(DB)


@pytest.fixture
def cproxy(proxy_factory, rdb):
    return cutover_proxy(proxy_factory, rdb, pool_mode="session", name="admin-proxy")


def is_int(v):
    return v is not None and re.fullmatch(r"-?\d+", str(v)) is not None


@pytest.mark.timeout(60)
def test_every_command_answers_with_its_columns(cproxy, rdb):
    p = cproxy
    # A client with a server on the source, so that every SHOW has a row.
    c = p.connect(dbname=DB)
    c.execute("INSERT INTO orders (note) VALUES ('admin')")   # source sequence moves
    backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with admin_connect(p.admin_port) as a:
            got = {cmd: admin_query(a, cmd) for cmd in COLUMNS}
            for cmd, cols in COLUMNS.items():
                assert got[cmd].columns == cols, f"{cmd}: {got[cmd].columns} != {cols}"

            help_text = " ".join(r["command"] for r in got["SHOW HELP"])
            for word in HELP_COMMANDS:
                assert word in help_text, f"SHOW HELP does not list {word}: {help_text}"
            assert all(r["description"] for r in got["SHOW HELP"])
            assert re.search(r"\d+\.\d+", got["SHOW VERSION"][0]["version"]), got["SHOW VERSION"]

            dbs = {r["name"]: r for r in got["SHOW DATABASES"]}
            d = dbs[DB]
            assert (d["route"], d["state"]) == ("source", "running"), d
            assert str(rdb.source.port) in d["source"] and str(rdb.target.port) in d["target"], d
            assert int(d["clients"]) == 1 and int(d["servers"]) >= 1, d
            assert int(d["waiting_clients"]) == 0, d

            mine = [r for r in got["SHOW CLIENTS"] if r["database"] == DB]
            assert len(mine) == 1 and mine[0]["user"] == "alice", got["SHOW CLIENTS"]
            assert mine[0]["addr"].startswith("127.0.0.1"), mine
            assert is_int(mine[0]["backend_pid"]) and int(mine[0]["backend_pid"]) == backend, mine
            assert is_int(mine[0]["connected_s"]), mine

            srv = [r for r in got["SHOW SERVERS"] if r["database"] == DB]
            assert len(srv) == 1, got["SHOW SERVERS"]
            assert (srv[0]["user"], srv[0]["side"]) == ("alice", "source"), srv
            assert int(srv[0]["backend_pid"]) == backend, srv
            assert str(rdb.source.port) in srv[0]["addr"], srv

            pools = [r for r in got["SHOW POOLS"] if r["database"] == DB]
            assert len(pools) == 1 and pools[0]["user"] == "alice", got["SHOW POOLS"]
            assert pools[0]["pool_mode"] == "session" and pools[0]["pool_size"] == "20", pools
            assert int(pools[0]["cl_active"]) + int(pools[0]["cl_idle"]) == 1, pools

            stats = {r["database"]: r for r in got["SHOW STATS"]}[DB]
            for k in COLUMNS["SHOW STATS"][1:]:
                assert is_int(stats[k]), (k, stats)
            assert int(stats["total_xact_count"]) >= 2 and int(stats["total_query_count"]) >= 2
            assert int(stats["total_received"]) > 0 and int(stats["total_sent"]) > 0

            cfg = {r["key"]: r["value"] for r in got["SHOW CONFIG"]}
            assert cfg.get("pool_mode") == "session", cfg
            assert cfg.get("admin_port") == str(p.admin_port), cfg
            assert "lag_method" in cfg and "drain_timeout" in cfg, cfg

            for cmd in ("SHOW LAG", f"SHOW LAG {DB}"):
                lag = [r for r in got[cmd] if r["db"] == DB]
                assert len(lag) == 1 and lag[0]["method"] == "lsn", got[cmd]
                assert is_int(lag[0]["lag_bytes"]) and int(lag[0]["lag_bytes"]) >= 0, lag
                assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", lag[0]["source_position"]), lag
                assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", lag[0]["target_position"]), lag
                assert lag[0]["measured_at"], lag

            seqs = {r["sequence"]: r for r in got[f"SHOW SEQUENCES {DB}"]}
            s = seqs.get("public.orders_id_seq")
            assert s is not None, seqs
            # Logical replication does not carry sequences: the target is behind.
            assert int(s["source_value"]) >= 1, s
            # (a fresh target sequence shows last_value 1 with is_called false)
            assert int(s["target_value"]) <= int(s["source_value"]), s
            assert s["target_behind"] in ("t", "true", "yes"), s

            dry = got[f"SWITCH {DB} DRY RUN"]
            assert len(dry) == 1 and dry[0]["result"].startswith("dry run: ok"), dry
            assert (dry[0]["from"], dry[0]["to"]) == ("source", "target"), dry
            # A dry run flips nothing (and is not a switch of SHOW SWITCHES'
            # "ok" kind).
            assert route_of(p.admin_port, DB) == ("source", "running")
            assert server_port(c) == rdb.source.port

            # PAUSE / RESUME, all databases and one.
            for cmd in ("PAUSE", "RESUME", f"PAUSE {DB}", f"RESUME {DB}"):
                r = admin_query(a, cmd)
                assert r.columns == () and r.status == cmd.split()[0], (cmd, r.status)
            r = admin_query(a, "RELOAD")
            assert r.columns == () and r.status == "RELOAD", r.status

            # ABORT with no switch running: a clear error (not a syntax error).
            with pytest.raises(AdminError) as ei:
                admin_query(a, f"ABORT {DB}")
            assert ei.value.sqlstate and ei.value.sqlstate != "42601", ei.value
            # Case-insensitive, trailing semicolon allowed.
            assert admin_query(a, "show version;").columns == ("version",)
            assert admin_query(a, "Show Databases ;").columns == COLUMNS["SHOW DATABASES"]
            # The session is still fine.
            assert admin_query(a, "SHOW VERSION")[0]["version"]
        assert server_port(c) == rdb.source.port
    finally:
        c.close()


def test_psql_works_on_the_admin_console(cproxy):
    rc, rows, err = admin_psql(cproxy.admin_port, "SHOW DATABASES")
    assert rc == 0, err
    assert rows.columns == COLUMNS["SHOW DATABASES"]
    assert [r["name"] for r in rows] == [DB]
    rc, rows, err = admin_psql(cproxy.admin_port, "SHOW nothing")
    assert rc != 0 and "SHOW HELP" in err, err


def test_non_admin_user_refused(cproxy):
    msgs, closed = wire.login_attempt(cproxy.admin_port, {"user": "alice", "database": "pgcutover"},
                                      password=PASSWORDS["alice"])
    errs = wire.errors(msgs)
    assert errs and errs[-1].fields.get("S") == "FATAL" and errs[-1].sqlstate == "28000", msgs
    assert closed
    # A wrong admin password is refused too.
    with pytest.raises(psycopg.OperationalError):
        admin_connect(cproxy.admin_port, password="wrong")
    # And the console still works for the admin.
    assert admin(cproxy.admin_port, "SHOW VERSION")[0]["version"]


def test_malformed_commands_then_the_session_goes_on(cproxy):
    with admin_connect(cproxy.admin_port) as a:
        for cmd in MALFORMED:
            with pytest.raises(AdminError) as ei:
                admin_query(a, cmd)
            e = ei.value
            assert e.sqlstate == "42601", (cmd, e)
            assert e.hint and "SHOW HELP" in e.hint, (cmd, e)
            assert admin_query(a, "SHOW VERSION")[0]["version"], cmd
        # Unknown databases: an error that says so, and the session goes on.
        for cmd in ("SWITCH nosuchdb", "SHOW SEQUENCES nosuchdb", "PAUSE nosuchdb",
                    "KILL nosuchdb", "SHOW LAG nosuchdb", "ABORT nosuchdb"):
            with pytest.raises(AdminError) as ei:
                admin_query(a, cmd)
            assert "nosuchdb" in ei.value.message, (cmd, ei.value)
            assert re.fullmatch(r"[0-9A-Z]{5}", ei.value.sqlstate or ""), (cmd, ei.value)
            assert admin_query(a, "SHOW VERSION")[0]["version"], cmd
    assert route_of(cproxy.admin_port, DB) == ("source", "running")


def test_kill_disconnects_the_database_clients(proxy_factory, rdb, clusters):
    p = proxy_factory.new(settings={"pool_mode": "session"}, databases={
        DB: rdb.section(),
        "app": {"source": clusters.source.proxy_target(), "target": clusters.target.proxy_target(),
                "lag_method": "none"}})
    victims = [p.connect(dbname=DB) for _ in range(2)]
    bystander = p.connect(dbname="app")
    try:
        for v in victims:
            v.execute("SELECT 1")
        r = admin(p.admin_port, f"KILL {DB}")
        assert r.status == "KILL", r.status
        for v in victims:
            with pytest.raises(psycopg.OperationalError):
                v.execute("SELECT 1")
        assert bystander.execute("SELECT 1").fetchone()[0] == 1
        wait_until(lambda: int(route_row(p, DB)["clients"]) == 0, 5, what="clients gone")
        # New clients are welcome again.
        with p.connect(dbname=DB) as c:
            assert c.execute("SELECT 1").fetchone()[0] == 1
    finally:
        for v in victims:
            v.close()
        bystander.close()


def route_row(p, db):
    return {r["name"]: r for r in admin(p.admin_port, "SHOW DATABASES")}[db]


def test_shutdown(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="shutdown-proxy")
    with p.connect(dbname=DB) as c:
        c.execute("SELECT 1")
    with admin_connect(p.admin_port) as a:
        r = admin_query(a, "SHUTDOWN")
        assert r.status == "SHUTDOWN", r.status
    assert p.wait_exit(10) == 0, p.log()[-2000:]


# -- 6. control connections never block the event loop ---------------------------

CONNECT_TIMEOUT = 2   # seconds, in the hanging target's conninfo


class HangingServer:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.accepted = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            self.accepted.set()

    def close(self):
        self.closing = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("dry_run", [False, True])
def test_hanging_target_does_not_block_other_databases(proxy_factory, clusters, dry_run):
    hang = HangingServer()
    try:
        p = proxy_factory.new(settings={"pool_mode": "session"}, databases={
            "app": {"source": clusters.source.proxy_target(),
                    "target": clusters.target.proxy_target(), "lag_method": "none"},
            "hang": {"source": clusters.source.proxy_target(),
                     "target": f"host=127.0.0.1 port={hang.port} dbname=app "
                               f"connect_timeout={CONNECT_TIMEOUT}",
                     "lag_method": "none"},
        }, name="hang-proxy")
        c = p.connect(dbname="app")
        c.execute("SELECT 1")
        out = {}

        def run():
            t0 = time.monotonic()
            try:
                out["row"] = admin(p.admin_port, "SWITCH hang" + (" DRY RUN" if dry_run else ""))
            except AdminError as e:
                out["error"] = e
            out["took"] = time.monotonic() - t0

        t = threading.Thread(target=run)
        t.start()
        try:
            assert hang.accepted.wait(10), "the preflight never connected to the hanging target"
            time.sleep(0.2)
            lat = []
            for _ in range(200):
                t0 = time.monotonic()
                assert c.execute("SELECT 1").fetchone()[0] == 1
                lat.append(time.monotonic() - t0)
            t0 = time.monotonic()
            assert route_row(p, "app")["route"] == "source"
            admin_lat = time.monotonic() - t0
            overlapped = t.is_alive()
            # Clients of the hanging database itself are not held by a preflight.
            with p.connect(dbname="hang") as h:
                t0 = time.monotonic()
                assert h.execute("SELECT 1").fetchone()[0] == 1
                hang_lat = time.monotonic() - t0
        finally:
            t.join(60)
        assert not t.is_alive(), "SWITCH never returned: the preflight does not time out"
        assert overlapped, f"the preflight ended before the clients ran ({out})"
        assert max(lat) < 0.1, f"max latency {max(lat) * 1000:.0f} ms while a control connection hung"
        assert admin_lat < 0.5, admin_lat
        assert hang_lat < 0.5, hang_lat
        assert "error" in out, out
        assert "preflight" in out["error"].message, out["error"]
        assert route_row(p, "hang")["route"] == "source"
        assert route_row(p, "hang")["state"] == "running"
        print(f"preflight against a hanging target failed after {out['took']:.1f}s: {out['error']}")
        # Bounded by the target's connect_timeout.  (Each control query of the
        # preflight waits for it in turn: 2 x connect_timeout was measured.)
        assert out["took"] < 3 * CONNECT_TIMEOUT + 2, out
        assert re.fullmatch(r"[0-9A-Z]{5}", out["error"].sqlstate or ""), \
            f"ErrorResponse without a valid SQLSTATE: {out['error']!r}"
        c.close()
    finally:
        hang.close()

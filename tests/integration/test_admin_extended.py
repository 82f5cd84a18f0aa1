"""The admin console speaks the extended query protocol too (PRODUCT.md:
"psql and any driver work"): Parse, Bind, Describe, Execute, Sync, Close and
Flush, with the protocol's error semantics (after an error, everything up to
Sync is ignored).

psycopg sends a query without parameters with the simple protocol; it uses the
extended one in pipeline mode, for prepared statements (prepare=True or
prepare_threshold=0), for cursor.stream() and for queries with parameters.
Each of those is used here, then the protocol is driven message by message.
"""

import struct
import threading
import time

import psycopg
import pytest

import wire
from replication import ADMIN_PASSWORD, ADMIN_USER, SWITCH_COLUMNS

DATABASES_COLUMNS = ["name", "route", "state", "source", "target", "clients",
                     "waiting_clients", "servers", "host", "port", "database", "force_user",
                     "pool_size", "min_pool_size", "reserve_pool", "pool_mode", "max_connections",
                     "current_connections", "paused", "disabled"]
CLIENTS_COLUMNS = ["user", "database", "state", "addr", "connected_s", "backend_pid", "type", "tls",
                   "prepared_statements", "movable", "listen_channels"]


def ext_connect(p, **kw):
    """A psycopg connection to the admin console with the default cursor."""
    return psycopg.connect(host="127.0.0.1", port=p.admin_port, user=ADMIN_USER,
                           password=ADMIN_PASSWORD, dbname="pgcutover", autocommit=True,
                           connect_timeout=10, **kw)


class Result:
    """What one command answered: column names (None without rows), rows, tag."""

    def __init__(self, cur, rows):
        self.description = cur.description
        self.columns = [c.name for c in cur.description] if cur.description else None
        self.rows = rows
        self.statusmessage = cur.statusmessage


def run(conn, query, mode):
    """Run one admin command over the extended protocol."""
    if mode == "pipeline":
        with conn.pipeline():
            cur = conn.execute(query)
        return Result(cur, cur.fetchall() if cur.description else [])
    if mode == "prepared":
        cur = conn.execute(query, prepare=True)
        return Result(cur, cur.fetchall() if cur.description else [])
    if mode == "stream":
        cur = conn.cursor()
        rows = list(cur.stream(query))
        return Result(cur, rows)
    raise AssertionError(mode)


def rows_of(res):
    return res.rows


def state_of(conn, db, mode):
    cur = run(conn, "SHOW DATABASES", mode)
    names = cur.columns
    for r in rows_of(cur):
        d = dict(zip(names, r))
        if d["name"] == db:
            return d["state"]
    raise AssertionError(f"{db} not in SHOW DATABASES")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["pipeline", "prepared", "stream"])
def test_psycopg_extended_protocol(proxy, mode):
    with proxy.connect() as client, ext_connect(proxy) as a:
        client.execute("SELECT 1")
        cur = run(a, "SHOW DATABASES", mode)
        assert [c.name for c in cur.description] == DATABASES_COLUMNS
        assert "app" in [r[0] for r in rows_of(cur)]

        cur = run(a, "show clients;", mode)
        assert [c.name for c in cur.description] == CLIENTS_COLUMNS
        users = {(r[0], r[1]) for r in rows_of(cur)}
        assert ("alice", "app") in users, users

        if mode != "stream":
            cur = run(a, "PAUSE app", mode)
            assert cur.statusmessage == "PAUSE" and cur.description is None
            assert state_of(a, "app", mode) == "paused"
            cur = run(a, "RESUME app", mode)
            assert cur.statusmessage == "RESUME"
            assert state_of(a, "app", mode) == "running"
            client.execute("SELECT 1")

            # PAUSE answers once the open transaction ends (an asynchronous reply)
            client.execute("BEGIN")
            out = {}
            t = threading.Thread(target=lambda: out.setdefault("r", run(a, "PAUSE app", mode)))
            t.start()
            time.sleep(0.3)
            assert t.is_alive(), f"PAUSE returned while a transaction was open: {out}"
            client.execute("COMMIT")
            t.join(10)
            assert not t.is_alive() and out["r"].statusmessage == "PAUSE", out
            assert run(a, "RESUME app", mode).statusmessage == "RESUME"
            client.execute("SELECT 1")

        # SWITCH ... DRY RUN: control connections, answered later, one row
        cur = run(a, "SWITCH app DRY RUN", mode)
        assert tuple(cur.columns) == SWITCH_COLUMNS
        assert len(cur.rows) == 1 and cur.rows[0][4].startswith("dry run: ok"), cur.rows

        # a malformed command: 42601 with the hint, and the session goes on
        with pytest.raises(psycopg.Error) as ei:
            run(a, "SHOW NOTHING", mode)
        assert ei.value.sqlstate == "42601", ei.value
        assert "SHOW HELP" in (ei.value.diag.message_hint or "")
        # an error of the command itself (unknown database), then on again
        with pytest.raises(psycopg.Error) as ei:
            run(a, "PAUSE no_such_db", mode)
        assert ei.value.sqlstate == "3D000", ei.value
        cur = run(a, "SHOW VERSION", mode)
        assert [c.name for c in cur.description] == ["version"]
        assert rows_of(cur)[0][0].startswith("pgcutover ")


@pytest.mark.timeout(60)
def test_parameters_refused_without_disconnecting(proxy):
    with ext_connect(proxy) as a:
        with pytest.raises(psycopg.Error) as ei:
            a.execute("SHOW LAG %s", ["app"])
        assert ei.value.sqlstate == "0A000", ei.value
        assert not a.closed
        assert a.execute("SHOW VERSION").fetchone()[0].startswith("pgcutover ")


@pytest.mark.timeout(60)
def test_prepare_threshold_zero_twice(proxy):
    """Every query prepared (named statement) at its first run, then re-run
    from the statement: both runs answer the same."""
    with ext_connect(proxy, prepare_threshold=0) as a:
        for _ in range(2):
            cur = a.execute("SHOW DATABASES")
            assert [c.name for c in cur.description] == DATABASES_COLUMNS
            assert "app" in [r[0] for r in cur.fetchall()]
            cur = a.execute("SHOW CLIENTS")
            assert [c.name for c in cur.description] == CLIENTS_COLUMNS
            assert cur.fetchall()
            assert a.execute("RESUME").statusmessage == "RESUME"
        assert len(a._prepared._names) >= 3, "psycopg did not prepare the statements"


# -- message by message -----------------------------------------------------------

def cstr(s):
    return s.encode() + b"\0"


def parse(name, query, types=()):
    return wire.message("P", cstr(name) + cstr(query) + struct.pack("!H", len(types)) +
                        b"".join(struct.pack("!I", t) for t in types))


def bind(portal, stmt, params=(), result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for v in params:
        body += struct.pack("!i", len(v)) + v
    body += struct.pack("!H", len(result_formats))
    body += b"".join(struct.pack("!H", f) for f in result_formats)
    return wire.message("B", body)


def describe(kind, name):
    return wire.message("D", kind.encode() + cstr(name))


def execute(portal, maxrows=0):
    return wire.message("E", cstr(portal) + struct.pack("!i", maxrows))


def close(kind, name):
    return wire.message("C", kind.encode() + cstr(name))


SYNC = wire.message("S")
FLUSH = wire.message("H")


def read_n(r, n):
    return [r.read_msg(timeout=5) for _ in range(n)]


def types(msgs):
    return "".join(m.type for m in msgs)


def columns(msg):
    assert msg.type == "T", msg
    n = struct.unpack("!H", msg.payload[:2])[0]
    names, i = [], 2
    for _ in range(n):
        end = msg.payload.index(b"\0", i)
        names.append(msg.payload[i:end].decode())
        i = end + 1 + 18
    return names


@pytest.mark.timeout(60)
def test_extended_protocol_message_by_message(proxy):
    r = wire.RawConn(port=proxy.admin_port, timeout=10)
    try:
        r.login(ADMIN_USER, ADMIN_PASSWORD, database="pgcutover")

        # Describe statement: ParameterDescription (0 parameters), then the columns
        # or NoData; Flush makes the replies come without a Sync.
        r.send(parse("s_version", "show version") + describe("S", "s_version") +
               parse("s_pause", "PAUSE") + describe("S", "s_pause") + FLUSH)
        m = read_n(r, 6)
        assert types(m) == "1tT1tn", m
        assert m[1].payload == b"\0\0" and m[4].payload == b"\0\0"
        assert columns(m[2]) == ["version"]

        # Bind + Execute: the rows and CommandComplete, no RowDescription at Execute;
        # ReadyForQuery only at Sync.
        r.send(bind("", "s_version") + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "2DCZ", m
        assert wire.parse_datarow(m[1].payload)[0].startswith("pgcutover ")

        # Describe portal, twice from a named portal of the same statement.
        r.send(bind("p1", "s_version") + describe("P", "p1") + execute("p1") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "2TDCZ", m
        # portals end at Sync
        r.send(execute("p1") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "34000", m

        # An error skips everything until Sync: a duplicate statement name.
        r.send(parse("s_version", "SHOW HELP") + bind("", "s_version") + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "42P05", m
        # A malformed command at Parse: 42601, skipped until Sync, then on again.
        r.send(parse("", "SHOW NOTHING") + bind("", "") + describe("P", "") + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "42601", m
        assert "SHOW HELP" in m[0].fields.get("H", "")
        # Parameters: refused at Parse (declared types) and at Bind (values), 0A000.
        r.send(parse("", "SHOW LAG app", types=[25]) + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "0A000", m
        r.send(parse("", "SHOW LAG") + bind("", "", params=[b"app"]) + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "1EZ" and m[1].sqlstate == "0A000", m
        # Binary results: refused, the session goes on.
        r.send(bind("", "s_version", result_formats=[1]) + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "0A000", m

        # Close statement: then it does not exist; closing it again is no error.
        r.send(close("S", "s_version") + close("S", "s_version") + SYNC)
        assert types(r.read_until_ready()) == "33Z"
        r.send(bind("", "s_version") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "26000", m
        r.send(describe("P", "nope") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "EZ" and m[0].sqlstate == "34000", m

        # A command without rows: BindComplete, CommandComplete.
        r.send(bind("", "s_pause") + describe("P", "") + execute("") + SYNC)
        m = r.read_until_ready()
        assert types(m) == "2nCZ", m
        r.send(parse("", "RESUME") + bind("", "") + execute("") + SYNC)
        assert types(r.read_until_ready()) == "12CZ"
        # An empty query: EmptyQueryResponse.
        r.send(parse("", "") + bind("", "") + describe("P", "") + execute("") + SYNC)
        assert types(r.read_until_ready()) == "12nIZ"

        # The simple protocol still works on the same session.
        assert r.scalar("SHOW VERSION").startswith("pgcutover ")
    finally:
        r.close()

"""Prepared statements on the wire, adversarially (issue 4 review).

What a client sees through pgcutover is compared, message by message, with
what the same client sees connected straight to PostgreSQL (the source
cluster): the extended query protocol in pipelines (an ErrorResponse makes
the server skip until Sync), Flush without Sync, Describe of statements,
Close of statements that exist, never existed or are portals, DEALLOCATE and
DISCARD ALL through simple and extended queries, statements whose text is a
SET, max_prepared_statements evictions under concurrency, clients that
vanish in the middle of a pipeline, a SWITCH with many statements, a Parse
larger than conn_buffer_size, COPY and LISTEN.

Both pool modes.  In transaction pooling (pool size 2) each compared step
can be made to land on a server that holds none of the client's statements
(`fresh`: a helper client deallocates everything on one server and another
helper holds the other one in a transaction), so that pgcutover must prepare
them there itself.  Where transaction pooling differs from PostgreSQL by
design (README "Status and limits": a re-Parse of an existing name replaces
it instead of 42P05), the documented behaviour is asserted instead.
"""

import contextlib
import socket
import struct
import threading
import time

import psycopg
import pytest
from psycopg import pq

import wire
from pgutil import PASSWORDS
from proxyutil import SLOW
from replication import admin, cutover_proxy, replicated_fixtures, switch, wait_until

MODES = ["session", "transaction"]
INT4, TEXT = 23, 25


# -- messages ---------------------------------------------------------------------

def parse(name, sql, types=()):
    return wire.message("P", name.encode() + b"\0" + sql.encode() + b"\0" +
                        struct.pack("!H", len(types)) +
                        b"".join(struct.pack("!I", t) for t in types))


def bind(stmt, params=(), portal=""):
    body = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!H", 0)
    body += struct.pack("!H", len(params))
    for v in params:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            b = v if isinstance(v, bytes) else str(v).encode()
            body += struct.pack("!i", len(b)) + b
    return wire.message("B", body + struct.pack("!H", 0))


def execute(portal="", max_rows=0):
    return wire.message("E", portal.encode() + b"\0" + struct.pack("!I", max_rows))


def describe(kind, name):
    return wire.message("D", kind.encode() + name.encode() + b"\0")


def close(kind, name):
    return wire.message("C", kind.encode() + name.encode() + b"\0")


def query(sql):
    return wire.query_msg(sql)


def copy_data(data):
    return wire.message("d", data)


SYNC = wire.message("S")
FLUSH = wire.message("H")
COPY_DONE = wire.message("c")


def run(name, params=()):
    """Bind + Execute of a named statement (no Sync)."""
    return [bind(name, params), execute()]


# -- reading and comparing ---------------------------------------------------------

def norm(m):
    """A backend message reduced to what must be the same through the proxy."""
    t = m.type
    if t in "EN":
        f = m.fields
        return (t, f.get("C"), f.get("M"))
    if t == "D":
        return ("D", tuple(wire.parse_datarow(m.payload)))
    if t == "C":
        return ("C", m.payload.rstrip(b"\0").decode())
    if t == "T":
        n = struct.unpack("!H", m.payload[:2])[0]
        i, cols = 2, []
        for _ in range(n):
            end = m.payload.index(b"\0", i)
            name = m.payload[i:end].decode()
            oid = struct.unpack("!I", m.payload[end + 7:end + 11])[0]
            cols.append((name, oid))
            i = end + 19
        return ("T", tuple(cols))
    if t == "t":
        n = struct.unpack("!H", m.payload[:2])[0]
        return ("t", struct.unpack(f"!{n}I", m.payload[2:2 + 4 * n]))
    if t == "Z":
        return ("Z", chr(m.payload[0]))
    if t == "A":
        return ("A", tuple(m.payload[4:].split(b"\0")[:2]))
    if t in "dGH":
        return (t, m.payload)
    return (t,)


def syncs_in(data):
    """How many ReadyForQuery the messages in data will get (Sync, Query)."""
    n, i = 0, 0
    while i < len(data):
        t = data[i:i + 1]
        ln = struct.unpack("!I", data[i + 1:i + 5])[0]
        if t in (b"S", b"Q"):
            n += 1
        i += 1 + ln
    return n


def read_until(r, zs, what, timeout=10):
    """Messages (ParameterStatus left out) until the zs-th ReadyForQuery."""
    out = []
    deadline = time.monotonic() + timeout * SLOW
    while zs > 0:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise socket.timeout()
            m = r.read_msg(timeout=left)
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"{what}: no answer (hang) after {out}") \
                from None
        except wire.Closed:
            raise AssertionError(f"{what}: connection closed after {out}") \
                from None
        if m.type == "S":
            continue
        out.append(norm(m))
        if m.type == "Z":
            zs -= 1
    return out


def read_count(r, n, what, timeout=10):
    """Exactly n messages (ParameterStatus left out): after a Flush."""
    out = []
    deadline = time.monotonic() + timeout * SLOW
    while len(out) < n:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise socket.timeout()
            m = r.read_msg(timeout=left)
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"{what}: only {out} arrived") from None
        if m.type != "S":
            out.append(norm(m))
    return out


def quiet(r, what, wait=0.3):
    """Nothing more arrives (no stray ParseComplete, no FATAL)."""
    try:
        m = r.read_msg(timeout=wait)
    except (socket.timeout, TimeoutError, OSError):
        return
    except wire.Closed:
        raise AssertionError(f"{what}: the connection closed")
    if m.type != "S":
        raise AssertionError(f"{what}: unexpected {norm(m)}")


def exchange(r, msgs, what):
    data = b"".join(msgs)
    r.send(data)
    return read_until(r, syncs_in(data), what)


def simple(r, sql):
    """A simple query that must succeed: its rows."""
    got = exchange(r, [query(sql)], sql)
    errs = [m for m in got if m[0] == "E"]
    assert not errs, f"{sql}: {errs}"
    return [list(m[1]) for m in got if m[0] == "D"]


def types(msgs):
    return [m[0] for m in msgs]


def sqlstates(msgs):
    return [m[1] for m in msgs if m[0] == "E"]


def login(port, user="alice", dbname="app"):
    r = wire.RawConn(port=port, timeout=10 * SLOW)
    r.login(user, PASSWORDS[user], database=dbname)
    return r


def proxy_for(factory, mode, name, **settings):
    s = {"pool_mode": mode, "default_pool_size": 2}
    s.update(settings)
    return factory.new(settings=s, name=name)


class Pair:
    """One client twice: straight to PostgreSQL and through pgcutover."""

    def __init__(self, p, source, mode):
        self.p = p
        self.mode = mode
        self.direct = login(source.port)
        self.proxy = login(p.port)
        self.helpers = None

    def close(self):
        for r in [self.direct, self.proxy] + list(self.helpers or ()):
            r.close()

    @contextlib.contextmanager
    def fresh_server(self):
        """Transaction pooling: what runs inside lands on a server that holds
        none of the statements (helper 1 deallocates all on one server, then
        helper 2 holds the other in a transaction)."""
        if self.mode != "transaction":
            yield
            return
        if self.helpers is None:
            self.helpers = (login(self.p.port), login(self.p.port))
        h1, h2 = self.helpers
        simple(h1, "BEGIN")
        simple(h1, "DEALLOCATE ALL")
        simple(h2, "BEGIN")
        simple(h2, "SELECT 1")
        simple(h1, "COMMIT")
        try:
            yield
        finally:
            simple(h2, "COMMIT")

    def step(self, msgs, what, fresh=False, expect=None):
        """Send msgs (a list, or a function of the side: "direct"/"proxy")
        on both sides; the proxy's answer must be the direct one.  Returns it."""
        def msgs_for(side):
            return msgs(side) if callable(msgs) else msgs
        d = exchange(self.direct, msgs_for("direct"), f"{what} (direct)")
        if fresh:
            with self.fresh_server():
                x = exchange(self.proxy, msgs_for("proxy"), f"{what} (through pgcutover)")
        else:
            x = exchange(self.proxy, msgs_for("proxy"), f"{what} (through pgcutover)")
        if expect is not None:
            assert types(d) == expect, f"{what}: PostgreSQL answered {d}: the test is wrong"
        assert x == d, f"{what}:\n through pgcutover: {x}\n directly:          {d}"
        return d


@pytest.fixture
def pair_factory(proxy_factory, source):
    pairs = []

    def new(mode, name="pp", **settings):
        p = proxy_for(proxy_factory, mode, f"{name}-{mode}", **settings)
        pr = Pair(p, source, mode)
        pairs.append(pr)
        return pr

    yield new
    for pr in pairs:
        pr.close()


def client_row(p, r):
    """SHOW CLIENTS row of raw connection r."""
    port = r.local_port
    for row in admin(p.admin_port, "SHOW CLIENTS"):
        if row["addr"].endswith(f":{port}"):
            return row
    raise AssertionError(f"no SHOW CLIENTS row for port {port}")


def wait_prepared_count(p, r, n):
    def ok():
        return client_row(p, r)["prepared_statements"] == str(n)
    try:
        wait_until(ok, 5 * SLOW, what="prepared_statements")
    except AssertionError:
        raise AssertionError(f"SHOW CLIENTS: {client_row(p, r)}, want prepared_statements={n}") \
            from None


# -- 1. a pipeline with an error in the middle --------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_pipeline_error_skips_to_sync(pair_factory, mode):
    """Parse S1, Bind, Execute, Parse S2 (syntax error), Bind S2, Execute,
    Parse S3, Sync: the server skips everything after the error until Sync.
    Afterwards S1 works, S2 and S3 do not exist (26000) and their names are
    free to prepare, as directly; on a server that lacks them too."""
    pr = pair_factory(mode)
    pr.step([parse("pl_s1", "SELECT $1::int + 1", [INT4]), *run("pl_s1", [41]),
             parse("pl_s2", "SELEC 2"), *run("pl_s2"),
             parse("pl_s3", "SELECT 3"), SYNC],
            "pipeline", expect=["1", "2", "D", "C", "E", "Z"])
    for fresh in (False, True):
        pr.step([*run("pl_s1", [1]), SYNC], f"S1 after (fresh={fresh})", fresh=fresh,
                expect=["2", "D", "C", "Z"])
        pr.step([*run("pl_s2"), SYNC], f"S2 after (fresh={fresh})", fresh=fresh,
                expect=["E", "Z"])
        pr.step([*run("pl_s3"), SYNC], f"S3 after (fresh={fresh})", fresh=fresh,
                expect=["E", "Z"])
        pr.step([describe("S", "pl_s3"), SYNC], f"Describe S3 (fresh={fresh})", fresh=fresh,
                expect=["E", "Z"])
    # the failed names are free: no 42P05
    pr.step([parse("pl_s2", "SELECT 'two'"), parse("pl_s3", "SELECT 'three'"), SYNC],
            "prepare S2 and S3 again", expect=["1", "1", "Z"])
    pr.step([*run("pl_s2"), *run("pl_s3"), *run("pl_s1", [5]), SYNC], "all three", fresh=True,
            expect=["2", "D", "C", "2", "D", "C", "2", "D", "C", "Z"])
    # an error at Execute (not Parse) skips the Parse after it, and the Close
    pr.step([*run("pl_s1", ["x"]), parse("pl_s4", "SELECT 4"), close("S", "pl_s2"), SYNC],
            "error in Bind, then Parse S4 and Close S2", expect=["E", "Z"])
    pr.step([*run("pl_s4"), SYNC], "S4 was never prepared", fresh=True, expect=["E", "Z"])
    pr.step([*run("pl_s2"), SYNC], "S2 was never closed", fresh=True,
            expect=["2", "D", "C", "Z"])
    if mode == "session":
        wait_prepared_count(pr.p, pr.proxy, 3)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_pipeline_libpq(proxy_factory, source, mode):
    """The same through libpq's pipeline mode (psycopg's pgconn API):
    send_prepare / send_query_prepared for S1, S2 (bad), S3, one Sync; then
    each alone.  The result statuses and values are the ones of a direct
    connection."""
    p = proxy_for(proxy_factory, mode, f"libpq-{mode}")

    def script(conninfo):
        out = []
        with psycopg.connect(conninfo, autocommit=True) as c:
            pg = c.pgconn
            pg.enter_pipeline_mode()
            pg.send_prepare(b"lp_s1", b"SELECT $1::int * 3")
            pg.send_query_prepared(b"lp_s1", [b"7"])
            pg.send_prepare(b"lp_s2", b"SELEKT 1")
            pg.send_query_prepared(b"lp_s2", [])
            pg.send_prepare(b"lp_s3", b"SELECT 3")
            pg.pipeline_sync()
            for i in range(4):
                pg.send_query_prepared(f"lp_s{i % 3 + 1}".encode(), [b"2"] if i % 3 == 0 else [])
                pg.pipeline_sync()
            pg.send_prepare(b"lp_s3", b"SELECT 33")
            pg.send_query_prepared(b"lp_s3", [])
            pg.pipeline_sync()
            pg.flush()
            syncs = 0
            deadline = time.monotonic() + 10 * SLOW
            while syncs < 6:
                assert time.monotonic() < deadline, f"pipeline hung after {out}"
                res = pg.get_result()
                if res is None:
                    continue
                st = pq.ExecStatus(res.status).name
                if st == "PIPELINE_SYNC":
                    syncs += 1
                    out.append("SYNC")
                    continue
                val = res.get_value(0, 0) if res.status == pq.ExecStatus.TUPLES_OK else None
                out.append((st, res.error_field(pq.DiagnosticField.SQLSTATE), val))
            pg.exit_pipeline_mode()
        return out

    direct = script(source.conninfo())
    assert direct[:3] == [("COMMAND_OK", None, None), ("TUPLES_OK", None, b"21"),
                          ("FATAL_ERROR", b"42601", None)], direct
    got = script(p.conninfo())
    assert got == direct


# -- 2. names and texts shared between clients -------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_same_text_and_same_name_across_clients(pair_factory, proxy_factory, source, mode):
    """Clients A and B share the pool's servers.  A prepares one text under
    two names; B prepares the same text under a third name and, under a name
    A also uses, a different text.  Each execution returns what it does
    directly; Close of one of A's names leaves its other name and B's working;
    Describe 'S' (ParameterDescription + RowDescription) works in a
    transaction that lands on a server lacking the statement."""
    a = pair_factory(mode, name="share")
    b = Pair(a.p, source, mode)
    try:
        shared = "SELECT $1::int * 10 AS ten"
        a.step([parse("sh_a1", shared, [INT4]), parse("sh_a2", shared, [INT4]), SYNC],
               "A: one text, two names", expect=["1", "1", "Z"])
        b.step([parse("sh_b1", shared, [INT4]), parse("sh_a1", "SELECT 'B''s own'::text AS own"),
                SYNC], "B: same text, and A's name for another", expect=["1", "1", "Z"])
        for i in range(3):
            fresh = i == 1
            a.step([*run("sh_a1", [i]), *run("sh_a2", [i + 1]), SYNC], f"A runs both {i}",
                   fresh=fresh, expect=["2", "D", "C", "2", "D", "C", "Z"])
            b.step([*run("sh_a1"), *run("sh_b1", [i]), SYNC], f"B runs both {i}", fresh=fresh,
                   expect=["2", "D", "C", "2", "D", "C", "Z"])
        # Describe of a statement, inside a transaction, on a server lacking it
        for who in (a, b):
            who.step([query("BEGIN"), describe("S", "sh_a1"), SYNC,
                      *(run("sh_a1", [3]) if who is a else run("sh_a1")), SYNC, query("COMMIT")],
                     "Describe S in a transaction", fresh=True,
                     expect=["C", "Z", "t", "T", "Z", "2", "D", "C", "Z", "C", "Z"])
            who.step([describe("S", "sh_b1" if who is b else "sh_a2"), SYNC],
                     "Describe S alone", fresh=True, expect=["t", "T", "Z"])
        # Close one of A's two names: the other, and B's, still work
        a.step([close("S", "sh_a1"), SYNC], "A closes sh_a1", expect=["3", "Z"])
        a.step([*run("sh_a2", [4]), SYNC], "A's other name", fresh=True,
               expect=["2", "D", "C", "Z"])
        a.step([*run("sh_a1", [4]), SYNC], "A's closed name", fresh=True, expect=["E", "Z"])
        b.step([*run("sh_b1", [5]), *run("sh_a1"), SYNC], "B's names", fresh=True,
               expect=["2", "D", "C", "2", "D", "C", "Z"])
        # DEALLOCATE of A's other name by SQL, B unaffected
        a.step([query("DEALLOCATE sh_a2")], "A: DEALLOCATE sh_a2", fresh=True, expect=["C", "Z"])
        b.step([*run("sh_b1", [6]), SYNC], "B after A's DEALLOCATE",
               expect=["2", "D", "C", "Z"])
        a.step([*run("sh_a2", [4]), SYNC], "A's deallocated name", expect=["E", "Z"])
    finally:
        b.close()


# -- 3. Close ----------------------------------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_close_variants(pair_factory, mode):
    """Close 'S' then Parse of the same name (in one pipeline and apart);
    Close of a name that never existed; Close 'P' of a portal (named, and
    unnamed); Close of the unnamed statement; Close of a name that looks like
    pgcutover's own server-side names."""
    pr = pair_factory(mode, name="close")
    pr.step([parse("cl_a", "SELECT 'a1'"), SYNC], "prepare", expect=["1", "Z"])
    pr.step([close("S", "cl_a"), parse("cl_a", "SELECT 'a2'"), *run("cl_a"), SYNC],
            "Close then Parse again in one pipeline", expect=["3", "1", "2", "D", "C", "Z"])
    pr.step([*run("cl_a"), SYNC], "the new text", fresh=True, expect=["2", "D", "C", "Z"])
    pr.step([close("S", "cl_a"), SYNC], "Close", fresh=True, expect=["3", "Z"])
    pr.step([parse("cl_a", "SELECT 'a3'"), SYNC], "Parse again", fresh=True, expect=["1", "Z"])
    pr.step([*run("cl_a"), SYNC], "the third text", fresh=True, expect=["2", "D", "C", "Z"])
    pr.step([close("S", "cl_never"), close("S", "cl_never"), SYNC], "Close of nothing",
            expect=["3", "3", "Z"])
    pr.step([close("S", "pgcutover_0"), close("S", "pgcutover_1"), *run("cl_a"), SYNC],
            "Close of pgcutover-like names", expect=["3", "3", "2", "D", "C", "Z"])
    pr.step([close("S", ""), close("P", ""), close("P", "nope"), SYNC],
            "Close of the unnamed statement and of portals that do not exist",
            expect=["3", "3", "3", "Z"])
    # portals: named portal, partly fetched, closed, then fetched again (error)
    pr.step([query("BEGIN"), bind("cl_a", portal="cl_portal"), execute("cl_portal", 1),
             close("P", "cl_portal"), execute("cl_portal", 1), SYNC, query("ROLLBACK")],
            "Close P of a named portal",
            expect=["C", "Z", "2", "D", "s", "3", "E", "Z", "C", "Z"])
    # after a Close the statement is gone for Bind and Describe
    pr.step([parse("cl_b", "SELECT $1::text", [TEXT]), close("S", "cl_b"), describe("S", "cl_b"),
             SYNC], "Parse, Close, Describe", expect=["1", "3", "E", "Z"])
    pr.step([*run("cl_b", ["x"]), SYNC], "closed statement", fresh=True, expect=["E", "Z"])
    pr.step([*run("cl_a"), SYNC], "cl_a still there", fresh=True, expect=["2", "D", "C", "Z"])
    if mode == "session":
        wait_prepared_count(pr.p, pr.proxy, 1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_failed_reparse_keeps_old_statement(pair_factory, mode):
    """A Parse of a name that exists fails and the old statement stays: with
    a syntax error (42601) or a valid text (42P05), in both modes, and in
    transaction pooling also when the re-Parse lands on a server that does
    not hold the statement yet."""
    pr = pair_factory(mode, name="reparse")
    pr.step([parse("rp_a", "SELECT 'old'"), SYNC], "prepare", expect=["1", "Z"])
    pr.step([parse("rp_a", "SELEKT 'bad'"), SYNC], "re-Parse with a syntax error",
            expect=["E", "Z"])
    pr.step([*run("rp_a"), SYNC], "the old text after a failed re-Parse", fresh=True,
            expect=["2", "D", "C", "Z"])
    pr.step([parse("rp_a", "SELECT 'new'"), SYNC], "re-Parse of an existing name", fresh=True,
            expect=["E", "Z"])
    pr.step([*run("rp_a"), SYNC], "still the old text", expect=["2", "D", "C", "Z"])
    wait_prepared_count(pr.p, pr.proxy, 1)


# -- 4. max_prepared_statements = 3, several clients ------------------------------

@pytest.mark.timeout(150)
def test_lru_eviction_round_robin(proxy_factory):
    """Transaction pooling, max_prepared_statements = 3, pool size 2, four
    clients with seven statements each (four texts shared by every client
    under their own names, three of their own) used round-robin, alone, in
    pipelines of several per Sync, with Describe, and in transactions: every
    execution returns its own result, never "already exists" or "does not
    exist"."""
    p = proxy_for(proxy_factory, "transaction", "lru", max_prepared_statements=3)
    nclients, rounds = 4, 60
    errors = []
    counts = [0] * nclients

    def client(k):
        r = login(p.port)
        try:
            stmts = []
            for j in range(7):
                name = f"lru_{k}_{j}"
                if j < 4:
                    sql, want = f"SELECT $1::int + {j}", lambda i, j=j: str(i + j)
                else:
                    sql, want = f"SELECT $1::int + {j} + {k * 1000}", \
                        lambda i, j=j: str(i + j + k * 1000)
                got = exchange(r, [parse(name, sql, [INT4]), SYNC], name)
                if types(got) != ["1", "Z"]:
                    errors.append(f"client {k}: prepare {name}: {got}")
                    return
                stmts.append((name, want))
            for i in range(rounds):
                if len(errors) > 10:
                    return
                batch = [stmts[(i + x) % 7] for x in range(1 + i % 4)]
                msgs = []
                if i % 5 == 0:
                    msgs.append(query("BEGIN"))
                if i % 3 == 0:
                    msgs.append(describe("S", batch[0][0]))
                for name, _ in batch:
                    msgs += run(name, [i])
                msgs.append(SYNC)
                if i % 5 == 0:
                    msgs.append(query("COMMIT"))
                got = exchange(r, msgs, f"client {k} round {i}")
                if any(m[0] == "E" for m in got):
                    errors.append(f"client {k} round {i}: {got}")
                    continue
                rows = [m[1][0] for m in got if m[0] == "D"]
                want = [w(i) for _, w in batch]
                if rows != want:
                    errors.append(f"client {k} round {i}: rows {rows}, want {want}")
                counts[k] += len(rows)
        except AssertionError as e:
            errors.append(f"client {k}: {e}")
        finally:
            r.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100 * SLOW)
    assert not any(t.is_alive() for t in threads), "clients stuck"
    assert not errors, "\n".join(errors[:10])
    assert all(n >= rounds for n in counts), counts
    # the servers hold at most max_prepared_statements of pgcutover's statements each
    with psycopg.connect(p.conninfo(), autocommit=True, prepare_threshold=None) as c:
        n = c.execute("SELECT count(*) FROM pg_prepared_statements "
                      "WHERE name LIKE 'pgcutover%'").fetchone()[0]
        assert n <= 3, n


# -- 5. DEALLOCATE and DISCARD ALL --------------------------------------------------

def unnamed(sql):
    """psycopg's way: an unnamed Parse, Bind, Execute, Sync."""
    return [parse("", sql), bind(""), execute(), SYNC]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_deallocate_and_discard(pair_factory, mode):
    """DEALLOCATE name, DEALLOCATE PREPARE name, a quoted name, DEALLOCATE
    ALL and DISCARD ALL, as simple queries and as unnamed Parse+Bind+Execute:
    afterwards the names do not exist (26000) and can be prepared again
    without 42P05; settings are reset by DISCARD ALL; DEALLOCATE of a name
    that does not exist is an error as directly."""
    pr = pair_factory(mode, name="dealloc")

    def prep(names, what, fresh=False):
        pr.step([*(parse(n, f"SELECT '{n}'") for n in names), SYNC], what, fresh=fresh,
                expect=["1"] * len(names) + ["Z"])

    def exists(name, yes, what, fresh=True):
        pr.step([*run(name), SYNC], f"{what}: {name}", fresh=fresh,
                expect=["2", "D", "C", "Z"] if yes else ["E", "Z"])

    prep(["da", "db", "dc", "Dd"], "prepare four")
    for how, msgs in (("simple", lambda sql: [query(sql)]), ("extended", unnamed)):
        for sql, gone in (("DEALLOCATE da", "da"), ("DEALLOCATE PREPARE db", "db"),
                          ('deallocate "Dd"', "Dd"), ("DEALLOCATE dc;", "dc")):
            for fresh in (False, True):
                pr.step(msgs(sql), f"{how}: {sql}", fresh=fresh,
                        expect=["C", "Z"] if how == "simple" else ["1", "2", "C", "Z"])
                exists(gone, False, f"after {sql}")
                prep([gone], f"{gone} again after {sql}")
                exists(gone, True, f"{gone} prepared again")
        err = ["E", "Z"] if how == "simple" else ["1", "2", "E", "Z"]
        pr.step(msgs("DEALLOCATE Dd"), f"{how}: DEALLOCATE of a folded name that does not exist",
                expect=err)
        pr.step(msgs("DEALLOCATE nothing_here"), f"{how}: DEALLOCATE of nothing", expect=err)
        for sql in ("DEALLOCATE ALL", "DISCARD ALL"):
            pr.step([query("SET statement_timeout = 1234")], "SET", expect=["C", "Z"])
            pr.step(msgs(sql), f"{how}: {sql}",
                    expect=["C", "Z"] if how == "simple" else ["1", "2", "C", "Z"])
            for n in ("da", "db", "dc", "Dd"):
                exists(n, False, f"after {sql}", fresh=False)
            pr.step([query("SHOW statement_timeout")], f"setting after {sql}", fresh=True)
            prep(["da", "db", "dc", "Dd"], f"prepare again after {sql}", fresh=True)
            for n in ("da", "db", "dc", "Dd"):
                exists(n, True, f"after {sql} and Parse")
        pr.step([query("RESET ALL")], "RESET ALL", expect=["C", "Z"])
    if mode == "session":
        wait_prepared_count(pr.p, pr.proxy, 4)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_deallocate_of_statement_that_no_longer_parses(pair_factory, source, mode):
    """A statement over a table that has been dropped since can still be
    deallocated (directly it exists until then): DEALLOCATE as a simple
    query and through the extended protocol, on a server that never
    prepared it."""
    pr = pair_factory(mode, name="dealloc-gone")
    tables = {"direct": "pp_gone_direct", "proxy": "pp_gone_proxy"}
    with psycopg.connect(source.conninfo(), autocommit=True) as c:
        for t in tables.values():
            c.execute(f"DROP TABLE IF EXISTS {t}")
            c.execute(f"CREATE TABLE {t} (x int)")
    pr.step(lambda side: [parse("gone_a", f"SELECT count(*) FROM {tables[side]}"),
                          parse("gone_b", f"SELECT count(*) FROM {tables[side]}"),
                          parse("gone_c", f"SELECT x FROM {tables[side]}"), SYNC],
            "prepare over the tables", expect=["1", "1", "1", "Z"])
    with psycopg.connect(source.conninfo(), autocommit=True) as c:
        for t in tables.values():
            c.execute(f"DROP TABLE {t}")
    pr.step([query("DEALLOCATE gone_a")], "DEALLOCATE as a query", fresh=True,
            expect=["C", "Z"])
    pr.step(unnamed("DEALLOCATE gone_b"), "DEALLOCATE through Parse", fresh=True,
            expect=["1", "2", "C", "Z"])
    pr.step([close("S", "gone_c"), SYNC], "Close", fresh=True, expect=["3", "Z"])
    pr.step([parse("gone_a", "SELECT 1"), parse("gone_b", "SELECT 2"), SYNC], "names free",
            expect=["1", "1", "Z"])
    pr.step([query("SELECT 'still usable'")], "the session goes on", expect=["T", "D", "C", "Z"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_deallocate_in_failed_transaction(pair_factory, mode):
    """DEALLOCATE in a transaction that already failed gets 25P02 and
    deallocates nothing: after ROLLBACK the statement still executes."""
    pr = pair_factory(mode, name="dealloc-failed")
    pr.step([parse("df_a", "SELECT 'a'"), parse("df_b", "SELECT 'b'"), SYNC], "prepare",
            expect=["1", "1", "Z"])

    def failed_txn(body):
        return [query("BEGIN"), query("SELECT 1/0"), *body, query("ROLLBACK")]

    pr.step(failed_txn([query("DEALLOCATE df_a")]), "DEALLOCATE as a query", fresh=True,
            expect=["C", "Z", "E", "Z", "E", "Z", "C", "Z"])
    pr.step(failed_txn(unnamed("DEALLOCATE df_b")), "DEALLOCATE through Parse", fresh=True,
            expect=["C", "Z", "E", "Z", "E", "Z", "C", "Z"])
    pr.step([*run("df_a"), *run("df_b"), SYNC], "both still exist", fresh=True,
            expect=["2", "D", "C", "2", "D", "C", "Z"])


# -- 6. a named statement that SETs ----------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_named_set_statement(pair_factory, proxy_factory, source, mode):
    """A named statement "SET statement_timeout = 1234", executed: the
    setting is the client's in its later transactions (whichever server runs
    them), another client sharing the servers keeps the default until it runs
    the same text itself; executed in a transaction that rolls back, it does
    not count; a named RESET undoes it."""
    a = pair_factory(mode, name="named-set")
    b = Pair(a.p, source, mode)
    show = [query("SHOW statement_timeout")]
    try:
        for who in (a, b):
            who.step([parse("set_st", "SET statement_timeout = 1234"),
                      parse("reset_st", "RESET statement_timeout"),
                      parse("show_st", "SHOW statement_timeout"), SYNC],
                     "prepare", expect=["1", "1", "1", "Z"])
        a.step([*run("set_st"), SYNC], "A runs its SET", expect=["2", "C", "Z"])
        for i in range(4):
            a.step(show, f"A sees 1234 ({i})", fresh=i % 2 == 1)
            b.step(show, f"B sees the default ({i})", fresh=i % 2 == 0)
            b.step([*run("show_st"), SYNC], f"B through its named SHOW ({i})")
        assert a.step(show, "A")[1] == ("D", ("1234ms",))
        b.step([query("BEGIN"), *run("set_st"), SYNC, query("ROLLBACK")], "B rolls its SET back")
        b.step(show, "B after its rolled-back SET", fresh=True)
        b.step([*run("set_st"), SYNC], "B runs its SET")
        a.step([*run("reset_st"), SYNC], "A resets")
        for i in range(3):
            a.step(show, f"A after RESET ({i})", fresh=i == 1)
            b.step(show, f"B after its SET ({i})", fresh=i == 2)
        assert b.step(show, "B")[1] == ("D", ("1234ms",))
        assert a.step(show, "A")[1] == ("D", ("0",))
    finally:
        b.close()


# -- 7. Flush without Sync ------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_flush_without_sync(pair_factory, mode):
    """Parse/Describe/Flush, read the answers, then Bind/Execute/Sync: no
    deadlock, the same answers; on a server that lacks the statement
    (Describe/Flush only); and a failing Parse before a Flush."""
    pr = pair_factory(mode, name="flush")

    def both(msgs, n, what):
        d = read_count_after(pr.direct, msgs, n, what + " (direct)")
        x = read_count_after(pr.proxy, msgs, n, what + " (through pgcutover)")
        assert x == d, f"{what}:\n through pgcutover: {x}\n directly:          {d}"
        return d

    def read_count_after(r, msgs, n, what):
        r.send(b"".join(msgs))
        got = read_count(r, n, what)
        quiet(r, what, 0.2)
        return got

    d = both([parse("fl_a", "SELECT $1::int AS v", [INT4]), describe("S", "fl_a"), FLUSH], 3,
             "Parse/Describe/Flush")
    assert types(d) == ["1", "t", "T"], d
    pr.step([*run("fl_a", [5]), SYNC], "Bind/Execute/Sync after Flush",
            expect=["2", "D", "C", "Z"])
    # on a server lacking it: Describe + Flush first, then the rest
    with pr.fresh_server():
        d = both([describe("S", "fl_a"), FLUSH], 2, "Describe/Flush, fresh server")
        assert types(d) == ["t", "T"], d
        d = both([bind("fl_a", [6]), FLUSH], 1, "Bind/Flush")
        assert types(d) == ["2"], d
        pr.step([execute(), SYNC], "Execute/Sync", expect=["D", "C", "Z"])
    # a re-Parse of a name it has, Flush: the 42P05 now (rewritten in
    # transaction pooling), not only once a Sync follows
    d = both([parse("fl_a", "SELECT 'again'"), FLUSH], 1, "duplicate Parse/Flush")
    assert types(d) == ["E"], d
    pr.step([SYNC], "Sync after the duplicate", expect=["Z"])
    # a failing Parse, Flush: the error now; the server skips until Sync
    d = both([parse("fl_bad", "SELEKT"), FLUSH], 1, "bad Parse/Flush")
    assert types(d) == ["E"], d
    pr.step([parse("fl_c", "SELECT 1"), *run("fl_bad"), SYNC], "rest of the failed batch",
            expect=["Z"])
    pr.step([*run("fl_c"), SYNC], "fl_c was skipped", fresh=True, expect=["E", "Z"])
    pr.step([*run("fl_a", [7]), SYNC], "fl_a still works", fresh=True,
            expect=["2", "D", "C", "Z"])


# -- 8. a client that vanishes mid-pipeline ---------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_disconnect_mid_pipeline(proxy_factory, mode):
    """Clients with named statements and settings disconnect: in the middle of
    a pipeline (answers pending), in the middle of a Parse message, and
    cleanly between transactions.  With pool size 1 the next client gets the
    same or a fresh server: it sees none of their statements, settings or
    portals, and can use the same names."""
    p = proxy_factory.new(settings={"pool_mode": mode, "default_pool_size": 1},
                          name=f"vanish-{mode}")

    def check_clean(what):
        r = login(p.port)
        try:
            rows = simple(r, "SELECT name FROM pg_prepared_statements "
                             "WHERE name NOT LIKE 'pgcutover%' ORDER BY 1")
            assert rows == [], f"{what}: the next client sees statements {rows}"
            rows = simple(r, "SELECT count(*) FROM pg_cursors")
            assert rows == [["0"]], f"{what}: the next client sees portals"
            assert simple(r, "SHOW statement_timeout") == [["0"]], what
            assert simple(r, "SHOW search_path") == [['"$user", public']], what
            got = exchange(r, [parse("v_s1", "SELECT 'mine'"), *run("v_s1"), SYNC], what)
            assert got == [("1",), ("2",), ("D", ("mine",)), ("C", "SELECT 1"), ("Z", "I")], \
                f"{what}: {got}"
        finally:
            r.close()

    def dirty_client():
        r = login(p.port)
        simple(r, "SET statement_timeout = 4321")
        simple(r, "SET search_path = vanish, public")
        got = exchange(r, [parse("v_s1", "SELECT 'theirs'"), parse("v_s2", "SELECT 2"), SYNC],
                       "prepare")
        assert types(got) == ["1", "1", "Z"], got
        return r

    # answers pending
    r = dirty_client()
    r.send(b"".join([query("BEGIN"), bind("v_s1", portal="v_portal"), execute("v_portal", 1),
                     parse("v_s3", "SELECT pg_sleep(0.3)"), *run("v_s3"),
                     parse("v_s4", "SELECT 4"), SYNC]))
    r.close()
    time.sleep(0.5)
    check_clean("after a disconnect with a pipeline pending")
    # in the middle of a Parse message
    r = dirty_client()
    whole = parse("v_s5", "SELECT 'half a message'")
    r.send(bind("v_s1") + execute() + whole[:len(whole) // 2])
    time.sleep(0.2)
    r.close()
    time.sleep(0.3)
    check_clean("after a disconnect in the middle of a Parse")
    # cleanly, idle
    r = dirty_client()
    assert exchange(r, [*run("v_s1"), SYNC], "run")[1] == ("D", ("theirs",))
    r.send(wire.message("X"))
    r.close()
    time.sleep(0.3)
    check_clean("after a Terminate")
    # abruptly, idle, with a Flush-ed unsynced batch open
    r = dirty_client()
    r.send(parse("v_s6", "SELECT 6") + FLUSH)
    assert read_count(r, 1, "Flush") == [("1",)]
    r.close()
    time.sleep(0.3)
    check_clean("after a disconnect with an unsynced batch")


# -- 8b. a Parse of a name the client already has ------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_reparse_of_a_name_it_has(pair_factory, mode):
    """PostgreSQL parses the text first, then refuses the name: 42P05 naming
    the client's statement for a valid text, the syntax or analysis error for
    a bad one, and the statement keeps its first text either way; in a
    pipeline the error skips the rest until Sync.  In transaction pooling the
    same also on a server that does not hold the statement yet."""
    pr = pair_factory(mode, name="dup")
    pr.step([parse("dp_a", "SELECT $1::int + 1", [INT4]), SYNC], "prepare", expect=["1", "Z"])
    for fresh in (False, True):
        pr.step([parse("dp_a", "SELECT 'other'"), SYNC], f"valid text (fresh={fresh})",
                fresh=fresh, expect=["E", "Z"])
        pr.step([parse("dp_a", "SELEC 2"), SYNC], f"syntax error (fresh={fresh})",
                fresh=fresh, expect=["E", "Z"])
        pr.step([parse("dp_a", "SELECT * FROM no_such_table_dp"), SYNC],
                f"unknown table (fresh={fresh})", fresh=fresh, expect=["E", "Z"])
        pr.step([*run("dp_a", [41]), SYNC], f"the first text still (fresh={fresh})",
                fresh=fresh, expect=["2", "D", "C", "Z"])
    # twice in one pipeline: the second is refused and what follows is skipped
    pr.step([parse("dp_b", "SELECT 'b'"), parse("dp_b", "SELECT 'b'"), parse("dp_c", "SELECT 3"),
             *run("dp_b"), SYNC], "twice in a pipeline", expect=["1", "E", "Z"])
    for fresh in (False, True):
        pr.step([*run("dp_b"), SYNC], f"dp_b (fresh={fresh})", fresh=fresh,
                expect=["2", "D", "C", "Z"])
        pr.step([*run("dp_c"), SYNC], f"dp_c was skipped (fresh={fresh})", fresh=fresh,
                expect=["E", "Z"])
    # an invalid text twice: neither name exists afterwards, both are free
    pr.step([parse("dp_d", "SELEC 1"), parse("dp_e", "SELEC 1"), SYNC], "invalid twice",
            expect=["E", "Z"])
    pr.step([parse("dp_d", "SELECT 4"), parse("dp_e", "SELECT 5"), *run("dp_e"), SYNC],
            "names free", expect=["1", "1", "2", "D", "C", "Z"])
    # after a Close the name is free again
    pr.step([close("S", "dp_a"), parse("dp_a", "SELECT 'new'"), *run("dp_a"), SYNC],
            "Close then Parse", expect=["3", "1", "2", "D", "C", "Z"])
    # a 42P05 of an SQL PREPARE earlier in the batch is that statement's, not
    # the duplicate Parse's after it (which the server skips)
    pr.step([query("BEGIN"), query("PREPARE dp_sql AS SELECT 1")], "SQL PREPARE",
            expect=["C", "Z", "C", "Z"])
    pr.step([parse("", "PREPARE dp_sql AS SELECT 2"), bind(""), execute(),
             parse("dp_b", "SELECT 'b'"), SYNC], "SQL 42P05 before a duplicate Parse",
            expect=["1", "2", "E", "Z"])
    pr.step([query("ROLLBACK")], "rollback", expect=["C", "Z"])


# -- 9. SWITCH with many statements ------------------------------------------------

DB = "cut_pp"
repl, rdb = replicated_fixtures(DB)


@pytest.mark.timeout(150)
def test_switch_with_many_statements(proxy_factory, rdb):
    """Session pooling: a client with 50 named statements (one of them a SET),
    an SQL-level PREPARE and settings goes through a SWITCH: after it each
    statement executes on the target, Describe of one that was never used
    since works, the settings hold, SHOW CLIENTS prepared_statements stays
    right and moves with Close and Parse.  Before the switch the client also
    met the protocol's corners: a failed re-Parse of an existing name (42P05
    and 42601), a Close skipped after an error, and a statement name longer
    than the 63 bytes PostgreSQL keeps (pg_prepared_statements shows it cut)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    r = login(p.port, dbname=DB)
    names = [f"m_{j}" for j in range(48)] + ["m_48_" + "long" * 32]
    try:
        msgs = [parse(names[j], f"SELECT $1::int + {j}, inet_server_port()", [INT4])
                for j in range(49)]
        msgs.append(parse("m_set", "SET work_mem = '3MB'"))
        got = exchange(r, msgs + [SYNC], "prepare 50")
        assert types(got) == ["1"] * 50 + ["Z"], got
        simple(r, "PREPARE m_sql(int) AS SELECT $1 * 2, inet_server_port()")
        simple(r, "SET search_path = pp_schema, public")
        got = exchange(r, [*run("m_set"), SYNC], "run m_set")
        assert types(got) == ["2", "C", "Z"], got
        # the corners: re-Parse of an existing name, an error then a Close
        got = exchange(r, [parse("m_0", "SELECT 'other'"), SYNC], "duplicate")
        assert sqlstates(got) == ["42P05"], got
        got = exchange(r, [parse("m_1", "SELEKT"), SYNC], "bad re-Parse")
        assert sqlstates(got) == ["42601"], got
        got = exchange(r, [*run("m_2", ["x"]), close("S", "m_3"), SYNC], "skipped Close")
        assert sqlstates(got) == ["22P02"], got
        for j in range(0, 49, 8):
            got = exchange(r, [*run(names[j], [1]), SYNC], f"{names[j]} before")
            assert got[1] == ("D", (str(1 + j), str(rdb.source.port))), got
        wait_prepared_count(p, r, 51)
        assert client_row(p, r)["movable"] == "yes", client_row(p, r)

        row = switch(p, rdb)
        assert row["result"] == "ok" and str(row["sessions_closed"]) == "0", row

        # a re-Parse of a name not restored on the target yet: still 42P05
        got = exchange(r, [parse(names[40], "SELECT 'other'"), SYNC], "duplicate after")
        assert [m for m in got if m[0] == "E"] == [
            ("E", "42P05", f'prepared statement "{names[40]}" already exists')], got
        got = exchange(r, [describe("S", names[48]), SYNC], "Describe after the switch")
        assert types(got) == ["t", "T", "Z"], got
        for j in range(49):
            got = exchange(r, [*run(names[j], [j]), SYNC], f"{names[j]} after")
            assert got[1] == ("D", (str(2 * j), str(rdb.target.port))), (j, got)
        quiet(r, "after the switch")
        assert simple(r, "EXECUTE m_sql(21)") == [["42", str(rdb.target.port)]]
        assert simple(r, "SHOW search_path") == [["pp_schema, public"]]
        assert simple(r, "SHOW work_mem") == [["3MB"]]
        wait_prepared_count(p, r, 51)
        got = exchange(r, [close("S", "m_0"), close("S", "m_1"), parse("m_new", "SELECT 1"),
                           SYNC], "Close two, Parse one")
        assert types(got) == ["3", "3", "1", "Z"], got
        wait_prepared_count(p, r, 50)
        assert client_row(p, r)["movable"] == "yes", client_row(p, r)
    finally:
        r.close()


# -- 10. a Parse larger than conn_buffer_size -------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_huge_parse(pair_factory, mode):
    """conn_buffer_size = 64kB and a 100 kB named Parse: session pooling runs
    it and SHOW CLIENTS says why the session cannot move; transaction pooling
    refuses it with a clear 54000.  A huge unnamed Parse and a huge Bind of a
    (small) named statement work in both modes."""
    pr = pair_factory(mode, name="huge", conn_buffer_size="64kB")
    big = "x" * 100_000
    pr.step([parse("", f"SELECT length('{big}')"), bind(""), execute(), SYNC],
            "huge unnamed Parse", expect=["1", "2", "D", "C", "Z"])
    pr.step([parse("hb", "SELECT length($1::text)", [TEXT]), SYNC], "small named",
            expect=["1", "Z"])
    pr.step([*run("hb", ["y" * 200_000]), SYNC], "huge Bind", fresh=True,
            expect=["2", "D", "C", "Z"])
    msgs = [parse("huge", f"SELECT length('{big}')"), *run("huge"), SYNC]
    if mode == "session":
        pr.step(msgs, "huge named Parse", expect=["1", "2", "D", "C", "Z"])
        pr.step([*run("huge"), *run("hb", ["z"]), SYNC], "again",
                expect=["2", "D", "C", "2", "D", "C", "Z"])
        mv = client_row(pr.p, pr.proxy)["movable"]
        assert mv != "yes" and "conn_buffer_size" in mv, mv
    else:
        pr.proxy.send(b"".join(msgs))
        m = pr.proxy.read_msg()
        assert m.type == "E" and m.fields.get("C") == "54000" and \
            m.fields.get("S") == "FATAL", m
        assert "conn_buffer_size" in m.fields.get("M", ""), m
        assert pr.proxy.wait_closed(5)


# -- 11. COPY and LISTEN with tracking on ---------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_copy_with_statements(pair_factory, mode):
    """COPY FROM STDIN and TO STDOUT, as simple queries and as a named
    statement, between named statements, in a transaction: the same messages
    as directly."""
    pr = pair_factory(mode, name="copy")
    pr.step([parse("cp_count", "SELECT count(*), sum(a) FROM pp_copy"),
             parse("cp_in", "COPY pp_copy FROM STDIN"),
             parse("cp_out", "COPY (SELECT a, b FROM pp_copy ORDER BY a) TO STDOUT"), SYNC,
             ], "prepare (the table does not exist yet)", expect=["E", "Z"])
    body = [query("BEGIN"),
            query("CREATE TEMP TABLE pp_copy (a int, b text) ON COMMIT DROP"),
            parse("cp_count", "SELECT count(*), sum(a) FROM pp_copy"),
            parse("cp_in", "COPY pp_copy FROM STDIN"),
            parse("cp_out", "COPY (SELECT a, b FROM pp_copy ORDER BY a) TO STDOUT"), SYNC,
            query("COPY pp_copy FROM STDIN")]
    pr.step(body[:-1], "set-up")
    for side in ("direct", "proxy"):
        r = pr.direct if side == "direct" else pr.proxy
        r.send(query("COPY pp_copy FROM STDIN"))
        m = r.read_msg()
        assert m.type == "G", (side, m)
        r.send(copy_data(b"1\tone\n2\ttwo\n") + COPY_DONE)
    for r in (pr.direct, pr.proxy):
        got = read_until(r, 1, "COPY in")
        assert got == [("C", "COPY 2"), ("Z", "T")], got
    for side in ("direct", "proxy"):
        r = pr.direct if side == "direct" else pr.proxy
        r.send(b"".join(run("cp_in")))
        r.send(FLUSH)
        m = r.read_msg()
        assert m.type == "2", (side, m)
        m = r.read_msg()
        assert m.type == "G", (side, m)
        r.send(copy_data(b"3\tthree\n") + copy_data(b"4\tfour\n") + COPY_DONE + SYNC)
    for r in (pr.direct, pr.proxy):
        got = read_until(r, 1, "COPY in, extended")
        assert got == [("C", "COPY 2"), ("Z", "T")], got
    pr.step([*run("cp_out"), *run("cp_count"), SYNC], "COPY out, count")
    pr.step([query("COPY (SELECT a FROM pp_copy WHERE a > 2) TO STDOUT")], "COPY out, simple")
    pr.step([query("COMMIT")], "commit", expect=["C", "Z"])


@pytest.mark.timeout(60)
def test_listen_with_statements(proxy_factory, source):
    """Session pooling: a client with named statements LISTENs; NOTIFYs from
    another client arrive between its pipelines and while it is idle, and its
    statements keep working."""
    p = proxy_for(proxy_factory, "session", "listen")
    r = login(p.port)
    other = login(p.port)
    try:
        got = exchange(r, [parse("ln_a", "SELECT $1::int", [INT4]), query("LISTEN pp_chan")],
                       "prepare, LISTEN")
        assert types(got) == ["1", "C", "Z"], got
        simple(other, "NOTIFY pp_chan, 'one'")
        m = r.read_msg(timeout=5)
        assert norm(m) == ("A", (b"pp_chan", b"one")), m
        got = exchange(r, [*run("ln_a", [1]), SYNC], "run")
        assert types(got) == ["2", "D", "C", "Z"], got
        other.send(query("NOTIFY pp_chan, 'two'"))
        got = exchange(r, [query("SELECT pg_sleep(0.2)"), *run("ln_a", [2]), SYNC], "run again")
        assert ("A", (b"pp_chan", b"two")) in got, got
        read_until(other, 1, "notify")
        with psycopg.connect(source.conninfo(), autocommit=True) as d:
            d.execute("NOTIFY pp_chan, 'three'")
        m = r.read_msg(timeout=5)
        assert norm(m) == ("A", (b"pp_chan", b"three")), m
        wait_prepared_count(p, r, 1)
    finally:
        r.close()
        other.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["named_deallocate_all", "named_discard_all", "psycopg",
                                 "multi_statement"])
def test_txn_statement_dropping_everything(proxy_factory, how):
    """Transaction pooling, pool size 1: client B drops every statement of
    the shared server in a way pgcutover does not rewrite (a named statement
    "DEALLOCATE ALL" or "DISCARD ALL", as psycopg with prepare_threshold=0
    prepares them; "DEALLOCATE ALL; SELECT 1").  Client A's statements, which
    pgcutover had prepared on that server, must keep working (never
    'prepared statement "pgcutover_N" does not exist'), and B's own are gone,
    as directly; except after the multi-statement Query, of which pgcutover
    reads the first keyword only: B's names may survive there (the server is
    not reused after that transaction)."""
    p = proxy_factory.new(settings={"pool_mode": "transaction", "default_pool_size": 1},
                          name=f"drop-all-{how}")
    a = login(p.port)
    b = login(p.port)
    try:
        got = exchange(a, [parse("da_a", "SELECT 'A'"), *run("da_a"), SYNC], "A prepares")
        assert ("D", ("A",)) in got, got
        got = exchange(b, [parse("da_b", "SELECT 'B'"), *run("da_b"), SYNC], "B prepares")
        assert ("D", ("B",)) in got, got
        if how == "named_deallocate_all":
            got = exchange(b, [parse("drop", "DEALLOCATE ALL"), *run("drop"), SYNC], how)
        elif how == "named_discard_all":
            got = exchange(b, [parse("drop", "DISCARD ALL"), *run("drop"), SYNC], how)
        elif how == "multi_statement":
            got = exchange(b, [query("DEALLOCATE ALL; SELECT 1")], how)
        else:
            # Two psycopg clients (their startup parameters differ from the
            # raw ones above: they share their own servers).  psycopg does not
            # notice DISCARD ALL: the dropper's own statements are gone for it
            # as directly, so it stops there.
            with psycopg.connect(p.conninfo(), autocommit=True, prepare_threshold=0) as pa, \
                    psycopg.connect(p.conninfo(), autocommit=True, prepare_threshold=0) as pb:
                pid = pa.execute("SELECT pg_backend_pid(), 'A'").fetchone()[0]
                assert pb.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
                pb.execute("DISCARD ALL")
                for i in range(3):
                    assert pa.execute("SELECT pg_backend_pid(), 'A'").fetchone() == (pid, "A")
            got = [("Z", "I")]
        assert not sqlstates(got), got
        for i in range(3):
            got = exchange(a, [*run("da_a"), SYNC], f"A after B dropped everything ({i})")
            assert got == [("2",), ("D", ("A",)), ("C", "SELECT 1"), ("Z", "I")], got
        if how not in ("psycopg", "multi_statement"):
            got = exchange(b, [*run("da_b"), SYNC], "B's own statement")
            assert sqlstates(got) == ["26000"], got
            got = exchange(b, [parse("da_b", "SELECT 'B2'"), *run("da_b"), SYNC], "B again")
            assert ("D", ("B2",)) in got, got
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(60)
def test_txn_listen_and_sql_prepare_do_not_leak(proxy_factory):
    """Transaction pooling, pool size 1 (A and B share the server).  A's
    LISTEN goes to pgcutover's listener (test_listen_txn.py) and SQL-level
    PREPARE lives within one transaction (README "Status and limits"), but
    what A leaves on the server must never reach B: not A's notifications,
    not A's SQL statement (B can neither EXECUTE it nor finds its name
    taken).  Within A's transaction PREPARE/EXECUTE work."""
    p = proxy_factory.new(settings={"pool_mode": "transaction", "default_pool_size": 1},
                          name="txn-leaks")
    a = login(p.port)
    b = login(p.port)
    try:
        assert types(exchange(a, [query("LISTEN leak_chan")], "A LISTEN")) == ["C", "Z"]
        got = exchange(a, [query("BEGIN"), query("PREPARE leak_q AS SELECT 'A secret'"),
                           query("EXECUTE leak_q"), query("COMMIT")], "A PREPARE")
        assert ("D", ("A secret",)) in got and not sqlstates(got), got
        got = exchange(b, [query("EXECUTE leak_q")], "B EXECUTE")
        assert sqlstates(got) == ["26000"], f"B runs A's statement: {got}"
        got = exchange(b, [query("BEGIN"), query("PREPARE leak_q AS SELECT 'B'"),
                           query("EXECUTE leak_q"), query("DEALLOCATE leak_q"), query("COMMIT")],
                       "B PREPARE")
        assert not sqlstates(got) and ("D", ("B",)) in got, got
        got = exchange(b, [query("NOTIFY leak_chan, 'for A only'"), query("SELECT pg_sleep(0.3)"),
                           query("SELECT 1")], "B NOTIFY")
        assert not [m for m in got if m[0] == "A"], f"B got A's notification: {got}"
        quiet(b, "B", 0.3)
        assert simple(b, "SELECT count(*) FROM pg_listening_channels()") == [["0"]]
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_pipeline_in_small_pieces(pair_factory, mode):
    """The same pipelines sent a few bytes at a time (every message header,
    name and first keyword split across reads), with a portal name longer
    than what pgcutover peeks at (256 bytes) and a statement name of 200
    bytes: the same answers as directly."""
    pr = pair_factory(mode, name="pieces")
    long_portal = "p" * 300
    long_name = "s" * 200
    msgs = [parse(long_name, "SELECT $1::int * 2", [INT4]), parse("pc_b", "SELECT 'b'"),
            bind(long_name, [21], portal=long_portal), describe("P", long_portal),
            execute(long_portal), describe("S", long_name), *run("pc_b"),
            parse("pc_c", "SELECT 'c'"), parse("", "DEALLOCATE pc_c"), bind(""), execute(),
            query("SELECT 1"), *run(long_name, [4]), *run("pc_c"), SYNC,
            query("DEALLOCATE " + long_name[:63]), *run(long_name, [5]), SYNC]

    def send_slowly(r, data, size):
        for i in range(0, len(data), size):
            r.send(data[i:i + size])
            time.sleep(0.002)

    data = b"".join(msgs)
    zs = syncs_in(data)
    for size in (1, 3, 7):
        with pr.fresh_server():
            send_slowly(pr.direct, data, size)
            d = read_until(pr.direct, zs, f"pieces of {size} (direct)")
            send_slowly(pr.proxy, data, size)
            x = read_until(pr.proxy, zs, f"pieces of {size} (through pgcutover)")
        assert x == d, f"pieces of {size}:\n through pgcutover: {x}\n directly:          {d}"
        # put the names back for the next round
        pr.step([close("S", long_name), close("S", "pc_b"), SYNC], "reset")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", MODES)
def test_psycopg_pipeline_mode(proxy_factory, source, mode):
    """psycopg's pipeline mode with prepare_threshold=0 (every query a named
    statement, many per Sync): a batch with a failing statement in the
    middle (the rest of the pipeline is aborted, as directly), the
    transaction it rolls back (psycopg then sends DEALLOCATE ALL and
    prepares again), and batches after it: the same outcomes as directly."""
    p = proxy_for(proxy_factory, mode, f"psy-pipeline-{mode}")

    def script(conninfo):
        out = []
        with psycopg.connect(conninfo, prepare_threshold=0) as c:
            for rnd in range(3):
                try:
                    with c.pipeline() as pl:
                        curs = []
                        for i in range(6):
                            cur = c.cursor()
                            if rnd == 1 and i == 3:
                                cur.execute("SELECT 1 / %s::int", (0,))
                            else:
                                cur.execute("SELECT %s::int * 2, %s::text", (i, f"r{rnd}"))
                            curs.append(cur)
                        pl.sync()
                        for cur in curs:
                            out.append(cur.fetchall())
                except psycopg.Error as e:
                    out.append(("error", e.sqlstate))
                    c.rollback()
                c.commit()
                out.append([tuple(r) for r in c.execute(
                    "SELECT %s::int, count(*) FROM pg_prepared_statements "
                    "WHERE name LIKE '_pg3%%'", (rnd,)).fetchall()])
        return out

    direct = script(source.conninfo())
    assert ("error", "22012") in direct, direct
    got = script(p.conninfo())
    if mode == "transaction":
        # the server holds pgcutover's names, not _pg3_*: compare without the counts
        direct = [x for x in direct if not (isinstance(x, list) and x and len(x[0]) == 2
                                            and isinstance(x[0][1], int))]
        got = [x for x in got if not (isinstance(x, list) and x and len(x[0]) == 2
                                      and isinstance(x[0][1], int))]
    assert got == direct

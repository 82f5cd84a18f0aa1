"""LISTEN/NOTIFY in transaction pooling (issue 18, item 4).

A client that LISTENs through pgcutover in transaction pooling keeps its
channels although its server changes with every transaction: pgcutover
hands them to one listening connection per (database, user) and fans its
notifications out (proxy/listen.h, proxy/listen_client.h).  What is held
against PostgreSQL's own behaviour, with psycopg, psql, pgjdbc
(PGConnection.getNotifications()) and node-postgres:

- every notification sent after LISTEN returned arrives, from a proxied
  session or one straight on the server, in commit order, with its channel
  and payload;
- a client's own notifications come back before its ReadyForQuery, with
  the process ID the client was told (its PQbackendPID), also when other
  clients ran on the same server in between; another's carry its sender's;
- UNLISTEN name and UNLISTEN * are the client's own (two clients of one user
  on overlapping channels), and count only when their transaction commits;
- a NOTIFY in a transaction that rolls back delivers nothing;
- a client that stops reading is closed with FATAL 53200 once its queue is
  full; the others get every notification;
- after a SWITCH the listening clients go on receiving, on the target.
"""

import os
import queue
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import psycopg
import pytest

import wire
from pgutil import PASSWORDS, pg_bin
from proxyutil import HERE, SLOW
from replication import admin, cutover_proxy, replicated_fixtures, switch, wait_until


def txn_proxy(factory, name="listen-txn", pool_size=2, **settings):
    s = {"pool_mode": "transaction", "default_pool_size": pool_size}
    s.update(settings)
    return factory.new(settings=s, name=name)


def psy(p, dbname="app"):
    return psycopg.connect(p.conninfo(dbname=dbname), autocommit=True, prepare_threshold=None)


class Listener:
    """A psycopg connection's notifications, as they arrive: those psycopg
    reads with a query's answer (its notify handler) and those that arrive
    while it sends nothing (read here off its socket)."""

    def __init__(self, conn):
        self.conn = conn
        self.got = []
        conn.add_notify_handler(lambda n: self.got.append((n.channel, n.payload, n.pid)))

    def _drain(self, timeout):
        pg = self.conn.pgconn
        select.select([self.conn.fileno()], [], [], max(timeout, 0))
        pg.consume_input()
        while (n := pg.notifies()) is not None:
            self.got.append((n.relname.decode(), n.extra.decode(), n.be_pid))

    def poll(self, n, timeout=5.0):
        """Wait until n notifications in all have arrived; all of them."""
        deadline = time.monotonic() + timeout * SLOW
        while len(self.got) < n and time.monotonic() < deadline:
            self._drain(deadline - time.monotonic())
        assert len(self.got) >= n, f"{len(self.got)} notifications of {n}: {self.got}"
        return self.got

    def quiet(self, seconds=0.3):
        """Nothing more arrives for a while: all of them."""
        before = len(self.got)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._drain(deadline - time.monotonic())
        assert len(self.got) == before, f"unexpected: {self.got[before:]}"
        return self.got

    def take(self):
        got, self.got = self.got, []
        return got


def metric(p, name, db="app"):
    with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf'^{name}{{database="{db}"}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else None


def listener_rows(p, db="app"):
    return [r for r in admin(p.admin_port, "SHOW SERVERS")
            if r["database"] == db and r["state"] == "listen"]


# -- psycopg ---------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_psycopg_notifications_in_order(proxy_factory, source):
    """A psycopg client LISTENs on two channels (one a quoted, mixed-case
    name): notifications from another proxied session and from a session
    straight on the source arrive in commit order, with their channel,
    payload (non-ASCII, quotes, empty) and sender; none of a channel it did
    not LISTEN on.  Its own transactions run meanwhile on shared servers,
    which never keep its LISTENs."""
    p = txn_proxy(proxy_factory)
    with psy(p) as c, psy(p) as other, source.admin_connect(dbname="app") as d:
        lc = Listener(c)
        c.execute("LISTEN order_chan")
        c.execute('LISTEN "Mixed Chan"')
        dpid = d.info.backend_pid
        expect = []
        for i in range(10):
            other.execute(f"NOTIFY order_chan, 'proxied {i}'")
            expect.append(("order_chan", f"proxied {i}"))
            d.execute(f"""NOTIFY "Mixed Chan", 'direct {i}'""")
            expect.append(("Mixed Chan", f"direct {i}"))
            d.execute("NOTIFY unheard_chan, 'nobody listens'")
        odd = "héllo ✓ 'quoted' \"double\""
        other.execute("SELECT pg_notify('order_chan', %s)", [odd])
        other.execute("NOTIFY order_chan")
        expect += [("order_chan", odd), ("order_chan", "")]
        got = lc.poll(len(expect))
        assert [g[:2] for g in got] == expect
        assert all(g[2] == dpid for g in got if g[1].startswith("direct")), got
        assert all(g[2] != c.info.backend_pid for g in got), got
        # its own transactions run on the pool's servers, which hold no LISTEN of it
        assert c.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        assert other.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        lc.quiet()
        assert len(listener_rows(p)) == 1
        rows = [r for r in admin(p.admin_port, "SHOW CLIENTS") if r["type"] == "client"]
        assert sorted(r["listen_channels"] for r in rows) == ["0", "2"], rows
        assert metric(p, "pgcutover_notifications_total") == len(expect)


@pytest.mark.timeout(60)
def test_own_notifications_carry_own_pid(proxy_factory, source):
    """Pool size 1: every transaction of three clients runs on the one
    server.  A client's own notification (NOTIFY, pg_notify(), in a
    transaction block, LISTEN and NOTIFY in one transaction) arrives before
    its query returns, with its own PQbackendPID, exactly once; the other
    listening client sees it with that PID too; the notifications of a
    client that does not listen and of a direct session carry their own
    PIDs.  The listener is a connection of its own: pool_size 1 still
    serves the clients."""
    p = txn_proxy(proxy_factory, pool_size=1)
    with psy(p) as a, psy(p) as b, psy(p) as plain, source.admin_connect(dbname="app") as d:
        la, lb = Listener(a), Listener(b)
        apid, bpid, dpid = a.info.backend_pid, b.info.backend_pid, d.info.backend_pid
        assert len({apid, bpid, plain.info.backend_pid, dpid}) == 4
        a.execute("LISTEN own_chan")
        b.execute("LISTEN own_chan")
        plain.execute("SELECT 1")  # another client's transaction on the same server
        a.execute("NOTIFY own_chan, 'from a'")
        assert la.got == [("own_chan", "from a", apid)]
        plain.execute("NOTIFY own_chan, 'from plain'")
        b.execute("SELECT pg_notify('own_chan', 'from b')")
        assert lb.got[-1] == ("own_chan", "from b", bpid), lb.got
        with a.transaction():
            a.execute("SELECT 1")
            a.execute("NOTIFY own_chan, 'a in a transaction block'")
        assert la.got[-1] == ("own_chan", "a in a transaction block", apid), la.got
        d.execute("NOTIFY own_chan, 'direct'")
        plain.execute("SELECT 1")
        a.execute("NOTIFY own_chan, 'a again'")
        expect = ["from a", "from plain", "from b", "a in a transaction block", "direct",
                  "a again"]
        for who, lst in (("a", la), ("b", lb)):
            got = lst.poll(len(expect))
            assert [g[1] for g in got] == expect, (who, got)
            pids = {g[1]: g[2] for g in got}
            assert pids["from a"] == apid and pids["a in a transaction block"] == apid, got
            assert pids["a again"] == apid and pids["from b"] == bpid, got
            assert pids["direct"] == dpid, got
            assert pids["from plain"] not in (apid, bpid, dpid), got
        la.take()
        lb.take()
        # LISTEN and NOTIFY in one transaction: once, by the server that ran it
        a.execute("LISTEN fresh_chan; NOTIFY fresh_chan, 'same transaction'")
        assert la.got == [("fresh_chan", "same transaction", apid)]
        # LISTEN on a channel it has: still once
        a.execute("LISTEN own_chan; NOTIFY own_chan, 'listen again'")
        assert la.got[-1] == ("own_chan", "listen again", apid)
        la.quiet()
        assert lb.poll(1) == [("own_chan", "listen again", apid)]
        assert len(la.got) == 2
        rows = listener_rows(p)
        assert len(rows) == 1 and rows[0]["user"] == "alice", rows


@pytest.mark.timeout(90)
@pytest.mark.parametrize("already", [False, True], ids=["new-channel", "listener-has-it"])
def test_hand_over_loses_and_repeats_nothing(proxy_factory, source, already):
    """A session straight on the source NOTIFYs 1, 2, 3... as fast as it can
    while a client LISTENs (the channel new to the listener, or already held
    for another client): the client gets an unbroken run of numbers, each
    once, that starts no later than the first one committed after its LISTEN
    returned and ends no later than the first one committed after its
    UNLISTEN returned; three times over."""
    p = txn_proxy(proxy_factory)
    stop = threading.Event()
    last = [0]

    def sender():
        with source.admin_connect(dbname="app") as d:
            i = 0
            while not stop.is_set() and i < 10_000_000:  # until the test is done
                i += 1
                d.execute(f"NOTIFY hand_chan, '{i}'")
                last[0] = i

    with psy(p) as c, psy(p) as other:
        if already:
            other.execute("LISTEN hand_chan")
        lc = Listener(c)
        t = threading.Thread(target=sender)
        t.start()
        try:
            runs = []
            for _ in range(3):
                wait_until(lambda: last[0] > 0, 10 * SLOW, what="the sender started")
                time.sleep(0.05)
                c.execute("LISTEN hand_chan")
                returned = last[0]
                time.sleep(0.3)
                c.execute("UNLISTEN hand_chan")
                unlistened = last[0]
                time.sleep(0.1)
                lc._drain(0.1)
                runs.append((returned, unlistened, [int(g[1]) for g in lc.take()]))
        finally:
            stop.set()
            t.join(30)
        for returned, unlistened, got in runs:
            assert got, runs
            assert got == list(range(got[0], got[0] + len(got))), \
                f"a gap or a repeat after LISTEN (returned at {returned}): {got[:20]}..."
            assert got[0] <= returned + 1, (returned, got[:5])
            # committed once UNLISTEN had returned: never delivered
            assert got[-1] <= unlistened + 1, (unlistened, got[-5:])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_size", [1, 3])
def test_own_pids_under_concurrency(proxy_factory, pool_size):
    """Two listening clients and one that does not listen NOTIFY from three
    threads at once, 150 times each, on servers they share: each listening
    client gets all 450, each sender's in its order, and every one carries
    its sender's process ID as that sender was told it (the one that does
    not listen: not a listening client's)."""
    p = txn_proxy(proxy_factory, pool_size=pool_size)
    n = 150
    with psy(p) as a, psy(p) as b, psy(p) as plain:
        la, lb = Listener(a), Listener(b)
        a.execute("LISTEN conc_chan")
        b.execute("LISTEN conc_chan")
        pids = {"a": a.info.backend_pid, "b": b.info.backend_pid}
        errors = []

        def send(conn, who):
            try:
                for i in range(n):
                    if i % 3 == 0:
                        conn.execute(f"NOTIFY conc_chan, '{who}:{i}'")
                    elif i % 3 == 1:
                        conn.execute("SELECT pg_notify('conc_chan', %s)", [f"{who}:{i}"])
                    else:
                        with conn.transaction():
                            conn.execute("SELECT 1")
                            conn.execute(f"NOTIFY conc_chan, '{who}:{i}'")
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=send, args=(conn, who))
                   for conn, who in ((a, "a"), (b, "b"), (plain, "p"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        for lst in (la, lb):
            got = lst.poll(3 * n, timeout=20)
            assert len(got) == 3 * n, len(got)
            for who in ("a", "b", "p"):
                mine = [g for g in got if g[1].startswith(who + ":")]
                assert [int(g[1].split(":")[1]) for g in mine] == list(range(n)), who
                if who in pids:
                    wrong = [g for g in mine if g[2] != pids[who]]
                    assert not wrong, (who, pids[who], wrong[:5])
                else:
                    assert not [g for g in mine if g[2] in pids.values()], mine[:5]


@pytest.mark.timeout(60)
def test_unlisten_is_per_client_and_transactional(proxy_factory, source):
    """Two clients of one user on overlapping channels: each one's UNLISTEN
    name, UNLISTEN * or DISCARD ALL changes only what it receives.  An UNLISTEN in a
    transaction that rolled back or failed counts for nothing; UNLISTEN then
    LISTEN of a channel keeps it; LISTEN then UNLISTEN * in one transaction
    drops everything."""
    p = txn_proxy(proxy_factory)
    with psy(p) as a, psy(p) as b, source.admin_connect(dbname="app") as d:
        la, lb = Listener(a), Listener(b)
        a.execute("LISTEN ux; LISTEN uy")
        b.execute("LISTEN uy")
        b.execute("LISTEN uz")

        def round_(tag, wa, wb):
            d.execute(f"NOTIFY ux, '{tag}'; NOTIFY uy, '{tag}'; NOTIFY uz, '{tag}'")
            d.execute(f"NOTIFY done, '{tag}'")
            for who, lst, want in (("a", la, wa), ("b", lb, wb)):
                if want:
                    lst.poll(len(want))
                lst.quiet(0.3)
                got = [(ch, pl) for ch, pl, _ in lst.take()]
                assert got == [(ch, tag) for ch in want], (who, tag, got)

        round_("r1", ["ux", "uy"], ["uy", "uz"])
        a.execute("UNLISTEN uy")
        round_("r2", ["ux"], ["uy", "uz"])
        a.execute("BEGIN")
        a.execute("UNLISTEN ux")
        a.execute("ROLLBACK")
        a.execute("BEGIN")
        a.execute("UNLISTEN ux")
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("SELECT 1/0")
        a.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("UNLISTEN ux; SELECT 1/0")  # one implicit transaction
        round_("r3", ["ux"], ["uy", "uz"])
        b.execute("UNLISTEN *")
        round_("r4", ["ux"], [])
        b.execute("LISTEN uz")
        a.execute("UNLISTEN ux; LISTEN ux")
        round_("r5", ["ux"], ["uz"])
        a.execute("LISTEN uy; UNLISTEN *")
        round_("r6", [], ["uz"])
        a.execute("LISTEN uy")
        with a.transaction():
            a.execute("UNLISTEN uz")  # b's, not a's: nothing changes
        round_("r7", ["uy"], ["uz"])
        b.execute("DISCARD ALL")  # an UNLISTEN * among the rest
        round_("r8", ["uy"], [])
        for c in (a, b):
            assert c.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0


@pytest.mark.timeout(60)
def test_notify_in_rolled_back_transaction_delivers_nothing(proxy_factory, source):
    """NOTIFY in a transaction that rolls back, or fails, through pgcutover
    (by another client and by the listening client itself) or straight on
    the source: nothing arrives.  The committed one sent after them does."""
    p = txn_proxy(proxy_factory)
    with psy(p) as c, psy(p) as other, source.admin_connect(dbname="app") as d:
        lc = Listener(c)
        c.execute("LISTEN rb_chan")
        other.execute("BEGIN")
        other.execute("NOTIFY rb_chan, 'rolled back'")
        other.execute("ROLLBACK")
        other.execute("BEGIN")
        other.execute("NOTIFY rb_chan, 'failed'")
        with pytest.raises(psycopg.errors.DivisionByZero):
            other.execute("SELECT 1/0")
        other.execute("COMMIT")  # of a failed transaction: a ROLLBACK
        c.execute("BEGIN")
        c.execute("SELECT pg_notify('rb_chan', 'mine, rolled back')")
        c.execute("ROLLBACK")
        d.execute("BEGIN")
        d.execute("NOTIFY rb_chan, 'direct, rolled back'")
        d.execute("ROLLBACK")
        lc.quiet(0.5)
        assert lc.got == []
        other.execute("NOTIFY rb_chan, 'committed'")
        assert [g[1] for g in lc.poll(1)] == ["committed"]
        lc.quiet()


@pytest.mark.timeout(120)
def test_client_that_does_not_read_is_closed(proxy_factory, source):
    """A client LISTENs and stops reading; 8 MB of notifications follow (more
    than the kernel's socket buffers hold), then, after a pause, a few more.
    It is closed with FATAL 53200 (the last thing in its socket) and counted
    in the metrics: its queue was full and it had read nothing.  Another
    listening client, which reads all along, gets every notification, and a
    third runs queries throughout."""
    p = txn_proxy(proxy_factory)
    n, size, more = 1200, 7000, 5
    slow = wire.RawConn(port=p.port, timeout=10)
    try:
        slow.login("alice", PASSWORDS["alice"])
        slow.query("LISTEN flood")
        slow_port = slow.local_port
        with psy(p) as fast, psy(p) as busy, source.admin_connect(dbname="app") as d:
            lf = Listener(fast)
            fast.execute("LISTEN flood")

            def send():
                d.execute(f"SELECT pg_notify('flood', g || ':' || repeat('x', {size})) "
                          f"FROM generate_series(1, {n}) AS g")
                time.sleep(1.5)  # longer than a client may read nothing with a full queue
                for i in range(more):
                    d.execute(f"NOTIFY flood, '{n + i + 1}:after the pause'")

            # sent from another thread: this one reads all along
            sender = threading.Thread(target=send)
            sender.start()
            got = []
            deadline = time.monotonic() + 60 * SLOW
            i = 0
            while len(got) < n + more and time.monotonic() < deadline:
                lf._drain(0.05)
                got += lf.take()
                i += 1
                if i % 20 == 0:
                    assert busy.execute("SELECT 7").fetchone()[0] == 7
            sender.join(30)
            got += lf.take()
            assert [int(g[1].split(":")[0]) for g in got] == list(range(1, n + more + 1))

            def slow_closed():
                return all(not r["addr"].endswith(f":{slow_port}")
                           for r in admin(p.admin_port, "SHOW CLIENTS"))

            wait_until(slow_closed, 10 * SLOW, what="the client that does not read closed")
            assert metric(p, "pgcutover_notification_overflows_total") == 1
            assert p.wait_log(r"too many notifications are waiting for this client")
        msgs = slow.read_all_until_close(timeout=30)
        assert msgs and msgs[-1].type == "E", msgs[-3:]
        f = msgs[-1].fields
        assert f.get("S") == "FATAL" and f.get("C") == "53200", f
        assert "notifications" in f.get("M", ""), f
        assert all(m.type == "A" for m in msgs[:-1])
        assert len(msgs) - 1 < n
    finally:
        slow.close()


@pytest.mark.timeout(60)
def test_lost_listener_closes_its_clients(proxy_factory, source):
    """The listening connection is terminated on the server: the client that
    listened through it is closed with FATAL 08006 saying so (as a
    session-pooled client whose server is lost), one that did not listen
    goes on, and the next LISTEN gets a new listening connection."""
    p = txn_proxy(proxy_factory)
    with psy(p) as c, psy(p) as plain, source.admin_connect(dbname="app") as d:
        c.execute("LISTEN lost_chan")
        rows = listener_rows(p)
        assert len(rows) == 1, rows
        d.execute("SELECT pg_terminate_backend(%s)", [int(rows[0]["backend_pid"])])
        wait_until(lambda: not listener_rows(p) and
                   not [r for r in admin(p.admin_port, "SHOW CLIENTS")
                        if r["listen_channels"] == "1"], 10 * SLOW,
                   what="the listener's client closed")
        with pytest.raises(psycopg.OperationalError) as err:
            c.execute("SELECT 1")
        assert "cannot listen for the notifications" in str(err.value), err.value
        assert plain.execute("SELECT 1").fetchone()[0] == 1
        with psy(p) as c2:
            l2 = Listener(c2)
            c2.execute("LISTEN lost_chan")
            d.execute("NOTIFY lost_chan, 'again'")
            assert [g[1] for g in l2.poll(1)] == ["again"]
        assert len(listener_rows(p)) == 1


# -- psql --------------------------------------------------------------------------

class LineProcess:
    """A process driven line by line: stdin written, stdout read by a thread."""

    def __init__(self, argv, env=None, cwd=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
                                     bufsize=1, encoding="utf-8")
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=15.0):
        """Lines up to the first that matches (a regex); all of them."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        out = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; got {out} "
                                     f"(before: {self.seen[-20:]})") from None
            if line is None:
                raise AssertionError(f"process ended before {pattern!r}; got {out}")
            out.append(line)
            self.seen.append(line)
            if line.startswith("ERR "):
                raise AssertionError(f"{line} (waiting for {pattern!r})")
            if rx.search(line):
                return out

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)


def notification_line(channel, payload, pid):
    return (f'Asynchronous notification "{channel}" with payload "{payload}" '
            f'received from server process with PID {pid}.')


@pytest.mark.timeout(60)
def test_psql_shows_notifications(proxy_factory, source):
    """psql in transaction pooling: after `LISTEN psql_chan;`, a NOTIFY from
    a direct session is shown after psql's next command, as psql shows it
    directly; its own NOTIFY is shown after that command, once."""
    p = txn_proxy(proxy_factory)
    env = dict(os.environ, PGPASSWORD=PASSWORDS["alice"], PGCONNECT_TIMEOUT="10")
    env.pop("PGSERVICE", None)
    ps = LineProcess([pg_bin("psql"), "-X", "-h", "127.0.0.1", "-p", str(p.port), "-U", "alice",
                      "-d", "app", "-v", "ON_ERROR_STOP=1"], env=env)
    try:
        with source.admin_connect(dbname="app") as d:
            ps.send("LISTEN psql_chan;")
            ps.expect(r"^LISTEN$")
            d.execute("NOTIFY psql_chan, 'hello psql'")
            wait_until(lambda: metric(p, "pgcutover_notifications_total") == 1, 5 * SLOW,
                       what="the notification delivered")
            # psql prints it with the next command's output (before or after its rows)
            ps.send("SELECT 'next' AS x;")
            ps.send("SELECT 'end of next' AS z;")
            out = ps.expect(r"^ end of next$")
            assert notification_line("psql_chan", "hello psql", d.info.backend_pid) in out, out
            assert any(ln.strip() == "next" for ln in out), out
            ps.send("NOTIFY psql_chan, 'self';")
            ps.send("SELECT 'end of self' AS z;")
            out = ps.expect(r"^ end of self$")
            mine = [ln for ln in out if "Asynchronous" in ln]
            assert "NOTIFY" in out and len(mine) == 1, out
            assert mine[0].startswith('Asynchronous notification "psql_chan" with payload "self"')
            pid = int(re.search(r"PID (\d+)\.", mine[0]).group(1))
            assert pid != d.info.backend_pid
            ps.send("SELECT 'after' AS y;")
            out = ps.expect(r"^\(1 row\)$")
            assert not any("Asynchronous" in ln for ln in out), out
    finally:
        ps.close()


# -- pgjdbc and node-postgres ---------------------------------------------------------

def drive_listener(cl, p, source):
    """The same scenario for a driver speaking the line protocol of
    java/JdbcListen.java and node/listen.js."""
    cl.expect(r"^READY$", timeout=40)
    cl.send("listen drv_chan")
    cl.expect(r"^OK listen$")
    cl.send("listen drv_Mixed")
    cl.expect(r"^OK listen$")
    cl.send("pid")
    pid = int(cl.expect(r"^PID \d+$")[-1].split()[1])
    notes = []

    def collect(lines):
        for ln in lines:
            if ln.startswith("NOTE "):
                ch, pl, sender = ln[5:].split("\t")
                notes.append((ch, pl, int(sender)))

    with psy(p) as other, source.admin_connect(dbname="app") as d:
        dpid = d.info.backend_pid
        other.execute("NOTIFY drv_chan, 'proxied 1'")
        d.execute("""NOTIFY "drv_Mixed", 'direct 1'""")
        cl.send("wait 2 10000")
        collect(cl.expect(r"^WAITED \d+$"))
        # its own, through pg_notify($1, $2) with the extended protocol
        cl.send("notify drv_chan self 1")
        collect(cl.expect(r"^OK notify$"))
        cl.send("wait 3 10000")
        collect(cl.expect(r"^WAITED \d+$"))
        assert [n[:2] for n in notes] == [("drv_chan", "proxied 1"), ("drv_Mixed", "direct 1"),
                                          ("drv_chan", "self 1")], notes
        assert notes[1][2] == dpid and notes[2][2] == pid and notes[0][2] not in (pid, dpid)
        cl.send("unlisten drv_chan")
        cl.expect(r"^OK unlisten$")
        other.execute("NOTIFY drv_chan, 'after unlisten'")
        d.execute("""NOTIFY "drv_Mixed", 'still'""")
        cl.send("wait 4 10000")
        collect(cl.expect(r"^WAITED \d+$"))
        cl.send("wait 5 500")
        collect(cl.expect(r"^WAITED \d+$"))
        assert [n[1] for n in notes] == ["proxied 1", "direct 1", "self 1", "still"], notes
    cl.send("quit")


JDBC_JAR = "/usr/share/java/postgresql.jar"


@pytest.fixture(scope="module")
def jdbc_listen():
    """java/JdbcListen.java compiled into a temporary directory: (classpath, java)."""
    java, javac = shutil.which("java"), shutil.which("javac")
    if not java or not javac:
        pytest.skip("java or javac not found on PATH: the JDBC tests need a JDK")
    assert os.path.exists(JDBC_JAR), \
        f"{JDBC_JAR} missing: install libpostgresql-jdbc-java (.ci/deps.sh lists it)"
    out = tempfile.mkdtemp(prefix="pgcutover-jdbc-listen-", dir="/tmp")
    try:
        r = subprocess.run([javac, "-d", out, "-cp", JDBC_JAR,
                            os.path.join(HERE, "java", "JdbcListen.java")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        assert r.returncode == 0, f"javac failed:\n{r.stdout}"
        yield f"{out}:{JDBC_JAR}", java
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.timeout(120)
def test_jdbc_get_notifications(proxy_factory, source, jdbc_listen):
    """pgjdbc in transaction pooling: PGConnection.getNotifications(timeout)
    returns what other sessions send, in order; its own pg_notify() comes
    back with getBackendPID(); after UNLISTEN that channel stays silent."""
    p = txn_proxy(proxy_factory)
    cp, java = jdbc_listen
    url = f"jdbc:postgresql://127.0.0.1:{p.port}/app?connectTimeout=10&socketTimeout=60"
    cl = LineProcess([java, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
                      "JdbcListen", url, "alice", PASSWORDS["alice"]])
    try:
        drive_listener(cl, p, source)
        assert cl.proc.wait(timeout=30) == 0
    finally:
        cl.close()


NODE_DIR = os.path.join(HERE, "node")


@pytest.mark.timeout(60)
def test_node_postgres_notifications(proxy_factory, source):
    """node-postgres (npm's pg, pinned by node/package-lock.json) in
    transaction pooling: its 'notification' events, in order, with its own
    processID on its own; UNLISTEN honoured."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node not found on PATH: the node-postgres test needs Node.js")
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")), \
        f"node-postgres missing: run `npm ci` in {NODE_DIR} (.ci/deps.sh does)"
    p = txn_proxy(proxy_factory)
    cl = LineProcess([node, os.path.join(NODE_DIR, "listen.js"), "127.0.0.1", str(p.port),
                      "alice", PASSWORDS["alice"], "app"], cwd=NODE_DIR)
    try:
        drive_listener(cl, p, source)
        assert cl.proc.wait(timeout=30) == 0
    finally:
        cl.close()


# -- SWITCH ----------------------------------------------------------------------------

DB = "cut_listen"

repl, rdb = replicated_fixtures(DB)


def node_listener(p, dbname):
    node = shutil.which("node")
    if not node:
        pytest.skip("node not found on PATH: the node-postgres test needs Node.js")
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")), \
        f"node-postgres missing: run `npm ci` in {NODE_DIR} (.ci/deps.sh does)"
    return LineProcess([node, os.path.join(NODE_DIR, "listen.js"), "127.0.0.1", str(p.port),
                        "alice", PASSWORDS["alice"], dbname], cwd=NODE_DIR)


def jdbc_listener(p, dbname, classes):
    cp, java = classes
    url = f"jdbc:postgresql://127.0.0.1:{p.port}/{dbname}?connectTimeout=10&socketTimeout=60"
    return LineProcess([java, "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
                        "JdbcListen", url, "alice", PASSWORDS["alice"]])


def driver_notes(cl, n, ms=10000):
    """Wait for a driver's n-th notification: its notifications so far."""
    cl.send(f"wait {n} {ms}")
    cl.expect(r"^WAITED \d+$", timeout=ms / 1000 + 10)
    return [tuple(ln[5:].split("\t")) for ln in cl.seen if ln.startswith("NOTE ")]


@pytest.mark.timeout(180)
def test_listening_clients_keep_receiving_across_switch(proxy_factory, rdb, jdbc_listen):
    """psycopg, pgjdbc and node-postgres clients LISTEN in transaction
    pooling; the database switches to its target.  The listener moved with
    it: notifications sent on the target, straight and through pgcutover,
    reach all of them in order, and a client's own still carries its PID.
    No session was closed."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction")
    drivers = [jdbc_listener(p, DB, jdbc_listen), node_listener(p, DB)]
    try:
        for cl in drivers:
            cl.expect(r"^READY$", timeout=40)
            cl.send("listen sw_chan")
            cl.expect(r"^OK listen$")
        with psy(p, DB) as a, psy(p, DB) as b, psy(p, DB) as other:
            la, lb = Listener(a), Listener(b)
            a.execute("LISTEN sw_chan")
            b.execute("LISTEN sw_chan")
            b.execute("LISTEN sw_b")
            with rdb.src() as s:
                s.execute("NOTIFY sw_chan, 'before'")
            for lst in (la, lb):
                assert [g[1] for g in lst.poll(1)] == ["before"]
                lst.take()
            for cl in drivers:
                assert [nt[:2] for nt in driver_notes(cl, 1)] == [("sw_chan", "before")]
            assert [r["side"] for r in listener_rows(p, DB)] == ["source"]

            row = switch(p, rdb)
            assert (row["result"], row["to"], row["sessions_closed"]) == ("ok", "target", "0"), \
                row

            assert [r["side"] for r in listener_rows(p, DB)] == ["target"]
            assert other.execute("SELECT inet_server_port()").fetchone()[0] == rdb.target.port
            with rdb.tgt() as t:
                t.execute("NOTIFY sw_chan, 'after, direct'")
            other.execute("NOTIFY sw_b, 'after, proxied'")
            a.execute("NOTIFY sw_chan, 'own after'")
            assert la.got[-1] == ("sw_chan", "own after", a.info.backend_pid), la.got
            assert [g[1] for g in la.poll(2)] == ["after, direct", "own after"]
            assert [g[1] for g in lb.poll(3)] == ["after, direct", "after, proxied", "own after"]
            assert lb.got[2][2] == a.info.backend_pid
            for cl in drivers:
                got = driver_notes(cl, 3)
                assert [nt[1] for nt in got] == ["before", "after, direct", "own after"], got
                assert int(got[2][2]) == a.info.backend_pid, got
            # a notification on the old side is not expected after the flip: none arrives
            with rdb.src() as s:
                s.execute("NOTIFY sw_chan, 'old side'")
            la.quiet(0.5)
            lb.quiet()
            for cl in drivers:
                cl.send("quit")
    finally:
        for cl in drivers:
            cl.close()

"""Limits and timeouts (issue 5, item 4): each one triggered and observed.

client_login_timeout, server_connect_timeout, server_login_retry,
query_wait_timeout, idle_transaction_timeout, max_db_connections,
max_user_connections, max_packet_size, the startup packet limit, slowloris
memory, and client_message_timeout (a logged-in client that stalls in the
middle of a message).  Every case checks what the client receives (the
SQLSTATE and a message naming the setting), that the proxy logged it, and
that other sessions go on.  Durations are scaled down (1 s instead of
minutes) and every wait is bounded.
"""

import resource
import select
import socket
import struct
import threading
import time

import psycopg
import pytest

import wire
from pgutil import PASSWORDS, free_port
from proxyutil import SLOW, is_sanitizer_build


@pytest.fixture(autouse=True)
def _drop_scratch_tables(clusters):
    """The tables these tests make in the shared database `app` go with each
    test: a switch of `app` refuses while its source has tables its target
    lacks (CHECK's schema check)."""
    yield
    with clusters.source.admin_connect(dbname="app") as c:
        c.execute("DROP TABLE IF EXISTS limits_partial, limits_copy, limits_itt")


# -- helpers -------------------------------------------------------------------------


def logged_in(p, user="alice", app=None, timeout=10.0, dbname="app"):
    c = wire.RawConn(port=p.port, timeout=timeout)
    extra = {"application_name": app} if app else None
    c.login(user, PASSWORDS[user], database=dbname, extra=extra)
    return c


def fatal_then_close(c, timeout):
    """The proxy sends an ErrorResponse and closes; returns that error."""
    msgs = c.read_all_until_close(timeout=timeout)
    errs = wire.errors(msgs)
    assert errs, f"closed without an ErrorResponse: {msgs}"
    assert errs[-1].fields.get("S") == "FATAL", errs[-1]
    return errs[-1]


def error_while_logging_in(c, user="alice", database="app", timeout=15):
    """Log in and wait; the proxy's own authentication passes, then the
    client gets an ErrorResponse instead of its welcome (it was waiting for
    a server), or after its first query when it was welcomed from the
    pool's cache.  Returns the error, once the connection is closed."""
    c.send_startup({"user": user, "database": database})
    try:
        c.authenticate(user, PASSWORDS[user], timeout=timeout)
        rest = c.finish_login(timeout)
        assert not wire.errors(rest), rest
        c.send(wire.query_msg("select 1"))
        return fatal_then_close(c, timeout)
    except wire.LoginError as e:
        assert e.msg.fields.get("S") == "FATAL", e.msg
        assert c.wait_closed(5 * SLOW), "not closed after its error"
        return e.msg


def count_backends(source, appname):
    with source.admin_connect() as c:
        return c.execute("select count(*) from pg_stat_activity where application_name = %s",
                         (appname,)).fetchone()[0]


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def admin_cmd(p, sql):
    with psycopg.connect(host="127.0.0.1", port=p.admin_port, user="admin",
                         password="admin_pw", dbname="pgcutover", autocommit=True,
                         connect_timeout=10) as a:
        cur = a.execute(sql)
        return cur.fetchall() if cur.description else None


def still_serves(p, *others):
    assert p.alive(), f"pgcutover died:\n{p.log()[-3000:]}"
    with p.connect() as conn:
        assert conn.execute("select 'fine'").fetchone()[0] == "fine"
    for o in others:
        assert o.execute("select 'me too'").fetchone()[0] == "me too"


def still_serves_raw(p):
    """still_serves() without psycopg, whose select() fails once the test
    holds more than 1024 descriptors."""
    assert p.alive(), f"pgcutover died:\n{p.log()[-3000:]}"
    with logged_in(p) as c:
        assert c.scalar("select 'fine'") == "fine"


class Forwarder:
    """A TCP forwarder from 127.0.0.1:port to a backend, started late to make a
    "server" come back; every thread is a daemon and stop() closes everything."""

    def __init__(self, port, backend_port):
        self.port = port
        self.backend_port = backend_port
        self.socks = []
        self.stopped = False
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.backend_port), timeout=5)
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        src.settimeout(None)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.thread.join(5)
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


# -- client_login_timeout -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_client_login_timeout_every_login_phase(proxy_factory):
    """Silent, after SSLRequest 'N', in the middle of md5, dribbling a startup
    packet byte by byte: each is closed at client_login_timeout, with a log
    line naming it; a normal login is unaffected."""
    p = proxy_factory.new(settings={"client_login_timeout": "1s", "auth_type": "md5"})
    mark = p.log_mark()
    pkt = wire.startup_packet({"user": "alice", "database": "app"})
    conns = {name: wire.RawConn(port=p.port, timeout=15)
             for name in ("silent", "ssl", "md5", "dribble")}
    try:
        t0 = time.monotonic()
        conns["ssl"].send(struct.pack("!II", 8, wire.SSL_REQUEST))
        assert conns["ssl"].read_bytes(1) == b"N"
        conns["md5"].send_startup({"user": "alice", "database": "app"})
        m = conns["md5"].read_msg()
        assert m.type == "R" and wire.auth_code(m.payload) == wire.AUTH_MD5, m
        closed_at = {}
        i = 0
        while len(closed_at) < 4 and time.monotonic() - t0 < 10 * SLOW:
            if "dribble" not in closed_at and i < len(pkt) - 1:
                conns["dribble"].try_send(pkt[i:i + 1])   # one byte every 100 ms
                i += 1
            for name, c in conns.items():
                if name in closed_at:
                    continue
                r, _, _ = select.select([c.sock], [], [], 0)
                if r and c.wait_closed(0.05):
                    closed_at[name] = time.monotonic() - t0
            time.sleep(0.1)
        assert set(closed_at) == set(conns), f"not closed on time: {closed_at}"
        for name, t in closed_at.items():
            assert 0.8 <= t <= 3 * SLOW, (name, t, closed_at)
        for name, c in conns.items():
            line = p.wait_log(rf":{c.local_port}\b.*client_login_timeout", since=mark)
            assert line, f"{name}: no log line about the login timeout:\n{p.log_since(mark)}"
    finally:
        for c in conns.values():
            c.close()
    with p.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


# -- startup packet and max_packet_size -----------------------------------------------


def test_startup_packet_above_postgresql_limit(proxy):
    """PostgreSQL's MAX_STARTUP_PACKET_LENGTH: 10000 bytes after the length
    word.  20000 is refused with 08P01 before its body is read; exactly 10004
    passes, and the server accepts the same packet."""
    mark = proxy.log_mark()
    body = struct.pack("!I", wire.PROTO_3_0) + b"user\0alice\0database\0app\0application_name\0"
    body += b"x" * (20000 - 4 - len(body) - 2) + b"\0\0"
    pkt = struct.pack("!I", len(body) + 4) + body
    assert len(pkt) == 20000
    with wire.RawConn(port=proxy.port) as c:
        c.try_send(pkt)
        err = fatal_then_close(c, 10 * SLOW)
        assert err.sqlstate == "08P01", err
        assert err.fields["M"] == "invalid length of startup packet", err
        assert proxy.wait_log(rf":{c.local_port}\b.*invalid length of startup packet", since=mark)
    # the boundary itself: a custom GUC padded so that the packet is 10004 bytes
    head = b"user\0alice\0database\0app\0pgcutover.pad\0"
    pad = 10004 - 4 - 4 - len(head) - 2
    with wire.RawConn(port=proxy.port) as c:
        c.send(struct.pack("!II", 10004, wire.PROTO_3_0) + head + b"p" * pad + b"\0\0")
        c.authenticate("alice", PASSWORDS["alice"])
        c.finish_login()
        assert len(c.scalar("show pgcutover.pad")) == pad
    still_serves(proxy)


def test_max_packet_size_closes_only_that_client(proxy_factory):
    p = proxy_factory.new(settings={"max_packet_size": "64kB"})
    mark = p.log_mark()
    with p.connect(application_name="bystander") as other, logged_in(p) as c:
        other.execute("select 1")
        c.try_send(b"Q" + struct.pack("!I", 64 * 1024 + 100) + b"select " + b"1" * 1000)
        err = fatal_then_close(c, 10 * SLOW)
        assert err.sqlstate == "08P01" and "invalid message length" in err.fields["M"], err
        assert p.wait_log(rf":{c.local_port}\b.*invalid message length", since=mark)
        still_serves(p, other)


# -- slowloris --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_slowloris_bounded_memory_and_closed_on_time(proxy_factory):
    """1000 connections that send nothing or dribble a startup packet cost a
    bounded amount of memory each (and 200 more that send 9000 bytes of a
    10000-byte startup packet, the most a login-phase client can make the
    proxy hold, too); all are closed at client_login_timeout; meanwhile the
    proxy serves normal clients."""
    n = 1000
    n_big = 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (n + n_big) + 200    # the test's sockets, and the proxy's (it inherits it)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    login_timeout = 6
    try:
        p = proxy_factory.new(settings={"client_login_timeout": f"{login_timeout}s",
                                        "max_client_conn": n + n_big + 100})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with p.connect() as warm:          # settle the allocator with one full login
        warm.execute("select 1")
    time.sleep(0.3)
    rss_before = p.rss_kb()
    pkt = wire.startup_packet({"user": "alice", "database": "app",
                               "application_name": "slowloris"})
    socks = []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        dribblers = socks[n // 2:]
        for i in range(6):             # the length word and a bit of the body, byte by byte
            for s in dribblers:
                s.send(pkt[i:i + 1])
            time.sleep(0.1)
        opened = time.monotonic() - t0
        assert opened < login_timeout - 3, f"opening the connections took {opened:.1f}s"
        time.sleep(0.5)
        rss_during = p.rss_kb()
        per_conn_kb = (rss_during - rss_before) / n
        print(f"slowloris: RSS {rss_before} kB -> {rss_during} kB with {n} connections: "
              f"{per_conn_kb:.2f} kB each")
        # (ASan's redzones and quarantine make the sanitizer build's figures meaningless)
        assert per_conn_kb < 20 or is_sanitizer_build(), \
            f"{per_conn_kb:.1f} kB per login-phase connection"
        big = wire.startup_packet({"user": "alice", "database": "app",
                                   "application_name": "b" * (10000 - 60)})
        assert len(big) <= 10004
        for _ in range(n_big):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.sendall(big[:9000])
            socks.append(s)
        time.sleep(0.5)
        rss_big = p.rss_kb()
        big_kb = (rss_big - rss_during) / n_big
        print(f"slowloris: {n_big} connections holding 9000 bytes of a startup packet: "
              f"{big_kb:.2f} kB each")
        assert big_kb < 20 or is_sanitizer_build(), \
            f"{big_kb:.1f} kB per connection holding a partial startup packet"
        still_serves_raw(p)
        # every one is closed at client_login_timeout (counted from its connect)
        open_socks = set(socks)
        closed_times = []
        deadline = t0 + (login_timeout + 5) * SLOW
        while open_socks and time.monotonic() < deadline:
            p_ = select.poll()
            fdmap = {}
            for s in open_socks:
                p_.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
                fdmap[s.fileno()] = s
            for fd, _ev in p_.poll(200):
                s = fdmap[fd]
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    closed_times.append(time.monotonic() - t0)
                    open_socks.discard(s)
        assert not open_socks, f"{len(open_socks)} of {len(socks)} connections still open"
        assert min(closed_times) >= login_timeout - 1.5, min(closed_times)
        print(f"slowloris: closed between {min(closed_times):.2f}s and "
              f"{max(closed_times):.2f}s after the first connect")
    finally:
        for s in socks:
            s.close()
    assert p.wait_log(r"client_login_timeout", timeout=1)
    still_serves_raw(p)


# -- client_message_timeout -----------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["body", "header"])
def test_client_stalled_in_the_middle_of_a_message(proxy_factory, source, where):
    """A Query header announcing 1000 bytes and 10 of them (or 3 bytes of a
    header), then nothing: FATAL 08P01 at client_message_timeout, a log line,
    and a server that saw part of the message is closed, not reused."""
    p = proxy_factory.new(settings={"client_message_timeout": "1s"})
    app = f"stall-{where}"
    mark = p.log_mark()
    with p.connect(application_name="bystander") as other, \
            logged_in(p, app=app, timeout=15) as c:
        assert c.scalar("select 1") == "1"
        assert count_backends(source, app) == 1
        t0 = time.monotonic()
        if where == "body":
            # more than pgcutover reads of a query before it forwards it
            # (the whole message up to its input limit or 64 kB, to see
            # schema changes: ddl.h): the server sees part of it
            c.send(b"Q" + struct.pack("!I", 100000) + b"select 1 " + b" " * 70000)
        else:
            c.send(b"Q\0\0")
        err = fatal_then_close(c, 10 * SLOW)
        took = time.monotonic() - t0
        assert err.sqlstate == "08P01", err
        assert "client stalled in the middle of a message" in err.fields["M"], err
        assert "client_message_timeout" in err.fields["M"], err
        assert 0.9 <= took <= 3 * SLOW, took
        assert p.wait_log(rf":{c.local_port}\b.*stalled in the middle of a message", since=mark)
        if where == "body":
            # the server saw part of a message: closed, never handed to anyone
            wait_until(lambda: count_backends(source, app) == 0, 5, "the server to be closed")
        still_serves(p, other)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["stalls", "disconnects"])
def test_partial_message_never_reaches_the_server_completed(proxy_factory, source, how):
    """A client that stalls (client_message_timeout) or disconnects 2 bytes
    short of the end of a Query: its server is closed as it is.  (Sending it
    a Terminate instead would complete the query with "X\\0", and this one,
    whose tail is a comment, would then run and commit.)"""
    p = proxy_factory.new(settings={"client_message_timeout": "1s"})
    app = f"partial-{how}"
    with p.connect() as setup:
        setup.execute("create table if not exists limits_partial (who text)")
        setup.execute("delete from limits_partial where who = %s", (how,))
    # long enough that pgcutover forwards its start before the end arrives
    # (it reads a query whole, up to its input limit or 64 kB, before passing
    # it on: ddl.h)
    text = f"insert into limits_partial values ('{how}') --".encode() + b"x" * 70000
    with logged_in(p, app=app, timeout=15) as c:
        c.send(b"Q" + struct.pack("!I", 4 + len(text) + 2) + text)
        if how == "stalls":
            err = fatal_then_close(c, 10 * SLOW)
            assert "client_message_timeout" in err.fields["M"], err
    wait_until(lambda: count_backends(source, app) == 0, 5, "the server to be closed")
    with p.connect() as check:
        n = check.execute("select count(*) from limits_partial where who = %s",
                          (how,)).fetchone()[0]
    assert n == 0, "the partial query was completed and ran"


@pytest.mark.timeout(60)
def test_client_message_timeout_spares_idle_and_progressing_clients(proxy_factory):
    """Idle between messages for 3x the timeout, a Query trickling in for 3x
    the timeout (a gap of 0.3 s at a time), and a COPY whose rows arrive one
    every 0.4 s: none is closed."""
    p = proxy_factory.new(settings={"client_message_timeout": "1s"})
    with p.connect() as setup:
        setup.execute("create table if not exists limits_copy (n int)")
        setup.execute("truncate limits_copy")
    with logged_in(p) as idle, logged_in(p) as slow, logged_in(p) as copier:
        sql = ("select length('" + "z" * 1000 + "')").encode() + b"\0"
        msg = b"Q" + struct.pack("!I", len(sql) + 4) + sql
        t0 = time.monotonic()
        pos = 0
        while time.monotonic() - t0 < 3:
            slow.send(msg[pos:pos + max(1, len(msg) // 12)])
            pos += max(1, len(msg) // 12)
            time.sleep(0.3)
        slow.send(msg[pos:])
        assert [m for m in slow.read_until_ready() if m.type == "D"], "slow query had no row"
        assert idle.scalar("select 'still here'") == "still here"
        # COPY: each CopyData arrives in two halves 0.4 s apart, for 3.2 s in all
        copier.send(wire.query_msg("copy limits_copy (n) from stdin"))
        assert copier.read_msg().type == "G"
        for i in range(4):
            row = wire.message("d", f"{i}\n".encode())
            copier.send(row[:3])
            time.sleep(0.4)
            copier.send(row[3:])
            time.sleep(0.4)
        copier.send(wire.message("c"))
        done = copier.read_until_ready()
        assert not wire.errors(done), done
        assert copier.scalar("select count(*) from limits_copy") == "4"


# -- server_connect_timeout, server_login_retry, query_wait_timeout ---------------------------


def two_databases(clusters, down_source, **down_settings):
    dbs = {"app": {"source": clusters.source.proxy_target(),
                   "target": clusters.target.proxy_target(), "lag_method": "none"},
           "down": {"source": down_source,
                    "target": clusters.target.proxy_target(), "lag_method": "none"}}
    dbs["down"].update(down_settings)
    return dbs


@pytest.mark.timeout(60)
def test_server_connect_timeout_against_a_server_that_never_answers(proxy_factory, clusters):
    """A listening socket that never answers: the login times out at
    server_connect_timeout (logged), the client keeps waiting and gets
    query_wait_timeout's 08P01 naming the database and the last error; the
    other database is served meanwhile."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)     # never accepted, never answered
    try:
        port = mute.getsockname()[1]
        p = proxy_factory.new(
            settings={"server_connect_timeout": "1s", "server_login_retry": "30s"},
            databases=two_databases(clusters, f"host=127.0.0.1 port={port} dbname=app",
                                    query_wait_timeout="3s"))
        mark = p.log_mark()
        result = {}

        def other_database():
            assert p.wait_log(r"server_connect_timeout \(1000 ms\) expired", since=mark,
                              timeout=10 * SLOW), p.log_since(mark)
            with p.connect() as ok:     # another database goes on meanwhile
                result["other"] = ok.execute("select 2").fetchone()[0]

        th = threading.Thread(target=other_database)
        th.start()
        with wire.RawConn(port=p.port, timeout=15) as c:
            t0 = time.monotonic()
            err = error_while_logging_in(c, database="down")
            took = time.monotonic() - t0
        th.join(20 * SLOW)
        assert result.get("other") == 2, result
        assert err.sqlstate == "08P01", err
        m = err.fields["M"]
        assert "query_wait_timeout (3s)" in m and 'database "down"' in m, m
        assert "server_connect_timeout" in m, m
        assert 2.8 <= took <= 5 * SLOW, took
    finally:
        mute.close()


@pytest.mark.timeout(60)
def test_server_login_retry_source_comes_back(proxy_factory, clusters):
    """The source is down (a closed port) when the client connects, and comes
    back within query_wait_timeout: the client waits, no error, and is served
    once a retry succeeds; attempts are spaced by server_login_retry."""
    port = free_port()
    p = proxy_factory.new(
        settings={"server_login_retry": "1s"},
        databases=two_databases(clusters, f"host=127.0.0.1 port={port} dbname=app",
                                query_wait_timeout="20s"))
    mark = p.log_mark()
    result = {}

    def client():
        t0 = time.monotonic()
        try:
            with p.connect(dbname="down", application_name="comes-back",
                           connect_timeout=30) as conn:
                result["value"] = conn.execute("select inet_server_port()").fetchone()[0]
        except Exception as e:  # reported below
            result["value"] = e
        result["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=client)
    th.start()
    fwd = None
    try:
        time.sleep(2.5)
        assert th.is_alive(), f"the client did not wait: {result}"
        fwd = Forwarder(port, clusters.source.port)
        t_back = time.monotonic()
        th.join(10 * SLOW)
        assert not th.is_alive(), "the client was not served after the source came back"
        served_after = time.monotonic() - t_back
    finally:
        th.join(30)
        if fwd:
            fwd.stop()
    assert result["value"] == clusters.source.port, result
    assert result["elapsed"] >= 2.5, result
    assert served_after <= 1.0 + 2 * SLOW, served_after
    attempts = [ln for ln in p.log_since(mark).splitlines()
                if "could not connect to the source of database \"down\"" in ln]
    # 2.5 s down with a 1 s retry: 3 or 4 attempts, not one per event-loop turn
    assert 2 <= len(attempts) <= 5, attempts
    assert all("server_login_retry" in ln for ln in attempts), attempts


@pytest.mark.timeout(60)
def test_server_down_longer_than_query_wait_timeout(proxy_factory, clusters):
    port = free_port()
    p = proxy_factory.new(
        settings={"server_login_retry": "500ms"},
        databases=two_databases(clusters, f"host=127.0.0.1 port={port} dbname=app",
                                query_wait_timeout="2s"))
    mark = p.log_mark()
    with wire.RawConn(port=p.port, timeout=15) as c:
        t0 = time.monotonic()
        err = error_while_logging_in(c, database="down")
        took = time.monotonic() - t0
        port_seen = c.local_port
    assert err.sqlstate == "08P01", err
    m = err.fields["M"]
    assert "query_wait_timeout (2s) expired" in m and 'database "down"' in m, m
    assert "Connection refused" in m, m
    assert 1.9 <= took <= 4 * SLOW, took
    assert p.wait_log(rf":{port_seen}\b.*query_wait_timeout", since=mark)
    still_serves(p)


def test_login_refused_by_the_server_fails_at_once(proxy_factory, clusters):
    """An ErrorResponse at login (here 3D000) is not a connection error: the
    waiting client gets the server's error at once, not after
    query_wait_timeout."""
    p = proxy_factory.new(databases=two_databases(
        clusters, clusters.source.proxy_target(dbname="no_such_db"), query_wait_timeout="30s"))
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as ei:
        p.connect(dbname="down")
    assert time.monotonic() - t0 < 5 * SLOW
    assert "no_such_db" in str(ei.value) and "does not exist" in str(ei.value), ei.value
    still_serves(p)


@pytest.mark.timeout(60)
def test_query_wait_timeout_pool_full(proxy_factory):
    """pool_size 1, session pooling: the second client waits, then gets 08P01
    naming query_wait_timeout and the database; the first goes on."""
    p = proxy_factory.new(settings={"default_pool_size": 1, "query_wait_timeout": "1s"})
    mark = p.log_mark()
    with p.connect() as holder:
        holder.execute("select 1")
        with wire.RawConn(port=p.port, timeout=15) as c:
            t0 = time.monotonic()
            err = error_while_logging_in(c)
            took = time.monotonic() - t0
            assert p.wait_log(rf":{c.local_port}\b.*query_wait_timeout", since=mark)
        assert err.sqlstate == "08P01", err
        assert err.fields["M"].startswith(
            'query_wait_timeout (1s) expired while waiting for a server connection of database "app"'), err
        assert 0.9 <= took <= 3 * SLOW, took
        assert holder.execute("select 'holder fine'").fetchone()[0] == "holder fine"


@pytest.mark.timeout(60)
def test_query_wait_timeout_does_not_count_while_paused(proxy_factory):
    """pool_size 1, session pooling, query_wait_timeout 2s: a client waits
    behind a session while the database is PAUSEd for 3 s, then 0.7 s more
    after RESUME until the session leaves.  Only those 0.7 s count: no error."""
    p = proxy_factory.new(settings={"default_pool_size": 1, "query_wait_timeout": "2s"})
    holder = p.connect()
    holder.execute("select 1")
    result = {}

    def client():
        t0 = time.monotonic()
        try:
            with p.connect(connect_timeout=30) as conn:
                result["value"] = conn.execute("select 'after the pause'").fetchone()[0]
        except Exception as e:  # reported below
            result["value"] = e
        result["elapsed"] = time.monotonic() - t0

    admin_cmd(p, "PAUSE app")
    th = threading.Thread(target=client)
    th.start()
    try:
        time.sleep(3)
        assert th.is_alive(), f"the held client did not wait: {result}"
    finally:
        admin_cmd(p, "RESUME app")
    try:
        time.sleep(0.7)
        assert th.is_alive(), f"the client did not wait for the pool's only server: {result}"
    finally:
        holder.close()
        th.join(10 * SLOW)
    assert not th.is_alive()
    assert result["value"] == "after the pause", result
    assert result["elapsed"] >= 3.5, result


# -- idle_transaction_timeout ------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_idle_transaction_timeout(proxy_factory, source, pool_mode):
    """Idle inside a transaction for longer: FATAL 25P03, the server closed
    and the transaction rolled back.  Idle outside a transaction, or busy
    inside one, for as long: untouched."""
    p = proxy_factory.new(settings={"idle_transaction_timeout": "1s", "pool_mode": pool_mode})
    with p.connect() as setup:
        setup.execute("create table if not exists limits_itt (note text)")
        setup.execute("delete from limits_itt")
    mark = p.log_mark()
    app = f"itt-{pool_mode}"
    with logged_in(p, app=app, timeout=15) as c, p.connect() as idle, p.connect() as busy:
        idle.execute("select 1")
        busy_result = {}

        def busy_in_transaction():      # busy, not idle, for 2.5x the timeout: spared
            try:
                busy.execute("begin")
                busy.execute("select pg_sleep(2.5)")
                busy.execute("commit")
                busy_result["ok"] = True
            except Exception as e:  # reported below
                busy_result["ok"] = e

        th = threading.Thread(target=busy_in_transaction)
        th.start()
        c.query("begin")
        c.query("insert into limits_itt values ('never committed')")
        t0 = time.monotonic()
        err = fatal_then_close(c, 10 * SLOW)
        took = time.monotonic() - t0
        th.join(10 * SLOW)
        assert busy_result.get("ok") is True, busy_result
        assert err.sqlstate == "25P03", err
        assert err.fields["M"] == "terminating connection due to idle-in-transaction timeout", err
        assert 0.9 <= took <= 3 * SLOW, took
        assert p.wait_log(rf":{c.local_port}\b.*idle-in-transaction timeout", since=mark)
        wait_until(lambda: count_backends(source, app) == 0, 5, "its server to be closed")
        time.sleep(1.5)                 # idle (outside a transaction) for longer: spared
        assert idle.execute("select 'idle fine'").fetchone()[0] == "idle fine"
        assert idle.execute("select count(*) from limits_itt").fetchone()[0] == 0


# -- max_db_connections, max_user_connections ------------------------------------------------------


class Session(threading.Thread):
    """A client session in its own thread: connect, report its backend, hold
    the session until told to leave."""

    def __init__(self, p, user, dbname, app):
        super().__init__(daemon=True)
        self.p, self.user, self.dbname, self.app = p, user, dbname, app
        self.served = threading.Event()
        self.leave = threading.Event()
        self.error = None
        self.pid = None

    def run(self):
        try:
            with self.p.connect(user=self.user, dbname=self.dbname, application_name=self.app,
                                connect_timeout=60) as conn:
                self.pid = conn.execute("select pg_backend_pid()").fetchone()[0]
                self.served.set()
                self.leave.wait(60)
                conn.execute("select 1")
        except Exception as e:  # reported by the test
            self.error = e
            self.served.set()


class BackendSampler(threading.Thread):
    """Samples pg_stat_activity on the source every 20 ms; keeps the maximum."""

    def __init__(self, source, app, user=None):
        super().__init__(daemon=True)
        self.source, self.app, self.user = source, app, user
        self.max = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        with self.source.admin_connect() as c:
            while not self.stop.is_set():
                sql = "select count(*) from pg_stat_activity where application_name = %s"
                args = [self.app]
                if self.user:
                    sql += " and usename = %s"
                    args.append(self.user)
                n = c.execute(sql, args).fetchone()[0]
                self.max = max(self.max, n)
                self.samples += 1
                time.sleep(0.02)


def served(sessions):
    return [s for s in sessions if s.served.is_set()]


@pytest.mark.timeout(90)
def test_max_db_connections(proxy_factory, source):
    """max_db_connections=2, 4 clients of 2 users in session pooling: never
    more than 2 backends; the other 2 wait and are served as sessions leave
    (an idle server of the other user's pool is closed to make room)."""
    app = "limits-maxdb"
    p = proxy_factory.new(settings={"max_db_connections": 2})
    sampler = BackendSampler(source, app)
    sampler.start()
    sessions = [Session(p, u, "app", app) for u in ("alice", "alice", "tim", "tim")]
    try:
        for s in sessions:
            s.start()
        wait_until(lambda: len(served(sessions)) >= 2, 10, "two sessions to be served")
        time.sleep(1.0)
        first = served(sessions)
        assert len(first) == 2, [s.error for s in first]
        assert all(s.error is None for s in first), [s.error for s in first]
        pools = {(r[0], r[1]): r for r in admin_cmd(p, "SHOW POOLS")}
        waiting = sum(int(r[3]) for r in pools.values())
        assert waiting == 2, pools
        # sessions leave one at a time; each time a waiting one is served
        for leaver in first:
            before = len(served(sessions))
            leaver.leave.set()
            wait_until(lambda: len(served(sessions)) > before, 10,
                       "a waiting session to be served after one left")
        assert all(s.error is None for s in sessions), [s.error for s in sessions]
        for s in sessions:
            s.leave.set()
        for s in sessions:
            s.join(10)
    finally:
        for s in sessions:
            s.leave.set()
        sampler.stop.set()
        sampler.join(5)
    print(f"max_db_connections: at most {sampler.max} backends in {sampler.samples} samples")
    assert sampler.samples > 5    # it did watch (fewer samples on a loaded machine)
    assert sampler.max == 2, sampler.max
    assert all(s.error is None for s in sessions), [s.error for s in sessions]


@pytest.mark.timeout(90)
def test_max_user_connections(proxy_factory, clusters, source):
    """max_user_connections=2 across two databases: alice's third session
    waits (tim is not limited by her) and is served when one of hers leaves."""
    app = "limits-maxuser"
    dbs = {name: {"source": clusters.source.proxy_target(),
                  "target": clusters.target.proxy_target(), "lag_method": "none"}
           for name in ("app", "app2")}
    p = proxy_factory.new(settings={"max_user_connections": 2}, databases=dbs)
    sampler = BackendSampler(source, app, user="alice")
    sampler.start()
    alices = [Session(p, "alice", db, app) for db in ("app", "app2", "app2")]
    bob = Session(p, "tim", "app", app)
    try:
        for s in alices[:2]:
            s.start()
        wait_until(lambda: len(served(alices)) == 2, 10, "two of alice's sessions")
        alices[2].start()
        bob.start()
        bob.served.wait(10 * SLOW)
        assert bob.served.is_set() and bob.error is None, bob.error
        time.sleep(1.0)
        assert not alices[2].served.is_set(), "alice's third session was not held back"
        alices[0].leave.set()          # her session on app leaves: app2 gets a server
        alices[2].served.wait(10 * SLOW)
        assert alices[2].served.is_set() and alices[2].error is None, alices[2].error
    finally:
        for s in alices + [bob]:
            s.leave.set()
        for s in alices + [bob]:
            if s.is_alive():
                s.join(10)
        sampler.stop.set()
        sampler.join(5)
    print(f"max_user_connections: at most {sampler.max} backends of alice")
    assert sampler.max == 2, sampler.max
    assert all(s.error is None for s in alices + [bob]), [s.error for s in alices + [bob]]


@pytest.mark.timeout(60)
def test_query_wait_timeout_does_not_count_while_a_switch_holds(proxy_factory, clusters):
    """A SWITCH that holds new transactions for 3x query_wait_timeout (its
    drain waits for an open transaction, then fails): the client held
    meanwhile gets no error, and its query runs on the source afterwards."""
    dbs = {"app": {"source": clusters.source.proxy_target(),
                   "target": clusters.target.proxy_target(), "lag_method": "none",
                   "sequence_sync": "none", "drain_timeout": "3s"}}
    p = proxy_factory.new(settings={"pool_mode": "transaction", "query_wait_timeout": "1s"},
                          databases=dbs)
    result, switch_out = {}, {}
    with p.connect() as open_tx:
        open_tx.execute("begin")
        open_tx.execute("select 1")

        def run_switch():
            try:
                switch_out["rows"] = admin_cmd(p, "SWITCH app")
            except psycopg.Error as e:
                switch_out["error"] = e

        def client():
            t0 = time.monotonic()
            try:
                with p.connect(connect_timeout=30) as conn:
                    result["value"] = conn.execute("select inet_server_port()").fetchone()[0]
            except Exception as e:  # reported below
                result["value"] = e
            result["elapsed"] = time.monotonic() - t0

        sw = threading.Thread(target=run_switch)
        sw.start()
        mark = p.log_mark()
        assert p.wait_log(r"switch app", since=0, timeout=5), p.log()[-2000:]
        time.sleep(0.3)
        th = threading.Thread(target=client)
        th.start()
        sw.join(15 * SLOW)
        th.join(10 * SLOW)
        open_tx.execute("commit")
    assert not sw.is_alive() and not th.is_alive()
    assert "error" in switch_out and "drain" in str(switch_out["error"]), switch_out
    assert result["value"] == clusters.source.port, result
    assert result["elapsed"] >= 2.0, result      # it was held, for more than 1 s
    assert "query_wait_timeout" not in p.log_since(mark)

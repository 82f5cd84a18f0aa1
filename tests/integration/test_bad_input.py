"""Bad input over raw sockets (issue points 3 and 10).  Each case checks the
answer PostgreSQL itself would give (or that the connection is closed), then
that the proxy still serves a normal client and other sessions go on."""

import socket
import struct
import time

import pytest

import wire
from pgutil import PASSWORDS
from proxyutil import SLOW, ProxyFactory

MAX_PACKET = 64 * 1024


@pytest.fixture(scope="module")
def bproxy(clusters, proxy_bin):
    """A proxy with a small max_packet_size, shared by this module."""
    factory = ProxyFactory(clusters)
    p = factory.new(settings={"max_packet_size": "64kB"}, name="badinput-proxy")
    yield p
    problems = factory.close_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def bystander(bproxy):
    """A session open during the bad input, which must not be disturbed."""
    conn = bproxy.connect(application_name="bystander")
    conn.execute("select 1")
    yield conn
    conn.close()


def still_serves(p, bystander=None):
    assert p.alive(), f"pgcutover died:\n{p.log()[-3000:]}"
    with p.connect() as conn:
        assert conn.execute("select 'fine'").fetchone()[0] == "fine"
    if bystander is not None:
        assert bystander.execute("select 'me too'").fetchone()[0] == "me too"


def assert_logged(p, port, mark):
    """A log line above DEBUG level names the client (ADDR:PORT) after mark:
    the operator can see why that connection was closed."""
    line = p.wait_log(rf"^(?!.*\bDEBUG\d?\b).*:{port}\b", since=mark, timeout=5)
    assert line, f"no log line above DEBUG about client port {port}:\n{p.log_since(mark)[-3000:]}"
    return line


def closed_with_optional_error(c, timeout=10):
    """The proxy closes the connection, sending at most an ErrorResponse first.
    Returns the error (or None)."""
    data = c.raw_response(timeout=timeout * SLOW)
    assert c.eof, "connection not closed"
    if not data:
        return None
    assert data[:1] == b"E", f"unexpected answer {data[:80]!r}"
    return data


# -- startup packet ----------------------------------------------------------------

def test_garbage_startup(bproxy, bystander):
    for garbage in (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", bytes(range(256)) * 4):
        mark = bproxy.log_mark()
        with wire.RawConn(port=bproxy.port) as c:
            c.try_send(garbage)
            closed_with_optional_error(c)
            assert_logged(bproxy, c.local_port, mark)
    still_serves(bproxy, bystander)


# PostgreSQL accepts a startup packet of at most 10000 bytes after the length
# word (MAX_STARTUP_PACKET_LENGTH), so 10005 is the first refused length.
@pytest.mark.parametrize("length", [0, 4, 7, 10005, 20000, 0x7fffffff, 0xffffffff])
def test_startup_length_out_of_range(bproxy, bystander, length):
    mark = bproxy.log_mark()
    with wire.RawConn(port=bproxy.port) as c:
        c.try_send(struct.pack("!II", length, wire.PROTO_3_0) + b"user\0alice\0\0")
        closed_with_optional_error(c)
        assert_logged(bproxy, c.local_port, mark)
    still_serves(bproxy, bystander)


def test_truncated_startup_then_close(bproxy, bystander):
    """PostgreSQL logs "incomplete startup packet" for this; so must we."""
    pkt = wire.startup_packet({"user": "alice", "database": "app"})
    ports = []
    mark = bproxy.log_mark()
    for cut in (2, 6, len(pkt) // 2, len(pkt) - 1):
        with wire.RawConn(port=bproxy.port) as c:
            c.send(pkt[:cut])
            ports.append(c.local_port)
            time.sleep(0.05)
    still_serves(bproxy, bystander)
    for port in ports:
        assert_logged(bproxy, port, mark)


def test_protocol_2_refused(bproxy, bystander):
    mark = bproxy.log_mark()
    with wire.RawConn(port=bproxy.port) as c:
        c.send(wire.startup_packet({"user": "alice", "database": "app"}, version=wire.PROTO_2_0))
        data = c.raw_response(timeout=10 * SLOW)
        assert c.eof
        assert data[:1] == b"E", data
        assert b"0A000" in data or b"unsupported frontend protocol" in data, data
        assert_logged(bproxy, c.local_port, mark)
    with wire.RawConn(port=bproxy.port) as c:
        c.send(wire.startup_packet({"user": "alice", "database": "app"}, version=(4 << 16)))
        data = c.raw_response(timeout=10 * SLOW)
        assert data[:1] == b"E" and (b"0A000" in data or b"unsupported frontend protocol" in data)
    still_serves(bproxy, bystander)


def test_protocol_3_1_negotiated(bproxy, bystander):
    """PostgreSQL answers a 3.x (x > 0) request with NegotiateProtocolVersion
    (newest minor it supports, options it did not recognise) and goes on."""
    with wire.RawConn(port=bproxy.port) as c:
        c.send_startup({"user": "alice", "database": "app", "_pq_.pgcutover_test": "1"},
                       version=wire.PROTO_3_1)
        first = c.read_msg()
        assert first.type == "v", f"expected NegotiateProtocolVersion, got {first!r}"
        newest, n = struct.unpack("!II", first.payload[:8])
        # The protocol documents the newest minor version (0); PostgreSQL 15
        # actually sends the full version number 3.0 (196608).  libpq takes both.
        assert newest in (0, wire.PROTO_3_0), newest
        names = [x for x in first.payload[8:].split(b"\0") if x]
        assert names == [b"_pq_.pgcutover_test"] and n == 1, first.payload
        second = c.read_msg()
        assert second.type == "R" and wire.auth_code(second.payload) == wire.AUTH_SASL, second
        c.authenticate("alice", PASSWORDS["alice"], first=second)
        c.finish_login()
        assert c.scalar("select 'v3.1 ok'") == "v3.1 ok"
    with wire.RawConn(port=bproxy.port) as c:
        c.send_startup({"user": "alice", "database": "app"}, version=wire.PROTO_3_1)
        first = c.read_msg()
        assert first.type == "v", first
        newest, n = struct.unpack("!II", first.payload[:8])
        assert newest in (0, wire.PROTO_3_0) and n == 0, first
        c.authenticate("alice", PASSWORDS["alice"])
        c.finish_login()
        assert c.scalar("select 1") == "1"
    still_serves(bproxy, bystander)


def test_startup_split_across_segments(bproxy, bystander):
    pkt = wire.startup_packet({"user": "alice", "database": "app",
                               "application_name": "split-startup"})
    with wire.RawConn(port=bproxy.port) as c:
        # 1, 2, 3 ... bytes at a time: the length word itself is split too.
        i, step = 0, 1
        while i < len(pkt):
            c.send(pkt[i:i + step])
            i += step
            step = min(step + 1, 7)
            time.sleep(0.02)
        c.authenticate("alice", PASSWORDS["alice"])
        c.finish_login()
        assert c.scalar("show application_name") == "split-startup"
    still_serves(bproxy, bystander)


@pytest.mark.parametrize("body", [
    b"user\0alice\0database\0app",          # last value lacks its terminator
    b"user\0alice\0database\0app\0",        # list lacks the final terminator
    b"user\0alice\0database",               # name without a value
])
def test_unterminated_startup_refused_before_auth(bproxy, bystander, body):
    pkt = struct.pack("!II", 8 + len(body), wire.PROTO_3_0) + body
    mark = bproxy.log_mark()
    with wire.RawConn(port=bproxy.port) as c:
        c.send(pkt)
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert msgs and msgs[0].type == "E", f"expected an ErrorResponse first: {msgs}"
        assert msgs[0].sqlstate == "08P01", msgs[0]
        assert not any(m.type == "R" for m in msgs), "authentication started"
        assert_logged(bproxy, c.local_port, mark)
    still_serves(bproxy, bystander)


def test_ssl_request_answered_n_then_login(bproxy, bystander):
    with wire.RawConn(port=bproxy.port) as c:
        c.send(struct.pack("!II", 8, wire.SSL_REQUEST))
        assert c.read_bytes(1) == b"N"
        c.login("alice", PASSWORDS["alice"])
        assert c.scalar("select 'after ssl N'") == "after ssl N"
    still_serves(bproxy, bystander)


def test_second_ssl_request_refused(bproxy, bystander):
    mark = bproxy.log_mark()
    with wire.RawConn(port=bproxy.port) as c:
        c.send(struct.pack("!II", 8, wire.SSL_REQUEST))
        assert c.read_bytes(1) == b"N"
        c.try_send(struct.pack("!II", 8, wire.SSL_REQUEST))
        data = c.raw_response(timeout=10 * SLOW)
        assert c.eof, "connection not closed after a second SSLRequest"
        # an ErrorResponse first, not a silent close
        assert data[:1] == b"E", f"second SSLRequest answered {data[:40]!r}"
        (length,) = struct.unpack("!I", data[1:5])
        fields = wire.parse_error_fields(data[5:1 + length])
        assert fields.get("C") == "08P01" and fields.get("S") == "FATAL", fields
        assert fields.get("M"), fields
        assert_logged(bproxy, c.local_port, mark)
    still_serves(bproxy, bystander)


def test_gssenc_request_answered_n(bproxy, bystander):
    with wire.RawConn(port=bproxy.port) as c:
        c.send(struct.pack("!II", 8, wire.GSSENC_REQUEST))
        assert c.read_bytes(1) == b"N"
        c.login("alice", PASSWORDS["alice"])
        assert c.scalar("select 'after gss N'") == "after gss N"
    # GSSENCRequest then SSLRequest, as libpq does with gssencmode=prefer
    with wire.RawConn(port=bproxy.port) as c:
        c.send(struct.pack("!II", 8, wire.GSSENC_REQUEST))
        assert c.read_bytes(1) == b"N"
        c.send(struct.pack("!II", 8, wire.SSL_REQUEST))
        assert c.read_bytes(1) == b"N"
        c.login("alice", PASSWORDS["alice"])
        assert c.scalar("select 1") == "1"
    still_serves(bproxy, bystander)


def test_cancel_request_with_unknown_key(bproxy, bystander):
    wire.cancel_request("127.0.0.1", bproxy.port, 12345, 67890)
    with wire.RawConn(port=bproxy.port) as c:   # a truncated CancelRequest
        c.try_send(struct.pack("!III", 16, wire.CANCEL_REQUEST, 1))
    still_serves(bproxy, bystander)


# -- after login ---------------------------------------------------------------------

def logged_in(p):
    c = wire.RawConn(port=p.port)
    c.login("alice", PASSWORDS["alice"])
    return c


@pytest.mark.parametrize("length", [0, 3])
def test_message_length_below_4(bproxy, bystander, length):
    mark = bproxy.log_mark()
    with logged_in(bproxy) as c:
        c.try_send(b"Q" + struct.pack("!I", length) + b"select 1\0")
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert_logged(bproxy, c.local_port, mark)
        errs = wire.errors(msgs)
        assert errs and errs[-1].sqlstate == "08P01", msgs
    still_serves(bproxy, bystander)


@pytest.mark.parametrize("length", [MAX_PACKET + 100, 100 * 1024 * 1024, 0x7fffffff])
def test_message_over_max_packet_size(bproxy, bystander, length):
    mark = bproxy.log_mark()
    with logged_in(bproxy) as c:
        c.try_send(b"Q" + struct.pack("!I", length) + b"select " + b"1" * 1000)
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert_logged(bproxy, c.local_port, mark)
        errs = wire.errors(msgs)
        assert errs and errs[-1].sqlstate == "08P01", msgs
    still_serves(bproxy, bystander)


def test_message_just_under_max_packet_size_passes(bproxy):
    sql = "select length('" + "y" * (MAX_PACKET - 200) + "')"
    with logged_in(bproxy) as c:
        assert c.scalar(sql) == str(MAX_PACKET - 200)


def test_unknown_message_type_after_login(bproxy, bystander):
    mark = bproxy.log_mark()
    with logged_in(bproxy) as c:
        c.try_send(wire.message(b"\x01", b"junk"))
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert_logged(bproxy, c.local_port, mark)
        assert wire.errors(msgs), msgs
    still_serves(bproxy, bystander)


def test_garbage_after_login(bproxy, bystander):
    mark = bproxy.log_mark()
    with logged_in(bproxy) as c:
        c.try_send(b"\xff" * 64)
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert_logged(bproxy, c.local_port, mark)
        assert wire.errors(msgs), msgs
    still_serves(bproxy, bystander)


def test_garbage_during_authentication(bproxy, bystander):
    mark = bproxy.log_mark()
    with wire.RawConn(port=bproxy.port) as c:
        c.send_startup({"user": "alice", "database": "app"})
        first = c.read_msg()
        assert first.type == "R"
        c.try_send(b"p" + struct.pack("!I", 3))
        assert c.wait_closed(10 * SLOW)
        assert_logged(bproxy, c.local_port, mark)
    with wire.RawConn(port=bproxy.port) as c:
        c.send_startup({"user": "alice", "database": "app"})
        c.read_msg()
        c.try_send(wire.message("Q", b"select 1\0"))   # a query instead of a password
        msgs = c.read_all_until_close(timeout=10 * SLOW)
        assert not any(m.type in "DZ" for m in msgs), msgs
    still_serves(bproxy, bystander)


def test_terminate_mid_stream(bproxy, bystander):
    """A client that sends a query and vanishes without reading the result."""
    for _ in range(3):
        c = logged_in(bproxy)
        c.send(wire.query_msg("select repeat('z', 1000) from generate_series(1, 200000)"))
        c.close()
    still_serves(bproxy, bystander)


# -- login timeout ----------------------------------------------------------------------

def test_client_login_timeout(proxy_factory):
    p = proxy_factory.new(settings={"client_login_timeout": "1s"})
    mark = p.log_mark()
    with wire.RawConn(port=p.port, timeout=15) as silent, \
            wire.RawConn(port=p.port, timeout=15) as stuck:
        t0 = time.monotonic()
        # `stuck` starts SCRAM and never answers
        stuck.send_startup({"user": "alice", "database": "app"})
        assert stuck.read_msg().type == "R"
        assert silent.wait_closed(10 * SLOW), "silent client not disconnected"
        silent_port = silent.local_port
        elapsed = time.monotonic() - t0
        assert 0.5 <= elapsed <= 8 * SLOW, elapsed
        assert stuck.wait_closed(10 * SLOW), "client stuck in authentication not disconnected"
    line = p.wait_log(rf":{silent_port}\b.*(timeout|timed out)", since=mark)
    assert line, f"no log line about the login timeout:\n{p.log_since(mark)}"
    # a normal login (well under 1s) still works
    with p.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_many_half_open_connections(bproxy, bystander):
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", bproxy.port), timeout=5)
            s.sendall(b"\0\0")
            socks.append(s)
        still_serves(bproxy, bystander)
    finally:
        for s in socks:
            s.close()
    still_serves(bproxy, bystander)

"""Bounded memory and backpressure (issue point 9): a slow client reading a
huge COPY TO STDOUT must not make pgcutover buffer the result; it stops
reading from the server instead (which then waits in ClientWrite)."""

import time

import pytest

import wire
from proxyutil import SLOW

ROWS = 300_000
WIDTH = 1000
COPY_SQL = f"copy (select repeat('x', {WIDTH}) from generate_series(1, {ROWS})) to stdout"


def server_wait_event(admin):
    row = admin.execute("select wait_event from pg_stat_activity where usename = 'tim' "
                        "and query like 'copy (select repeat%' and state = 'active'").fetchone()
    return row[0] if row else None


@pytest.mark.timeout(240)
def test_slow_reader_bounded_memory(proxy_factory, source):
    p = proxy_factory.new(settings={"auth_type": "trust"})
    with wire.RawConn(port=p.port, rcvbuf=32 * 1024, timeout=60) as c, \
            source.admin_connect() as admin:
        c.login("tim", "")
        assert c.scalar("select 1") == "1"
        base = p.rss_kb()
        c.send(wire.query_msg(COPY_SQL))
        peak = base
        got = 0
        blocked = None
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            c.sock.settimeout(10)
            data = c.sock.recv(16 * 1024)
            assert data, "proxy closed the connection"
            c.buf += data
            got += len(data)
            peak = max(peak, p.rss_kb())
            if blocked is None or blocked != "ClientWrite":
                blocked = server_wait_event(admin)
            time.sleep(0.1)
        # PostgreSQL could not write more: the proxy stopped reading from it.
        deadline = time.monotonic() + 5 * SLOW
        while blocked != "ClientWrite" and time.monotonic() < deadline:
            blocked = server_wait_event(admin)
            time.sleep(0.1)
        peak = max(peak, p.rss_kb())
        assert got < 8 * 1024 * 1024, "the slow reader was not slow"
        grown_mb = (peak - base) / 1024
        print(f"proxy RSS {base / 1024:.1f} MB -> peak {peak / 1024:.1f} MB; client read "
              f"{got / 1e6:.2f} MB; server wait_event {blocked}")
        assert grown_mb < 64, f"proxy RSS grew by {grown_mb:.0f} MB while the client read " \
                              f"{got / 1e6:.1f} MB of {ROWS * (WIDTH + 1) / 1e6:.0f} MB"
        assert blocked == "ClientWrite", f"server wait_event is {blocked!r}, not ClientWrite"

        # Now read everything, fast, and check it all arrived intact.
        payload = 0
        rows = 0
        while True:
            m = c.read_msg(timeout=60)
            if m.type == "d":
                payload += len(m.payload)
                rows += m.payload.count(b"\n")
            elif m.type == "C":
                assert m.payload.rstrip(b"\0") == f"COPY {ROWS}".encode()
            elif m.type == "E":
                raise AssertionError(m)
            elif m.type == "Z":
                break
        assert rows == ROWS
        assert payload == ROWS * (WIDTH + 1)
        assert c.scalar("select 'after copy'") == "after copy"

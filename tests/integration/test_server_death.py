"""A server connection that dies (issue point 10): its client gets an
ErrorResponse naming the database and is closed; other clients go on; new
clients work."""

import re
import time

import psycopg
import pytest

import wire
from pgutil import PASSWORDS
from proxyutil import SLOW

NAMES_DB = re.compile(r'\bapp\b')


def terminate(source, pid):
    with source.admin_connect() as admin:
        assert admin.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_idle_server_killed_raw(proxy, source):
    """Raw client: after its idle server is terminated, everything the proxy
    sends is ErrorResponses, one of them names the database, then it closes."""
    with wire.RawConn(port=proxy.port) as c:
        c.login("alice", PASSWORDS["alice"])
        pid = int(c.scalar("select pg_backend_pid()"))
        terminate(source, pid)
        msgs = c.read_all_until_close(timeout=15 * SLOW)
        errs = wire.errors(msgs)
        assert errs, f"no ErrorResponse before close: {msgs}"
        assert all(m.type in "EN" for m in msgs), msgs
        assert any(NAMES_DB.search(e.text) for e in errs), \
            f"no error names the database: {[e.fields for e in errs]}"
    with proxy.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_idle_server_killed_psycopg(proxy, source):
    other = proxy.connect(user="carol")
    try:
        conn = proxy.connect()
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        terminate(source, pid)
        time.sleep(0.3)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
        assert conn.closed or conn.broken
        conn.close()
        # other sessions go on, new clients work
        assert other.execute("select 'other ok'").fetchone()[0] == "other ok"
        with proxy.connect() as conn2:
            assert conn2.execute("select current_user").fetchone()[0] == "alice"
            assert conn2.execute("select pg_backend_pid()").fetchone()[0] != pid
    finally:
        other.close()


def test_server_killed_mid_query(proxy, source):
    """The server dies while the client waits for a result."""
    with wire.RawConn(port=proxy.port) as c, source.admin_connect() as admin:
        c.login("alice", PASSWORDS["alice"])
        pid = int(c.scalar("select pg_backend_pid()"))
        c.send(wire.query_msg("select pg_sleep(30)"))
        deadline = time.monotonic() + 10 * SLOW
        while not admin.execute("select 1 from pg_stat_activity where pid = %s and "
                                "query = 'select pg_sleep(30)'", (pid,)).fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        msgs = c.read_all_until_close(timeout=15 * SLOW)
        assert time.monotonic() - t0 < 10 * SLOW
        errs = wire.errors(msgs)
        assert errs, msgs
        assert any(NAMES_DB.search(e.text) for e in errs), [e.fields for e in errs]
        assert not any(m.type == "Z" for m in msgs)
    with proxy.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_many_servers_killed_others_go_on(proxy, source):
    victims = [proxy.connect() for _ in range(5)]
    survivors = [proxy.connect(user="carol") for _ in range(3)]
    try:
        pids = [v.execute("select pg_backend_pid()").fetchone()[0] for v in victims]
        with source.admin_connect() as admin:
            admin.execute("select pg_terminate_backend(pid) from unnest(%s::int[]) pid", (pids,))
        for s in survivors:
            assert s.execute("select 2").fetchone() == (2,)
        for v in victims:
            with pytest.raises(psycopg.OperationalError):
                v.execute("select 1")
        with proxy.connect() as conn:
            assert conn.execute("select 3").fetchone() == (3,)
    finally:
        for c in victims + survivors:
            c.close()

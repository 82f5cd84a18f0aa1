"""Signals (PRODUCT.md, issue points 2 and 11): SIGHUP reloads (a bad new
config is rejected and the old one kept), SIGTERM stops accepting and lets
clients finish within shutdown_timeout, SIGINT exits at once."""

import re
import signal
import socket
import threading
import time

import psycopg
import pytest

from proxyutil import SLOW


def server_port(p, user):
    with p.connect(user=user) as conn:
        return conn.execute("select inet_server_port()").fetchone()[0]


def test_sighup_reload_applies(proxy_factory, source, target):
    p = proxy_factory.new()
    assert server_port(p, "alice") == source.port
    # Re-point database app at the target cluster; a new pool (user tim)
    # must get its server connection from the target.
    p.databases["app"]["source"] = target.proxy_target()
    p.write_config()
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    line = p.wait_log(r"reload", since=mark, timeout=10)
    assert line, f"no log line about the reload:\n{p.log_since(mark)}"
    assert not re.search(r"reject|fail", line, re.I), line
    deadline = time.monotonic() + 5 * SLOW
    while server_port(p, "tim") != target.port:
        assert time.monotonic() < deadline, "new server connections still go to the old source"
        time.sleep(0.1)
    assert p.alive()


def test_sighup_bad_config_keeps_old(proxy_factory, source, target):
    p = proxy_factory.new()
    assert server_port(p, "alice") == source.port
    p.databases["app"]["source"] = target.proxy_target()
    bad = p.render_config(extra_lines="no_such_setting = 1\ndrain_timeout = soon")
    p.write_config(bad)
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    line = p.wait_log(r"reject|keep|kept|not reloaded|invalid|error|unknown", since=mark, timeout=10)
    assert line, f"no log line about the rejected config:\n{p.log_since(mark)}"
    time.sleep(0.5)
    assert p.alive(), "proxy exited on a bad config"
    # old config kept: a new pool still goes to the source
    assert server_port(p, "tim") == source.port
    with p.connect() as conn:
        conn.execute("select 1")
    # a later good reload still works
    p.write_config()
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    assert p.wait_log(r"reload", since=mark, timeout=10)
    deadline = time.monotonic() + 5 * SLOW
    while server_port(p, "carol") != target.port:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def connect_refused(p):
    try:
        with socket.create_connection(("127.0.0.1", p.port), timeout=2) as s:
            # accepted: a stopping proxy may still close it at once
            s.settimeout(2)
            s.sendall(b"\0\0\0\x08\x04\xd2\x16\x2f")   # SSLRequest
            return s.recv(1) == b""
    except OSError:
        return True


def test_sigterm_with_idle_client(proxy_factory):
    p = proxy_factory.new(settings={"shutdown_timeout": "2s"})
    conn = p.connect()
    try:
        conn.execute("select 1")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.2)
        if p.alive():
            assert connect_refused(p), "still accepting new clients after SIGTERM"
        rc = p.wait_exit(2 + 5 * SLOW)
        elapsed = time.monotonic() - t0
        assert rc is not None, "did not exit within shutdown_timeout (2s) + slack"
        assert rc == 0, f"exit status {rc}"
        assert elapsed < 2 + 5 * SLOW
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    finally:
        conn.close()


def test_sigterm_lets_running_query_finish(proxy_factory):
    """A query running at SIGTERM completes; once its client leaves, the proxy
    exits without waiting for the rest of shutdown_timeout."""
    p = proxy_factory.new(settings={"shutdown_timeout": "30s"})
    conn = p.connect()
    result = {}

    def run():
        try:
            result["v"] = conn.execute("select 'finished' from pg_sleep(1.5)").fetchone()[0]
        except Exception as e:  # reported below
            result["v"] = e

    try:
        th = threading.Thread(target=run)
        th.start()
        time.sleep(0.5)
        p.signal(signal.SIGTERM)
        th.join(15)
        assert result.get("v") == "finished", result
    finally:
        conn.close()
    rc = p.wait_exit(5 * SLOW)
    assert rc is not None, "still running 5s after its last client left"
    assert rc == 0, rc


def test_sigint_exits_at_once(proxy_factory):
    p = proxy_factory.new(settings={"shutdown_timeout": "60s"})
    p.expect_exit = True   # exit status after SIGINT is not part of the contract
    conn = p.connect()
    try:
        conn.execute("select 1")
        t0 = time.monotonic()
        p.signal(signal.SIGINT)
        rc = p.wait_exit(3 * SLOW)
        assert rc is not None, "still running 3s after SIGINT"
        assert time.monotonic() - t0 < 3 * SLOW
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    finally:
        conn.close()

"""Listeners (issue point 3): the optional unix socket, IPv4 and IPv6, comma
lists and *."""

import os
import socket

import pytest

import wire
from pgutil import PASSWORDS


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")


def test_unix_socket(proxy_factory, tmp_path):
    sockdir = tmp_path / "sock"
    sockdir.mkdir()
    p = proxy_factory.new(settings={"unix_socket_dir": str(sockdir)})
    path = os.path.join(str(sockdir), f".s.PGSQL.{p.port}")
    assert os.path.exists(path), os.listdir(sockdir)
    r = p.psql("select current_user, inet_client_addr() is not null", host=str(sockdir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "alice|t"   # the proxy reaches the server over TCP
    with p.connect(host=str(sockdir), user="carol") as conn:
        assert conn.execute("select current_user").fetchone()[0] == "carol"
    with wire.RawConn(unix_path=path) as c:
        c.login("alice", PASSWORDS["alice"])
        assert c.scalar("select 1") == "1"
    # TCP still works alongside
    assert p.psql("select 2").stdout.strip() == "2"


@needs_ipv6
def test_ipv4_and_ipv6_list(proxy_factory):
    p = proxy_factory.new(settings={"listen_addr": "127.0.0.1,::1"})
    for host in ("127.0.0.1", "::1"):
        with p.connect(host=host) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    r = p.psql("select 'v6'", host="::1")
    assert r.returncode == 0 and r.stdout.strip() == "v6", r.stderr


@needs_ipv6
def test_ipv6_only(proxy_factory):
    p = proxy_factory.new(settings={"listen_addr": "::1"})
    with p.connect(host="::1") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()


def test_listen_all(proxy_factory):
    p = proxy_factory.new(settings={"listen_addr": "*"})
    hosts = ["127.0.0.1"] + (["::1"] if ipv6_loopback() else [])
    for host in hosts:
        with p.connect(host=host) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

"""Client authentication against auth_file and server login with its secrets.

pg_hba.conf on the servers requires scram-sha-256 for alice and carol, md5 for
bob, cleartext ("password") for pat and trusts tim, so every server-side
login method is really exercised.
userlist.txt holds alice in plaintext, bob as an md5 secret and carol as her
real SCRAM secret (so pgcutover must reuse the client's SCRAM proof).
"""

import psycopg
import pytest

import wire
from pgutil import PASSWORDS

# Which users can log in through a proxy with each client-facing auth_type.
# (An md5 secret cannot answer SCRAM, and a SCRAM secret alone cannot log in
# to the server unless the client itself did SCRAM, as with PgBouncer.)
CASES = {
    "scram-sha-256": ["alice", "carol", "tim", "pat"],
    "md5": ["alice", "bob", "tim", "pat"],
    "trust": ["alice", "bob", "tim", "pat"],
}
EXPECTED_REQUEST = {
    "scram-sha-256": wire.AUTH_SASL,
    "md5": wire.AUTH_MD5,
    "trust": wire.AUTH_OK,
}


@pytest.fixture(scope="module")
def auth_proxies(clusters, proxy_bin):
    from proxyutil import ProxyFactory
    factory = ProxyFactory(clusters)
    proxies = {t: factory.new(settings={"auth_type": t}, name=f"auth-{t}") for t in CASES}
    yield proxies
    problems = factory.close_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


PARAMS = [(t, u) for t, users in CASES.items() for u in users]


@pytest.mark.parametrize("auth_type,user", PARAMS)
def test_psql_login(auth_proxies, auth_type, user):
    p = auth_proxies[auth_type]
    r = p.psql("select current_user, current_database(), 6*7", user=user)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{user}|app|42"


@pytest.mark.parametrize("auth_type,user", PARAMS)
def test_raw_login_method(auth_proxies, auth_type, user):
    """The proxy asks the client for exactly the configured method, and a
    login with it reaches a working session."""
    p = auth_proxies[auth_type]
    with wire.RawConn(port=p.port) as c:
        c.send_startup({"user": user, "database": "app"})
        first = c.read_msg()
        assert first.type == "R", first
        assert wire.auth_code(first.payload) == EXPECTED_REQUEST[auth_type], first
        if auth_type == "scram-sha-256":
            mechs = first.payload[4:].split(b"\0")
            assert b"SCRAM-SHA-256" in mechs
        c.authenticate(user, PASSWORDS[user], first=first)   # verifies the server signature too
        c.finish_login()
        assert c.key is not None, "no BackendKeyData"
        assert "server_version" in c.params and "client_encoding" in c.params
        assert c.scalar("select current_user") == user


@pytest.mark.parametrize("auth_type", ["scram-sha-256", "md5"])
def test_wrong_password_psql(auth_proxies, auth_type):
    p = auth_proxies[auth_type]
    r = p.psql("select 1", user="alice", password="not-alice-pw")
    assert r.returncode != 0
    assert 'password authentication failed for user "alice"' in r.stderr, r.stderr
    # The proxy goes on.
    assert p.psql("select 1", user="alice").stdout.strip() == "1"


@pytest.mark.parametrize("auth_type,user", [
    ("scram-sha-256", "alice"), ("scram-sha-256", "carol"), ("md5", "alice"), ("md5", "bob"),
])
def test_wrong_password_raw(auth_proxies, auth_type, user):
    """28P01, severity FATAL, then the connection is closed."""
    p = auth_proxies[auth_type]
    msgs, closed = wire.login_attempt(p.port, {"user": user, "database": "app"},
                                      password="wrong-password")
    errs = wire.errors(msgs)
    assert errs, f"no ErrorResponse: {msgs}"
    assert errs[-1].sqlstate == "28P01", errs[-1]
    assert errs[-1].fields.get("S") == "FATAL", errs[-1]
    assert f'password authentication failed for user "{user}"' in errs[-1].fields["M"]
    assert not any(m.type == "Z" for m in msgs)
    assert closed, "connection not closed after failed authentication"
    with p.connect(user=user) as conn:
        assert conn.execute("select current_user").fetchone()[0] == user


@pytest.mark.parametrize("auth_type", ["scram-sha-256", "md5"])
def test_unknown_user(auth_proxies, auth_type):
    """A user missing from auth_file is refused (as PostgreSQL does) and closed."""
    p = auth_proxies[auth_type]
    msgs, closed = wire.login_attempt(p.port, {"user": "mallory", "database": "app"},
                                      password="whatever")
    errs = wire.errors(msgs)
    assert errs, f"no ErrorResponse: {msgs}"
    assert errs[-1].sqlstate in ("28P01", "28000"), errs[-1]
    assert not any(m.type == "Z" for m in msgs)
    assert closed
    with p.connect() as conn:
        conn.execute("select 1")


def test_psycopg_all_users_default_proxy(proxy):
    """libpq (psycopg) logs in through the default scram proxy as each user."""
    for user in CASES["scram-sha-256"]:
        with proxy.connect(user=user) as conn:
            assert conn.execute("select current_user").fetchone()[0] == user
            assert conn.info.parameter_status("server_version").startswith("15")


def test_server_refuses_login(proxy):
    """A user pgcutover accepts (it is in auth_file) but the server refuses:
    the server's error reaches the client, the connection closes, the proxy
    goes on.  ("admin" has no role on the servers.)"""
    msgs, closed = wire.login_attempt(proxy.port, {"user": "admin", "database": "app"},
                                      password="admin_pw")
    errs = wire.errors(msgs)
    assert errs, msgs
    assert errs[-1].sqlstate in ("28P01", "28000"), errs[-1]
    assert errs[-1].fields["S"] == "FATAL"
    assert not any(m.type == "Z" for m in msgs)
    assert closed
    with pytest.raises(psycopg.OperationalError, match='"admin"'):
        proxy.connect(user="admin", password="admin_pw")
    with proxy.connect() as conn:
        conn.execute("select 1")


def test_database_section_user_password(proxy_factory, clusters):
    """A database section with user/password: clients log in to pgcutover as
    themselves, the server session belongs to the section's user."""
    p = proxy_factory.new(databases={"app": {
        "source": clusters.source.proxy_target(), "target": clusters.target.proxy_target(),
        "lag_method": "none", "user": "bob", "password": "bob_pw"}})
    for user in ("alice", "carol"):
        with p.connect(user=user) as conn:
            assert conn.execute("select current_user, session_user").fetchone() == ("bob", "bob")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        p.connect(user="alice", password="wrong")

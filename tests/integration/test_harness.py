"""The harness itself: every login path works directly against both clusters.

If one of these fails, the failure of a proxy test using the same path is a
harness problem, not a proxy problem.
"""

import psycopg
import pytest

import wire
from pgutil import PASSWORDS


@pytest.mark.parametrize("side", ["source", "target"])
@pytest.mark.parametrize("user,method", [
    ("alice", "SCRAM"), ("bob", "MD5"), ("carol", "SCRAM"), ("tim", "OK"), ("pat", "CLEARTEXT"),
    ("pgcutover", "SCRAM"),
])
def test_direct_login(clusters, side, user, method):
    c = getattr(clusters, side)
    with psycopg.connect(c.conninfo(user=user)) as conn:
        assert conn.execute("select current_user").fetchone()[0] == user
        assert conn.execute("select current_database()").fetchone()[0] == "app"
    # The server really asks for the method pg_hba.conf names.
    with wire.RawConn(port=c.port) as r:
        r.send_startup({"user": user, "database": "app"})
        first = r.read_msg()
        code = wire.auth_code(first.payload)
        assert code == {"SCRAM": wire.AUTH_SASL, "MD5": wire.AUTH_MD5, "OK": wire.AUTH_OK,
                        "CLEARTEXT": wire.AUTH_CLEARTEXT}[method]
        r.authenticate(user, PASSWORDS[user], first=first)
        r.finish_login()
        assert r.scalar("select current_user") == user


def test_direct_wrong_password(clusters):
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "alice"'):
        psycopg.connect(clusters.source.conninfo(user="alice", password="nope"))


def test_carol_same_secret_both_sides(clusters):
    secrets = []
    for c in (clusters.source, clusters.target):
        with c.admin_connect() as conn:
            secrets.append(conn.execute(
                "select rolpassword from pg_authid where rolname = 'carol'").fetchone()[0])
    assert secrets[0] == secrets[1] == clusters.carol_secret
    with open(clusters.userlist) as f:
        assert f'"carol" "{clusters.carol_secret}"' in f.read()

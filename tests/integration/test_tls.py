"""TLS on both sides of pgcutover.

A throwaway PKI made with the openssl command (a test CA, the proxy's
certificate for localhost and 127.0.0.1, client certificates for alice, bob
and tim, a second "wrong" CA, and backend certificates), then:

- clients: psql and psycopg with sslmode=require and verify-full through the
  proxy (SHOW CLIENTS says TLS), client_tls_sslmode=require refusing
  plaintext, plaintext bytes after SSLRequest refused (CVE-2021-23214), a
  second SSLRequest inside TLS refused, client certificates with verify-full,
  SCRAM-SHA-256-PLUS with channel_binding=require, the admin console over TLS
  and its password even with auth_type=trust, RELOAD re-reading the
  certificate, and --check catching unreadable or mismatched files;
- servers: a dedicated PostgreSQL with ssl=on and only `hostssl` lines in
  pg_hba.conf, reached under every server_tls_sslmode (pg_stat_ssl confirms),
  a wrong CA failing verify-ca, a certificate for another host name failing
  verify-full but passing verify-ca, a per-database sslmode overriding
  server_tls_sslmode, a client certificate to the backend (cert auth), cancel
  requests, and the control connections of SWITCH DRY RUN.
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import psycopg
import pytest

import wire
from pgutil import PASSWORDS, Cluster, _chown_pg, pg_bin
from proxyutil import SLOW, pgcutover_bin
from replication import ADMIN_PASSWORD, admin, admin_connect

# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{p.stdout}")
    return p.stdout


class PKI:
    """Certificates in one directory; each name.crt / name.key pair."""

    def __init__(self, path):
        self.dir = path
        self.serial = 1000

    def path(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name, cn):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "3",
                 "-subj", f"/CN={cn}", cwd=self.dir)
        os.chmod(self.path(f"{name}.key"), 0o600)

    def cert(self, name, cn, ca="ca", san=None, out=None):
        """A certificate signed by `ca`, with a subjectAltName when given.
        out: write name.crt/name.key under another base name (for swaps)."""
        base = out or name
        self.serial += 1
        args = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{base}.key", "-out", f"{base}.csr", "-subj", f"/CN={cn}"]
        if san:
            args += ["-addext", f"subjectAltName={san}"]
        _openssl(*args, cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{base}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                 "-set_serial", str(self.serial), "-copy_extensions", "copy", "-days", "3",
                 "-out", f"{base}.crt", cwd=self.dir)
        os.unlink(self.path(f"{base}.csr"))
        # libpq refuses a client key that others can read
        os.chmod(self.path(f"{base}.key"), 0o600)
        return self.path(f"{base}.crt"), self.path(f"{base}.key")


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="pgcutover-pki-", dir="/tmp")
    os.chmod(d, 0o755)
    k = PKI(d)
    k.ca("ca", "pgcutover test CA")
    k.ca("wrongca", "some other CA")
    k.cert("proxy", "localhost", san="DNS:localhost,IP:127.0.0.1")
    k.cert("alice", "alice")
    k.cert("bob", "bob")
    k.cert("tim", "tim")
    k.cert("alice_wrongca", "alice", ca="wrongca")
    # the backend: valid for 127.0.0.1, and one valid only for another name
    k.cert("db", "127.0.0.1", san="IP:127.0.0.1,DNS:localhost")
    k.cert("db_other_name", "db.example", san="DNS:db.example")
    yield k
    if not os.environ.get("PGCUTOVER_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


def client_tls(pki, mode="prefer", **extra):
    s = {"client_tls_sslmode": mode,
         "client_tls_cert_file": pki.path("proxy.crt"),
         "client_tls_key_file": pki.path("proxy.key")}
    s.update(extra)
    return s


def psql_env():
    e = dict(os.environ)
    for k in ("PGSERVICE", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY",
              "PGCHANNELBINDING", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        e.pop(k, None)
    e["PGCONNECT_TIMEOUT"] = "10"
    return e


def psql(conninfo, sql, password=None, timeout=60):
    """psql with a full conninfo string; returns the CompletedProcess."""
    e = psql_env()
    if password is not None:
        e["PGPASSWORD"] = password
    return subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-d", conninfo, "-c", sql], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def ci(**kw):
    return " ".join(f"{k}='{v}'" for k, v in kw.items() if v is not None)


def ssl_request(sock):
    sock.sendall(struct.pack("!II", 8, wire.SSL_REQUEST))


def tls_raw(port, cafile=None, cert=None, host="127.0.0.1"):
    """A wire.RawConn that did SSLRequest and the TLS handshake (verifying the
    proxy against cafile when given)."""
    c = wire.RawConn(port=port, host=host)
    ssl_request(c.sock)
    assert c.read_bytes(1) == b"S"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    c.sock = ctx.wrap_socket(c.sock, server_hostname=None if cafile is None else host)
    return c


def peer_cn(c):
    cert = c.sock.getpeercert()
    for rdn in cert["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def show(port, cmd):
    return admin(port, cmd)


# ---------------------------------------------------------------------------
# client-facing TLS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_proxy(clusters, proxy_bin, pki):
    """client_tls_sslmode=prefer in front of the ordinary clusters."""
    from proxyutil import ProxyFactory
    factory = ProxyFactory(clusters)
    p = factory.new(settings=client_tls(pki, "prefer"), name="tls-prefer")
    yield p
    problems = factory.close_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_psql_sslmode_require(tls_proxy):
    r = psql(tls_proxy.conninfo(sslmode="require"),
             "select current_user, 6*7")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "alice|42"
    # plaintext still works with prefer
    r = psql(tls_proxy.conninfo(sslmode="disable"), "select 1")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_psql_verify_full(tls_proxy, pki, host):
    r = psql(tls_proxy.conninfo(host=host, sslmode="verify-full",
                                sslrootcert=pki.path("ca.crt")), "select 'ok'")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_verify_full_wrong_ca_refused_by_client(tls_proxy, pki):
    r = psql(tls_proxy.conninfo(sslmode="verify-full", sslrootcert=pki.path("wrongca.crt")),
             "select 1")
    assert r.returncode != 0
    assert "certificate verify failed" in r.stderr, r.stderr


def test_psycopg_and_show_clients(tls_proxy):
    with tls_proxy.connect(sslmode="require") as c, tls_proxy.connect(sslmode="disable") as plain:
        assert c.pgconn.ssl_in_use
        assert not plain.pgconn.ssl_in_use
        assert c.execute("select 6*7").fetchone()[0] == 42
        rows = show(tls_proxy.admin_port, "SHOW CLIENTS")
        alice = sorted((r["tls"] or "") for r in rows if r["user"] == "alice")
        assert len(alice) == 2 and alice[0] == "" and alice[1].startswith("TLSv1."), rows


def test_admin_console_over_tls(tls_proxy, pki):
    with psycopg.connect(host="127.0.0.1", port=tls_proxy.admin_port, user="admin",
                         password=ADMIN_PASSWORD, dbname="pgcutover", autocommit=True,
                         sslmode="verify-full", sslrootcert=pki.path("ca.crt"),
                         cursor_factory=psycopg.ClientCursor, connect_timeout=10) as a:
        assert a.pgconn.ssl_in_use
        rows = a.execute("SHOW CLIENTS").fetchall()
        cols = [d.name for d in a.execute("SHOW CLIENTS").description]
        me = [dict(zip(cols, r)) for r in rows if r[cols.index("type")] == "admin"]
        assert me and me[0]["tls"].startswith("TLSv1."), rows


def test_plaintext_login_offers_only_plain_scram(tls_proxy):
    """SCRAM-SHA-256-PLUS is offered on TLS connections only."""
    with wire.RawConn(port=tls_proxy.port) as c:
        c.send_startup({"user": "alice", "database": "app"})
        m = c.read_msg()
        assert m.type == "R" and wire.auth_code(m.payload) == wire.AUTH_SASL
        mechs = [x for x in m.payload[4:].split(b"\0") if x]
        assert mechs == [b"SCRAM-SHA-256"]
    c = tls_raw(tls_proxy.port)
    with c:
        c.send_startup({"user": "alice", "database": "app"})
        m = c.read_msg()
        mechs = [x for x in m.payload[4:].split(b"\0") if x]
        assert mechs == [b"SCRAM-SHA-256-PLUS", b"SCRAM-SHA-256"]
        # a login over TLS with plain SCRAM still works (the raw client says "n")
        c.authenticate("alice", PASSWORDS["alice"], first=m)
        c.finish_login()
        assert c.scalar("select 41+1") == "42"


@pytest.mark.parametrize("user", ["alice", "carol"])
def test_scram_channel_binding_require(tls_proxy, user):
    """psql with channel_binding=require: SCRAM-SHA-256-PLUS with
    tls-server-end-point; carol's SCRAM secret still logs in to the server
    with the ClientKey from her PLUS proof."""
    r = psql(tls_proxy.conninfo(user=user, sslmode="require", channel_binding="require"),
             "select current_user")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == user
    r = psql(tls_proxy.conninfo(user=user, sslmode="require", channel_binding="prefer"),
             "select current_user")
    assert r.returncode == 0, r.stderr
    # wrong password with channel binding: the usual error
    r = psql(tls_proxy.conninfo(user=user, password="nope", sslmode="require",
                                channel_binding="require"), "select 1")
    assert r.returncode != 0
    assert "password authentication failed" in r.stderr, r.stderr


def test_channel_binding_require_without_tls_fails_cleanly(tls_proxy):
    r = psql(tls_proxy.conninfo(sslmode="disable", channel_binding="require"), "select 1")
    assert r.returncode != 0
    assert "channel binding" in r.stderr, r.stderr
    assert tls_proxy.alive()


def test_bytes_after_sslrequest_refused(tls_proxy):
    """Plaintext sent after SSLRequest and before the handshake: 08P01,
    never taken for part of the TLS session (CVE-2021-23214)."""
    with wire.RawConn(port=tls_proxy.port) as c:
        c.send(struct.pack("!II", 8, wire.SSL_REQUEST) +
               wire.startup_packet({"user": "alice", "database": "app"}))
        msgs = c.read_all_until_close()
        assert [m.type for m in msgs] == ["E"], msgs
        assert msgs[0].sqlstate == "08P01"
        assert "unencrypted data after SSL request" in msgs[0].text
    assert psql(tls_proxy.conninfo(sslmode="require"), "select 1").returncode == 0


def test_second_sslrequest_inside_tls_refused(tls_proxy):
    c = tls_raw(tls_proxy.port)
    with c:
        ssl_request(c.sock)
        msgs = c.read_all_until_close()
        assert msgs and msgs[0].type == "E" and msgs[0].sqlstate == "08P01", msgs
        assert "duplicate SSL request" in msgs[0].text


def test_garbage_instead_of_client_hello(tls_proxy):
    """A client that says SSLRequest and then sends no TLS is closed; the log says why."""
    mark = tls_proxy.log_mark()
    with wire.RawConn(port=tls_proxy.port) as c:
        ssl_request(c.sock)
        assert c.read_bytes(1) == b"S"
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.wait_closed(10)
    assert tls_proxy.wait_log(r"TLS handshake or read failed", since=mark)
    assert psql(tls_proxy.conninfo(sslmode="require"), "select 1").returncode == 0


def test_stalled_handshake_closed_at_login_timeout(proxy_factory, pki):
    """'S', then nothing: client_login_timeout covers the handshake too."""
    p = proxy_factory.new(settings=client_tls(pki, "require", client_login_timeout="1s"))
    with wire.RawConn(port=p.port) as c:
        ssl_request(c.sock)
        assert c.read_bytes(1) == b"S"
        t0 = time.monotonic()
        # closed, and nothing in plaintext after 'S': the FATAL cannot go in clear
        assert c.raw_response(timeout=10 * SLOW) == b""
        assert c.eof
        assert time.monotonic() - t0 < 5 * SLOW
    r = psql(p.conninfo(sslmode="require"), "select 1")
    assert r.returncode == 0, r.stderr


def test_large_results_over_tls(tls_proxy):
    """Many records each way: COPY out and in, a wide row."""
    with tls_proxy.connect(sslmode="require") as c:
        n = c.execute("select count(*), sum(length(x)) from "
                      "(select repeat(md5(g::text), 100) x from generate_series(1, 20000) g) s"
                      ).fetchone()
        assert n == (20000, 20000 * 3200)
        big = "y" * (3 * 1024 * 1024)
        assert c.execute("select length(%s::text)", (big,)).fetchone()[0] == len(big)
        c.execute("create temp table t (a int, b text)")
        with c.cursor().copy("copy t from stdin") as cp:
            for i in range(50000):
                cp.write_row((i, "z" * 50))
        assert c.execute("select count(*) from t").fetchone()[0] == 50000


# -- client_tls_sslmode=require -------------------------------------------------------


def test_require_refuses_plaintext(proxy_factory, pki):
    p = proxy_factory.new(settings=client_tls(pki, "require"))
    with p.connect(sslmode="require") as keep:
        r = psql(p.conninfo(sslmode="disable"), "select 1")
        assert r.returncode != 0
        assert "TLS is required" in r.stderr, r.stderr
        msgs, closed = wire.login_attempt(p.port, {"user": "alice", "database": "app"},
                                          password=PASSWORDS["alice"])
        errs = wire.errors(msgs)
        assert closed and errs and errs[0].sqlstate == "28000", msgs
        assert "TLS is required" in errs[0].text
        # sessions over TLS are unaffected
        assert keep.execute("select 1").fetchone()[0] == 1
        r = psql(p.conninfo(sslmode="require"), "select 2")
        assert r.returncode == 0 and r.stdout.strip() == "2", r.stderr
        # the admin console follows the same setting
        with pytest.raises(psycopg.OperationalError, match="TLS is required"):
            psycopg.connect(host="127.0.0.1", port=p.admin_port, user="admin",
                            password=ADMIN_PASSWORD, dbname="pgcutover", sslmode="disable",
                            connect_timeout=10).close()
        with psycopg.connect(host="127.0.0.1", port=p.admin_port, user="admin",
                             password=ADMIN_PASSWORD, dbname="pgcutover", sslmode="require",
                             autocommit=True, cursor_factory=psycopg.ClientCursor,
                             connect_timeout=10) as a:
            assert a.execute("SHOW VERSION").fetchone()[0]


def test_disable_answers_n(proxy_factory):
    p = proxy_factory.new()
    with wire.RawConn(port=p.port) as c:
        ssl_request(c.sock)
        assert c.read_bytes(1) == b"N"
    r = psql(p.conninfo(sslmode="require"), "select 1")
    assert r.returncode != 0
    assert "does not support SSL" in r.stderr, r.stderr


# -- client certificates ---------------------------------------------------------------


def test_client_certificate_verify_full(proxy_factory, pki):
    """auth_type=trust with verify-full: the certificate is the login."""
    p = proxy_factory.new(settings=client_tls(pki, "verify-full", auth_type="trust",
                                              client_tls_ca_file=pki.path("ca.crt")))
    base = dict(host="127.0.0.1", port=p.port, dbname="app", sslmode="verify-full",
                sslrootcert=pki.path("ca.crt"))
    ok = psql(ci(user="alice", sslcert=pki.path("alice.crt"), sslkey=pki.path("alice.key"),
                 **base), "select current_user")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "alice"

    mark = p.log_mark()
    no_cert = psql(ci(user="alice", sslcert="/nonexistent", sslkey="/nonexistent", **base),
                   "select 1")
    assert no_cert.returncode != 0
    assert p.wait_log(r"TLS handshake or read failed: peer did not return a certificate",
                      since=mark), p.log_since(mark)

    other = psql(ci(user="alice", sslcert=pki.path("bob.crt"), sslkey=pki.path("bob.key"),
                    **base), "select 1")
    assert other.returncode != 0
    assert 'certificate authentication failed for user "alice"' in other.stderr, other.stderr
    # bob's certificate does log in as bob
    bob = psql(ci(user="bob", sslcert=pki.path("bob.crt"), sslkey=pki.path("bob.key"), **base),
               "select current_user")
    assert bob.returncode == 0 and bob.stdout.strip() == "bob", bob.stderr

    mark = p.log_mark()
    wrong = psql(ci(user="alice", sslcert=pki.path("alice_wrongca.crt"),
                    sslkey=pki.path("alice_wrongca.key"), **base), "select 1")
    assert wrong.returncode != 0
    assert p.wait_log(r"TLS handshake or read failed: certificate verify failed", since=mark)

    # plaintext is refused too (verify-full implies require)
    plain = psql(ci(user="alice", host="127.0.0.1", port=p.port, dbname="app",
                    sslmode="disable"), "select 1")
    assert plain.returncode != 0 and "TLS is required" in plain.stderr


def test_client_certificate_plus_password(proxy_factory, pki):
    """verify-full with scram-sha-256: the certificate and the password."""
    p = proxy_factory.new(settings=client_tls(pki, "verify-full",
                                              client_tls_ca_file=pki.path("ca.crt")))
    base = dict(host="127.0.0.1", port=p.port, dbname="app", sslmode="require", user="alice",
                sslcert=pki.path("alice.crt"), sslkey=pki.path("alice.key"))
    r = psql(ci(password=PASSWORDS["alice"], **base), "select 1")
    assert r.returncode == 0, r.stderr
    r = psql(ci(password="wrong", **base), "select 1")
    assert r.returncode != 0 and "password authentication failed" in r.stderr, r.stderr


def test_verify_ca_accepts_any_cn(proxy_factory, pki):
    p = proxy_factory.new(settings=client_tls(pki, "verify-ca", auth_type="trust",
                                              client_tls_ca_file=pki.path("ca.crt")))
    r = psql(ci(host="127.0.0.1", port=p.port, dbname="app", user="alice", sslmode="require",
                sslcert=pki.path("bob.crt"), sslkey=pki.path("bob.key")), "select current_user")
    assert r.returncode == 0 and r.stdout.strip() == "alice", r.stderr


# -- admin console password ------------------------------------------------------------


def test_admin_needs_password_with_trust(proxy_factory):
    """auth_type=trust lets database clients in without a password, never the
    admin console (TCP): it checks the auth_file password."""
    p = proxy_factory.new(settings={"auth_type": "trust"})
    r = psql(p.conninfo(password="whatever"), "select current_user")
    assert r.returncode == 0, r.stderr
    msgs, closed = wire.login_attempt(p.admin_port, {"user": "admin", "database": "pgcutover"},
                                      password="wrong")
    errs = wire.errors(msgs)
    assert closed and errs and errs[0].sqlstate == "28P01", msgs
    assert msgs[0].type == "R" and wire.auth_code(msgs[0].payload) == wire.AUTH_SASL
    assert admin(p.admin_port, "SHOW VERSION")[0]["version"]
    # a user that is not in admin_users cannot get in even with its right password
    msgs, closed = wire.login_attempt(p.admin_port, {"user": "alice", "database": "pgcutover"},
                                      password=PASSWORDS["alice"])
    errs = wire.errors(msgs)
    assert closed and errs and errs[0].sqlstate == "28000", msgs


# -- RELOAD and --check -------------------------------------------------------------


def test_reload_rereads_certificate(proxy_factory, pki):
    cert, key = pki.cert("reload", "pgcutover-one", san="IP:127.0.0.1")
    p = proxy_factory.new(settings=client_tls(pki, "require", client_tls_cert_file=cert,
                                              client_tls_key_file=key))
    c1 = tls_raw(p.port, cafile=pki.path("ca.crt"))
    with c1:
        assert peer_cn(c1) == "pgcutover-one"
        c1.login("alice", PASSWORDS["alice"])
        # a new certificate in the same files, RELOAD
        pki.cert("reload", "pgcutover-two", san="IP:127.0.0.1")
        assert admin(p.admin_port, "RELOAD").status == "RELOAD"
        c2 = tls_raw(p.port, cafile=pki.path("ca.crt"))
        with c2:
            assert peer_cn(c2) == "pgcutover-two"
        # the session made before the reload goes on
        assert c1.scalar("select 'still here'") == "still here"

    # a broken key: the reload is refused with a log line, the old certificate stays
    mark = p.log_mark()
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with admin_connect(p.admin_port) as a:
        with pytest.raises(psycopg.Error, match="configuration reload failed"):
            a.execute("RELOAD")
    assert p.wait_log(r"could not load client_tls_key_file", since=mark), p.log_since(mark)
    c3 = tls_raw(p.port, cafile=pki.path("ca.crt"))
    with c3:
        assert peer_cn(c3) == "pgcutover-two"
    # a key that does not match the certificate is refused as well
    shutil.copy(pki.path("alice.key"), key)
    mark = p.log_mark()
    with admin_connect(p.admin_port) as a:
        with pytest.raises(psycopg.Error, match="configuration reload failed"):
            a.execute("RELOAD")
    assert p.wait_log(r"does not match client_tls_cert_file", since=mark)


def test_check_reports_tls_file_errors(proxy_factory, pki, tmp_path):
    p = proxy_factory.new(settings=client_tls(pki, "require",
                                              client_tls_cert_file=str(tmp_path / "missing.crt")),
                          start=False)
    r = subprocess.run([pgcutover_bin(), "--check", p.ini], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "could not read client_tls_cert_file" in r.stderr, r.stderr
    assert "No such file or directory" in r.stderr
    assert f"{p.ini}:" in r.stderr  # names the file (and line)

    p2 = proxy_factory.new(settings=client_tls(pki, "require",
                                               client_tls_key_file=pki.path("bob.key")),
                           start=False)
    r = subprocess.run([pgcutover_bin(), "--check", p2.ini], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1
    assert "does not match client_tls_cert_file" in r.stderr, r.stderr

    p3 = proxy_factory.new(settings=client_tls(pki, "verify-ca"), start=False)
    r = subprocess.run([pgcutover_bin(), "--check", p3.ini], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 1 and "needs client_tls_ca_file" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# server-facing TLS
# ---------------------------------------------------------------------------


class TLSCluster(Cluster):
    """A cluster with ssl=on that accepts only TLS over TCP (hostssl), with
    tim logging in by client certificate."""

    def __init__(self, pki):
        super().__init__("tls")
        self.pki = pki

    def install_cert(self, name):
        for ext in ("crt", "key"):
            dst = os.path.join(self.datadir, f"server.{ext}")
            shutil.copy(self.pki.path(f"{name}.{ext}"), dst)
            os.chmod(dst, 0o600)
            _chown_pg(dst)

    def init(self):
        super().init()
        self.install_cert("db")
        ca = os.path.join(self.datadir, "root.crt")
        shutil.copy(self.pki.path("ca.crt"), ca)
        _chown_pg(ca)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "ssl_ca_file = 'root.crt'\n")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write("""
local    all  postgres                   trust
local    all  all                        scram-sha-256
hostssl  all  tim       127.0.0.1/32     cert
hostssl  all  all       127.0.0.1/32     scram-sha-256
""")

    def reload(self):
        with self.admin_connect() as c:
            c.execute("select pg_reload_conf()")


def backend_cn(port, timeout=10):
    """The CN of the certificate the backend shows right now (SSLRequest by hand)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        ssl_request(s)
        assert s.recv(1) == b"S"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                         input=der, stdout=subprocess.PIPE, timeout=10).stdout.decode()
    return out.strip().split("CN = ")[-1].split("CN=")[-1]


@pytest.fixture(scope="module")
def tls_cluster(pki, clusters):
    c = TLSCluster(pki)
    try:
        c.init()
        c.start()
        c.setup_roles()
        yield c
    finally:
        c.cleanup()


def tls_db(cluster, **extra):
    conninfo = f"host=127.0.0.1 port={cluster.port} dbname=app"
    for k, v in extra.items():
        conninfo += f" {k}={v}"
    return {"app": {"source": conninfo, "target": conninfo, "lag_method": "none",
                    "sequence_sync": "none"}}


SSL_IN_USE = "select ssl from pg_catalog.pg_stat_ssl where pid = pg_catalog.pg_backend_pid()"


def test_backend_accepts_tls_only(tls_cluster):
    """The fixture itself: plaintext TCP is refused, TLS works."""
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(tls_cluster.conninfo(sslmode="disable")).close()
    with psycopg.connect(tls_cluster.conninfo(sslmode="require")) as c:
        assert c.execute(SSL_IN_USE).fetchone()[0] is True


@pytest.mark.parametrize("mode", ["disable", "prefer", "require", "verify-ca", "verify-full"])
def test_server_tls_sslmode(proxy_factory, pki, tls_cluster, mode):
    p = proxy_factory.new(settings={"server_tls_sslmode": mode,
                                    "server_tls_ca_file": pki.path("ca.crt")},
                          databases=tls_db(tls_cluster))
    r = psql(p.conninfo(), SSL_IN_USE)
    if mode == "disable":
        assert r.returncode != 0
        assert "no encryption" in r.stderr, r.stderr
        return
    assert r.returncode == 0, r.stderr + p.log()[-3000:]
    assert r.stdout.strip() == "t"
    rows = [s for s in show(p.admin_port, "SHOW SERVERS") if s["database"] == "app"]
    assert rows and all(s["tls"] and s["tls"].startswith("TLSv1.") for s in rows), rows


def test_server_wrong_ca(proxy_factory, pki, tls_cluster):
    p = proxy_factory.new(settings={"server_tls_sslmode": "verify-ca",
                                    "server_tls_ca_file": pki.path("wrongca.crt")},
                          databases=tls_db(tls_cluster))
    r = psql(p.conninfo(), "select 1")
    assert r.returncode != 0
    assert "could not establish TLS with the source" in r.stderr, r.stderr
    assert "certificate verify failed" in r.stderr, r.stderr
    # require does not check the chain
    p2 = proxy_factory.new(settings={"server_tls_sslmode": "require",
                                     "server_tls_ca_file": pki.path("wrongca.crt")},
                           databases=tls_db(tls_cluster))
    r = psql(p2.conninfo(), SSL_IN_USE)
    assert r.returncode == 0 and r.stdout.strip() == "t", r.stderr


def test_server_wrong_host_name(proxy_factory, pki, tls_cluster):
    """A certificate for db.example only: verify-full to 127.0.0.1 fails, verify-ca passes."""
    tls_cluster.install_cert("db_other_name")
    tls_cluster.reload()
    try:
        deadline = time.monotonic() + 10
        while backend_cn(tls_cluster.port) != "db.example":
            assert time.monotonic() < deadline, "the backend did not load its new certificate"
            time.sleep(0.1)
        full = proxy_factory.new(settings={"server_tls_sslmode": "verify-full",
                                           "server_tls_ca_file": pki.path("ca.crt")},
                                 databases=tls_db(tls_cluster))
        r = psql(full.conninfo(), "select 1")
        assert r.returncode != 0
        assert "certificate verify failed" in r.stderr and "mismatch" in r.stderr, r.stderr
        ca_only = proxy_factory.new(settings={"server_tls_sslmode": "verify-ca",
                                              "server_tls_ca_file": pki.path("ca.crt")},
                                    databases=tls_db(tls_cluster))
        r = psql(ca_only.conninfo(), SSL_IN_USE)
        assert r.returncode == 0 and r.stdout.strip() == "t", r.stderr
    finally:
        tls_cluster.install_cert("db")
        tls_cluster.reload()
        deadline = time.monotonic() + 10
        while backend_cn(tls_cluster.port) != "127.0.0.1" and time.monotonic() < deadline:
            time.sleep(0.1)


def test_database_sslmode_overrides(proxy_factory, pki, tls_cluster, source):
    # server_tls_sslmode=require against a server without TLS: refused with a clear reason
    plain = {"app": {"source": source.proxy_target(), "target": source.proxy_target(),
                     "lag_method": "none"}}
    p = proxy_factory.new(settings={"server_tls_sslmode": "require"}, databases=plain)
    r = psql(p.conninfo(), "select 1")
    assert r.returncode != 0
    assert "does not support TLS but server_tls_sslmode is require" in r.stderr, r.stderr
    # ... unless the database's conninfo says sslmode=disable
    plain_off = {"app": {"source": source.proxy_target() + " sslmode=disable",
                         "target": source.proxy_target(), "lag_method": "none"}}
    p = proxy_factory.new(settings={"server_tls_sslmode": "require"}, databases=plain_off)
    r = psql(p.conninfo(), "select 1")
    assert r.returncode == 0, r.stderr
    # and sslmode=verify-full in the conninfo wins over server_tls_sslmode=disable
    p = proxy_factory.new(settings={"server_tls_sslmode": "disable",
                                    "server_tls_ca_file": pki.path("ca.crt")},
                          databases=tls_db(tls_cluster, sslmode="verify-full"))
    r = psql(p.conninfo(), SSL_IN_USE)
    assert r.returncode == 0 and r.stdout.strip() == "t", r.stderr


def test_client_certificate_to_backend(proxy_factory, pki, tls_cluster):
    """server_tls_cert_file: the backend's `cert` method logs tim in by certificate."""
    p = proxy_factory.new(settings={"server_tls_sslmode": "verify-full",
                                    "server_tls_ca_file": pki.path("ca.crt"),
                                    "server_tls_cert_file": pki.path("tim.crt"),
                                    "server_tls_key_file": pki.path("tim.key")},
                          databases=tls_db(tls_cluster))
    r = psql(p.conninfo(user="tim"), "select current_user, (" + SSL_IN_USE + ")")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tim|t"
    p2 = proxy_factory.new(settings={"server_tls_sslmode": "require"},
                           databases=tls_db(tls_cluster))
    r = psql(p2.conninfo(user="tim"), "select 1")
    assert r.returncode != 0
    assert "certificate" in r.stderr, r.stderr


def test_both_sides_tls_with_cancel(proxy_factory, pki, tls_cluster):
    """TLS in and out, a cancel request through to the TLS backend."""
    p = proxy_factory.new(settings=client_tls(pki, "require", server_tls_sslmode="verify-full",
                                              server_tls_ca_file=pki.path("ca.crt")),
                          databases=tls_db(tls_cluster))
    with p.connect(sslmode="verify-full", sslrootcert=pki.path("ca.crt")) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute(SSL_IN_USE).fetchone()[0] is True
        t0 = time.monotonic()
        import threading
        timer = threading.Timer(0.5, c.cancel)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("select pg_sleep(20)")
        timer.join()
        assert time.monotonic() - t0 < 10 * SLOW
        assert c.execute("select 1").fetchone()[0] == 1


def test_control_connections_reach_tls_only_target(proxy_factory, pki, tls_cluster):
    """SWITCH DRY RUN's preflight (libpq control connections) uses server_tls_*."""
    p = proxy_factory.new(settings={"server_tls_sslmode": "verify-full",
                                    "server_tls_ca_file": pki.path("ca.crt")},
                          databases=tls_db(tls_cluster))
    rows = admin(p.admin_port, "SWITCH app DRY RUN")
    assert rows and rows[0]["result"].startswith("dry run: ok"), rows
    # with the wrong CA the preflight cannot connect, and says so
    p2 = proxy_factory.new(settings={"server_tls_sslmode": "verify-ca",
                                     "server_tls_ca_file": pki.path("wrongca.crt")},
                           databases=tls_db(tls_cluster))
    with pytest.raises(Exception, match="certificate verify failed"):
        admin(p2.admin_port, "SWITCH app DRY RUN")

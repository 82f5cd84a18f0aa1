"""Control connections to servers that want TLS and a client certificate.

SHOW LAG, SHOW SEQUENCES and SWITCH's preflight query the databases over
control connections, whose conninfo is built in one place
(admin/cutover/control_open.c) with the server_tls_* settings.  Here both
sides of a replicated database are PostgreSQL clusters (test_tls.py's
TLSCluster, with certificates made by its PKI) that accept TCP over TLS
only, and that let control_user (pgcutover) in only with its password *and*
a certificate for its own name signed by the test CA (`hostssl ...
scram-sha-256 clientcert=verify-full`).  pgcutover verifies the servers
(server_tls_sslmode = verify-full, server_tls_ca_file) and presents
server_tls_cert_file/key_file.  Then:

- SHOW LAG <db>, SHOW SEQUENCES <db> and SWITCH <db> DRY RUN answer with
  rows;
- without the client certificate in the configuration the same commands
  fail and say why: SHOW SEQUENCES and SWITCH DRY RUN with an error naming
  the certificate, SHOW LAG with the NULL row it is documented to give when
  its query fails (docs/reference.md) and the reason in the log;
- with a certificate from the same CA for another name, the servers refuse
  it (clientcert=verify-full: CN mismatch, in their logs): the certificate is
  checked, not only its presence.

The subscription that replicates the database logs in to the source as
postgres over the unix socket (trust), so that only pgcutover's own
connections depend on the certificates.
"""

import os
import shutil
import tempfile
import time

import psycopg
import pytest

from pgutil import boot_pair
from replication import AdminError, ReplicatedDB, admin, route_of
from test_tls import PKI, TLSCluster

DB = "ctl_tls"

# control_user must bring its password and a certificate for its own name;
# everyone else (alice, for the set-up's pgbench) its password over TLS.
HBA = """
local    all  postgres                    trust
local    all  all                         scram-sha-256
hostssl  all  pgcutover  127.0.0.1/32     scram-sha-256 clientcert=verify-full
hostssl  all  all        127.0.0.1/32     scram-sha-256
"""


class CertCluster(TLSCluster):
    """A TLSCluster whose pg_hba.conf wants a client certificate of control_user."""

    def __init__(self, pki, name):
        super().__init__(pki)
        self.name = name

    def init(self):
        super().init()
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write(HBA)


class SocketReplicatedDB(ReplicatedDB):
    """ReplicatedDB whose subscription reaches the source over its unix socket."""

    def source_conninfo(self):
        return (f"host={self.source.dir} port={self.source.port} dbname={self.name} "
                f"user=postgres")


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="pgcutover-ctlpki-", dir="/tmp")
    os.chmod(d, 0o755)
    k = PKI(d)
    k.ca("ca", "pgcutover test CA")
    k.cert("db", "127.0.0.1", san="IP:127.0.0.1,DNS:localhost")
    k.cert("pgcutover", "pgcutover")     # control_user's own
    k.cert("alice", "alice")             # signed by the CA, for another user
    yield k
    if not os.environ.get("PGCUTOVER_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cert_db(pki):
    """The replicated database DB on two clusters that want certificates."""
    src = CertCluster(pki, "certsource")
    tgt = CertCluster(pki, "certtarget")
    db = None
    try:
        boot_pair(src, tgt)
        db = SocketReplicatedDB(src, tgt, DB).create()
        yield db
    finally:
        try:
            if db is not None:
                db.drop()
        finally:
            tgt.cleanup()
            src.cleanup()


def tls_settings(pki, cert="pgcutover"):
    """server_tls_* for verify-full, with the client certificate `cert` (None: none)."""
    s = {"server_tls_sslmode": "verify-full",
         "server_tls_ca_file": pki.path("ca.crt")}
    if cert is not None:
        s["server_tls_cert_file"] = pki.path(f"{cert}.crt")
        s["server_tls_key_file"] = pki.path(f"{cert}.key")
    return s


def new_proxy(proxy_factory, pki, db, cert="pgcutover"):
    return proxy_factory.new(settings=tls_settings(pki, cert),
                             databases={DB: db.section("lsn")}, name=f"ctl-tls-{cert}")


def source_next_order_id(db):
    with db.src() as s:
        return s.execute("SELECT last_value FROM orders_id_seq").fetchone()[0]


def log_size(cluster):
    """Where a cluster's log ends now (for wait_server_log)."""
    try:
        return os.path.getsize(cluster.logfile)
    except OSError:
        return 0


def wait_server_log(cluster, since, text, timeout=5.0):
    """Whether `text` appears in the cluster's log after offset `since`."""
    deadline = time.monotonic() + timeout
    while True:
        with open(cluster.logfile, errors="replace") as f:
            f.seek(since)
            if text in f.read():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_fixture_wants_certificate(cert_db, pki):
    """The clusters themselves: control_user gets in with its certificate
    only, and over TLS only (libpq straight to the source)."""
    src = cert_db.source
    base = dict(sslmode="verify-full", sslrootcert=pki.path("ca.crt"), dbname=DB,
                user="pgcutover")
    with psycopg.connect(src.conninfo(sslcert=pki.path("pgcutover.crt"),
                                      sslkey=pki.path("pgcutover.key"), **base)) as c:
        assert c.execute("SELECT ssl, client_dn FROM pg_stat_ssl "
                         "WHERE pid = pg_backend_pid()").fetchone() == (True, "/CN=pgcutover")
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        psycopg.connect(src.conninfo(sslcert="/nonexistent", sslkey="/nonexistent",
                                     **base)).close()
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(src.conninfo(sslmode="disable", dbname=DB, user="pgcutover")).close()


def test_show_lag_with_client_certificate(proxy_factory, pki, cert_db):
    cert_db.prepare()
    p = new_proxy(proxy_factory, pki, cert_db)
    rows = admin(p.admin_port, f"SHOW LAG {DB}")
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["db"] == DB and row["method"] == "lsn", row
    for col in ("source_position", "target_position", "lag_bytes", "measured_at"):
        assert row[col] is not None, (col, row, p.log()[-3000:])
    assert int(row["lag_bytes"]) >= 0, row
    assert f"SHOW LAG {DB}:" not in p.log()     # no warning: the query answered


def test_show_sequences_with_client_certificate(proxy_factory, pki, cert_db):
    cert_db.prepare()
    # orders_id_seq moves on the source only (sequences are not replicated)
    with cert_db.src() as s:
        s.execute("INSERT INTO orders (note) SELECT 'tls' FROM generate_series(1, 3)")
    last = source_next_order_id(cert_db)
    p = new_proxy(proxy_factory, pki, cert_db)
    rows = {r["sequence"]: r for r in admin(p.admin_port, f"SHOW SEQUENCES {DB}")}
    assert "public.orders_id_seq" in rows, rows
    seq = rows["public.orders_id_seq"]
    assert seq["source_value"] == str(last), seq
    assert seq["target_value"] is not None and seq["target_behind"] == "yes", seq


def test_switch_dry_run_with_client_certificate(proxy_factory, pki, cert_db):
    cert_db.prepare()
    p = new_proxy(proxy_factory, pki, cert_db)
    rows = admin(p.admin_port, f"SWITCH {DB} DRY RUN")
    assert len(rows) == 1 and rows[0]["result"].startswith("dry run: ok"), rows
    assert rows[0]["error"] is None, rows
    assert route_of(p.admin_port, DB) == ("source", "running")


def test_without_client_certificate(proxy_factory, pki, cert_db):
    """The same configuration without server_tls_cert_file/key_file: the
    servers refuse control_user, and each command says so."""
    cert_db.prepare()
    p = new_proxy(proxy_factory, pki, cert_db, cert=None)

    with pytest.raises(AdminError) as e:
        admin(p.admin_port, f"SHOW SEQUENCES {DB}")
    assert e.value.sqlstate == "08006", e.value
    assert "could not read sequences on the" in e.value.message, e.value
    assert "connection requires a valid client certificate" in e.value.message, e.value

    with pytest.raises(AdminError) as e:
        admin(p.admin_port, f"SWITCH {DB} DRY RUN")
    assert "connection requires a valid client certificate" in e.value.message, e.value
    assert route_of(p.admin_port, DB) == ("source", "running")

    # SHOW LAG answers a row of NULLs when its query fails; the log says why
    mark = p.log_mark()
    rows = admin(p.admin_port, f"SHOW LAG {DB}")
    assert len(rows) == 1 and rows[0]["method"] == "lsn", rows
    assert all(rows[0][c] is None for c in ("source_position", "target_position",
                                            "lag_bytes", "measured_at")), rows
    assert p.wait_log(rf"SHOW LAG {DB}: .*connection requires a valid client certificate",
                      since=mark), p.log_since(mark)


def test_certificate_for_another_user(proxy_factory, pki, cert_db):
    """A certificate from the right CA but for alice: verify-full on the
    server compares its CN with control_user and refuses it.  The server
    tells the client only that authentication failed; its log says why."""
    cert_db.prepare()
    p = new_proxy(proxy_factory, pki, cert_db, cert="alice")
    logs = {c: log_size(c) for c in (cert_db.source, cert_db.target)}
    with pytest.raises(AdminError) as e:
        admin(p.admin_port, f"SHOW SEQUENCES {DB}")
    assert e.value.sqlstate == "08006", e.value
    assert 'authentication failed for user "pgcutover"' in e.value.message, e.value
    with pytest.raises(AdminError) as e:
        admin(p.admin_port, f"SWITCH {DB} DRY RUN")
    assert 'authentication failed for user "pgcutover"' in e.value.message, e.value
    for c, since in logs.items():
        assert wait_server_log(c, since, 'certificate validation (clientcert=verify-full) '
                               'failed for user "pgcutover": CN mismatch'), c.log_tail(20)

"""Throwaway PostgreSQL 15 clusters for the integration suite.

Each Cluster is initdb'ed in its own temporary directory, listens on
127.0.0.1 on a free port and on a unix socket in that directory, and is
stopped with `pg_ctl -m immediate` when the suite ends.  PostgreSQL refuses
to run as root, so when the suite runs as root the server binaries run as the
`postgres` user, which owns the directory.
"""

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import psycopg

PG_BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")

# Passwords of the roles every cluster has.  The userlist the proxy reads is
# derived from these (see conftest.py).
PASSWORDS = {
    "postgres": "postgres_pw",
    "alice": "alice_pw",
    "bob": "bob_pw",
    "carol": "carol_pw",
    "tim": "tim_pw",  # trust-authenticated on the servers; only the proxy checks it
    "pat": "pat_pw",  # cleartext ("password") authentication on the servers
    "pgcutover": "ctl_pw",
}

DBNAME = "app"


def pg_bin(name):
    return os.path.join(PG_BINDIR, name)


_HANDED_OUT = set()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port nobody listens on right now (bind to port 0, read it back),
    and not one this process handed out before: ports picked for a server
    that is not started yet (listen_port and admin_port of one proxy) are
    otherwise free for the kernel to give out again."""
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh free port after 100 tries")


def md5_secret(user, password):
    """The secret PgBouncer's userlist and pg_authid use for md5."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def _as_pg_user():
    """argv prefix that runs a command as the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


def _chown_pg(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Cluster:
    """One PostgreSQL cluster: initdb, start, admin connections, stop."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"pgcutover-{name}-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        _chown_pg(self.dir)
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.started = False

    # -- lifecycle -------------------------------------------------------

    def _run(self, argv, timeout=120, check=True):
        p = subprocess.run(_as_pg_user() + argv, cwd=self.dir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({p.returncode}):\n{p.stdout}")
        return p

    def init(self):
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(PASSWORDS["postgres"] + "\n")
        _chown_pg(pwfile)
        self._run([pg_bin("initdb"), "-D", self.datadir, "-U", "postgres",
                   f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
        os.unlink(pwfile)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(f"""
# --- pgcutover integration suite ---
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.dir}'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
password_encryption = 'scram-sha-256'
log_connections = on
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
""")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write("""
# TYPE  DATABASE     USER       ADDRESS          METHOD
local   all          postgres                    trust
local   all          all                         scram-sha-256
host    all          tim        127.0.0.1/32     trust
host    all          alice      127.0.0.1/32     scram-sha-256
host    all          bob        127.0.0.1/32     md5
host    all          pat        127.0.0.1/32     password
host    all          all        127.0.0.1/32     scram-sha-256
host    replication  pgcutover  127.0.0.1/32     scram-sha-256
host    all          all        ::1/128          scram-sha-256
""")

    def start(self):
        self._run([pg_bin("pg_ctl"), "-D", self.datadir, "-l", self.logfile,
                   "-w", "-t", "60", "start"], timeout=90)
        self.started = True

    def stop(self):
        if self.started:
            try:
                self._run([pg_bin("pg_ctl"), "-D", self.datadir, "-m", "immediate",
                           "-w", "-t", "30", "stop"], timeout=60, check=False)
            finally:
                self.started = False
        self._kill_leftovers()

    def _kill_leftovers(self):
        """If pg_ctl could not stop the postmaster, kill it by its pid file."""
        pidfile = os.path.join(self.datadir, "postmaster.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass

    def cleanup(self):
        self.stop()
        if not os.environ.get("PGCUTOVER_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- connections -----------------------------------------------------

    def admin_connect(self, dbname="postgres", **kw):
        """Superuser connection over the unix socket (trust), autocommit."""
        return psycopg.connect(host=self.dir, port=self.port, user="postgres",
                               dbname=dbname, autocommit=True, connect_timeout=10, **kw)

    def conninfo(self, user="alice", dbname=DBNAME, password=None, **kw):
        """A TCP conninfo straight to this cluster (bypassing the proxy)."""
        if password is None:
            password = PASSWORDS.get(user, "")
        parts = {"host": "127.0.0.1", "port": self.port, "dbname": dbname,
                 "user": user, "password": password, "connect_timeout": 10}
        parts.update(kw)
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

    def proxy_target(self, dbname=DBNAME):
        """The libpq-style string a [database] section's source/target gets."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname}"

    def log_tail(self, n=60):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- roles and database ------------------------------------------------

    def setup_roles(self, carol_secret=None):
        """Create the suite's roles and the `app` database.

        carol_secret: a SCRAM secret to give carol (so that both clusters hold
        the same salt and iteration count); when None carol gets a fresh one.
        Returns carol's SCRAM secret as stored.
        """
        with self.admin_connect() as c:
            c.execute("SET password_encryption = 'scram-sha-256'")
            c.execute("CREATE ROLE alice LOGIN PASSWORD 'alice_pw'")
            c.execute("CREATE ROLE pgcutover LOGIN SUPERUSER REPLICATION PASSWORD 'ctl_pw'")
            c.execute("CREATE ROLE tim LOGIN")
            c.execute("CREATE ROLE pat LOGIN PASSWORD 'pat_pw'")
            if carol_secret is None:
                c.execute("CREATE ROLE carol LOGIN PASSWORD 'carol_pw'")
            else:
                c.execute(f"CREATE ROLE carol LOGIN PASSWORD '{carol_secret}'")
            c.execute("SET password_encryption = 'md5'")
            c.execute("CREATE ROLE bob LOGIN PASSWORD 'bob_pw'")
            c.execute("RESET password_encryption")
            c.execute("CREATE DATABASE app OWNER alice")
            c.execute("GRANT ALL ON DATABASE app TO bob, carol, tim, pat")
            secret = c.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'carol'").fetchone()[0]
            bob_secret = c.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'bob'").fetchone()[0]
        assert secret.startswith("SCRAM-SHA-256$"), secret
        assert bob_secret == md5_secret("bob", "bob_pw"), bob_secret
        with self.admin_connect(dbname=DBNAME) as c:
            c.execute("GRANT ALL ON SCHEMA public TO bob, carol, tim, pat")
            c.execute("CREATE SCHEMA foo AUTHORIZATION alice")
            c.execute("GRANT ALL ON SCHEMA foo TO bob, carol, tim")
        return secret


def boot_pair(source, target, timeout=180):
    """initdb and start both clusters in parallel, then give them the suite's
    roles and `app` database, carol with the same SCRAM secret on both.
    Returns carol's secret.  Raises the first failure."""
    errors = []

    def boot(c):
        try:
            c.init()
            c.start()
        except Exception as e:  # re-raised below, from the calling thread
            errors.append(e)

    threads = [threading.Thread(target=boot, args=(c,)) for c in (source, target)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"PostgreSQL did not start within {timeout} s")
    secret = source.setup_roles()
    target.setup_roles(carol_secret=secret)
    return secret


def wait_port(host, port, timeout, proc=None):
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False

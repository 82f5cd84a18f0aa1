"""Logical replication between the suite's clusters, pgbench through a proxy,
and the admin console: the helpers of the cutover tests, the demo
(tests/demo.py) and the benchmark (bench/cutover.py).

ReplicatedDB(source, target, name) creates a database NAME owned by alice on
both clusters (never the shared `app` database), fills it on the source
(pgbench -i -s 1, plus `orders` with a bigserial key and `pgcutover_marker`
for lag_method=marker), copies the schema to the target, publishes every
table on the source and subscribes the target with the slot NAME_slot.  It
waits (bounded) until every table is synchronised and the slot is active.

Everything here is bounded in time; nothing leaves a process behind.
"""

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest
from psycopg import sql

from pgutil import PASSWORDS, pg_bin

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin_pw"

# pgbench's tpcb-like transaction plus an insert into a table with a
# bigserial key: the sequence that logical replication does not carry.
TPCB_ORDERS_SCRIPT = """\
\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
INSERT INTO orders (note) VALUES ('x');
END;
"""

TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history",
          "orders", "pgcutover_marker"]


def _run(argv, env=None, input=None, timeout=120, what=None):
    p = subprocess.run(argv, env=env, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{what or argv[0]} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def _pg_env(password):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    for k in ("PGSERVICE", "PGOPTIONS", "PGDATABASE", "PGUSER", "PGHOST", "PGPORT"):
        env.pop(k, None)
    return env


def fast_worker_restart(cluster):
    """The logical replication launcher waits wal_retrieve_retry_interval
    (5 s) before it restarts the apply worker of a subscription that was
    disabled and enabled again; 200 ms keeps the tests quick."""
    with cluster.admin_connect() as c:
        if c.execute("SHOW wal_retrieve_retry_interval").fetchone()[0] != "200ms":
            c.execute("ALTER SYSTEM SET wal_retrieve_retry_interval = '200ms'")
            c.execute("SELECT pg_reload_conf()")


class ReplicatedDB:
    """A database replicated source -> target by PostgreSQL logical replication."""

    def __init__(self, source, target, name):
        self.source = source
        self.target = target
        self.name = name
        self.pub = f"{name}_pub"
        self.sub = f"{name}_sub"
        self.slot = f"{name}_slot"
        self.created = False
        # Set by a test that routed writes to the target: the target no longer
        # mirrors the source and prepare() copies it afresh.
        self.dirty = False

    # -- connections -------------------------------------------------------

    def src(self):
        """Superuser connection to this database on the source (autocommit)."""
        return self.source.admin_connect(dbname=self.name)

    def tgt(self):
        return self.target.admin_connect(dbname=self.name)

    def source_conninfo(self):
        return (f"host=127.0.0.1 port={self.source.port} dbname={self.name} "
                f"user=pgcutover password={PASSWORDS['pgcutover']}")

    def section(self, lag_method="lsn", **kw):
        """A [database] section for a proxy config routing NAME to this pair."""
        d = {"source": self.source.proxy_target(self.name),
             "target": self.target.proxy_target(self.name),
             "lag_method": lag_method,
             "control_user": "pgcutover"}
        if lag_method == "lsn":
            d["replication_slot"] = self.slot
        d.update({k: str(v) for k, v in kw.items()})
        return d

    # -- set-up ------------------------------------------------------------

    def create(self, timeout=90):
        deadline = time.monotonic() + timeout
        self.drop()  # leftovers of an interrupted run
        fast_worker_restart(self.target)
        for c in (self.source, self.target):
            with c.admin_connect() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER alice").format(
                    sql.Identifier(self.name)))
        self.created = True
        # pgbench -i as alice over TCP: alice owns the tables.
        _run([pg_bin("pgbench"), "-i", "-s", "1", "-q", "-h", "127.0.0.1",
              "-p", str(self.source.port), "-U", "alice", self.name],
             env=_pg_env(PASSWORDS["alice"]), timeout=120, what="pgbench -i")
        with psycopg.connect(self.source.conninfo(user="alice", dbname=self.name),
                             autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text)")
            conn.execute("CREATE TABLE pgcutover_marker (id text PRIMARY KEY, "
                         "created_at timestamptz DEFAULT now())")
        # The schema to the target, as postgres over the unix socket.
        dump = _run([pg_bin("pg_dump"), "--schema-only", "-h", self.source.dir,
                     "-p", str(self.source.port), "-U", "postgres", self.name],
                    env=_pg_env(PASSWORDS["postgres"]), timeout=60, what="pg_dump")
        _run([pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.target.dir,
              "-p", str(self.target.port), "-U", "postgres", "-d", self.name],
             env=_pg_env(PASSWORDS["postgres"]), input=dump.stdout, timeout=60,
             what="psql < schema")
        for c in (self.source, self.target):
            with c.admin_connect(dbname=self.name) as conn:
                conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO alice")
                conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice")
                conn.execute("GRANT ALL ON SCHEMA public TO alice")
        with self.src() as conn:
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(
                sql.Identifier(self.pub)))
        self._subscribe()
        self.wait_synced(max(5.0, deadline - time.monotonic()))
        return self

    def _subscribe(self):
        with self.tgt() as conn:
            conn.execute(sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {})"
            ).format(sql.Identifier(self.sub), sql.Literal(self.source_conninfo()),
                     sql.Identifier(self.pub), sql.Literal(self.slot)))

    def wait_synced(self, timeout=60, extra_tables=0):
        """Every table of the subscription (TABLES, plus `extra_tables` a
        caller added) in state 'r' and the slot active."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            with self.tgt() as t:
                states = t.execute(
                    "SELECT c.relname, r.srsubstate FROM pg_subscription_rel r "
                    "JOIN pg_subscription s ON s.oid = r.srsubid "
                    "JOIN pg_class c ON c.oid = r.srrelid WHERE s.subname = %s",
                    (self.sub,)).fetchall()
            with self.src() as s:
                active = s.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                    (self.slot,)).fetchone()
            last = (states, active)
            if (len(states) == len(TABLES) + extra_tables and all(st == "r" for _, st in states)
                    and active and active[0]):
                return
            time.sleep(0.1)
        raise AssertionError(f"replication of {self.name} not ready within {timeout}s: "
                             f"tables {last[0]}, slot active {last[1]}")

    def wait_caught_up(self, timeout=90):
        """The slot's confirmed_flush_lsn reached the source's insert position."""
        deadline = time.monotonic() + timeout
        with self.src() as s:
            goal = s.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            while time.monotonic() < deadline:
                ok = s.execute(
                    "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = %s", (goal, self.slot)).fetchone()
                if ok and ok[0]:
                    return
                time.sleep(0.05)
        raise AssertionError(f"slot {self.slot} did not reach {goal} within {timeout}s")

    def lag_bytes(self):
        with self.src() as s:
            return s.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), confirmed_flush_lsn) "
                "FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)).fetchone()[0]

    def set_subscription(self, enabled, timeout=20):
        """ALTER SUBSCRIPTION ENABLE/DISABLE and wait until the slot's
        walsender follows (active or not)."""
        with self.tgt() as t:
            t.execute(sql.SQL("ALTER SUBSCRIPTION {} {}").format(
                sql.Identifier(self.sub), sql.SQL("ENABLE" if enabled else "DISABLE")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.src() as s:
                row = s.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                (self.slot,)).fetchone()
            if row and bool(row[0]) == enabled:
                return
            time.sleep(0.05)
        raise AssertionError(f"slot {self.slot} did not become "
                             f"{'active' if enabled else 'inactive'} within {timeout}s")

    def resync(self, timeout=60):
        """Make the target a fresh copy of the source: drop the subscription,
        empty the target's tables, subscribe again (initial copy)."""
        self._drop_subscription()
        with self.tgt() as t:
            t.execute("TRUNCATE " + ", ".join(TABLES))
        self._subscribe()
        self.wait_synced(timeout)
        self.dirty = False

    def forget_target_writes(self):
        """After writes went to the target: empty the tables the tests insert
        into on both sides (so that no row replicated later collides with a
        row written on the target).  Much faster than resync(): replicated
        UPDATEs of the pgbench tables carry whole rows, so their diverged
        balances do not matter."""
        with self.tgt() as t:
            t.execute("TRUNCATE pgbench_history, orders, pgcutover_marker")
        with self.src() as s:
            s.execute("TRUNCATE pgbench_history, orders, pgcutover_marker")
        self.dirty = False

    def unfence(self):
        """Lift any fence a switch left on either side (every role's
        default_transaction_read_only setting in this database reset)."""
        for conn in (self.src, self.tgt):
            with conn() as c:
                c.execute(sql.SQL(
                    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT a.rolname FROM "
                    "pg_db_role_setting s JOIN pg_roles a ON a.oid = s.setrole "
                    "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = {} LOOP "
                    "EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET default_transaction_read_only', "
                    "r.rolname, {}); END LOOP; END $$").format(sql.Literal(self.name),
                                                              sql.Literal(self.name)))

    def prepare(self):
        """Before a test: replication enabled and caught up, no row written on
        the target alone left behind, no side fenced."""
        self.unfence()
        if self.dirty:
            self.forget_target_writes()
        with self.tgt() as t:
            row = t.execute("SELECT subenabled FROM pg_subscription WHERE subname = %s",
                            (self.sub,)).fetchone()
        if row is None:
            self._subscribe()
        elif not row[0]:
            self.set_subscription(True)
        self.wait_synced(60)
        self.wait_caught_up()

    # -- tear-down -----------------------------------------------------------

    def _drop_subscription(self):
        try:
            with self.tgt() as t:
                if t.execute("SELECT 1 FROM pg_subscription WHERE subname = %s",
                             (self.sub,)).fetchone():
                    try:
                        t.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(self.sub)))
                    except psycopg.Error:
                        # The source is unreachable: detach the slot, then drop.
                        t.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(
                            sql.Identifier(self.sub)))
                        t.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(
                            sql.Identifier(self.sub)))
                        t.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(self.sub)))
        except psycopg.OperationalError as e:
            if "does not exist" not in str(e):
                raise
        self._drop_slot()

    def _drop_slot(self):
        with self.source.admin_connect() as s:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = s.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                                (self.slot,)).fetchone()
                if row is None:
                    break
                if row[0] is not None:
                    s.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    time.sleep(0.1)
                    continue
                try:
                    s.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
                except psycopg.Error:
                    time.sleep(0.1)

    def _drop_other_replication(self):
        """Subscriptions and slots of this database that a test (or a switch
        with reverse_replication) made besides the forward ones: detached
        from their slots and dropped, the slots dropped, on both sides."""
        for c in (self.source, self.target):
            if not c.started:
                continue
            with c.admin_connect() as a:
                if not a.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (self.name,)).fetchone():
                    continue
            with c.admin_connect(dbname=self.name) as a:
                subs = [r[0] for r in a.execute(
                    "SELECT s.subname FROM pg_subscription s JOIN pg_database d "
                    "ON d.oid = s.subdbid WHERE d.datname = %s AND s.subname <> %s",
                    (self.name, self.sub))]
                for sub in subs:
                    ident = sql.Identifier(sub)
                    a.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
                    a.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
                    a.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    rows = a.execute("SELECT slot_name, active_pid FROM pg_replication_slots "
                                     "WHERE database = %s AND slot_name <> %s",
                                     (self.name, self.slot)).fetchall()
                    if not rows:
                        break
                    for name, pid in rows:
                        if pid is not None:
                            a.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
                        try:
                            a.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                        except psycopg.Error:
                            time.sleep(0.1)

    def drop(self):
        """Drop the subscriptions, the slots and both databases (backends
        first).  A cluster that is stopped is left alone (its directory goes
        with it)."""
        self._drop_other_replication()
        if self.target.started:
            self._drop_subscription()
        elif self.source.started:
            self._drop_slot()
        for c in (self.target, self.source):
            if not c.started:
                continue
            with c.admin_connect() as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.name)))
        self.created = False

    # -- checks --------------------------------------------------------------

    def count(self, side, table):
        conn = self.src() if side == "source" else self.tgt()
        with conn:
            return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()[0]

    def sequence_values(self, side):
        """{schema.sequence: last_value} (None when never called)."""
        conn = self.src() if side == "source" else self.tgt()
        with conn:
            return {f"{s}.{n}": v for s, n, v in conn.execute(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences")}

    def truncate_history(self):
        """TRUNCATE pgbench_history and orders on the source (replicated) and
        wait until the target is empty too."""
        with self.src() as s:
            s.execute("TRUNCATE pgbench_history, orders")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.count("target", "pgbench_history") == 0 and self.count("target", "orders") == 0:
                return
            time.sleep(0.05)
        raise AssertionError("TRUNCATE did not reach the target within 30s")


# -- pgbench -------------------------------------------------------------------

class PgbenchResult:
    def __init__(self, rc, stdout, logs=None):
        self.rc = rc
        self.stdout = stdout
        m = re.search(r"number of transactions actually processed: (\d+)", stdout)
        self.committed = int(m.group(1)) if m else None
        m = re.search(r"number of failed transactions: (\d+)", stdout)
        self.failed = int(m.group(1)) if m else None
        self.aborted = [ln for ln in stdout.splitlines() if "aborted" in ln.lower()]
        self.errors = [ln for ln in stdout.splitlines() if "error" in ln.lower()]
        # e.g. "WARNING:  there is no transaction in progress": a COMMIT that
        # reached a server where the transaction was not open.
        self.warnings = [ln for ln in stdout.splitlines() if "WARNING" in ln]
        self.logs = logs or []          # per-transaction log lines (--log)

    def __iter__(self):  # (committed, failed, stdout)
        return iter((self.committed, self.failed, self.stdout))

    def completion_times(self):
        """Completion time (epoch seconds, float) of every logged transaction."""
        out = []
        for ln in self.logs:
            f = ln.split()
            if len(f) >= 6 and f[2].isdigit():
                out.append(int(f[4]) + int(f[5]) / 1e6)
        return out


class Pgbench:
    """pgbench with the tpcb+orders script through a proxy, in the background.

    start() launches it; wait() returns a PgbenchResult.  Use as a context
    manager to make sure it is gone at the end."""

    def __init__(self, port, dbname, clients=8, seconds=5, mode="simple", log=False,
                 extra=(), host="127.0.0.1", user="alice", script=TPCB_ORDERS_SCRIPT,
                 appname="pgbench-cutover", jobs=None):
        self.tmp = tempfile.mkdtemp(prefix="pgcutover-pgbench-", dir="/tmp")
        self.script_path = os.path.join(self.tmp, "tpcb_orders.sql")
        with open(self.script_path, "w") as f:
            f.write(script)
        self.seconds = seconds
        self.argv = [pg_bin("pgbench"), "-n", "-h", host, "-p", str(port), "-U", user,
                     "-M", mode, "-c", str(clients), "-j", str(jobs or min(2, clients)),
                     "-T", str(seconds), "-f", self.script_path]
        if log:
            self.argv += ["--log", "--log-prefix", os.path.join(self.tmp, "pgbench_log")]
        self.argv += list(extra) + [dbname]
        self.env = dict(_pg_env(PASSWORDS.get(user, "")), PGAPPNAME=appname)
        self.proc = None
        self.log = log
        self.started_at = None

    def start(self):
        self.out = open(os.path.join(self.tmp, "stdout"), "w+")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.out,
                                     stderr=subprocess.STDOUT, text=True, cwd=self.tmp)
        self.started_at = time.monotonic()
        return self

    def wait(self, timeout=None, on_timeout=None):
        """Wait for pgbench to end.  on_timeout: a callable whose text joins
        the error when pgbench hangs (called before pgbench is killed)."""
        timeout = timeout if timeout is not None else self.seconds + 60
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            extra = ""
            if on_timeout is not None:
                try:
                    extra = "\n" + str(on_timeout())
                except Exception as e:
                    extra = f"\n(on_timeout failed: {e!r})"
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"pgbench did not finish within {timeout}s: "
                                 f"{self._stdout()}{extra}")
        logs = []
        if self.log:
            for fn in sorted(os.listdir(self.tmp)):
                if fn.startswith("pgbench_log"):
                    with open(os.path.join(self.tmp, fn)) as f:
                        logs.extend(f.read().splitlines())
        return PgbenchResult(self.proc.returncode, self._stdout(), logs)

    def _stdout(self):
        self.out.flush()
        self.out.seek(0)
        return self.out.read()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.out.close()
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_pgbench(port, dbname, clients=8, seconds=5, mode="simple", log=False, **kw):
    """Run pgbench (tpcb-like + orders insert) to the end: (committed, failed, stdout).
    The returned PgbenchResult also unpacks as that triple."""
    with Pgbench(port, dbname, clients=clients, seconds=seconds, mode=mode, log=log, **kw) as pb:
        pb.start()
        return pb.wait()


# -- admin console -------------------------------------------------------------

class AdminError(Exception):
    def __init__(self, sqlstate, message, hint=None):
        super().__init__(f"{sqlstate}: {message}" + (f" (hint: {hint})" if hint else ""))
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


class Rows(list):
    """Rows as dicts, with .columns: the column names in order."""
    columns = ()


def admin_connect(port, user=ADMIN_USER, password=ADMIN_PASSWORD, dbname="pgcutover",
                  host="127.0.0.1", connect_timeout=10):
    """A psycopg connection to the admin console (autocommit, simple protocol)."""
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                           autocommit=True, connect_timeout=connect_timeout,
                           cursor_factory=psycopg.ClientCursor)


def admin_query(conn, command):
    """Run one admin command on a psycopg connection; returns Rows, or raises
    AdminError with the SQLSTATE, message and hint of an ErrorResponse."""
    try:
        cur = conn.execute(command)
    except psycopg.Error as e:
        d = e.diag
        raise AdminError(d.sqlstate or e.sqlstate, d.message_primary or str(e), d.message_hint) from e
    rows = Rows()
    if cur.description is None:
        rows.columns = ()
        rows.status = cur.statusmessage
        return rows
    rows.columns = tuple(c.name for c in cur.description)
    rows.status = cur.statusmessage
    for r in cur.fetchall():
        rows.append(dict(zip(rows.columns, r)))
    return rows


def admin(port, command, **kw):
    """One admin command on a fresh connection (see admin_query)."""
    with admin_connect(port, **kw) as conn:
        return admin_query(conn, command)


def admin_psql(port, command, user=ADMIN_USER, password=ADMIN_PASSWORD, dbname="pgcutover",
               timeout=60):
    """The same through psql: returns (returncode, Rows, stderr)."""
    env = dict(_pg_env(password))
    p = subprocess.run([pg_bin("psql"), "-X", "-A", "-F", "\t", "-P", "footer=off",
                        "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", dbname,
                        "-c", command], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    rows = Rows()
    lines = p.stdout.splitlines()
    if lines:
        rows.columns = tuple(lines[0].split("\t"))
        for ln in lines[1:]:
            rows.append(dict(zip(rows.columns, ln.split("\t"))))
    return p.returncode, rows, p.stderr


def route_of(admin_port, db):
    for r in admin(admin_port, "SHOW DATABASES"):
        if r["name"] == db:
            return r["route"], r["state"]
    raise AssertionError(f"{db} not in SHOW DATABASES")


# -- cutover test helpers ------------------------------------------------------

SWITCH_COLUMNS = ("db", "from", "to", "started", "result", "paused_ms", "drain_ms",
                  "lag_wait_ms", "sequence_sync_ms", "sequences_synced", "sessions_moved",
                  "sessions_closed", "error", "fence_ms", "replication_ms",
                  "prepare_ms", "instances", "instances_acked", "gap_ms")


def cutover_proxy(factory, db, pool_mode="session", settings=None, name=None, **section):
    """A proxy routing db.name to the replicated pair (state_dir in its own dir)."""
    s = {"pool_mode": pool_mode}
    s.update(settings or {})
    lag_method = section.pop("lag_method", "lsn")
    return factory.new(settings=s, databases={db.name: db.section(lag_method, **section)},
                       name=name or f"cutover-{pool_mode}")


def switch(proxy, db, extra="", conn=None):
    """SWITCH db.name [extra] on the admin console: the result row (dict).
    Marks the pair dirty (target written) when the route moved to the target."""
    cmd = f"SWITCH {db.name} {extra}".strip()
    try:
        rows = admin_query(conn, cmd) if conn is not None else admin(proxy.admin_port, cmd)
    except AdminError:
        raise
    assert rows.columns == SWITCH_COLUMNS, rows.columns
    assert len(rows) == 1, rows
    row = rows[0]
    if row["result"] == "ok" and row["to"] == "target":
        db.dirty = True
    return row


def stuck_clients(proxy):
    """SHOW CLIENTS and SHOW SERVERS, for the message of a hung pgbench."""
    out = []
    for cmd in ("SHOW CLIENTS", "SHOW SERVERS", "SHOW POOLS"):
        try:
            rows = admin(proxy.admin_port, cmd)
            out.append(f"{cmd}:\n" + "\n".join(str(r) for r in rows))
        except Exception as e:
            out.append(f"{cmd}: {e!r}")
    return "\n".join(out)


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


class Writer(threading.Thread):
    """Inserts into orders through a proxy, one autocommit statement at a
    time, until stop(): the ids it saw committed, the errors it got, and the
    longest single insert (a held transaction shows there)."""

    def __init__(self, proxy, dbname, note="writer"):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.dbname = dbname
        self.note = note
        self.ids = []
        self.errors = []
        self.max_latency = 0.0
        self.ports = set()
        self.stopping = threading.Event()

    def run(self):
        try:
            with self.proxy.connect(dbname=self.dbname) as c:
                while not self.stopping.is_set():
                    t = time.monotonic()
                    i, port = c.execute("INSERT INTO orders (note) VALUES (%s) "
                                        "RETURNING id, inet_server_port()",
                                        (self.note,)).fetchone()
                    self.max_latency = max(self.max_latency, time.monotonic() - t)
                    self.ids.append(i)
                    self.ports.add(port)
                    time.sleep(0.01)
        except Exception as e:  # reported by stop()
            self.errors.append(e)

    def stop(self, timeout=30):
        self.stopping.set()
        self.join(timeout)
        assert not self.is_alive(), f"writer still blocked after {timeout}s"
        assert not self.errors, f"writer got errors: {self.errors!r}"
        return self


@contextlib.contextmanager
def apply_stalled(db, table="orders"):
    """Hold the target's apply worker: an ACCESS EXCLUSIVE lock on `table` on
    the target, then a write to it on the source.  The slot stays active but
    its confirmed_flush_lsn stops short of the source's position until the
    lock goes."""
    conn = db.tgt()
    try:
        conn.execute("BEGIN")
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.Identifier(table)))
        with db.src() as s:
            s.execute(sql.SQL("INSERT INTO {} (note) VALUES ('stall')").format(
                sql.Identifier(table)))
        # The apply worker is now waiting for our lock.
        wait_until(lambda: _apply_waits(db), 10, what="apply worker waiting on the lock")
        yield
    finally:
        try:
            conn.execute("ROLLBACK")
        except psycopg.OperationalError:
            pass            # the target was stopped on purpose
        finally:
            conn.close()


def _apply_waits(db):
    with db.tgt() as t:
        return t.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                         "'logical replication worker' AND wait_event_type = 'Lock' "
                         "AND datname = %s", (db.name,)).fetchone()[0] > 0


def server_port(conn):
    """The port of the PostgreSQL server a connection's queries run on."""
    return conn.execute("SELECT inet_server_port()").fetchone()[0]


__all__ = ["stuck_clients", "Writer", "apply_stalled", "cutover_proxy", "switch", "wait_until", "server_port", "SWITCH_COLUMNS",
           "ReplicatedDB", "Pgbench", "PgbenchResult", "run_pgbench", "admin", "admin_query",
           "admin_connect", "admin_psql", "AdminError", "Rows", "route_of",
           "TPCB_ORDERS_SCRIPT", "TABLES"]


def replicated_fixtures(dbname, reset=None):
    """The two fixtures a test module of the cutover needs, for database
    `dbname`: `repl` (module scope: the replicated database, created once and
    dropped at the end) and `rdb` (per test: replication re-enabled and caught
    up, then `reset(repl)` if given).  Use: `repl, rdb = replicated_fixtures(DB)`."""

    @pytest.fixture(scope="module")
    def repl(clusters):
        db = ReplicatedDB(clusters.source, clusters.target, dbname)
        db.create()
        yield db
        db.drop()

    @pytest.fixture
    def rdb(repl):
        repl.prepare()
        if reset is not None:
            reset(repl)
        return repl

    return repl, rdb

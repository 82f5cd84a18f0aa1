#!/usr/bin/python3
"""Cutover at scale: does the pause of SWITCH grow with idle clients,
sequences, published tables or the number of databases?

Not part of `make test` (`make bench-scale`, or `make bench BENCH_ARGS=--scale`).
Starts two throwaway PostgreSQL 15 clusters with logical replication between
them and, for each pool mode, measures SWITCH under a 16-client pgbench load
(tpcb-like plus an insert into a bigserial table, -M extended, per-transaction
logs) at every point of four dimensions, the others at their base value:

    idle clients  0, 1 000, 10 000 logged in and idle (session pooling: each
                  holds a server, so PostgreSQL gets max_connections for it;
                  capped by the fd limit, see below)
    sequences     10, 1 000, 10 000 (every one used once on both sides, half
                  of them used again on the source since: "since the last
                  switch")
    tables        10, 1 000, 5 000 in the publication
    databases     1, 10, 50 logical databases behind one pgcutover, switched
                  one after another (each under its own 16-client load)

Per switch: paused_ms and its phases from the SWITCH row, gap_ms (SHOW
SWITCHES: first held transaction to the last held one started on the new
side), the longest stretch without a commit around the switch from the
pgbench logs (the gap clients see), the lag before (SHOW LAG).  Every switch
must have 0 failed transactions and the target must hold exactly as many
pgbench_history rows as pgbench committed; exit status 1 otherwise.

Each database is a clone (CREATE DATABASE ... TEMPLATE) of a per-point
template made identically on both clusters, subscribed with copy_data =
false: no initial copy.  Client and server authentication is trust (no
password hashing in the way).  Writes bench/results/<date>-<commit>-scale.md
and a PNG of the pause against each dimension (gnuplot, installed with
apt-get when missing and root).

    /usr/bin/python3 bench/scale.py [--reps 3] [--modes session,transaction]
        [--dims idle,sequences,tables,databases] [--quick] [--no-write]
"""

import argparse
import datetime
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# thousands of idle clients' sockets are open in this process: psycopg's
# default wait (select()) fails on a descriptor above 1023, epoll does not
os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_epoll")

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (cleanup, close_clients, commit_gaps, fmt, interrupt_on_sigterm, machine_info,
                      make_tmp, median_of, open_idle_clients, pgcutover_ready, results_path, run,
                      say, startup_packet, switch_mid_run, switch_problems, write_userlist)
import psycopg                                           # noqa: E402
from psycopg import sql                                  # noqa: E402

import proxyutil                                         # noqa: E402
from pgutil import PASSWORDS, Cluster, pg_bin            # noqa: E402
from replication import Pgbench, fast_worker_restart     # noqa: E402

CLIENTS = 16
USER = "alice"
BASE = {"idle": 0, "sequences": 10, "tables": 10, "databases": 1}
VALUES = {"idle": [0, 1000, 10000], "sequences": [10, 1000, 10000],
          "tables": [10, 1000, 5000], "databases": [1, 10, 50]}
TARGETS = "pause <= 50 ms and gap <= 100 ms at every point with lag near zero; " \
          "10 000 idle clients within 10 ms of none; 10 000 sequences within 20 ms of 10"


def fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def max_idle(mode, nofile):
    """Idle clients pgcutover can hold under the fd limit: a client each, and
    in session pooling a server each; 400 fds for everything else."""
    per = 2 if mode == "session" else 1
    return max(0, (nofile - 400) // per)


# -- clusters -------------------------------------------------------------------

def boot(max_conn):
    clusters = [Cluster("scale-source"), Cluster("scale-target")]
    errors = []

    def one(c):
        try:
            c.init()
            with open(os.path.join(c.datadir, "postgresql.conf"), "a") as f:
                f.write(f"""
# --- bench/scale.py ---
max_connections = {max_conn}
shared_buffers = 128MB
max_locks_per_transaction = 256
max_wal_senders = 70
max_replication_slots = 70
max_logical_replication_workers = 64
max_worker_processes = 80
wal_retrieve_retry_interval = 200ms
log_connections = off
""")
            with open(os.path.join(c.datadir, "pg_hba.conf"), "w") as f:
                f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                        "host replication all 127.0.0.1/32 trust\n")
            c.start()
        except Exception as e:  # re-raised below
            errors.append(e)

    ts = [threading.Thread(target=one, args=(c,)) for c in clusters]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    if errors:
        raise errors[0]
    for c in clusters:
        with c.admin_connect() as conn:
            conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORDS[USER]}'")
            conn.execute("CREATE ROLE pgcutover LOGIN SUPERUSER REPLICATION "
                         f"PASSWORD '{PASSWORDS['pgcutover']}'")
    return clusters


def on_both(clusters, dbname, stmts):
    for c in clusters:
        with c.admin_connect(dbname=dbname) as conn:
            for q in stmts:
                conn.execute(q)


def make_template(clusters, name, nseq, ntables):
    """A database on both clusters with the pgbench tables (scale 1, loaded on
    the source and copied to the target with pg_dump), `orders`, the marker
    table, `nseq` sequences (each used once: is_called) and `ntables` small
    tables with a primary key; marked as a template."""
    src, tgt = clusters
    for c in clusters:
        with c.admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(USER)))
    run([pg_bin("pgbench"), "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(src.port),
         "-U", USER, name], timeout=300)
    dump = run([pg_bin("pg_dump"), "-h", src.dir, "-p", str(src.port), "-U", "postgres",
                name], timeout=300)
    run([pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", tgt.dir, "-p",
         str(tgt.port), "-U", "postgres", "-d", name], input=dump.stdout, timeout=300)
    stmts = [
        "CREATE TABLE orders (id bigserial PRIMARY KEY, note text)",
        "CREATE TABLE pgcutover_marker (id text PRIMARY KEY, created_at timestamptz DEFAULT now())",
        # the tables of the dimension (besides the 6 above)
        f"DO $$BEGIN FOR i IN 1..{max(0, ntables - 6)} LOOP EXECUTE format("
        "'CREATE TABLE extra_t%s (id int PRIMARY KEY, v text)', i); END LOOP; END$$",
        # the sequences of the dimension (orders_id_seq is one)
        f"DO $$BEGIN FOR i IN 1..{max(0, nseq - 1)} LOOP EXECUTE format("
        "'CREATE SEQUENCE extra_s%s', i); END LOOP; END$$",
        f"SELECT count(nextval(format('extra_s%s', i))) FROM generate_series(1, {max(0, nseq - 1)}) i",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {USER}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {USER}",
        "CHECKPOINT",
    ]
    on_both(clusters, name, stmts)
    for c in clusters:
        with c.admin_connect() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(
                sql.Identifier(name)))


def clone(clusters, template, name, nseq):
    """A replicated database `name` cloned from `template` on both sides:
    publication, subscription without copy, half of the sequences used
    again on the source."""
    src, tgt = clusters
    for c in clusters:
        with c.admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(template), sql.Identifier(USER)))
    with src.admin_connect(dbname=name) as conn:
        half = max(0, nseq - 1) // 2
        conn.execute(f"SELECT count(nextval(format('extra_s%s', i))) "
                     f"FROM generate_series(1, {half}) i")
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(
            sql.Identifier(name + "_pub")))
    with tgt.admin_connect(dbname=name) as conn:
        conn.execute(sql.SQL(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
            "WITH (slot_name = {}, copy_data = false)").format(
                sql.Identifier(name + "_sub"),
                sql.Literal(f"host=127.0.0.1 port={src.port} dbname={name} user=pgcutover"),
                sql.Identifier(name + "_pub"), sql.Literal(name + "_slot")))


def wait_active(clusters, names, timeout=120):
    src = clusters[0]
    deadline = time.monotonic() + timeout
    want = set(n + "_slot" for n in names)
    while time.monotonic() < deadline:
        with src.admin_connect() as conn:
            active = {r[0] for r in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE active")}
        if want <= active:
            return
        time.sleep(0.2)
    raise RuntimeError(f"slots not active within {timeout}s: {sorted(want - active)[:5]}")


def admin_connect_patiently(cluster, seconds=120):
    """A superuser connection, retried while the server is busy (after 10 000
    idle sessions end at once, it takes a while to answer a new one)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return cluster.admin_connect()
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def drop_db(clusters, name):
    src, tgt = clusters
    with tgt.admin_connect() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with tgt.admin_connect(dbname=name) as d:
                for (sub,) in d.execute("SELECT subname FROM pg_subscription s JOIN "
                                        "pg_database b ON b.oid = s.subdbid "
                                        "WHERE b.datname = current_database()").fetchall():
                    d.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(
                        sql.Identifier(sub)))
                    d.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(
                        sql.Identifier(sub)))
                    d.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(sub)))
    for c in clusters:
        with admin_connect_patiently(c) as conn:
            for (slot, pid) in conn.execute(
                    "SELECT slot_name, active_pid FROM pg_replication_slots "
                    "WHERE database = %s", (name,)).fetchall():
                if pid:
                    conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
                for _ in range(50):
                    try:
                        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                        break
                    except psycopg.Error:
                        time.sleep(0.1)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


# -- one switch -----------------------------------------------------------------

def count_rows(cluster, db, table):
    with cluster.admin_connect(dbname=db) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))).fetchone()[0]


def switch_under_load(clusters, proxy, db, args):
    """pgbench through the proxy on db, SWITCH after args.switch_at seconds:
    the measurements of that switch (dict)."""
    out = {"db": db}
    with clusters[0].admin_connect(dbname=db) as conn:
        conn.execute("TRUNCATE pgbench_history, orders")
    deadline = time.monotonic() + 30
    while count_rows(clusters[1], db, "pgbench_history") or count_rows(clusters[1], db, "orders"):
        if time.monotonic() > deadline:
            raise RuntimeError("TRUNCATE did not reach the target")
        time.sleep(0.05)
    seconds = int(args.switch_at + args.after + 0.999)
    with Pgbench(proxy.port, db, clients=CLIENTS, seconds=seconds, mode="extended", log=True,
                 appname="pgcutover-scale", user=USER) as pb:
        pb.env.pop("PGPASSWORD", None)
        sw = switch_mid_run(pb, proxy.admin_port, db, args.switch_at, lag=True)
        if "early" in sw:
            raise RuntimeError("pgbench ended before the switch: " + sw["early"][-500:])
        out["lag_bytes"] = sw["lag_bytes"]
        if "error" in sw:
            out["error"] = sw["error"]
        row, t0, t1 = sw["row"], sw["t0"], sw["t1"]
        res = pb.wait(timeout=seconds + 60)
    if row:
        for k in ("paused_ms", "drain_ms", "fence_ms", "lag_wait_ms", "sequence_sync_ms",
                  "replication_ms", "prepare_ms", "gap_ms"):
            v = row.get(k)
            out[k] = int(v) if v not in (None, "") else None
        out["switch_ms"] = (t1 - t0) * 1000
        out["result"] = row["result"]
    out["commit_gap_ms"] = commit_gaps(res.completion_times(), t0, t1)[0] * 1000
    out["committed"], out["failed"] = res.committed, res.failed
    hist = count_rows(clusters[1], db, "pgbench_history")
    problems = [out["error"]] if "error" in out else []
    problems += switch_problems(res, hist, res.committed, row)
    out["ok"] = not problems
    if problems:
        out["error"] = "; ".join(problems)
    return out


def new_proxy(env, mode, dbs, pool_size, max_clients, name):
    sections = {}
    for d in dbs:
        sections[d] = {"source": f"host=127.0.0.1 port={env.source.port} dbname={d}",
                       "target": f"host=127.0.0.1 port={env.target.port} dbname={d}",
                       "lag_method": "lsn", "replication_slot": d + "_slot",
                       "control_user": "pgcutover"}
    p = proxyutil.Proxy(env, settings={
        "pool_mode": mode, "auth_type": "trust", "default_pool_size": str(pool_size),
        "max_client_conn": str(max_clients), "drain_timeout": "10s", "lag_timeout": "30s",
        "lag_method": "lsn", "client_login_timeout": "120s", "server_connect_timeout": "30s"},
        databases=sections, name=name)
    p.start()
    return p


# -- points -----------------------------------------------------------------------

class Bench:
    def __init__(self, args, clusters, env):
        self.args = args
        self.clusters = clusters
        self.env = env
        self.templates = {}
        self.serial = 0

    def template(self, nseq, ntables):
        key = (nseq, ntables)
        if key not in self.templates:
            name = f"tmpl_{nseq}_{ntables}"
            t = time.monotonic()
            make_template(self.clusters, name, nseq, ntables)
            say(f"  template {name}: {time.monotonic() - t:.0f} s")
            self.templates[key] = name
        return self.templates[key]

    def fresh(self, n, nseq, ntables):
        tmpl = self.template(nseq, ntables)
        names = []
        for _ in range(n):
            self.serial += 1
            name = f"sc_{self.serial}"
            clone(self.clusters, tmpl, name, nseq)
            names.append(name)
        wait_active(self.clusters, names)
        return names

    def point(self, mode, dim, value):
        """Every switch of one point: a list of measurement dicts."""
        a = self.args
        p = dict(BASE)
        p[dim] = value
        idle = min(p["idle"], max_idle(mode, a.nofile))
        out = []
        reps = 1 if dim == "databases" and value > 1 else a.reps
        for rep in range(reps):
            names = self.fresh(p["databases"], p["sequences"], p["tables"])
            pool = CLIENTS * 2 + 4 + (idle if mode == "session" else 0)
            proxy = new_proxy(self.env, mode, names, pool, idle + 200, f"scale-{mode}")
            socks = []
            try:
                if idle:
                    t = time.monotonic()
                    open_idle_clients(proxy.port, startup_packet(USER, names[0], "idle"), idle,
                                      socks, batch=100, timeout=120)
                    say(f"    {idle} idle clients in {time.monotonic() - t:.0f} s")
                for db in names:
                    r = switch_under_load(self.clusters, proxy, db, a)
                    r.update(mode=mode, dim=dim, value=value, idle=idle)
                    out.append(r)
                    say("    " + line(r))
                    if not r["ok"] and a.verbose:
                        say(proxy.log()[-3000:])
            finally:
                close_clients(socks)
                if a.keep_logs:
                    os.makedirs(a.keep_logs, exist_ok=True)
                    with open(os.path.join(a.keep_logs, f"{mode}-{dim}-{value}-{rep}.log"),
                              "w") as f:
                        f.write(proxy.log())
                for problem in proxy.stop():
                    say(f"    note: {problem}")
                proxy.cleanup()
                for db in names:
                    drop_db(self.clusters, db)
        return out


def line(r):
    def f(k):
        v = r.get(k)
        return "-" if v is None else f"{v:.0f}"
    return (f"{r['mode']:<11} {r['dim']:<9} {r['value']:>6}  pause {f('paused_ms'):>5}  "
            f"gap {f('gap_ms'):>5}  commit gap {f('commit_gap_ms'):>5}  drain {f('drain_ms'):>4}  "
            f"fence {f('fence_ms'):>4}  lag {f('lag_wait_ms'):>4}  seq {f('sequence_sync_ms'):>4}  "
            f"switch {f('switch_ms'):>6}  lag before {f('lag_bytes')} B  "
            f"{'ok' if r['ok'] else 'FAILED: ' + r.get('error', '?')}")


def summarize(results, modes, dims):
    rows = []
    for mode in modes:
        for dim in dims:
            for value in VALUES[dim]:
                rs = [r for r in results if r["mode"] == mode and r["dim"] == dim
                      and r["value"] == value]
                if not rs:
                    continue
                rows.append({"mode": mode, "dim": dim, "value": value, "n": len(rs),
                             "idle": rs[0]["idle"],
                             "ok": all(r["ok"] for r in rs),
                             **{k: median_of(rs, k) for k in (
                                 "paused_ms", "gap_ms", "commit_gap_ms", "drain_ms", "fence_ms",
                                 "lag_wait_ms", "sequence_sync_ms", "switch_ms", "lag_bytes",
                                 "prepare_ms")}})
    return rows


def md_table(rows):
    head = ("| pool | dimension | value | switches | pause ms | gap ms (SHOW SWITCHES) | "
            "longest without a commit ms | drain | fence | lag wait | sequences | "
            "SWITCH round trip ms | before the pause ms | lag before B | 0 failed, nothing lost |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        val = f"{r['value']}" + (f" ({r['idle']})" if r["dim"] == "idle" and r["idle"] != r["value"] else "")
        out.append(f"| {r['mode']} | {r['dim']} | {val} | {r['n']} | {fmt(r['paused_ms'])} | "
                   f"{fmt(r['gap_ms'])} | {fmt(r['commit_gap_ms'])} | {fmt(r['drain_ms'])} | "
                   f"{fmt(r['fence_ms'])} | {fmt(r['lag_wait_ms'])} | {fmt(r['sequence_sync_ms'])} | "
                   f"{fmt(r['switch_ms'])} | {fmt(r['prepare_ms'])} | {fmt(r['lag_bytes'])} | "
                   f"{'yes' if r['ok'] else 'NO'} |")
    return "\n".join(out)


def targets(rows):
    lines = []
    bad = [r for r in rows if (r["paused_ms"] or 0) > 50 or (r["gap_ms"] or 0) > 100]
    where = ", ".join(f"{r['mode']} {r['dim']}={r['value']}" for r in bad)
    lines.append("- pause <= 50 ms and gap <= 100 ms at every point: "
                 + ("met" if not bad else "not met at " + where))
    for mode in sorted({r["mode"] for r in rows}):
        for dim, lo, hi, limit in (("idle", 0, 10000, 10), ("sequences", 10, 10000, 20)):
            a = next((r for r in rows if r["mode"] == mode and r["dim"] == dim and r["value"] == lo), None)
            b = next((r for r in rows if r["mode"] == mode and r["dim"] == dim and r["value"] == hi), None)
            if a and b and a["paused_ms"] is not None and b["paused_ms"] is not None:
                d = b["paused_ms"] - a["paused_ms"]
                lines.append(f"- {mode}, {dim} {hi} vs {lo}: {d:+.0f} ms "
                             f"({'met' if d <= limit else 'not met'}: within {limit} ms)")
    return "\n".join(lines)


def ensure_gnuplot():
    if shutil.which("gnuplot"):
        return True
    if os.geteuid() != 0:
        return False
    say("installing gnuplot-nox (apt-get) for the plot")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-q", "gnuplot-nox"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    return p.returncode == 0 and shutil.which("gnuplot") is not None


def plot(rows, dims, png):
    if not ensure_gnuplot():
        say("gnuplot not available: no plot")
        return False
    tmp = tempfile.mkdtemp(prefix="pgcutover-plot-")
    try:
        script = [f"set terminal png size {420 * len(dims)},420",
                  f"set output '{png}'", f"set multiplot layout 1,{len(dims)} "
                  "title 'pgcutover: pause and gap of SWITCH (medians, ms)'",
                  "set key top left", "set yrange [0:*]", "set grid"]
        for dim in dims:
            files = []
            for mode in ("session", "transaction"):
                pts = [r for r in rows if r["dim"] == dim and r["mode"] == mode]
                if not pts:
                    continue
                path = os.path.join(tmp, f"{dim}-{mode}.dat")
                with open(path, "w") as f:
                    for r in pts:
                        f.write(f"{r['value']} {r['paused_ms'] or 0} {r['gap_ms'] or 0}\n")
                files.append((mode, path))
            if not files:
                continue
            script.append(f"set xlabel '{dim}'")
            script.append("set logscale x")
            script.append(f"set xrange [0.7:{max(VALUES[dim]) * 1.5}]")
            plots = []
            for mode, path in files:
                x = "($1 == 0 ? 1 : $1)" if dim == "idle" else "1"
                plots.append(f"'{path}' using {x}:2 with linespoints title '{mode} pause'")
                plots.append(f"'{path}' using {x}:3 with linespoints dashtype 2 title '{mode} gap'")
            script.append("plot " + ", ".join(plots))
        script.append("unset multiplot")
        sp = os.path.join(tmp, "plot.gp")
        with open(sp, "w") as f:
            f.write("\n".join(script) + "\n")
        p = subprocess.run(["gnuplot", sp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        if p.returncode != 0:
            say("gnuplot failed: " + p.stdout[-500:])
            return False
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="switches per point (default 3)")
    ap.add_argument("--modes", default="session,transaction")
    ap.add_argument("--dims", default="idle,sequences,tables,databases")
    ap.add_argument("--quick", action="store_true",
                    help="1 switch per point, the largest values only besides the base")
    ap.add_argument("--switch-at", type=float, default=2.5)
    ap.add_argument("--after", type=float, default=2.5)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="save each proxy's log (-v: a line per phase) in DIR")
    args = ap.parse_args(argv)
    args.modes = args.modes.split(",")
    args.dims = args.dims.split(",")
    if args.quick:
        args.reps = 1
    return args


def main(argv):
    args = parse_args(argv)
    if not pgcutover_ready():
        return 2
    args.nofile = fd_limit()
    interrupt_on_sigterm()
    # the report names the C sources that differ from the commit
    info = machine_info(sources=("*.c", "*.h"))
    load0 = os.getloadavg()
    idle_max = max(VALUES["idle"]) if "idle" in args.dims else 0
    # the databases switched before the current one keep their servers on the
    # target (idle until server_idle_timeout): room for all of them
    dbs_max = max(VALUES["databases"]) if "databases" in args.dims else 1
    max_conn = 400 + dbs_max * (CLIENTS * 2 + 4) + (
        min(idle_max, max_idle("session", args.nofile)) if "session" in args.modes else 0)
    tmp = make_tmp("pgcutover-scale-")
    results = []
    clusters = []
    try:
        clusters = boot(max_conn)
        fast_worker_restart(clusters[1])
        env = proxyutil.ClusterEnv(clusters[0], clusters[1], write_userlist(tmp))
        bench = Bench(args, clusters, env)
        say(f"pgcutover at scale: {CLIENTS} pgbench clients, SWITCH after {args.switch_at} s; "
            f"{args.reps} switches per point; fd limit {args.nofile}")
        base_done = {}
        for mode in args.modes:
            for dim in args.dims:
                values = VALUES[dim]
                if args.quick:
                    values = [values[0], values[-1]]
                for value in values:
                    say(f"  {mode} {dim} = {value}")
                    if value == BASE[dim] and mode in base_done:
                        rs = [dict(r, dim=dim, value=value) for r in base_done[mode]]
                    else:
                        rs = bench.point(mode, dim, value)
                        if value == BASE[dim]:
                            base_done[mode] = rs
                    results.extend(rs)
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    finally:
        cleanup(clusters, tmp)
    load1 = os.getloadavg()
    rows = summarize(results, args.modes, args.dims)
    table = md_table(rows)
    tgt = targets(rows)
    say()
    say(table)
    say()
    say(tgt)
    ok = results and all(r["ok"] for r in results)
    if not args.no_write:
        path = results_path(f"{datetime.date.today().isoformat()}-{info['commit']}-scale")
        png = path[:-3] + ".png"
        have_png = plot(rows, [d for d in args.dims], png)
        with open(path, "w") as f:
            f.write(f"# Cutover at scale, {info['date']}\n\n")
            f.write(f"Commit {info['commit']}" + (f" (C sources differ: {', '.join(info['dirty'])})"
                                                   if info["dirty"] else "") + "; "
                    f"{info['cpu']}, {info['cores']} cores, {info['mem_gb']} GB, Linux {info['kernel']}; "
                    f"{info['pg']}.  Load average before {load0[0]:.2f} / {load0[1]:.2f}, "
                    f"after {load1[0]:.2f} / {load1[1]:.2f}.\n\n")
            f.write(f"`bench/scale.py {' '.join(argv)}`: {CLIENTS} pgbench clients (tpcb-like + "
                    f"insert, -M extended), SWITCH after {args.switch_at} s, medians of "
                    f"{args.reps} switches per point (the databases dimension: one switch per "
                    "database, medians over them); trust authentication; fd limit "
                    f"{args.nofile} (idle clients in session pooling capped at "
                    f"{max_idle('session', args.nofile)}: a client and a server each).\n\n")
            f.write(table + "\n\n## Targets (issue 17)\n\n" + tgt + "\n")
            if have_png:
                f.write(f"\n![pause and gap against each dimension]({os.path.basename(png)})\n")
            f.write("\n## Every switch\n\n```\n" + "\n".join(line(r) for r in results) + "\n```\n")
        say(f"written to {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Throughput, CPU and memory of pgcutover next to PgBouncer, in one run.

`make bench` runs this (issue 6, point 1).  Not part of `make test`: it takes
minutes and prints numbers rather than pass or fail.

It starts one throwaway PostgreSQL 15 cluster (tests/integration/pgutil.py,
127.0.0.1, a free port), fills it with `pgbench -i -s 10`, and starts in front
of it PgBouncer and pgcutover with the same settings (pool mode, pool size,
md5 client authentication, one database "bench"), one pair per pool mode.
Then, round after round, for every point (script, -M protocol, clients) it
runs pgbench directly against PostgreSQL, then through each proxy, back to
back, so that drift of a shared machine lands on all three alike; the order
of the two proxies alternates between rounds.  Per run it records pgbench's
tps and average latency and the proxy's CPU time (utime + stime from
/proc/PID/stat) divided by the transactions pgbench committed.  The table
reports the medians over the rounds.

Then, with fresh proxies (trust authentication, transaction pooling), it logs
in 1 000 and 10 000 idle clients over raw sockets and reports each proxy's
RSS per client.  With --cutover it ends with bench/cutover.py (the gap a
SWITCH leaves) and includes its summary.

The table goes to stdout and, as Markdown with the date, machine, versions
and commit, to bench/results/<date>-<commit>.md.

    /usr/bin/python3 bench/run.py [--quick | --full] [--cutover]
        [--rounds R] [--duration T] [--clients 1,16,64,256]
        [--scripts select-only,tpcb-like] [--protocols simple,extended,prepared]
        [--modes session,transaction] [--idle-clients 1000,10000] [--no-rss]

Everything is bounded: each subprocess has a timeout; the cluster, the proxies
and the temporary directories go away at the end, on an error and on Ctrl-C
or SIGTERM.
"""

import argparse
import datetime
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# benchlib first: it puts tests/integration (pgutil) on sys.path
import benchlib
from benchlib import (HERE, REPO, close_clients, cpu_us, md_table, median_of,
                      open_idle_clients, pgbench_summary, proc_cpu_ticks, results_path, run, say,
                      startup_packet)
from pgutil import Cluster, free_port, pg_bin, wait_port  # noqa: E402

PGBOUNCER = os.environ.get("PGBOUNCER_BIN", "/usr/sbin/pgbouncer")
PGCUTOVER = os.path.abspath(os.environ.get("PGCUTOVER_BIN",
                                           os.path.join(REPO, "build", "pgcutover")))

USER, PASSWORD, DBNAME = "bench", "bench_pw", "bench"
SCALE = 10
NOFILE = 65536  # fd limit of this process and of the proxies (inherited)

# The proxies the table compares, in column order.
PROXIES = ("pgbouncer", "pgcutover")
SHORT = {"select-only": "select-only (-S)", "tpcb-like": "tpcb-like"}

# Targets of issue 6, point 2 (reported, not enforced).
TARGET_TPS = 1.0          # pgcutover tps / PgBouncer tps at every point
TARGET_TPS_TXN_HIGH = 1.1  # ... at 64 and 256 clients in transaction pooling
TARGET_CPU = 0.7          # pgcutover CPU per transaction / PgBouncer's


# Proxies started and not yet stopped: main() stops them whatever happens.
LIVE = []


class Interrupted(Exception):
    """SIGTERM, turned into an exception so that `finally` cleans up."""


def on_sigterm(signum, frame):
    raise Interrupted("SIGTERM")


# -- processes ---------------------------------------------------------------

def pg_env():
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGCONNECT_TIMEOUT="20")
    for k in ("PGSERVICE", "PGOPTIONS", "PGDATABASE", "PGUSER", "PGHOST", "PGPORT",
              "PGSSLMODE", "PGAPPNAME"):
        env.pop(k, None)
    return env


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proxy:
    """One PgBouncer or pgcutover process, run as the postgres user (neither
    runs as root), in its own session so that a Ctrl-C in the terminal
    reaches only this script, which then stops it."""

    def __init__(self, kind, mode, workdir, pg_port, auth, pool_size, max_clients):
        self.kind, self.mode = kind, mode
        self.name = f"{kind}-{mode}-{auth}"
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "log")
        self.proc = None
        self.log = None
        userlist = os.path.join(workdir, "userlist.txt")
        if kind == "pgbouncer":
            self.ini = os.path.join(self.dir, "pgbouncer.ini")
            text = f"""\
[databases]
{DBNAME} = host=127.0.0.1 port={pg_port} dbname={DBNAME}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = {auth}
auth_file = {userlist}
pool_mode = {mode}
default_pool_size = {pool_size}
max_client_conn = {max_clients}
server_idle_timeout = 0
server_lifetime = 86400
ignore_startup_parameters = extra_float_digits
"""
            self.argv = [PGBOUNCER, self.ini]
        else:
            self.ini = os.path.join(self.dir, "pgcutover.ini")
            text = f"""\
[pgcutover]
listen_addr = 127.0.0.1
listen_port = {self.port}
admin_addr = 127.0.0.1
admin_port = {free_port()}
admin_users = admin
auth_type = {auth}
auth_file = {userlist}
pool_mode = {mode}
default_pool_size = {pool_size}
max_client_conn = {max_clients}
state_dir = {os.path.join(self.dir, "state")}
metrics_port = 0
server_idle_timeout = 0
shutdown_timeout = 1s
control_user = {USER}
lag_method = none
sequence_sync = none

[database "{DBNAME}"]
source = host=127.0.0.1 port={pg_port} dbname={DBNAME}
target = host=127.0.0.1 port={pg_port} dbname={DBNAME}
"""
            self.argv = [os.path.join(workdir, "pgcutover"), self.ini]
        with open(self.ini, "w") as f:
            f.write(text)
        chown_pg(self.dir, recursive=True)

    def start(self):
        self.log = open(self.log_path, "ab")
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user="postgres", group="postgres", extra_groups=[])
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kw)
        LIVE.append(self)
        if not wait_port("127.0.0.1", self.port, 15, self.proc):
            raise RuntimeError(f"{self.name} did not start:\n{self.log_tail()}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_ticks(self):
        return proc_cpu_ticks(self.pid)

    def rss_kb(self):
        return proc_rss_kb(self.pid)

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log is not None:
            self.log.close()
            self.log = None
        if self in LIVE:
            LIVE.remove(self)


def chown_pg(path, recursive=False):
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    paths = [path]
    if recursive:
        for root, dirs, files in os.walk(path):
            paths += [os.path.join(root, n) for n in dirs + files]
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)


# -- pgbench -----------------------------------------------------------------

def jobs_for(mode, proto, clients):
    """pgbench threads.  -M prepared prepares each statement with a blocking
    PQprepare at its first use: in transaction pooling with fewer servers than
    clients, a thread serving several clients would wait for a server another
    of its own clients holds in a transaction (with any pooler), so those
    points get one thread per client."""
    if mode == "transaction" and proto == "prepared":
        return clients
    return min(2, clients)


def pgbench(port, script, proto, clients, duration, proxy=None, jobs=None):
    """One pgbench run; returns {tps, lat, txns, cpu_us} or {error}."""
    argv = [pg_bin("pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-n",
            "-T", str(duration), "-c", str(clients), "-j", str(jobs or min(2, clients)),
            "-M", proto, "-b", script, DBNAME]
    before = proxy.cpu_ticks() if proxy else None
    try:
        p = run(argv, timeout=duration + 60 + clients // 4, env=pg_env(), check=False)
    except subprocess.TimeoutExpired:
        return {"error": "pgbench timed out"}
    after = proxy.cpu_ticks() if proxy else None
    out = pgbench_summary(p.stdout)
    if p.returncode != 0 or "tps" not in out or not out.get("txns"):
        lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
        errs = [ln for ln in lines if "ERROR:" in ln or "FATAL:" in ln] or \
               [ln for ln in lines if "error" in ln.lower()] or lines[-3:]
        return {"error": f"pgbench exit {p.returncode}: {errs[0][:300]}"}
    if out.get("failed"):
        out["error"] = f"{int(out['failed'])} failed transactions"
    if proxy:
        out["cpu_us"] = cpu_us(after - before, out["txns"])
    return out


# -- idle clients over raw sockets ----------------------------------------------

STARTUP = startup_packet(USER, DBNAME)


def measure_rss(kind, workdir, pg_port, counts):
    """RSS of a fresh proxy (trust, transaction pooling) with 0 and then each
    of `counts` idle clients logged in."""
    top = max(counts)
    px = Proxy(kind, "transaction", workdir, pg_port, "trust", 20, top + 100).start()
    socks = []
    try:
        open_idle_clients(px.port, STARTUP, 1, socks)  # the first login opens a server
        close_clients(socks)
        time.sleep(0.5)
        res = {"idle": px.rss_kb()}
        for n in sorted(counts):
            t0 = time.monotonic()
            open_idle_clients(px.port, STARTUP, n, socks)
            time.sleep(0.5)
            res[n] = px.rss_kb()
            say(f"  {kind:<10} {n:>6} idle clients: RSS {res[n]} kB "
                f"({(res[n] - res['idle']) / n:.2f} kB per client; logins took "
                f"{time.monotonic() - t0:.1f} s)")
        if not px.alive():
            raise RuntimeError(f"{kind} died:\n{px.log_tail()}")
        return res
    finally:
        close_clients(socks)
        px.stop()


# -- the run ----------------------------------------------------------------------

def setup_cluster(c, max_conn):
    """initdb and start `c` for the bench: room for every pool at once, md5
    for the bench user, and the pgbench tables at scale SCALE."""
    c.init()
    # Later lines of postgresql.conf win over pgutil's.
    with open(os.path.join(c.datadir, "postgresql.conf"), "a") as f:
        f.write(f"""
# --- bench/run.py ---
max_connections = {max_conn}
shared_buffers = 256MB
log_connections = off
log_disconnections = off
""")
    # md5 for the bench user: server logins cost the proxies microseconds,
    # not the milliseconds of SCRAM's 4096 PBKDF2 rounds.
    hba = os.path.join(c.datadir, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write(f"host all {USER} 127.0.0.1/32 md5\n" + rules)
    c.start()
    with c.admin_connect() as conn:
        conn.execute("SET password_encryption = 'md5'")
        conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"CREATE DATABASE {DBNAME} OWNER {USER}")
    run([pg_bin("pgbench"), "-i", "-q", "-s", str(SCALE), "-h", "127.0.0.1", "-p",
         str(c.port), "-U", USER, DBNAME], timeout=900, env=pg_env())


def machine_info():
    """benchlib's, with the versions of the two proxies compared."""
    info = benchlib.machine_info()
    info["pgbouncer"] = run([PGBOUNCER, "--version"], 30).stdout.splitlines()[0].strip()
    info["pgcutover"] = run([PGCUTOVER, "--version"], 30).stdout.strip()
    return info


def ensure_pgbouncer():
    if os.access(PGBOUNCER, os.X_OK):
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"{PGBOUNCER} is missing: apt-get install pgbouncer")
    say("installing pgbouncer (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "install", "-y", "-q", "pgbouncer"], timeout=600, env=env)


def raise_fd_limit():
    """Raise this process's fd limit (the proxies inherit it) to NOFILE, or
    to the hard limit when the hard limit cannot be raised."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    if soft != inf and soft < NOFILE:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (NOFILE, hard if hard == inf or hard > NOFILE else NOFILE))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def points(args):
    out = []
    for script in args.scripts:
        for proto in args.protocols:
            for clients in args.clients:
                out.append((script, proto, clients))
    return out


def skipped(kind, mode, proto):
    """Why a (proxy, pool mode, -M) combination is not run, or None."""
    return None


def start_proxies(args, cluster, workdir):
    """One PgBouncer and one pgcutover per pool mode, md5, equal settings."""
    proxies = {}
    for mode in args.modes:
        size = max(args.clients) + 4 if mode == "session" else args.txn_pool_size
        for kind in PROXIES:
            proxies[(kind, mode)] = Proxy(kind, mode, workdir, cluster.port, "md5", size,
                                          max(args.clients) + 100).start()
    return proxies


def serve(args, cluster, workdir):
    """--serve: the cluster and the proxies of the pgbench part, left running
    for experiments by hand (strace, perf) until Ctrl-C or the time is up."""
    proxies = start_proxies(args, cluster, workdir)
    say(f"PGPASSWORD={PASSWORD}; pgbench -h 127.0.0.1 -U {USER} -p PORT {DBNAME}")
    say(f"  direct             port {cluster.port}")
    for (kind, mode), px in proxies.items():
        say(f"  {kind:<10} {mode:<11} port {px.port}  pid {px.pid}  config {px.ini}")
    say(f"running for {args.serve} s (Ctrl-C ends it)")
    time.sleep(args.serve)


def bench_rounds(args, cluster, workdir, results):
    """The interleaved pgbench runs.  results[(target, mode, script, proto,
    clients)] = list of run dicts; target 'direct' has mode None."""
    max_clients = max(args.clients)
    proxies = start_proxies(args, cluster, workdir)
    # Warm-up: PostgreSQL's cache, and every proxy's server pool filled as far
    # as the largest point will use it, so that no measured run pays backend
    # forks that another does not.
    say("warm-up")
    r = pgbench(cluster.port, "select-only", "simple", 8, 3)
    if "error" in r:
        raise RuntimeError(f"direct warm-up failed: {r['error']}")
    for (kind, mode), px in proxies.items():
        r = pgbench(px.port, "select-only", "simple", max_clients, 2)
        if "error" in r:
            raise RuntimeError(f"warm-up through {px.name} failed: {r['error']}\n{px.log_tail()}")
    # (kind, mode, script, proto) -> (clients, error): a point that failed is
    # not retried, nor the same one at more clients.
    broken = {}
    pts = points(args)
    nruns = args.rounds * len(pts) * (1 + len(args.modes) * len(PROXIES))
    done, t_start = 0, time.monotonic()
    for rnd in range(args.rounds):
        order = PROXIES if rnd % 2 == 0 else tuple(reversed(PROXIES))
        for script, proto, clients in pts:
            plan = [("direct", None)] + [(k, m) for m in args.modes for k in order]
            for kind, mode in plan:
                done += 1
                key = (kind, mode, script, proto, clients)
                bad = broken.get((kind, mode, script, proto))
                if kind != "direct" and (skipped(kind, mode, proto)
                                         or (bad and clients >= bad[0])):
                    continue
                px = proxies.get((kind, mode))
                port = px.port if px else cluster.port
                r = pgbench(port, script, proto, clients, args.duration, px,
                            jobs_for(mode, proto, clients))
                results.setdefault(key, []).append(r)
                label = f"[{rnd + 1}/{args.rounds} {done}/{nruns}] {script} -M {proto} " \
                        f"c={clients} {kind}{'/' + mode if mode else ''}"
                if "error" in r and "tps" not in r:
                    say(f"{label}: FAILED: {r['error']}")
                    if kind != "direct":
                        bad = broken.get((kind, mode, script, proto))
                        if not bad or clients < bad[0]:
                            broken[(kind, mode, script, proto)] = (clients, r["error"])
                        if not px.alive():
                            raise RuntimeError(f"{px.name} died:\n{px.log_tail()}")
                else:
                    cpu = f", {r['cpu_us']:.1f} us CPU/txn" if "cpu_us" in r else ""
                    say(f"{label}: {r['tps']:.0f} tps, {r['lat']:.2f} ms{cpu}"
                        + (f" ({r['error']})" if "error" in r else ""))
        el = time.monotonic() - t_start
        say(f"round {rnd + 1} done after {el:.0f} s")
    for px in proxies.values():
        px.stop()
    return broken


# -- reporting ---------------------------------------------------------------------

def f_num(v, fmt="{:.0f}"):
    return "–" if v is None else fmt.format(v)


def f_ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def build_table(args, results, broken):
    head = ["pool mode", "script", "-M", "clients", "direct tps", "PgBouncer tps",
            "pgcutover tps", "**tps pgc/pgb**", "direct ms", "PgBouncer ms", "pgcutover ms",
            "PgBouncer µs CPU/txn", "pgcutover µs CPU/txn", "**CPU pgc/pgb**"]
    rows, summary = [], []
    for mode in args.modes:
        for script, proto, clients in points(args):
            d = results.get(("direct", None, script, proto, clients))
            b = results.get(("pgbouncer", mode, script, proto, clients))
            c = results.get(("pgcutover", mode, script, proto, clients))

            def cell(kind, runs, field, fmt):
                why = skipped(kind, mode, proto)
                if why:
                    return why
                bad = broken.get((kind, mode, script, proto))
                if bad and clients >= bad[0] and median_of(runs, field) is None:
                    return "fails"
                return f_num(median_of(runs, field), fmt)

            btps, ctps = median_of(b, "tps"), median_of(c, "tps")
            bcpu, ccpu = median_of(b, "cpu_us"), median_of(c, "cpu_us")
            rows.append([mode, SHORT[script], proto, str(clients),
                         f_num(median_of(d, "tps")), cell("pgbouncer", b, "tps", "{:.0f}"),
                         cell("pgcutover", c, "tps", "{:.0f}"), f_ratio(ctps, btps),
                         f_num(median_of(d, "lat"), "{:.2f}"),
                         cell("pgbouncer", b, "lat", "{:.2f}"),
                         cell("pgcutover", c, "lat", "{:.2f}"),
                         cell("pgbouncer", b, "cpu_us", "{:.1f}"),
                         cell("pgcutover", c, "cpu_us", "{:.1f}"), f_ratio(ccpu, bcpu)])
            if btps and ctps:
                summary.append((mode, script, proto, clients, ctps / btps,
                                ccpu / bcpu if bcpu and ccpu else None))
    return head, rows, summary


def targets_text(summary, rss):
    lines = []
    if summary:
        behind = [s for s in summary if s[4] < TARGET_TPS]
        lines.append(f"- tps ≥ PgBouncer's at every point: {len(summary) - len(behind)} of "
                     f"{len(summary)} points meet it; pgcutover/PgBouncer tps from "
                     f"{min(s[4] for s in summary):.2f} to {max(s[4] for s in summary):.2f} "
                     f"(median {statistics.median(s[4] for s in summary):.2f}).")
        high = [s for s in summary if s[0] == "transaction" and s[3] in (64, 256)]
        if high:
            ok = [s for s in high if s[4] >= TARGET_TPS_TXN_HIGH]
            lines.append(f"- ≥ {TARGET_TPS_TXN_HIGH}× at 64 and 256 clients in transaction "
                         f"pooling: {len(ok)} of {len(high)} points.")
        cpus = [s[5] for s in summary if s[5] is not None]
        if cpus:
            ok = [x for x in cpus if x <= TARGET_CPU]
            lines.append(f"- CPU per transaction ≤ {TARGET_CPU}× PgBouncer's: {len(ok)} of "
                         f"{len(cpus)} points; ratio from {min(cpus):.2f} to {max(cpus):.2f} "
                         f"(median {statistics.median(cpus):.2f}).")
    if rss and all(k in rss for k in PROXIES):
        top = max(n for n in rss["pgbouncer"] if n != "idle")
        per = {k: (rss[k][top] - rss[k]["idle"]) / top for k in PROXIES}
        verdict = "meets" if per["pgcutover"] <= per["pgbouncer"] else "misses"
        lines.append(f"- RSS per idle client ≤ PgBouncer's at {top} clients: {verdict} it "
                     f"({per['pgcutover']:.2f} vs {per['pgbouncer']:.2f} kB, ratio "
                     f"{f_ratio(per['pgcutover'], per['pgbouncer'])}).")
    return "\n".join(lines)


def rss_table(rss, counts):
    head = ["proxy", "RSS idle kB"]
    for n in counts:
        head += [f"RSS {n} clients kB", f"kB/client at {n}"]
    rows = []
    for k in PROXIES:
        if k not in rss:
            continue
        row = [k, str(rss[k]["idle"])]
        for n in counts:
            row += [str(rss[k][n]), f"{(rss[k][n] - rss[k]['idle']) / n:.2f}"]
        rows.append(row)
    if all(k in rss for k in PROXIES):
        row = ["**pgc/pgb**", f_ratio(rss["pgcutover"]["idle"], rss["pgbouncer"]["idle"])]
        for n in counts:
            row += [f_ratio(rss["pgcutover"][n], rss["pgbouncer"][n]),
                    f_ratio(rss["pgcutover"][n] - rss["pgcutover"]["idle"],
                            rss["pgbouncer"][n] - rss["pgbouncer"]["idle"])]
        rows.append(row)
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def write_report(path, info, args, argv, table, rss_md, targets, broken, cutover_out,
                 load):
    dirty = ("; **C sources or Makefile modified in the working tree:** "
             + ", ".join(info["dirty"])) if info["dirty"] else ""
    notes = [f"- {k}, {sc} `-M {p}` in {m} pooling, from {c} clients on: {e}"
             for (k, m, sc, p), (c, e) in broken.items()]
    if "transaction" in args.modes and "prepared" in args.protocols:
        notes.insert(0, "- `-M prepared` in transaction pooling runs with one pgbench thread per "
                        "client (`-j` = `-c`) through both proxies: pgbench prepares with a "
                        "blocking PQprepare, and a thread serving several clients would wait "
                        "for a server another of its clients holds. PgBouncer 1.18 has no "
                        "prepared-statement support in transaction pooling (1.21 added "
                        "`max_prepared_statements`); pgcutover renames each client's "
                        "statements to its own per server.")
    text = f"""# pgcutover benchmark — {info['date']}, commit {info['commit']}

- machine: {info['cpu']}, {info['cores']} cores, {info['mem_gb']} GB; Linux {info['kernel']}
- load average (1 min) before / after (this run's own load included): {load[0]:.2f} / {load[1]:.2f}
- {info['pg']}; {info['pgbouncer']}; {info['pgcutover']} (commit {info['commit']}{dirty})
- command: `bench/run.py{' ' + ' '.join(argv) if argv else ''}`; {args.rounds} round(s), pgbench -T {args.duration}
  per run, medians over the rounds; direct / PgBouncer / pgcutover back to back per point
- pgbench scale {SCALE}, `-n -j 2` (`-j 1` at one client); md5 client authentication on
  both proxies and on the server; pool size {max(args.clients) + 4} in session pooling (one
  server per client, so that no client queues), {args.txn_pool_size} in transaction pooling;
  PostgreSQL with fsync off, synchronous_commit off, shared_buffers 256MB
- CPU µs/txn: the proxy's utime + stime (/proc/PID/stat) over the run, logins and
  logouts of the pgbench clients included, divided by the transactions pgbench counted

## Throughput, latency and proxy CPU

{table}
{chr(10).join(notes) and chr(10) + chr(10).join(notes)}

## Memory per idle client

{rss_md or "(not measured)"}

Fresh proxies, transaction pooling, trust authentication; clients log in over raw
sockets (StartupMessage to ReadyForQuery) and stay idle; kB/client = (RSS with N clients −
RSS idle) / N.

## Against the targets of issue 6

{targets or "(no comparable point)"}
"""
    if cutover_out is not None:
        text += f"\n## Cutover (bench/cutover.py)\n\n```\n{cutover_out.rstrip()}\n```\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run_cutover(args):
    script = os.path.join(HERE, "cutover.py")
    if not os.path.exists(script):
        say("bench/cutover.py not found: cutover skipped")
        return None
    argv = [sys.executable, script] + (["--runs", "1"] if args.quick else [])
    say(f"cutover: {' '.join(argv[1:])}")
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=args.cutover_timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return out + f"\n(timed out after {args.cutover_timeout} s)"
    say(p.stdout)
    return p.stdout + ("" if p.returncode == 0 else f"\n(exit status {p.returncode})")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="a few points (extended protocol, 16 and 64 clients), -T 3, 1 round")
    g.add_argument("--full", action="store_true", help="every point, 3 rounds")
    ap.add_argument("--rounds", type=int, help="rounds (default 1, --full 3)")
    ap.add_argument("--duration", type=int, help="pgbench -T per run (default 5, --quick 3)")
    ap.add_argument("--clients", help="comma list (default 1,16,64,256; --quick 16,64)")
    ap.add_argument("--scripts", default="select-only,tpcb-like")
    ap.add_argument("--protocols", help="comma list of -M (default simple,extended,prepared; "
                                        "--quick extended)")
    ap.add_argument("--modes", default="session,transaction")
    ap.add_argument("--txn-pool-size", type=int, default=20)
    ap.add_argument("--idle-clients", default="1000,10000")
    ap.add_argument("--no-rss", action="store_true", help="skip the idle-client RSS part")
    ap.add_argument("--no-pgbench", action="store_true", help="skip the pgbench part")
    ap.add_argument("--cutover", action="store_true", help="end with bench/cutover.py")
    ap.add_argument("--scale", action="store_true",
                    help="only the cutover at scale: run bench/scale.py (SCALE_ARGS passes "
                         "its options) and nothing else")
    ap.add_argument("--cutover-timeout", type=int, default=1200)
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    ap.add_argument("--serve", type=int, metavar="SECONDS",
                    help="only start the cluster and the proxies, print their ports and "
                         "keep them running this long (for strace/perf by hand)")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (3 if args.full else 1)
    args.duration = args.duration or (3 if args.quick else 5)
    args.clients = [int(x) for x in (args.clients or ("16,64" if args.quick
                                                      else "1,16,64,256")).split(",")]
    args.protocols = (args.protocols or ("extended" if args.quick
                                         else "simple,extended,prepared")).split(",")
    args.scripts = args.scripts.split(",")
    args.modes = args.modes.split(",")
    args.idle_clients = sorted(int(x) for x in args.idle_clients.split(","))
    for s in args.scripts:
        if s not in SHORT:
            ap.error(f"unknown script {s}")
    for m in args.modes:
        if m not in ("session", "transaction"):
            ap.error(f"unknown pool mode {m}")
    for p in args.protocols:
        if p not in ("simple", "extended", "prepared"):
            ap.error(f"unknown protocol {p}")
    return args


def main(argv):
    args = parse_args(argv)
    if not os.access(PGCUTOVER, os.X_OK):
        say(f"pgcutover not found at {PGCUTOVER}: run `make` first")
        return 2
    if args.scale:
        # the cutover at scale has its own clusters, table and plot (bench/scale.py)
        extra = os.environ.get("SCALE_ARGS", "").split()
        return subprocess.call([sys.executable, os.path.join(HERE, "scale.py")] + extra)
    signal.signal(signal.SIGTERM, on_sigterm)
    ensure_pgbouncer()
    nofile = raise_fd_limit()
    if not args.no_rss and nofile < max(args.idle_clients) + 200:
        say(f"fd limit {nofile} is too low for {max(args.idle_clients)} idle clients")
        return 2
    info = machine_info()
    load0 = os.getloadavg()[0]
    say(f"pgcutover bench: commit {info['commit']}, {info['cpu']} x{info['cores']}, "
        f"load {load0:.2f}; {info['pg']}; {info['pgbouncer']}")
    if info["dirty"]:
        say(f"note: modified in the working tree: {', '.join(info['dirty'])}")
    max_clients = max(args.clients)
    # Every pool can be full at once (both proxies of each mode keep their
    # servers between runs) while pgbench also runs directly.
    max_conn = 2 * (max_clients + 4) + 2 * args.txn_pool_size + max_clients + 30
    workdir = tempfile.mkdtemp(prefix="pgcutover-bench-run-", dir="/tmp")
    cluster = None
    results, broken, rss = {}, {}, {}
    t0 = time.monotonic()
    try:
        os.chmod(workdir, 0o755)
        # A private copy: a `make` elsewhere during the run cannot swap the
        # binary under the proxies, and perf finds its symbols.
        shutil.copy2(PGCUTOVER, os.path.join(workdir, "pgcutover"))
        with open(os.path.join(workdir, "userlist.txt"), "w") as f:
            f.write(f'"{USER}" "{PASSWORD}"\n"admin" "admin_pw"\n')
        chown_pg(workdir, recursive=True)
        say(f"starting PostgreSQL (max_connections {max_conn}) and pgbench -i -s {SCALE}")
        cluster = Cluster("bench")
        setup_cluster(cluster, max_conn)
        if args.serve:
            serve(args, cluster, workdir)
            return 0
        if not args.no_pgbench:
            broken = bench_rounds(args, cluster, workdir, results)
        if not args.no_rss:
            say(f"idle clients: {', '.join(map(str, args.idle_clients))}")
            for kind in PROXIES:
                rss[kind] = measure_rss(kind, workdir, cluster.port, args.idle_clients)
    except (KeyboardInterrupt, Interrupted):
        say("interrupted: cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for px in list(LIVE):
            px.stop()
        if cluster is not None:
            cluster.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, on_sigterm)
    load1 = os.getloadavg()[0]
    say(f"measured in {time.monotonic() - t0:.0f} s")
    cutover_out = None
    if args.cutover:
        try:
            cutover_out = run_cutover(args)
        except (KeyboardInterrupt, Interrupted):
            say("interrupted")
            return 130

    head, rows, summary = build_table(args, results, broken)
    table = md_table(head, rows) if rows else "(pgbench part skipped)"
    rss_md = rss_table(rss, args.idle_clients) if rss else ""
    targets = targets_text(summary, rss)
    say()
    say(table)
    if rss_md:
        say()
        say(rss_md)
    say()
    say(targets)
    if not args.no_write:
        path = results_path(f"{datetime.date.today().isoformat()}-{info['commit']}")
        write_report(path, info, args, argv, table, rss_md, targets, broken, cutover_out,
                     (load0, load1))
        say(f"\nwritten to {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the benchmarks (bench/*.py) share, so that each script holds only
what it measures.

Importing it puts tests/integration on sys.path, for the clusters, proxies
and pgbench wrappers the integration tests use (pgutil, proxyutil,
replication), and makes PGCUTOVER_BIN default to this tree's
build/pgcutover, which those modules and the scripts started from here
read.

    output      say, fmt, md_table, median_of, results_path, machine_info
    processes   run, interrupt_on_sigterm, proc_cpu_ticks, cpu_us
    setup       make_tmp, write_userlist, pgcutover_ready, start_pair, cleanup,
                add_switch_args, stop_proxy
    pgbench     pgbench_summary (its closing report); commit_gaps (from
                the per-transaction logs, PgbenchResult.completion_times)
    SWITCH      switch_mid_run, send_switch, switch_problems
    idle        startup_packet, open_idle_clients, close_clients: clients
                logged in over raw sockets that stay idle
"""

import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
os.environ.setdefault("PGCUTOVER_BIN", os.path.join(REPO, "build", "pgcutover"))

from pgutil import PASSWORDS, boot_pair, pg_bin       # noqa: E402

# proxyutil and replication (which imports pytest) are imported by the
# functions that use them: run.py and ab.py, which start their own proxies,
# need neither.

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- output -----------------------------------------------------------------------

def say(msg=""):
    print(msg, flush=True)


def fmt(v, unit=""):
    """A measure rounded for a table line; "-" when there is none."""
    return "-" if v is None else f"{v:.0f}" + (f" {unit}" if unit else "")


def md_table(head, rows):
    """A Markdown table: the first three columns left-aligned, the numbers right."""
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def median_of(rows, key):
    """Median of row[key] over the rows that have it, or None."""
    vals = [r[key] for r in rows or () if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def results_path(stem):
    """bench/results/<stem>.md, or <stem>-2.md, -3... when it exists: a
    result file never replaces an earlier one."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    base = os.path.join(RESULTS_DIR, stem)
    path, i = base + ".md", 2
    while os.path.exists(path):
        path, i = f"{base}-{i}.md", i + 1
    return path


def machine_info(sources=("*.c", "*.h", "Makefile")):
    """What a result file says about the run: date, CPU, cores, memory,
    kernel, PostgreSQL, the commit, and the files matching `sources` that
    differ from it (numbers from a modified tree are not the commit's)."""
    info = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f
                                if ln.startswith("model name")), "?")
    except OSError:
        info["cpu"] = "?"
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as f:
        info["mem_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024)
    info["kernel"] = os.uname().release
    info["pg"] = run([pg_bin("postgres"), "--version"], 30).stdout.strip()
    git = ["git", "-C", REPO]
    info["commit"] = run(git + ["rev-parse", "--short", "HEAD"], 30).stdout.strip()
    dirty = run(git + ["status", "--porcelain", "--"] + list(sources), 30,
                check=False).stdout.split("\n")
    info["dirty"] = [ln[3:] for ln in dirty if ln.strip()]
    return info


# -- processes --------------------------------------------------------------------

def run(argv, timeout, env=None, check=True, **kw):
    """subprocess.run with a timeout, text output, stdout+stderr captured."""
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout[-2000:]}")
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm():
    """SIGTERM ends the script as Ctrl-C does, through its `finally`: the
    clusters and proxies it started go away with it."""
    signal.signal(signal.SIGTERM, _interrupt)


def proc_cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # comm (field 2) may hold spaces: split after its closing parenthesis.
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_us(ticks, txns):
    """CPU microseconds per transaction, from the clock ticks a process used."""
    return ticks / CLK_TCK / txns * 1e6


# -- setup ------------------------------------------------------------------------

def make_tmp(prefix="pgcutover-bench-"):
    """A temporary directory the proxies (run as postgres) can read."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(tmp, 0o755)
    return tmp


def write_userlist(directory):
    """The proxies' userlist for a benchmark over pgutil's clusters: the
    application user alice, the control user pgcutover, the console's admin."""
    path = os.path.join(directory, "userlist.txt")
    with open(path, "w") as f:
        f.write(f'"alice" "{PASSWORDS["alice"]}"\n"pgcutover" "{PASSWORDS["pgcutover"]}"\n'
                '"admin" "admin_pw"\n')
    return path


def pgcutover_ready():
    """Whether there is a pgcutover to measure; says where it was looked for when not."""
    import proxyutil

    binary = proxyutil.pgcutover_bin()
    if os.access(binary, os.X_OK):
        return True
    say(f"pgcutover not found at {binary}: run `make` first")
    return False


def start_pair(clusters, tmp):
    """Boot a source and a target cluster (pgutil.boot_pair: the roles, and
    logical replication allowed) and return the ClusterEnv that proxies in
    front of them are made with, its userlist in tmp."""
    import proxyutil

    boot_pair(clusters[0], clusters[1])
    return proxyutil.ClusterEnv(clusters[0], clusters[1], write_userlist(tmp))


def cleanup(clusters, tmp):
    """The end of a run, however it ends: the clusters stopped and removed,
    and tmp.  A second Ctrl-C would leave them behind, so it is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for c in clusters:
        c.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


def stop_proxy(proxy, out):
    """Stop and remove a run's proxy (a proxyutil.Proxy, or None if it was
    not made); when it reported problems or the run failed, the end of its
    log goes to out["log_tail"], for --verbose."""
    if proxy is not None and proxy.proc is not None:
        probs = proxy.stop()
        if probs or not out.get("ok"):
            out.setdefault("log_tail", "\n".join(proxy.log().splitlines()[-30:]))
        proxy.cleanup()


def add_switch_args(ap, clients, seconds, switch_at):
    """The options of a benchmark that switches under pgbench, with its defaults."""
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=clients)
    ap.add_argument("--seconds", type=int, default=seconds)
    ap.add_argument("--switch-at", type=float, default=switch_at)


# -- pgbench ----------------------------------------------------------------------

PGBENCH_RX = {
    "txns": re.compile(r"number of transactions actually processed: (\d+)"),
    "failed": re.compile(r"number of failed transactions: (\d+)"),
    "lat": re.compile(r"latency average = ([\d.]+) ms"),
    "tps": re.compile(r"tps = ([\d.]+) \(without initial connection time\)"),
}


def pgbench_summary(stdout):
    """The numbers of pgbench's closing report that it printed."""
    return {k: float(m.group(1)) for k, rx in PGBENCH_RX.items() if (m := rx.search(stdout))}


def commit_gaps(times, lo, hi):
    """Longest gap between consecutive completions (epoch seconds) that
    overlaps [lo, hi], and the longest one elsewhere (the steady state, to
    compare with): the time the clients went without a commit."""
    times = sorted(times)
    around, elsewhere = 0.0, 0.0
    for a, b in zip(times, times[1:]):
        if b >= lo and a <= hi:
            around = max(around, b - a)
        else:
            elsewhere = max(elsewhere, b - a)
    return around, elsewhere


# -- SWITCH -----------------------------------------------------------------------

def send_switch(admin_port, command):
    """Send a SWITCH command: (its row or None, the console's error message
    or None, the wall clock just before and just after, for commit_gaps())."""
    from replication import AdminError, admin

    t0 = time.time()
    try:
        row, err = admin(admin_port, command)[0], None
    except AdminError as e:
        row, err = None, str(e)
    return row, err, t0, time.time()


def switch_mid_run(pb, admin_port, db, switch_at, to=None, lag=False):
    """Start pb (a replication.Pgbench with log=True) and SWITCH db [TO to]
    after switch_at seconds; the caller then waits for pb.  A dict: "early",
    pgbench's output when it ended before the switch (nothing else then);
    otherwise "row" (None when the SWITCH failed, and "error" says so),
    "t0" and "t1" around it and, with lag, "lag_bytes" from SHOW LAG just
    before it."""
    from replication import admin

    pb.start()
    time.sleep(switch_at)
    if pb.proc.poll() is not None:
        return {"early": pb.wait().stdout}
    out = {}
    if lag:
        v = admin(admin_port, f"SHOW LAG {db}")[0]["lag_bytes"]
        out["lag_bytes"] = int(v) if v is not None else None
    command = f"SWITCH {db}" + (f" TO {to}" if to else "")
    out["row"], err, out["t0"], out["t1"] = send_switch(admin_port, command)
    if err is not None:
        out["error"] = f"SWITCH{' TO ' + to if to else ''} failed: {err}"
    return out


def switch_problems(res, rows, committed, row, side="target"):
    """What makes a switch under pgbench a failure: pgbench's own errors, a
    side holding other than one history row per committed transaction, a
    SWITCH that did not report ok."""
    problems = []
    if res.rc != 0 or res.failed or res.aborted:
        problems.append(f"pgbench rc {res.rc}, failed {res.failed}, aborted {len(res.aborted)}")
    if rows != committed:
        problems.append(f"{side} has {rows} history rows for {committed} committed")
    if not row or row["result"] != "ok":
        problems.append("switch not ok")
    return problems


# -- idle clients over raw sockets --------------------------------------------------

def startup_packet(user, dbname, appname=None):
    """A protocol 3.0 StartupMessage."""
    body = f"user\0{user}\0database\0{dbname}\0"
    if appname:
        body += f"application_name\0{appname}\0"
    body = (body + "\0").encode()
    return struct.pack("!II", len(body) + 8, 196608) + body


def read_until_ready(s):
    """Read a login's answer until ReadyForQuery; trust authentication only."""
    buf = b""
    while True:
        while len(buf) >= 5:
            typ, n = buf[0:1], struct.unpack("!I", buf[1:5])[0]
            if len(buf) < 1 + n:
                break
            body, buf = buf[5:1 + n], buf[1 + n:]
            if typ == b"E":
                raise RuntimeError("login refused: " + body.replace(b"\0", b" ").decode(
                    errors="replace"))
            if typ == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                raise RuntimeError("login asked for a password (expected trust)")
            if typ == b"Z":
                return
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed during login")
        buf += chunk


def open_idle_clients(port, startup, total, socks, batch=200, timeout=30):
    """Log in clients with `startup` (StartupMessage .. ReadyForQuery) until
    `socks` holds `total` of them; `batch` logins are in flight at a time."""
    while len(socks) < total:
        pending = []
        try:
            for _ in range(min(batch, total - len(socks))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                pending.append(s)
                s.settimeout(timeout)
                s.connect(("127.0.0.1", port))
                s.sendall(startup)
            for s in pending:
                read_until_ready(s)
        except BaseException:
            for s in pending:
                s.close()
            raise
        socks.extend(pending)


def close_clients(socks):
    """Terminate and close every client of socks, and empty it."""
    for s in socks:
        try:
            s.sendall(b"X\0\0\0\4")
        except OSError:
            pass
        s.close()
    socks.clear()

#!/usr/bin/python3
"""VERIFY against the two comparisons a user would reach for, in the same run.

Not part of `make test`.  Starts two throwaway PostgreSQL 15 clusters, and a
database `vbench` on each filled by the same `pgbench -i -s SCALE` (its data
is deterministic: both sides hold the same rows, with no replication to
wait for; pgcutover runs with lag_method = none), then measures, one after
the other on the idle pair:

  floor     `SELECT count(*)` of every table, both sides in parallel: the
            physical floor of reading the data once
  hand      `md5(string_agg(t::text, '' ORDER BY key))` of every table,
            both sides in parallel: the comparison written by hand
  verify    VERIFY vbench of the identical database, to its end
  diffs     --diffs rows of pgbench_accounts changed on the target
            (scattered), then VERIFY again: every one must be found

For each: the wall time, rows per second, and the CPU seconds each server
used meanwhile (utime + stime from /proc: the postmaster's children alive,
and those that ended, parallel workers included; background processes add
a little noise).

    /usr/bin/python3 bench/verify.py [--scale 100] [--jobs 2] [--diffs 100]
        [--rounds 1]

Targets (issue 13): VERIFY of an identical database within 2x the floor and
faster than the hand-made comparison; with the differences, every one found,
within 3x the floor.  Exit status 0 when every difference was found and
none was invented.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (cleanup, interrupt_on_sigterm, make_tmp, pgcutover_ready, say,
                      write_userlist)
import proxyutil                                      # noqa: E402
from pgutil import PASSWORDS, Cluster, boot_pair, pg_bin  # noqa: E402
from replication import admin, admin_connect, admin_query  # noqa: E402

DB = "vbench"
TABLES = {"pgbench_accounts": "aid", "pgbench_branches": "bid", "pgbench_tellers": "tid",
          "pgbench_history": "tid, bid, aid, delta, mtime"}


def server_cpu(cluster):
    """The CPU seconds a whole server has used: the postmaster, its children
    that ended (reaped: in the postmaster's cutime and cstime, so parallel
    workers and closed backends count) and those alive."""
    with open(os.path.join(cluster.datadir, "postmaster.pid")) as f:
        pm = int(f.readline())
    tck = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pm}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15]) / tck
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == pm:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pm:
            total += (int(fields[11]) + int(fields[12])) / tck
    return total


class ServerCpu:
    """CPU seconds each server used over a with-block."""

    def __init__(self, clusters):
        self.clusters = clusters
        self.used = {}

    def __enter__(self):
        self.before = {n: server_cpu(c) for n, c in self.clusters.items()}
        return self

    def __exit__(self, *exc):
        self.used = {n: server_cpu(c) - self.before[n] for n, c in self.clusters.items()}


def fill(cluster, scale):
    with cluster.admin_connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB} OWNER alice")
    env = dict(os.environ, PGPASSWORD=PASSWORDS["alice"])
    subprocess.run([pg_bin("pgbench"), "-i", "-s", str(scale), "-q", "-h", "127.0.0.1",
                    "-p", str(cluster.port), "-U", "alice", DB], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    with cluster.admin_connect(dbname=DB) as c:
        c.execute("VACUUM ANALYZE")


def per_side(clusters, sql_of):
    """Run sql_of(table) for every table, sequentially on each side, both
    sides at once: (wall seconds, {side: backend cpu seconds}, {side: answers})."""
    out = {}
    conns = {n: c.admin_connect(dbname=DB) for n, c in clusters.items()}

    def side(name, c):
        out[name] = [c.execute(sql_of(t, k)).fetchone()[0] for t, k in TABLES.items()]
    threads = [threading.Thread(target=side, args=(n, c)) for n, c in conns.items()]
    with ServerCpu(clusters) as cpu:
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    for c in conns.values():
        c.close()
    return wall, cpu.used, out


def run_verify(proxy, clusters):
    """VERIFY to its end: (wall seconds, cpu by side, SHOW VERIFY rows, diffs)."""
    with admin_connect(proxy.admin_port) as conn, ServerCpu(clusters) as cpu:
        t0 = time.monotonic()
        admin_query(conn, f"VERIFY {DB}")
        while True:
            rows = admin_query(conn, f"SHOW VERIFY {DB}")
            if rows and all(r["state"] not in ("queued", "running") for r in rows):
                break
            time.sleep(0.02)
        wall = time.monotonic() - t0
        time.sleep(0.2)  # VERIFY's connections close: their backends end
    diffs = admin(proxy.admin_port, f"SHOW VERIFY DIFFS {DB}")
    return wall, cpu.used, rows, diffs


def line(what, wall, cpu, rows, floor):
    return (f"{what:<10}{wall:>9.2f}{rows / wall / 1e6:>10.2f}{cpu['source']:>10.2f}"
            f"{cpu['target']:>10.2f}{wall / floor:>9.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--diffs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()

    if not pgcutover_ready():
        return 2
    interrupt_on_sigterm()
    tmp = make_tmp()
    source, target = Cluster("bench-source"), Cluster("bench-target")
    clusters = {"source": source, "target": target}
    proxy = None
    ok = True
    try:
        boot_pair(source, target)
        t0 = time.monotonic()
        threads = [threading.Thread(target=fill, args=(c, args.scale)) for c in (source, target)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with source.admin_connect(dbname=DB) as c:
            nrows = sum(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
        say(f"machine: {os.cpu_count()} cores; pgbench -i -s {args.scale} on both sides "
            f"({nrows} rows, {time.monotonic() - t0:.0f} s); verify_jobs {args.jobs}")
        env = proxyutil.ClusterEnv(source, target, write_userlist(tmp))
        proxy = proxyutil.Proxy(env, databases={DB: {
            "source": source.proxy_target(DB), "target": target.proxy_target(DB),
            "lag_method": "none", "control_user": "pgcutover",
            "verify_jobs": str(args.jobs)}}, name="bench-verify")
        proxy.start()
        say(f"{'':<10}{'wall s':>9}{'Mrows/s':>10}{'cpu src':>10}{'cpu tgt':>10}"
            f"{'/floor':>10}")
        for r in range(args.rounds):
            floor, cpu, counts = per_side(clusters, lambda t, k: f"SELECT count(*) FROM {t}")
            assert counts["source"] == counts["target"], counts
            say(line("floor", floor, cpu, nrows, floor))
            wall, cpu, sums = per_side(
                clusters, lambda t, k: f"SELECT md5(string_agg(x::text, '' ORDER BY {k})) "
                                       f"FROM {t} x")
            say(line("hand", wall, cpu, nrows, floor) +
                ("" if sums["source"] == sums["target"] else "  (differ!)"))
            wall, cpu, rows, diffs = run_verify(proxy, clusters)
            bad = [r for r in rows if r["state"] != "done" or r["rows_missing"] != "0"
                   or r["rows_extra"] != "0" or r["rows_different"] != "0"]
            say(line("verify", wall, cpu, nrows, floor) +
                (f"  {len(diffs)} differences invented: {bad}" if diffs or bad else ""))
            ok = ok and not diffs and not bad
            naccounts = 100000 * args.scale
            keys = sorted(random.sample(range(1, naccounts + 1), args.diffs))
            with target.admin_connect(dbname=DB) as c:
                c.execute("UPDATE pgbench_accounts SET abalance = abalance + 1 "
                          "WHERE aid = ANY(%s)", (keys,))
            wall, cpu, rows, diffs = run_verify(proxy, clusters)
            found = sorted(int(d["key"].strip("()")) for d in diffs
                           if d["table"] == "public.pgbench_accounts" and d["kind"] == "different")
            say(line("diffs", wall, cpu, nrows, floor) +
                f"  {len(found)} of {len(keys)} found"
                + ("" if found == keys and len(diffs) == len(keys) else "  MISMATCH"))
            ok = ok and found == keys and len(diffs) == len(keys)
            with target.admin_connect(dbname=DB) as c:
                c.execute("UPDATE pgbench_accounts SET abalance = abalance - 1 "
                          "WHERE aid = ANY(%s)", (keys,))
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if proxy is not None:
            proxy.stop()
            proxy.cleanup()
        cleanup((source, target), tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

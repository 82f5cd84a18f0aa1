#!/usr/bin/python3
"""Shadow reads benchmark: what sampling costs the clients.

Not part of `make test`.  Starts two throwaway PostgreSQL 15 clusters with
logical replication between them (tests/integration/pgutil.py and
replication.py: a pgbench database, scale 1, replicated source -> target),
and three pgcutover processes in front of them, identical but for `shadow`
(0, 0.01 and 1), in transaction pooling with lag_method = lsn.  For each
round, each pgbench script (select-only and tpcb-like, -M simple) and each
client count (16, 64), pgbench runs through each of the three in turn (the
order rotates between rounds, so that the drift of a shared machine falls on
all alike).  The table shows per point the median tps, average latency and
pgcutover CPU per transaction of each, the ratios to shadow = 0 with their
spread over the rounds, and what the shadow reads did meanwhile (samples
matched, differed, inconclusive, dropped).

    /usr/bin/python3 bench/shadow.py [--rounds 3] [--duration 8] [--clients 16,64]

Target (issue 14): tps with shadow = 0.01 within 3% of shadow = 0; with
shadow = 1, report the cost.  Writes bench/results/<date>-shadow.md (-2, -3
... when taken) unless --no-write; the commit is in the file.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (REPO, cpu_us, make_tmp, md_table, pgbench_summary, proc_cpu_ticks,
                      results_path, say, write_userlist)
import proxyutil                                      # noqa: E402
from pgutil import PASSWORDS, Cluster, boot_pair, pg_bin  # noqa: E402
from replication import ReplicatedDB, admin          # noqa: E402
from run import machine_info                          # noqa: E402

RATES = ("0", "0.01", "1")
DB = "bench_shadow"


def pgbench(port, script, clients, duration, pid):
    env = dict(os.environ, PGPASSWORD=PASSWORDS["alice"])
    argv = [pg_bin("pgbench"), "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "alice",
            "-M", "simple", "-b", script, "-c", str(clients), "-j", "2", "-T", str(duration), DB]
    before = proc_cpu_ticks(pid)
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=duration + 120)
    after = proc_cpu_ticks(pid)
    out = pgbench_summary(p.stdout)
    if p.returncode != 0 or "tps" not in out:
        return {"error": p.stdout[-400:]}
    out["cpu_us"] = cpu_us(after - before, out["txns"])
    return out


def shadow_totals(proxy):
    rows = admin(proxy.admin_port, f"SHOW SHADOW {DB}")
    return {k: sum(int(r[k]) for r in rows)
            for k in ("samples", "matched", "differed", "inconclusive", "dropped")}


def main(argv):
    ap = argparse.ArgumentParser(description="shadow reads: cost to the clients")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--clients", default="16,64")
    ap.add_argument("--scripts", default="select-only,tpcb-like")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    clients = [int(x) for x in args.clients.split(",")]
    scripts = args.scripts.split(",")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
    info = machine_info()
    load0 = os.getloadavg()[0]
    say(f"shadow bench: commit {info['commit']}, {info['cpu']} x{info['cores']}, load {load0:.2f}")
    tmp = make_tmp("pgcutover-bench-shadow-")
    source, target = Cluster("source"), Cluster("target")
    proxies = {}
    res = {}
    shadow = {}
    try:
        carol = boot_pair(source, target)
        env = proxyutil.ClusterEnv(source, target, write_userlist(tmp), carol)
        db = ReplicatedDB(source, target, DB).create()
        for rate in RATES:
            p = proxyutil.Proxy(env, settings={
                "pool_mode": "transaction", "default_pool_size": "20",
                "max_client_conn": str(max(clients) + 50), "lag_method": "lsn"},
                databases={DB: db.section("lsn", shadow=rate, fence="off")},
                name=f"bench-shadow-{rate}")
            p.settings["log_file"] = os.path.join(p.dir, "log")
            p.write_config()
            proxies[rate] = p.start()
        say("warm-up")
        for rate, p in proxies.items():
            pgbench(p.port, "select-only", max(clients), 2, p.pid)
        for rnd in range(args.rounds):
            order = RATES[rnd % 3:] + RATES[:rnd % 3]
            for script in scripts:
                for c in clients:
                    for rate in order:
                        p = proxies[rate]
                        before = shadow_totals(p)
                        r = pgbench(p.port, script, c, args.duration, p.pid)
                        after = shadow_totals(p)
                        res.setdefault((script, c, rate), []).append(r)
                        d = shadow.setdefault((script, c, rate), {})
                        for k in after:
                            d[k] = d.get(k, 0) + after[k] - before[k]
                        say(f"[{rnd + 1}/{args.rounds}] {script} c={c} shadow={rate}: " +
                            (f"{r['tps']:.0f} tps, {r['lat']:.2f} ms, {r['cpu_us']:.1f} us CPU/txn"
                             if "tps" in r else f"FAILED {r['error']}"))
    except KeyboardInterrupt:
        return 130
    finally:
        for p in proxies.values():
            p.stop()
            p.cleanup()
        for c in (source, target):
            c.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()[0]

    head = ["script", "clients", "shadow", "tps", "tps / shadow 0 (min-max)", "latency ms",
            "latency / shadow 0", "us CPU/txn", "CPU / shadow 0", "sampled", "matched",
            "differed", "inconclusive", "dropped"]
    rows = []
    for script in scripts:
        for c in clients:
            base = [r for r in res.get((script, c, "0"), []) if "tps" in r]
            for rate in RATES:
                runs = [r for r in res.get((script, c, rate), []) if "tps" in r]
                if not runs or not base:
                    rows.append([script, str(c), rate] + ["fails"] * 11)
                    continue
                tr = [x["tps"] / b["tps"] for x, b in zip(runs, base)]
                lr = [x["lat"] / b["lat"] for x, b in zip(runs, base)]
                cr = [x["cpu_us"] / b["cpu_us"] for x, b in zip(runs, base)]
                s = shadow.get((script, c, rate), {})
                rows.append([script, str(c), rate,
                             f"{statistics.median(x['tps'] for x in runs):.0f}",
                             f"{statistics.median(tr):.3f} ({min(tr):.2f}-{max(tr):.2f})",
                             f"{statistics.median(x['lat'] for x in runs):.2f}",
                             f"{statistics.median(lr):.3f}",
                             f"{statistics.median(x['cpu_us'] for x in runs):.1f}",
                             f"{statistics.median(cr):.3f}",
                             str(s.get("samples", 0)), str(s.get("matched", 0)),
                             str(s.get("differed", 0)), str(s.get("inconclusive", 0)),
                             str(s.get("dropped", 0))])
    table = md_table(head, rows)
    say()
    say(table)
    if not args.no_write:
        path = results_path(f"{info['date'][:10]}-shadow")
        with open(path, "w") as f:
            f.write(f"# Shadow reads: cost to the clients, {info['date']}\n\n")
            f.write(f"- machine: {info['cpu']} x{info['cores']}, {info['kernel']}; {info['pg']}; "
                    f"load {load0:.2f} before, {load1:.2f} after (a shared machine)\n")
            f.write(f"- commit {info['commit']}{', modified' if info['dirty'] else ''}; source and "
                    f"target PostgreSQL on this machine, logical replication, pgbench scale 1\n")
            f.write(f"- three pgcutover, shadow = 0 / 0.01 / 1, transaction pooling, pool 20, "
                    f"lag_method lsn; pgbench -M simple -T {args.duration}, {args.rounds} rounds "
                    f"(order rotates), medians; ratios are per round against shadow = 0\n")
            f.write("- sampled .. dropped: the shadow reads done during those runs (all rounds)\n")
            f.write("- tpcb-like runs every statement inside BEGIN ... END with writes: it has no "
                    "read-only transaction to sample, so its rows measure the per-message check "
                    "alone, and the machine's noise\n")
            f.write(f"- command: `bench/shadow.py {' '.join(argv)}`\n\n")
            f.write(table + "\n")
        say(f"\nwritten to {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

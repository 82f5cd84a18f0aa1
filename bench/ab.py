#!/usr/bin/python3
"""A/B of two pgcutover builds on the data path, in one run.

    make && /usr/bin/python3 bench/ab.py --baseline /path/to/old/pgcutover
    /usr/bin/python3 bench/ab.py --baseline OLD --rounds 7 --duration 10 --clients 16,64

Both builds run side by side in front of one throwaway PostgreSQL cluster
(bench/run.py's: pgbench -i at its scale, md5 server logins), with the same
configuration, as the postgres user.  For each round and each point
(pgbench script x client count, -M simple, one pool mode) pgbench runs
through A, then through B (the order alternates between rounds, so that the
drift of a shared machine falls on both alike).  The table shows, per point,
the median tps and proxy CPU per transaction of each build and the ratio
B/A, with the spread of the ratios over the rounds; a ratio within the
spread of the noise means "no difference".

Not part of `make test`.  Writes bench/results/<date>-ab-<commit>.md unless
--no-write.
"""

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import REPO, md_table, results_path, say  # noqa: E402
import run as benchrun  # noqa: E402  (bench/run.py: cluster, proxies, pgbench)
from run import (LIVE, PGCUTOVER, Cluster, Interrupted, Proxy, chown_pg,  # noqa: E402
                 machine_info, on_sigterm, pgbench, raise_fd_limit, setup_cluster)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="A/B of two pgcutover builds (pgbench).")
    ap.add_argument("--baseline", required=True, help="the A build (the binary before)")
    ap.add_argument("--candidate", default=PGCUTOVER, help="the B build (default build/pgcutover)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=8, help="pgbench -T per run")
    ap.add_argument("--clients", default="16")
    ap.add_argument("--scripts", default="select-only,tpcb-like")
    ap.add_argument("--mode", default="transaction", choices=("session", "transaction"))
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    a.clients = [int(x) for x in a.clients.split(",")]
    a.scripts = a.scripts.split(",")
    return a


def start(label, binary, args, workdir, cluster):
    """One pgcutover of build 'label' (a private copy of its binary)."""
    sub = os.path.join(workdir, label)
    os.makedirs(sub)
    shutil.copy2(os.path.join(workdir, "userlist.txt"), os.path.join(sub, "userlist.txt"))
    dst = os.path.join(sub, "pgcutover")
    shutil.copy2(binary, dst)
    size = max(args.clients) + 4 if args.mode == "session" else args.pool_size
    px = Proxy("pgcutover", args.mode, sub, cluster.port, "md5", size, max(args.clients) + 100)
    px.name = f"pgcutover-{label}"
    px.argv[0] = dst
    chown_pg(sub, recursive=True)
    return px.start()


def main(argv):
    args = parse_args(argv)
    for b in (args.baseline, args.candidate):
        if not os.access(b, os.X_OK):
            say(f"not an executable: {b}")
            return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    raise_fd_limit()
    info = machine_info()
    load0 = os.getloadavg()[0]
    say(f"pgcutover A/B: B = commit {info['commit']}, {info['cpu']} x{info['cores']}, "
        f"load {load0:.2f}")
    workdir = tempfile.mkdtemp(prefix="pgcutover-bench-ab-", dir="/tmp")
    cluster = None
    res = {}  # (label, script, clients) -> [run dicts]
    try:
        os.chmod(workdir, 0o755)
        with open(os.path.join(workdir, "userlist.txt"), "w") as f:
            f.write(f'"{benchrun.USER}" "{benchrun.PASSWORD}"\n"admin" "admin_pw"\n')
        cluster = Cluster("bench-ab")
        setup_cluster(cluster, 2 * (max(args.clients) + 4) + 2 * args.pool_size + 30)
        px = {"A": start("A", args.baseline, args, workdir, cluster),
              "B": start("B", args.candidate, args, workdir, cluster)}
        say("warm-up")
        for p in px.values():
            r = pgbench(p.port, "select-only", "simple", max(args.clients), 2)
            if "error" in r:
                raise RuntimeError(f"warm-up through {p.name} failed: {r['error']}")
        for rnd in range(args.rounds):
            order = ("A", "B") if rnd % 2 == 0 else ("B", "A")
            for script in args.scripts:
                for clients in args.clients:
                    for label in order:
                        r = pgbench(px[label].port, script, "simple", clients, args.duration,
                                    px[label])
                        res.setdefault((label, script, clients), []).append(r)
                        say(f"[{rnd + 1}/{args.rounds}] {script} c={clients} {label}: "
                            + (f"{r['tps']:.0f} tps, {r['cpu_us']:.1f} us CPU/txn"
                               if "tps" in r else f"FAILED {r.get('error')}"))
    except (KeyboardInterrupt, Interrupted):
        say("interrupted: cleaning up")
        return 130
    finally:
        for p in list(LIVE):
            p.stop()
        if cluster is not None:
            cluster.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    load1 = os.getloadavg()[0]

    head = ["script", "clients", "A tps", "B tps", "B/A tps (min-max)", "A us/txn",
            "B us/txn", "B/A CPU (min-max)"]
    rows = []
    for script in args.scripts:
        for clients in args.clients:
            a = [r for r in res.get(("A", script, clients), []) if "tps" in r]
            b = [r for r in res.get(("B", script, clients), []) if "tps" in r]
            if not a or not b:
                rows.append([script, str(clients)] + ["fails"] * 6)
                continue
            tr = [rb["tps"] / ra["tps"] for ra, rb in zip(a, b)]
            cr = [rb["cpu_us"] / ra["cpu_us"] for ra, rb in zip(a, b)]
            rows.append([script, str(clients),
                         f"{statistics.median(r['tps'] for r in a):.0f}",
                         f"{statistics.median(r['tps'] for r in b):.0f}",
                         f"{statistics.median(tr):.3f} ({min(tr):.2f}-{max(tr):.2f})",
                         f"{statistics.median(r['cpu_us'] for r in a):.1f}",
                         f"{statistics.median(r['cpu_us'] for r in b):.1f}",
                         f"{statistics.median(cr):.3f} ({min(cr):.2f}-{max(cr):.2f})"])
    table = md_table(head, rows)
    say()
    say(table)
    if not args.no_write:
        path = results_path(f"{info['date'][:10]}-ab-{info['commit']}")
        with open(path, "w") as f:
            f.write(f"# pgcutover A/B, {info['date']}\n\n")
            f.write(f"- machine: {info['cpu']} x{info['cores']}, {info['kernel']}; "
                    f"{info['pg']}; load {load0:.2f} before, {load1:.2f} after\n")
            f.write(f"- A: `{args.baseline}`; B: `{args.candidate}` (commit {info['commit']}"
                    f"{', modified' if info['dirty'] else ''})\n")
            f.write(f"- pool_mode {args.mode}, pgbench -M simple -T {args.duration}, "
                    f"{args.rounds} rounds, medians; order alternates per round\n")
            f.write(f"- command: `bench/ab.py {' '.join(argv)}`\n\n")
            f.write(table + "\n")
        say(f"\nwritten to {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

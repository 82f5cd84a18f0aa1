#!/usr/bin/python3
"""Cutover benchmark: how long do applications stop committing during SWITCH?

Not part of `make test`.  Starts two throwaway PostgreSQL 15 clusters with
logical replication between them (tests/integration/pgutil.py and
replication.py), then for each pool mode and each run: a fresh replicated
database, a fresh pgcutover (lag_method = lsn), pgbench through it
(tpcb-like + INSERT INTO orders, 16 clients, per-transaction logs with
--log), `SWITCH db` mid-run.  From the pgbench logs it merges every
client's transaction completion times and reports the longest gap with no
committed transaction around the switch, next to the pause the switch
reports and the lag (SHOW LAG) just before it.  Medians per pool mode at the
end.

    /usr/bin/python3 bench/cutover.py [--runs 3] [--clients 16] [--seconds 12]
        [--switch-at 5] [--modes session,transaction] [--query-mode extended]

Target (issue 3): gap <= 250 ms in both pool modes with the lag near zero.
Exit status 0 when every run switched with zero failed transactions and no
lost row (whatever the gap), 1 otherwise.
"""

import argparse
import statistics
import sys

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (add_switch_args, cleanup, commit_gaps, fmt, interrupt_on_sigterm, make_tmp,
                      pgcutover_ready, say, start_pair, stop_proxy, switch_mid_run,
                      switch_problems)
import proxyutil                                      # noqa: E402
from pgutil import Cluster                            # noqa: E402
from replication import Pgbench, ReplicatedDB        # noqa: E402

TARGET_GAP_MS = 250


def one_run(env, mode, i, args):
    name = f"bench_{mode[:4]}_{i}"
    db = ReplicatedDB(env.source, env.target, name).create()
    proxy = None
    out = {"mode": mode, "run": i, "ok": False}
    try:
        proxy = proxyutil.Proxy(env, settings={
            "pool_mode": mode, "lag_method": "lsn", "default_pool_size": str(args.clients + 4),
            "max_client_conn": str(args.clients + 50), "drain_timeout": "10s",
            "lag_timeout": "30s"}, databases={name: db.section("lsn")}, name=f"bench-{mode}")
        proxy.start()
        db.truncate_history()
        with Pgbench(proxy.port, name, clients=args.clients, seconds=args.seconds,
                     mode=args.query_mode, log=True, appname="pgcutover-bench") as pb:
            sw = switch_mid_run(pb, proxy.admin_port, name, args.switch_at, lag=True)
            if "early" in sw:
                out["error"] = "pgbench ended before the switch: " + sw["early"][-500:]
                return out
            out["lag_bytes"] = sw["lag_bytes"]
            if "error" in sw:
                out["error"] = sw["error"]
            row, t0, t1 = sw["row"], sw["t0"], sw["t1"]
            try:
                res = pb.wait(timeout=args.seconds + 30)
            except AssertionError as e:
                out["error"] = f"pgbench hung: {str(e)[:200]}"
                return out
        if row:
            out.update(paused_ms=int(row["paused_ms"]), drain_ms=int(row["drain_ms"]),
                       lag_wait_ms=int(row["lag_wait_ms"]), seq_ms=int(row["sequence_sync_ms"]),
                       switch_ms=(t1 - t0) * 1000)
        times = res.completion_times()
        around, elsewhere = commit_gaps(times, t0, t1)
        out.update(committed=res.committed, failed=res.failed, gap_ms=around * 1000,
                   steady_gap_ms=elsewhere * 1000, logged=len(times))
        hist = db.count("target", "pgbench_history")
        out["history_ok"] = hist == res.committed
        problems = switch_problems(res, hist, res.committed, row)
        if problems:
            out["error"] = "; ".join(problems)
        else:
            out["ok"] = True
        return out
    finally:
        stop_proxy(proxy, out)
        db.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_switch_args(ap, clients=16, seconds=12, switch_at=5.0)
    ap.add_argument("--modes", default="session,transaction")
    ap.add_argument("--query-mode", default="extended", choices=["simple", "extended", "prepared"],
                    help="pgbench -M (prepared: named statements move with the sessions; in "
                         "transaction pooling pgbench then runs one thread per client)")
    ap.add_argument("--verbose", action="store_true", help="print the proxy log of failed runs")
    args = ap.parse_args()

    if not pgcutover_ready():
        return 2
    interrupt_on_sigterm()
    tmp = make_tmp()
    clusters = [Cluster("bench-source"), Cluster("bench-target")]
    results = []
    try:
        env = start_pair(clusters, tmp)
        say(f"pgbench tpcb-like + orders insert, {args.clients} clients, {args.seconds}s, "
            f"-M {args.query_mode}, SWITCH after {args.switch_at:.0f}s; {args.runs} runs per mode")
        say(f"{'mode':<12}{'run':>4}{'committed':>11}{'failed':>7}{'lag before':>12}"
            f"{'paused':>9}{'lag wait':>10}{'GAP':>9}{'steady gap':>12}  result")
        for mode in args.modes.split(","):
            for i in range(1, args.runs + 1):
                r = one_run(env, mode.strip(), i, args)
                results.append(r)
                say(f"{r['mode']:<12}{i:>4}{r.get('committed', '-')!s:>11}"
                    f"{r.get('failed', '-')!s:>7}{fmt(r.get('lag_bytes'), 'B'):>12}"
                    f"{fmt(r.get('paused_ms'), 'ms'):>9}{fmt(r.get('lag_wait_ms'), 'ms'):>10}"
                    f"{fmt(r.get('gap_ms'), 'ms'):>9}{fmt(r.get('steady_gap_ms'), 'ms'):>12}  "
                    f"{'ok' if r['ok'] else 'FAILED: ' + r.get('error', '?')}")
                if not r["ok"] and args.verbose and r.get("log_tail"):
                    say(r["log_tail"])
        say()
        say(f"medians (target: gap <= {TARGET_GAP_MS} ms with lag near zero)")
        for mode in args.modes.split(","):
            rs = [r for r in results if r["mode"] == mode.strip() and r.get("gap_ms") is not None]
            if not rs:
                say(f"  {mode:<12} no completed run")
                continue
            gap = statistics.median(r["gap_ms"] for r in rs)
            paused = statistics.median(r["paused_ms"] for r in rs if "paused_ms" in r)
            lagw = statistics.median(r["lag_wait_ms"] for r in rs if "lag_wait_ms" in r)
            say(f"  {mode:<12} gap {gap:.0f} ms, pause {paused:.0f} ms (lag wait {lagw:.0f} ms) "
                f"over {len(rs)} runs: {'within' if gap <= TARGET_GAP_MS else 'OVER'} target")
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    finally:
        cleanup(clusters, tmp)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Round-trip benchmark: is the pause of a switch back like the pause of the
switch forward, and how long does the reverse preparation take?

Not part of `make test`.  Starts two throwaway PostgreSQL 15 clusters with
logical replication between them, then for each pool mode and each run: a
fresh replicated database with --tables extra (empty) tables besides
pgbench's, a fresh pgcutover (lag_method = lsn, fence on,
reverse_replication = on), and two pgbench runs through it (tpcb-like +
INSERT INTO orders, per-transaction logs): `SWITCH db TO target` mid-way
through the first, `SWITCH db TO source` mid-way through the second.  For
each switch: the pause it reports, the longest gap with no committed
transaction around it (from the merged pgbench logs), and the reverse
preparation before the pause (prepare_ms: the first one creates the
publication, slot and subscription of the way back; the switch back's only
checks that the forward slot is there).  Rows are checked after each
switch: the side switched to holds every transaction pgbench saw committed.

    /usr/bin/python3 bench/reversible.py [--runs 3] [--clients 16]
        [--seconds 10] [--switch-at 4] [--tables 100] [--modes session,transaction]

Target (issue 11): the median pause of the switch back within 50 ms of the
switch forward's, in the same run.  Exit status 0 when every switch
succeeded with zero failed transactions and no missing row.
"""

import argparse
import os
import statistics
import sys

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (add_switch_args, cleanup, commit_gaps, fmt, interrupt_on_sigterm, make_tmp,
                      pgcutover_ready, say, start_pair, stop_proxy, switch_mid_run,
                      switch_problems)
import proxyutil                                      # noqa: E402
from pgutil import Cluster                            # noqa: E402
from psycopg import sql                               # noqa: E402
from replication import Pgbench, ReplicatedDB        # noqa: E402

TARGET_DIFF_MS = 50


def add_tables(db, n):
    """n empty tables with a key on both sides, added to the forward
    replication (the publication is FOR ALL TABLES; the subscription is
    refreshed and waited for)."""
    for conn in (db.src, db.tgt):
        with conn() as c:
            for k in range(n):
                c.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v text)").format(
                    sql.Identifier(f"extra_{k:03d}")))
            c.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO alice")
            c.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice")
    with db.tgt() as t:
        t.execute(sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION").format(
            sql.Identifier(db.sub)))
    db.wait_synced(120, extra_tables=n)
    db.wait_caught_up()


def one_switch(proxy, name, to, args, committed_before, db):
    """One pgbench run with SWITCH TO `to` mid-way: the measures, and problems."""
    out = {"to": to}
    with Pgbench(proxy.port, name, clients=args.clients, seconds=args.seconds,
                 mode="extended", log=True, appname="pgcutover-bench") as pb:
        sw = switch_mid_run(pb, proxy.admin_port, name, args.switch_at, to=to)
        if "early" in sw:
            out["error"] = "pgbench ended before the switch: " + sw["early"][-300:]
            return out
        if "error" in sw:
            out["error"] = sw["error"]
        row, t0, t1 = sw["row"], sw["t0"], sw["t1"]
        res = pb.wait(timeout=args.seconds + 30)
    if row:
        out.update(paused_ms=int(row["paused_ms"]), prepare_ms=int(row["prepare_ms"]),
                   replication_ms=int(row["replication_ms"]), fence_ms=int(row["fence_ms"]),
                   lag_wait_ms=int(row["lag_wait_ms"]))
    around, _ = commit_gaps(res.completion_times(), t0, t1)
    total = committed_before + (res.committed or 0)
    out.update(committed=res.committed, failed=res.failed, gap_ms=around * 1000, total=total)
    rows = db.count(to, "pgbench_history")
    problems = switch_problems(res, rows, total, row, side=f"the {to}")
    if problems:
        out["error"] = "; ".join(problems)
    return out


def one_run(env, mode, i, args):
    name = f"rev_{mode[:4]}_{i}"
    db = ReplicatedDB(env.source, env.target, name).create()
    proxy = None
    out = {"mode": mode, "run": i, "ok": False, "switches": []}
    try:
        add_tables(db, args.tables)
        proxy = proxyutil.Proxy(env, settings={
            "pool_mode": mode, "lag_method": "lsn", "default_pool_size": str(args.clients + 4),
            "max_client_conn": str(args.clients + 50), "drain_timeout": "10s",
            "lag_timeout": "30s", "reverse_replication": "on"},
            databases={name: db.section("lsn")}, name=f"bench-rev-{mode}")
        proxy.start()
        db.truncate_history()
        total = 0
        for to in ("target", "source"):
            s = one_switch(proxy, name, to, args, total, db)
            out["switches"].append(s)
            if "error" in s:
                out["error"] = s["error"]
                return out
            total = s["total"]
        out["ok"] = True
        return out
    finally:
        stop_proxy(proxy, out)
        db.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_switch_args(ap, clients=16, seconds=10, switch_at=4.0)
    ap.add_argument("--tables", type=int, default=100)
    ap.add_argument("--modes", default="session,transaction")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if not pgcutover_ready():
        return 2
    interrupt_on_sigterm()
    tmp = make_tmp()
    clusters = [Cluster("bench-source"), Cluster("bench-target")]
    results = []
    try:
        env = start_pair(clusters, tmp)
        say(f"machine: {os.cpu_count()} cores; pgbench tpcb-like + orders insert, "
            f"{args.clients} clients, {args.seconds}s per direction, SWITCH after "
            f"{args.switch_at:.0f}s; {args.tables} extra tables; {args.runs} runs per mode")
        say(f"{'mode':<12}{'run':>4}{'to':>8}{'committed':>11}{'failed':>7}{'paused':>8}"
            f"{'gap':>7}{'fence':>7}{'repl':>6}{'lag':>6}{'prepare':>9}  result (ms)")
        for mode in args.modes.split(","):
            for i in range(1, args.runs + 1):
                r = one_run(env, mode.strip(), i, args)
                results.append(r)
                for s in r["switches"]:
                    say(f"{mode:<12}{i:>4}{s['to']:>8}{s.get('committed', '-')!s:>11}"
                        f"{s.get('failed', '-')!s:>7}{fmt(s.get('paused_ms')):>8}"
                        f"{fmt(s.get('gap_ms')):>7}{fmt(s.get('fence_ms')):>7}"
                        f"{fmt(s.get('replication_ms')):>6}{fmt(s.get('lag_wait_ms')):>6}"
                        f"{fmt(s.get('prepare_ms')):>9}  "
                        f"{'FAILED: ' + s['error'] if 'error' in s else 'ok'}")
                if not r["ok"] and args.verbose and r.get("log_tail"):
                    say(r["log_tail"])
        say()
        say(f"medians (target: the switch back's pause within {TARGET_DIFF_MS} ms of the "
            f"forward one's)")
        for mode in args.modes.split(","):
            rs = [r for r in results if r["mode"] == mode.strip() and r["ok"]]
            if not rs:
                say(f"  {mode:<12} no completed run")
                continue
            med = {}
            for k, to in enumerate(("target", "source")):
                for key in ("paused_ms", "gap_ms", "prepare_ms"):
                    med[(to, key)] = statistics.median(r["switches"][k][key] for r in rs)
            diff = med[("source", "paused_ms")] - med[("target", "paused_ms")]
            say(f"  {mode:<12} forward: pause {med[('target', 'paused_ms')]:.0f}, gap "
                f"{med[('target', 'gap_ms')]:.0f}, preparation {med[('target', 'prepare_ms')]:.0f}"
                f"; back: pause {med[('source', 'paused_ms')]:.0f}, gap "
                f"{med[('source', 'gap_ms')]:.0f}, preparation {med[('source', 'prepare_ms')]:.0f}"
                f"; back - forward {diff:+.0f} ms over {len(rs)} runs: "
                f"{'within' if abs(diff) <= TARGET_DIFF_MS else 'OVER'} target")
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    finally:
        cleanup(clusters, tmp)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

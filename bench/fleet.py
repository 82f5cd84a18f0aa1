#!/usr/bin/python3
"""Fleet benchmark: the pause of a three-instance switch against a
one-instance switch, in the same run, and what the heartbeat costs the
fleet database.

Not part of `make test`.  Starts two throwaway PostgreSQL 15 clusters with
logical replication between them and a third for the fleet database.  Per
run: a fresh replicated database; first one pgcutover alone (no fleet),
SWITCH under a pgbench load; then three instances of one fleet, each under
its own pgbench load (the same total clients), SWITCH on the first.  For
each: the pause the coordinator reports, and the longest gap without a
committed transaction around the switch over all the pgbench logs.  At the
end, the fleet database's transaction rate over an idle interval with three
members: the heartbeat's load, per instance.

    /usr/bin/python3 bench/fleet.py [--runs 3] [--clients 12] [--seconds 8] [--switch-at 3]

Target (issue 12): a three-instance switch's pause at most 100 ms above the
one-instance pause.  Exit status 0 when every switch succeeded with no
failed transaction and no missing row.
"""

import argparse
import os
import statistics
import sys
import time

# benchlib first: it puts tests/integration (proxyutil, pgutil, replication) on sys.path
from benchlib import (add_switch_args, cleanup, commit_gaps, interrupt_on_sigterm, make_tmp,
                      pgcutover_ready, say, send_switch, start_pair)
import proxyutil                                      # noqa: E402
from fleetutil import (create_fleet_db, fleet_conninfo, start_fleet_cluster,  # noqa: E402
                       FLEET_DB)
from pgutil import Cluster                            # noqa: E402
from replication import Pgbench, ReplicatedDB, admin, wait_until  # noqa: E402

TARGET_MS = 100


def proxy(env, db, name, mode, clients, fleet=None):
    settings = {"pool_mode": mode, "lag_method": "lsn", "default_pool_size": str(clients + 4),
                "max_client_conn": str(clients + 50), "drain_timeout": "10s",
                "lag_timeout": "30s"}
    if fleet:
        settings.update({"fleet": fleet[0], "instance_name": fleet[1], "fleet_lease": "3s"})
    p = proxyutil.Proxy(env, settings=settings, databases={db.name: db.section("lsn")},
                        name=name)
    p.start()
    return p


def measure(ps, db, args, clients_each):
    """pgbench on every instance, SWITCH on the first: pause, gap, checks."""
    benches = [Pgbench(p.port, db.name, clients=clients_each, seconds=args.seconds,
                       mode="extended", log=True, appname="pgcutover-bench") for p in ps]
    for b in benches:
        b.start()
    time.sleep(args.switch_at)
    row, err, t0, t1 = send_switch(ps[0].admin_port, f"SWITCH {db.name}")
    results = [b.wait(timeout=args.seconds + 30) for b in benches]
    times = [t for r in results for t in r.completion_times()]
    around, _ = commit_gaps(times, t0, t1)
    committed = sum(len(r.completion_times()) for r in results)
    rows = db.count("target", "pgbench_history")
    problems = []
    if err or not row or row["result"] != "ok":
        problems.append(err or f"switch {row and row['result']}")
    if any(r.rc != 0 or r.failed for r in results):
        problems.append("pgbench failures")
    if rows != committed:
        problems.append(f"target has {rows} rows for {committed} committed")
    return {"paused": int(row["paused_ms"]) if row else None, "gap": around * 1000,
            "instances": row["instances"] if row else "-", "problems": problems}


def one_run(env, fleet_cluster, mode, i, args):
    out = {}
    for kind in ("single", "fleet"):
        db = ReplicatedDB(env.source, env.target, f"fl_{mode[:4]}_{kind[:3]}_{i}").create()
        ps = []
        try:
            if kind == "single":
                ps = [proxy(env, db, "bench-single", mode, args.clients)]
                clients_each = args.clients
            else:
                create_fleet_db(fleet_cluster)
                ci = fleet_conninfo(fleet_cluster)
                each = max(1, args.clients // 3)
                ps = [proxy(env, db, f"bench-fleet-{k}", mode, each, (ci, f"i{k}"))
                      for k in range(3)]
                wait_until(lambda: sum(1 for r in admin(ps[0].admin_port, "SHOW FLEET")
                                       if r["live"] == "yes") >= 3, 15, what="three live")
                clients_each = each
            db.truncate_history()
            out[kind] = measure(ps, db, args, clients_each)
        finally:
            for p in ps:
                p.stop()
                p.cleanup()
            db.drop()
    return out


def heartbeat_load(env, fleet_cluster, seconds=10):
    """Transactions per second the fleet database sees from three idle members."""
    db = ReplicatedDB(env.source, env.target, "fl_idle").create()
    create_fleet_db(fleet_cluster)
    ci = fleet_conninfo(fleet_cluster)
    ps = [proxy(env, db, f"bench-idle-{k}", "session", 2, (ci, f"i{k}")) for k in range(3)]
    try:
        time.sleep(2)

        def commits():
            with fleet_cluster.admin_connect() as c:
                return c.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                 (FLEET_DB,)).fetchone()[0]
        a = commits()
        time.sleep(seconds)
        b = commits()
        return (b - a) / seconds / 3
    finally:
        for p in ps:
            p.stop()
            p.cleanup()
        db.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_switch_args(ap, clients=12, seconds=8, switch_at=3.0)
    ap.add_argument("--modes", default="session,transaction")
    args = ap.parse_args()
    if not pgcutover_ready():
        return 2
    interrupt_on_sigterm()
    tmp = make_tmp()
    clusters = [Cluster("bench-source"), Cluster("bench-target")]
    fleet_cluster = None
    ok = True
    try:
        env = start_pair(clusters, tmp)
        fleet_cluster = start_fleet_cluster()
        say(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; pgbench tpcb-like"
            f" + orders, {args.clients} clients in all, {args.seconds}s, SWITCH after "
            f"{args.switch_at:.0f}s; {args.runs} runs per mode")
        say(f"{'mode':<12}{'run':>4}{'single pause':>14}{'single gap':>12}{'fleet pause':>13}"
            f"{'fleet gap':>11}  result")
        res = {}
        for mode in args.modes.split(","):
            for i in range(1, args.runs + 1):
                r = one_run(env, fleet_cluster, mode, i, args)
                res.setdefault(mode, []).append(r)
                probs = r["single"]["problems"] + r["fleet"]["problems"]
                ok = ok and not probs
                say(f"{mode:<12}{i:>4}{r['single']['paused'] or 0:>14}"
                    f"{r['single']['gap']:>12.0f}{r['fleet']['paused'] or 0:>13}"
                    f"{r['fleet']['gap']:>11.0f}  {'ok' if not probs else '; '.join(probs)}")
        say()
        for mode, rs in res.items():
            sp = statistics.median(r["single"]["paused"] or 0 for r in rs)
            fp = statistics.median(r["fleet"]["paused"] or 0 for r in rs)
            sg = statistics.median(r["single"]["gap"] for r in rs)
            fg = statistics.median(r["fleet"]["gap"] for r in rs)
            say(f"  {mode:<12} single: pause {sp:.0f} ms, gap {sg:.0f} ms; three instances: "
                f"pause {fp:.0f} ms, gap {fg:.0f} ms; +{fp - sp:.0f} ms: "
                f"{'within' if fp - sp <= TARGET_MS else 'OVER'} target")
        qps = heartbeat_load(env, fleet_cluster)
        say(f"  heartbeat: {qps:.2f} fleet-database transactions per second per idle instance")
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    finally:
        cleanup(clusters + ([fleet_cluster] if fleet_cluster else []), tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

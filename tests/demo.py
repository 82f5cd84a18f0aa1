#!/usr/bin/python3
"""make demo: a cutover under load and back, on this machine, in under a minute.

1. starts two throwaway PostgreSQL 15 clusters, "source" and "target"
   (temporary directories, 127.0.0.1, free ports);
2. creates the database `bank` on both: pgbench's tables plus `orders`
   (a bigserial key, i.e. a sequence) on the source, the same schema on the
   target, and logical replication source -> target (publication,
   subscription, replication slot bank_slot);
3. starts pgcutover in front (session pooling, lag_method = lsn, the
   default fence, reverse_replication = on);
4. runs pgbench through pgcutover (8 clients, 10 s, tpcb-like + an insert
   into orders) and, mid-run, sends `SWITCH bank` to the admin console:
   the rest of the run writes on the target;
5. runs pgbench again and, mid-run, sends `SWITCH bank TO source`: the
   target's writes came back by reverse replication, the rest of the run
   writes on the source;
6. prints the report and checks it: no failed transaction, after each
   switch the side routed to holds every committed transaction, the
   sequences are never behind, the old side refuses a direct write (the
   fence), the route recorded.

Exits non-zero if anything is wrong.  Everything it started is stopped and
every temporary directory removed at the end, on error and on Ctrl-C too
(set PGCUTOVER_KEEP_TMP=1 to keep the directories for a look).
"""

import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))

os.environ.setdefault("PGCUTOVER_BIN", os.path.join(REPO, "build", "pgcutover"))

import proxyutil                                      # noqa: E402
from pgutil import PASSWORDS, Cluster, boot_pair      # noqa: E402
from replication import (AdminError, Pgbench, ReplicatedDB, admin,  # noqa: E402
                         route_of, wait_until)

DB = "bank"
CLIENTS = 8
SECONDS = 10
SWITCH_AT = 4.0


def say(msg=""):
    print(msg, flush=True)


def write_userlist(path):
    with open(path, "w") as f:
        f.write(";; pgcutover demo: PgBouncer userlist format\n")
        f.write(f'"alice" "{PASSWORDS["alice"]}"\n')
        f.write(f'"pgcutover" "{PASSWORDS["pgcutover"]}"\n')
        f.write('"admin" "admin_pw"\n')


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    binary = proxyutil.pgcutover_bin()
    if not os.access(binary, os.X_OK):
        say(f"pgcutover not found at {binary}: run `make` first")
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = tempfile.mkdtemp(prefix="pgcutover-demo-", dir="/tmp")
    os.chmod(tmp, 0o755)
    clusters = []
    proxy = None
    bench = None
    problems = []
    try:
        # -- 1. two clusters ----------------------------------------------------
        t0 = time.monotonic()
        source, target = Cluster("demo-source"), Cluster("demo-target")
        clusters += [source, target]
        boot_pair(source, target)
        say(f"source PostgreSQL on 127.0.0.1:{source.port}, target on 127.0.0.1:{target.port} "
            f"({time.monotonic() - t0:.1f}s)")

        # -- 2. replicated database ---------------------------------------------
        t0 = time.monotonic()
        db = ReplicatedDB(source, target, DB).create()
        say(f"database {DB}: pgbench scale 1 + orders, replicated source -> target "
            f"(publication {db.pub}, subscription {db.sub}, slot {db.slot}) "
            f"({time.monotonic() - t0:.1f}s)")

        # -- 3. pgcutover --------------------------------------------------------
        userlist = os.path.join(tmp, "userlist.txt")
        write_userlist(userlist)
        proxy = proxyutil.Proxy(proxyutil.ClusterEnv(source, target, userlist),
                                settings={"pool_mode": "session", "lag_method": "lsn",
                                          "drain_timeout": "5s", "lag_timeout": "30s",
                                          "reverse_replication": "on"},
                                databases={DB: db.section("lsn")}, name="demo")
        proxy.start()
        say(f"pgcutover on 127.0.0.1:{proxy.port}, admin console on 127.0.0.1:{proxy.admin_port} "
            f"(config {proxy.ini})")
        lag = admin(proxy.admin_port, f"SHOW LAG {DB}")[0]
        say(f"replication lag before the run: {lag['lag_bytes']} bytes")

        # -- 4./5. pgbench through pgcutover, a switch mid-run, there and back ------
        db.truncate_history()
        runs = []
        for to in ("target", "source"):
            say(f"pgbench: {CLIENTS} clients, {SECONDS}s, tpcb-like + INSERT INTO orders, "
                f"through pgcutover; SWITCH {DB} TO {to} after {SWITCH_AT:.0f}s")
            bench = Pgbench(proxy.port, DB, clients=CLIENTS, seconds=SECONDS, mode="extended",
                            appname="pgcutover-demo").start()
            time.sleep(SWITCH_AT)
            if bench.proc.poll() is not None:
                raise RuntimeError("pgbench ended before the switch:\n" + bench.wait().stdout)
            row = None
            t_switch = time.monotonic()
            try:
                row = admin(proxy.admin_port, f"SWITCH {DB} TO {to}")[0]
            except AdminError as e:
                problems.append(f"SWITCH TO {to} failed: {e}")
            wall = (time.monotonic() - t_switch) * 1000
            res = bench.wait()
            bench = None
            total = sum(r["res"].committed or 0 for r in runs) + (res.committed or 0)
            other = "source" if to == "target" else "target"
            # the side switched to has everything at once; the other side gets
            # what was written after the switch by replication: a moment
            try:
                wait_until(lambda: db.count(other, "pgbench_history") >= total, 10)
            except AssertionError:
                pass
            runs.append({"to": to, "row": row, "wall": wall, "res": res, "total": total,
                         "rows": {side: db.count(side, "pgbench_history")
                                  for side in ("source", "target")},
                         "seq": {side: db.sequence_values(side).get("public.orders_id_seq")
                                 for side in ("source", "target")}})
            if to == "target":
                # the fence: a direct write to the source as the application's role
                import psycopg
                try:
                    with psycopg.connect(source.conninfo(user="alice", dbname=DB),
                                         autocommit=True) as c:
                        c.execute("INSERT INTO orders (note) VALUES ('straight to the source')")
                    fenced = "NOT fenced: the write went through"
                    problems.append("the source took a direct write after the switch")
                except psycopg.errors.ReadOnlySqlTransaction as e:
                    fenced = f"refused ({e.sqlstate}: {str(e).strip()})"
        repl = {r["direction"]: r["state"] for r in admin(proxy.admin_port,
                                                          f"SHOW REPLICATION {DB}")}
        route, state = route_of(proxy.admin_port, DB)
        route_file = os.path.join(proxy.dir, "state", f"{DB}.route")

        # -- 6. report -------------------------------------------------------------
        say()
        say("=" * 72)
        say("pgcutover demo: a switch under load, and back")
        say("=" * 72)
        for r in runs:
            res, row = r["res"], r["row"]
            say(f"SWITCH TO {r['to']}")
            say(f"  transactions committed    {res.committed} (failed {res.failed})")
            if res.aborted:
                say(f"  clients aborted           {len(res.aborted)}")
            if row:
                say(f"  switch result             {row['result']}")
                say(f"  pause                     {row['paused_ms']} ms (drain {row['drain_ms']}, "
                    f"fence {row['fence_ms']}, lag wait {row['lag_wait_ms']}, replication "
                    f"{row['replication_ms']}, sequences {row['sequence_sync_ms']} ms; preparation "
                    f"before the pause {row['prepare_ms']} ms; "
                    f"SWITCH took {r['wall']:.0f} ms)")
                say(f"  sessions moved / closed   {row['sessions_moved']} / {row['sessions_closed']}")
            ok_rows = r["rows"][r["to"]] == r["total"]
            say(f"  pgbench_history           source {r['rows']['source']}, target "
                f"{r['rows']['target']} ({'OK' if ok_rows else 'MISMATCH'}: {r['total']} "
                f"committed through pgcutover so far)")
            seq = r["seq"]
            other = "source" if r["to"] == "target" else "target"
            ok_seq = (seq[r["to"]] is not None and seq[other] is not None
                      and seq[r["to"]] >= seq[other])
            say(f"  orders_id_seq             source {seq['source']}, target {seq['target']} "
                f"({'OK' if ok_seq else 'BEHIND'})")
            if r["to"] == "target":
                say(f"  direct write to source    {fenced}")
            if res.rc != 0:
                problems.append(f"pgbench exited with {res.rc}")
            if res.failed != 0:
                problems.append(f"{res.failed} failed transactions")
            if res.aborted:
                problems.append("pgbench clients aborted: " + "; ".join(res.aborted[:3]))
            if row and row["result"] != "ok":
                problems.append(f"switch to {r['to']}: result {row['result']}")
            if not ok_rows:
                problems.append(f"after the switch to the {r['to']}: pgbench_history there has "
                                f"{r['rows'][r['to']]} rows, {r['total']} transactions committed")
            if not ok_seq:
                problems.append(f"orders_id_seq on the {r['to']} is behind")
            if problems:
                say("pgbench output:\n" + res.stdout)
        say(f"replication                 forward {repl.get('forward')}, "
            f"reverse {repl.get('reverse')}")
        say(f"route                       {route} ({state}); recorded in {route_file}")
        say("=" * 72)
        if route != "source":
            problems.append(f"the database is routed to its {route}")
    except KeyboardInterrupt:
        problems.append("interrupted")
    except Exception as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            bench.close()
        if proxy is not None and proxy.proc is not None:
            stop_problems = proxy.stop()
            if problems or stop_problems:
                say("--- last lines of pgcutover's log ---")
                say("\n".join(proxy.log().splitlines()[-40:]))
            problems += stop_problems
            proxy.cleanup()
        for c in clusters:
            c.cleanup()
        if not os.environ.get("PGCUTOVER_KEEP_TMP"):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        say("DEMO FAILED:\n  " + "\n  ".join(problems))
        return 1
    say("demo OK: there and back under load, zero failed transactions, nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())

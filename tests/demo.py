#!/usr/bin/python3
"""make demo: a cutover under load, on this machine, in about half a minute.

1. starts two throwaway PostgreSQL 15 clusters, "source" and "target"
   (temporary directories, 127.0.0.1, free ports);
2. creates the database `bank` on both: pgbench's tables plus `orders`
   (a bigserial key, i.e. a sequence) on the source, the same schema on the
   target, and logical replication source -> target (publication,
   subscription, replication slot bank_slot);
3. starts pgcutover in front (session pooling, lag_method = lsn);
4. runs pgbench through pgcutover (8 clients, 10 s, tpcb-like + an insert
   into orders) and, mid-run, sends `SWITCH bank` to the admin console;
5. prints the report and checks it: no failed transaction, every committed
   transaction on the target, orders' sequence on the target at or beyond
   the source's, the route recorded as `target`.

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
                                          "drain_timeout": "5s", "lag_timeout": "30s"},
                                databases={DB: db.section("lsn")}, name="demo")
        proxy.start()
        say(f"pgcutover on 127.0.0.1:{proxy.port}, admin console on 127.0.0.1:{proxy.admin_port} "
            f"(config {proxy.ini})")
        lag = admin(proxy.admin_port, f"SHOW LAG {DB}")[0]
        say(f"replication lag before the run: {lag['lag_bytes']} bytes")

        # -- 4. pgbench through pgcutover, SWITCH mid-run -------------------------
        db.truncate_history()
        say(f"pgbench: {CLIENTS} clients, {SECONDS}s, tpcb-like + INSERT INTO orders, "
            f"through pgcutover; SWITCH {DB} after {SWITCH_AT:.0f}s")
        bench = Pgbench(proxy.port, DB, clients=CLIENTS, seconds=SECONDS, mode="extended",
                        appname="pgcutover-demo").start()
        time.sleep(SWITCH_AT)
        if bench.proc.poll() is not None:
            raise RuntimeError("pgbench ended before the switch:\n" + bench.wait().stdout)
        switch_row = None
        t_switch = time.monotonic()
        try:
            switch_row = admin(proxy.admin_port, f"SWITCH {DB}")[0]
        except AdminError as e:
            problems.append(f"SWITCH failed: {e}")
        switch_wall = (time.monotonic() - t_switch) * 1000
        res = bench.wait()

        # -- 5. report -------------------------------------------------------------
        hist_target = db.count("target", "pgbench_history")
        if hist_target != res.committed:      # give replication a moment, then judge
            try:
                wait_until(lambda: db.count("target", "pgbench_history") >= (res.committed or 0),
                           5)
            except AssertionError:
                pass
            hist_target = db.count("target", "pgbench_history")
        hist_source = db.count("source", "pgbench_history")
        seq_src = db.sequence_values("source").get("public.orders_id_seq")
        seq_tgt = db.sequence_values("target").get("public.orders_id_seq")
        route, state = route_of(proxy.admin_port, DB)
        route_file = os.path.join(proxy.dir, "state", f"{DB}.route")

        say()
        say("=" * 64)
        say("pgcutover demo: cutover under load")
        say("=" * 64)
        say(f"transactions committed      {res.committed}")
        say(f"transactions failed         {res.failed}")
        if res.aborted:
            say(f"clients aborted             {len(res.aborted)}")
        if switch_row:
            say(f"switch result               {switch_row['result']}")
            say(f"pause                       {switch_row['paused_ms']} ms "
                f"(drain {switch_row['drain_ms']} ms, lag wait {switch_row['lag_wait_ms']} ms, "
                f"sequence sync {switch_row['sequence_sync_ms']} ms; "
                f"SWITCH took {switch_wall:.0f} ms)")
            say(f"sessions moved / closed     {switch_row['sessions_moved']} / "
                f"{switch_row['sessions_closed']}")
        ok_rows = res.committed is not None and hist_target == res.committed
        say(f"pgbench_history on target   {hist_target} "
            f"({'OK' if ok_rows else 'MISMATCH'}: {res.committed} committed; "
            f"{hist_source} ran on the source before the switch)")
        ok_seq = seq_src is not None and seq_tgt is not None and seq_tgt >= seq_src
        say(f"orders_id_seq               source {seq_src}, target {seq_tgt} "
            f"({'OK' if ok_seq else 'BEHIND'})")
        say(f"route                       {route} ({state}); recorded in {route_file}")
        say("=" * 64)

        if res.rc != 0:
            problems.append(f"pgbench exited with {res.rc}")
        if res.failed != 0:
            problems.append(f"{res.failed} failed transactions")
        if res.aborted:
            problems.append("pgbench clients aborted: " + "; ".join(res.aborted[:3]))
        if switch_row and switch_row["result"] != "ok":
            problems.append(f"switch result {switch_row['result']}")
        if not ok_rows:
            problems.append(f"pgbench_history on the target has {hist_target} rows, "
                            f"{res.committed} transactions committed")
        if not ok_seq:
            problems.append(f"orders_id_seq on the target ({seq_tgt}) is behind the source ({seq_src})")
        if route != "target":
            problems.append(f"the database is routed to its {route}")
        if problems:
            say("pgbench output:\n" + res.stdout)
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
    say("demo OK: zero failed transactions, nothing lost, routed to the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

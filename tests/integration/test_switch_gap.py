"""What clients see of a switch (issue 17): the held transactions run on the
new side on server connections opened there early (ahead of the pause for
the clients in a transaction then, during it for the rest), SHOW SWITCHES
reports the gap (gap_ms) beside the pause, and a server opened early while
the new side was still fenced is never used (it would be read-only).

Speed is measured in bench/scale.py; these tests check behaviour: where the
held transactions ran, that nothing failed or was lost, and the columns.
"""

import datetime
import re
import time

import pytest

from replication import (Pgbench, admin, cutover_proxy, replicated_fixtures, stuck_clients,
                         switch)

DB = "cut_gap"
CLIENTS = 6
APP = "pgbench-gap"

repl, rdb = replicated_fixtures(DB)


def log_time(log, pattern):
    """The timestamp (local time, as the proxy logs it) of the first log line matching."""
    for ln in log.splitlines():
        if re.search(pattern, ln):
            return datetime.datetime.strptime(ln[:23], "%Y-%m-%d %H:%M:%S.%f")
    raise AssertionError(f"no log line matches {pattern!r}")


def run_switch(p, db, seconds=5, switch_at=2.0):
    """pgbench through p, SWITCH mid-run: (row, pgbench result)."""
    db.truncate_history()
    with Pgbench(p.port, db.name, clients=CLIENTS, seconds=seconds, mode="extended",
                 appname=APP) as pb:
        pb.start()
        time.sleep(switch_at)
        row = switch(p, db)
        res = pb.wait(timeout=seconds + 60, on_timeout=lambda: stuck_clients(p))
    return row, res


def assert_nothing_lost(db, res):
    assert res.rc == 0 and res.failed == 0 and not res.aborted, res.stdout[-2000:]
    assert not res.warnings, res.warnings
    assert db.count("target", "pgbench_history") == res.committed


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_held_transactions_run_on_servers_opened_early(proxy_factory, rdb, pool_mode):
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode)
    row, res = run_switch(p, rdb)
    assert row["result"] == "ok", row
    assert_nothing_lost(rdb, res)
    # the gap: an integer, at least the part of the pause after the first hold
    gap = row["gap_ms"]
    assert gap is not None and re.fullmatch(r"\d+", str(gap)), row
    hist = admin(p.admin_port, "SHOW SWITCHES")
    assert hist[-1]["gap_ms"] == gap, hist
    log = p.log()
    assert re.search(r"server connections opening early on the target", log), log[-3000:]
    # servers to the target logged in between the start of the switch and the
    # resume: the held transactions did not wait for them after it
    during = log.split(f"switch {DB}: source -> target started")[-1]
    during = during.split(f"switch {DB}: resume")[0]
    early = re.findall(rf"server {DB}/\S+:{rdb.target.port}: logged in", during)
    assert len(early) >= 1, log[-3000:]
    assert log_time(log, rf"switch {DB}: resume") >= log_time(log, rf"switch {DB}: drain")
    if pool_mode == "session":
        # the sessions in a transaction got theirs ahead of the pause, not in it
        # (in transaction pooling the pool is full of busy servers then)
        ahead = r"opening early on the target, ahead of the pause"
        assert re.search(ahead, log), log[-3000:]
        assert log_time(log, ahead) <= log_time(log, rf"switch {DB}: drain")


@pytest.mark.timeout(120)
def test_server_opened_early_on_a_fenced_side_is_not_used(proxy_factory, rdb):
    """The target fenced by hand before the switch: the servers opened for the
    held transactions during the pause log in read-only (the fence is lifted
    just before the resume); they are closed, never handed a transaction, and
    no transaction fails."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction")
    try:
        admin(p.admin_port, f"FENCE {DB} target")
        row, res = run_switch(p, rdb)
        assert row["result"] == "ok", row
        assert_nothing_lost(rdb, res)
        log = p.log()
        assert "logged in read-only (a fence was still up): closed" in log, log[-3000:]
    finally:
        rdb.unfence()

"""A running switch that nothing can change under it, and reports that tell
the truth (issue 16).

- A RELOAD during a switch cannot change what the switch works with: a new
  `target` (here an unreplicated copy of the database) or `lag_method = none`
  arriving during the lag wait is refused for the switching database, the
  switch finishes on the settings it started with, and nothing is lost.
- A flip whose route file cannot be written reports what happened to the
  file and never writes one where there was none.
- SHOW DATABASES counts a client held by PAUSE as waiting in session pooling.
- A failed DRY RUN says it was a dry run in SHOW SWITCHES.

The lag wait is held open by stalling the target's apply worker on a lock
(replication.apply_stalled): the slot stays active, its position stops short.
"""

import os
import signal
import threading
import time

import pytest
from psycopg import sql

from pgutil import free_port
from replication import (AdminError, Writer, admin, admin_connect, admin_query, apply_stalled,
                         cutover_proxy, replicated_fixtures, route_of, server_port, switch,
                         wait_until)

DB = "cut_stable"
COPY = "cut_stable_copy"


def _truncate_orders(repl):
    with repl.src() as s:
        s.execute("TRUNCATE orders")


repl, rdb = replicated_fixtures(DB, reset=_truncate_orders)


@pytest.fixture
def copy_db(rdb):
    """An unreplicated copy of the database on the target cluster: same
    tables, no rows, no subscription.  A switch that went there would lose
    every row the source has."""
    with rdb.target.admin_connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(COPY)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER alice").format(sql.Identifier(COPY)))
    with rdb.target.admin_connect(dbname=COPY) as c:
        c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text)")
        c.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO alice")
        c.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice")
    yield COPY
    with rdb.target.admin_connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(COPY)))


class SwitchThread(threading.Thread):
    """SWITCH on its own admin connection, so that the test can RELOAD meanwhile."""

    def __init__(self, proxy, db):
        super().__init__(daemon=True)
        self.proxy, self.db = proxy, db
        self.row = None
        self.error = None

    def run(self):
        try:
            self.row = switch(self.proxy, self.db)
        except Exception as e:  # checked by the test
            self.error = e


def wait_in_lag_wait(p, db):
    """The switch is running; its preflight and drain take milliseconds (the
    writer's transactions are short), so a second later it waits for its lag,
    which the stalled apply worker keeps from reaching zero."""
    wait_until(lambda: route_of(p.admin_port, db)[1] == "switching", 15,
               what="the switch running")
    time.sleep(1.0)


def orders_ids(conn, note):
    return {r[0] for r in conn.execute("SELECT id FROM orders WHERE note = %s", (note,))}


def reload_by(p, how):
    """RELOAD on the console (the error it answers) or SIGHUP (the log line)."""
    if how == "admin":
        with pytest.raises(AdminError) as ei:
            admin(p.admin_port, "RELOAD")
        return f"{ei.value.sqlstate} {ei.value.message}"
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    return p.wait_log(r"configuration reloaded from .*, except:", since=mark, timeout=10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode,how", [("session", "admin"), ("transaction", "sighup")])
def test_reload_of_target_during_switch_is_refused(proxy_factory, rdb, copy_db, mode, how):
    """`target` changed to an unreplicated copy while the switch waits for
    its lag: refused for the database; after the flip every transaction runs
    on the target the switch checked, which holds every row."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=mode, lag_timeout="60s")
    w = Writer(p, DB, note=f"reload-target-{mode}")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        with apply_stalled(rdb):
            t = SwitchThread(p, rdb)
            t.start()
            wait_in_lag_wait(p, DB)
            p.databases[DB]["target"] = rdb.target.proxy_target(copy_db)
            p.write_config()
            said = reload_by(p, how)
            assert said and DB in said and "target" in said and "switching" in said, said
            if how == "admin":
                assert said.startswith("55000"), said
            assert route_of(p.admin_port, DB) == ("source", "switching")
        t.join(60)
        assert not t.is_alive(), "the switch did not finish once the lag could catch up"
        assert t.error is None, t.error
        assert t.row["result"] == "ok", t.row
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the switch")
    finally:
        w.stop()
    assert route_of(p.admin_port, DB) == ("target", "running")
    with p.connect(dbname=DB) as c:
        assert server_port(c) == rdb.target.port
        assert c.execute("SELECT current_database()").fetchone()[0] == DB
    # nothing went to the copy; every committed row is on the target switched to
    with rdb.target.admin_connect(dbname=copy_db) as c:
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    with rdb.tgt() as c:
        missing = set(w.ids) - orders_ids(c, w.note)
    assert not missing, f"{len(missing)} committed rows missing on the target"
    # after the switch, a RELOAD applies the change
    admin(p.admin_port, "RELOAD")
    row = [r for r in admin(p.admin_port, "SHOW DATABASES") if r["name"] == DB][0]
    assert copy_db in row["target"], row


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_reload_of_lag_method_during_lag_wait_is_refused(proxy_factory, rdb, mode):
    """`lag_method = none` arriving while the lag wait polls the slot: the
    switch keeps waiting for the real lag (it flipped 181 to 530 kB behind
    before), so the target has every row the source acknowledged."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=mode, lag_timeout="60s")
    w = Writer(p, DB, note=f"reload-lag-{mode}")
    w.start()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        with apply_stalled(rdb):
            # source rows the stalled target has not applied yet
            with rdb.src() as s:
                s.execute("INSERT INTO orders (note) SELECT 'backlog' FROM generate_series(1, 2000)")
            t = SwitchThread(p, rdb)
            t.start()
            wait_in_lag_wait(p, DB)
            p.databases[DB]["lag_method"] = "none"
            p.databases[DB].pop("replication_slot", None)
            p.write_config()
            said = reload_by(p, "admin")
            assert "lag_method" in said and DB in said, said
            time.sleep(1.0)
            assert t.is_alive(), f"the switch ended while the target was behind: {t.row or t.error}"
        t.join(60)
        assert not t.is_alive()
        assert t.error is None, t.error
        assert t.row["result"] == "ok", t.row
    finally:
        w.stop()
    with rdb.src() as s, rdb.tgt() as c:
        src = s.execute("SELECT count(*), coalesce(max(id), 0) FROM orders").fetchone()
        tgt = c.execute("SELECT count(*), coalesce(max(id), 0) FROM orders").fetchone()
        assert tgt[0] >= src[0] and tgt[1] >= src[1], (src, tgt)
        missing = set(w.ids) - orders_ids(c, w.note)
        assert not missing, f"{len(missing)} committed rows missing on the target"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fence,phase", [("off", "flip"), ("on", "preparation")])
def test_failed_flip_leaves_no_route_file(proxy_factory, rdb, fence, phase):
    """The route file cannot be written (its temporary file's path is taken
    by a directory): the switch fails, says the file was not changed,
    restores nothing and creates no route file.  With the fence (the
    default), that is in its preparation, before anything is held (the file
    records the switch under way first); without, in its flip."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", fence=fence)
    state = os.path.join(p.dir, "state")
    os.makedirs(os.path.join(state, f"{DB}.route.tmp"), exist_ok=True)
    w = Writer(p, DB, note="flip-fail")
    w.start()
    mark = p.log_mark()
    try:
        wait_until(lambda: len(w.ids) >= 5, 10, what="writer running")
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        n = len(w.ids)
        wait_until(lambda: len(w.ids) > n + 5, 10, what="writer going on after the failure")
    finally:
        w.stop()
    msg = ei.value.message
    assert f"{phase} failed" in msg and "the route file was not changed" in msg, msg
    log = p.log_since(mark)
    assert "could not restore" not in log and "check state_dir" not in log, log
    assert not os.path.exists(os.path.join(state, f"{DB}.route"))
    assert route_of(p.admin_port, DB) == ("source", "running")
    with rdb.src() as s:
        assert set(w.ids) <= orders_ids(s, w.note)


@pytest.mark.timeout(60)
def test_held_session_counts_as_waiting(proxy_factory, rdb):
    """Session pooling: a client whose transaction PAUSE holds keeps its
    server and waits; SHOW DATABASES and SHOW POOLS count it as waiting."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session")
    with p.connect(dbname=DB) as c:
        c.execute("SELECT 1")
        a = admin_connect(p.admin_port)
        try:
            admin_query(a, f"PAUSE {DB}")
            done = threading.Event()

            def held():
                c.execute("SELECT 1")
                done.set()
            th = threading.Thread(target=held, daemon=True)
            th.start()

            def waiting():
                row = [r for r in admin_query(a, "SHOW DATABASES") if r["name"] == DB][0]
                return row["waiting_clients"] == "1" and row
            row = wait_until(waiting, 10, what="the held client counted as waiting")
            assert row["state"] == "paused", row
            pools = [r for r in admin_query(a, "SHOW POOLS") if r["database"] == DB]
            assert sum(int(r["cl_waiting"]) for r in pools) == 1, pools
            assert sum(int(r["cl_active"]) for r in pools) == 0, pools
            assert not done.is_set()
            admin_query(a, f"RESUME {DB}")
            th.join(10)
            assert done.is_set()
        finally:
            a.close()


@pytest.mark.timeout(60)
def test_failed_dry_run_says_dry_run(proxy_factory, rdb):
    """A DRY RUN that fails is shown as `dry run: failed`, not as a failed switch."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session",
                      target=f"host=127.0.0.1 port={free_port()} dbname={DB}")
    with pytest.raises(AdminError) as ei:
        switch(p, rdb, "DRY RUN")
    assert "preflight" in ei.value.message, ei.value
    rows = [r for r in admin(p.admin_port, "SHOW SWITCHES") if r["db"] == DB]
    assert rows[-1]["result"] == "dry run: failed", rows[-1]
    assert rows[-1]["error"], rows[-1]


@pytest.mark.timeout(120)
def test_session_that_closes_during_its_check_does_not_hold_the_switch(proxy_factory, rdb):
    """A session pooling client whose open transaction holds the drain
    commits and disconnects at once: the check of its session state, sent
    the moment the drain ends, answers for a session that is gone.  The
    switch goes on (before the fix it waited for that answer until
    lag_timeout and failed).  Several rounds, to hit the moment."""
    for _ in range(4):
        rdb.unfence()
        rdb.wait_caught_up()
        p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_timeout="8s",
                          drain_timeout="20s")
        holder = p.connect(dbname=DB)
        holder.execute("BEGIN")
        holder.execute("INSERT INTO orders (note) VALUES ('holds the drain')")
        t = SwitchThread(p, rdb)
        t.start()
        wait_until(lambda: route_of(p.admin_port, DB)[1] == "switching", 10, what="switching")
        time.sleep(0.2)
        holder.execute("COMMIT")
        holder.close()
        t.join(30)
        assert t.error is None, t.error
        assert t.row["result"] == "ok", t.row
        assert route_of(p.admin_port, DB) == ("target", "running")
        p.stop()

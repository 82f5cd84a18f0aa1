"""A switch that can be undone with nothing lost, and an old side that
refuses writes after the flip (issue 11).

Fencing: every switch fences the side it leaves (its application roles
read-only there, their other sessions ended) and lifts any fence on the side
it goes to.  A writer that bypasses pgcutover (connected to the source
directly) gets an error after the flip, and none of its acknowledged writes
is missing from the side it wrote to.

Reverse replication (reverse_replication = on): three round trips under a
pgbench load with a per-transaction log, in both pool modes; after each
switch the side routed to holds exactly the transactions pgbench saw
committed since the start, sequences are never behind, nothing failed and
no session was closed.

The reverse objects a test creates (publication, slot, subscription
pgcutover_rev_<db>_<hash>) are dropped between tests.
"""

import os
import threading
import time
import urllib.request

import psycopg
import pytest
from psycopg import sql

from pgutil import PASSWORDS
from replication import (AdminError, Pgbench, admin, admin_connect, admin_query, apply_stalled,
                         cutover_proxy, replicated_fixtures, route_of, server_port, switch,
                         wait_until)

DB = "cut_rev"


def reverse_name(db):
    """pgcutover's name for the reverse objects (admin/cutover/replication_names.c)."""
    h = 2166136261
    base = ""
    for ch in db.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
        c = chr(ch)
        if len(base) < 40 and (c.isalnum() or c == "_"):
            base += c.lower()
    return f"pgcutover_rev_{base}_{h:08x}"


REV = reverse_name(DB)


def drop_reverse(repl):
    """Remove what reverse replication created; forward replication enabled."""
    with repl.src() as s:
        row = s.execute("SELECT subenabled FROM pg_subscription WHERE subname = %s",
                        (REV,)).fetchone()
        if row is not None:
            s.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(REV)))
            s.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(
                sql.Identifier(REV)))
            s.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(REV)))
    with repl.tgt() as t:
        t.execute("SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots "
                  "WHERE slot_name = %s AND active", (REV,))
        t.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                  "WHERE slot_name = %s", (REV,))
        t.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(REV)))


def _reset(repl):
    drop_reverse(repl)
    repl.unfence()
    with repl.tgt() as t:
        row = t.execute("SELECT subenabled FROM pg_subscription WHERE subname = %s",
                        (repl.sub,)).fetchone()
    if row is not None and not row[0]:
        repl.set_subscription(True)
    repl.forget_target_writes()
    repl.wait_caught_up()


repl, rdb = replicated_fixtures(DB, reset=_reset)


def side_conn(db, side, user="alice"):
    cluster = db.source if side == "source" else db.target
    return psycopg.connect(cluster.conninfo(user=user, dbname=db.name), autocommit=True)


# -- fencing -------------------------------------------------------------------------


class DirectWriter(threading.Thread):
    """Inserts into orders straight on the source as alice, one autocommit
    insert at a time, until it gets an error: the ids acknowledged, and the
    error that stopped it."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db = db
        self.ids = []
        self.error = None
        self.stopping = threading.Event()

    def run(self):
        try:
            with side_conn(self.db, "source") as c:
                while not self.stopping.is_set():
                    self.ids.append(c.execute(
                        "INSERT INTO orders (note) VALUES ('bypass') RETURNING id").fetchone()[0])
                    time.sleep(0.005)
        except psycopg.Error as e:
            self.error = e


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_fence_stops_a_bypassing_writer(proxy_factory, rdb, mode):
    """A writer connected to the source directly during the switch: after the
    flip it gets an error (its session ended), none of its acknowledged rows
    is missing on the source, a new direct session as alice cannot write
    there (25006), replication and the control connections keep working,
    and the proxied clients see no error (sequence_margin 0: the source's
    sequence is never used again)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=mode)
    bypass = DirectWriter(rdb)
    bypass.start()
    wait_until(lambda: len(bypass.ids) >= 5, 10, what="the bypassing writer running")
    with Pgbench(p.port, DB, clients=4, seconds=4, log=True) as pb:
        pb.start()
        time.sleep(1.0)
        row = switch(p, rdb)
        res = pb.wait()
    bypass.stopping.set()
    bypass.join(15)
    assert row["result"] == "ok", row
    assert int(row["fence_ms"]) >= 0
    assert res.failed == 0 and res.rc == 0, res.stdout
    assert bypass.error is not None, "the bypassing writer was never stopped"
    # every row it was told committed is on the source
    with rdb.src() as s:
        have = {r[0] for r in s.execute("SELECT id FROM orders WHERE note = 'bypass'")}
    assert set(bypass.ids) <= have
    # a new direct session cannot write; reading works
    with side_conn(rdb, "source") as c:
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO orders (note) VALUES ('after the flip')")
    # the target took every transaction pgbench saw committed
    with rdb.tgt() as t:
        assert t.execute("SELECT count(*) FROM pgbench_history").fetchone()[0] == res.committed
    # replication still runs (the fence ended no walsender): a superuser's
    # write on the source reaches the target (pgbench_history has no key, so
    # nothing the target wrote since can collide with it)
    with rdb.src() as s:
        s.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                  "VALUES (-7, -7, -7, 0, now())")
    def replicated():
        with rdb.tgt() as t:
            return t.execute("SELECT count(*) FROM pgbench_history "
                             "WHERE tid = -7").fetchone()[0]
    wait_until(replicated, 10, what="replication after the fence")
    # UNFENCE by hand lifts it; FENCE by hand puts it back
    assert admin_query(admin_connect(p.admin_port), f"UNFENCE {DB} source").status == "UNFENCE"
    with side_conn(rdb, "source") as c:
        c.execute("INSERT INTO orders (note) VALUES ('unfenced')")
    assert admin_query(admin_connect(p.admin_port), f"FENCE {DB} source").status == "FENCE"
    with side_conn(rdb, "source") as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO orders (note) VALUES ('fenced again')")


@pytest.mark.timeout(60)
def test_fence_refuses_the_routed_side(proxy_factory, rdb):
    """FENCE of the side the database is routed to would make every client
    read-only: refused with 55000."""
    p = cutover_proxy(proxy_factory, rdb)
    with pytest.raises(AdminError) as ei:
        admin(p.admin_port, f"FENCE {DB} source")
    assert ei.value.sqlstate == "55000", ei.value


@pytest.mark.timeout(90)
def test_failed_switch_lifts_the_old_sides_fence(proxy_factory, rdb):
    """A switch that fails after fencing (lag_timeout) lifts the source's
    fence before resuming there: a direct session can write again."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_timeout="2s")
    with apply_stalled(rdb):
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
    assert "lag wait" in ei.value.message, ei.value
    assert route_of(p.admin_port, DB) == ("source", "running")
    with side_conn(rdb, "source") as c:
        c.execute("INSERT INTO orders (note) VALUES ('after a failed switch')")
    with p.connect(dbname=DB) as c:
        c.execute("INSERT INTO orders (note) VALUES ('through the proxy')")


@pytest.mark.timeout(120)
def test_fence_with_least_privileges(proxy_factory, rdb, clusters):
    """control_user with exactly CREATEROLE and pg_signal_backend (not a
    superuser, no REPLICATION): the fence works, the switch succeeds."""
    for c in (rdb.source, rdb.target):
        with c.admin_connect() as a:
            a.execute("DROP ROLE IF EXISTS fencer")
            a.execute("CREATE ROLE fencer LOGIN CREATEROLE PASSWORD 'fencer_pw'")
            a.execute("GRANT pg_signal_backend TO fencer")
        with c.admin_connect(dbname=DB) as a:
            a.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO fencer")
            a.execute("GRANT SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO fencer")
    userlist = os.path.join(os.path.dirname(clusters.userlist), "userlist-fencer.txt")
    with open(clusters.userlist) as f:
        text = f.read()
    with open(userlist, "w") as f:
        f.write(text + '"fencer" "fencer_pw"\n')
    try:
        p = cutover_proxy(proxy_factory, rdb, settings={"auth_file": userlist},
                          control_user="fencer")
        bypass = DirectWriter(rdb)
        bypass.start()
        wait_until(lambda: len(bypass.ids) >= 3, 10, what="the bypassing writer running")
        row = switch(p, rdb)
        assert row["result"] == "ok", row
        bypass.stopping.set()
        bypass.join(15)
        assert bypass.error is not None
        with side_conn(rdb, "source") as c:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("INSERT INTO orders (note) VALUES ('x')")
    finally:
        rdb.unfence()
        for c in (rdb.source, rdb.target):
            with c.admin_connect(dbname=DB) as a:
                a.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM fencer")
            with c.admin_connect() as a:
                a.execute("DROP ROLE IF EXISTS fencer")


# -- reverse replication ---------------------------------------------------------------


def committed_rows(db, side):
    with (db.src() if side == "source" else db.tgt()) as c:
        return c.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]


def sequence_next(db, side):
    with (db.src() if side == "source" else db.tgt()) as c:
        last, called = c.execute("SELECT last_value, is_called FROM orders_id_seq").fetchone()
        return last + 1 if called else last


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_three_round_trips_lose_nothing(proxy_factory, rdb, mode):
    """Switch to the target, load, back to the source, load... three round
    trips with reverse_replication on, each switch under pgbench: after each,
    the side routed to has one pgbench_history row per transaction pgbench
    saw committed since the start, its sequence is not behind the other
    side's, no transaction failed and no session was closed."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=mode, reverse_replication="on",
                      lag_timeout="20s")
    total = committed_rows(rdb, "source")
    sides = ["target", "source"] * 3
    for k, to in enumerate(sides):
        with Pgbench(p.port, DB, clients=4, seconds=3, log=True,
                     mode="prepared" if k % 2 else "simple") as pb:
            pb.start()
            time.sleep(1.0)
            row = switch(p, rdb, f"TO {to}")
            res = pb.wait()
        assert row["result"] == "ok", row
        assert not row["error"], row
        assert row["sessions_closed"] == "0", row
        assert res.rc == 0 and res.failed == 0, res.stdout
        assert len(res.logs) == res.committed, (len(res.logs), res.committed)
        total += res.committed
        assert committed_rows(rdb, to) == total, (k, to, committed_rows(rdb, to), total)
        other = "source" if to == "target" else "target"
        assert sequence_next(rdb, to) >= sequence_next(rdb, other), k
        assert route_of(p.admin_port, DB) == (to, "running")
        # SHOW LAG reads the slot of the way back on the side routed to
        lag = admin(p.admin_port, f"SHOW LAG {DB}")[0]
        assert lag["lag_bytes"] is not None, lag
    # the way back streams; SHOW REPLICATION says so
    rows = {r["direction"]: r for r in admin(p.admin_port, f"SHOW REPLICATION {DB}")}
    wait_until(lambda: {r["direction"]: r["state"] for r in
                        admin(p.admin_port, f"SHOW REPLICATION {DB}")}["reverse"] == "disabled",
               10, what="the reverse direction disabled, on the source")
    assert rows["forward"]["state"] in ("streaming", "failing"), rows


@pytest.mark.timeout(120)
def test_reverse_preparation_refused_without_privilege(proxy_factory, rdb, clusters):
    """The source refuses CREATE SUBSCRIPTION to a control_user that is not a
    superuser (PostgreSQL 15): the preflight's privileges check (CHECK) says
    so before anything is made or held, forward replication keeps
    streaming, the database stays on the source."""
    for c in (rdb.source, rdb.target):
        with c.admin_connect() as a:
            a.execute("DROP ROLE IF EXISTS revlite")
            a.execute("CREATE ROLE revlite LOGIN CREATEROLE PASSWORD 'revlite_pw'")
            a.execute("GRANT pg_signal_backend, pg_read_all_stats TO revlite")
    userlist = os.path.join(os.path.dirname(clusters.userlist), "userlist-revlite.txt")
    with open(clusters.userlist) as f:
        text = f.read()
    with open(userlist, "w") as f:
        f.write(text + '"revlite" "revlite_pw"\n')
    try:
        p = cutover_proxy(proxy_factory, rdb, settings={"auth_file": userlist},
                          control_user="revlite", reverse_replication="on",
                          sequence_sync="none")
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert ei.value.sqlstate == "42501", ei.value
        assert ei.value.message.startswith(
            'preflight failed: privileges check: control_user "revlite" needs on the '), ei.value
        assert "superuser (reverse replication" in ei.value.message, ei.value
        assert route_of(p.admin_port, DB) == ("source", "running")
        rdb.wait_caught_up()
        with p.connect(dbname=DB) as c:
            c.execute("INSERT INTO orders (note) VALUES ('still on the source')")
    finally:
        for c in (rdb.source, rdb.target):
            with c.admin_connect() as a:
                a.execute("DROP ROLE IF EXISTS revlite")


@pytest.mark.timeout(120)
def test_target_stops_during_the_reverse_preparation(proxy_factory, rdb):
    """The target goes down while the preparation creates the way back (a
    transaction open on the target holds the slot's creation there, then the
    target stops): the switch fails before anything is held, the database
    stays on the source and takes writes; once the target is back, forward
    replication catches up."""
    p = cutover_proxy(proxy_factory, rdb, reverse_replication="on")
    blocker = rdb.tgt()
    try:
        blocker.execute("BEGIN")
        blocker.execute("SELECT txid_current()")    # an xid: a new slot waits for it

        def creating():
            # from another database: a session in this one would fail the
            # switch's bypass check before it gets to the preparation
            with rdb.source.admin_connect() as s:
                return s.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                 "AND query LIKE 'CREATE SUBSCRIPTION%'").fetchone()[0]
        result = {}

        def run():
            try:
                switch(p, rdb)
            except AdminError as e:
                result["error"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_until(creating, 15, what="the preparation creating the way back")
        rdb.target.stop()
        t.join(60)
        assert not t.is_alive()
        assert "preparation failed: could not" in result["error"].message, result
        assert route_of(p.admin_port, DB) == ("source", "running")
        with p.connect(dbname=DB) as c:
            c.execute("INSERT INTO orders (note) VALUES ('while the target is down')")
    finally:
        try:
            blocker.close()
        except psycopg.Error:
            pass
        if not rdb.target.started:
            rdb.target.start()
    rdb.wait_caught_up()
    with rdb.tgt() as t:
        assert t.execute("SELECT count(*) FROM orders WHERE note = 'while the target is down'"
                         ).fetchone()[0] == 1


@pytest.mark.timeout(120)
def test_reverse_slot_cannot_be_created(proxy_factory, rdb):
    """The target has no replication slot left: the preparation fails, the
    switch fails before anything is held, forward replication streams."""
    made = []
    with rdb.tgt() as t:
        try:
            for i in range(50):
                t.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')",
                          (f"filler_{i}",))
                made.append(f"filler_{i}")
        except psycopg.Error:
            pass
    try:
        p = cutover_proxy(proxy_factory, rdb, reverse_replication="on")
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert "preparation failed: could not" in ei.value.message, ei.value
        assert route_of(p.admin_port, DB) == ("source", "running")
        rdb.wait_caught_up()
    finally:
        with rdb.tgt() as t:
            for name in made:
                t.execute("SELECT pg_drop_replication_slot(%s)", (name,))


@pytest.mark.timeout(120)
def test_reverse_that_does_not_stream_refuses_the_switch_back(proxy_factory, rdb):
    """The way back's slot disappears after the preparation made it (a
    client's open transaction holds the switch in its drain meanwhile): the
    switch flips (the route stands), the way back does not stream, which is
    loud in SHOW REPLICATION, the metrics and the log, and a switch back is
    refused until it streams."""
    p = cutover_proxy(proxy_factory, rdb, reverse_replication="on", drain_timeout="30s")
    holder = p.connect(dbname=DB)
    holder.execute("BEGIN")
    holder.execute("INSERT INTO orders (note) VALUES ('holds the drain')")
    result = {}
    t = threading.Thread(target=lambda: result.update(row=switch(p, rdb)), daemon=True)
    t.start()

    def slot_there():
        with rdb.tgt() as c:
            return c.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s",
                             (REV,)).fetchone()[0]
    wait_until(slot_there, 15, what="the reverse slot created")

    def dropped():
        with rdb.tgt() as c:
            try:
                c.execute("SELECT pg_drop_replication_slot(%s)", (REV,))
                return True
            except psycopg.errors.ObjectInUse:
                # the walsender that created it is still on its way out
                return False
    wait_until(dropped, 10, what="the reverse slot dropped")
    holder.execute("COMMIT")
    holder.close()
    t.join(60)
    assert result["row"]["result"] == "ok", result
    assert route_of(p.admin_port, DB) == ("target", "running")
    p.wait_log(r"does not stream", timeout=30)
    rows = {r["direction"]: r for r in admin(p.admin_port, f"SHOW REPLICATION {DB}")}
    assert rows["reverse"]["state"] in ("missing", "failing"), rows
    assert rows["reverse"]["error"], rows
    with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert f'pgcutover_reverse_replication_failing{{database="{DB}"}} 1' in metrics, metrics
    with pytest.raises(AdminError) as ei:
        switch(p, rdb, "TO source")
    assert "preflight" in ei.value.message, ei.value
    assert route_of(p.admin_port, DB) == ("target", "running")


# -- a switch back that would lose writes --------------------------------------------


@pytest.mark.timeout(120)
def test_switch_back_that_would_lose_writes_is_refused(proxy_factory, rdb):
    """lag_method none, no reverse replication: after the switch, writes on
    the target; SWITCH TO source fails its preflight and says what would be
    lost; SWITCH TO source FORCE does it."""
    p = cutover_proxy(proxy_factory, rdb, lag_method="none")
    rdb.wait_caught_up()
    assert switch(p, rdb)["result"] == "ok"
    # nothing written yet: a switch back would lose nothing (dry run passes)
    assert switch(p, rdb, "TO source DRY RUN")["result"].startswith("dry run: ok")
    with p.connect(dbname=DB) as c:
        for _ in range(5):
            c.execute("INSERT INTO orders (note) VALUES ('on the target')")
    with pytest.raises(AdminError) as ei:
        switch(p, rdb, "TO source")
    assert "would lose" in ei.value.message, ei.value
    assert ei.value.message.endswith("SWITCH ... FORCE)"), ei.value   # whole, not cut
    assert route_of(p.admin_port, DB) == ("target", "running")
    row = switch(p, rdb, "TO source FORCE")
    assert row["result"] == "ok", row
    assert route_of(p.admin_port, DB) == ("source", "running")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_fence_the_target_before_the_first_switch(proxy_factory, rdb, mode):
    """FENCE db target guards the target before the first switch (a direct
    writer there gets 25006, replication still applies); the switch lifts
    it before traffic resumes there: proxied writes succeed on new server
    connections, and the source is fenced instead."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=mode)
    assert admin_query(admin_connect(p.admin_port), f"FENCE {DB} target").status == "FENCE"
    with side_conn(rdb, "target") as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO orders (note) VALUES ('straight to the target')")
    with p.connect(dbname=DB) as c:
        c.execute("INSERT INTO orders (note) VALUES ('before the switch')")
    rdb.wait_caught_up()
    with rdb.tgt() as t:
        assert t.execute("SELECT count(*) FROM orders WHERE note = 'before the switch'"
                         ).fetchone()[0] == 1
    assert switch(p, rdb)["result"] == "ok"
    conns = [p.connect(dbname=DB) for _ in range(3)]
    try:
        for c in conns:
            c.execute("INSERT INTO orders (note) VALUES ('after the switch')")
    finally:
        for c in conns:
            c.close()
    with side_conn(rdb, "target") as c:
        c.execute("INSERT INTO orders (note) VALUES ('direct, after the switch')")
    with side_conn(rdb, "source") as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO orders (note) VALUES ('direct to the old side')")


@pytest.mark.timeout(120)
def test_crash_after_the_fence_leaves_no_fence_on_the_routed_side(proxy_factory, rdb):
    """pgcutover is killed in the lag wait, after it fenced the source and
    before the flip: the route file still says source.  Restarted, it lifts
    that fence before any transaction runs (the guard at first sight), so
    its clients write on the source, through new server connections too.
    A fence left on the side not routed to stays (it lives in the
    database)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", lag_timeout="60s")
    assert admin_query(admin_connect(p.admin_port), f"FENCE {DB} target").status == "FENCE"
    with apply_stalled(rdb):
        t = threading.Thread(target=lambda: pytest.raises(Exception, switch, p, rdb),
                             daemon=True)
        t.start()
        p.wait_log(r"the source is fenced", timeout=20)
        with side_conn(rdb, "source") as c:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                c.execute("INSERT INTO orders (note) VALUES ('while fenced')")
        p.proc.kill()
        p.proc.wait(timeout=10)
        p.expect_exit = True
    t.join(10)
    route_file = os.path.join(p.dir, "state", f"{DB}.route")
    with open(route_file) as f:
        text = f.read()
    assert "route = source" in text and "switching_to = target" in text, text
    p.expect_exit = False
    p.start()
    # held ("paused") only while the fence of the source is being lifted
    p.wait_log(r"was cut short; any fence it left on its source is lifted", timeout=10)
    wait_until(lambda: route_of(p.admin_port, DB) == ("source", "running"), 10,
               what="running on the source")
    conns = [p.connect(dbname=DB) for _ in range(3)]
    try:
        for c in conns:
            c.execute("INSERT INTO orders (note) VALUES ('after the restart')")
    finally:
        for c in conns:
            c.close()
    with side_conn(rdb, "source") as c:
        c.execute("INSERT INTO orders (note) VALUES ('direct, after the restart')")
    with side_conn(rdb, "target") as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO orders (note) VALUES ('the target is still fenced')")
    # the mark is cleared once the fence is lifted; a switch then works
    wait_until(lambda: "switching_to" not in open(route_file).read(), 10,
               what="switching_to cleared")
    rdb.wait_caught_up()
    assert switch(p, rdb)["result"] == "ok"

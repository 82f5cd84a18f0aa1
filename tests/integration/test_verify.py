"""VERIFY: the data of a logically replicated pair compared online, under a
live pgbench load through pgcutover, and switch_verify inside the pause.

- With no fault, three VERIFY runs in a row under load report no
  difference (a range that differs only by lag is re-checked once the
  target has applied the source's position, and settles).
- Faults seeded behind replication's back (a row deleted on the target, a
  value changed, an extra row, a row of a table missing from the
  publication) are each found and named, with their keys; once fixed, a
  VERIFY finds nothing.
- Values whose text depends on settings (floats, numeric scale,
  timestamptz, intervals, bytea, jsonb, arrays, collations, NULL against
  '') invent no difference when the target's defaults differ, and a change
  of each is found.
- switch_verify: the ranges VERIFY left pending under load are compared in
  the pause; a difference there aborts the switch, which resumes on the
  source; an exhausted verify_budget aborts or proceeds as
  switch_verify_incomplete says.
"""

import re
import time

import pytest
from psycopg import sql

from proxyutil import SLOW
from replication import (AdminError, Pgbench, admin, cutover_proxy, replicated_fixtures,
                         route_of, stuck_clients, switch)

DB = "vfy"


def _reset(repl):
    """After a switch that went through, the load wrote to the target: its
    pgbench balances are no longer the source's (replicated UPDATEs would
    overwrite them one by one, but VERIFY compares them all).  Copy the
    tables afresh."""
    if getattr(repl, "diverged", False):
        repl.resync()
        repl.wait_caught_up()
        repl.diverged = False


repl, rdb = replicated_fixtures(DB, reset=_reset)


def verify(p, tables="", timeout=90, progress=None):
    """VERIFY DB [tables] to its end: ({table: SHOW VERIFY row}, [(table, key, kind)]).
    progress: a list that gets every SHOW VERIFY row seen while it ran."""
    assert admin(p.admin_port, f"VERIFY {DB} {tables}".strip()).status == "VERIFY"
    deadline = time.monotonic() + timeout * SLOW
    while True:
        rows = admin(p.admin_port, f"SHOW VERIFY {DB}")
        if rows and all(r["state"] not in ("queued", "running") for r in rows):
            break
        if progress is not None:
            progress.extend(rows)
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)
    diffs = admin(p.admin_port, f"SHOW VERIFY DIFFS {DB}")
    return {r["table"]: r for r in rows}, sorted((d["table"], d["key"], d["kind"]) for d in diffs)


def no_difference(rows, settled=False):
    """No difference in any table; with settled (no load), every range settled too."""
    for t, r in rows.items():
        assert r["state"] == "done", r
        assert (r["rows_missing"], r["rows_extra"], r["rows_different"],
                r["chunks_mismatched"]) == ("0", "0", "0", "0"), r
        if settled:
            assert r["chunks_pending"] == "0" and int(r["chunks_matched"]) >= 1, r
            assert r["rows_checked"] == r["rows_total"], r


@pytest.fixture
def narrow_publication(rdb):
    """public.audit exists on both sides, outside the publication the
    subscription reads (vfy_pub2 lists the other tables by name)."""
    for conn in (rdb.src, rdb.tgt):
        with conn() as c:
            c.execute("CREATE TABLE audit (id int PRIMARY KEY, note text)")
    with rdb.src() as s:
        s.execute("CREATE PUBLICATION vfy_pub2 FOR TABLE pgbench_accounts, pgbench_branches, "
                  "pgbench_tellers, pgbench_history, orders, pgcutover_marker")
    with rdb.tgt() as t:
        t.execute("ALTER SUBSCRIPTION vfy_sub SET PUBLICATION vfy_pub2 WITH (refresh = false)")
    try:
        yield
    finally:
        with rdb.tgt() as t:
            t.execute("ALTER SUBSCRIPTION vfy_sub SET PUBLICATION vfy_pub WITH (refresh = false)")
        with rdb.src() as s:
            s.execute("DROP PUBLICATION IF EXISTS vfy_pub2")
        for conn in (rdb.src, rdb.tgt):
            with conn() as c:
                c.execute("DROP TABLE IF EXISTS audit")


@pytest.mark.timeout(180)
def test_faults_under_load(proxy_factory, rdb, narrow_publication):
    p = cutover_proxy(proxy_factory, rdb, name="verify-load")
    with rdb.src() as s:
        order_id = s.execute("INSERT INTO orders (note) VALUES ('seed') RETURNING id"
                             ).fetchone()[0]
    rdb.wait_caught_up()
    with Pgbench(p.port, DB, clients=4, seconds=45) as pb:
        pb.start()
        time.sleep(0.5)
        # no fault: three runs in a row find nothing, with the load and its lag on
        for run in range(3):
            assert pb.proc.poll() is None, "pgbench ended before the runs: make it longer"
            rows, diffs = verify(p)
            assert diffs == [], (run, diffs)
            no_difference(rows)
            assert set(rows) == {"public.audit", "public.orders", "public.pgbench_accounts",
                                 "public.pgbench_branches", "public.pgbench_history",
                                 "public.pgbench_tellers", "public.pgcutover_marker"}, rows
            assert int(rows["public.pgbench_accounts"]["rows_checked"]) > 0 or \
                int(rows["public.pgbench_accounts"]["chunks_pending"]) > 0, rows
        # faults behind replication's back
        with rdb.tgt() as t:
            t.execute("DELETE FROM pgbench_accounts WHERE aid = 777")
            t.execute("UPDATE orders SET note = 'changed on the target' WHERE id = %s",
                      (order_id,))
            t.execute("INSERT INTO pgbench_accounts (aid, bid, abalance, filler) "
                      "VALUES (100077, 1, 0, 'extra')")
        with rdb.src() as s:
            s.execute("INSERT INTO audit VALUES (1, 'never replicated')")
        assert pb.proc.poll() is None, "pgbench ended before the faults' run: make it longer"
        rows, diffs = verify(p)
        assert diffs == sorted([("public.pgbench_accounts", "(777)", "missing"),
                                ("public.pgbench_accounts", "(100077)", "extra"),
                                ("public.orders", f"({order_id})", "different"),
                                ("public.audit", "(1)", "missing")]), diffs
        acc = rows["public.pgbench_accounts"]
        assert (acc["rows_missing"], acc["rows_extra"], acc["rows_different"]) == \
            ("1", "1", "0"), acc
        assert int(acc["chunks_mismatched"]) >= 1, acc
        assert rows["public.audit"]["rows_missing"] == "1", rows["public.audit"]
        # CHECK says so, and so does a switch's preflight
        check = {r["check"]: r for r in admin(p.admin_port, f"CHECK {DB}")}
        assert check["verify"]["status"] == "fail", check["verify"]
        assert "found 4 differing rows" in check["verify"]["detail"], check["verify"]
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        # (audit is not in the publication: that check comes first)
        assert "failed too: verify" in ei.value.message, ei.value
        res = pb.wait(on_timeout=lambda: stuck_clients(p))
    assert res.failed == 0 and not res.errors, res.stdout
    # fixed: nothing found any more
    with rdb.src() as s:
        acc777 = s.execute("SELECT aid, bid, abalance, filler FROM pgbench_accounts "
                           "WHERE aid = 777").fetchone()
        s.execute("DELETE FROM audit")
    rdb.wait_caught_up()
    with rdb.tgt() as t:
        t.execute("INSERT INTO pgbench_accounts (aid, bid, abalance, filler) "
                  "VALUES (%s, %s, %s, %s)", acc777)
        t.execute("DELETE FROM pgbench_accounts WHERE aid = 100077")
        t.execute("UPDATE orders SET note = 'seed' WHERE id = %s", (order_id,))
    rows, diffs = verify(p)
    assert diffs == [], diffs
    no_difference(rows)


TYPES_TABLE = """CREATE TABLE types (
    id int PRIMARY KEY, f8 float8, f4 real, num numeric, ts timestamptz, iv interval,
    b bytea, j jsonb, arr float8[], t text COLLATE "C", note text, d date, m money,
    bo boolean, u uuid, tsp timestamp(3), ch char(4), bp bpchar, vc varchar(10), i8 bigint,
    i2 smallint, ci text COLLATE vfy_ci)"""
# a case-insensitive collation: equal under it is not the same value
CI_COLLATION = ("CREATE COLLATION IF NOT EXISTS vfy_ci (provider = icu, "
                "locale = 'und-u-ks-level2', deterministic = false)")

TYPES_ROWS = [
    (1, 0.1, 0.1, "1.10", "2024-03-10 01:30:00+00", "1 day 02:03:04", b"\x00\xff",
     '{"b": 1, "a": [1, 2]}', [1.5, 0.1], "Zebra", "", "2024-02-29", "12.34",
     True, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-03-10 01:30:00.123", "ab", "ab",
     "Mixed", 9223372036854775807, -32768, "Zebra"),
    (2, -0.0, 3.4028235e38, "1e-20", "1999-12-31 23:59:59.999999+00", "-3 mons",
     b"plain", '{"x": null}', [], "apple", None, "0001-01-01", "-0.01",
     False, None, "infinity", "", "", "", 0, 0, ""),
    (3, 1e308, 1.17549435e-38, "NaN", "infinity", "0", b"", '[]', None, "", "x", None, None,
     None, None, None, None, None, None, None, None, None),
]


@pytest.fixture
def types_table(rdb):
    for conn in (rdb.src, rdb.tgt):
        with conn() as c:
            c.execute(CI_COLLATION)
            c.execute(TYPES_TABLE)
    with rdb.tgt() as t:
        t.execute("ALTER SUBSCRIPTION vfy_sub REFRESH PUBLICATION")
    with rdb.src() as s:
        for row in TYPES_ROWS:
            s.execute("INSERT INTO types VALUES (" + ", ".join(["%s"] * len(row)) + ")", row)
    rdb.wait_synced(extra_tables=1)
    rdb.wait_caught_up()
    # the target's sessions write every one of these types differently by default
    with rdb.tgt() as t:
        t.execute(sql.SQL("ALTER DATABASE {} SET TimeZone = 'Asia/Kathmandu'").format(
            sql.Identifier(DB)))
        for setting in ("extra_float_digits = -3", "DateStyle = 'SQL, DMY'",
                        "IntervalStyle = 'iso_8601'", "bytea_output = 'escape'",
                        "lc_monetary = 'C'"):
            t.execute(sql.SQL(f"ALTER DATABASE {{}} SET {setting}").format(
                sql.Identifier(DB)))
    try:
        yield
    finally:
        with rdb.tgt() as t:
            t.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(sql.Identifier(DB)))
        with rdb.src() as s:
            s.execute("DROP TABLE types")
        with rdb.tgt() as t:
            t.execute("DROP TABLE types")
            t.execute("ALTER SUBSCRIPTION vfy_sub REFRESH PUBLICATION")


def restore_row(rdb, i):
    """Row i of types on the target as it is on the source (its text, read
    and written under the same settings on both sides)."""
    canon = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
             "SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; ")
    with rdb.src() as s:
        s.execute(canon)
        text = s.execute("SELECT x::text FROM types x WHERE id = %s", (i,)).fetchone()[0]
    with rdb.tgt() as t:
        t.execute(canon)
        t.execute("DELETE FROM types WHERE id = %s", (i,))
        t.execute("INSERT INTO types SELECT (%s::types).*", (text,))


@pytest.mark.timeout(240)
def test_types_neither_hide_nor_invent(proxy_factory, rdb, types_table):
    p = cutover_proxy(proxy_factory, rdb, name="verify-types")
    rows, diffs = verify(p, "types")
    assert list(rows) == ["public.types"], rows
    assert rows["public.types"]["rows_checked"] == "3", rows
    assert diffs == [], diffs
    no_difference(rows, settled=True)
    # the text column's collation differs on the target: no text changes
    with rdb.tgt() as t:
        t.execute('ALTER TABLE types ALTER t TYPE text COLLATE "POSIX"')
        # jsonb keeps one form whatever order keys are written in: not a difference
        t.execute("""UPDATE types SET j = '{"a": [1, 2], "b": 1}' WHERE id = 1""")
        # char(4) pads: 'ab' and 'ab ' are the same stored value
        t.execute("UPDATE types SET ch = 'ab ' WHERE id = 1")
    rows, diffs = verify(p, "types")
    assert diffs == [], diffs
    # every other kind of change is one
    changes = {
        1: "num = 1.1",                                        # numeric scale
        2: "f8 = 0.0",                                         # -0 against 0
        3: "f4 = '1.1754945e-38'",                             # the next real up
    }
    with rdb.tgt() as t:
        for i, change in changes.items():
            t.execute(f"UPDATE types SET {change} WHERE id = {i}")
    rows, diffs = verify(p, "types")
    assert diffs == [("public.types", f"({i})", "different") for i in (1, 2, 3)], diffs
    more = ["ts = ts + interval '1 microsecond'", "b = '\\x00fe'::bytea",
            "arr = '{1.5,0.1000000000000001}'", "note = NULL",          # '' against NULL
            "iv = '1 day 02:03:05'",
            # the columns hashed in binary rather than as text (verify_sql.c)
            "bo = NULL", "u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
            "tsp = tsp + interval '1 millisecond'", "ch = 'ab c'",
            "bp = 'ab '",                                      # unpadded: a trailing blank
            "vc = 'mixed'", "i8 = i8 - 1", "i2 = NULL", "i2 = -32767",
            "ci = 'zebra'",                                    # equal under vfy_ci, not the same
            "vc = 'Zebra', ci = 'Mixed'"]                      # values swapped between columns
    for change in more:
        restore_row(rdb, 1)     # the source's row again, on the target
        with rdb.tgt() as t:
            t.execute(f"UPDATE types SET {change} WHERE id = 1")
        rows, diffs = verify(p, "types")
        assert diffs == [("public.types", "(1)", "different")] + \
            [("public.types", f"({i})", "different") for i in (2, 3)], (change, diffs)


@pytest.mark.timeout(90)
def test_table_without_key_and_commands(proxy_factory, rdb):
    """pgbench_history has no key: compared whole; VERIFY's refusals; STOP."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-cmds")
    with rdb.tgt() as t:
        t.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                  "VALUES (1, 1, 1, 1, now())")
    rdb.dirty = True
    rows, diffs = verify(p, "pgbench_history, nosuch")
    assert diffs == [("public.pgbench_history", "(whole table)", "different")], diffs
    assert rows["public.pgbench_history"]["chunks_mismatched"] == "1", rows
    assert rows["?.nosuch"]["state"] == "skipped: no table of that name on the side routed to", \
        rows
    with pytest.raises(AdminError) as ei:
        admin(p.admin_port, "VERIFY nosuchdb")
    assert ei.value.sqlstate == "3D000", ei.value
    with pytest.raises(AdminError) as ei:
        admin(p.admin_port, f"VERIFY {DB} STOP")
    assert ei.value.sqlstate == "55000" and "no VERIFY" in ei.value.message, ei.value
    with rdb.tgt() as t:
        t.execute("DELETE FROM pgbench_history WHERE tid = 1 AND bid = 1 AND aid = 1 "
                  "AND delta = 1")
    assert admin(p.admin_port, f"VERIFY {DB}").status == "VERIFY"
    with pytest.raises(AdminError) as ei:
        admin(p.admin_port, f"VERIFY {DB}")
    assert ei.value.sqlstate == "55000" and "already running" in ei.value.message, ei.value
    assert admin(p.admin_port, f"VERIFY {DB} STOP").status == "VERIFY"
    states = {r["state"] for r in admin(p.admin_port, f"SHOW VERIFY {DB}")}
    assert states <= {"done", "stopped"}, states
    # a VERIFY stopped before its end vouches for nothing it did not compare
    check = {r["check"]: r for r in admin(p.admin_port, f"CHECK {DB}")}
    assert check["verify"]["status"] == "warn", check["verify"]
    assert "stopped by VERIFY STOP" in check["verify"]["detail"], check["verify"]


def verify_backends(conn):
    """(pid, wait_event_type) of the sessions VERIFY has on a server."""
    return conn.execute("SELECT pid, wait_event_type FROM pg_stat_activity "
                        "WHERE application_name = 'pgcutover verify'").fetchall()


@pytest.mark.timeout(90)
def test_stop_ends_the_servers_queries(proxy_factory, rdb):
    """VERIFY STOP closes VERIFY's connections, and the servers end what
    still ran on them (client_connection_check_interval, from PostgreSQL
    14): a query waiting for a lock on the target does not wait on, and then
    read the table, for nobody."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-stop")
    with rdb.tgt() as locker, rdb.tgt() as watch:
        with locker.transaction():
            locker.execute("LOCK TABLE pgbench_accounts IN ACCESS EXCLUSIVE MODE")
            assert admin(p.admin_port, f"VERIFY {DB} pgbench_accounts").status == "VERIFY"
            deadline = time.monotonic() + 20 * SLOW
            while not any(w == "Lock" for _, w in verify_backends(watch)):
                assert time.monotonic() < deadline, verify_backends(watch)
                time.sleep(0.05)
            assert admin(p.admin_port, f"VERIFY {DB} STOP").status == "VERIFY"
            # the lock is still held: only the server's check can end them
            deadline = time.monotonic() + 10 * SLOW
            while verify_backends(watch):
                assert time.monotonic() < deadline, verify_backends(watch)
                time.sleep(0.1)
    states = {r["state"] for r in admin(p.admin_port, f"SHOW VERIFY {DB}")}
    assert states == {"stopped"}, states
    # and VERIFY runs again at once
    rows, diffs = verify(p, "pgbench_accounts")
    assert diffs == [], diffs
    no_difference(rows)


def scrape(port):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


@pytest.mark.timeout(240)
def test_switch_verify(proxy_factory, rdb):
    """switch_verify under load: what VERIFY left pending (the hot rows of
    pgbench, and pgbench_history, written to all the time) is compared in
    the pause.  Alike: the switch goes on.  A row written to the target
    behind replication's back (in the keyless pgbench_history, or the hot
    row of pgbench_branches deleted): the switch aborts and resumes on the
    source.
    A budget too small: abort or proceed as switch_verify_incomplete says."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-switch", switch_verify="on",
                      verify_budget="2s")
    # without a VERIFY there is nothing to re-check: incomplete, so it aborts
    with pytest.raises(AdminError) as ei:
        switch(p, rdb)
    assert "switch_verify: 0 of 0 ranges left unchecked" in ei.value.message, ei.value
    assert "no finished VERIFY of vfy from its source" in ei.value.message, ei.value
    assert route_of(p.admin_port, DB) == ("source", "running")

    with Pgbench(p.port, DB, clients=4, seconds=50) as pb:
        pb.start()
        time.sleep(0.5)
        # pgbench_history, written by every transaction, is nearly always left
        # pending; a run that caught it between two writes settles it instead
        # pgbench_branches (keyed: one row, updated by every transaction) likewise
        for _ in range(5):
            rows, diffs = verify(p)
            assert diffs == [], diffs
            hist = [r for t, r in rows.items() if t.endswith("pgbench_history")]
            branches = [r for t, r in rows.items() if t.endswith("pgbench_branches")]
            if hist and hist[0]["chunks_pending"] != "0" and \
                    branches and branches[0]["chunks_pending"] != "0":
                break
        assert hist and hist[0]["chunks_pending"] != "0", rows
        assert branches and branches[0]["chunks_pending"] != "0", rows
        pending = sum(int(r["chunks_pending"]) for r in rows.values())
        assert pending >= 1, rows
        m = scrape(p.metrics_port)
        assert f'pgcutover_verify_chunks{{database="{DB}",state="pending"}} {pending}' in m, m
        # a row on the target only, in a range VERIFY could not settle
        with rdb.tgt() as t:
            t.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                      "VALUES (1, 1, 1, 1, now())")
        rdb.dirty = True
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert ei.value.message.startswith("verify failed: switch_verify: 1 of the ranges the "
                                           "last VERIFY left pending differ between the sides: "
                                           "public.pgbench_history (the whole table)"), ei.value
        assert route_of(p.admin_port, DB) == ("source", "running")
        with rdb.tgt() as t:
            t.execute("DELETE FROM pgbench_history WHERE tid = 1 AND bid = 1 AND aid = 1 "
                      "AND delta = 1 AND mtime > now() - interval '1 minute'")
        # the hot row of a keyed table, deleted on the target (replication's updates
        # of it find nothing there): its pending key range differs in the pause
        with rdb.tgt() as t:
            t.execute("DELETE FROM pgbench_branches WHERE bid = 1")
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert re.match(r"verify failed: switch_verify: 1 of the ranges the last VERIFY left "
                        r"pending differ between the sides: public\.pgbench_branches "
                        r"\(bid -?\d+ to -?\d+\)", ei.value.message), ei.value
        assert route_of(p.admin_port, DB) == ("source", "running")
        # back as the source has it (the source's next update of it overwrites it anyway)
        with rdb.src() as s:
            row = s.execute("SELECT bid, bbalance, filler FROM pgbench_branches "
                            "WHERE bid = 1").fetchone()
        with rdb.tgt() as t:
            t.execute("INSERT INTO pgbench_branches VALUES (%s, %s, %s) "
                      "ON CONFLICT DO NOTHING", row)
        # a budget of 1 ms runs out: abort (the default), then proceed
        p.databases[DB].update(verify_budget="1ms")
        p.write_config()
        admin(p.admin_port, "RELOAD")
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert re.search(r"switch_verify: \d+ of \d+ ranges left unchecked: verify_budget "
                         r"\(1 ms\) ran out \(switch_verify_incomplete = abort\)",
                         ei.value.message), ei.value
        assert route_of(p.admin_port, DB) == ("source", "running")
        # alike, within the budget: the switch goes on
        p.databases[DB].update(verify_budget="2s")
        p.write_config()
        admin(p.admin_port, "RELOAD")
        rows, diffs = verify(p)
        assert diffs == [], diffs
        assert pb.proc.poll() is None, "pgbench ended before the switch: make it longer"
        row = switch(p, rdb)
        assert row["result"] == "ok", row
        rdb.diverged = True
        res = pb.wait(on_timeout=lambda: stuck_clients(p))
    assert res.failed == 0 and not res.errors, res.stdout
    m = scrape(p.metrics_port)
    got = re.search(rf'pgcutover_last_switch_phase_seconds{{database="{DB}",phase="verify"}} '
                    r'(\d+\.\d+)', m)
    assert got and float(got.group(1)) <= 2.0, m
    assert p.wait_log(r"switch_verify: \d+ ranges re-checked in \d+ ms, all alike")


@pytest.mark.timeout(60)
def test_switch_verify_incomplete_proceed(proxy_factory, rdb):
    """switch_verify_incomplete = proceed: with nothing VERIFY could vouch
    for, the switch logs the ranges left unchecked and goes on."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-proceed", switch_verify="on",
                      switch_verify_incomplete="proceed")
    row = switch(p, rdb)
    assert row["result"] == "ok", row
    rdb.diverged = True
    assert route_of(p.admin_port, DB) == ("target", "running")
    assert p.wait_log(r"switch_verify: 0 of 0 ranges re-checked in \d+ ms, 0 left unchecked: "
                      r"no finished VERIFY of vfy from its source")


class ActivitySampler:
    """Samples pg_stat_activity on both sides in a thread: the most queries
    of VERIFY reading table data at once on each side, and the connections
    VERIFY holds."""

    def __init__(self, rdb):
        import threading
        self.rdb = rdb
        self.most = {"source": 0, "target": 0}
        self.conns = {"source": 0, "target": 0}
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        conns = {"source": self.rdb.src(), "target": self.rdb.tgt()}
        try:
            while not self.stop.is_set():
                for side, c in conns.items():
                    active, held = c.execute(
                        "SELECT count(*) FILTER (WHERE state = 'active' "
                        "AND query LIKE '%%FROM \"public\".%%'), count(*) "
                        "FROM pg_stat_activity WHERE application_name = 'pgcutover verify' "
                        "AND datname = %s", (DB,)).fetchone()
                    self.most[side] = max(self.most[side], active)
                    self.conns[side] = max(self.conns[side], held)
                    if active:
                        self.samples += 1
                time.sleep(0.002)
        finally:
            for c in conns.values():
                c.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("jobs", [1, 3])
def test_bounded(proxy_factory, rdb, jobs):
    """At most verify_jobs queries reading data per side at once (plus one
    connection per side for the listing and the position polls), and SHOW
    VERIFY DIFFS keeps 1000 keys while the counters go on: 1200 rows deleted
    on the target are all counted."""
    p = cutover_proxy(proxy_factory, rdb, name=f"verify-bounded-{jobs}", verify_jobs=jobs)
    gone = list(range(1, 60001, 50))
    with rdb.src() as s:
        saved = s.execute("SELECT aid, bid, abalance, filler FROM pgbench_accounts "
                          "WHERE aid = ANY(%s) ORDER BY aid", (gone,)).fetchall()
    assert len(saved) == 1200
    with rdb.tgt() as t:
        t.execute("DELETE FROM pgbench_accounts WHERE aid = ANY(%s)", (gone,))
    try:
        progress = []
        with ActivitySampler(rdb) as sampler:
            rows, diffs = verify(p, progress=progress)
        # while it ran: the accounts' progress, and a time left once a range was settled
        acc_seen = [r for r in progress if r["table"] == "public.pgbench_accounts"]
        assert any(r["state"] == "running" for r in acc_seen), progress
        for r in acc_seen:
            assert r["eta"] is None or re.fullmatch(r"\d+ s", r["eta"]), r
        if jobs == 1:   # slow enough for a range to settle while the others narrow
            assert any(r["eta"] for r in acc_seen), acc_seen
        assert sampler.samples > 0, "the sampler never saw VERIFY read a table"
        assert 1 <= sampler.most["source"] <= jobs, sampler.most
        assert 1 <= sampler.most["target"] <= jobs, sampler.most
        assert sampler.conns["source"] <= jobs + 1 and sampler.conns["target"] <= jobs + 1, \
            sampler.conns
        acc = rows["public.pgbench_accounts"]
        assert acc["state"] == "done", acc
        assert (acc["rows_missing"], acc["rows_extra"], acc["rows_different"]) == \
            ("1200", "0", "0"), acc
        assert acc["rows_checked"] == "100000", acc
        assert len(diffs) == 1000, len(diffs)
        assert all(d[0] == "public.pgbench_accounts" and d[2] == "missing" for d in diffs)
        assert {d[1] for d in diffs} <= {f"({a})" for a in gone}
        m = scrape(p.metrics_port)
        assert f'pgcutover_verify_differences{{database="{DB}",kind="missing"}} 1200' in m, m
        # the other tables are alike
        no_difference({t: r for t, r in rows.items() if t != "public.pgbench_accounts"},
                      settled=True)
        # CHECK names the count, not the list
        check = {r["check"]: r for r in admin(p.admin_port, f"CHECK {DB}")}
        assert check["verify"]["status"] == "fail", check["verify"]
        assert "1200" in check["verify"]["detail"], check["verify"]
    finally:
        with rdb.tgt() as t:
            with t.cursor() as cur:
                cur.executemany("INSERT INTO pgbench_accounts (aid, bid, abalance, filler) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", saved)
    rows, diffs = verify(p, "pgbench_accounts")
    assert diffs == [], diffs
    no_difference(rows, settled=True)


@pytest.mark.timeout(90)
def test_marker_positions(proxy_factory, rdb):
    """lag_method = marker: the re-checks wait for a marker row instead of
    the slot's position; under load, alike is alike and a changed row is
    found."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-marker", lag_method="marker")
    with rdb.src() as s:   # a row the load never writes
        order_id = s.execute("INSERT INTO orders (note) VALUES ('seed') RETURNING id"
                             ).fetchone()[0]
    rdb.wait_caught_up()
    with Pgbench(p.port, DB, clients=2, seconds=20) as pb:
        pb.start()
        time.sleep(0.5)
        rows, diffs = verify(p)
        assert diffs == [], diffs
        no_difference(rows)
        with rdb.tgt() as t:
            t.execute("UPDATE orders SET note = 'changed' WHERE id = %s", (order_id,))
        rdb.dirty = True
        assert pb.proc.poll() is None, "pgbench ended before the second run: make it longer"
        rows, diffs = verify(p, "orders")
        assert diffs == [("public.orders", f"({order_id})", "different")], diffs
        res = pb.wait(on_timeout=lambda: stuck_clients(p))
    # every wait for a marker row was answered
    assert p.wait_log("could not insert a marker|left pending", timeout=0.1) is None
    assert res.failed == 0 and not res.errors, res.stdout


@pytest.fixture
def composite_table(rdb):
    """kv: a composite primary key (text, int), 60000 rows (three first-pass
    ranges, whose boundaries are read from the source), replicated."""
    for conn in (rdb.src, rdb.tgt):
        with conn() as c:
            c.execute("CREATE TABLE kv (region text, n int, v text, PRIMARY KEY (region, n))")
    with rdb.tgt() as t:
        t.execute("ALTER SUBSCRIPTION vfy_sub REFRESH PUBLICATION")
    with rdb.src() as s:
        s.execute("INSERT INTO kv SELECT 'r' || lpad((i % 30)::text, 2, '0'), i, md5(i::text) "
                  "FROM generate_series(1, 60000) i")
    rdb.wait_synced(extra_tables=1)
    rdb.wait_caught_up()
    try:
        yield
    finally:
        with rdb.src() as s:
            s.execute("DROP TABLE kv")
        with rdb.tgt() as t:
            t.execute("DROP TABLE kv")
            t.execute("ALTER SUBSCRIPTION vfy_sub REFRESH PUBLICATION")


@pytest.mark.timeout(120)
def test_composite_key(proxy_factory, rdb, composite_table):
    """A key other than one integer: ranges cut at boundaries read from the
    source, narrowed by boundaries too; rows only the target has are found
    before the first key, between keys and after the last."""
    p = cutover_proxy(proxy_factory, rdb, name="verify-composite", verify_jobs=1)
    rows, diffs = verify(p, "kv")
    assert diffs == [], diffs
    no_difference(rows, settled=True)
    assert rows["public.kv"]["rows_checked"] == "60000", rows
    assert int(rows["public.kv"]["chunks_matched"]) >= 3, rows
    with rdb.tgt() as t:
        t.execute("DELETE FROM kv WHERE region = 'r07' AND n = 30007")
        t.execute("UPDATE kv SET v = 'changed' WHERE region = 'r21' AND n = 51")
        t.execute("INSERT INTO kv VALUES ('a', 1, 'before the first'), "
                  "('r13', 0, 'between'), ('zz', 1, 'after the last')")
    rows, diffs = verify(p, "kv")
    assert diffs == sorted([("public.kv", "(r07,30007)", "missing"),
                            ("public.kv", "(r21,51)", "different"),
                            ("public.kv", "(a,1)", "extra"),
                            ("public.kv", "(r13,0)", "extra"),
                            ("public.kv", "(zz,1)", "extra")]), diffs
    kv = rows["public.kv"]
    assert (kv["rows_missing"], kv["rows_extra"], kv["rows_different"]) == ("1", "3", "1"), kv
    # 10000 rows only the target has, between two keys of the source: cut where they are
    with rdb.tgt() as t:
        t.execute("INSERT INTO kv SELECT 'r13', -i, 'target only' FROM generate_series(1, 10000) i")
    rows, diffs = verify(p, "kv")
    kv = rows["public.kv"]
    assert (kv["rows_missing"], kv["rows_extra"], kv["rows_different"], kv["chunks_pending"]) == \
        ("1", "10003", "1", "0"), kv
    assert len(diffs) == 1000, len(diffs)
    # ignore_tables leaves it out (and says so when VERIFY names it)
    p.databases[DB].update(ignore_tables="public.kv")
    p.write_config()
    admin(p.admin_port, "RELOAD")
    rows, diffs = verify(p)
    assert "public.kv" not in rows and diffs == [], (rows, diffs)
    rows, diffs = verify(p, "kv")
    assert rows["public.kv"]["state"] == "skipped: listed in ignore_tables", rows

"""Shadow reads: read-only transactions sampled on the source, replayed on the
target once it has applied the source's position, and compared.

A target that behaves differently is reported per statement fingerprint with
the right reason: a function missing there (error), a collation that sorts
differently (order), a column of another type (columns), an index missing
(slower), a row missing (rows), a value changed (data); rows stored in another
order match when the statement has no ORDER BY.  An identical target under a
live write load reports nothing as differed.  Only the drawn fraction of
transactions is sampled; work that depends on the session (temporary tables,
cursors) or that is not in a read-only transaction never is.  Writes, and functions that write, are never replayed.  The tables
that make the target differ are UNLOGGED on the source, so that logical
replication (FOR ALL TABLES) leaves them alone; everything else is
replicated.  Both pool modes.
"""

import re
import urllib.request

import pytest

from replication import (admin, apply_stalled, cutover_proxy, replicated_fixtures, wait_until,
                         Pgbench)

DB = "shadowdb"


def both(db, sql):
    for conn in (db.src(), db.tgt()):
        with conn:
            conn.execute(sql)


def on(conn_fn, sql):
    with conn_fn() as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


def diverge(db):
    """What makes the target answer differently, created once per module."""
    both(db, "DROP TABLE IF EXISTS shadow_words, shadow_typed, shadow_big, shadow_log, "
             "shadow_count, shadow_vals, shadow_heap CASCADE; "
             "DROP FUNCTION IF EXISTS shadow_f(int), shadow_w()")
    # a function the target lacks
    on(db.src, "CREATE FUNCTION shadow_f(int) RETURNS int LANGUAGE sql IMMUTABLE "
               "AS 'SELECT $1 * 2'")
    # a collation that sorts otherwise
    on(db.src, "CREATE UNLOGGED TABLE shadow_words (w text COLLATE \"C\")")
    on(db.tgt, "CREATE TABLE shadow_words (w text COLLATE \"und-x-icu\")")
    both(db, "INSERT INTO shadow_words VALUES ('a'), ('B'), ('c'), ('D')")
    # a column of another type
    on(db.src, "CREATE UNLOGGED TABLE shadow_typed (a int4)")
    on(db.tgt, "CREATE TABLE shadow_typed (a int8)")
    both(db, "INSERT INTO shadow_typed SELECT g FROM generate_series(1, 5) g")
    # an index the target lacks
    on(db.src, "CREATE UNLOGGED TABLE shadow_big (id int, v int)")
    on(db.tgt, "CREATE TABLE shadow_big (id int, v int)")
    both(db, "INSERT INTO shadow_big SELECT g, g % 100000 FROM generate_series(1, 600000) g; "
             "ANALYZE shadow_big")
    on(db.src, "CREATE INDEX shadow_big_v ON shadow_big (v)")
    # a row missing on the source; a value changed
    on(db.src, "CREATE UNLOGGED TABLE shadow_count (v int)")
    on(db.tgt, "CREATE TABLE shadow_count (v int)")
    both(db, "INSERT INTO shadow_count VALUES (1), (2), (3)")
    on(db.tgt, "INSERT INTO shadow_count VALUES (4)")
    on(db.src, "CREATE UNLOGGED TABLE shadow_vals (v int)")
    on(db.tgt, "CREATE TABLE shadow_vals (v int)")
    on(db.src, "INSERT INTO shadow_vals VALUES (1), (2), (3)")
    on(db.tgt, "INSERT INTO shadow_vals VALUES (1), (2), (30)")
    # the same rows, stored in the opposite order
    on(db.src, "CREATE UNLOGGED TABLE shadow_heap (v int)")
    on(db.tgt, "CREATE TABLE shadow_heap (v int)")
    on(db.src, "INSERT INTO shadow_heap SELECT g FROM generate_series(1, 50) g")
    on(db.tgt, "INSERT INTO shadow_heap SELECT g FROM generate_series(50, 1, -1) g")
    # a function that writes
    on(db.src, "CREATE UNLOGGED TABLE shadow_log (a int)")
    on(db.tgt, "CREATE TABLE shadow_log (a int)")
    both(db, "CREATE FUNCTION shadow_w() RETURNS int LANGUAGE sql "
             "AS 'INSERT INTO shadow_log VALUES (1) RETURNING 1'")
    both(db, "GRANT ALL ON shadow_words, shadow_typed, shadow_big, shadow_log, shadow_count, "
             "shadow_vals, shadow_heap TO alice")


repl, rdb = replicated_fixtures(DB)


@pytest.fixture(scope="module")
def diverged(repl):
    diverge(repl)
    return repl


def shadow_rows(proxy):
    return {r["fingerprint"]: r for r in admin(proxy.admin_port, f"SHOW SHADOW {DB}")}


def row_like(rows, text):
    assert text in rows, (text, list(rows))
    return rows[text]


def settled(proxy, want):
    """SHOW SHADOW once `want` samples are done and none is held."""
    def done():
        rows = shadow_rows(proxy)
        total = sum(int(r["samples"]) for r in rows.values())
        queue = scrape(proxy)
        return rows if total >= want and f'pgcutover_shadow_queue{{database="{DB}"}} 0' in queue \
            else None
    return wait_until(done, 60, interval=0.2, what=f"{want} shadow samples done")


def scrape(proxy):
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics",
                                timeout=5) as u:
        return u.read().decode()


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_differences_are_reported_with_their_reason(proxy_factory, rdb, diverged, pool_mode):
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, shadow=1,
                      settings={"max_prepared_statements": "100"})
    n = 0
    with p.connect(dbname=DB) as c:
        for i in range(1, 4):
            # the same everywhere, simple and extended protocol, binary results
            c.execute(f"SELECT abalance FROM pgbench_accounts WHERE aid = {i}", prepare=False)
            c.execute("SELECT aid, abalance FROM pgbench_accounts WHERE aid = %s", (i,),
                      binary=True, prepare=True)
            # a function the target lacks
            c.execute(f"SELECT shadow_f({i})", prepare=False)
            # a collation, a column type, an index
            c.execute("SELECT w FROM shadow_words ORDER BY w")
            c.execute("SELECT a FROM shadow_typed ORDER BY a")
            c.execute("SELECT count(*) FROM shadow_big WHERE v = %s", (4242 + i,))
            # a row more, a value otherwise; the same rows in another order
            c.execute("SELECT v FROM shadow_count")
            c.execute("SELECT v FROM shadow_vals")
            c.execute("SELECT v FROM shadow_heap")
            # the replay runs as the client's user
            c.execute("SELECT current_user, session_user", prepare=False)
            n += 10
        # a read-only transaction: its statements are compared one by one
        c.execute("BEGIN READ ONLY")
        c.execute("SELECT count(*) FROM pgbench_tellers")
        c.execute("SELECT bid FROM pgbench_branches ORDER BY bid")
        c.execute("COMMIT")
        n += 2
        # the session's settings go with it
        c.execute("SET datestyle = 'German'")
        c.execute("SELECT DATE '2024-01-02'::text", prepare=False)
        n += 1
        # writes are never replayed, nor functions that write (found out once)
        c.execute("UPDATE pgbench_tellers SET tbalance = tbalance WHERE tid = 1")
        c.execute("SELECT nextval('orders_id_seq')")
        c.execute("SELECT * FROM pgbench_branches FOR UPDATE")
        c.execute("SELECT shadow_w()", prepare=False)
        n += 1
    rows = settled(p, n)
    same = row_like(rows, "select abalance from pgbench_accounts where aid = $1")
    assert int(same["matched"]) == int(same["samples"]) == 3, same
    ext = row_like(rows, "select aid, abalance from pgbench_accounts where aid = $1")
    assert int(ext["matched"]) == 3, ext
    missing = row_like(rows, "select shadow_f($1)")
    assert int(missing["differed"]) == int(missing["target_errors"]) == 3, missing
    assert "42883" in missing["last_difference"], missing
    order = row_like(rows, "select w from shadow_words order by w")
    assert int(order["differed"]) == 3 and order["last_difference"].startswith("order"), order
    typed = row_like(rows, "select a from shadow_typed order by a")
    assert int(typed["differed"]) == 3 and typed["last_difference"].startswith("columns"), typed
    slow = row_like(rows, "select count(*) from shadow_big where v = $1")
    assert int(slow["matched"]) == 3 and int(slow["slower"]) >= 2, slow
    assert float(slow["target_p50_ms"]) > 3 * float(slow["source_p50_ms"]), slow
    count = row_like(rows, "select v from shadow_count")
    assert int(count["differed"]) == 3 and count["last_difference"].startswith("rows"), count
    vals = row_like(rows, "select v from shadow_vals")
    assert int(vals["differed"]) == 3 and vals["last_difference"].startswith("data"), vals
    # the rows did come back in another order: the comparison ignored it
    assert on(rdb.src, "SELECT v FROM shadow_heap LIMIT 1") != \
        on(rdb.tgt, "SELECT v FROM shadow_heap LIMIT 1")
    heap = row_like(rows, "select v from shadow_heap")
    assert int(heap["matched"]) == 3 and int(heap["differed"]) == 0, heap
    user = row_like(rows, "select current_user, session_user")
    assert int(user["matched"]) == 3, user
    assert int(row_like(rows, "select count(*) from pgbench_tellers")["matched"]) == 1
    assert int(row_like(rows, "select bid from pgbench_branches order by bid")["matched"]) == 1
    assert int(row_like(rows, "select date $1::text")["matched"]) == 1
    writes = row_like(rows, "select shadow_w()")
    assert writes["compared"] == "writes" and int(writes["inconclusive"]) == 1, writes
    assert not any("update" in f or "nextval" in f or "for update" in f for f in rows), rows
    assert on(rdb.tgt, "SELECT count(*) FROM shadow_log")[0][0] == 0
    # the differences, with both answers
    diffs = admin(p.admin_port, f"SHOW SHADOW DIFFS {DB}")
    reasons = {d["reason"] for d in diffs}
    assert {"error", "order", "columns", "slower", "rows", "data"} <= reasons, reasons
    err = [d for d in diffs if d["reason"] == "error"][0]
    assert err["target"].startswith("ERROR 42883") and err["source"].startswith("SELECT 1"), err
    metrics = scrape(p)
    assert f'pgcutover_shadow_samples_total{{database="{DB}",result="differed"}} 15' in metrics
    # every sample is accounted for, once
    for r in rows.values():
        assert int(r["samples"]) == sum(int(r[k]) for k in
                                        ("matched", "differed", "inconclusive", "dropped")), r
    # the replays ran on pgcutover's own connections to the target (at most 4), which are
    # in no client pool: SHOW SERVERS lists only the clients' servers, on the source
    m = re.search(rf'pgcutover_shadow_connections{{database="{DB}",side="target"}} (\d+)', metrics)
    assert m and 1 <= int(m.group(1)) <= 4, metrics
    servers = [r for r in admin(p.admin_port, "SHOW SERVERS") if r["database"] == DB]
    assert servers and all(r["side"] == "source" for r in servers), servers


READS = """\\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT bbalance FROM pgbench_branches WHERE bid = 1;
SELECT sum(tbalance) FROM pgbench_tellers;
"""


def totals(proxy):
    rows = shadow_rows(proxy).values()
    return {k: sum(int(r[k]) for r in rows)
            for k in ("samples", "matched", "differed", "inconclusive", "dropped")}


def queue_empty(proxy):
    return f'pgcutover_shadow_queue{{database="{DB}"}} 0' in scrape(proxy)


@pytest.mark.timeout(120)
def test_identical_target_under_writes_never_differs(proxy_factory, rdb):
    """Every tpcb-like transaction updates the one branch the readers read:
    the source's answers change all the time, and the target is always a
    little behind.  Three runs (simple, extended and prepared protocol):
    reads are matched or inconclusive, never differed."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", shadow=1,
                      settings={"max_prepared_statements": "100"})
    for mode in ("simple", "extended", "prepared"):
        before = totals(p)
        with Pgbench(p.port, DB, clients=4, seconds=3) as writer, \
                Pgbench(p.port, DB, clients=2, seconds=3, mode=mode, script=READS) as reader:
            writer.start()
            reader.start()
            w = writer.wait()
            r = reader.wait()
        assert w.rc == 0 and r.rc == 0, (w.stdout, r.stdout)
        wait_until(lambda: queue_empty(p), 60, interval=0.2, what="the shadow queue empty")
        after = totals(p)
        done = {k: after[k] - before[k] for k in after}
        assert done["differed"] == 0, (mode, done, shadow_rows(p))
        assert done["matched"] > 10, (mode, done)
    branch = shadow_rows(p)["select bbalance from pgbench_branches where bid = $1"]
    assert int(branch["matched"]) > 0 and int(branch["differed"]) == 0, branch


def test_a_target_behind_is_inconclusive_and_a_full_queue_drops(proxy_factory, rdb):
    """While the target applies nothing, samples wait (lag_timeout) and end
    inconclusive, never differed, though the source moved on; beyond
    shadow_queue, transactions are dropped whole and counted."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", shadow=1, shadow_queue=5,
                      lag_timeout="2s")
    with apply_stalled(rdb):
        on(rdb.src, "UPDATE pgbench_branches SET bbalance = bbalance + 1000 WHERE bid = 1")
        with p.connect(dbname=DB) as c:
            for _ in range(20):
                c.execute("SELECT bbalance FROM pgbench_branches WHERE bid = 1")
        rows = wait_until(lambda: (r := shadow_rows(p)) and
                          sum(int(x["samples"]) for x in r.values()) >= 20 and r,
                          30, interval=0.2, what="20 samples done")
    row = rows["select bbalance from pgbench_branches where bid = $1"]
    assert int(row["differed"]) == 0, row
    assert int(row["inconclusive"]) == 5 and int(row["dropped"]) == 15, row
    assert "within lag_timeout" in row["last_difference"], row


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_session_dependent_work_is_never_shadowed(proxy_factory, rdb, pool_mode):
    """Cursors, a transaction not opened READ ONLY, SQL-level prepared
    statements, and everything a session runs once it created a temporary
    table (in transaction pooling too, where pgcutover does not ask the
    server what the session holds) stay on the source alone."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, shadow=1,
                      settings={"default_pool_size": "1"})
    with p.connect(dbname=DB) as c:
        # sampled: the control
        c.execute("SELECT tbalance FROM pgbench_tellers WHERE tid = 1", prepare=False)
        # reads in a transaction that may write
        c.execute("BEGIN")
        c.execute("SELECT bbalance FROM pgbench_branches WHERE bid = 1")
        c.execute("COMMIT")
        # a cursor in a read-only transaction: the transaction is given up
        c.execute("BEGIN READ ONLY")
        c.execute("SELECT count(*) FROM pgbench_branches")
        c.execute("DECLARE shadow_cur CURSOR FOR SELECT aid FROM pgbench_accounts ORDER BY aid")
        assert len(c.execute("FETCH 2 FROM shadow_cur").fetchall()) == 2
        c.execute("CLOSE shadow_cur")
        c.execute("COMMIT")
        # SQL-level prepared statements (session pooling keeps them)
        if pool_mode == "session":
            c.execute("PREPARE shadow_p AS SELECT 42")
            assert c.execute("EXECUTE shadow_p").fetchone() == (42,)
            c.execute("DEALLOCATE shadow_p")
        # a temporary table, and every read after it
        c.execute("CREATE TEMP TABLE shadow_tmp AS SELECT 7 AS a")
        assert c.execute("SELECT a FROM shadow_tmp").fetchone() == (7,)
        c.execute("SELECT abalance FROM pgbench_accounts WHERE aid = 1", prepare=False)
        c.execute("SELECT 1 FROM pgbench_branches", prepare=False)
    wait_until(lambda: queue_empty(p), 30, interval=0.2, what="the shadow queue empty")
    rows = shadow_rows(p)
    assert list(rows) == ["select tbalance from pgbench_tellers where tid = $1"], rows
    assert int(rows["select tbalance from pgbench_tellers where tid = $1"]["matched"]) == 1


def test_a_fraction_of_transactions_is_sampled(proxy_factory, rdb):
    """shadow = 0 samples nothing; a RELOAD to shadow = 0.2 applies at once,
    to the sessions already open: about one transaction in five, drawn per
    transaction."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="transaction", shadow=0)
    with p.connect(dbname=DB) as c:
        for i in range(1, 51):
            c.execute(f"SELECT abalance FROM pgbench_accounts WHERE aid = {i}", prepare=False)
        assert admin(p.admin_port, f"SHOW SHADOW {DB}") == []
        p.databases[DB]["shadow"] = "0.2"
        p.write_config()
        assert admin(p.admin_port, "RELOAD").status == "RELOAD"
        for i in range(1, 301):
            c.execute(f"SELECT abalance FROM pgbench_accounts WHERE aid = {i}", prepare=False)
    wait_until(lambda: queue_empty(p), 30, interval=0.2, what="the shadow queue empty")
    row = shadow_rows(p)["select abalance from pgbench_accounts where aid = $1"]
    # 60 expected; the bounds are more than four standard deviations away
    assert 30 <= int(row["samples"]) <= 95, row
    assert int(row["matched"]) == int(row["samples"]), row


def test_marker_positions(proxy_factory, rdb):
    """lag_method = marker: a sample waits for a marker row inserted on the
    source after its read to appear on the target; while the target applies
    nothing, samples end inconclusive, never differed."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", shadow=1, lag_method="marker",
                      lag_timeout="2s")
    with p.connect(dbname=DB) as c:
        for _ in range(3):
            c.execute("SELECT sum(bbalance) FROM pgbench_branches")
    rows = settled(p, 3)
    row = rows["select sum(bbalance) from pgbench_branches"]
    assert int(row["matched"]) == 3, row
    with apply_stalled(rdb):
        on(rdb.src, "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1")
        with p.connect(dbname=DB) as c:
            for _ in range(3):
                c.execute("SELECT sum(bbalance) FROM pgbench_branches")
        rows = settled(p, 6)
    row = rows["select sum(bbalance) from pgbench_branches"]
    assert int(row["matched"]) == 3 and int(row["inconclusive"]) == 3, row
    assert int(row["differed"]) == 0, row
    assert "within lag_timeout" in row["last_difference"], row


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_read_only_transaction_in_the_extended_protocol(proxy_factory, rdb, pool_mode):
    """BEGIN READ ONLY, its reads and its COMMIT as Parse/Bind/Execute (binary
    results force the extended protocol), with a SAVEPOINT and a SET LOCAL in
    between: the transaction is replayed whole and each statement compared (a
    SET LOCAL of a setting the target lacks would fail there)."""
    p = cutover_proxy(proxy_factory, rdb, pool_mode=pool_mode, shadow=1)
    with p.connect(dbname=DB) as c:
        c.execute("BEGIN READ ONLY", binary=True)
        c.execute("SELECT count(*) FROM pgbench_accounts WHERE aid <= %s", (500,), binary=True)
        c.execute("SAVEPOINT s1", binary=True)
        c.execute("SET LOCAL work_mem = '8MB'", binary=True)
        assert c.execute("SELECT current_setting('work_mem')", binary=True).fetchone() == ("8MB",)
        c.execute("SELECT tid FROM pgbench_tellers WHERE bid = %s ORDER BY tid", (1,),
                  binary=True)
        c.execute("COMMIT", binary=True)
    rows = settled(p, 5)
    for fp in ("select count(*) from pgbench_accounts where aid <= $1", "savepoint s1",
               "set local work_mem = $1", "select current_setting($1)",
               "select tid from pgbench_tellers where bid = $1 order by tid"):
        row = row_like(rows, fp)
        assert int(row["matched"]) == 1 and int(row["samples"]) == 1, row
    assert len(rows) == 5, rows

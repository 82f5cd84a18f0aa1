"""Sequence sync at SWITCH: on the side switched to, the next value each
sequence hands out becomes max(its own next value, the source's next value +
sequence_margin) (min and minus for a descending sequence), never backwards.

"Next value" depends on is_called: after nextval() it is last_value +
increment, after ALTER SEQUENCE ... RESTART [WITH v] (is_called false) it is
last_value itself.  Both sides are read in that sense.

The tests run against their own replicated database (`cut_seq`, see
replication.py) with lag_method none (the lag wait is not what they test).
Their sequences exist on both clusters: sequences are not replicated, and the
identity table's rows, inserted on the source, are not either (the table is
not part of the subscription), so each side's sequence state is the test's.
"""

import pytest

from replication import admin, cutover_proxy, replicated_fixtures, switch

DB = "cut_seq"

ASC = ("seq_a", "seq_b", "seq_c")
DESC = "seq_desc"
IDENTITY_TABLE = "idt"

SCHEMA = [
    "CREATE SEQUENCE IF NOT EXISTS seq_a",
    "CREATE SEQUENCE IF NOT EXISTS seq_b",
    "CREATE SEQUENCE IF NOT EXISTS seq_c",
    "CREATE SEQUENCE IF NOT EXISTS seq_desc INCREMENT -1 MINVALUE -1000000 MAXVALUE -1",
    "CREATE TABLE IF NOT EXISTS idt (id bigint GENERATED ALWAYS AS IDENTITY, note text)",
    "GRANT ALL ON ALL TABLES IN SCHEMA public TO alice",
    "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice",
]


def _reset(repl):
    """Every test sequence back at its start (is_called false) on both sides."""
    for conn in (repl.src(), repl.tgt()):
        with conn:
            for q in SCHEMA:
                conn.execute(q)
            for s in ASC + (DESC,):
                conn.execute(f"ALTER SEQUENCE {s} RESTART")
            conn.execute("ALTER TABLE idt ALTER COLUMN id RESTART")
    with repl.src() as s:
        s.execute("TRUNCATE idt")


repl, rdb = replicated_fixtures(DB, reset=_reset)


def state(conn, seq):
    """(last_value, is_called) of a sequence, read without consuming it."""
    return tuple(conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone())


def next_value(conn, seq):
    """The value the next nextval() of `seq` returns, without calling it."""
    last, called = state(conn, seq)
    inc = conn.execute("SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass",
                       (seq,)).fetchone()[0]
    return last + inc if called else last


def advance(conn, seq, n):
    conn.execute("SELECT nextval(%s) FROM generate_series(1, %s)", (seq, n))


def identity_seq(conn):
    return conn.execute("SELECT pg_get_serial_sequence('idt', 'id')").fetchone()[0]


def do_switch(proxy_factory, db, **section):
    p = cutover_proxy(proxy_factory, db, pool_mode="session", lag_method="none", **section)
    row = switch(p, db)
    assert row["result"] == "ok", row
    return p, row


@pytest.mark.timeout(60)
def test_identity_serial_and_descending_sequences_synced(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_method="none")
    # 37 rows through the proxy, on the source: the identity sequence moves there only.
    with p.connect(dbname=DB) as c:
        c.execute("INSERT INTO idt (note) SELECT 'src' FROM generate_series(1, 37)")
    with rdb.src() as s:
        ident = identity_seq(s)
        advance(s, "seq_a", 5)
        advance(s, DESC, 20)
        assert next_value(s, ident) == 38
        assert next_value(s, DESC) == -21
    with rdb.tgt() as t:
        assert next_value(t, ident) == 1        # nothing ran there yet

    row = switch(p, rdb)
    assert row["result"] == "ok", row

    with rdb.tgt() as t:
        assert next_value(t, ident) == 38
        assert next_value(t, "seq_a") == 6
        assert next_value(t, DESC) == -21
        assert next_value(t, "seq_b") == 1      # untouched on both sides
    # The next row through the proxy runs on the target and continues the numbering.
    with p.connect(dbname=DB) as c:
        new_id, port = c.execute("INSERT INTO idt (note) VALUES ('tgt') "
                                 "RETURNING id, inet_server_port()").fetchone()
    assert (new_id, port) == (38, rdb.target.port)


@pytest.mark.timeout(60)
def test_target_ahead_is_kept(proxy_factory, rdb):
    """A target sequence already beyond the source is not moved back, whether
    it got there by nextval()/setval() (is_called true) or by ALTER SEQUENCE
    ... RESTART WITH (is_called false: its next value is last_value itself)."""
    with rdb.src() as s:
        for seq in ASC:
            advance(s, seq, 10)                 # next value 11
        advance(s, DESC, 5)                     # next value -6
    with rdb.tgt() as t:
        t.execute("SELECT setval('seq_a', 1000)")
        t.execute("ALTER SEQUENCE seq_b RESTART WITH 500")
        advance(t, DESC, 100)                   # next value -101
        before = {s: state(t, s) for s in ("seq_a", "seq_b", DESC)}
        assert next_value(t, "seq_b") == 500 and state(t, "seq_b")[1] is False

    do_switch(proxy_factory, rdb)

    with rdb.tgt() as t:
        assert next_value(t, "seq_a") == 1001
        assert next_value(t, "seq_b") == 500, state(t, "seq_b")
        assert next_value(t, DESC) == -101
        # ahead already: left exactly as it was
        assert {s: state(t, s) for s in ("seq_a", "seq_b", DESC)} == before
        assert next_value(t, "seq_c") == 11     # behind: brought forward
        assert t.execute("SELECT nextval('seq_b')").fetchone()[0] == 500


@pytest.mark.timeout(60)
def test_source_restarted_with_is_called_false(proxy_factory, rdb):
    """A source sequence with is_called false (RESTART WITH, never used since)
    still has a next value (pg_sequences shows NULL for it): the target gets
    at least that."""
    with rdb.src() as s:
        s.execute("ALTER SEQUENCE seq_c RESTART WITH 700")
        s.execute("ALTER SEQUENCE seq_desc RESTART WITH -300")
        assert s.execute("SELECT last_value FROM pg_sequences "
                         "WHERE sequencename = 'seq_c'").fetchone()[0] is None
    with rdb.tgt() as t:
        advance(t, "seq_c", 3)

    do_switch(proxy_factory, rdb)

    with rdb.tgt() as t:
        assert next_value(t, "seq_c") == 700
        assert next_value(t, DESC) == -300
        assert t.execute("SELECT nextval('seq_c')").fetchone()[0] == 700


@pytest.mark.timeout(60)
def test_sequence_sync_list_syncs_only_those(proxy_factory, rdb):
    with rdb.src() as s:
        for seq in ASC:
            advance(s, seq, 50)
        ident = identity_seq(s)
        advance(s, ident, 9)
    _, row = do_switch(proxy_factory, rdb,
                       sequence_sync=f"public.seq_a, {ident}")
    assert int(row["sequences_synced"]) == 2, row
    with rdb.tgt() as t:
        assert next_value(t, "seq_a") == 51
        assert next_value(t, ident) == 10
        for seq in ("seq_b", "seq_c"):
            assert state(t, seq) == (1, False), seq     # not named: untouched


@pytest.mark.timeout(60)
def test_sequence_margin_is_added(proxy_factory, rdb):
    with rdb.src() as s:
        advance(s, "seq_a", 10)                 # next 11
        advance(s, DESC, 20)                    # next -21
        s.execute("ALTER SEQUENCE seq_c RESTART WITH 40")   # next 40
    do_switch(proxy_factory, rdb, sequence_margin=1000)
    with rdb.tgt() as t:
        assert next_value(t, "seq_a") == 1011
        assert next_value(t, DESC) == -1021
        assert next_value(t, "seq_c") == 1040
        # untouched on the source: its next value 1, plus the margin
        assert next_value(t, "seq_b") == 1001


@pytest.mark.timeout(60)
def test_show_sequences_compares_next_values(proxy_factory, rdb):
    """SHOW SEQUENCES shows each side's last_value as the sequence itself
    does (never NULL: pg_sequences would hide is_called-false ones) and says
    the target is behind when its next value is one the source has already
    reached: lower for an ascending sequence, higher for a descending one,
    is_called of both sides taken into account."""
    with rdb.src() as s:
        s.execute("ALTER SEQUENCE seq_a RESTART WITH 500")   # next 500, pg_sequences: NULL
        advance(s, "seq_b", 10)                               # next 11
        advance(s, DESC, 5)                                   # last -5, next -6
        advance(s, identity_seq(s), 3)
    with rdb.tgt() as t:
        advance(t, "seq_a", 499)          # last 499 called: next 500, not behind
        t.execute("ALTER SEQUENCE seq_b RESTART WITH 11")   # next 11 too: not behind
        advance(t, DESC, 2)               # next -3: behind (descending)
        # seq_c: fresh on both sides, next 1 on both: not behind
        # the identity sequence: fresh on the target, 3 used on the source: behind
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_method="none")
    rows = {r["sequence"]: r for r in admin(p.admin_port, f"SHOW SEQUENCES {DB}")}
    with rdb.src() as s:
        idt = identity_seq(s)
    got = {name: (rows[name]["source_value"], rows[name]["target_value"],
                  rows[name]["target_behind"])
           for name in ("public.seq_a", "public.seq_b", "public.seq_c", "public.seq_desc", idt)}
    assert got == {
        "public.seq_a": ("500", "499", "no"),
        "public.seq_b": ("10", "11", "no"),
        "public.seq_c": ("1", "1", "no"),
        "public.seq_desc": ("-5", "-2", "yes"),
        idt: ("3", "1", "yes"),
    }, got
    # the other way round, after the sync of a switch: nothing is behind
    switch(p, rdb)
    rows = admin(p.admin_port, f"SHOW SEQUENCES {DB}")
    behind = [r["sequence"] for r in rows if r["target_behind"] != "no"]
    assert not behind, rows


# -- set ahead of the pause (issue 17) ------------------------------------------

AHEAD_USED = tuple(f"seq_ah_{i}" for i in range(1, 7))     # used before the switch
AHEAD_NEVER = ("seq_ah_never", "seq_ah_first")             # never used before it
AHEAD_FALSE, AHEAD_RESTART = "seq_ah_false", "seq_ah_restart"
AHEAD_ALL = AHEAD_USED + AHEAD_NEVER + (AHEAD_FALSE, AHEAD_RESTART)


@pytest.mark.timeout(90)
def test_sequences_set_ahead_and_moved_ones_synced_in_the_pause(proxy_factory, rdb):
    """Every sequence is set on the target before the pause (seen while the
    switch waits in its drain); sequences that move after that (nextval,
    first use, setval(v, false), ALTER SEQUENCE RESTART WITH, a descending
    one) are caught inside the pause: none ends up behind the source."""
    import threading
    from replication import admin_connect, admin_query, wait_until

    for conn in (rdb.src(), rdb.tgt()):
        with conn:
            for s in AHEAD_ALL:
                conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {s}")
                conn.execute(f"ALTER SEQUENCE {s} RESTART")
    with rdb.src() as s:
        for i, seq in enumerate(AHEAD_USED + (AHEAD_FALSE, AHEAD_RESTART)):
            advance(s, seq, 10 * (i + 1))
        advance(s, DESC, 7)
        advance(s, "seq_a", 3)
    p = cutover_proxy(proxy_factory, rdb, pool_mode="session", lag_method="none")
    # an open transaction through the proxy keeps the switch in its drain
    holder = p.connect(dbname=rdb.name)
    holder.autocommit = False
    holder.execute("SELECT 1")
    result = {}

    def run():
        try:
            with admin_connect(p.admin_port) as a:
                result["rows"] = admin_query(a, f"SWITCH {rdb.name}")
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        wait_until(lambda: "draining" in p.log(), 30, what="the switch in its drain")
        with rdb.src() as s, rdb.tgt() as tg:
            # set ahead already: nothing is held yet, the target is not behind
            for seq in AHEAD_USED + (DESC, "seq_a"):
                assert next_value(tg, seq) == next_value(s, seq), seq
            # now they move, after the pre-advance and before the pause
            advance(s, AHEAD_USED[0], 1000)
            advance(s, AHEAD_USED[1], 1)
            advance(s, "seq_ah_first", 5)                  # first use: was NULL
            s.execute(f"SELECT setval('{AHEAD_FALSE}', 5000, false)")
            s.execute(f"ALTER SEQUENCE {AHEAD_RESTART} RESTART WITH 7000")
            advance(s, DESC, 100)
    finally:
        holder.commit()
        holder.close()
    t.join(60)
    assert not t.is_alive(), "SWITCH did not return"
    assert "error" not in result, result
    row = result["rows"][0]
    assert row["result"] == "ok", row
    with rdb.src() as s, rdb.tgt() as tg:
        for seq in AHEAD_ALL + ASC + (DESC,):
            assert next_value(tg, seq) == next_value(s, seq), \
                (seq, state(s, seq), state(tg, seq))
        assert next_value(tg, AHEAD_FALSE) == 5000
        assert next_value(tg, AHEAD_RESTART) == 7000
    behind = [r for r in admin(p.admin_port, f"SHOW SEQUENCES {rdb.name}")
              if r["target_behind"] != "no"]
    assert not behind, behind

"""CHECK db [TO side]: every pre-switch check, one row each, against a
logically replicated pair of real PostgreSQL 15 servers.

Each check is made to fail (or warn, for those whose worst is a warning)
for the reason it names, and then to pass once that reason is fixed.  A
SWITCH refused by a failing check says which, in the words of the check;
DRY RUN counts the checks.  Nothing here leaves a role, table, publication
or setting behind: each test undoes what it did in a finally block.
"""

import os
import re
import time

import psycopg
import pytest
from psycopg import sql

from replication import (SWITCH_COLUMNS, AdminError, admin, admin_connect, cutover_proxy,
                         replicated_fixtures, route_of, switch)

DB = "chk"
repl, rdb = replicated_fixtures(DB)

CHECKS = ["reachable", "privileges", "replication", "publication", "replica_identity", "schema",
          "indexes", "not_replicated", "logins", "bypass", "target_writes", "long_transactions",
          "ddl", "fence", "switch_back", "verify"]

# pgbench_history has no primary key: leave it out where a test wants every row ok
NO_HISTORY = {"ignore_tables": "public.pgbench_history"}


def check(p, extra=""):
    """CHECK DB: {check: row}, after asserting the rows' names and order."""
    rows = admin(p.admin_port, f"CHECK {DB} {extra}".strip())
    assert rows.columns == ("check", "status", "detail"), rows.columns
    assert [r["check"] for r in rows] == CHECKS, rows
    return {r["check"]: r for r in rows}


def status(p, name, extra=""):
    row = check(p, extra)[name]
    return row["status"], row["detail"]


def both(db, statement, *args):
    for conn in (db.src, db.tgt):
        with conn() as c:
            c.execute(statement, args or None)


def reload_with(p, **section):
    p.databases[DB].update({k: str(v) for k, v in section.items()})
    p.write_config()
    assert admin(p.admin_port, "RELOAD").status == "RELOAD"


def private_userlist(clusters, extra):
    """The suite's userlist plus some lines, in a file of the test's own."""
    path = os.path.join(os.path.dirname(clusters.userlist), f"userlist-check-{os.getpid()}.txt")
    with open(clusters.userlist) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text + extra)
    return path


def test_a_healthy_pair_passes_and_dry_run_counts_the_checks(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-healthy")
    rows = check(p)
    assert all(r["status"] != "fail" for r in rows.values()), rows
    assert rows["reachable"]["detail"].startswith("source: PostgreSQL 15"), rows
    assert "superuser" in rows["privileges"]["detail"], rows
    assert "subscription chk_sub streaming" in rows["replication"]["detail"], rows
    assert rows["publication"]["detail"] == "6 tables, replicated by chk_pub", rows
    # pgbench_history has no key: a warning, and VERIFY says how it compares it
    assert rows["replica_identity"]["status"] == "warn", rows
    assert "public.pgbench_history" in rows["replica_identity"]["detail"], rows
    assert "admin" in rows["logins"]["detail"], rows   # in auth_file, a user of neither side
    assert rows["schema"]["status"] == "ok" and rows["indexes"]["status"] == "ok", rows
    # a switch to the source is refused: the database is routed there
    with pytest.raises(AdminError) as ei:
        admin(p.admin_port, f"CHECK {DB} TO source")
    assert ei.value.sqlstate == "55000", ei.value
    # DRY RUN keeps its row, and answers with the checks too: a second result set
    with admin_connect(p.admin_port) as a:
        cur = a.execute(f"SWITCH {DB} DRY RUN")
        assert tuple(c.name for c in cur.description) == SWITCH_COLUMNS
        row = dict(zip(SWITCH_COLUMNS, cur.fetchone()))
        assert re.fullmatch(r"dry run: ok \(lag \d+ bytes, 1 sequences to sync\)",
                            row["result"]), row
        assert cur.nextset(), "DRY RUN answered without its checks"
        assert [c.name for c in cur.description] == ["check", "status", "detail"]
        dry = {name: (st, detail) for name, st, detail in cur.fetchall()}
    assert list(dry) == CHECKS, dry
    assert dry["replica_identity"][0] == "warn", dry
    # without the table that has no key, every check is ok
    reload_with(p, **NO_HISTORY)
    assert {r["status"] for r in check(p).values()} == {"ok"}, check(p)


def test_reachable(proxy_factory, rdb, clusters):
    """A target that does not answer fails every check, and the switch."""
    p = cutover_proxy(proxy_factory, rdb, name="check-reach")
    good = p.databases[DB]["target"]
    reload_with(p, target=good.replace(f"port={rdb.target.port}", "port=1"))
    rows = check(p)
    assert rows["reachable"]["status"] == "fail", rows
    assert rows["reachable"]["detail"].startswith("the target does not answer: "), rows
    assert all(r["status"] == "fail" and r["detail"] == "not checked: the target does not answer"
               for name, r in rows.items() if name != "reachable"), rows
    with pytest.raises(AdminError) as ei:
        switch(p, rdb)
    assert ei.value.message.startswith("preflight failed: the target does not answer"), ei.value
    assert ei.value.sqlstate == "08006", ei.value
    reload_with(p, target=good)
    assert status(p, "reachable")[0] == "ok"


def test_privileges(proxy_factory, rdb, clusters):
    """control_user without what the fence and the sequence sync need."""
    userlist = private_userlist(clusters, '"chk_ctl" "chk_ctl_pw"\n')
    try:
        for c in (rdb.source, rdb.target):
            with c.admin_connect() as a:
                a.execute("DROP ROLE IF EXISTS chk_ctl")
                a.execute("CREATE ROLE chk_ctl LOGIN PASSWORD 'chk_ctl_pw'")
        p = cutover_proxy(proxy_factory, rdb, settings={"auth_file": userlist},
                          control_user="chk_ctl", name="check-priv")
        st, detail = status(p, "privileges")
        assert st == "fail", detail
        assert "CREATEROLE (to put up the fence)" in detail, detail
        assert "membership in pg_signal_backend" in detail, detail
        assert "SELECT on sequence public.orders_id_seq (sequence sync)" in detail, detail
        assert "UPDATE on sequence public.orders_id_seq" in detail, detail
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert ei.value.sqlstate == "42501", ei.value
        assert ei.value.message.startswith(
            'preflight failed: privileges check: control_user "chk_ctl" needs on the source: '
            'CREATEROLE (to put up the fence)'), ei.value
        assert "; on the target: SELECT on sequence public.orders_id_seq" in ei.value.message
        for c in (rdb.source, rdb.target):
            with c.admin_connect() as a:
                a.execute("ALTER ROLE chk_ctl CREATEROLE")
                a.execute("GRANT pg_signal_backend, pg_read_all_stats TO chk_ctl")
            with c.admin_connect(dbname=DB) as a:
                a.execute("GRANT SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO chk_ctl")
        st, detail = status(p, "privileges")
        # VERIFY could still not read the tables: a warning that names them
        assert st == "warn", detail
        assert "SELECT on 6 table(s) (VERIFY)" in detail, detail
        for conn in (rdb.src, rdb.tgt):
            with conn() as a:
                a.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO chk_ctl")
        assert status(p, "privileges")[0] == "ok"
    finally:
        for conn in (rdb.src, rdb.tgt):
            with conn() as a:
                a.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM chk_ctl")
                a.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chk_ctl")
        for c in (rdb.source, rdb.target):
            with c.admin_connect() as a:
                a.execute("DROP ROLE IF EXISTS chk_ctl")
        os.unlink(userlist)


def test_replication(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-repl")
    rdb.set_subscription(False)
    try:
        st, detail = status(p, "replication")
        assert st == "fail", detail
        assert "replication slot check: it is not active" in detail, detail
        assert "subscription chk_sub on the target is disabled" in detail, detail
    finally:
        rdb.set_subscription(True)
    st, detail = status(p, "replication")
    assert st == "ok" and "streaming" in detail, detail


@pytest.fixture
def narrow_publication(rdb):
    """The subscription reads chk_pub2, which lists the six tables by name,
    and a table public.audit exists on both sides outside of it."""
    both(rdb, "CREATE TABLE audit (id int PRIMARY KEY, note text)")
    with rdb.src() as s:
        s.execute("CREATE PUBLICATION chk_pub2 FOR TABLE pgbench_accounts, pgbench_branches, "
                  "pgbench_tellers, pgbench_history, orders, pgcutover_marker")
    with rdb.tgt() as t:
        t.execute("ALTER SUBSCRIPTION chk_sub SET PUBLICATION chk_pub2 WITH (refresh = false)")
    try:
        yield
    finally:
        with rdb.tgt() as t:
            t.execute("ALTER SUBSCRIPTION chk_sub SET PUBLICATION chk_pub WITH (refresh = false)")
        with rdb.src() as s:
            s.execute("DROP PUBLICATION IF EXISTS chk_pub2")
        both(rdb, "DROP TABLE IF EXISTS audit")


def test_publication(proxy_factory, rdb, narrow_publication):
    """A table outside the publication fails, unless ignore_tables lists it;
    a table published but not subscribed fails too."""
    p = cutover_proxy(proxy_factory, rdb, name="check-pub")
    st, detail = status(p, "publication")
    assert st == "fail", detail
    assert "not in publication chk_pub2: public.audit" in detail, detail
    with pytest.raises(AdminError) as ei:
        switch(p, rdb)
    assert ei.value.message.startswith(
        "preflight failed: publication check: 1 tables are not replicated: public.audit"), ei.value
    assert route_of(p.admin_port, DB) == ("source", "running")
    reload_with(p, ignore_tables="public.audit")
    st, detail = status(p, "publication")
    assert st == "ok" and detail == "6 tables, replicated by chk_pub2", detail
    # published now, but the subscription was not refreshed: not replicated either
    reload_with(p, ignore_tables="public.pgcutover_marker")
    with rdb.src() as s:
        s.execute("ALTER PUBLICATION chk_pub2 ADD TABLE audit")
    st, detail = status(p, "publication")
    assert st == "fail", detail
    assert "published but not subscribed on the target: public.audit" in detail, detail
    assert "REFRESH PUBLICATION" in detail, detail


def test_replica_identity(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-ri", **NO_HISTORY)
    both(rdb, "CREATE TABLE noid (x int)")
    try:
        st, detail = status(p, "replica_identity")
        assert st == "warn", detail
        assert detail.startswith("without a primary key or replica identity: public.noid:"), detail
        both(rdb, "ALTER TABLE noid REPLICA IDENTITY FULL")
        assert status(p, "replica_identity") == ("ok", "every table has one")
    finally:
        both(rdb, "DROP TABLE IF EXISTS noid")


def test_schema_and_indexes(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-schema")
    try:
        with rdb.src() as s:
            s.execute("CREATE TABLE only_src (id int PRIMARY KEY)")
            s.execute("CREATE SEQUENCE only_seq")
            s.execute("CREATE INDEX orders_note_idx ON orders (note)")
        with rdb.tgt() as t:
            t.execute("ALTER TABLE orders ALTER note TYPE varchar(20)")
        rows = check(p)
        st, detail = rows["schema"]["status"], rows["schema"]["detail"]
        assert st == "fail", detail
        assert "tables missing on the target: public.only_src" in detail, detail
        assert "sequences missing on the target: public.only_seq" in detail, detail
        assert ("columns of another type on the target: public.orders.note "
                "(text here, character varying(20) there)") in detail, detail
        assert rows["indexes"]["status"] == "warn", rows["indexes"]
        assert ("indexes missing on the target: CREATE INDEX ON public.orders USING btree "
                "(note)") in rows["indexes"]["detail"], rows["indexes"]
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        # (only_src is published too, and not subscribed: the publication check says it first)
        assert "failed too: schema" in ei.value.message, ei.value
        with rdb.tgt() as t:
            t.execute("CREATE TABLE only_src (id int PRIMARY KEY)")
            t.execute("CREATE SEQUENCE only_seq")
            t.execute("CREATE INDEX orders_note_idx ON orders (note)")
            t.execute("ALTER TABLE orders ALTER note TYPE text")
        rows = check(p)
        assert rows["schema"]["status"] == "ok", rows["schema"]
        assert rows["indexes"] == {"check": "indexes", "status": "ok",
                                   "detail": "1 indexes compared"}, rows["indexes"]
    finally:
        both(rdb, "DROP TABLE IF EXISTS only_src")
        both(rdb, "DROP SEQUENCE IF EXISTS only_seq")
        both(rdb, "DROP INDEX IF EXISTS orders_note_idx")
        with rdb.tgt() as t:
            t.execute("ALTER TABLE orders ALTER note TYPE text")


def test_not_replicated(proxy_factory, rdb):
    """A large object and an unlogged table on the source: not replicated."""
    p = cutover_proxy(proxy_factory, rdb, name="check-notrepl")
    with rdb.src() as s:
        oid = s.execute("SELECT lo_from_bytea(0, 'blob')").fetchone()[0]
    try:
        st, detail = status(p, "not_replicated")
        assert st == "fail", detail
        assert "1 large objects on the source, 0 on the target" in detail, detail
        with rdb.src() as s:
            s.execute("SELECT lo_unlink(%s)", (oid,))
            s.execute("CREATE UNLOGGED TABLE scratch (x int)")
        st, detail = status(p, "not_replicated")
        assert st == "fail" and "unlogged tables are not replicated: public.scratch" in detail, \
            detail
        reload_with(p, ignore_tables="public.scratch")
        assert status(p, "not_replicated")[0] == "ok"
    finally:
        with rdb.src() as s:
            s.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
            s.execute("DROP TABLE IF EXISTS scratch")


def test_logins(proxy_factory, rdb, clusters):
    """Real logins to the target as every auth_file user, with pgcutover's
    secrets: a role missing there, a SCRAM verifier with another salt, a
    missing CONNECT privilege.  A client's own SCRAM login lets the check
    send a full proof for a SCRAM secret."""
    userlist = private_userlist(clusters, '"dave" "dave_pw"\n')
    with rdb.source.admin_connect() as a:
        carol_secret = a.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'carol'"
                                 ).fetchone()[0]
        a.execute("DROP ROLE IF EXISTS dave")
        a.execute("CREATE ROLE dave LOGIN PASSWORD 'dave_pw'")
    p = cutover_proxy(proxy_factory, rdb, settings={"auth_file": userlist}, name="check-logins")
    try:
        st, detail = status(p, "logins")
        assert st == "fail", detail
        assert 'dave cannot log in to the target: password authentication failed for user ' \
               '"dave" (28P01)' in detail, detail
        with rdb.target.admin_connect() as a:
            a.execute("DROP ROLE IF EXISTS dave")
            a.execute("CREATE ROLE dave LOGIN PASSWORD 'dave_pw'")
        st, detail = status(p, "logins")
        assert st == "ok", detail
        assert "carol: SCRAM secrets whose salt and iteration count match" in detail, detail

        # carol's password set again on the target: same password, another salt
        with rdb.target.admin_connect() as a:
            a.execute("SET password_encryption = 'scram-sha-256'")
            a.execute("ALTER ROLE carol PASSWORD 'carol_pw'")
        st, detail = status(p, "logins")
        assert st == "fail", detail
        assert "carol cannot log in to the target: the server's SCRAM verifier has another " \
               "salt or iteration count than auth_file's secret" in detail, detail
        with pytest.raises(AdminError) as ei:
            switch(p, rdb)
        assert ei.value.message.startswith("preflight failed: logins check: carol cannot log "
                                           "in to the target"), ei.value
        with rdb.target.admin_connect() as a:
            a.execute(sql.SQL("ALTER ROLE carol PASSWORD {}").format(sql.Literal(carol_secret)))
        # a client of carol logs in with SCRAM: now the check proves her secret for real
        with p.connect(user="carol", dbname=DB) as c:
            c.execute("SELECT 1")
        st, detail = status(p, "logins")
        assert st == "ok" and "carol:" not in detail, detail

        # no CONNECT on the target for the roles that had it through PUBLIC
        with rdb.tgt() as t:
            t.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(DB)))
        st, detail = status(p, "logins")
        assert st == "fail", detail
        assert f'dave cannot log in to the target: permission denied for database "{DB}"' \
               in detail, detail
    finally:
        with rdb.tgt() as t:
            t.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(
                sql.Identifier(DB)))
        with rdb.target.admin_connect() as a:
            a.execute(sql.SQL("ALTER ROLE carol PASSWORD {}").format(sql.Literal(carol_secret)))
        for c in (rdb.source, rdb.target):
            with c.admin_connect() as a:
                a.execute("DROP ROLE IF EXISTS dave")
        os.unlink(userlist)
    assert status(p, "logins")[0] == "ok"


def test_bypass(proxy_factory, rdb):
    """Sessions on the source that do not come through pgcutover."""
    p = cutover_proxy(proxy_factory, rdb, name="check-bypass")
    with psycopg.connect(rdb.source.conninfo(user="alice", dbname=DB),
                         application_name="cron-job", autocommit=True) as alice:
        alice.execute("SELECT 1")
        st, detail = status(p, "bypass")
        assert st == "warn", detail   # alice is fenced by the switch: warned
        assert "alice 'cron-job' from 127.0.0.1" in detail, detail
        assert "the fence will end them and make their roles read-only" in detail, detail
        with rdb.src() as postgres:   # a role pgcutover does not log in as: not fenced
            postgres.execute("SELECT 1")
            st, detail = status(p, "bypass")
            assert st == "fail", detail
            assert "postgres '' from local" in detail, detail
            assert "they could write to the source after the flip" in detail, detail
    st, detail = status(p, "bypass")
    assert st == "ok", detail


def test_target_writes(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-twrites")
    with psycopg.connect(rdb.target.conninfo(user="alice", dbname=DB),
                         application_name="stray-writer") as w:
        w.execute("INSERT INTO orders (note) VALUES ('on the target')")   # open, uncommitted
        st, detail = status(p, "target_writes")
        assert st == "fail", detail
        assert "writing on the target now, before the switch: pid" in detail, detail
        assert "alice 'stray-writer'" in detail, detail
        w.rollback()
    assert status(p, "target_writes")[0] == "ok"


def test_long_transactions(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-longx", drain_timeout="1s")
    with p.connect(dbname=DB, autocommit=False) as c:
        c.execute("SELECT 1")   # a transaction is open, through pgcutover
        time.sleep(1.3)
        st, detail = status(p, "long_transactions")
        assert st == "fail", detail
        assert "open longer than drain_timeout (1000 ms)" in detail, detail
        assert "through pgcutover" in detail and "the drain would time out" in detail, detail
        c.commit()
    assert status(p, "long_transactions")[0] == "ok"


def test_ddl(proxy_factory, rdb):
    p = cutover_proxy(proxy_factory, rdb, name="check-ddl")
    with psycopg.connect(rdb.source.conninfo(user="alice", dbname=DB)) as c:
        c.execute("ALTER TABLE orders ADD COLUMN extra int")   # uncommitted
        st, detail = status(p, "ddl")
        assert st == "fail", detail
        assert "a schema change (ACCESS EXCLUSIVE lock) is running on the source" in detail
        assert "ALTER TABLE orders ADD COLUMN extra int" in detail, detail
        c.rollback()
    assert status(p, "ddl")[0] == "ok"


def test_fence(proxy_factory, rdb):
    """The side the database is routed to is fenced: its clients cannot write."""
    p = cutover_proxy(proxy_factory, rdb, name="check-fence")
    with rdb.src() as s:
        s.execute(sql.SQL("ALTER ROLE alice IN DATABASE {} SET default_transaction_read_only = on"
                          ).format(sql.Identifier(DB)))
    try:
        st, detail = status(p, "fence")
        assert st == "fail", detail
        assert detail.startswith("source: 1 of 5 roles fenced; target: 0 of 5 roles fenced"), detail
        assert f"its clients cannot write (UNFENCE {DB} source)" in detail, detail
    finally:
        rdb.unfence()
    assert status(p, "fence")[0] == "ok"


@pytest.mark.timeout(120)
def test_switch_back_without_replication(proxy_factory, rdb):
    """lag_method none: after a switch to the target, CHECK TO source is ok
    until the target is written to, then fails; FORCE switches back."""
    p = cutover_proxy(proxy_factory, rdb, name="check-back", lag_method="none", fence="off",
                      sequence_sync="none")
    assert switch(p, rdb)["result"] == "ok"
    try:
        assert status(p, "switch_back") == (
            "ok", "the target was not written to since the switch to it")
        with p.connect(dbname=DB) as c:
            c.execute("INSERT INTO orders (note) VALUES ('on the target')")
        st, detail = status(p, "switch_back")
        assert st == "fail", detail
        assert detail.startswith("the target was written to since the switch to it"), detail
    finally:
        assert switch(p, rdb, "TO source FORCE")["result"] == "ok"
    assert route_of(p.admin_port, DB) == ("source", "running")
    assert status(p, "switch_back") == ("ok", "not applicable: not a switch back")

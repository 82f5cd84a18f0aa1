"""Startup parameters reach the server session exactly as if the client had
connected directly (issue point 7): SHOW gives the value sent, RESET returns
to it, a pooled server connection is never handed to a client with other
startup parameters, and a reused one has been cleaned (DISCARD ALL)."""

import psycopg
import pytest

import wire
from pgutil import PASSWORDS

# Sent as startup-packet parameters by a raw client (everything PostgreSQL
# accepts there: GUCs by name, a custom placeholder GUC, and `options`).
RAW_PARAMS = {
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "sql_standard",
    "TimeZone": "Asia/Tokyo",
    "extra_float_digits": "1",
    "search_path": "foo, public",
    "application_name": "raw-probe",
    "statement_timeout": "4321",
    "myapp.tenant": "7",
    "options": "-c work_mem=5MB -c lock_timeout=2s",
}
RAW_EXPECT = {
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "sql_standard",
    "TimeZone": "Asia/Tokyo",
    "extra_float_digits": "1",
    "search_path": "foo, public",
    "application_name": "raw-probe",
    "statement_timeout": "4321ms",
    "myapp.tenant": "7",
    "work_mem": "5MB",
    "lock_timeout": "2s",
}
# A value different from the startup one, to SET before RESET.
OTHER = {
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "iso_8601",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "search_path": "public",
    "application_name": "changed",
    "statement_timeout": "99",
    "myapp.tenant": "other",
    "work_mem": "1MB",
    "lock_timeout": "9s",
}


def raw_probe(port):
    """Log in with RAW_PARAMS; return (ParameterStatus, SHOW values, values after
    SET+RESET of each, values after SET of all + RESET ALL)."""
    with wire.RawConn(port=port) as c:
        c.login("alice", PASSWORDS["alice"], extra=RAW_PARAMS)
        shown = {g: c.scalar(f'show "{g}"') for g in RAW_EXPECT}
        after_reset = {}
        for g, v in OTHER.items():
            c.query_values(f"set \"{g}\" = '{v}'")
            assert c.scalar(f'show "{g}"') != shown[g] or g == "extra_float_digits"
            c.query_values(f'reset "{g}"')
            after_reset[g] = c.scalar(f'show "{g}"')
        for g, v in OTHER.items():
            c.query_values(f"set \"{g}\" = '{v}'")
        c.query_values("reset all")
        after_reset_all = {g: c.scalar(f'show "{g}"') for g in RAW_EXPECT}
        return dict(c.params), shown, after_reset, after_reset_all


def test_raw_startup_params_as_direct(proxy, source):
    params, shown, after_reset, after_reset_all = raw_probe(proxy.port)
    assert shown == RAW_EXPECT
    assert after_reset == RAW_EXPECT
    assert after_reset_all == RAW_EXPECT
    # The ParameterStatus the client got are the server's, as directly.
    d_params, d_shown, d_after_reset, d_after_reset_all = raw_probe(source.port)
    assert (shown, after_reset, after_reset_all) == (d_shown, d_after_reset, d_after_reset_all)
    assert params == d_params
    assert params["DateStyle"] == "SQL, DMY"
    assert params["TimeZone"] == "Asia/Tokyo"
    assert params["application_name"] == "raw-probe"
    assert params["IntervalStyle"] == "sql_standard"


PSY_OPTIONS = ("-c search_path=foo,public -c statement_timeout=1234 -c myapp.tenant=42 "
               "-c IntervalStyle=postgres_verbose -c extra_float_digits=2")
PSY_EXPECT = {
    "search_path": "foo,public",
    "statement_timeout": "1234ms",
    "myapp.tenant": "42",
    "IntervalStyle": "postgres_verbose",
    "extra_float_digits": "2",
    "application_name": "psy-probe",
    "DateStyle": "Postgres, DMY",
    "TimeZone": "America/New_York",
}


def test_libpq_startup_params(proxy, monkeypatch):
    """libpq sends options, application_name, and PGDATESTYLE/PGTZ from the
    environment as startup parameters."""
    monkeypatch.setenv("PGDATESTYLE", "Postgres, DMY")
    monkeypatch.setenv("PGTZ", "America/New_York")
    with proxy.connect(options=PSY_OPTIONS, application_name="psy-probe") as conn:
        for g, v in PSY_EXPECT.items():
            assert conn.execute(f'show "{g}"').fetchone()[0] == v, g
        for g in ("DateStyle", "TimeZone", "application_name", "IntervalStyle"):
            assert conn.info.parameter_status(g) == PSY_EXPECT[g], g
        conn.execute("set statement_timeout = 5; set search_path = public; "
                     "set myapp.tenant = 'x'; set DateStyle = 'ISO'")
        conn.execute("reset statement_timeout; reset search_path; reset myapp.tenant; "
                     "reset DateStyle")
        for g in ("statement_timeout", "search_path", "myapp.tenant", "DateStyle"):
            assert conn.execute(f'show "{g}"').fetchone()[0] == PSY_EXPECT[g], g
        # the startup statement_timeout is really in force
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(3)")
        assert conn.execute("select 1").fetchone() == (1,)


def test_psql_datestyle_env(proxy):
    r = proxy.psql("show DateStyle", env={"PGDATESTYLE": "German", "PGOPTIONS": "-c work_mem=3MB"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "German, DMY"
    r = proxy.psql("show work_mem", env={"PGOPTIONS": "-c work_mem=3MB"})
    assert r.stdout.strip() == "3MB", r.stderr


def show_all(conn, names):
    return {g: conn.execute("select current_setting(%s, true)", (g,)).fetchone()[0]
            for g in names}


NAMES = ["statement_timeout", "myapp.tenant", "DateStyle", "work_mem", "application_name"]


def test_pool_of_one_never_leaks_params(proxy_factory, monkeypatch):
    """Sequential clients with different startup parameters on a pool of one
    server connection: each sees its own values, never the previous one's."""
    p = proxy_factory.new(settings={"default_pool_size": 1})
    monkeypatch.setenv("PGDATESTYLE", "SQL, DMY")
    with p.connect(options="-c statement_timeout=1111 -c myapp.tenant=a",
                   application_name="first") as a:
        assert show_all(a, NAMES) == {"statement_timeout": "1111ms", "myapp.tenant": "a",
                                      "DateStyle": "SQL, DMY", "work_mem": "4MB",
                                      "application_name": "first"}
        a.execute("set work_mem = '3MB'")
    monkeypatch.delenv("PGDATESTYLE")
    with p.connect(options="-c statement_timeout=2222", application_name="second") as b:
        got = show_all(b, NAMES)
        assert got["myapp.tenant"] in (None, ""), got
        del got["myapp.tenant"]
        assert got == {"statement_timeout": "2222ms", "DateStyle": "ISO, MDY",
                       "work_mem": "4MB", "application_name": "second"}
        b.execute("set statement_timeout = 1")
        b.execute("reset statement_timeout")
        assert b.execute("show statement_timeout").fetchone()[0] == "2222ms"
        assert b.info.parameter_status("DateStyle") == "ISO, MDY"
        assert b.info.parameter_status("application_name") == "second"
    with p.connect() as c:
        got = show_all(c, NAMES)
        assert got["myapp.tenant"] in (None, ""), got
        del got["myapp.tenant"]
        assert got == {"statement_timeout": "0", "DateStyle": "ISO, MDY", "work_mem": "4MB",
                       "application_name": ""}
        c.execute("reset all")
        assert c.execute("show statement_timeout").fetchone()[0] == "0"


def test_same_params_reuse_clean_server(proxy_factory):
    """A client with the same startup parameters reuses the pooled server
    connection (same backend pid), and finds it reset: no SET, temp table,
    prepared statement or LISTEN of the previous client survives; the
    startup values are still in force."""
    p = proxy_factory.new(settings={"default_pool_size": 1})
    opts = "-c statement_timeout=1234 -c search_path=foo,public"
    with p.connect(options=opts, application_name="reuse") as a:
        pid1 = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("set work_mem = '3MB'")
        a.execute("set statement_timeout = 77")
        a.execute("create temp table leftover(i int)")
        a.execute("prepare leftover_stmt as select 1")
        a.execute("listen leftover_chan")
        a.execute("select set_config('myapp.note', 'dirty', false)")
    with p.connect(options=opts, application_name="reuse") as b:
        pid2 = b.execute("select pg_backend_pid()").fetchone()[0]
        assert pid2 == pid1, "the pooled server connection was not reused"
        assert b.execute("show work_mem").fetchone()[0] == "4MB"
        assert b.execute("show statement_timeout").fetchone()[0] == "1234ms"
        assert b.execute("show search_path").fetchone()[0] == "foo,public"
        assert b.execute("show application_name").fetchone()[0] == "reuse"
        assert b.execute("select to_regclass('pg_temp.leftover')").fetchone()[0] is None
        assert b.execute("select count(*) from pg_prepared_statements").fetchone()[0] == 0
        assert b.execute("select count(*) from pg_listening_channels()").fetchone()[0] == 0
        assert b.execute("select current_setting('myapp.note', true)").fetchone()[0] in (None, "")
        b.execute("set statement_timeout = 5")
        b.execute("reset statement_timeout")
        assert b.execute("show statement_timeout").fetchone()[0] == "1234ms"


def test_open_transaction_rolled_back_on_disconnect(proxy_factory):
    """A client that leaves a transaction open: its writes are rolled back and
    the next client gets an idle session (on the same server after a
    ROLLBACK, or on a new one: closing an unclean server is PgBouncer's way)."""
    p = proxy_factory.new(settings={"default_pool_size": 1})
    with p.connect() as setup:
        setup.execute("create table if not exists leftover_tx(i int)")
        setup.execute("truncate leftover_tx")
    a = p.connect(autocommit=False)
    a.execute("insert into leftover_tx values (1)")
    a.close()  # no COMMIT
    try:
        with p.connect() as b:
            assert b.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert b.execute("select count(*) from leftover_tx").fetchone()[0] == 0
    finally:
        with p.connect() as c:
            c.execute("drop table leftover_tx")


def test_parameter_status_after_set(proxy):
    """ParameterStatus sent by the server after a SET reaches the client."""
    with proxy.connect(application_name="before") as conn:
        assert conn.info.parameter_status("application_name") == "before"
        conn.execute("set application_name = 'after'")
        assert conn.info.parameter_status("application_name") == "after"
        conn.execute("set DateStyle = 'German'")
        assert conn.info.parameter_status("DateStyle") == "German, DMY"
        conn.execute("reset all")
        assert conn.info.parameter_status("application_name") == "before"
        assert conn.info.parameter_status("DateStyle") == "ISO, MDY"

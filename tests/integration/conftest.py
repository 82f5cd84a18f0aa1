"""Fixtures of pgcutover's integration suite.

Session: two PostgreSQL 15 clusters ("source" and "target") started from
scratch in temporary directories, with the roles the tests log in as, and the
userlist.txt pgcutover reads.  Module: a default proxy (scram-sha-256,
session pooling) in front of them.  Function: a factory for proxies with
special settings.  Every proxy is stopped at the end of its scope; a proxy
that had to be killed, exited with a non-zero status or printed a sanitizer
report fails the test that owned it.  The log of every proxy involved is
attached to a failing test's report.

Run as:  PGCUTOVER_BIN=/abs/build/pgcutover /usr/bin/python3 -m pytest -q tests/integration
"""

import os
import re
import signal
import tempfile
import threading

import pytest
from psycopg import sql

import proxyutil
from pgutil import PASSWORDS, Cluster, boot_pair, md5_secret
from proxyutil import ClusterEnv, ProxyFactory, pgcutover_bin

DEFAULT_TEST_TIMEOUT = 180


def _write_userlist(path, carol_secret):
    entries = [
        ("alice", PASSWORDS["alice"]),                     # plaintext
        ("bob", md5_secret("bob", PASSWORDS["bob"])),     # md5 secret
        ("carol", carol_secret),                           # SCRAM secret from pg_authid
        ("tim", PASSWORDS["tim"]),                         # server side trusts tim
        ("pat", PASSWORDS["pat"]),                         # server asks for cleartext
        ("admin", "admin_pw"),
        ("pgcutover", PASSWORDS["pgcutover"]),
    ]
    with open(path, "w") as f:
        f.write(";; pgcutover integration suite: PgBouncer userlist format\n")
        for user, secret in entries:
            f.write(f'"{user}" "{secret}"\n')


@pytest.fixture(scope="session")
def clusters():
    source = Cluster("source")
    target = Cluster("target")
    tmp = tempfile.mkdtemp(prefix="pgcutover-suite-", dir="/tmp")
    os.chmod(tmp, 0o755)
    try:
        carol_secret = boot_pair(source, target)
        userlist = os.path.join(tmp, "userlist.txt")
        _write_userlist(userlist, carol_secret)
        yield ClusterEnv(source, target, userlist, carol_secret)
    finally:
        source.cleanup()
        target.cleanup()
        if not os.environ.get("PGCUTOVER_KEEP_TMP"):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def source(clusters):
    return clusters.source


@pytest.fixture(scope="session")
def target(clusters):
    return clusters.target


@pytest.fixture(scope="session")
def proxy_bin():
    path = pgcutover_bin()
    if os.environ.get("PGCUTOVER_DIRECT"):
        return path
    if not os.access(path, os.X_OK):
        pytest.fail(f"pgcutover binary not found at {path}: build it (make) or set PGCUTOVER_BIN",
                    pytrace=False)
    return path


@pytest.fixture(scope="module")
def proxy(clusters, proxy_bin):
    """The default proxy: auth_type scram-sha-256, session pooling, pool size 20."""
    factory = ProxyFactory(clusters)
    p = factory.new(name="default-proxy")
    yield p
    problems = factory.close_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def _no_fence_left_on_app(request, clusters):
    """The shared database "app" must come out of every module unfenced: a
    fence left there (a switch of it with fence = on) would make every later
    module's writes fail with 25006.  Lifted, and the module that left it
    fails at its teardown, so the culprit is named."""
    yield
    left = []
    for c in (clusters.source, clusters.target):
        if not c.started:
            continue
        with c.admin_connect() as a:
            rows = a.execute(
                "SELECT r.rolname FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'app' "
                "AND 'default_transaction_read_only=on' = ANY (s.setconfig)").fetchall()
            for (role,) in rows:
                a.execute(sql.SQL("ALTER ROLE {} IN DATABASE app RESET "
                                  "default_transaction_read_only").format(sql.Identifier(role)))
                left.append(f"{c.name}:{role}")
    if left:
        pytest.fail(f"{request.module.__name__} left a fence on the shared database app: {left}",
                    pytrace=False)


@pytest.fixture
def proxy_factory(clusters, proxy_bin):
    """factory.new(settings={...}, databases={...}) -> a started Proxy."""
    factory = ProxyFactory(clusters)
    yield factory
    problems = factory.close_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# -- per-test watchdog --------------------------------------------------------

class WatchdogTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Fail a test that runs longer than its budget instead of hanging the suite.
    Budget: @pytest.mark.timeout(seconds), else DEFAULT_TEST_TIMEOUT."""
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m else DEFAULT_TEST_TIMEOUT
    seconds = int(seconds * proxyutil.SLOW)

    def on_alarm(signum, frame):
        raise WatchdogTimeout(f"test exceeded its {seconds}s budget")

    def last_resort():
        # The test is stuck in a C call the alarm cannot interrupt (a blocking
        # libpq read): kill the proxies we started so that the read returns.
        for p in list(proxyutil.LIVE):
            try:
                p.proc.kill()
            except Exception:
                pass

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    killer = threading.Timer(seconds + 30, last_resort)
    killer.daemon = True
    killer.start()
    try:
        yield
    finally:
        killer.cancel()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- logs in failure reports ----------------------------------------------------

def pytest_runtest_logstart(nodeid, location):
    proxyutil.STOPPED_RECENTLY.clear()


ADMIN_NOISE = re.compile(r"connected to the admin console|login as admin to |"
                         r"admin logged in to the admin console|closing: admin session ended")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    seen = set()
    for p in list(proxyutil.LIVE) + list(proxyutil.STOPPED_RECENTLY):
        if id(p) in seen:
            continue
        seen.add(id(p))
        try:
            lines = p.log().splitlines()
        except Exception as e:
            lines = [f"(could not read log: {e!r})"]
        # the tests' own admin logins (polls of SHOW ...) would fill the tail
        lines = [ln for ln in lines if not ADMIN_NOISE.search(ln)]
        tail = "\n".join(lines[-150:])
        rep.sections.append((f"pgcutover log: {p.name} (port {p.port}, last 150 lines "
                             "without admin logins)", tail))
    env = item.funcargs.get("clusters") if hasattr(item, "funcargs") else None
    if env is None:
        return
    for c in (env.source, env.target):
        rep.sections.append((f"postgres log: {c.name} (last 25 lines)", c.log_tail(25)))

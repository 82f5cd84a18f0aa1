"""pgcutover as a service (issue: operations): what systemd, logrotate and
syslog see of it.

- sd_notify: the test listens on a NOTIFY_SOCKET of its own, as systemd does
  for a unit of Type=notify, and starts pgcutover with it in the
  environment: READY=1 comes once the client, admin and metrics listeners
  accept connections; STATUS= follows the clients, the waiting ones and a
  running switch with its phase; a reload (SIGHUP or RELOAD) is framed by
  RELOADING=1 and READY=1; SIGTERM sends STOPPING=1.
- log_file: logrotate renames the file and sends SIGUSR2 (or SIGHUP):
  the next line goes to a new file of the same name, none to the old one.
- syslog = on: the test binds /dev/log itself (when no syslog daemon owns
  it) and reads what pgcutover sends: ident, facility and priority, the
  level in the message, and the changes a reload makes.
"""

import os
import signal
import socket
import threading
import time

import pytest

from notifyutil import NotifySocket, fields
from proxyutil import SLOW
from replication import AdminError, admin, admin_connect, admin_query, wait_until


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def notify(tmp_path, monkeypatch):
    os.chmod(tmp_path, 0o755)
    ns = NotifySocket(str(tmp_path))
    monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
    yield ns
    ns.close()


@pytest.mark.timeout(60)
def test_sd_notify_ready_status_reload_stopping(proxy_factory, notify, monkeypatch):
    p = proxy_factory.new(start=False, settings={"drain_timeout": "3s"})
    p.start(wait=False)
    monkeypatch.delenv("NOTIFY_SOCKET")   # only the proxy under test gets it

    # READY=1 once every listener is open: at that moment all three accept
    i = notify.wait_for(lambda m: "READY=1" in m, 10, what="READY=1")
    assert accepts(p.port) and accepts(p.admin_port) and accepts(p.metrics_port)
    ready = fields(notify.all()[i])
    assert ready.get("STATUS") == "0 clients, 0 waiting; no switch running", ready
    assert not any("READY=1" in m or "STOPPING=1" in m for m in notify.all()[:i])

    # STATUS follows the clients: one connected, then one held by PAUSE
    conn = p.connect()
    notify.wait_for(lambda m: fields(m).get("STATUS", "").startswith("1 clients, 0 waiting"),
                    5, start=i, what="a status with one client")
    held = {}
    with admin_connect(p.admin_port) as a:
        admin_query(a, "PAUSE app")
        t = threading.Thread(target=lambda: held.update(v=conn.execute("select 1").fetchone()))
        t.start()
        # the admin session is a client too
        notify.wait_for(lambda m: "1 waiting" in fields(m).get("STATUS", ""), 5,
                        what="a status with one waiting client")
        admin_query(a, "RESUME app")
    t.join(10)
    assert held.get("v") == (1,), held

    # a switch that runs for a while (its drain waits for an open transaction)
    conn.execute("BEGIN")
    conn.execute("select 1")
    mark = len(notify.all())
    with admin_connect(p.admin_port) as a:
        with pytest.raises(AdminError):
            admin_query(a, "SWITCH app")
    notify.wait_for(lambda m: "switching app (drain)" in fields(m).get("STATUS", ""), 1,
                    start=mark, what="a status naming the running switch and its phase")
    conn.execute("ROLLBACK")
    conn.close()
    notify.wait_for(lambda m: fields(m).get("STATUS", "").endswith("no switch running"), 5,
                    start=mark, what="a status once the switch is over")

    # a reload is framed by RELOADING=1 (with its monotonic time) and READY=1,
    # whether it comes by signal or by RELOAD, and whether it succeeds or not
    for trigger in ("SIGHUP", "RELOAD", "bad file"):
        mark = len(notify.all())
        if trigger == "SIGHUP":
            p.signal(signal.SIGHUP)
        elif trigger == "RELOAD":
            admin(p.admin_port, "RELOAD")
        else:
            p.write_config(p.render_config(extra_lines="no_such_key = 1"))
            with pytest.raises(AdminError):
                admin(p.admin_port, "RELOAD")
            p.write_config()
        r = notify.wait_for(lambda m: "RELOADING=1" in m, 5, start=mark, what="RELOADING=1")
        usec = fields(notify.all()[r]).get("MONOTONIC_USEC", "")
        assert usec.isdigit() and abs(int(usec) / 1e6 - time.monotonic()) < 60, notify.all()[r]
        notify.wait_for(lambda m: "READY=1" in m, 5, start=r + 1, what=f"READY=1 after {trigger}")

    # SIGTERM: STOPPING=1 before the process is gone
    mark = len(notify.all())
    p.signal(signal.SIGTERM)
    assert p.wait_exit(10 * SLOW) == 0
    notify.wait_for(lambda m: "STOPPING=1" in m, 2, start=mark, what="STOPPING=1")


@pytest.mark.timeout(60)
def test_sd_notify_failed_start_says_why(proxy_factory, notify):
    """A start-up that fails (the client port is taken) says so in STATUS=,
    never READY=1, and exits with status 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        p = proxy_factory.new(start=False, settings={"listen_port": busy.getsockname()[1]})
        p.expect_exit = True
        p.start(wait=False)
        assert p.wait_exit(10 * SLOW) == 1
    time.sleep(0.2)
    msgs = notify.all()
    assert not any("READY=1" in m for m in msgs), msgs
    assert any("listen" in fields(m).get("STATUS", "") for m in msgs), msgs


def lines_of(path):
    with open(path) as f:
        return f.read().splitlines()


@pytest.mark.timeout(60)
def test_log_file_reopened_on_sigusr2_and_sighup(proxy_factory):
    """What logrotate does without copytruncate: rename, then signal."""
    p = proxy_factory.new(settings={"log_file": "pgcutover.log"})
    log = p.log_file
    assert any("started" in ln for ln in lines_of(log))

    for n, sig, says in ((1, signal.SIGUSR2, "log file reopened"),
                         (2, signal.SIGHUP, "configuration reloaded")):
        rotated = f"{log}.{n}"
        os.rename(log, rotated)
        p.signal(sig)
        wait_until(lambda: os.path.exists(log) and any(says in ln for ln in lines_of(log)),
                   5 * SLOW, what=f"a new {log} after {sig.name}")
        assert os.stat(log).st_mode & 0o777 == 0o640
        # lines written between the rename and the signal are in the renamed file;
        # from the signal on, every line is in the new one
        before = len(lines_of(rotated))
        with p.connect() as c:
            c.execute("select 1")
        wait_until(lambda: any("connected" in ln for ln in lines_of(log)), 5 * SLOW,
                   what="the new client's lines in the new file")
        assert len(lines_of(rotated)) == before, lines_of(rotated)[before:]
        assert not any("started" in ln for ln in lines_of(log))
    assert p.alive()


@pytest.mark.timeout(60)
def test_log_file_that_cannot_be_reopened_keeps_the_old_one(proxy_factory):
    p = proxy_factory.new(start=False, settings={"log_file": "logs/pgcutover.log"})
    os.makedirs(os.path.join(p.dir, "logs"))
    p.start()
    # the directory goes away (a rotation gone wrong): lines keep going to the open file
    os.rename(os.path.join(p.dir, "logs"), os.path.join(p.dir, "gone"))
    p.signal(signal.SIGUSR2)
    old = os.path.join(p.dir, "gone", "pgcutover.log")
    wait_until(lambda: any("SIGUSR2: could not reopen log_file" in ln for ln in lines_of(old)),
               5 * SLOW, what="an error about the log file, in the file still open")
    with p.connect() as c:
        c.execute("select 1")
    assert p.alive()


# -- syslog ------------------------------------------------------------------

class FakeSyslog:
    """/dev/log, bound by the test: what pgcutover sends to syslog."""

    PATH = "/dev/log"

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.PATH)
        os.chmod(self.PATH, 0o666)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self, seconds=0.0):
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode(errors="replace"))
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return self.messages
            except OSError:
                return self.messages

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.PATH)
        except FileNotFoundError:
            pass


@pytest.fixture
def fake_syslog():
    if os.path.exists(FakeSyslog.PATH):
        pytest.skip("/dev/log belongs to a syslog daemon here: the test cannot read it")
    s = FakeSyslog()
    yield s
    s.close()


def syslog_wait(s, pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        for m in s.drain(0.1):
            if pred(m):
                return m
        assert time.monotonic() < deadline, f"no {what} in syslog; got {s.messages[-20:]}"


@pytest.mark.timeout(60)
def test_syslog(proxy_factory, fake_syslog):
    p = proxy_factory.new(settings={"syslog": "on", "syslog_ident": "pgcutover-test",
                                    "syslog_facility": "local3"})
    tag = f"pgcutover-test[{p.pid}]: "
    # <PRI> = facility * 8 + severity: local3 (19), info (6)
    started = syslog_wait(fake_syslog, lambda m: "started" in m, 5, "the start-up line")
    assert started.startswith("<158>") and tag + "LOG pgcutover " in started, started
    # syslog adds its own timestamp: the message carries none of pgcutover's
    body = started.split(tag, 1)[1]
    assert not body[:4].isdigit(), started
    # a reload changes ident and facility (daemon = 3: <30> for info)...
    p.settings.update({"syslog_ident": "cutover2", "syslog_facility": "daemon"})
    p.write_config()
    p.signal(signal.SIGHUP)
    reloaded = syslog_wait(fake_syslog, lambda m: "configuration reloaded" in m, 5,
                           "the reload line")
    assert reloaded.startswith("<30>") and f"cutover2[{p.pid}]: LOG " in reloaded, reloaded
    # ... and syslog = off stops it, while the log goes on
    p.settings["syslog"] = "off"
    p.write_config()
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    assert p.wait_log("configuration reloaded", since=mark, timeout=5)
    fake_syslog.drain(0.3)
    n = len(fake_syslog.messages)
    mark = p.log_mark()
    p.signal(signal.SIGHUP)
    assert p.wait_log("configuration reloaded", since=mark, timeout=5)
    assert fake_syslog.drain(0.5)[n:] == [], fake_syslog.messages[n:]

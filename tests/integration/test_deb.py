"""The Debian package, installed into this machine (issue: operations).

`make deb` builds it with `dpkg-buildpackage -us -uc -b` from a copy of the
tree (build/deb/, rebuilt only when the tree changed) and fails on any
lintian error; this test also refuses lintian warnings.  Then it installs
the package with apt-get and checks what the package promises: the binary,
the man pages, the unit (`systemd-analyze verify`, now with the real
binary and man pages), the logrotate snippet, the pgcutover system user and
its directories, and that nothing was started while
/etc/pgcutover/pgcutover.ini does not exist.

It then writes a minimal /etc/pgcutover/pgcutover.ini (the packaged example
with the suite's ports, userlist and a database in front of the suite's
throwaway source cluster) and starts the service.  When systemd runs this
machine (`systemctl is-system-running` says running or degraded), with
`systemctl start pgcutover`.  Otherwise (a container, as on CI) the unit
cannot run, so the test runs the packaged binary the way the unit's
ExecStartPre and ExecStart do: as the pgcutover user, with the unit's
command lines read from the installed unit, and with a NOTIFY_SOCKET of its
own on which it waits for READY=1, as systemd would.  Either way it runs a
query through the service, switches the database (the route file lands in
/var/lib/pgcutover, written by the service user), rotates the log with the
packaged logrotate snippet (which signals pgcutover with SIGUSR2), stops the
service and purges the package.

Everything is undone at the end, whatever happens: the process is stopped,
the package purged, and the user and directories the test made removed.  The
test is skipped when pgcutover is already installed here (it will not touch
a real installation), and in sanitizer runs (the package holds the normal
build, which make test has already tested).
"""

import glob
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg
import pytest

from notifyutil import NotifySocket, fields
from pgutil import PASSWORDS, free_port
from proxyutil import REPO, is_sanitizer_build
from replication import admin

DEB_DIR = os.path.join(REPO, "build", "deb")
UNIT = "/lib/systemd/system/pgcutover.service"
CONFIG = "/etc/pgcutover/pgcutover.ini"
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

pytestmark = pytest.mark.skipif(is_sanitizer_build(),
                                reason="the package holds the normal build (make test runs this)")


def run(argv, timeout=300, check=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, f"{' '.join(argv)}: exit {r.returncode}\n{r.stdout[-4000:]}"
    return r


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", "pgcutover"], check=False)
    return "install ok installed" in r.stdout or "config-files" in r.stdout


def systemd_runs():
    r = run(["systemctl", "is-system-running"], check=False, timeout=30)
    return r.stdout.strip() in ("running", "degraded")


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def unit_command(unit_text, key):
    """The argv of ExecStart= or ExecStartPre= in the unit."""
    m = re.search(rf"(?m)^{key}=(.*)$", unit_text)
    assert m, f"no {key}= in the unit"
    return shlex.split(m.group(1))


def write_config(clusters, ports):
    """The packaged example, made to serve the suite's source as "app"."""
    with open("/usr/share/doc/pgcutover/examples/pgcutover.ini") as f:
        text = f.read()
    for key, value in (("listen_port", ports["listen"]), ("admin_port", ports["admin"]),
                       ("metrics_port", ports["metrics"]), ("admin_users", "admin")):
        text, n = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert n == 1, key
    text = text.split('[database "appdb"]')[0] + (
        '[database "app"]\n'
        f"source = {clusters.source.proxy_target()}\n"
        f"target = {clusters.target.proxy_target()}\n"
        "lag_method = none\n"
        # the shared database: its switch must leave no fence for the tests after
        "fence = off\n")
    gid = grp.getgrnam("pgcutover").gr_gid
    with open(CONFIG, "w") as f:
        f.write(text)
    shutil.copy(clusters.userlist, "/etc/pgcutover/userlist.txt")
    for path in (CONFIG, "/etc/pgcutover/userlist.txt"):
        os.chown(path, 0, gid)
        os.chmod(path, 0o640)


class Service:
    """The packaged service, started by systemd or, without it, as its unit would."""

    def __init__(self, with_systemd):
        self.with_systemd = with_systemd
        self.proc = None
        self.notify = None
        self.tmp = None

    def start(self):
        with open(UNIT) as f:
            unit = f.read()
        if self.with_systemd:
            run(["systemctl", "start", "pgcutover.service"], timeout=60)
            return
        as_user = ["runuser", "-u", "pgcutover", "--"]
        run(as_user + unit_command(unit, "ExecStartPre"), timeout=30)
        self.tmp = tempfile.mkdtemp(prefix="pgcutover-deb-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.notify = NotifySocket(self.tmp)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        self.proc = subprocess.Popen(as_user + unit_command(unit, "ExecStart"), env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.tmp, "stderr"), "wb"),
                                     stderr=subprocess.STDOUT, cwd="/")
        self.notify.wait_for(lambda m: "READY=1" in m, 15, what="READY=1 from the service")

    def pid(self):
        if self.with_systemd:
            r = run(["systemctl", "show", "-p", "MainPID", "--value", "pgcutover.service"])
            return int(r.stdout.strip())
        # runuser forks: the service is its child, running as pgcutover
        r = run(["pgrep", "-x", "-u", "pgcutover", "pgcutover"], check=False)
        pids = [int(x) for x in r.stdout.split()]
        assert len(pids) == 1, f"pgcutover processes of user pgcutover: {pids}"
        return pids[0]

    def reload(self):
        if self.with_systemd:
            run(["systemctl", "reload", "pgcutover.service"], timeout=60)
        else:
            mark = len(self.notify.all())
            os.kill(self.pid(), signal.SIGHUP)
            r = self.notify.wait_for(lambda m: "RELOADING=1" in m, 10, start=mark,
                                     what="RELOADING=1")
            self.notify.wait_for(lambda m: "READY=1" in m, 10, start=r + 1,
                                 what="READY=1 after the reload")

    def stop(self):
        if self.with_systemd:
            run(["systemctl", "stop", "pgcutover.service"], timeout=90, check=False)
            return None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.pid(), signal.SIGTERM)
            except (AssertionError, ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                run(["pkill", "-KILL", "-x", "-u", "pgcutover", "pgcutover"], check=False)
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self.notify:
            self.notify.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.mark.timeout(600)
def test_debian_package(clusters):
    if installed() or os.path.exists("/etc/pgcutover"):
        pytest.skip("pgcutover is installed on this machine: the test does not touch it")
    out = subprocess.run(["make", "-C", REPO, "--no-print-directory", "deb"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert out.returncode == 0, f"make deb failed:\n{out.stdout[-6000:]}"
    debs = glob.glob(os.path.join(DEB_DIR, "pgcutover_*.deb"))
    assert len(debs) == 1, debs
    deb = debs[0]
    with open(os.path.join(DEB_DIR, "lintian.txt")) as f:
        report = f.read()
    tags = [ln for ln in report.splitlines() if re.match(r"^[EW]: ", ln)]
    assert not tags, "lintian errors or warnings:\n" + "\n".join(tags)

    had_user = user_exists("pgcutover")
    made = [d for d in ("/var/lib/pgcutover", "/var/log/pgcutover") if not os.path.exists(d)]
    service = Service(systemd_runs())
    try:
        run(["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=120",
             "--no-install-recommends", os.path.abspath(deb)], env=APT_ENV)
        check_installed()
        ports = {"listen": free_port(), "admin": free_port(), "metrics": free_port()}
        write_config(clusters, ports)
        service.start()
        check_running(service, clusters, ports)
        rc = service.stop()
        assert rc in (None, 0), f"the service exited with {rc}"
        if service.notify:
            assert any("STOPPING=1" in m for m in service.notify.all()), service.notify.all()

        run(["apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", "pgcutover"],
            env=APT_ENV)
        assert not installed()
        assert not os.path.exists("/usr/bin/pgcutover")
        assert not os.path.exists(UNIT)
        assert not os.path.exists("/var/log/pgcutover"), "purge leaves the logs"
        # the route files outlive the package (debian/pgcutover.postrm says why)
        assert os.path.exists("/var/lib/pgcutover/app.route")
    finally:
        service.cleanup()
        if installed():
            run(["apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", "pgcutover"],
                env=APT_ENV, check=False)
        shutil.rmtree("/etc/pgcutover", ignore_errors=True)
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        if not had_user and user_exists("pgcutover"):
            run(["userdel", "pgcutover"], check=False)
            try:
                grp.getgrnam("pgcutover")
                run(["groupdel", "pgcutover"], check=False)
            except KeyError:
                pass


def check_installed():
    files = run(["dpkg", "-L", "pgcutover"]).stdout.split()
    for path in ("/usr/bin/pgcutover", UNIT, "/etc/logrotate.d/pgcutover",
                 "/usr/share/man/man1/pgcutover.1.gz", "/usr/share/man/man5/pgcutover.ini.5.gz",
                 "/usr/share/doc/pgcutover/examples/pgcutover.ini",
                 "/usr/share/doc/pgcutover/examples/pgcutover-dashboard.json"):
        assert path in files, f"{path} not in the package"
    assert run(["man", "-w", "pgcutover.ini"]).stdout.strip().endswith("pgcutover.ini.5.gz")
    r = run(["systemd-analyze", "verify", UNIT], check=False, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout

    # the system user and its directories
    pw = pwd.getpwnam("pgcutover")
    assert pw.pw_uid < 1000 and pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"), pw
    for path, mode, owner in (("/var/lib/pgcutover", 0o700, "pgcutover"),
                              ("/var/log/pgcutover", 0o750, "pgcutover"),
                              ("/etc/pgcutover", 0o750, "root")):
        st = os.stat(path)
        assert (st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name) == (mode, owner), path
    assert grp.getgrgid(os.stat("/etc/pgcutover").st_gid).gr_name == "pgcutover"

    # installed and enabled, but nothing runs: there is no configuration yet
    assert not os.path.exists(CONFIG)
    # (as its user: other pgcutover processes, of this suite or another, run as root)
    r = run(["pgrep", "-x", "-u", "pgcutover", "pgcutover"], check=False)
    assert r.returncode == 1, f"pgcutover runs after a bare install: {r.stdout}"
    if systemd_runs():
        r = run(["systemctl", "is-active", "pgcutover.service"], check=False)
        assert r.stdout.strip() != "active", r.stdout


def check_running(service, clusters, ports):
    pid = service.pid()
    assert pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == "pgcutover"
    if service.notify:
        status = [fields(m).get("STATUS") for m in service.notify.all() if "READY=1" in m]
        assert status and status[0].endswith("no switch running"), service.notify.all()

    # a query through the service reaches the source
    with psycopg.connect(host="127.0.0.1", port=ports["listen"], dbname="app", user="alice",
                         password=PASSWORDS["alice"], connect_timeout=10) as conn:
        assert conn.execute("select inet_server_port()").fetchone()[0] == clusters.source.port
    dbs = {r["name"]: r for r in admin(ports["admin"], "SHOW DATABASES")}
    assert dbs["app"]["route"] == "source", dbs

    # a switch: the route file is written in the state directory, by the service user
    row = admin(ports["admin"], "SWITCH app")[0]
    assert row["result"] == "ok", row
    st = os.stat("/var/lib/pgcutover/app.route")
    assert pwd.getpwuid(st.st_uid).pw_name == "pgcutover"
    with psycopg.connect(host="127.0.0.1", port=ports["listen"], dbname="app", user="alice",
                         password=PASSWORDS["alice"], connect_timeout=10) as conn:
        assert conn.execute("select inet_server_port()").fetchone()[0] == clusters.target.port

    # the packaged logrotate snippet rotates the log and makes pgcutover reopen it
    log = "/var/log/pgcutover/pgcutover.log"
    assert os.path.exists(log) and "started" in open(log).read()
    state = tempfile.mktemp(prefix="pgcutover-logrotate-", dir="/tmp")
    try:
        run(["logrotate", "-f", "-s", state, "/etc/logrotate.d/pgcutover"], timeout=60)
    finally:
        if os.path.exists(state):
            os.unlink(state)
    rotated = [p for p in glob.glob(log + "-*") if not p.endswith(".gz")]
    assert len(rotated) == 1, os.listdir("/var/log/pgcutover")
    deadline = time.monotonic() + 10
    while not (os.path.exists(log) and "log file reopened" in open(log).read()):
        assert time.monotonic() < deadline, f"pgcutover did not reopen {log}: " + \
            str(os.listdir("/var/log/pgcutover"))
        time.sleep(0.1)
    assert "started" not in open(log).read()

    # a reload, as systemctl reload does it
    service.reload()
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in open(log).read():
        assert time.monotonic() < deadline, open(log).read()[-2000:]
        time.sleep(0.1)

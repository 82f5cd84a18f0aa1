"""Starting and driving pgcutover processes for the integration suite.

A Proxy writes its own pgcutover.ini in a private temporary directory, picks
free ports, runs `$PGCUTOVER_BIN -v pgcutover.ini` with stdout and stderr in
proxy.stderr, and waits until it accepts connections.  stop() sends SIGTERM,
then SIGKILL if it does not exit, and reports what went wrong (a proxy that
had to be killed, a non-zero exit status, sanitizer reports) so that the
fixture can fail the test that used it.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg

from pgutil import PASSWORDS, PG_BINDIR, free_port, pg_bin

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BIN = os.path.join(REPO, "build", "pgcutover")


def pgcutover_bin():
    return os.path.abspath(os.environ.get("PGCUTOVER_BIN", DEFAULT_BIN))


def is_sanitizer_build():
    return "asan" in pgcutover_bin()


# Slack for slow builds (ASan) on every "within N seconds" wait.
SLOW = 3.0 if is_sanitizer_build() else 1.0

# Proxies currently running, and those stopped since the current test began:
# conftest.py attaches their logs to the report of a failing test.
LIVE = []
STOPPED_RECENTLY = []

SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"SUMMARY: (Address|Undefined|Leak)Sanitizer")

# A state machine that took a transition its table does not allow (clients,
# servers, the switch's phases) logs this: a bug, whatever else the test saw.
ILLEGAL_TRANSITION = re.compile(r"illegal (state|phase) change")

# Keys of the [pgcutover] section, in the order they are written.
BASE_ORDER = [
    "listen_addr", "listen_port", "unix_socket_dir", "admin_addr", "admin_port",
    "admin_users", "auth_type", "auth_file", "pool_mode", "max_client_conn",
    "default_pool_size", "state_dir", "metrics_addr", "metrics_port",
    "control_user", "lag_method", "client_login_timeout", "server_connect_timeout",
    "shutdown_timeout", "max_packet_size", "conn_buffer_size", "log_file",
]


class ClusterEnv:
    """What a Proxy needs to know of its surroundings: the source and target
    clusters and the userlist.txt it reads (carol's SCRAM secret when known)."""

    def __init__(self, source, target, userlist, carol_secret=None):
        self.source = source
        self.target = target
        self.userlist = userlist
        self.carol_secret = carol_secret


class Proxy:
    def __init__(self, env, settings=None, databases=None, name="proxy"):
        """env: the session's ClusterEnv.  settings: [pgcutover] overrides (a
        value of None drops the key).  databases: {name: {key: value}}
        replacing the default single [database "app"] section."""
        self.env = env
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"pgcutover-{name}-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.ini = os.path.join(self.dir, "pgcutover.ini")
        self.stderr_path = os.path.join(self.dir, "proxy.stderr")
        self.port = free_port()
        self.admin_port = free_port()
        self.metrics_port = free_port()
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "admin_addr": "127.0.0.1",
            "admin_port": str(self.admin_port),
            "admin_users": "admin",
            "auth_type": "scram-sha-256",
            "auth_file": env.userlist,
            "pool_mode": "session",
            "max_client_conn": "150",
            "default_pool_size": "20",
            "state_dir": "state",
            "metrics_addr": "127.0.0.1",
            "metrics_port": str(self.metrics_port),
            "control_user": "pgcutover",
            "lag_method": "none",
            "client_login_timeout": "20s",
            "server_connect_timeout": "10s",
            "shutdown_timeout": "3s",
        }
        for k, v in (settings or {}).items():
            if v is None:
                self.settings.pop(k, None)
            else:
                self.settings[k] = str(v)
        if "listen_port" in (settings or {}):
            self.port = int(self.settings["listen_port"])
        if databases is None:
            # The shared database "app" is not replicated and every module
            # uses it: a switch of it must not leave its source fenced for
            # the tests after (fencing is tested on replicated databases,
            # whose fixtures lift what a test left).
            databases = {"app": {"source": env.source.proxy_target(),
                                 "target": env.target.proxy_target(),
                                 "lag_method": "none", "fence": "off"}}
        self.databases = databases
        self.proc = None
        self.returncode = None
        self.killed = False
        self.expect_exit = False   # set by tests that end the process on purpose
        self.write_config()

    # -- configuration ---------------------------------------------------

    def render_config(self, settings=None, databases=None, extra_lines=""):
        settings = self.settings if settings is None else settings
        databases = self.databases if databases is None else databases
        lines = ["; written by tests/integration/proxyutil.py", "[pgcutover]"]
        keys = [k for k in BASE_ORDER if k in settings] + \
               [k for k in settings if k not in BASE_ORDER]
        for k in keys:
            lines.append(f"{k} = {settings[k]}")
        if extra_lines:
            lines.append(extra_lines.rstrip("\n"))
        for db, kv in databases.items():
            lines.append("")
            lines.append(f'[database "{db}"]')
            for k, v in kv.items():
                lines.append(f"{k} = {v}")
        return "\n".join(lines) + "\n"

    def write_config(self, text=None):
        with open(self.ini, "w") as f:
            f.write(text if text is not None else self.render_config())

    @property
    def log_file(self):
        lf = self.settings.get("log_file")
        if not lf:
            return None
        return lf if os.path.isabs(lf) else os.path.join(self.dir, lf)

    # -- process ---------------------------------------------------------

    def start(self, wait=True):
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([pgcutover_bin(), "-v", self.ini], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=subprocess.STDOUT)
        LIVE.append(self)
        if wait:
            self.wait_ready()
        return self

    def listen_host(self):
        first = self.settings.get("listen_addr", "127.0.0.1").split(",")[0].strip()
        return "127.0.0.1" if first in ("*", "0.0.0.0", "") else first

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        host = self.listen_host()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pgcutover exited with {self.proc.returncode} during start-up:\n{self.log()}")
            try:
                with socket.socket(fam, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect((host, self.port))
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgcutover did not listen on {host}:{self.port} "
                           f"within {timeout * SLOW:.0f}s:\n{self.log()}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        if self.proc is None and os.environ.get("PGCUTOVER_DIRECT"):
            return True
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Wait for the process to exit; returns its status or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL.  Returns a list of problems (empty when clean)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            grace = 5.0 + _duration_s(self.settings.get("shutdown_timeout", "3s"))
            if self.wait_exit(grace * SLOW) is None:
                self.proc.kill()
                # a process with tens of thousands of sockets takes a while to go
                self.proc.wait(timeout=60)
                self.killed = True
                problems.append(f"{self.name}: did not exit within {grace * SLOW:.0f}s "
                                f"of SIGTERM and was killed")
        self.returncode = self.proc.returncode
        if not self.killed and self.returncode != 0 and not self.expect_exit:
            problems.append(f"{self.name}: exited with status {self.returncode}")
        self._stderr.close()
        if self in LIVE:
            LIVE.remove(self)
        STOPPED_RECENTLY.append(self)
        assert self.proc.poll() is not None
        san = [ln for ln in self.log().splitlines() if SANITIZER_PATTERNS.search(ln)]
        if san:
            problems.append(f"{self.name}: sanitizer report:\n" + "\n".join(san[:20]))
        illegal = [ln for ln in self.log().splitlines() if ILLEGAL_TRANSITION.search(ln)]
        if illegal:
            problems.append(f"{self.name}: illegal state transition:\n" + "\n".join(illegal[:20]))
        if problems:
            tail = "\n".join(self.log().splitlines()[-60:])
            problems.append(f"--- last lines of {self.name}'s log ({self.stderr_path}) ---\n{tail}")
        return problems

    def cleanup(self):
        if not os.environ.get("PGCUTOVER_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    # -- logs ------------------------------------------------------------

    def log(self):
        """Everything the proxy logged so far (stderr, plus log_file if set)."""
        if self.proc is None and os.environ.get("PGCUTOVER_DIRECT"):
            return self.env.source.log_tail(100000)
        out = ""
        for p in (self.stderr_path, self.log_file):
            if p and os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read()
        return out

    def log_mark(self):
        return len(self.log())

    def log_since(self, mark):
        return self.log()[mark:]

    def wait_log(self, pattern, since=0, timeout=5.0):
        """Wait until a log line written after `since` matches the regex;
        returns the match or None."""
        rx = re.compile(pattern, re.I)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            for line in self.log_since(since).splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    # -- clients ---------------------------------------------------------

    def conninfo(self, user="alice", password=None, dbname="app", host=None, **kw):
        if password is None:
            password = PASSWORDS.get(user, "")
        parts = {"host": host or self.listen_host(), "port": self.port, "dbname": dbname,
                 "user": user, "password": password, "connect_timeout": 10}
        parts.update(kw)
        return " ".join(f"{k}='{v}'" for k, v in parts.items() if v is not None)

    def connect(self, user="alice", password=None, dbname="app", autocommit=True, **kw):
        return psycopg.connect(self.conninfo(user, password, dbname, **kw),
                               autocommit=autocommit)

    def psql(self, sql=None, user="alice", password=None, dbname="app", args=(),
             env=None, host=None, timeout=60, input=None):
        """Run psql against the proxy; returns the CompletedProcess."""
        e = dict(os.environ)
        e["PGPASSWORD"] = PASSWORDS.get(user, "") if password is None else password
        e["PGCONNECT_TIMEOUT"] = "10"
        e.pop("PGSERVICE", None)
        if env:
            e.update(env)
        argv = [pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", host or self.listen_host(), "-p", str(self.port), "-U", user,
                "-d", dbname]
        if sql is not None:
            argv += ["-c", sql]
        argv += list(args)
        return subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, input=input)


def _duration_s(v):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h)?\s*", str(v))
    if not m:
        return 3.0
    n = int(m.group(1))
    unit = m.group(2) or "s"
    return {"ms": n / 1000, "s": n, "min": n * 60, "h": n * 3600}[unit]


class ProxyFactory:
    """Starts proxies for one fixture scope and stops them all at its end."""

    def __init__(self, env):
        self.env = env
        self.proxies = []

    def new(self, settings=None, databases=None, start=True, name="proxy"):
        p = Proxy(self.env, settings=settings, databases=databases, name=name)
        self.proxies.append(p)
        if os.environ.get("PGCUTOVER_DIRECT"):
            # Harness self-check: point "the proxy" at the source cluster
            # itself, to see which tests pass against PostgreSQL directly.
            p.port = self.env.source.port
            return p
        if start:
            p.start()
        return p

    def close_all(self):
        problems = []
        for p in self.proxies:
            try:
                problems += p.stop()
            except Exception as e:  # keep stopping the others
                problems.append(f"{p.name}: stop failed: {e!r}")
        for p in self.proxies:
            p.cleanup()
        self.proxies = []
        return problems


__all__ = ["Proxy", "ProxyFactory", "pgcutover_bin", "SLOW", "PG_BINDIR"]

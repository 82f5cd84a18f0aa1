"""Installing pgcutover (issue: operations): `make install` and `make
uninstall`, the systemd unit, the man pages, the Prometheus examples and the
Debian version.

- make install (PREFIX, DESTDIR) writes exactly the files it lists and
  make uninstall removes them; the binary runs, the example configuration
  it installs is valid as it is, with the state and log directories of the
  packaged service.
- The unit: `systemd-analyze verify` (which checks every directive, the
  executables and the Documentation= man pages) accepts it, installed with
  real paths; it is Type=notify, reloads with SIGHUP and is sandboxed.
  Running it under systemd is test_deb.py's business.
- The man pages are written from docs/reference.md (docs/man/mkman.py): they
  render without a groff or man warning, carry the version, and name every
  configuration key, every admin command of SHOW HELP, every signal and every
  metric the running pgcutover serves.
- dist/prometheus/: `promtool check config` and `promtool check rules`.
"""

import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from proxyutil import REPO, pgcutover_bin
from replication import admin

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def make(*args, timeout=300):
    """make in the repository, without the variables of a make that runs the suite
    (make test-asan's BUILD, CC, SAN...): installs hold the normal build."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-C", REPO, "--no-print-directory", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout[-4000:]}"
    return r.stdout


def tree(root):
    """Every file under root, as paths relative to it."""
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


EXPECTED_FILES = {
    "usr/bin/pgcutover",
    "usr/share/man/man1/pgcutover.1",
    "usr/share/man/man5/pgcutover.ini.5",
    "usr/lib/systemd/system/pgcutover.service",
    "etc/logrotate.d/pgcutover",
    "usr/share/doc/pgcutover/examples/pgcutover.ini",
    "usr/share/doc/pgcutover/examples/userlist.txt",
    "usr/share/doc/pgcutover/examples/prometheus.yml",
    "usr/share/doc/pgcutover/examples/pgcutover.rules.yml",
    "usr/share/doc/pgcutover/examples/pgcutover-dashboard.json",
}


@pytest.mark.timeout(300)
def test_make_install_and_uninstall(tmp_path):
    dest = str(tmp_path / "dest")
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")
    assert tree(dest) == EXPECTED_FILES
    st = os.stat(os.path.join(dest, "usr/bin/pgcutover"))
    assert st.st_mode & 0o777 == 0o755
    r = subprocess.run([os.path.join(dest, "usr/bin/pgcutover"), "--version"],
                       stdout=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("pgcutover "), r.stdout
    unit = open(os.path.join(dest, "usr/lib/systemd/system/pgcutover.service")).read()
    assert "ExecStart=/usr/bin/pgcutover /etc/pgcutover/pgcutover.ini\n" in unit, unit
    assert not re.search(r"@[A-Z]+@", unit), "a placeholder left in the unit"

    # the example is valid as it is, once beside its userlist, and names /var
    examples = os.path.join(dest, "usr/share/doc/pgcutover/examples")
    ini = open(os.path.join(examples, "pgcutover.ini")).read()
    assert re.search(r"(?m)^state_dir = /var/lib/pgcutover\s+;", ini), ini
    assert re.search(r"(?m)^log_file = /var/log/pgcutover/pgcutover.log\s+;", ini), ini
    r = subprocess.run([pgcutover_bin(), "--check", os.path.join(examples, "pgcutover.ini")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert r.returncode == 0, r.stdout

    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert tree(dest) == set()


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """make install into a prefix of its own (no DESTDIR: the paths are real)."""
    root = str(tmp_path_factory.mktemp("prefix"))
    os.chmod(root, 0o755)
    make("install", f"PREFIX={root}")
    yield root
    make("uninstall", f"PREFIX={root}")
    assert tree(root) == set()


def test_systemd_unit_verifies(prefix):
    unit = os.path.join(prefix, "lib/systemd/system/pgcutover.service")
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"), SYSTEMD_LOG_COLOR="0")
    # ExecStart names PREFIX/bin/pgcutover, which exists; Documentation= names the man pages
    r = subprocess.run(["systemd-analyze", "verify", unit], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", f"rc={r.returncode}\n{r.stderr}"
    text = open(unit).read()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=pgcutover",
                 "ProtectSystem=strict", "StateDirectory=pgcutover", "LogsDirectory=pgcutover",
                 "NoNewPrivileges=yes", f"ConditionPathExists={prefix}/etc/pgcutover/pgcutover.ini",
                 f"ExecStart={prefix}/bin/pgcutover {prefix}/etc/pgcutover/pgcutover.ini"):
        assert re.search(rf"(?m)^{re.escape(line)}$", text), f"{line} not in the unit"


def test_systemd_unit_verify_catches_a_broken_unit(prefix, tmp_path):
    """The check above would see a mistake: systemd-analyze complains on stderr."""
    text = open(os.path.join(prefix, "lib/systemd/system/pgcutover.service")).read()
    bad = tmp_path / "pgcutover.service"
    bad.write_text(text.replace("Type=notify", "Type=notified"))
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(bad)], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert "notified" in r.stderr, r.stderr


def reference_keys():
    with open(os.path.join(REPO, "docs", "reference.md")) as f:
        return re.findall(r"^\| `([a-z_]+)` \| `\[(?:pgcutover|database)\]`", f.read(), re.M)


def render(page, env_extra=None):
    """The man page as man(1) shows it, and what man and groff warn about."""
    env = dict(os.environ, LC_ALL="C", MANWIDTH="100")
    man = subprocess.run(["man", "--warnings", "-l", page], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=30)
    groff = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    text = re.sub(r".\x08", "", man.stdout)
    # man hyphenates and wraps: join words broken at the end of a line
    text = re.sub(r"-\n\s+", "", text)
    return text, (man.stderr + groff.stderr).strip()


def test_man_pages(prefix, proxy):
    version = subprocess.run([pgcutover_bin(), "--version"], stdout=subprocess.PIPE, text=True,
                             timeout=10).stdout.split()[1]
    ini, warnings = render(os.path.join(prefix, "share/man/man5/pgcutover.ini.5"))
    assert warnings == "", warnings
    one, warnings = render(os.path.join(prefix, "share/man/man1/pgcutover.1"))
    assert warnings == "", warnings
    for text in (ini, one):
        assert f"pgcutover {version}" in text, text[-300:]

    flat_ini = " ".join(ini.split())
    keys = reference_keys()
    assert len(keys) > 50, keys
    missing = [k for k in keys if not re.search(rf"(?m)^\s+{k} \(where: ", ini)]
    assert not missing, f"keys of docs/reference.md without their entry in pgcutover.ini(5): {missing}"
    config = {r["key"] for r in admin(proxy.admin_port, "SHOW CONFIG")}
    assert config <= set(keys), config - set(keys)
    assert "SEE ALSO" in ini and "pgcutover(1)" in flat_ini

    commands = [r["command"] for r in admin(proxy.admin_port, "SHOW HELP")]
    missing = [c for c in commands if not re.search(rf"(?m)^\s+{re.escape(c)}$", one)]
    assert not missing, f"commands of SHOW HELP without their entry in pgcutover(1): {missing}"
    for sig in ("SIGHUP", "SIGUSR2", "SIGTERM", "SIGINT"):
        assert re.search(rf"(?m)^\s+{sig}$", one), sig
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5) as r:
        served = re.findall(r"^# TYPE (\S+) ", r.read().decode(), re.M)
    missing = [m for m in served if not re.search(rf"(?m)^\s+{m} \(", one)]
    assert not missing, f"metrics served but not in pgcutover(1): {missing}"


def test_mkman_refuses_what_it_cannot_render(tmp_path):
    """A construct of the manual the generator does not know fails the build
    instead of rendering badly."""
    ref = tmp_path / "reference.md"
    ref.write_text("## 1. Command line\n\nText \u2603 with a snowman.\n")
    tpl = tmp_path / "page.1.scd.in"
    tpl.write_text('page(1)\n\n# NAME\n\n@include 1\n')
    r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "docs", "man", "mkman.py"),
                        str(ref), str(tpl)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    assert r.returncode == 1 and "no ASCII" in r.stderr, (r.returncode, r.stderr)


def test_prometheus_examples():
    d = os.path.join(REPO, "dist", "prometheus")
    for args in (["check", "config", os.path.join(d, "prometheus.yml")],
                 ["check", "rules", os.path.join(d, "pgcutover.rules.yml")]):
        r = subprocess.run([PROMTOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
        assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout


def test_debian_version_is_pgcutovers():
    with open(os.path.join(REPO, "proxy", "core", "version.h")) as f:
        version = re.search(r'PGCUTOVER_VERSION "([^"]+)"', f.read()).group(1)
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        first = f.readline()
    assert first.startswith(f"pgcutover ({version})"), first

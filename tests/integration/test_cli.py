"""The command line and logging (PRODUCT.md): --check, --version, --help,
log lines with a timestamp and a level, log_file."""

import os
import re
import subprocess


from proxyutil import Proxy, pgcutover_bin


def run(args, timeout=30):
    return subprocess.run([pgcutover_bin()] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def test_check_good_config(clusters, proxy_bin):
    p = Proxy(clusters, name="check-good")
    try:
        r = run(["--check", p.ini])
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        p.cleanup()


BAD = """\
[pgcutover]
listen_addr = 127.0.0.1
listen_port = 16432
admin_port = 16433
auth_type = scram-sha-256
auth_file = userlist.txt
lag_method = none
bogus_key = 1
client_login_timeout = 5 parsecs
default_pool_size = 20

[database "app"]
source = host=127.0.0.1 port=5432 dbname=app
target = host=127.0.0.1 port=5433 dbname=app
"""


MANY = """\
[pgcutover]
listen_addr = 127.0.0.1
listen_port = 16432
admin_port = 16433
auth_type = scram-sha-256
auth_file = no_such_userlist.txt
lag_method = none
bogus_key = 1
client_login_timeout = 5 parsecs
default_pool_size = 20

[database "app"]
source = host=127.0.0.1 port=5432 dbname=app
target = host=127.0.0.1 port=notaport dbname=app

[database "other"]
source = host=127.0.0.1 port=5432 dbname=other
target = host=127.0.0.1 port=5433 dbname=other nosuchoption=1
drain_timeout = forever
"""


def reported(out, what, lineno):
    rx = re.compile(rf"(:{lineno}:|line {lineno}\b)")
    return any(what in ln and rx.search(ln) for ln in out.splitlines())


def test_check_reports_every_error_with_its_line(tmp_path, proxy_bin):
    (tmp_path / "userlist.txt").write_text('"alice" "alice_pw"\n')
    ini = tmp_path / "bad.ini"
    ini.write_text(BAD)
    r = run(["--check", str(ini)])
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert reported(out, "bogus_key", 8), f"unknown key on line 8 not reported:\n{out}"
    assert reported(out, "client_login_timeout", 9), f"bad duration on line 9 not reported:\n{out}"


def test_check_reports_errors_of_every_kind(tmp_path, proxy_bin):
    """Errors of the file itself do not hide those of what it names: every
    one is printed, with the line of the key it comes from, in line order."""
    ini = tmp_path / "many.ini"
    ini.write_text(MANY)
    r = run(["--check", str(ini)])
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    expected = [
        ("no_such_userlist.txt", 6),    # auth_file that does not exist
        ("bogus_key", 8),               # unknown key
        ("client_login_timeout", 9),    # bad duration
        ("notaport", 14),               # bad conninfo: the target= line, not the header's
        ("nosuchoption", 18),           # bad conninfo of another database
        ("drain_timeout", 19),          # bad duration in a database section
    ]
    for what, line in expected:
        assert reported(out, what, line), f"{what} on line {line} not reported:\n{out}"
    # one line per error, in line order
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == len(expected), out
    assert [int(re.search(r"\.ini:(\d+):", ln).group(1)) for ln in lines] == \
        [line for _, line in expected], out


def test_check_reports_conninfo_and_auth_file_errors_alone(tmp_path, proxy_bin):
    """Without any other error, the connection string and auth_file errors
    are reported with their lines too."""
    text = MANY.replace("bogus_key = 1\n", "").replace("5 parsecs", "5s") \
               .replace("drain_timeout = forever\n", "")
    ini = tmp_path / "conninfo.ini"
    ini.write_text(text)
    r = run(["--check", str(ini)])
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert reported(out, "no_such_userlist.txt", 6), out
    assert reported(out, "notaport", 13), out
    assert reported(out, "nosuchoption", 17), out


def test_check_missing_file(tmp_path, proxy_bin):
    r = run(["--check", str(tmp_path / "nope.ini")])
    assert r.returncode == 1
    assert "nope.ini" in r.stdout + r.stderr


def test_bad_config_refuses_to_start(tmp_path, proxy_bin):
    (tmp_path / "userlist.txt").write_text('"alice" "alice_pw"\n')
    ini = tmp_path / "bad.ini"
    ini.write_text(BAD)
    r = run([str(ini)], timeout=30)
    assert r.returncode != 0
    assert "bogus_key" in r.stdout + r.stderr


def test_version_and_help(proxy_bin):
    r = run(["--version"])
    assert r.returncode == 0
    assert re.search(r"pgcutover\s+\S*\d", r.stdout + r.stderr), r.stdout + r.stderr
    r = run(["--help"])
    assert r.returncode == 0
    assert "--check" in r.stdout + r.stderr


LOG_LINE = re.compile(
    r"^(?=.{0,40}\d{2}:\d{2}:\d{2}).*\b(DEBUG\d?|NOISE|LOG|INFO|NOTICE|WARNING|WARN|ERROR|FATAL|PANIC)\b",
    re.I)


def test_log_file_lines_have_timestamp_and_level(proxy_factory):
    p = proxy_factory.new(settings={"log_file": "pgcutover.log"})
    with p.connect() as conn:
        conn.execute("select 1")
    path = os.path.join(p.dir, "pgcutover.log")
    assert os.path.exists(path), "log_file not created"
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    assert lines, "nothing logged to log_file"
    bad = [ln for ln in lines if not LOG_LINE.search(ln)]
    assert not bad, f"log lines without a timestamp and level: {bad[:5]}"


def test_stderr_log_lines(proxy):
    with proxy.connect() as conn:
        conn.execute("select 1")
    lines = [ln for ln in proxy.log().splitlines() if ln.strip()]
    assert lines
    bad = [ln for ln in lines if not LOG_LINE.search(ln)]
    assert not bad, f"log lines without a timestamp and level: {bad[:5]}"

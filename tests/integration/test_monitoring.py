"""Monitoring with the tools operators already run (issue: operations).

- Prometheus: `promtool check metrics` (Debian's prometheus package) accepts
  /metrics, scraped at rest and in the middle of a switch; every metric
  family docs/reference.md documents (section 7) is there, and nothing
  undocumented; names follow Prometheus' conventions.  A metric someone adds
  later is held to all of this by the same test, as soon as it is served.
- Grafana: every metric the dashboard in dist/grafana/ queries (panels,
  variables, annotations) is served by a live pgcutover.
- PgBouncer's exporter: Debian's prometheus-pgbouncer-exporter, pointed at
  the admin console, serves its pgbouncer_* metrics with pgcutover's numbers
  (it reads SHOW STATS, SHOW POOLS, SHOW DATABASES and SHOW LISTS).
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from pgutil import free_port
from proxyutil import REPO, SLOW
from replication import ADMIN_PASSWORD, ADMIN_USER, admin, admin_connect, admin_query

REFERENCE = os.path.join(REPO, "docs", "reference.md")
DASHBOARD = os.path.join(REPO, "dist", "grafana", "pgcutover-dashboard.json")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPORTER = "/usr/bin/prometheus-pgbouncer-exporter"


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


def families(text):
    """{name: type} of every family the page declares."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def documented_metrics():
    """The metric names of the table in the reference manual's section 7."""
    with open(REFERENCE) as f:
        text = f.read()
    section = text.split("\n## 7. Metrics", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `(pgcutover_\w+)` \| (gauge|counter) \|", section, re.M)
    assert names, "no metric table in section 7 of docs/reference.md"
    return dict(names)


def promtool_check(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"promtool check metrics: rc={r.returncode}\n{r.stdout}{r.stderr}\n--- page ---\n{text}"


@pytest.mark.timeout(90)
def test_promtool_accepts_metrics_and_every_family_is_documented(proxy_factory):
    p = proxy_factory.new(settings={"drain_timeout": "20s"})
    with p.connect() as c:
        for _ in range(3):
            c.execute("select 1")
    pages = {"at rest": scrape(p.metrics_port)}

    # in the middle of a switch: its drain waits for an open transaction
    conn = p.connect()
    conn.execute("BEGIN")
    conn.execute("select 1")
    result = {}
    t = threading.Thread(target=lambda: result.update(r=admin(p.admin_port, "SWITCH app")))
    t.start()
    deadline = time.monotonic() + 10 * SLOW
    while 'pgcutover_switch_phase{database="app",phase="drain"} 1' not in \
            (page := scrape(p.metrics_port)):
        assert time.monotonic() < deadline, f"no switch phase while draining:\n{page}"
        time.sleep(0.05)
    pages["during a switch"] = page
    assert 'pgcutover_switch_running{database="app"} 1' in page, page
    time.sleep(0.1)     # the drain surely lasts longer than a scrape
    conn.execute("ROLLBACK")
    t.join(30)
    conn.close()
    assert result["r"][0]["result"] == "ok", result
    pages["after a switch"] = after = scrape(p.metrics_port)
    assert 'pgcutover_switch_running{database="app"} 0' in after, after
    assert "pgcutover_switch_phase{" not in after, after
    phases = re.findall(r'^pgcutover_last_switch_phase_seconds\{database="app",phase="(\w+)"\} '
                        r'(\d+\.\d{3})$', after, re.M)
    assert {ph for ph, _ in phases} == {"paused", "drain", "lag_wait", "sequence_sync", "fence",
                                        "replication", "preparation", "verify"}, after
    # the drain waited for the transaction (at least the 0.1 s slept above)
    assert float(dict(phases)["drain"]) >= 0.1, phases

    documented = documented_metrics()
    for what, text in pages.items():
        promtool_check(text)
        served = families(text)
        assert served == documented, (
            f"{what}: /metrics and docs/reference.md section 7 disagree: served and not "
            f"documented {sorted(set(served.items()) - set(documented.items()))}, documented "
            f"and not served {sorted(set(documented.items()) - set(served.items()))}")
    for name, kind in documented.items():
        assert re.fullmatch(r"pgcutover_[a-z][a-z0-9_]*", name), name
        # counters end in _total and only they do; units are base units
        assert name.endswith("_total") == (kind == "counter"), (name, kind)
        assert not re.search(r"_(milliseconds|ms|microseconds|us|kilobytes|kb|mb)(_|$)", name), name


# -- Grafana -------------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # strings
    e = re.sub(r"\{[^}]*\}", "", e)                           # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                          # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)                         # dashboard variables
    e = re.sub(r"\b\d+(ms|s|m|h|d|w|y)\b", "", e)             # durations (offset 5m)
    e = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", "", e)         # numbers
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue   # a function or a keyword
        names.add(m.group(0))
    return names


def dashboard_queries(dash):
    """Every PromQL expression of the dashboard: panel targets (rows included),
    query variables (label_values(metric, label): the metric) and annotations."""
    exprs = []

    def walk(panels):
        for panel in panels:
            for t in panel.get("targets", []):
                if t.get("expr"):
                    exprs.append((panel.get("title"), t["expr"]))
            walk(panel.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
            exprs.append((f"variable {v['name']}", m.group(1) if m else q))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            exprs.append((f"annotation {a.get('name')}", a["expr"]))
    return exprs


def test_promql_name_extraction():
    assert metric_names('sum by (database, state) (rate(pgcutover_x_total{a="b", c=~"$d"}[5m]))'
                        ) == {"pgcutover_x_total"}
    assert metric_names("-sum(a) / on (instance) b > 64 * 1024 and c offset 5m") == {"a", "b", "c"}


def test_every_metric_of_the_grafana_dashboard_is_served(proxy):
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash.get("uid") and dash.get("title"), "the dashboard needs a uid and a title"
    ids = []

    def walk(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            walk(panel.get("panels", []))

    walk(dash["panels"])
    assert len(ids) == len(set(ids)) and None not in ids, f"panel ids must be unique: {ids}"

    served = families(scrape(proxy.metrics_port))
    queries = dashboard_queries(dash)
    assert len(queries) >= 10, queries
    problems = []
    for where, expr in queries:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: reads no metric: {expr}")
        for name in sorted(names):
            if name not in served:
                problems.append(f"{where}: {name} is not served by pgcutover ({expr})")
    assert not problems, "\n".join(problems)


# -- PgBouncer's exporter -------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_prometheus_pgbouncer_exporter(proxy_factory):
    """Debian's prometheus-pgbouncer-exporter reads pgcutover's admin console
    as it reads PgBouncer's: its scrape succeeds and carries pgcutover's numbers."""
    assert os.access(EXPORTER, os.X_OK), f"{EXPORTER} missing: .ci/deps.sh installs it"
    p = proxy_factory.new()
    conn = p.connect()
    for _ in range(5):
        conn.execute("select 1")
    port = free_port()
    env = dict(os.environ, PGPASSWORD=ADMIN_PASSWORD, PGCONNECT_TIMEOUT="10")
    env.pop("CONFIG", None)
    log = open(os.path.join(p.dir, "exporter.log"), "wb")
    exp = subprocess.Popen([EXPORTER, "--host", "127.0.0.1", "--port", str(port),
                            "--pgbouncer-host", "127.0.0.1", "--pgbouncer-port", str(p.admin_port),
                            "--pgbouncer-user", ADMIN_USER], env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20 * SLOW
        while True:
            assert exp.poll() is None, "the exporter exited:\n" + open(log.name).read()
            try:
                text = scrape(port)
                break
            except OSError:
                assert time.monotonic() < deadline, "no exporter:\n" + open(log.name).read()
                time.sleep(0.2)
        # a failed collection would be a 500, not a page: every family it knows is here
        samples = dict(re.findall(r"^(pgbouncer_\S+) (\S+)$", text, re.M))
        with admin_connect(p.admin_port) as a:
            stats = {r["database"]: r for r in admin_query(a, "SHOW STATS")}
            lists = {r["list"]: r["items"] for r in admin_query(a, "SHOW LISTS")}
        # SHOW LISTS: one gauge per row
        for name in ("databases", "users", "pools", "free_clients", "used_clients",
                     "login_clients", "free_servers", "used_servers", "dns_names", "dns_zones",
                     "dns_queries", "dns_pending"):
            assert f"pgbouncer_{name}" in samples, f"pgbouncer_{name} missing:\n{text}"
        assert float(samples["pgbouncer_databases"]) == 1.0 == float(lists["databases"])
        assert float(samples["pgbouncer_pools"]) >= 1.0
        assert float(samples["pgbouncer_used_servers"]) >= 1.0
        # SHOW STATS per database: the counters as SHOW STATS has them (or later)
        requests = float(samples['pgbouncer_requests_total{database="app"}'])
        assert requests >= 5 and requests <= float(stats["app"]["total_query_count"]) + 5
        assert float(samples['pgbouncer_received_bytes_total{database="app"}']) > 0
        assert float(samples['pgbouncer_sent_bytes_total{database="app"}']) > 0
        assert 'pgbouncer_query_microseconds_total{database="app"}' in samples
        # SHOW POOLS per pool, SHOW DATABASES per database (its backend name)
        assert float(samples['pgbouncer_active_clients{database="app",user="alice"}']) == 1.0
        assert float(samples['pgbouncer_waiting_clients{database="app",user="alice"}']) == 0.0
        assert float(samples['pgbouncer_pool_size{database="app"}']) == 20.0
        assert float(samples['pgbouncer_reserve_pool{database="app"}']) == 0.0
    finally:
        conn.close()
        exp.terminate()
        try:
            exp.wait(10)
        except subprocess.TimeoutExpired:
            exp.kill()
            exp.wait(10)
        log.close()

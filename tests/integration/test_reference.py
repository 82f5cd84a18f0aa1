"""docs/reference.md against a running pgcutover, so that the manual cannot
drift from the admin console (the page's header promises this):

- every command SHOW HELP lists has a heading of its own in the page's admin
  console section ("#### `SHOW LAG [db]`"), and every such heading is a
  command SHOW HELP lists;
- every SHOW command SHOW HELP lists is run (with the proxy's database for a
  `db` argument, and also without an optional one), and the columns it
  returns are exactly those of the `column` table under its heading, in order;
- `SWITCH db DRY RUN` answers with the columns the page gives for
  SHOW SWITCHES, as its section says.

The keys of the configuration are held to the page by a unit test
(tests/unit/test_reference.c), which needs no server.
"""

import os
import re

import pytest

from proxyutil import REPO
from replication import admin_connect, admin_query

REFERENCE = os.path.join(REPO, "docs", "reference.md")

# The database of the default proxy (proxyutil.Proxy): source and target
# both exist, with lag_method = none, so SHOW LAG and SHOW SEQUENCES answer.
DB = "app"

# Commands that are not SHOW but answer with rows: the command run for it,
# and the SHOW command whose documented columns it returns.
ROWS_LIKE = {
    "SWITCH db [TO target|source] [DRY RUN] [FORCE]": (f"SWITCH {DB} DRY RUN", "SHOW SWITCHES"),
}

HEADING = re.compile(r"^#{2,6} `([^`]+)`\s*$")


def reference_commands():
    """{command: (line, [documented column, ...])} for every command heading
    of the admin console section ("## ... Admin console" up to the next "## ")."""
    with open(REFERENCE) as f:
        lines = f.read().split("\n")
    commands = {}
    in_admin = False
    current = None
    table = None   # None: not in a table; "column": in a column table; "other"
    for n, line in enumerate(lines, 1):
        if line.startswith("## "):
            in_admin = "Admin console" in line
            current = None
            continue
        if not in_admin:
            continue
        m = HEADING.match(line)
        if line.startswith("#"):
            current = None
            table = None
            if m:
                assert m.group(1) not in commands, \
                    f"{REFERENCE}:{n}: a second heading for {m.group(1)}"
                current = m.group(1)
                commands[current] = (n, [])
            continue
        if not line.startswith("|"):
            table = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if table is None:
            table = "column" if cells and cells[0] == "column" else "other"
            continue
        if table != "column" or current is None or set(line) <= set("|-: "):
            continue
        name = re.fullmatch(r"`([^`]+)`", cells[0])
        assert name, f"{REFERENCE}:{n}: a column row names one column, as `name`: {cells[0]}"
        commands[current][1].append(name.group(1))
    return commands


def runnable(command, with_optional=True):
    """The query that runs a SHOW command of SHOW HELP: `db` is the proxy's
    database; an optional [db] is given, or left out."""
    q = re.sub(r"\[db\]", DB if with_optional else "", command)
    q = re.sub(r"\bdb\b", DB, q)
    return " ".join(q.split())


@pytest.fixture(scope="module")
def documented():
    return reference_commands()


@pytest.fixture(scope="module")
def help_commands(proxy):
    with admin_connect(proxy.admin_port) as a:
        rows = admin_query(a, "SHOW HELP")
    commands = [r["command"] for r in rows]
    assert commands, "SHOW HELP lists nothing"
    return commands


def test_every_command_of_show_help_is_documented(help_commands, documented):
    missing = [c for c in help_commands if c not in documented]
    assert not missing, (f"{REFERENCE} has no heading for these commands of SHOW HELP "
                         f"(add a '#### `COMMAND`' section under Admin console): {missing}")
    unknown = {c: line for c, (line, _) in documented.items() if c not in help_commands}
    assert not unknown, (f"{REFERENCE} documents commands SHOW HELP does not list "
                         f"(command: line): {unknown}")


def test_every_show_command_returns_the_documented_columns(proxy, help_commands, documented):
    # SHOW FLEET answers only in a fleet: test_fleet.py holds its columns to the page
    shows = [c for c in help_commands if c.startswith("SHOW ") and c != "SHOW FLEET"]
    assert "SHOW HELP" in shows and "SHOW SEQUENCES db" in shows, shows
    problems = []
    with admin_connect(proxy.admin_port) as a:
        for command in shows:
            if command not in documented:
                problems.append(f"{command}: no heading for it in {REFERENCE}")
                continue
            line, cols = documented[command]
            queries = {runnable(command, True), runnable(command, False)}
            for q in sorted(queries):
                got = list(admin_query(a, q).columns)
                if got != cols:
                    problems.append(f"{q}: returns {got}, but {REFERENCE}:{line} documents "
                                    f"{cols}")
    assert not problems, "\n".join(problems)


def test_switch_returns_the_documented_columns(proxy, help_commands, documented):
    for command, (query, like) in ROWS_LIKE.items():
        assert command in help_commands, f"SHOW HELP no longer lists {command}"
        cols = documented[like][1]
        with admin_connect(proxy.admin_port) as a:
            rows = admin_query(a, query)
        assert list(rows.columns) == cols, (
            f"{query}: returns {list(rows.columns)}, but {REFERENCE} documents {cols} "
            f"for {like}, whose columns it answers with")
        assert len(rows) == 1 and rows[0]["result"].startswith("dry run: ok"), rows

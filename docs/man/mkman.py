#!/usr/bin/python3
"""mkman.py - the man pages, written from the reference manual.

    mkman.py docs/reference.md docs/man/pgcutover.1.scd.in > pgcutover.1.scd
    scdoc < pgcutover.1.scd > pgcutover.1

The man pages pgcutover(1) and pgcutover.ini(5) have one source, the
reference manual (docs/reference.md), so that they cannot say anything else.
A template (docs/man/*.scd.in) holds what a man page has and the manual does
not (NAME, SYNOPSIS, a short DESCRIPTION, FILES, SEE ALSO) and pulls in
sections of the manual with a line

    @include N [LEVEL]

which is replaced by section N ("## N." or "### N.M" in the manual), without
its own heading, converted to scdoc.  The headings inside it become scdoc
headings: those one level below section N become level LEVEL (1: "# NAME",
upper-cased as man pages write them; 2: "## Name"), and deeper headings
(the admin commands' "#### `SHOW LAG [db]`") become a tagged paragraph:
the command in bold and what follows indented under it.  "@version@" is
replaced by the version of proxy/core/version.h.

The Markdown this understands is the subset the manual uses: headings,
paragraphs, "- " and "1. " lists with indented continuation lines, code
blocks indented by four blanks, pipe tables, `code`, **bold** and
[links](...).  Tables become lists of definitions, the usual form of a man
page: the first cell in bold, the other cells but the last in parentheses
after it with their column names, and the last cell indented beneath.

Anything else (a line this cannot place) is an error, so that a change to
the manual that the man pages would render badly fails the build.
"""

import os
import re
import sys

HEADING = re.compile(r"^(#{2,6}) (.*)$")
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(.*)$")

# Which man page holds each top-level section of the manual (the rest: pgcutover(1)).
PAGE_OF_SECTION = {"4": "pgcutover.ini(5)"}

# Characters man(1) may not render in every locale, as ASCII.
ASCII = {"\u2026": "...", "\u2014": "--", "\u2013": "-", "\u2019": "'", "\u201c": '"',
         "\u201d": '"', "\u2192": "->"}

# Filled in by render(): {number: title} of the manual's sections, and this page's name.
TITLES = {}
PAGE = {"name": "pgcutover(1)"}


class ManError(Exception):
    pass


def version(repo):
    with open(os.path.join(repo, "proxy", "core", "version.h")) as f:
        m = re.search(r'#define PGCUTOVER_VERSION "([^"]+)"', f.read())
    if not m:
        raise ManError("no PGCUTOVER_VERSION in proxy/core/version.h")
    return m.group(1)


# -- inline text ----------------------------------------------------------------

def escape(text):
    """Plain text for scdoc: its formatting characters taken literally, in ASCII."""
    for u, a in ASCII.items():
        text = text.replace(u, a)
    if re.search(r"[^\x00-\x7f]", text):
        raise ManError(f"a character the generator has no ASCII for: {text!r}")
    return re.sub(r"([\\*_`])", r"\\\1", text)


def section_ref(m):
    """"section 5.1" of the manual as the man pages name it: by its title (and page)."""
    num = m.group(1)
    if num not in TITLES:
        raise ManError(f"a reference to section {num}, which the manual does not have")
    page = PAGE_OF_SECTION.get(num.split(".")[0], "pgcutover(1)")
    where = "" if page == PAGE["name"] else f" of {page}"
    return f'section "{TITLES[num]}"{where}'


def plain(text):
    """Text outside any markup: escaped, with the manual's section numbers named."""
    return re.sub(r"section (\d+(?:\.\d+)?)\b", section_ref, escape(text))


def inline(text):
    """Markdown inline markup to scdoc: `code` and **bold** in bold, *emphasis*
    underlined, links as their text."""
    out = []
    pos = 0
    # a code span may be written ``...`` to hold a backquote
    token = re.compile(r"``(.+?)``|`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\([^)]*\)|"
                       r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")
    for m in token.finditer(text):
        out.append(plain(text[pos:m.start()]))
        if m.group(1) is not None or m.group(2) is not None:
            code = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
            out.append("*" + escape(code) + "*")
        elif m.group(3) is not None:
            out.append("*" + inline_plain(m.group(3)) + "*")
        elif m.group(4) is not None:
            out.append(inline(m.group(4)))
        else:
            out.append("_" + inline_plain(m.group(5)) + "_")
        pos = m.end()
    out.append(plain(text[pos:]))
    result = "".join(out)
    # a line that starts with a roff control character is shown, not obeyed
    if result.startswith((".", "'")):
        result = "\\&" + result
    return result


def inline_plain(text):
    """Inside bold: code spans lose their backquotes, nothing else is marked."""
    return escape(re.sub(r"`([^`]+)`", r"\1", text))


# -- the manual's sections ----------------------------------------------------------

def sections(lines):
    """{number: (level, first line index, end index)} of every numbered heading."""
    found = []
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if not m:
            continue
        n = NUMBERED.match(m.group(2))
        if n and len(m.group(1)) <= 3:
            found.append((n.group(1), len(m.group(1)), i))
    out = {}
    for k, (num, level, start) in enumerate(found):
        end = len(lines)
        for num2, level2, start2 in found[k + 1:]:
            if level2 <= level:
                end = start2
                break
        out[num] = (level, start, end)
    return out


def cells(line):
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def is_separator(line):
    return set(line.strip()) <= set("|-: ") and "-" in line


def table(rows, indent):
    """A pipe table as definitions: first cell bold, middle cells named, last indented."""
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        if len(row) != len(header):
            raise ManError(f"table row with {len(row)} cells under a header of {len(header)}: {row}")
        tag = "*" + inline_plain(row[0]) + "*" if row[0] else ""
        if len(row) > 2:
            extra = "; ".join(f"{escape(header[i])}: {inline(row[i])}"
                              for i in range(1, len(row) - 1) if row[i])
            tag += f" ({extra})"
        out.append(indent + tag)
        out.append(indent + "\t" + inline(row[-1]))
        out.append("")
    return out


def convert(lines, base_level, level):
    """Markdown lines (one section's body) to scdoc lines."""
    out = []
    indent = ""  # "\t" under a command's tag
    para = []
    i = 0

    def flush():
        if para:
            out.append(indent + inline(" ".join(para)))
            out.append("")
            para.clear()

    while i < len(lines):
        line = lines[i]
        m = HEADING.match(line)
        if m:
            flush()
            depth = len(m.group(1))
            title = m.group(2)
            n = NUMBERED.match(title)
            if n and depth <= 3:
                title = n.group(2)
            scd_level = level + (depth - base_level - 1)
            indent = ""
            if scd_level <= 2:
                title = inline_plain(title)
                out.append(("#" * scd_level) + " " + (title.upper() if scd_level == 1 else title))
                out.append("")
            else:
                # a command: the tag in bold, what follows indented under it
                out.append("*" + inline_plain(title) + "*")
                indent = "\t"
            i += 1
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        if line.startswith("    "):
            flush()
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out.append(indent + "```")
            out.extend(indent + b.replace("\\", "\\\\") for b in block)
            out.append(indent + "```")
            out.append("")
            continue
        if line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not is_separator(lines[i]):
                    rows.append(cells(lines[i]))
                i += 1
            out.extend(table(rows, indent))
            continue
        item = re.match(r"^(- |\d+\. )(.*)$", line)
        if item:
            flush()
            marker = "-" if item.group(1) == "- " else "."
            text = [item.group(2)]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and not lines[i].startswith("    "):
                text.append(lines[i].strip())
                i += 1
            # a wrapped item stays one item: continuation lines indented by two
            out.append(indent + marker + " " + inline(" ".join(text)))
            continue
        if line.startswith("  "):
            raise ManError(f"an indented line outside a list: {line!r}")
        para.append(line.strip())
        i += 1
    flush()
    return out


def render(reference, template, repo):
    with open(reference) as f:
        ref = f.read().split("\n")
    secs = sections(ref)
    ver = version(repo)
    for num, (_, start, _) in secs.items():
        TITLES[num] = NUMBERED.match(HEADING.match(ref[start]).group(2)).group(2)
    m = re.match(r"^(\S+\(\d\))", open(template).readline())
    PAGE["name"] = m.group(1) if m else "pgcutover(1)"
    out = []
    with open(template) as f:
        for line in f.read().split("\n"):
            m = re.match(r"^@include (\S+)(?: (\d))?$", line)
            if not m:
                out.append(line.replace("@version@", ver))
                continue
            num, level = m.group(1), int(m.group(2) or 1)
            if num not in secs:
                raise ManError(f"{template}: no section {num} in {reference}")
            base, start, end = secs[num]
            out.extend(convert(ref[start + 1:end], base, level))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: mkman.py REFERENCE.md TEMPLATE.scd.in > PAGE.scd", file=sys.stderr)
        return 2
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        sys.stdout.write(render(argv[1], argv[2], repo))
    except ManError as e:
        print(f"mkman.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Prints the sizes a newcomer meets first: lines per source file and lines
per C function, longest first, with the counts over the house limits.

    scripts/sizes.py                       executors/ workloads/ server/ harness/ tests/
    scripts/sizes.py executors             one folder (or files)
    scripts/sizes.py --over 40 --top 20    the functions over 40 lines, 20 at most
    scripts/sizes.py --check 80 executors  exit 1 if a function passes 80 lines

A function runs from the first line of its signature to its closing brace.
Found by a small scanner (comments, strings and character constants are
skipped; a function is a top-level brace block whose declaration has a
parameter list and no '='), not by a compiler: good for the house style,
where every function body opens on a line of its own.
"""
import argparse
import os
import re
import signal
import sys

SOURCE_ENDINGS = (".c", ".h")
DEFAULT_PATHS = ("executors", "workloads", "server", "harness", "tests")
IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*\(")


def strip_code(text):
    """The text with comments, strings and char constants blanked (newlines
    kept, so that offsets map to the same lines)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i:i + 2]
        if two == "/*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif two == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank_preprocessor(code):
    """Preprocessor lines (and their continuations) blanked."""
    lines = code.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            lines[k] = ""
    return "\n".join(lines)


def functions(path):
    """(name, first line, last line) of every function defined in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        code = blank_preprocessor(strip_code(f.read()))
    found = []
    depth = 0
    decl_start = 0          # offset where the current top-level text began
    body = None             # (name, start offset) of the function being read
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                decl = code[decl_start:i]
                m = IDENT_BEFORE_PAREN.search(decl)
                if m and "=" not in decl.split("(")[0] and decl.rstrip().endswith(")"):
                    lead = len(decl) - len(decl.lstrip())
                    body = (m.group(1), decl_start + lead)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if body:
                    first = code.count("\n", 0, body[1]) + 1
                    last = code.count("\n", 0, i) + 1
                    found.append((body[0], first, last))
                    body = None
                decl_start = i + 1
        elif c == ";" and depth == 0:
            decl_start = i + 1
    return found


def source_files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d != "build")
            for name in sorted(files):
                if name.endswith(SOURCE_ENDINGS):
                    yield os.path.join(root, name)


def line_count(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f)


def main():
    # Quietly stop when the output is cut short (| head).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="folders or files (default: %s)"
                    % " ".join(DEFAULT_PATHS))
    ap.add_argument("--over", type=int, default=40,
                    help="list the functions longer than this (default 40)")
    ap.add_argument("--top", type=int, default=0,
                    help="list at most this many files and functions (0: all)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="exit 1 if a function outside tests/ passes N lines")
    args = ap.parse_args()
    paths = args.paths or [p for p in DEFAULT_PATHS if os.path.exists(p)]
    files = list(source_files(paths))
    if not files:
        ap.error("no .c or .h file under " + " ".join(paths))

    sizes = sorted(((line_count(f), f) for f in files), reverse=True)
    fns = []
    for f in files:
        fns += [(last - first + 1, f, name, first) for name, first, last in functions(f)]
    fns.sort(key=lambda t: (-t[0], t[1], t[3]))

    top = args.top or None
    print("files, lines (%d files, %d lines)" % (len(sizes), sum(n for n, _ in sizes)))
    for n, f in sizes[:top]:
        print("%6d  %s" % (n, f))
    over = [t for t in fns if t[0] > args.over]
    print("\nfunctions over %d lines (%d of %d)" % (args.over, len(over), len(fns)))
    for n, f, name, first in over[:top]:
        print("%6d  %s:%d  %s" % (n, f, first, name))
    counts = ", ".join("%d over %d" % (sum(1 for t in fns if t[0] > k), k)
                       for k in (40, 48, 80, 100))
    longest = "%s (%d, %s)" % (fns[0][2], fns[0][0], fns[0][1]) if fns else "-"
    print("\n%d functions: %s; longest %s" % (len(fns), counts, longest))

    if args.check:
        bad = [t for t in fns if t[0] > args.check
               and not t[1].startswith("tests" + os.sep)
               and (os.sep + "tests" + os.sep) not in t[1]]
        for n, f, name, first in bad:
            print("%s:%d: %s is %d lines (limit %d)" % (f, first, name, n, args.check),
                  file=sys.stderr)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

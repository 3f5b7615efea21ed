#!/usr/bin/env python3
"""The source rules a compiler does not check, after curl's checksrc: run by ctest (lint_checksrc)
and by hand (`scripts/checksrc.py`, from anywhere). Exits 1 listing every breach as FILE:LINE: why.

1. Banned calls in product code: strcpy, strcat, strncpy, sprintf, vsprintf, strtok, gets, atoi,
   atol (unbounded, or silent on bad input: use snprintf, memcpy with a length, strtoul...).
2. No product .c file over 700 lines.
3. Third-party headers stay in their one place: sqlite3.h in db/, microhttpd.h in api/http.c,
   curl.h in client/.
4. Layers: a directory includes headers only from its own directory and those below it
   (LAYERS); the programs (every main.c, cli/, bench/) may include any. So no directory
   includes one that includes it back.
Product code is every .c and .h under PRODUCT_DIRS; tests/ and examples/ are not."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT_DIRS = ["api", "server", "db", "common", "kernels", "client", "worker", "cli", "bench",
                "include"]
PROGRAM_DIRS = {"cli", "bench"}
# What each directory may include besides itself (the arrows point down).
LAYERS = {
    "include": set(),
    "common": {"include"},
    "kernels": {"common", "include"},
    "db": {"kernels", "common", "include"},
    "client": {"common", "include"},
    "server": {"db", "kernels", "common", "include"},
    "api": {"server", "db", "kernels", "common", "include"},
    "worker": {"client", "kernels", "common", "include"},
}
HEADER_HOME = {"sqlite3.h": ("db/",), "microhttpd.h": ("api/http.c",), "curl/curl.h": ("client/",)}
BANNED = ["strcpy", "strcat", "strncpy", "sprintf", "vsprintf", "strtok", "gets", "atoi", "atol"]
BANNED_RE = re.compile(r"(?<![\w.>])(" + "|".join(BANNED) + r")\s*\(")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
MAX_LINES = 700


def strip_comments_and_strings(text):
    """Blanks comments and string/char literals, keeping line breaks, so that a word in a comment
    is not a call."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def product_files():
    for d in PRODUCT_DIRS:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(base, f), ROOT)


def header_dirs():
    """Maps a header's name to the top-level product directories that hold one by that name."""
    homes = {}
    for rel in product_files():
        if rel.endswith(".h"):
            top = rel.split("/")[0]
            name = rel[len("include/"):] if top == "include" else os.path.basename(rel)
            homes.setdefault(name, set()).add(top)
    return homes


def main():
    problems = []
    homes = header_dirs()
    for rel in product_files():
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        top = rel.split("/")[0]
        program = top in PROGRAM_DIRS or os.path.basename(rel) == "main.c"
        lines = text.count("\n")
        if rel.endswith(".c") and lines > MAX_LINES:
            problems.append(f"{rel}:{lines}: {lines} lines, over {MAX_LINES}: split it")
        code = strip_comments_and_strings(text)
        for no, line in enumerate(code.split("\n"), 1):
            m = BANNED_RE.search(line)
            if m:
                problems.append(f"{rel}:{no}: {m.group(1)}() is banned (see scripts/checksrc.py)")
        for no, line in enumerate(text.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            name = m.group(2)
            home = HEADER_HOME.get(name)
            if home and not rel.startswith(home):
                problems.append(f"{rel}:{no}: {name} belongs in {' or '.join(home)} only")
            if program or m.group(1) == "<" or top not in LAYERS:
                continue
            for d in sorted(homes.get(name, ())):
                if d != top and d not in LAYERS[top]:
                    problems.append(f"{rel}:{no}: {top}/ includes {d}/{name}: {top}/ may "
                                    f"include only {', '.join(sorted(LAYERS[top])) or 'itself'}")
    for p in problems:
        print(p)
    if problems:
        print(f"checksrc: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("checksrc: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""DRIVER.md carries the suite's capability map between two markers; this
checks that it is what `memlink-conformance --capability-map` prints now.

    check_capability_map.py MEMLINK_CONFORMANCE DRIVER_MD [--write]

Exit 0 if they match (or --write rewrote the file), 1 with a diff if not.
"""
import difflib
import subprocess
import sys

BEGIN, END = "<!-- capability-map:begin -->", "<!-- capability-map:end -->"


def main():
    args = [a for a in sys.argv[1:] if a != "--write"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary, path = args
    generated = subprocess.run([binary, "--capability-map"], check=True, stdout=subprocess.PIPE, text=True).stdout
    text = open(path, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        print(f"{path}: the markers {BEGIN} and {END} are missing")
        return 1
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    want = "\n" + generated
    if current == want:
        print(f"{path}: the capability map matches the suite")
        return 0
    if "--write" in sys.argv:
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + BEGIN + want + END + tail)
        print(f"{path}: capability map rewritten")
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), want.splitlines(True), "DRIVER.md", "suite"))
    print(f"\n{path}'s capability map differs from the suite's; rewrite it with:\n"
          f"  python3 cmake/check_capability_map.py {binary} {path} --write")
    return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs memlink-conformance with a driver fault and checks its JSON report.

    expect_report.py [--fault F] [--every-failure CLAUSE] [--checks-failing A,B]
                     [--not-pass C1,C2] [--all-pass-but C1,C2] -- COMMAND...

--fault F            sets MEMLINK_DRIVER_FAULT=F for the run
--every-failure C    every failed check names clause C
--checks-failing L   each of these checks failed
--not-pass L         none of these clauses is PASS
--all-pass-but L     every clause is PASS but these (and nothing failed)
Exit 0 if every expectation holds, 1 (saying which did not) otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def split(s):
    return [x for x in (s or "").split(",") if x]


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    cut = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("--fault", default="")
    p.add_argument("--every-failure", default="")
    p.add_argument("--checks-failing", default="")
    p.add_argument("--not-pass", default="")
    p.add_argument("--all-pass-but", default=None)
    args = p.parse_args(argv[:cut])
    command = argv[cut + 1:]
    env = dict(os.environ)
    if args.fault:
        env["MEMLINK_DRIVER_FAULT"] = args.fault
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "report.json")
        run = subprocess.run(command + ["--json", report], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace")
        sys.stdout.write(run.stdout[-6000:])
        if not os.path.exists(report):
            print(f"expect_report: no report (exit {run.returncode})")
            return 1
        with open(report) as f:
            j = json.load(f)
    status = {c["id"]: c["status"] for c in j["clauses"]}
    failed = {c["name"]: c["failure"]["clause"] for c in j["checks"] if not c["passed"]}
    wrong = []
    if args.every_failure:
        wrong += [f"check {n} failed naming {c}, not {args.every_failure}" for n, c in failed.items()
                  if c != args.every_failure]
    wrong += [f"check {n} did not fail" for n in split(args.checks_failing) if n not in failed]
    wrong += [f"clause {c} is PASS" for c in split(args.not_pass) if status.get(c) == "PASS"]
    if args.all_pass_but is not None:
        but = set(split(args.all_pass_but))
        wrong += [f"clause {c} is {s}" for c, s in status.items() if c not in but and s != "PASS"]
        wrong += [f"check {n} failed naming {c}" for n, c in failed.items()]
    for w in wrong:
        print("expect_report: " + w)
    if not wrong:
        print(f"expect_report: as expected ({len(failed)} checks failed: {', '.join(sorted(failed)) or 'none'})")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

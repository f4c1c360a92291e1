#!/usr/bin/env python3
"""The reference checked in process and through its driver must get the same
verdicts: the same checks (but those that run only on the reference
library's own code), the same status for every clause (but T-LOAN, which
only the in-process run can see), and, with a fault, the same failures.

    compare_reports.py MEMLINK_CONFORMANCE MEMLINK_SHM_DRIVER [--fault F ...] [--fault-only CHECKS]

Runs `--adapter reference` and `--driver MEMLINK_SHM_DRIVER` (quick depth,
seed 0), once clean (every check) and once per fault (the checks of
--fault-only, default all), and compares. Faults whose effect depends on
timing (no-wake) do not belong here: the checks they slow down may pass or
fail by the clock.
Exit 0 if every pair agrees, 1 (saying where) otherwise.
"""
import json
import os
import subprocess
import sys
import tempfile

REFERENCE_ONLY_CHECKS = {"exploration", "bounds", "checksum"}
SEEN_ONLY_IN_PROCESS = {"T-LOAN"}


def run(binary, target, fault, extra, d, name):
    report = os.path.join(d, name + ".json")
    env = dict(os.environ)
    env.pop("MEMLINK_DRIVER_FAULT", None)
    if fault:
        env["MEMLINK_DRIVER_FAULT"] = fault
    cmd = [binary] + target + ["--depth", "quick", "--seed", "0", "--json", report] + extra
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not os.path.exists(report):
        tail = "\n".join(done.stdout.splitlines()[-40:])
        raise SystemExit(f"compare_reports: {' '.join(cmd)}{' with MEMLINK_DRIVER_FAULT=' + fault if fault else ''} "
                         f"exited with status {done.returncode} and wrote no report; its output ends:\n{tail}")
    with open(report) as f:
        return json.load(f)


def compare(a, b, label):
    wrong = []
    checks_a = {c["name"]: c for c in a["checks"] if c["name"] not in REFERENCE_ONLY_CHECKS}
    checks_b = {c["name"]: c for c in b["checks"]}
    if set(checks_a) != set(checks_b):
        wrong.append(f"{label}: checks differ: in process {sorted(checks_a)}, through the driver {sorted(checks_b)}")
    for name in sorted(set(checks_a) & set(checks_b)):
        fa = checks_a[name].get("failure", {}).get("clause")
        fb = checks_b[name].get("failure", {}).get("clause")
        if fa != fb:
            wrong.append(f"{label}: check {name}: in process {'FAIL ' + fa if fa else 'passed'}, "
                         f"through the driver {'FAIL ' + fb if fb else 'passed'}")
    sa = {c["id"]: c["status"] for c in a["clauses"]}
    sb = {c["id"]: c["status"] for c in b["clauses"]}
    only_reference = set()
    for c in a["clauses"]:  # clauses only the reference-library checks saw
        if c["checks"] and set(c["checks"]) <= REFERENCE_ONLY_CHECKS:
            only_reference.add(c["id"])
    for cid in sorted(sa):
        if cid in SEEN_ONLY_IN_PROCESS or cid in only_reference:
            continue
        if sa[cid] != sb.get(cid):
            wrong.append(f"{label}: clause {cid}: in process {sa[cid]}, through the driver {sb.get(cid)}")
    return wrong


def main():
    args = sys.argv[1:]
    fault_only = []
    if "--fault-only" in args:
        i = args.index("--fault-only")
        fault_only = ["--only", args[i + 1]]
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary, driver = args[0], args[1]
    faults = [None] + [args[i + 1] for i, a in enumerate(args) if a == "--fault"]
    wrong = []
    with tempfile.TemporaryDirectory() as d:
        for i, fault in enumerate(faults):
            label = f"fault {fault}" if fault else "clean"
            extra = fault_only if fault else []
            a = run(binary, ["--adapter", "reference"], fault, extra, d, f"a{i}")
            b = run(binary, ["--driver", driver], fault, extra, d, f"b{i}")
            problems = compare(a, b, label)
            wrong += problems
            if not problems:
                failed = sorted(c["name"] for c in b["checks"] if not c["passed"])
                print(f"{label}: agree ({len(b['checks'])} checks; failed: {', '.join(failed) or 'none'})")
    for w in wrong:
        print(w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

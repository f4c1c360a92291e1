#!/usr/bin/env python3
"""Runs memlink-conformance with a driver fault and checks its JSON report.

    expect_report.py [--fault F] [--every-failure CLAUSE] [--checks-failing A,B]
                     [--not-pass C1,C2] [--all-pass-but C1,C2] -- COMMAND...

--fault F            sets MEMLINK_DRIVER_FAULT=F for the run
--every-failure C    every failed check names clause C
--checks-failing L   each of these checks failed
--not-pass L         none of these clauses is PASS
--all-pass-but L     every clause is PASS but these (and nothing failed)
--exit N             the run exits with status N (a signal is never expected)
--every-failure-says R  every failed check's description matches regular expression R
--max-rss-mib N      no process of the run grew past N MiB (resident)
--hostile-tmp        the run gets a TMPDIR of its own that must be empty afterwards,
                     and links planted at every name the runner once wrote its
                     drivers' stderr to (/tmp/memlink-driver-PID-N.stderr) must
                     leave their target untouched
The JUnit report is written too, both reports must parse, and JUnit must show
each failed check as a failure under the clause or driver rule it names.
Exit 0 if every expectation holds, 1 (saying which did not) otherwise.
"""
import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


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
    p.add_argument("--exit", type=int, default=None)
    p.add_argument("--every-failure-says", default="")
    p.add_argument("--max-rss-mib", type=int, default=0)
    p.add_argument("--hostile-tmp", action="store_true")
    args = p.parse_args(argv[:cut])
    command = argv[cut + 1:]
    env = dict(os.environ)
    if args.fault:
        env["MEMLINK_DRIVER_FAULT"] = args.fault
    wrong = []
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "report.json")
        junit = os.path.join(d, "report.xml")
        full = command + ["--json", report, "--junit", junit]
        victim = os.path.join(d, "victim")
        if args.hostile_tmp:
            with open(victim, "w") as f:
                f.write("precious\n")
            env["TMPDIR"] = os.path.join(d, "tmp")
            os.mkdir(env["TMPDIR"], 0o700)
            plant = 'for n in $(seq 0 63); do ln -s "$VICTIM" /tmp/memlink-driver-$$-$n.stderr; done; exec "$@"'
            env["VICTIM"] = victim
            full = ["sh", "-c", plant, "sh"] + full
        run = subprocess.Popen(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = run.stdout.read().decode("utf-8", "replace")
        run.wait()
        sys.stdout.write(out[-6000:])
        if args.hostile_tmp:
            for link in glob.glob(f"/tmp/memlink-driver-{run.pid}-*.stderr"):
                os.unlink(link)
            with open(victim) as f:
                if f.read() != "precious\n":
                    wrong.append("the file a planted link pointed at was written through")
            left = os.listdir(env["TMPDIR"])
            if left:
                wrong.append(f"the run left {left} in its TMPDIR")
        if run.returncode < 0:
            wrong.append(f"the run was killed by signal {-run.returncode}")
        elif args.exit is not None and run.returncode != args.exit:
            wrong.append(f"the run exited {run.returncode}, not {args.exit}")
        if args.max_rss_mib:
            rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
            if rss_mib > args.max_rss_mib:
                wrong.append(f"a process of the run grew to {rss_mib} MiB (at most {args.max_rss_mib})")
        if not os.path.exists(report):
            print(f"expect_report: no report (exit {run.returncode})")
            for w in wrong:
                print("expect_report: " + w)
            return 1
        try:
            with open(report, encoding="utf-8") as f:
                j = json.load(f)
            cases = ET.parse(junit).getroot().iter("testcase")
            junit_failed = {c.get("name", "").split(" ")[0] for c in cases if c.find("failure") is not None}
        except (ValueError, ET.ParseError, OSError) as e:
            print(f"expect_report: a report does not parse: {e}")
            return 1
    status = {c["id"]: c["status"] for c in j["clauses"]}
    failed = {c["name"]: c["failure"]["clause"] for c in j["checks"] if not c["passed"]}
    wrong += [f"the JUnit report shows no failure under {c} (check {n})" for n, c in failed.items()
              if c not in junit_failed]
    if args.every_failure_says:
        said = re.compile(args.every_failure_says, re.S)
        wrong += [f"check {c['name']} failed saying {c['failure']['description'][:400]!r}" for c in j["checks"]
                  if not c["passed"] and not said.search(c["failure"]["description"])]
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

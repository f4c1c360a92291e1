#!/usr/bin/env python3
"""Mutation testing of the verification suite (scripts/mutate).

Writes each mutant of a catalog (conformance/mutants/catalog.toml) into a
mirror of the source tree, builds it incrementally in one build tree, runs
the chosen layers of checks, and reports which check killed which mutant,
the survivors with their clause, and the score.

    mirror:  build/mutate/src      a copy of the working tree (tracked and
                                   untracked-but-not-ignored files); files
                                   that did not change keep their mtime, so
                                   builds stay incremental
    builds:  build/mutate/release  RelWithDebInfo (conformance, ctest, chaos)
             build/mutate/tsan     ThreadSanitizer (the tsan layer)

The working tree itself is never modified: a fork of the reference runs the
same way (edit the catalog's `find` strings to match your code).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = ("conformance", "ctest", "chaos", "tsan")
DEFAULT_LAYERS = "conformance,ctest,chaos,tsan"
# What the tsan layer runs: the checks whose threads share one process
# (TSan sees no other process's accesses).
TSAN_CHECKS = "linearizability,wakeup,exploration"


def memlink_version() -> str:
    """The release version, from ref/memlink/shm/version.hpp (the one place it is written)."""
    header = Path(__file__).resolve().parents[2] / "ref/memlink/shm/version.hpp"
    for line in header.read_text().splitlines():
        if line.startswith("#define MEMLINK_SHM_VERSION \""):
            return line.split('"')[1]
    return "unknown"


def log(msg: str) -> None:
    print(f"[mutate] {msg}", file=sys.stderr, flush=True)


@dataclass
class Edit:
    file: str
    find: str
    replace: str


@dataclass
class Mutant:
    name: str
    family: str
    clause: str
    why: str
    edits: list[Edit]
    equivalent: str = ""


@dataclass
class Outcome:
    name: str
    status: str = "survived"  # killed | survived | build-error | not-run
    killers: list[str] = field(default_factory=list)  # "layer:check"
    layers_run: list[str] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""


class CatalogError(Exception):
    pass


def load_catalog(path: Path) -> list[Mutant]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    mutants = []
    seen = set()
    for m in data.get("mutant", []):
        for key in ("name", "family", "clause", "why", "edits"):
            if key not in m:
                raise CatalogError(f"{path}: a mutant lacks '{key}': {m.get('name', '?')}")
        if m["name"] in seen:
            raise CatalogError(f"{path}: mutant '{m['name']}' is listed twice")
        seen.add(m["name"])
        edits = [Edit(e["file"], e["find"], e["replace"]) for e in m["edits"]]
        mutants.append(Mutant(m["name"], m["family"], m["clause"], m["why"], edits, m.get("equivalent", "")))
    return mutants


def mutated_files(mutant: Mutant, root: Path) -> dict[str, tuple[str, str]]:
    """{file: (original, mutated)} for the mutant's edits applied to `root`.
    Raises CatalogError when a `find` does not occur exactly once."""
    out: dict[str, tuple[str, str]] = {}
    for e in mutant.edits:
        path = root / e.file
        if not path.is_file():
            raise CatalogError(f"{mutant.name}: {e.file} does not exist")
        original, text = out.get(e.file, (None, None))
        if text is None:
            original = text = path.read_text()
        n = text.count(e.find)
        if n != 1:
            first = e.find.strip().splitlines()[0] if e.find.strip() else "(empty)"
            raise CatalogError(f"{mutant.name}: {e.file}: the text to replace occurs {n} times, "
                               f"not once (it starts: {first!r})")
        out[e.file] = (original, text.replace(e.find, e.replace))
    return out


# ------------------------------------------------------------------ mirror

def source_files(repo: Path) -> list[str]:
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       cwd=repo, capture_output=True, check=True)
    return [p for p in r.stdout.decode().split("\0") if p and (repo / p).is_file()]


def sync_mirror(repo: Path, mirror: Path) -> int:
    """Copies the working tree into the mirror; returns files changed."""
    wanted = set(source_files(repo))
    changed = 0
    for rel in wanted:
        src, dst = repo / rel, mirror / rel
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        shutil.copymode(src, dst)
        changed += 1
    for dst in list(mirror.rglob("*")):
        rel = dst.relative_to(mirror).as_posix()
        if dst.is_file() and rel not in wanted and not rel.startswith("build/"):
            dst.unlink()
            changed += 1
    return changed


# ------------------------------------------------------------------ builds

RELEASE_FLAGS = ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DMEMLINK_BUILD_BENCH=OFF"]
TSAN_FLAGS = ["-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_CXX_FLAGS=-O1 -g -fsanitize=thread -fno-omit-frame-pointer",
              "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread", "-DMEMLINK_BUILD_TOOLS=OFF"]


def configure(src: Path, build: Path, flags: list[str]) -> None:
    if (build / "build.ninja").is_file():
        return
    launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
    cmd = ["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DMEMLINK_WERROR=OFF", *launcher, *flags]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"[mutate] configure failed in {build}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")


def build(build_dir: Path, targets: list[str], jobs: int) -> tuple[bool, str]:
    cmd = ["cmake", "--build", str(build_dir), "-j", str(jobs)]
    for t in targets:
        cmd += ["--target", t]
    r = subprocess.run(cmd, capture_output=True, text=True)
    out = r.stdout + r.stderr
    errors = [l for l in out.splitlines() if "error" in l.lower()]
    return r.returncode == 0, "\n".join(errors[:8]) if errors else out[-2000:]


# ------------------------------------------------------------------ layers

def run_with_timeout(cmd: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None):
    """(returncode or None on timeout, output tail). Kills the whole process group on timeout."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env, cwd=cwd, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out[-4000:]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, (out or "")[-4000:]


def describe_exit(rc: int | None) -> str:
    if rc is None:
        return "TIMEOUT"
    if rc < 0:
        return "CRASH(" + signal.Signals(-rc).name + ")"
    return f"exit {rc}"


class Layers:
    def __init__(self, args, release: Path, tsan: Path, work: Path):
        self.args, self.release, self.tsan, self.work = args, release, tsan, work

    def targets(self, layer: str) -> tuple[Path, list[str]]:
        if layer == "conformance":  # and the driver it runs for processes of their own (launcher.cpp)
            return self.release, ["memlink-conformance", "memlink-shm-driver"]
        if layer == "chaos":
            return self.release, ["memlink-chaos"]
        if layer == "ctest":
            return self.release, []  # everything ctest runs
        return self.tsan, ["memlink-conformance", "memlink_stress_tests"]

    def run(self, layer: str) -> tuple[list[str], str]:
        """Killers (empty: the layer passed) and a detail line."""
        return getattr(self, "_" + layer)()

    def _conformance(self, binary: Path | None = None, only: str = "", depth: str | None = None,
                     prefix: str = "conformance", env: dict | None = None):
        report = self.work / f"{prefix}.json"
        report.unlink(missing_ok=True)
        cmd = [str(binary or self.release / "memlink-conformance"), "--depth", depth or self.args.depth,
               "--seed", str(self.args.seed), "--json", str(report)]
        if not self.args.all_layers:  # one killer is enough: the rest of the suite would only cost time
            cmd.append("--fail-fast")
        if only:
            cmd += ["--only", only]
        rc, out = run_with_timeout(cmd, self.args.layer_timeout, env=env)
        killers = []
        if report.is_file():
            try:
                j = json.loads(report.read_text())
                killers = [f"{prefix}:{c['name']}" for c in j.get("checks", []) if not c.get("passed", True)]
            except (json.JSONDecodeError, KeyError):
                pass
        if rc != 0 and not killers:
            killers = [f"{prefix}:{describe_exit(rc)}"]
        return killers, out.strip().splitlines()[-1] if out.strip() else ""

    def _ctest(self):
        junit = self.work / "ctest-junit.xml"
        junit.unlink(missing_ok=True)
        cmd = ["ctest", "--test-dir", str(self.release), "-j", str(self.args.jobs), "-LE", "bench",
               "--timeout", "300", "--output-junit", str(junit)]
        if not self.args.all_layers:  # as conformance's --fail-fast: the first failing test is the kill
            cmd.append("--stop-on-failure")
        rc, out = run_with_timeout(cmd, self.args.layer_timeout * 2)
        killers = []
        if junit.is_file():
            try:
                for case in ET.parse(junit).getroot().iter("testcase"):
                    if case.get("status") == "fail" or case.find("failure") is not None:
                        killers.append("ctest:" + case.get("name", "?"))
            except ET.ParseError:
                pass
        if rc != 0 and not killers:
            killers = ["ctest:" + describe_exit(rc)]
        return killers, f"{len(killers)} tests failed" if killers else "all passed"

    def _chaos(self):
        report = self.work / "chaos.json"
        report.unlink(missing_ok=True)
        cmd = [str(self.release / "memlink-chaos"), "--duration", self.args.chaos_duration, "--seed",
               str(self.args.seed), "--quiet", "--json", str(report), "--work-dir", str(self.work / "chaos")]
        shutil.rmtree(self.work / "chaos", ignore_errors=True)
        rc, out = run_with_timeout(cmd, self.args.layer_timeout)
        if rc == 0:
            return [], "no violation"
        what = describe_exit(rc)
        if rc == 1 and report.is_file():
            try:
                v = json.loads(report.read_text()).get("violations", [])
                what = (v[0].split(":")[0] if v and isinstance(v[0], str) else "violation")
            except json.JSONDecodeError:
                pass
        elif rc == 2:
            what = "setup failed"
        return [f"chaos:{what}"], out.strip().splitlines()[-1] if out.strip() else ""

    def _tsan(self):
        # Not halt_on_error: the check that ran into a race fails by name (main.cpp's sanitizer hook).
        env = dict(os.environ, TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0")
        killers, detail = self._conformance(self.tsan / "memlink-conformance", TSAN_CHECKS, "quick", "tsan", env)
        if killers:
            return killers, detail
        # Then the stress tests (ctest -L concurrency): producers and a
        # consumer that spins, so that nothing but the slot's own
        # release/acquire orders the consumer after the producer.
        cmd = ["ctest", "--test-dir", str(self.tsan), "-L", "concurrency", "--timeout", "600"]
        rc, out = run_with_timeout(cmd, self.args.layer_timeout, env=env)
        if rc == 0:
            return [], detail + "; TSan stress tests passed"
        failed = [line.split("-", 1)[1].strip().split(" ")[0] for line in out.splitlines()
                  if line.strip()[:1].isdigit() and " - " in line and "(" in line]
        return ["tsan:" + (f or "stress") for f in failed] or ["tsan:stress " + describe_exit(rc)], detail


# ------------------------------------------------------------------ report

def score(outcomes: list[Outcome], mutants: dict[str, Mutant]) -> tuple[int, int, int, int]:
    killed = sum(o.status == "killed" for o in outcomes)
    equiv = sum(o.status == "survived" and bool(mutants[o.name].equivalent) for o in outcomes)
    broken = sum(o.status == "build-error" for o in outcomes)
    scored = sum(o.status in ("killed", "survived") for o in outcomes) - equiv
    return killed, scored, equiv, broken


def print_report(outcomes: list[Outcome], mutants: dict[str, Mutant], wall: float) -> None:
    print("\nkill matrix (mutant -> the checks that failed on it; first layer that failed, or all with --all-layers)")
    width = max(len(o.name) for o in outcomes) if outcomes else 10
    for o in outcomes:
        m = mutants[o.name]
        if o.status == "killed":
            what = ", ".join(o.killers)
        elif o.status == "survived":
            what = "SURVIVED" + (" (argued equivalent)" if m.equivalent else "") + f"  [{m.clause}]"
        else:
            what = o.status.upper() + (f": {o.detail.splitlines()[0]}" if o.detail else "")
        print(f"  {o.name:<{width}}  {o.seconds:6.0f}s  {what}")
    survivors = [o for o in outcomes if o.status == "survived"]
    if survivors:
        print("\nsurvivors:")
        for o in survivors:
            m = mutants[o.name]
            print(f"  {o.name} ({m.family}, {m.clause}): {m.why}")
            if m.equivalent:
                print(f"      argued equivalent: {m.equivalent}")
    by_family: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_family.setdefault(mutants[o.name].family, []).append(o)
    print("\nby family:")
    for fam, os_ in sorted(by_family.items()):
        k = sum(o.status == "killed" for o in os_)
        n = sum(o.status in ("killed", "survived") for o in os_)
        print(f"  {fam:<24} {k:3d} / {n:<3d} killed")
    killed, scored, equiv, broken = score(outcomes, mutants)
    pct = 100.0 * killed / scored if scored else 0.0
    print(f"\nscore: {killed} of {scored} mutants killed ({pct:.1f} %); {equiv} surviving mutants argued "
          f"equivalent and left out; {broken} did not build; wall time {wall / 60:.1f} min")


def write_json(path: Path, outcomes, mutants, args, wall) -> None:
    killed, scored, equiv, broken = score(outcomes, mutants)
    doc = {
        "layers": args.layers, "depth": args.depth, "seed": args.seed, "wall_seconds": round(wall, 1),
        "killed": killed, "scored": scored, "equivalent_survivors": equiv, "build_errors": broken,
        "score": round(killed / scored, 4) if scored else None,
        "mutants": [{"name": o.name, "family": mutants[o.name].family, "clause": mutants[o.name].clause,
                     "status": o.status, "killed_by": o.killers, "layers_run": o.layers_run,
                     "seconds": round(o.seconds, 1), "equivalent": mutants[o.name].equivalent or None,
                     "detail": o.detail} for o in outcomes],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_junit(path: Path, outcomes, mutants) -> None:
    suite = ET.Element("testsuite", name="memlink-mutate", tests=str(len(outcomes)),
                       failures=str(sum(o.status == "survived" and not mutants[o.name].equivalent for o in outcomes)),
                       errors=str(sum(o.status == "build-error" for o in outcomes)))
    for o in outcomes:
        m = mutants[o.name]
        case = ET.SubElement(suite, "testcase", classname=f"mutant.{m.family.replace(' ', '_')}", name=o.name,
                             time=f"{o.seconds:.1f}")
        if o.status == "survived" and not m.equivalent:
            ET.SubElement(case, "failure", message=f"survived ({m.clause})").text = m.why
        elif o.status == "build-error":
            ET.SubElement(case, "error", message="mutant does not build").text = o.detail
        elif o.status == "survived":
            ET.SubElement(case, "skipped", message="argued equivalent: " + m.equivalent)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/mutate",
        description="Mutation testing of the suite: builds each mutant of the catalog in a mirror of the "
                    "source tree and runs the checks against it. Prints the kill matrix, the survivors "
                    "and the score.",
        epilog="Exit status: 0 when every scored mutant was killed (or --check/--list succeeded), "
               "1 when a mutant survived or did not build, 2 on a usage or setup error.")
    p.add_argument("--only", default="", help="comma-separated mutant names or globs (default: all)")
    p.add_argument("--layers", default=DEFAULT_LAYERS,
                   help=f"comma-separated, in order: {','.join(LAYERS)} (default: %(default)s)")
    p.add_argument("--all-layers", action="store_true",
                   help="run every layer, and every conformance check, on every mutant (a full kill matrix) "
                        "instead of stopping at the first kill (memlink-conformance --fail-fast)")
    p.add_argument("--depth", default="default", choices=["quick", "default", "deep"],
                   help="conformance depth (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for conformance and chaos (default: 0)")
    p.add_argument("--chaos-duration", default="60s", help="chaos layer duration (default: %(default)s)")
    p.add_argument("--layer-timeout", type=float, default=900,
                   help="seconds a layer may run before it counts as a TIMEOUT kill (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="build and ctest jobs")
    p.add_argument("--catalog", default="conformance/mutants/catalog.toml", help="mutant catalog")
    p.add_argument("--work-dir", default="build/mutate", help="mirror, builds and reports (default: %(default)s)")
    p.add_argument("--json", default="", help="write the results as JSON")
    p.add_argument("--junit", default="", help="write JUnit XML (a surviving mutant is a failure)")
    p.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated tree")
    p.add_argument("--check", action="store_true", help="only verify that every mutant applies to the tree")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--version", action="version", version="scripts/mutate " + memlink_version() + " (catalog format 1)")
    args = p.parse_args(argv)
    args.layers = [l for l in args.layers.split(",") if l]
    for l in args.layers:
        if l not in LAYERS:
            p.error(f"unknown layer '{l}' (choose from {', '.join(LAYERS)})")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args


def select(mutants: list[Mutant], only: str) -> list[Mutant]:
    if not only:
        return mutants
    patterns = [s for s in only.split(",") if s]
    picked = [m for m in mutants if any(fnmatch.fnmatch(m.name, pat) for pat in patterns)]
    unknown = [pat for pat in patterns if not any(fnmatch.fnmatch(m.name, pat) for m in mutants)]
    if unknown:
        raise CatalogError("no mutant matches: " + ", ".join(unknown))
    return picked


def main(argv) -> int:
    args = parse_args(argv)
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())
    os.chdir(repo)
    try:
        mutants = load_catalog(Path(args.catalog))
        chosen = select(mutants, args.only)
        if args.list:
            for m in chosen:
                print(f"{m.name:<34} {m.family:<22} {m.clause:<13} {'(argued equivalent)' if m.equivalent else ''}")
            return 0
        for m in chosen:
            mutated_files(m, repo)
    except CatalogError as e:
        print(f"scripts/mutate: {e}", file=sys.stderr)
        return 2
    if args.check:
        print(f"all {len(chosen)} mutants apply to the tree")
        return 0

    # The mirror's builds: a proof's broken library (cmake/mutant_library.cmake)
    # whose text the mutant under test rewrote is skipped, not an error.
    os.environ["MEMLINK_MUTANT_MIRROR"] = "1"
    work = (repo / args.work_dir).resolve()
    mirror, release, tsan = work / "src", work / "release", work / "tsan"
    work.mkdir(parents=True, exist_ok=True)
    n = sync_mirror(repo, mirror)
    log(f"mirror {mirror}: {n} files updated")
    layers = Layers(args, release, tsan, work)
    configure(mirror, release, RELEASE_FLAGS)
    if "tsan" in args.layers:
        configure(mirror, tsan, TSAN_FLAGS)

    def build_for(layer: str) -> tuple[bool, str]:
        d, targets = layers.targets(layer)
        return build(d, targets, args.jobs)

    start = time.time()
    if not args.no_baseline:
        for layer in args.layers:
            ok, detail = build_for(layer)
            if not ok:
                print(f"scripts/mutate: the unmutated tree does not build for layer {layer}:\n{detail}", file=sys.stderr)
                return 2
            log(f"baseline: {layer} ...")
            killers, detail = layers.run(layer)
            if killers:
                print(f"scripts/mutate: the unmutated tree fails layer {layer} ({', '.join(killers)}): "
                      f"no mutant result would mean anything; fix that first.\n{detail}", file=sys.stderr)
                return 2
        log(f"baseline passed every layer in {time.time() - start:.0f} s")

    outcomes: list[Outcome] = []
    for i, m in enumerate(chosen, 1):
        o = Outcome(m.name)
        t0 = time.time()
        files = mutated_files(m, mirror)
        try:
            for rel, (_, mutated) in files.items():
                (mirror / rel).write_text(mutated)
            for layer in args.layers:
                ok, detail = build_for(layer)
                if not ok:
                    o.status, o.detail = "build-error", detail
                    break
                killers, _ = layers.run(layer)
                o.layers_run.append(layer)
                if killers:
                    o.status = "killed"
                    o.killers += killers
                    if not args.all_layers:
                        break
        finally:
            for rel, (original, _) in files.items():
                (mirror / rel).write_text(original)
        o.seconds = time.time() - t0
        outcomes.append(o)
        verdict = o.status if o.status != "killed" else "killed by " + ", ".join(o.killers)
        log(f"[{i}/{len(chosen)}] {m.name}: {verdict} ({o.seconds:.0f} s)")

    wall = time.time() - start
    mutant_map = {m.name: m for m in mutants}
    print_report(outcomes, mutant_map, wall)
    if args.json:
        write_json(Path(args.json), outcomes, mutant_map, args, wall)
    if args.junit:
        write_junit(Path(args.junit), outcomes, mutant_map)
    bad = any(o.status == "build-error" or (o.status == "survived" and not mutant_map[o.name].equivalent)
              for o in outcomes)
    return 1 if bad else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `scripts/mutate --list | head`
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)

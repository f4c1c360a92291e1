#!/usr/bin/env python3
"""What removing each cost from the hot path could buy at most, measured.

usage: bench/upper_bounds.py [--variants A,B,...] [--rounds N] [--work DIR] [--json FILE]
       bench/upper_bounds.py --check

Builds the benchmark programs of this tree and of measurement-only variants
of it, each with one cost of a message taken out (a locked instruction, the
fences, the counters or the checksum), then runs them in alternating rounds
(every variant once per round, so drift hits all alike) and prints, per
variant, the goal ratios of bench/RESULTS.md that the cost could move.

The variants are UNSAFE: each removes what a SPEC clause needs (K-CLAIMED,
K-FENCE, R-RELEASE, F-WAKE, T-COUNTERS, V-SLOT) and is built only in a copy
of the tree under --work, never in this one. They bound what a protocol
design that removes the same instruction safely could gain; a design whose
bound is in the noise is not worth its protocol step.

  --variants  comma-separated (default: all of them):
              base      the tree as it is
              counters  no T-COUNTERS add (client counter, daemon_tail)
              fences    no F-WAKE fence on the waker's side
              tail      the consumer's tail CAS (R-RELEASE) as a store
              take      the consumer's take CAS (K-FENCE) as a store
              claim     the producer's slot-word claim CAS (K-CLAIMED) as a store
              head      the producer's head CAS (R-CLAIM) as a store
              checksum  CRC32C replaced by 0 (V-SLOT)
              all       every locked instruction above removed (not the checksum)
              all+checksum  every locked instruction and the checksum removed: what
                        is left is the copy and V-SLOT's field checks
              writer    the producer's locked instructions (head, claim) with the
                        counters and the fences: a message that a writer hands off
                        with plain stores only, the consumer unchanged
              reader    the consumer's locked instructions (take, tail) only
  --rounds    alternating rounds (default 2)
  --work      where the copy and its build go (default: a new temporary directory)
  --json      also write the ratios as JSON
  --check     only check that every variant's edits apply to this tree (each
              text to replace occurs exactly once); builds and runs nothing
              (ctest upper-bounds-apply)
Exit status: 0 when every variant built and ran, 1 when one did not, 2 on a usage error.
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def version():
    """The project's version (ref/memlink/shm/version.hpp), as every command prints it."""
    try:
        m = re.search(r'#define MEMLINK_SHM_VERSION "(.*)"', (ROOT / "ref/memlink/shm/version.hpp").read_text())
    except OSError:
        m = None
    return m.group(1) if m else "?"


# Each edit: (file, text that must occur exactly once, replacement).
EDITS = {
    "counters": [
        ("ref/memlink/shm/control.hpp", "  counter.fetch_add(1, std::memory_order_relaxed);", "  (void)counter;"),
        ("ref/memlink/shm/transport.cpp",
         "  if (role_ == Role::Daemon) ctl_->daemon_tail.fetch_add(1, std::memory_order_relaxed);\n", ""),
    ],
    "fences": [
        ("ref/memlink/shm/transport.cpp",
         "  shared_fence(std::memory_order_seq_cst);  // SPEC F-WAKE, the waker's half\n", ""),
    ],
    "tail": [
        ("ref/memlink/shm/buffer.cpp",
         "  hdr_->tail.compare_exchange_strong(from, from + 1, std::memory_order_release, std::memory_order_relaxed);",
         "  hdr_->tail.store(from + 1, std::memory_order_release);"),
    ],
    "take": [
        ("ref/memlink/shm/buffer.cpp", "  if (!cas_word(slot, ready, reading)) {",
         "  if ((store_word(slot, reading), false)) {"),
    ],
    "claim": [
        ("ref/memlink/shm/buffer.cpp",
         "  if (!cas_word(slot, empty, slot_word(SlotState::Writing, platform::current_pid(), g), &found)) {",
         "  if ((store_word(slot, slot_word(SlotState::Writing, platform::current_pid(), g)), false)) {"),
    ],
    "head": [
        ("ref/memlink/shm/buffer.cpp",
         "    if (hdr_->head.compare_exchange_weak(head, head + 1, std::memory_order_relaxed,\n"
         "                                         std::memory_order_relaxed)) {",
         "    if ((hdr_->head.store(head + 1, std::memory_order_relaxed), true)) {"),
    ],
    "checksum": [
        ("ref/memlink/shm/checksum.cpp", "  return crc32c_via(Crc32cPath::Fold, data, len);\n}",
         "  (void)data, (void)len;\n  return 0;\n}"),
    ],
}
EDITS["base"] = []
EDITS["all"] = [e for k in ("counters", "fences", "tail", "take", "claim", "head") for e in EDITS[k]]
EDITS["all+checksum"] = EDITS["all"] + EDITS["checksum"]
EDITS["writer"] = [e for k in ("head", "claim", "counters", "fences") for e in EDITS[k]]
EDITS["reader"] = [e for k in ("take", "tail") for e in EDITS[k]]
ORDER = ["base", "counters", "fences", "tail", "take", "claim", "head", "checksum", "all", "all+checksum", "writer",
         "reader"]
PROGRAMS = {
    "bench_costs": "^(single_ring|floor_bare_ring|endpoint_write_read)/",
    "bench_roundtrip": "floor_cache_line|memlink_adaptive/64/|memlink_loan/4096/|floor_payload_copy/4096/",
    "bench_throughput": "memlink_throughput/payload:64/producers:1/|floor_bare_ring_throughput/payload:64/",
}


def log(message):
    print(f"[upper-bounds] {message}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=False, **kw)


def edited(src, variant):
    """{path: the variant's text of that file}, or RuntimeError naming the edit that does not apply."""
    texts = {}
    for path, old, new in EDITS[variant]:
        text = texts.get(path) or (src / path).read_text()
        if text.count(old) != 1:
            raise RuntimeError(f"{variant}: {path}: the text to replace occurs {text.count(old)} times, not once "
                               f"(it starts: {old.strip()[:60]!r}); the tree moved on: update bench/upper_bounds.py")
        texts[path] = text.replace(old, new)
    return texts


def apply(src, variant):
    for path, text in edited(src, variant).items():
        (src / path).write_text(text)


def build(src, variant, out):
    """The variant's bench programs, copied to out/<variant>/."""
    run(["git", "-C", str(src), "checkout", "-q", "--", "ref"])
    apply(src, variant)
    env = dict(os.environ, MEMLINK_MUTANT_MIRROR="1")  # the proofs' mutants need not apply to a variant
    build_dir = src / "build" / "release"
    if not (build_dir / "build.ninja").exists():
        r = run(["cmake", "--preset", "release"], cwd=src, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"configure failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    r = run(["cmake", "--build", str(build_dir), "--target", *PROGRAMS], cwd=src, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{variant}: build failed:\n{r.stdout[-3000:]}")
    dest = out / variant
    dest.mkdir(parents=True, exist_ok=True)
    for p in PROGRAMS:
        (dest / p).write_bytes((build_dir / p).read_bytes())
        (dest / p).chmod(0o755)


def measure(out, variant, round_no):
    """One round of one variant: {benchmark name: its JSON row}."""
    rows = {}
    for prog, pattern in PROGRAMS.items():
        jf = out / f"{variant}-r{round_no}-{prog}.json"
        r = run([str(out / variant / prog), f"--benchmark_filter={pattern}", "--benchmark_min_time=0.5",
                 f"--benchmark_out={jf}", "--benchmark_out_format=json"], capture_output=True, text=True)
        if r.returncode != 0 or not jf.exists():
            raise RuntimeError(f"{variant}: {prog} failed:\n{r.stderr[-2000:]}")
        rows.update({b["name"]: b for b in json.loads(jf.read_text())["benchmarks"]})
    return rows


def ratios(rows):
    def p50(n):
        return rows.get(n, {}).get("p50_ns")

    def div(a, b):
        return a / b if a and b else None

    tp = rows.get("memlink_throughput/payload:64/producers:1/real_time", {}).get("items_per_second")
    bare_tp = rows.get("floor_bare_ring_throughput/payload:64/real_time", {}).get("items_per_second")
    return {
        "one ring write + read, one thread / bare ring": div(rows.get("single_ring/payload:64", {}).get("real_time"),
                                                          rows.get("floor_bare_ring/payload:64", {}).get("real_time")),
        "client write + daemon read, one thread (ns)": rows.get("endpoint_write_read/payload:64", {}).get("real_time"),
        "adaptive round trip 64 B / bare cache line": div(p50("roundtrip/memlink_adaptive/64/real_time"),
                                                          p50("roundtrip/floor_cache_line/8/real_time")),
        "4096 B loan round trip / 64 B adaptive": div(p50("roundtrip/memlink_loan/4096/real_time"),
                                                      p50("roundtrip/memlink_adaptive/64/real_time")),
        "4096 B loan round trip / bare payload copy of 4096 B": div(p50("roundtrip/memlink_loan/4096/real_time"),
                                                                    p50("roundtrip/floor_payload_copy/4096/real_time")),
        "64 B one-way throughput / bare ring": div(tp, bare_tp),
    }


def main():
    ap = argparse.ArgumentParser(prog="bench/upper_bounds.py", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--variants", default=",".join(ORDER))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work")
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--version", action="version", version=f"bench/upper_bounds.py {version()}")
    a = ap.parse_args()
    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in EDITS]
    if unknown or not variants or a.rounds < 1:
        ap.error(f"unknown variant(s) {', '.join(unknown)} (known: {', '.join(ORDER)})" if unknown
                 else "need at least one variant and one round")
    if a.check:
        failed = 0
        for v in variants:
            try:
                edited(ROOT, v)
            except RuntimeError as e:
                log(str(e))
                failed += 1
        log(f"{len(variants) - failed} of {len(variants)} variants apply to {ROOT}")
        return 1 if failed else 0
    work = pathlib.Path(a.work or tempfile.mkdtemp(prefix="memlink-upper-bounds."))
    src, out = work / "src", work / "out"
    try:
        if not src.exists():
            log(f"copying this tree's HEAD to {src}")
            if run(["git", "clone", "-q", str(ROOT), str(src)]).returncode != 0:
                raise RuntimeError(f"git clone of {ROOT} failed")
        for v in variants:
            log(f"building {v}")
            build(src, v, out)
        run(["git", "-C", str(src), "checkout", "-q", "--", "ref"])
        results = {v: [] for v in variants}
        for r in range(1, a.rounds + 1):
            for v in variants:
                log(f"round {r}/{a.rounds}: {v}")
                results[v].append(ratios(measure(out, v, r)))
    except RuntimeError as e:
        log(str(e))
        return 1
    keys = list(next(iter(results.values()))[0])
    print("| variant | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for v in variants:
        cells = []
        for k in keys:
            vals = [r[k] for r in results[v] if r[k] is not None]
            cells.append(" / ".join(f"{x:.2f}" if x < 100 else f"{x:.0f}" for x in vals) if vals else "-")
        print(f"| {v} | " + " | ".join(cells) + " |")
    if a.json:
        summary = {v: {k: statistics.median([r[k] for r in rs if r[k] is not None] or [0]) for k in keys}
                   for v, rs in results.items()}
        pathlib.Path(a.json).write_text(json.dumps({"rounds": results, "medians": summary}, indent=1))
    log(f"programs and raw JSON in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Readable tables from Google Benchmark JSON (scripts/bench, scripts/compare-latency).

  report.py merge OUT.json IN.json...      one file: context of the first, every benchmark tagged with its program
  report.py table RUN.json                 the run as tables, with the goals of bench/RESULTS.md as ratios
  report.py compare A.json B.json... [--baseline N] [--plot FILE] [--labels a,b,...]
                                           side-by-side round trips (p50/p99) and a plot

Every file is Google Benchmark JSON: scripts/bench's, or bench_futex_portable
--json (the Windows/Wine futex benchmark, with the same counters).
"""
import argparse
import json
import os
import re
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def rows(run):
    return [b for b in run.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred")]


def fmt_ns(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.1f} us"
    return f"{v:.0f} ns"


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f} /s"


def rt_key(b):
    # roundtrip/<peer>/<payload>/real_time
    parts = b["name"].split("/")
    return parts[1], int(parts[2])


def cmp_key(b):
    """The row compare puts b in: roundtrip/<peer>/<payload> by peer and payload,
    any other row with percentiles (bench_futex, bench_futex_portable) by name."""
    if b["name"].startswith("roundtrip/"):
        return rt_key(b)
    if "p50_ns" in b:
        return b["name"].replace("/real_time", ""), "-"
    return None


def find(run, pattern):
    for b in rows(run):
        if re.fullmatch(pattern, b["name"]):
            return b
    return None


def merge(out, inputs):
    merged = None
    for path in inputs:
        run = load(path)
        prog = os.path.splitext(os.path.basename(path))[0]
        for b in run.get("benchmarks", []):
            b["program"] = prog
        if merged is None:
            merged = run
        else:
            merged["benchmarks"].extend(run.get("benchmarks", []))
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)


def goals(run):
    """The goals of issue 15 (layout v2) as measured ratios (None where a row is missing).

    Each is measured against a floor or a peer in the same run. The floors:
    two processes bouncing a cache line (round trip), a bare futex ping-pong,
    and a bare single-producer ring in shared memory (bench/bare_ring.hpp:
    memlink's slot size, no checksum, no recovery) for throughput and for one
    thread's write + read."""
    def p50(name):
        b = find(run, name)
        return b.get("p50_ns") if b else None

    def rate(name):
        b = find(run, name)
        return b.get("items_per_second") if b else None

    def ns(name):
        b = find(run, name)
        return b.get("real_time") if b else None

    def ratio(a, b):
        return a / b if a and b else None

    tp1 = rate(r"memlink_throughput/payload:64/producers:1/real_time")
    tp2 = rate(r"memlink_throughput/payload:64/producers:2/real_time")
    out = []
    out.append(("adaptive round trip (64 B) / bare cache line", ratio(p50(r"roundtrip/memlink_adaptive/64/real_time"), p50(r"roundtrip/floor_cache_line/8/real_time")), "<= 2"))
    out.append(("blocking round trip (64 B) / bare futex ping-pong", ratio(p50(r"roundtrip/memlink_block/64/real_time"), p50(r"roundtrip/floor_futex/8/real_time")), "<= 1.15"))
    out.append(("64 B one-way throughput, 1 producer / bare ring floor", ratio(tp1, rate(r"floor_bare_ring_throughput/payload:64/real_time")), ">= 0.5"))
    out.append(("64 B one-way throughput / Boost message_queue", ratio(tp1, rate(r"boost_mq_throughput/payload:64/real_time")), ">= 3"))
    out.append(("64 B one-way throughput / pipe", ratio(tp1, rate(r"pipe_throughput/payload:64/real_time")), ">= 5"))
    out.append(("64 B one-way throughput, 2 producers / 1 producer", ratio(tp2, tp1), ">= 1"))
    out.append(("4096 B round trip through loan/take_view / 64 B round trip", ratio(p50(r"roundtrip/memlink_loan/4096/real_time"), p50(r"roundtrip/memlink_adaptive/64/real_time")), "<= 1.5"))
    # What moving 4 KiB costs whatever carries it: the bare floor that copies
    # the payload each way and reads every byte (floor_payload_copy), as a
    # consumer that uses its data or checks a checksum must. Context rows,
    # no target: they say how much of the ratio above the hardware takes.
    copy64, copy4k = p50(r"roundtrip/floor_payload_copy/64/real_time"), p50(r"roundtrip/floor_payload_copy/4096/real_time")
    out.append(("  context: bare payload copy, 4096 B / 64 B (the hardware's own ratio)", ratio(copy4k, copy64), "-"))
    out.append(("  context: 4096 B through loan/take_view / bare payload copy of 4096 B", ratio(p50(r"roundtrip/memlink_loan/4096/real_time"), copy4k), "-"))
    out.append(("one ring write + read, one thread / bare ring", ratio(ns(r"single_ring/payload:64$"), ns(r"floor_bare_ring/payload:64$")), "<= 3"))
    idle = find(run, r"idle_daemon_cpu/strategy:2/iterations:1/real_time")
    out.append(("idle daemon, adaptive: % of one CPU", idle.get("cpu_percent") if idle else None, "< 1"))
    return out


def table(path):
    run = load(path)
    ctx = run.get("context", {})
    print(f"# {ctx.get('cpu_model', '?')} | {ctx.get('os', '?')} | {ctx.get('kernel', '?')} | {ctx.get('compiler', '?')} | pinned: {ctx.get('pinned_cpus', 'none')}")
    print()
    rts = [b for b in rows(run) if b["name"].startswith("roundtrip/")]
    if rts:
        floor = find(run, r"roundtrip/floor_cache_line/8/real_time")
        print("## Round trip between two processes")
        print()
        print("| transport | payload | p50 | p99 | p99.9 | round trips/s | p50 / cache-line floor |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for b in rts:
            peer, payload = rt_key(b)
            r = b["p50_ns"] / floor["p50_ns"] if floor else None
            print(f"| {peer} | {payload} | {fmt_ns(b.get('p50_ns'))} | {fmt_ns(b.get('p99_ns'))} | {fmt_ns(b.get('p999_ns'))} | {fmt_rate(b.get('rt_per_s'))} | {f'{r:.1f}x' if r else '-'} |")
        print()
    tps = [b for b in rows(run) if "throughput" in b["name"]]
    if tps:
        print("## One-way throughput")
        print()
        print("| benchmark | messages/s |")
        print("|---|---:|")
        for b in tps:
            print(f"| {b['name'].replace('/real_time', '')} | {fmt_rate(b.get('items_per_second'))} |")
        print()
    fx = [b for b in rows(run) if b["name"].startswith(("round_trip/", "wake_no_waiter/", "wait_changed_value/"))]
    if fx:
        print("## Wait/wake primitives")
        print()
        print("| benchmark | time | p50 | p99 | p99.9 |")
        print("|---|---:|---:|---:|---:|")
        for b in fx:
            t = b.get("real_time") if b.get("time_unit") == "ns" else None
            print(f"| {b['name'].replace('/real_time', '')} | {fmt_ns(t)} | {fmt_ns(b.get('p50_ns'))} | {fmt_ns(b.get('p99_ns'))} | {fmt_ns(b.get('p999_ns'))} |")
        print()
    costs = [b for b in rows(run) if b["name"].startswith(("single_ring", "priority_rings", "idle_daemon_cpu"))]
    if costs:
        print("## Costs")
        print()
        print("| benchmark | result |")
        print("|---|---:|")
        for b in costs:
            v = f"{b['cpu_percent']:.2f} % of a CPU" if "cpu_percent" in b else fmt_ns(b.get("real_time"))
            print(f"| {b['name'].replace('/iterations:1/real_time', '')} {b.get('label', '')} | {v} |")
        print()
    print("## Goals (same machine, same run)")
    print()
    print("| goal | measured | target |")
    print("|---|---:|---|")
    for name, value, target in goals(run):
        print(f"| {name} | {f'{value:.2f}' if value is not None else 'not measured'} | {target} |")


def compare(paths, baseline, plot, labels):
    runs = [load(p) for p in paths]
    if labels:
        names = labels.split(",")
    else:
        names = []
        for p, r in zip(paths, runs):
            c = r.get("context", {})
            kernel = c.get("kernel", "").split(" ")
            names.append(f"{c.get('os', os.path.basename(p))} {kernel[1] if len(kernel) > 1 else ''}".strip())
    if len(names) != len(runs):
        sys.exit("compare-latency: --labels must name every file")
    keys = []
    for r in runs:
        for b in rows(r):
            k = cmp_key(b)
            if k is not None and k not in keys:
                keys.append(k)
    keys.sort(key=lambda k: k[1] == "-")  # roundtrip/ rows first, in file order
    index = [{cmp_key(b): b for b in rows(r) if cmp_key(b) is not None} for r in runs]
    print("| transport | payload | " + " | ".join(f"{n} p50 | {n} p99" for n in names) +
          (f" | " + " | ".join(f"{n} / {names[baseline]}" for i, n in enumerate(names) if i != baseline) if len(runs) > 1 else "") + " |")
    print("|---|---:|" + "---:|" * (2 * len(runs) + (len(runs) - 1 if len(runs) > 1 else 0)))
    for k in keys:
        cells = []
        for ix in index:
            b = ix.get(k)
            cells += [fmt_ns(b.get("p50_ns")) if b else "-", fmt_ns(b.get("p99_ns")) if b else "-"]
        ratios = []
        base = index[baseline].get(k)
        for i, ix in enumerate(index):
            if i == baseline:
                continue
            b = ix.get(k)
            ratios.append(f"{b['p50_ns'] / base['p50_ns']:.2f}x" if b and base and base.get("p50_ns") else "-")
        print(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + (" | " + " | ".join(ratios) if ratios else "") + " |")
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 5))
        series = 0
        for name, ix in zip(names, index):
            for peer in ("memlink_spin", "memlink_adaptive", "memlink_block", "pipe", "boost_mq"):
                pts = sorted((k[1], b["p50_ns"] / 1e3) for k, b in ix.items() if k[0] == peer)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name}: {peer}")
                    series += 1
        if series:
            ax.set_xscale("symlog", linthresh=64)
            ax.set_yscale("log")
            ax.set_xlabel("payload (bytes)")
            ax.set_ylabel("round trip p50 (us)")
            ax.set_title("Round trip between two processes, by payload")
        else:
            # Runs without payload series (bench_futex_portable on each OS of
            # the latency matrix): one group of bars per row, one bar per run.
            keys_p50 = [k for k in keys if any(ix.get(k, {}).get("p50_ns") for ix in index)]
            width = 0.8 / max(1, len(index))
            for i, (name, ix) in enumerate(zip(names, index)):
                xs = [j + i * width for j, k in enumerate(keys_p50) if ix.get(k, {}).get("p50_ns")]
                ys = [ix[k]["p50_ns"] / 1e3 for k in keys_p50 if ix.get(k, {}).get("p50_ns")]
                if xs:
                    ax.bar(xs, ys, width=width, label=name)
                    series += 1
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys_p50))])
            ax.set_xticklabels([k[0].replace("round_trip/", "") for k in keys_p50], rotation=20, ha="right", fontsize=7)
            ax.set_yscale("log")
            ax.set_ylabel("p50 (us)")
            ax.set_title("p50 by platform (round trips; wake_no_waiter: one call)")
        if not series:
            sys.exit("compare-latency: nothing to plot: no row of these runs has a p50")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot)
        print(f"\nplot: {plot} ({series} series)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge")
    m.add_argument("out")
    m.add_argument("inputs", nargs="+")
    t = sub.add_parser("table")
    t.add_argument("run")
    c = sub.add_parser("compare")
    c.add_argument("runs", nargs="+")
    c.add_argument("--baseline", type=int, default=0, help="index of the column the ratios divide by (default 0)")
    c.add_argument("--plot", help="draw round trip by payload to FILE (.png or .svg)")
    c.add_argument("--labels", help="comma-separated column names (default: OS and kernel from each file)")
    a = ap.parse_args()
    if a.cmd == "merge":
        merge(a.out, a.inputs)
    elif a.cmd == "table":
        table(a.run)
    else:
        if a.baseline >= len(a.runs):
            sys.exit("compare-latency: --baseline is out of range")
        compare(a.runs, a.baseline, a.plot, a.labels)


if __name__ == "__main__":
    main()

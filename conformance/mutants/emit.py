#!/usr/bin/env python3
"""Writes one catalog mutant's files into a directory (the build's one way to
break the reference on purpose).

    emit.py --catalog conformance/mutants/catalog.toml --root SRC --out DIR NAME

For each file the mutant NAME edits, writes DIR/<file> (the file of SRC with
the mutant's edits applied) and prints <file> on its own line. CMake's
memlink_mutant_library() calls it at configure time to build a library in
which that one bug is compiled: the proofs that a check catches a broken
implementation (ctest *-catches-*) build their broken implementations from
the catalog, so nothing test-only is compiled into ref/.

Exit status: 0 when written; 3 when the mutant's text is not in SRC (in
scripts/mutate's mirror another mutant may have rewritten it); 2 on a usage
error or an unknown mutant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mutate import CatalogError, load_catalog, mutated_files


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="emit.py", description=__doc__.splitlines()[0])
    p.add_argument("--catalog", required=True, help="the mutant catalog (TOML)")
    p.add_argument("--root", required=True, help="the source tree the edits apply to")
    p.add_argument("--out", required=True, help="where the mutated files are written")
    p.add_argument("name", help="the mutant's name")
    args = p.parse_args(argv)
    try:
        mutants = {m.name: m for m in load_catalog(Path(args.catalog))}
    except (OSError, CatalogError) as e:
        print(f"emit.py: {e}", file=sys.stderr)
        return 2
    if args.name not in mutants:
        print(f"emit.py: no mutant named '{args.name}' in {args.catalog}", file=sys.stderr)
        return 2
    try:
        files = mutated_files(mutants[args.name], Path(args.root))
    except CatalogError as e:
        print(f"emit.py: {e}", file=sys.stderr)
        return 3
    out = Path(args.out)
    for rel, (_, text) in sorted(files.items()):
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        # Rewritten only when it changed: an unchanged mutant keeps its mtime
        # and its object file.
        if not dst.is_file() or dst.read_text() != text:
            dst.write_text(text)
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

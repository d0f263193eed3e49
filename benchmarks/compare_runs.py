"""Compare two benchmark output folders cell by cell, timings aside.

    python benchmarks/compare_runs.py RUN_A RUN_B

Prints, for metrics.csv, shift_error.csv and denoising.csv, the number of rows and of differing
cells (the ``seconds`` column is a timing and is skipped), rows matched by method, ΔE, seed and
case (rows only one run has are counted apart, so added rows leave the others comparable);
exits 1 if any cell differs or a row is missing from either run.
"""

import csv
import sys
from pathlib import Path

FILES = ("metrics.csv", "shift_error.csv", "denoising.csv")
TIMINGS = {"seconds"}
#: The columns that name a row.
KEYS = ("method", "dE", "seed", "case")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _keyed(path):
    return {tuple(r.get(k) for k in KEYS): r for r in _rows(path)}


def compare(a, b):
    """``{file: (rows, differing cells, rows only in a, rows only in b)}`` for the files present
    in both folders."""
    out = {}
    for name in FILES:
        pa, pb = Path(a) / name, Path(b) / name
        if not (pa.exists() and pb.exists()):
            continue
        ra, rb = _keyed(pa), _keyed(pb)
        diff = sum(ra[k].get(c) != rb[k].get(c) for k in ra.keys() & rb.keys()
                   for c in set(ra[k]) | set(rb[k]) if c not in TIMINGS)
        out[name] = (len(ra), diff, len(ra.keys() - rb.keys()), len(rb.keys() - ra.keys()))
    return out


def main(argv=None):
    a, b = (argv or sys.argv[1:])[:2]
    result = compare(a, b)
    for name, (n, diff, only_a, only_b) in result.items():
        print(f"{name}: {n} rows, {diff} differing cells (timings skipped), {only_a} rows only in "
              f"the first run, {only_b} only in the second")
    return int(any(d or only_a or only_b for _, d, only_a, only_b in result.values()))


if __name__ == "__main__":
    sys.exit(main())

"""Compare two benchmark output folders cell by cell, timings aside.

    python benchmarks/compare_runs.py RUN_A RUN_B

Prints, for metrics.csv, shift_error.csv and denoising.csv, the number of rows and of differing
cells (the ``seconds`` column is a timing and is skipped); exits 1 if any cell differs.
"""

import csv
import sys
from pathlib import Path

FILES = ("metrics.csv", "shift_error.csv", "denoising.csv")
TIMINGS = {"seconds"}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def compare(a, b):
    """``{file: (rows, differing cells)}`` for the files present in both folders."""
    out = {}
    for name in FILES:
        pa, pb = Path(a) / name, Path(b) / name
        if not (pa.exists() and pb.exists()):
            continue
        ra, rb = _rows(pa), _rows(pb)
        diff = abs(len(ra) - len(rb))
        for x, y in zip(ra, rb):
            diff += sum(x.get(k) != y.get(k) for k in set(x) | set(y) if k not in TIMINGS)
        out[name] = (len(ra), diff)
    return out


def main(argv=None):
    a, b = (argv or sys.argv[1:])[:2]
    result = compare(a, b)
    for name, (n, diff) in result.items():
        print(f"{name}: {n} rows, {diff} differing cells (timings skipped)")
    return int(any(d for _, d in result.values()))


if __name__ == "__main__":
    sys.exit(main())

"""The scaling benchmark on a CUDA GPU: the same table as ``benchmarks/scaling.py``, with issue 17's
GPU targets checked.

    python benchmarks/gpu.py          # needs CUDA; writes benchmarks/results/gpu/scaling.{csv,png,md}
    python benchmarks/gpu.py --quick  # a smoke run

Every step runs with the package's defaults (``device="auto"`` takes the GPU for the CVAE);
HyperSpy PCA runs on the CPU as it always does. Without CUDA it says so and exits with status 2
(nothing is measured: run ``benchmarks/scaling.py`` for the CPU table).
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Issue 17's GPU targets (H100/H200 class): inference throughput and the 192² fit time.
TARGET_SPECTRA_PER_S = 1_000_000
TARGET_FIT_SECONDS = 5.0


def check(out):
    """Lines that check the GPU targets on ``out/scaling.csv``."""
    rows = list(csv.DictReader(open(out / "scaling.csv")))
    nav = [r for r in rows if r["series"] in ("nav", "nav_lazy")]
    best = max((r for r in nav if r["step"] == "anomaly_map"), key=lambda r: float(r["spectra_per_second"]))
    fit = next((r for r in nav if r["series"] == "nav" and r["ny"] == "192" and r["step"] == "fit"), None)
    L = [f"- anomaly_map: best {float(best['spectra_per_second']):,.0f} spectra/s ({best['ny']}², "
         f"{best['series']}; target ≥ {TARGET_SPECTRA_PER_S:,}): "
         f"{'met' if float(best['spectra_per_second']) >= TARGET_SPECTRA_PER_S else 'not met'}."]
    if fit is not None:
        L.append(f"- fit_cvae() on 192²: {float(fit['seconds']):.1f} s (target ≤ {TARGET_FIT_SECONDS:g} s): "
                 f"{'met' if float(fit['seconds']) <= TARGET_FIT_SECONDS else 'not met'}.")
    return L


def main(argv=None):
    import torch

    import scaling

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "gpu"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("No CUDA device here: nothing measured (benchmarks/scaling.py gives the CPU table).")
        return 2
    out = pathlib.Path(args.out)
    scaling.main(["--out", str(out)] + (["--quick"] if args.quick else []))
    lines = [f"", f"## GPU targets ({torch.cuda.get_device_name(0)})", ""] + check(out)
    with open(out / "scaling.md", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

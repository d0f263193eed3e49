"""Cost of the CVAE against the map's size and its number of channels, next to HyperSpy PCA.

    python benchmarks/scaling.py            # ≈ 30 min on 2 CPU cores → benchmarks/results/scaling.{csv,png,md}
    python benchmarks/scaling.py --quick    # a smoke run (32² and 64², 100 and 200 channels, 20 steps)

What a microscopist runs on a new map, each case in a fresh process whose resident memory is
polled (:class:`memory.PeakRSS`; the increase over the process's baseline after importing
HyperSpy, torch and hyperspy-cvae):

* ``fit``: ``s.fit_cvae()`` with its defaults (the training budget in optimiser steps; the fit
  range from ``metadata.Sample.elements``, here Fe: the Fe L2,3 window ± 20 eV);
* ``anomaly_map``: ``s.anomaly_map("cvae")`` (reconstruction, default score, threshold, labels);
  ``anomaly_map_again``: the same call a second time in the process (a session's later maps);
* ``pca``: HyperSpy ``decomposition()`` + ``get_decomposition_model(3)`` on the same energy range
  (the model's fit range), in memory.

Cases, on the built-in BiFeO3 cube (:func:`hyperspy_cvae.synthetic.bifeo3_si`, 660–760 eV):

* navigation size 64² … 512² (192² included: the size of issue 17's targets) with 334 channels (0.3 eV), in memory, and 256² … 1024² from a
  ``.zspy`` store loaded lazily (``hs.load(lazy=True)``; the cube is written chunk by chunk
  first, not timed); PCA of a lazy case runs on the computed cube;
* channels 100 … 2000 on a 128² map (the same 660–760 eV at 1 … 0.05 eV per channel).

Outputs: ``scaling.csv`` (one row per case and step), ``scaling.png`` (log-log time and peak
memory, with the fitted exponents) and ``scaling.md`` (the exponents, the ratios to PCA and the
targets of issue 17, checked here).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

OFFSET, SPAN = 660.0, 100.2  # eV: the axis of every case
NAV_EAGER = (64, 128, 192, 256, 512)
NAV_LAZY = (256, 512, 1024)
CHANNELS = (100, 250, 500, 1000, 2000)
CHANNEL_MAP = 128
#: Peak memory bound of the lazy pipeline (benchmarks/memory.py's default budget), MiB.
LAZY_BUDGET_MIB = 768
COLUMNS = ["series", "ny", "nx", "channels", "lazy", "step", "seconds", "peak_rss_increase_mib",
           "spectra_per_second", "steps", "fit_channels"]


def _axis(channels):
    scale = round(SPAN / channels, 6)
    return dict(offset=OFFSET, scale=scale, size=channels)


def measure(n, channels, lazy_path=None, max_steps=None):
    """One case in this (fresh) process: returns the rows of its three steps (``max_steps``: a
    training budget other than the default, for smoke runs)."""
    import gc

    import dask
    import hyperspy.api as hs
    import torch  # (in the baseline)

    from memory import PeakRSS

    import hyperspy_cvae  # noqa: F401
    from hyperspy_cvae.synthetic import bifeo3_si

    hs.preferences.General.show_progressbar = False
    if torch.cuda.is_available():  # start CUDA (context, cuDNN) before anything is timed
        torch.nn.functional.conv3d(torch.zeros(1, 1, 4, 4, 4, device="cuda"),
                                   torch.zeros(1, 1, 2, 2, 2, device="cuda"))
        torch.cuda.synchronize()
    if lazy_path is None:
        s = bifeo3_si((n, n), random_state=0, **_axis(channels))
    gc.collect()
    mon = PeakRSS()
    time.sleep(0.2)
    baseline = mon.now()
    rows = []

    def step(name, fn):
        gc.collect()
        mon.reset()
        t0 = time.perf_counter()
        out = fn()
        sec = time.perf_counter() - t0
        rows.append({"step": name, "seconds": round(sec, 3), "spectra_per_second": round(n * n / sec),
                     "peak_rss_increase_mib": round((mon.peak() - baseline) / 2**20, 1)})
        print(f"  {n}² × {channels} {'lazy ' if lazy_path else ''}{name}: {sec:.2f} s, "
              f"{rows[-1]['peak_rss_increase_mib']:g} MiB", flush=True)
        return out

    with dask.config.set(scheduler="threads", num_workers=2):
        if lazy_path is not None:
            s = hs.load(lazy_path, lazy=True, signal_type="CVAE_EELS")
            baseline = mon.now()
        budget = {} if max_steps is None else {"max_steps": max_steps}
        cvae = step("fit", lambda: s.fit_cvae(show_progressbar=False, **budget))
        step("anomaly_map", lambda: s.anomaly_map("cvae", show_progressbar=False))
        # the same call again: without the one-off costs of a process's first map (imports, the
        # inference shapes' first convolutions), what every later map of a session costs
        step("anomaly_map_again", lambda: s.anomaly_map("cvae", show_progressbar=False))
        lo, hi = cvae.signal_range_

        def pca():
            work = s.isig[lo:hi]
            if work._lazy:
                work.compute()  # HyperSpy's in-memory SVD, as on the other maps
            else:
                work = work.deepcopy()
            work.decomposition(print_info=False)
            return work.get_decomposition_model(3)

        step("pca", pca)
    mon.stop()
    for r in rows:
        r.update(steps=cvae.n_steps_, fit_channels=int(cvae.n_channels_))
    return rows


def _child(args):
    rows = measure(args.n, args.channels, args.lazy_path, args.steps)
    pathlib.Path(args.json).write_text(json.dumps(rows))


def _run_child(n, channels, tmp, lazy_path=None, steps=None):
    """The rows of one case, measured in a fresh process; none (and a message) if it failed."""
    js = tmp / f"rows-{n}-{channels}-{int(lazy_path is not None)}.json"
    cmd = [sys.executable, __file__, "--_child", "--_n", str(n), "--_channels", str(channels),
           "--_json", str(js)] + (["--_lazy_path", lazy_path] if lazy_path else []) + (
               ["--steps", str(steps)] if steps else [])
    done = subprocess.run(cmd)
    if done.returncode != 0 or not js.exists():
        print(f"  the case {n}² × {channels}{' (lazy)' if lazy_path else ''} failed "
              f"(exit status {done.returncode}); it is left out", flush=True)
        return []
    return json.loads(js.read_text())


def _write_cube(path, n, channels):
    from memory import generate

    ax = _axis(channels)
    generate(path, n, n, channels, 0, offset=ax["offset"], scale=ax["scale"], inject=False)


def exponent(x, y):
    """Least-squares slope of log y against log x (the power of a power law ``y ∝ x^k``)."""
    import numpy as np

    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else float("nan")


def _rows_of(rows, series, step):
    return sorted((r for r in rows if r["series"] == series and r["step"] == step),
                  key=lambda r: (r["ny"] * r["nx"], r["channels"]))


def write_outputs(rows, out, *, wall, machine, quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "scaling.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})
    series = [("nav", "pixels", lambda r: r["ny"] * r["nx"], "in memory"),
              ("nav_lazy", "pixels", lambda r: r["ny"] * r["nx"], "lazy, from .zspy"),
              ("channels", "channels", lambda r: r["channels"], f"{CHANNEL_MAP}² map")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    exps = {}
    for col, (xname, group) in enumerate((("pixels", ("nav", "nav_lazy")), ("channels", ("channels",)))):
        for name, _, xf, label in (s for s in series if s[0] in group):
            for step, style in (("fit", "o-"), ("anomaly_map", "s-"), ("pca", "^--")):
                rs = _rows_of(rows, name, step)
                if not rs:
                    continue
                x = [xf(r) for r in rs]
                k_t = exponent(x, [r["seconds"] for r in rs])
                k_m = exponent(x, [max(r["peak_rss_increase_mib"], 1.0) for r in rs])
                exps[(name, step)] = (k_t, k_m)
                lab = f"{step}, {label}"
                axes[0, col].loglog(x, [r["seconds"] for r in rs], style, label=f"{lab} (k = {k_t:.2f})")
                axes[1, col].loglog(x, [max(r["peak_rss_increase_mib"], 1.0) for r in rs], style,
                                    label=f"{lab} (k = {k_m:.2f})")
        for row, what in ((0, "time (s)"), (1, "peak RSS increase (MiB)")):
            axes[row, col].set_xlabel(xname)
            axes[row, col].set_ylabel(what)
            if axes[row, col].get_legend_handles_labels()[0]:
                axes[row, col].legend(fontsize=6.5)
            axes[row, col].grid(True, which="both", alpha=0.3)
    axes[1, 0].axhline(LAZY_BUDGET_MIB, color="k", lw=0.8, ls=":")
    fig.suptitle("hyperspy-cvae cost vs map size and channels (fitted power-law exponents k)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    plt.close(fig)

    L = ["# Cost against map size and channels", "",
         "Generated by `python benchmarks/scaling.py`" + (" --quick" if quick else "")
         + "; do not edit by hand. Each case ran in a fresh process; peak memory is the resident-"
           "memory increase over the process's baseline.", "",
         "| series | step | time exponent k (t ∝ size^k) | memory exponent |", "|---|---|---|---|"]
    for (name, step), (k_t, k_m) in exps.items():
        L.append(f"| {name} | {step} | {k_t:.2f} | {k_m:.2f} |")
    L += ["", "| series | map | channels | step | seconds | spectra/s | peak MiB | steps |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['series']} | {r['ny']}² | {r['channels']} (fit {r['fit_channels']}) | {r['step']} | "
                 f"{r['seconds']:.2f} | {r['spectra_per_second']} | {r['peak_rss_increase_mib']:g} | {r['steps']} |")
    L += ["", "## Issue 17's targets, checked on this run", ""]
    L += targets(rows, exps)
    L += ["", f"Environment: {machine}; wall time {wall / 60:.1f} min.", ""]
    (out / "scaling.md").write_text("\n".join(L))


def targets(rows, exps):
    """The lines of ``scaling.md`` that check issue 17's targets against ``rows``."""
    L = []

    def at(series, n, step):
        return next((r for r in rows if r["series"] == series and r["ny"] == n and r["step"] == step), None)

    navs = sorted({r["ny"] for r in rows if r["series"] == "nav"})
    ref = min(navs, key=lambda n: abs(n - 192)) if navs else None
    am, fit, pca = (at("nav", ref, step) for step in ("anomaly_map", "fit", "pca"))
    if am and fit and pca:
        ratio = am["seconds"] / pca["seconds"]
        L.append(f"- anomaly_map on {ref}², the process's first: {am['spectra_per_second']} spectra/s "
                 f"(target ≥ 20 000), {ratio:.2f} × PCA's {pca['seconds']:.2f} s (target ≤ 1.5): "
                 f"{'met' if am['spectra_per_second'] >= 20000 and ratio <= 1.5 else 'not met'}.")
        again = at("nav", ref, "anomaly_map_again")
        if again:
            r2 = again["seconds"] / pca["seconds"]
            L.append(f"- anomaly_map on {ref}², called again: {again['spectra_per_second']} spectra/s, "
                     f"{r2:.2f} × PCA: {'met' if again['spectra_per_second'] >= 20000 and r2 <= 1.5 else 'not met'}.")
        tot = (fit["seconds"] + am["seconds"]) / pca["seconds"]
        L.append(f"- fit_cvae() defaults on {ref}²: {fit['seconds']:.1f} s, {fit['steps']} steps (target "
                 f"≤ 15 s); fit + map = {tot:.1f} × PCA (target ≤ 10): "
                 f"{'met' if fit['seconds'] <= 15 and tot <= 10 else 'not met'}.")
    for name in ("nav", "nav_lazy"):
        if (name, "anomaly_map") in exps:
            k = exps[(name, "anomaly_map")][0]
            L.append(f"- anomaly_map time exponent ({name}): {k:.2f} (target ≤ 1.05): "
                     f"{'met' if k <= 1.05 else 'not met'}.")
    lazy = [r for r in rows if r["series"] == "nav_lazy" and r["step"] != "pca"]
    if lazy:
        big = max(r["ny"] for r in lazy)
        peak = max(r["peak_rss_increase_mib"] for r in lazy if r["ny"] == big)
        L.append(f"- peak memory of fit and anomaly_map on the lazy {big}² cube: {peak:g} MiB "
                 f"(bound {LAZY_BUDGET_MIB} MiB): {'met' if peak <= LAZY_BUDGET_MIB else 'not met'}.")
    return L


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tmp", default=None, help="folder for the temporary .zspy cubes")
    ap.add_argument("--steps", type=int, default=None,
                    help="training budget in optimiser steps (default: the package's; --quick: 20)")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_n", dest="n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_channels", dest="channels", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_json", dest="json", help=argparse.SUPPRESS)
    ap.add_argument("--_lazy_path", dest="lazy_path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        _child(args)
        return 0
    nav_eager, nav_lazy, channels, cmap = ((32, 64), (64,), (100, 200), 32) if args.quick else \
        (NAV_EAGER, NAV_LAZY, CHANNELS, CHANNEL_MAP)
    steps = args.steps if args.steps is not None else (20 if args.quick else None)
    t0 = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cvae-scaling-", dir=args.tmp))
    rows = []
    out = pathlib.Path(args.out)

    def partial():  # the rows so far, in case a later case takes the machine down
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "scaling.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows({k: r.get(k, "") for k in COLUMNS} for r in rows)

    try:
        for n in nav_eager:
            rows += [dict(r, series="nav", ny=n, nx=n, channels=334, lazy=False)
                     for r in _run_child(n, 334, tmp, steps=steps)]
            partial()
        for n in nav_lazy:
            path = str(tmp / f"cube{n}.zspy")
            print(f"Writing the {n}² × 334 cube to {path} (not timed) ...", flush=True)
            _write_cube(path, n, 334)
            rows += [dict(r, series="nav_lazy", ny=n, nx=n, channels=334, lazy=True)
                     for r in _run_child(n, 334, tmp, lazy_path=path, steps=steps)]
            shutil.rmtree(path, ignore_errors=True)
            partial()
        for c in channels:
            rows += [dict(r, series="channels", ny=cmap, nx=cmap, channels=c, lazy=False)
                     for r in _run_child(cmap, c, tmp, steps=steps)]
            partial()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import torch

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
               f"Python {platform.python_version()}")
    write_outputs(rows, out, wall=time.perf_counter() - t0, machine=machine, quick=args.quick)
    print((out / "scaling.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

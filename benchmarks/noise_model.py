"""The noise model against detector gains: estimate, false alarms and detection (issue 14, item 3).

A 96 × 96 BiFeO3 cube (dose 150 counts per channel, 0.08 eV jitter) is recorded as a detector
would: ``gain · counts + N(0, read_noise²) + dark`` for gains 0.3–20 with read noise and dark
offsets (negative after a dark subtraction). For each gain:

* the noise model ``anomaly_map`` resolves (``noise="auto"``, no metadata): its source, and its
  variance at the median intensity against the true one;
* ``null`` (no anomaly) and ``thickness`` (+30 % intensity in 6 patches of 5 × 5, a nuisance):
  the flagged fraction, which must stay ≤ 0.1 %;
* ``shift`` (0.5 eV in 6 patches of 5 × 5): ROC-AUC, and F1 of the default threshold (Otsu)
  and of ``threshold="fdr"``;

each with HyperSpy PCA(3) and the CVAE (fitted once per cube with ``noise="auto"``), both with
the default shift score, scored with the resolved model (``auto``) and as if the data were
counts (``counts``). Writes ``noise_model.csv`` and ``noise_model.md``.

    python benchmarks/noise_model.py [--out benchmarks/results/noise_model] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import platform
import sys
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchmark import _write_csv  # noqa: E402

#: (gain ADU per count, read noise ADU, dark level ADU) per detector.
DETECTORS = ((0.3, 1.0, -3.0), (1.0, 0.0, 0.0), (3.0, 5.0, -20.0), (20.0, 40.0, 300.0))
WINDOW = (690.0, 730.0)
COLUMNS = ["gain", "read_noise", "dark", "case", "method", "noise", "threshold", "roc_auc", "f1", "n_flagged",
           "flagged_fraction", "model_source", "model_gain", "model_offset", "variance_ratio"]
THRESHOLDS = ("otsu", "fdr")


def detector(s, gain, read_noise, dark, seed):
    """``s`` (counts) recorded with ``gain``, Gaussian ``read_noise`` and a ``dark`` level."""
    rng = np.random.default_rng(seed)
    data = gain * s.data + rng.normal(0.0, read_noise, s.data.shape) + dark if read_noise else \
        gain * s.data + dark
    out = s._deepcopy_with_new_data(np.asarray(data, np.float32))
    out.metadata.General.title = f"{s.metadata.General.title} (gain {gain:g})"
    return out


def cases(size, seed):
    """``{name: (counts cube, truth or None)}``."""
    from hyperspy_cvae.synthetic import bifeo3_si

    clean = bifeo3_si((size, size), random_state=seed)
    thick, t_truth = clean.inject_anomaly("thickness", n_clusters=6, cluster_size=5, random_state=seed + 1,
                                          return_mask=True)
    shift, s_truth = clean.inject_shift(0.5, window=WINDOW, n_clusters=6, cluster_size=5,
                                        random_state=seed + 2, return_mask=True)
    return {"null": (clean, None), "thickness": (thick, t_truth.data), "shift": (shift, s_truth.data)}


def run(size, seed, steps):
    from hyperspy_cvae.evaluation import detection_metrics

    rows = []
    budget = {} if steps is None else {"max_steps": steps}
    for gain, rn, dark in DETECTORS:
        for case, (cube, truth) in cases(size, seed).items():
            d = detector(cube, gain, rn, dark, seed + 10)
            t0 = time.perf_counter()
            cvae = d.fit_cvae(signal_range=(660.0, 760.0), random_state=seed, show_progressbar=False,
                              **budget)
            fit_s = time.perf_counter() - t0
            for method, noise, threshold in itertools.product(("pca", "cvae"), ("auto", "counts"), THRESHOLDS):
                res = d.anomaly_map(method, WINDOW, cvae=cvae if method == "cvae" else None, noise=noise,
                                    threshold=threshold, show_progressbar=False)
                nm = res.score.metadata.CVAE.noise
                e = float(np.median(d.isig[WINDOW[0]:WINDOW[1]].data))
                true_var = gain * (e - dark) + rn**2
                m = detection_metrics(res.mask.data, truth if truth is not None else
                                      np.zeros(res.mask.data.shape, bool),
                                      res.score if truth is not None else None)
                rows.append({"gain": gain, "read_noise": rn, "dark": dark, "case": case,
                             "method": method, "noise": noise, "threshold": threshold,
                             "roc_auc": m.get("roc_auc", float("nan")) if truth is not None else float("nan"),
                             "f1": m["f1"] if truth is not None else float("nan"),
                             "n_flagged": int(res.mask.data.sum()),
                             "flagged_fraction": float(res.mask.data.mean()),
                             "model_source": nm.source, "model_gain": float(nm.gain_factor),
                             "model_offset": float(nm.gain_offset),
                             "variance_ratio": (nm.gain_factor * e + nm.gain_offset) / true_var})
                r = rows[-1]
                print(f"gain {gain:5g} {case:9s} {method:4s} {noise:6s} {threshold:4s}: flagged {r['n_flagged']:4d}"
                      f" AUC {r['roc_auc']:.4f} F1 {r['f1']:.3f} | {nm.source}, var ratio "
                      f"{r['variance_ratio']:.3f} (fit {fit_s:.0f} s)", flush=True)
    return rows


def write_md(out, rows, *, size, wall):
    lines = ["# The noise model against detector gains", "",
             "Generated by `python benchmarks/noise_model.py`; do not edit by hand.", "",
             f"{size} × {size} BiFeO3 cube (dose 150 counts/channel, seed 0) recorded as `gain · counts + "
             "N(0, read noise²) + dark`; no noise metadata, so `noise=\"auto\"` estimates the model. "
             "`counts` (model column): the same data scored as if they were counts. Default shift score; "
             "thresholds Otsu (after the unimodality check) and `threshold=\"fdr\"` (5 %); the CVAE fitted once per cube with "
             "`noise=\"auto\"`. Variance ratio: the model's variance at the window's median "
             "intensity over the true one.", "",
             "| gain | read noise | dark | model | variance ratio | method | threshold | null: flagged "
             "| thickness: flagged | 0.5 eV shift: ROC-AUC | F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for gain, rn, dark in DETECTORS:
        for method, noise, threshold in itertools.product(("pca", "cvae"), ("auto", "counts"), THRESHOLDS):
            key = (gain, method, noise, threshold)
            sel = {r["case"]: r for r in rows if (r["gain"], r["method"], r["noise"], r["threshold"]) == key}
            if len(sel) < 3:
                continue
            m = sel["null"]
            lines.append(
                f"| {gain:g} | {rn:g} | {dark:g} | {m['model_source']} | {m['variance_ratio']:.3f} "
                f"| {method} | {threshold} | {100 * sel['null']['flagged_fraction']:.2f} % "
                f"| {100 * sel['thickness']['flagged_fraction']:.2f} % | {sel['shift']['roc_auc']:.4f} "
                f"| {sel['shift']['f1']:.3f} |")
    worst = max((r["flagged_fraction"] for r in rows if r["noise"] == "auto" and r["case"] != "shift"),
                default=float("nan"))
    lines += ["", f"Largest flagged fraction on null and thickness cubes with `noise=\"auto\"`: "
                  f"**{100 * worst:.2f} %** (issue 14 asks ≤ 0.1 %).", "",
              f"Environment: {platform.machine()}, Python {platform.python_version()}; wall time {wall:.0f} s."]
    (out / "noise_model.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="benchmarks/noise_model.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "results" / "noise_model"))
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, help="CVAE training budget (default: the package's)")
    ap.add_argument("--quick", action="store_true", help="48 × 48, 40 steps (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.steps = 48, 40
    warnings.filterwarnings("ignore")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = run(args.size, 0, args.steps)
    _write_csv(out / "noise_model.csv", rows, COLUMNS)
    write_md(out, rows, size=args.size, wall=time.perf_counter() - t0)
    print(f"wrote {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

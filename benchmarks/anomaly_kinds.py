"""Anomalies that are not shifts: one table per kind, with likelihood-ratio oracles (issue 14).

For each seed, a 192 × 192 BiFeO3 cube (dose 150, 0.08 eV per-pixel energy jitter, as the shift
benchmark) gets one kind of change (``inject_anomaly``) in 6 patches of 5 × 5 pixels: a
Fe3+ → Fe2+ mixture (valence), the L2/L3 white-line ratio, the O K pre-peak, a new peak, a
missing Fe edge, and a thickness (intensity-only) change, which is a nuisance and must not be
flagged. Every method scores the edge the change lives in (Fe L2,3, or O K for the pre-peak),
named as a user would (``edge=``):

* the CVAE trained on the anomalous cube with the default budget (``fit_cvae(edge=...)``), with
  the shift, PCC, deviance and any-change (``"auto"``) scores of its reconstruction;
* HyperSpy PCA(3), plain and Poisson-normalised, with the same scores, on the same range;
* RX (Reed–Xiaoli) in the window;
* three likelihood-ratio oracles in the window: ``oracle`` knows each pixel's expectation with and
  without the change (drift included); ``oracle_nodrift`` knows them without the drift, which
  is then noise to it as to every method (issue 14's reference); ``oracle_scaled`` knows them
  without the drift and up to a scale: each hypothesis's intensity is fitted to the pixel's
  counts, as a method that must not flag thickness changes has to (the reference such a
  method can reach; it sees nothing in an intensity-only change).

Reported per kind and method: ROC-AUC, F1 and flagged fraction of the default threshold (Otsu
after the unimodality check), of ``threshold="fdr"`` (per-pixel Benjamini–Hochberg at 5 %,
:func:`~hyperspy_cvae.scores.fdr_threshold`) and of ``spatial="auto"`` (the score pooled over
boxes and bars at FDR 5 %, :func:`~hyperspy_cvae.scores.spatial.pool_score_map`). Writes
``metrics.csv`` and ``summary.md``.

    python benchmarks/anomaly_kinds.py [--out benchmarks/results/anomaly_kinds] [--seeds 0 1]
                                       [--size 192] [--quick]
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchmark import _metrics_row, _Timer, _write_csv  # noqa: E402

#: The edge each kind is scored on (the Fe kinds and the nuisance on Fe L2,3).
EDGE = {"valence": "Fe_L3", "l3_l2_ratio": "Fe_L3", "prepeak": "O_K", "new_peak": "Fe_L3",
        "missing_edge": "Fe_L3", "thickness": "Fe_L3", "shift": "Fe_L3"}
#: Besides the kinds of ``inject_anomaly``: an edge shift of this many eV (``inject_shift``), so that
#: every score, ``"auto"`` included, is on record for the change the default score is made for.
SHIFT_EV = 0.5
SCORES = ("shift", "pcc", "deviance", "auto")
COLUMNS = ["kind", "strength", "seed", "method", "roc_auc", "pr_auc", "f1", "f1_fdr", "f1_best", "precision",
           "recall", "n_flagged", "flagged_fraction", "flagged_fraction_fdr", "f1_spatial",
           "flagged_fraction_spatial", "seconds"]


def oracle_maps(bad, kind, strength, win):
    """The three likelihood-ratio oracle maps of ``kind`` in the window ``win`` (channel slice)."""
    from hyperspy_cvae import energy_window
    from hyperspy_cvae.scores import likelihood_ratio, score_signal
    from hyperspy_cvae.synthetic.anomalies import anomaly_expectations, generator_params

    params = generator_params(bad.metadata)  # the injection keeps the generator's metadata
    out = {}
    y = bad.data[..., win.slice]
    for name, drift in (("oracle", True), ("oracle_nodrift", False)):
        if kind == "shift":  # the clean expectation, shifted as inject_shift shifts the counts
            from hyperspy_cvae.synthetic import shift_window

            mu0, _ = anomaly_expectations(params, "thickness", drift=drift)
            inj = energy_window(bad, (690.0, 730.0))
            ramp = int(round(bad.metadata.get_item("CVAE.injection.ramp", 2.0) / inj.scale))
            mu1 = mu0.copy()
            mu1[..., inj.slice] = shift_window(mu0, strength / inj.scale, inj.slice, ramp)[..., inj.slice]
        else:
            mu0, mu1 = anomaly_expectations(params, kind, strength, drift=drift)
        out[name] = score_signal(bad, likelihood_ratio(y, mu0[..., win.slice], mu1[..., win.slice]),
                                 kind="likelihood_ratio", anomalous="high", window=win.as_list(),
                                 title=f"Likelihood-ratio {name}")
    # drift unknown, intensity profiled: each expectation scaled to the pixel's counts in the window
    m0, m1 = mu0[..., win.slice], mu1[..., win.slice]
    total = np.asarray(y, np.float64).sum(-1, keepdims=True)
    out["oracle_scaled"] = score_signal(
        bad, likelihood_ratio(y, m0 * total / m0.sum(-1, keepdims=True), m1 * total / m1.sum(-1, keepdims=True)),
        kind="likelihood_ratio", anomalous="high", window=win.as_list(), title="Likelihood-ratio oracle_scaled")
    return out


def score_kind(kind, seed, size, dose, budget):
    """Rows of one kind on one seed's cube."""
    from hyperspy_cvae import crop_to_model, energy_window
    from hyperspy_cvae.baselines import rx_map
    from hyperspy_cvae.edges import resolve_window
    from hyperspy_cvae.evaluation import detection_metrics
    from hyperspy_cvae.scores import fdr_threshold, score_map, shift_analysis
    from hyperspy_cvae.scores.spatial import SCALES, pool_score_map
    from hyperspy_cvae.synthetic import bifeo3_si
    from hyperspy_cvae.synthetic.anomalies import KINDS

    clean = bifeo3_si((size, size), random_state=seed, dose=dose)
    if kind == "shift":
        strength = SHIFT_EV
        bad, truth = clean.inject_shift(SHIFT_EV, window=(690.0, 730.0), n_clusters=6, cluster_size=5,
                                        random_state=100 + seed, return_mask=True)
    else:
        strength = KINDS[kind][0]
        bad, truth = clean.inject_anomaly(kind, n_clusters=6, cluster_size=5, random_state=100 + seed,
                                          return_mask=True)
    truth = truth.data
    edge = EDGE[kind]
    window, _ = resolve_window(bad, None, edge)
    rows = []

    def add(method, smap, seconds, shift=None):
        row, _ = _metrics_row(method, strength, seed, kind, smap, truth, seconds)
        row = {k: row[k] for k in row if k not in ("dE", "case")}
        fdr_mask = fdr_threshold(smap, 0.05, shift=shift)
        fdr = fdr_mask.data
        pooled = pool_score_map(smap, fdr_mask, SCALES, 0.05, shift)[1].data  # as anomaly_map(spatial="auto")
        row.update(kind=kind, strength=strength, flagged_fraction=row["n_flagged"] / truth.size,
                   f1_fdr=detection_metrics(fdr, truth)["f1"], flagged_fraction_fdr=float(fdr.mean()),
                   f1_spatial=detection_metrics(pooled, truth)["f1"],
                   flagged_fraction_spatial=float(pooled.mean()))
        rows.append(row)

    def scores(prefix, original, rec, base_seconds):
        win = energy_window(original, window)
        for score in SCORES:
            shift = None
            with _Timer() as t:
                if score == "shift":
                    res = shift_analysis(original, rec, win)
                    smap, shift = res["score"], res["shift"]
                else:
                    smap = score_map(original, rec, win, score)
            add(f"{prefix}_{score}", smap, base_seconds + t.seconds, shift)

    with _Timer() as t_fit:
        cvae = bad.fit_cvae(edge=edge, random_state=seed, show_progressbar=False, **budget)
    with _Timer() as t_rec:
        rec = bad.cvae_decomposition(cvae=cvae, show_progressbar=False)
    scores("cvae", crop_to_model(bad, cvae), rec, t_fit.seconds + t_rec.seconds)
    lo, hi = cvae.signal_range_
    cropped = bad.isig[lo:hi]
    for poisson in (False, True):
        with _Timer() as t_pca:
            work = cropped.deepcopy()
            work.decomposition(print_info=False, normalize_poissonian_noise=poisson)
            rec = work.get_decomposition_model(3)
        scores("pca3p" if poisson else "pca3", cropped, rec, t_pca.seconds)
    with _Timer() as t_rx:
        rx = rx_map(bad, window, n_components=10)
    add("rx", rx, t_rx.seconds)
    win = energy_window(bad, window)
    for name, smap in oracle_maps(bad, kind, strength, win).items():
        add(name, smap, 0.0)
    return rows, cvae.n_steps_


def write_summary(out, rows, *, seeds, size, dose, wall, budget, steps):
    """``summary.md``: one table per kind (mean over seeds), the best PCA variant and the gaps."""
    from hyperspy_cvae.synthetic.anomalies import KINDS, NUISANCES

    methods = [m for m in dict.fromkeys(r["method"] for r in rows)]
    lines = ["# Anomalies that are not shifts: detection per kind", "",
             "Generated by `python benchmarks/anomaly_kinds.py`; do not edit by hand.", "",
             f"{size} × {size} BiFeO3 cubes (dose {dose:g}, 0.08 eV per-pixel energy jitter), 6 patches "
             f"of 5 × 5 pixels per kind (`inject_anomaly`), seeds {', '.join(map(str, seeds))}; CVAE "
             f"trained on the anomalous cube with {budget or 'the default budget'} "
             f"({', '.join(sorted(set(map(str, steps))))} optimiser steps); the edge each kind lives "
             "in is named (`edge=`) for the fit range and the scoring window. ROC-AUC and F1 (Otsu "
             "after the unimodality check, Benjamini–Hochberg at FDR 5 %, and pooled over space as "
             "`anomaly_map(spatial=\"auto\")` does, at FDR 5 %; 0 when nothing is "
             "flagged), mean over the seeds. Oracles: "
             "the Poisson likelihood ratio of the pixel's expectation with and without the change, "
             "knowing the drift (`oracle`) or not (`oracle_nodrift`), or knowing neither the drift "
             "nor the intensity (`oracle_scaled`: each expectation scaled to the pixel's counts in "
             "the window, the reference for a method that must not flag thickness changes).", ""]
    summary = []
    for kind in list(KINDS) + ["shift"]:
        kr = [r for r in rows if r["kind"] == kind]
        if not kr:
            continue
        strength = kr[0]["strength"]
        nuisance = kind in NUISANCES
        what = KINDS[kind][1] if kind in KINDS else "edge shift in eV (inject_shift, 690–730 eV)"
        lines += [f"## {kind} (strength {strength:g}: {what})"
                  + (" — a nuisance: nothing should be flagged" if nuisance else ""), "",
                  "| method | ROC-AUC | F1 (Otsu) | flagged (Otsu) | F1 (FDR 5 %) | flagged (FDR) "
                  "| F1 (spatial) | flagged (spatial) |",
                  "|---|---|---|---|---|---|---|---|"]
        stats = {}
        for m in methods:
            mr = [r for r in kr if r["method"] == m]
            if not mr:
                continue
            auc = float(np.mean([r["roc_auc"] for r in mr]))
            f1 = float(np.mean([r["f1"] for r in mr]))
            flagged = float(np.mean([r["flagged_fraction"] for r in mr]))
            f1_fdr = float(np.mean([r["f1_fdr"] for r in mr]))
            flagged_fdr = float(np.mean([r["flagged_fraction_fdr"] for r in mr]))
            f1_sp = float(np.mean([r["f1_spatial"] for r in mr]))
            flagged_sp = float(np.mean([r["flagged_fraction_spatial"] for r in mr]))
            stats[m] = (auc, f1, flagged, f1_fdr, flagged_fdr, f1_sp, flagged_sp)
            lines.append(f"| {m} | {auc:.4f} | {f1:.3f} | {100 * flagged:.2f} % | {f1_fdr:.3f} "
                         f"| {100 * flagged_fdr:.2f} % | {f1_sp:.3f} | {100 * flagged_sp:.2f} % |")
        best_pca = max((m for m in stats if m.startswith("pca")), key=lambda m: stats[m][0])
        best_cvae = max((m for m in stats if m.startswith("cvae")), key=lambda m: stats[m][0])
        summary.append((kind, stats["oracle_nodrift"][0], stats["oracle_scaled"][0], stats["cvae_shift"][0], stats["cvae_auto"][0], best_cvae,
                        stats[best_cvae][0], best_pca, stats[best_pca][0], stats["rx"][0],
                        max(max(s[1], s[3]) for m, s in stats.items() if not m.startswith("oracle")),
                        stats["cvae_shift"][2], stats["cvae_shift"][4], stats["cvae_auto"][5],
                        stats["cvae_auto"][6]))
        lines.append("")
    lines += ["## All kinds at a glance", "",
              "| kind | oracle (drift unknown) | oracle (drift and intensity unknown) | CVAE shift (default) "
              "| CVAE auto | best CVAE score | best PCA "
              "| RX | best per-pixel F1, any method and threshold | flagged by the default (Otsu / FDR) "
              "| CVAE auto, spatial: F1 (flagged) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, orc, ors, cs, ca, bc, bca, bp, bpa, rx, f1, fl, fl_fdr, f1_sp, fl_sp in summary:
        lines.append(f"| {kind} | {orc:.4f} | {ors:.4f} | {cs:.4f} | {ca:.4f} | {bc} {bca:.4f} | {bp} {bpa:.4f} | {rx:.4f} "
                     f"| {f1:.3f} | {100 * fl:.2f} % / {100 * fl_fdr:.2f} % | {f1_sp:.3f} ({100 * fl_sp:.2f} %) |")
    lines += ["", f"Environment: {platform.machine()}, {platform.python_version()}; wall time {wall:.0f} s."]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    from hyperspy_cvae.synthetic.anomalies import KINDS

    ap = argparse.ArgumentParser(prog="benchmarks/anomaly_kinds.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "results" / "anomaly_kinds"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--dose", type=float, default=150.0)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS) + ["shift"], choices=list(KINDS) + ["shift"])
    ap.add_argument("--steps", type=int, help="CVAE training budget (default: the package's)")
    ap.add_argument("--quick", action="store_true", help="48 × 48, one seed, 40 steps (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.seeds, args.steps = 48, args.seeds[:1], 40
    budget = {} if args.steps is None else {"max_steps": args.steps}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    rows, steps = [], []
    for seed in args.seeds:
        for kind in args.kinds:
            t = time.perf_counter()
            r, n = score_kind(kind, seed, args.size, args.dose, budget)
            rows += r
            steps.append(n)
            best = {x["method"]: x for x in r}
            print(f"seed {seed} {kind:13s} " + "  ".join(
                f"{m} {best[m]['roc_auc']:.4f}/{best[m]['f1']:.2f}" for m in
                ("cvae_shift", "cvae_deviance", "cvae_auto", "pca3_deviance", "pca3_auto", "rx",
                 "oracle_nodrift", "oracle_scaled")) + f"  ({time.perf_counter() - t:.0f} s)", flush=True)
            _write_csv(out / "metrics.csv", rows, COLUMNS)
            write_summary(out, rows, seeds=args.seeds, size=args.size, dose=args.dose,
                          wall=time.perf_counter() - t0, budget=budget, steps=steps)
    print(f"wrote {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

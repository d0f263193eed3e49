"""The detector on measured EELS maps and line scans (``../shared/realdata``).

For every measured map and line scan with a core-loss edge:

1. the untouched data, as a new user runs it: ``s.fit_cvae(edge=...)`` then
   ``s.anomaly_map("cvae", edge=...)`` with no other argument; a figure with the score map, its
   histogram, example spectra with their reconstruction, what the detector saw (labels) and
   how each pixel differs (``result.describe()``);
2. known changes injected into the real spectra, so that they keep their real noise: edge shifts
   of 0.3, 0.5 and 1 eV in small patches (segments on a line scan), and a 30 % L3/L2 ratio change
   where the edge has L3 and L2 at least 3 eV apart; ROC-AUC and F1 (at each method's own Otsu
   threshold) for the CVAE (refitted on each injected copy, as a user would), PCA with 2–5
   components (shift, deviance and any-change scores) and RX, with the time of each.

Usage::

    python benchmarks/real_data.py [--out benchmarks/results/real] [--quick]

``--quick`` runs the first map with the 0.5 eV shift only and a 400-step training (the fast test
does). Where ``../shared/realdata`` is absent
it says so and exits cleanly (status 0).
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REALDATA = HERE.parent.parent / "shared" / "realdata"

#: (file, edge, note). Files without a core-loss edge (the low-loss map) are listed as skipped.
MAPS = [
    ("si2d/GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3", "Si_L2,3", "Ge solar cell, vacuum rows, glitches"),
    ("si2d/SiL_SI_20x20_50-357eV_20nmprobe.dm3", "Si_L2,3", "Si L2,3 map"),
    ("si2d/SiL_SI_16x16_50-357eV_25nm.dm3", "Si_L2,3", "Si L2,3 map"),
    ("si2d/SI_16x16_28-540eV.dm3", "Si_L2,3", "Si/Al L, C K map"),
    ("si2d/CuZn_EELS_SI_40x50_700-1988eV.hspy", "Cu_L2,3", "Cu/ZnO, 8 eV/channel"),
    ("linescans/LSMO_linescan.hspy", "Mn_L2,3", "LSMO line scan"),
    ("linescans/LSMO_STO_linescan.hspy", "Ti_L2,3", "LSMO/STO interface line scan"),
]
SKIPPED = [("si2d/lowloss_SI_16x16_-30-277eV.dm3", "low-loss map: no core-loss edge")]
SHIFTS = (0.3, 0.5, 1.0)
RATIO = 1.3
PCA_K = (2, 3, 4, 5)
#: The quick run's training (a smoke run of the pipeline, not of the model's quality).
QUICK_BUDGET = {"max_steps": 400, "validation_every": 25}


def load(path):
    import hyperspy.api as hs

    s = hs.load(str(path))
    s.set_signal_type("CVAE_EELS")
    if s.data.dtype != np.float32:
        s.data = s.data.astype(np.float32)
    return s


def injection_mask(nav_shape, seed):
    """3 square patches (2D) or segments (line scans) covering ~5 % of the pixels."""
    from hyperspy_cvae.synthetic.inject import cluster_mask

    if len(nav_shape) == 1:
        n = nav_shape[0]
        size = max(1, n // 12)
        return cluster_mask((size, n), 3 if n >= 20 else 2, size, random_state=seed)[0]
    side = max(2, min(nav_shape) // 7)
    return cluster_mask(nav_shape, 3, side, random_state=seed)


def inject_ratio(s, edge, factor, mask):
    """A copy of ``s`` with the L3 white line (background-subtracted) scaled by ``factor`` in the
    pixels of ``mask``: from 2 eV before the L3 onset to midway to L2, with 1 eV cosine ramps. The
    background is a power law fitted to 10 eV before the onset in each spectrum."""
    from hyperspy_cvae.edges import edge_onsets

    on = edge_onsets(edge)
    l3, l2 = on["L3"], on["L2"]
    e = s.axes_manager.signal_axes[0].axis
    x = np.array(s.data, dtype=np.float64)
    sel = x[mask]
    pre = (e >= l3 - 12.0) & (e < l3 - 2.0)
    y = np.clip(sel[:, pre], 1e-3, None)
    coef = np.polyfit(np.log(e[pre]), np.log(y).T, 1)
    bg = np.exp(coef[1][:, None] + coef[0][:, None] * np.log(e)[None])
    lo, hi = l3 - 2.0, (l3 + l2) / 2.0
    w = np.clip(np.minimum(e - lo, hi - e) / 1.0, 0.0, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * w)
    sel = sel + (factor - 1.0) * np.clip(sel - bg, 0.0, None) * w[None]
    x[mask] = sel
    return s._deepcopy_with_new_data(x.astype(np.float32))


def metrics(score, truth, result):
    from sklearn.metrics import f1_score, roc_auc_score

    z = np.asarray(score.data, float).ravel()
    t = np.asarray(truth, bool).ravel()
    direction = score.metadata.get_item("CVAE.score.anomalous", "high")
    z = -z if direction == "low" else z
    z = np.where(np.isfinite(z), z, np.nanmin(z[np.isfinite(z)]) if np.isfinite(z).any() else 0.0)
    auc = float(roc_auc_score(t, z)) if 0 < t.sum() < t.size else float("nan")
    flagged = np.asarray(result.mask.data, bool).ravel() if result.mask is not None else np.zeros_like(t)
    return auc, float(f1_score(t, flagged, zero_division=0.0)), int(flagged.sum())


def score_all(s, edge, truth, seed, budget=None):
    """Rows (method, score, auc, f1, n_flagged, seconds) for the CVAE, PCA(k) and RX on ``s``."""
    rows = []
    t0 = time.perf_counter()
    s.fit_cvae(edge=edge, random_state=seed, show_progressbar=False, **(budget or {}))
    fit_s = time.perf_counter() - t0
    for method, k in [("cvae", 3)] + [("pca", k) for k in PCA_K]:
        for score in ("shift", "shift higher", "shift tilt", "deviance", "auto"):
            if score == "shift tilt" and method == "pca" and k != 3:
                continue
            t0 = time.perf_counter()
            label = "CVAE" if method == "cvae" else f"PCA({k})"
            # "shift higher": the shift score told the sign of the injected shifts (one-sided)
            # "shift tilt": a smooth background slope profiled out as well (nuisance="tilt")
            how = {"shift higher": dict(score="shift", direction="higher"),
                   "shift tilt": dict(score="shift", nuisance="tilt")}.get(score, dict(score=score))
            try:
                res = s.anomaly_map(method, edge=edge, n_components=k, show_progressbar=False, **how)
            except ValueError as err:  # "auto" on a window too narrow for its nuisances
                print(f"  {label} {score}: {err}")
                rows.append((label, score, float("nan"), float("nan"), 0, time.perf_counter() - t0))
                continue
            extra = fit_s if (method == "cvae" and score == "shift") else 0.0
            rows.append((label, score, *metrics(res.score, truth, res), extra + time.perf_counter() - t0))
            if score == "shift" and k == 3:  # the same score pooled over space (anomaly_map(spatial="auto"))
                t0 = time.perf_counter()
                res = s.anomaly_map(method, edge=edge, n_components=k, spatial="auto", show_progressbar=False)
                pooled = res.pooled._deepcopy_with_new_data(np.abs(np.asarray(res.pooled.data, float)))
                rows.append((label, "shift pooled", *metrics(pooled, truth, res), time.perf_counter() - t0))
    t0 = time.perf_counter()
    res = s.anomaly_map("rx", edge=edge)
    rows.append(("RX(3)", "rx", *metrics(res.score, truth, res), time.perf_counter() - t0))
    return rows


def untouched(s, edge, name, out, budget=None):
    """The new user's run on the untouched data, and its figure (``budget``: training arguments
    other than the defaults, for the quick run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = time.perf_counter()
    s.fit_cvae(edge=edge, random_state=0, show_progressbar=False, **(budget or {}))
    res = s.anomaly_map("cvae", edge=edge, show_progressbar=False)
    seconds = time.perf_counter() - t0
    stem = pathlib.Path(name).stem
    fig = res.plot(path=str(out / f"{stem}_result.png"))
    plt.close(fig)
    fig = res.plot_labels(path=str(out / f"{stem}_labels.png"))
    plt.close(fig)
    fig = res.describe().plot(path=str(out / f"{stem}_describe.png"))
    plt.close(fig)
    counts = res.labels.metadata.CVAE.labels.counts.as_dictionary()
    pooled = {m: int(s.anomaly_map(m, edge=edge, n_components=3, spatial="auto",
                                   show_progressbar=False).mask.data.sum()) for m in ("cvae", "pca")}
    return {"file": name, "edge": edge, "window": res.window.label,
            "fit_range": s.metadata.CVAE.model.signal_range, "shard": int(s.cvae.shard_size_),
            "seconds": seconds, "flagged": int(res.mask.data.sum()), **counts,
            "pooled_cvae": pooled["cvae"], "pooled_pca": pooled["pca"], "labels": res.labels}


def run(out, quick=False):
    from hyperspy_cvae.edges import edge_onsets, resolve_window

    out.mkdir(parents=True, exist_ok=True)
    maps = MAPS[:1] if quick else MAPS
    budget = QUICK_BUDGET if quick else None
    detail, summary, seen = [], [], []
    for name, edge, note in maps:
        path = REALDATA / name
        if not path.exists():
            print(f"skip {name}: not in {REALDATA}")
            continue
        s = load(path)
        print(f"{name}: {s}", flush=True)
        seen.append(untouched(s, edge, name, out, budget))
        nav = tuple(s.axes_manager.navigation_shape[::-1])
        cases = [(f"shift {dE:g} eV", dE) for dE in SHIFTS]
        onsets = edge_onsets(edge)
        window, _ = resolve_window(s, edge=edge)
        if "L3" in onsets and "L2" in onsets and onsets["L2"] - onsets["L3"] >= 3.0:
            cases.append((f"L3/L2 x{RATIO:g}", None))
        if quick:
            cases = [c for c in cases if c[1] == 0.5]
        for ci, (case, dE) in enumerate(cases):
            truth = injection_mask(nav, seed=ci)
            if dE is not None:
                bad = s.inject_shift(dE, window=window, mask=truth)
            else:
                bad = inject_ratio(s, edge, RATIO, truth)
            rows = score_all(bad, edge, truth, seed=0, budget=budget)
            for method, score, auc, f1, n, sec in rows:
                detail.append({"file": name, "edge": edge, "case": case, "n_true": int(truth.sum()),
                               "method": method, "score": score, "roc_auc": round(auc, 4),
                               "f1": round(f1, 4), "n_flagged": n, "seconds": round(sec, 2)})
            best = lambda pred: max((r for r in rows if pred(r)), key=lambda r: np.nan_to_num(r[2], nan=-1))  # noqa: E731
            cvae, pca, rx = best(lambda r: r[0] == "CVAE" and r[1] == "shift"), \
                best(lambda r: r[0].startswith("PCA") and r[1] in ("shift", "deviance", "auto")), rows[-1]
            auto = {r[0]: r[2] for r in rows if r[1] == "auto"}
            pooled = {r[0]: r[3] for r in rows if r[1] == "shift pooled"}
            higher = {r[0]: r[2] for r in rows if r[1] == "shift higher"} if dE is not None else {}
            tilt = {r[0]: r[2] for r in rows if r[1] == "shift tilt"}
            summary.append((name, edge, case, int(truth.sum()), cvae[2], cvae[3], pca[0] + " " + pca[1],
                            pca[2], rx[2], auto["CVAE"], auto["PCA(3)"], pooled["CVAE"], pooled["PCA(3)"],
                            higher.get("CVAE", float("nan")), higher.get("PCA(3)", float("nan")),
                            tilt["CVAE"], tilt["PCA(3)"]))
            print(f"  {case}: CVAE {cvae[2]:.3f}/{cvae[3]:.2f}  best PCA {pca[2]:.3f} ({pca[0]} {pca[1]})  "
                  f"RX {rx[2]:.3f}", flush=True)
        write(out, detail, summary, seen)  # after every file: a partial run leaves its results
    return detail, summary, seen


def write(out, detail, summary, seen):
    if detail:
        with open(out / "real_data.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(detail[0]))
            w.writeheader()
            w.writerows(detail)
    L = ["# The detector on measured data", "",
         "Generated by `python benchmarks/real_data.py` from `../shared/realdata` (one seed; CPU).", "",
         "## Untouched maps: `s.fit_cvae(edge=e)`, `s.anomaly_map('cvae', edge=e)`", "",
         "`pooled`: pixels flagged by `anomaly_map(..., spatial='auto')` (the shift score pooled over "
         "space, FDR 5 %) on the untouched map, with the CVAE and with PCA(3).", "",
         "| file | edge | window | fit range (eV) | shard | s | flagged | bulk | anomalous | outlier | no edge "
         "| pooled CVAE | pooled PCA(3) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in seen:
        fr = "–".join(f"{v:.1f}" for v in r["fit_range"])
        L.append(f"| {r['file']} | {r['edge']} | {r['window']} | {fr} | {r['shard']} | {r['seconds']:.1f} | "
                 f"{r['flagged']} | {r['bulk']} | {r['anomalous']} | {r['outlier']} | {r['no edge']} | "
                 f"{r['pooled_cvae']} | {r['pooled_pca']} |")
    L += ["", "Skipped: " + "; ".join(f"{n} ({why})" for n, why in SKIPPED), "",
          "## Injected changes (ROC-AUC; F1 at the method's own threshold)", "",
          "CVAE: default shift score, refitted on each injected copy. Best PCA: the best of PCA(2–5) "
          "with the shift, deviance or any-change (`auto`) score, chosen after the fact (an oracle "
          "choice). `auto`: `score=\"auto\"` of the CVAE and of PCA(3). `pooled F1`: the shift score "
          "of the CVAE and of PCA(3) pooled over space (`spatial=\"auto\"`, FDR 5 %). `higher`: the "
          "shift score told the sign of the injected shift (`direction=\"higher\"`, one-sided) for the "
          "CVAE and PCA(3); not part of the best-PCA choice. `tilt`: the two-sided shift score with a "
          "smooth background slope profiled out as well (`nuisance=\"tilt\"`), CVAE and PCA(3); not part "
          "of the best-PCA choice. All rows in `real_data.csv`.", "",
          "| file | edge | case | true px | CVAE AUC | CVAE F1 | best PCA | PCA AUC | RX AUC | CVAE auto | PCA(3) auto "
          "| CVAE pooled F1 | PCA(3) pooled F1 | CVAE higher | PCA(3) higher | CVAE tilt | PCA(3) tilt |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, edge, case, n, auc, f1, pname, pauc, rauc, cauto, pauto, cpool, ppool, chi, phi, cti, pti in summary:
        extra = " | ".join("–" if not np.isfinite(v) else f"{v:.3f}" for v in (chi, phi, cti, pti))
        L.append(f"| {name} | {edge} | {case} | {n} | {auc:.3f} | {f1:.2f} | {pname} | {pauc:.3f} | {rauc:.3f} | "
                 f"{cauto:.3f} | {pauto:.3f} | {cpool:.2f} | {ppool:.2f} | {extra} |")
    (out / "summary.md").write_text("\n".join(L) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "results" / "real"))
    p.add_argument("--quick", action="store_true", help="the first map and one case only")
    args = p.parse_args(argv)
    if not REALDATA.exists():
        print(f"The measured data are not here ({REALDATA} is absent): nothing to benchmark.")
        return 0
    warnings.filterwarnings("ignore")
    run(pathlib.Path(args.out), quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

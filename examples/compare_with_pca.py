"""Compare the 3D-CVAE with HyperSpy PCA: detection, denoising, and re-use of a saved model.

1. Synthetic BiFeO3 spectrum image with a known noise-free truth; a ΔE = 2.5 eV Fe L2,3
   shift is injected into 6 patches of 6 × 6 pixels.
2. The CVAE is trained on the cube itself (unsupervised); CVAE, PCA(3) and PCA(5) are
   scored by PCC in 690–730 eV and shown side by side (``compare.png``: PCC map with
   detected / missed pixels, PCC histogram with the Otsu threshold and the unimodality
   verdict, a normal and an anomalous spectrum with each reconstruction).
3. Denoising: every reconstruction is a denoised spectrum image; its mean squared error
   against the noise-free truth is printed and plotted (``denoising.png``), with the CVAE's
   reconstruction refitted per pixel (``refine_reconstruction``: background and edge
   intensities and a drift).
4. The model is saved next to the data and re-applied, with one call, to a second
   acquisition of the same material (new noise, new anomalies).
Also writes the training history (``history.png``).

    python examples/compare_with_pca.py                  # 192 × 192 cube, a few minutes
    python examples/compare_with_pca.py --quick          # 64 × 64 cube, < 1 min (CI)
"""

import argparse
import json
import pathlib
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import hyperspy_cvae  # noqa: E402
from hyperspy_cvae.synthetic import bifeo3_si  # noqa: E402
from hyperspy_cvae.evaluation import denoising_mse  # noqa: E402
from hyperspy_cvae.baselines import pca_reconstruction  # noqa: E402
from hyperspy_cvae.evaluation import detection_metrics  # noqa: E402
from hyperspy_cvae.plotting import plot_history  # noqa: E402
from hyperspy_cvae.refine import refine_reconstruction  # noqa: E402

WINDOW = (690.0, 730.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cube, short training (CI)")
    ap.add_argument("--dE", type=float, default=2.5, help="injected shift in eV")
    ap.add_argument("--out", default=".", help="directory for the PNGs and the saved model")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, epochs = (64, 8) if args.quick else (192, 20)
    cube = dict(offset=600.0, size=600) if args.quick else {}

    # 1. data with a known truth --------------------------------------------------
    s, expected = bifeo3_si((size, size), random_state=0, return_expected=True, **cube)
    n_clusters = 3 if args.quick else 6
    bad, truth = s.inject_shift(args.dE, WINDOW, n_clusters=n_clusters, random_state=1,
                                return_mask=True)
    truth_cube = expected.inject_shift(args.dE, WINDOW, mask=truth)  # noise-free anomalous cube
    print(f"{bad}: {int(truth.data.sum())} anomalous pixels, ΔE = {args.dE} eV")

    # 2. detection ------------------------------------------------------------------
    t0 = time.perf_counter()
    cvae = bad.fit_cvae(signal_range=(660.0, 760.0), epochs=epochs, random_state=0)
    print(f"CVAE fit: {time.perf_counter() - t0:.1f} s, {len(cvae.history_['train_loss'])} epochs")
    fig, results = bad.plot_comparison(
        methods=("cvae", "pca(3)", "pca(5)"), window=WINDOW, truth=truth,
        suptitle=f"PCC in {WINDOW[0]:g}–{WINDOW[1]:g} eV, ΔE = {args.dE} eV",
        path=out / "compare.png")
    plt.close(fig)
    ax = plot_history(cvae)
    ax.set_title("CVAE training history", fontsize=9)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "history.png", dpi=110)
    plt.close(ax.figure)

    print(f"{'method':8s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'ROC-AUC':>8s} {'flagged':>8s}")
    for label, (pcc, mask) in results.items():
        m = detection_metrics(mask, truth, pcc)
        print(f"{label:8s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} "
              f"{m['roc_auc']:8.4f} {m['n_flagged']:8d}")

    # 3. denoising: MSE against the noise-free truth ----------------------------------
    recs = {label: res.reconstruction for label, res in results.items()}
    recs["PCA(4)"] = pca_reconstruction(bad, 4)
    # each pixel's CVAE reconstruction refitted: background and edge intensities and a drift
    recs["CVAE refitted"] = refine_reconstruction(bad, recs["CVAE"], edge="Fe_L2,3")[0]
    mse = {"raw data": denoising_mse(bad.isig[660.0:760.0], truth_cube, WINDOW)}
    for label in ("CVAE", "CVAE refitted", "PCA(3)", "PCA(4)", "PCA(5)"):
        mse[label] = denoising_mse(recs[label], truth_cube, WINDOW)
    recs_all = dict(recs, **{"raw data": bad.isig[660.0:760.0]})
    mse_anom = {label: float(denoising_mse(recs_all[label], truth_cube, WINDOW, per_pixel=True).data[
        truth.data].mean()) for label in mse}
    print(f"denoising MSE vs truth in {WINDOW[0]:g}–{WINDOW[1]:g} eV (counts², all / anomalous pixels):")
    for label, v in mse.items():
        print(f"  {label:8s} {v:10.2f} {mse_anom.get(label, float('nan')):10.2f}")
    _plot_denoising(bad, truth_cube, recs, mse, mse_anom, truth, out / "denoising.png")
    figures = {"dE": args.dE, "quick": args.quick, "size": size, "epochs": epochs,
               "denoising_mse": {k: float(v) for k, v in mse.items()}}
    (out / "compare_with_pca.json").write_text(json.dumps(figures, indent=1) + "\n")  # quoted in the README

    # 4. save the model next to the data; re-apply it to a new acquisition -------------
    ckpt = out / "bfo_cvae.pt"
    cvae.save(ckpt)
    s2 = bifeo3_si((size, size), random_state=10, **cube)
    bad2, truth2 = s2.inject_shift(args.dE, WINDOW, n_clusters=n_clusters, random_state=11,
                                   return_mask=True)
    bad2.load_cvae(ckpt)                                 # checks the energy axis
    pcc2, mask2 = bad2.anomaly_map("cvae", window=WINDOW, score="pcc")
    m = detection_metrics(mask2, truth2, pcc2)
    print(f"re-applied {ckpt.name} (sha256 {pcc2.metadata.CVAE.score.model_checksum[:12]}…) to a new "
          f"acquisition: F1 {m['f1']:.3f}, ROC-AUC {m['roc_auc']:.4f}")
    for name in ("compare.png", "denoising.png", "history.png", "compare_with_pca.json"):
        print(f"wrote {out / name}")


def _plot_denoising(bad, truth_cube, recs, mse, mse_anom, truth, path):
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(13.5, 3.8), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    iy, ix = (int(v[0]) for v in np.nonzero(truth.data))  # first anomalous pixel
    ny, nx = truth.data.shape
    jy, jx = ny // 2 + 3, nx // 2 + 3
    while truth.data[jy, jx]:
        jx = (jx + 7) % nx
    colours = {"CVAE": "tab:red", "CVAE refitted": "tab:orange", "PCA(3)": "tab:blue", "PCA(5)": "tab:green"}
    for ax, (py, px), kind in ((a0, (jy, jx), "normal"), (a1, (iy, ix), "anomalous")):
        e = bad.isig[675.0:745.0].axes_manager.signal_axes[0].axis
        ax.plot(e, bad.isig[675.0:745.0].inav[px, py].data, color="0.6", lw=0.7, label="noisy data")
        ax.plot(e, truth_cube.isig[675.0:745.0].inav[px, py].data, color="k", lw=1.8, label="noise-free truth")
        for label, col in colours.items():
            r = recs[label].isig[675.0:745.0]
            ax.plot(r.axes_manager.signal_axes[0].axis, r.inav[px, py].data, color=col, lw=1.1,
                    label=label)
        ax.axvspan(*WINDOW, color="0.92", zorder=0, lw=0)
        ax.set_title(f"{kind} pixel [{py}, {px}]", fontsize=9)
        ax.set_xlabel("Energy loss (eV)")
        ax.set_ylabel("Counts")
        ax.legend(fontsize=7, frameon=False)
    labels = list(mse)
    x = np.arange(len(labels))
    a2.bar(x - 0.2, [mse[k] for k in labels], 0.4, color="0.5", label="all pixels")
    a2.bar(x + 0.2, [mse_anom.get(k, np.nan) for k in labels], 0.4, color="tab:red",
           label="anomalous pixels")
    a2.set_xticks(x, [k.replace(" ", "\n") for k in labels], fontsize=8)
    a2.set_yscale("log")
    a2.set_ylabel("MSE vs truth (counts²)")
    a2.set_title(f"Denoising error, {WINDOW[0]:g}–{WINDOW[1]:g} eV\n(the CVAE rebuilds the bulk: "
                 "at anomalies its error is the anomaly)", fontsize=8)
    a2.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

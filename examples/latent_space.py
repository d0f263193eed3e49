"""Latent space of the 3D-CVAE: latent maps, a latent anomaly score, phase mapping.

1. A BiFeO3 film with a subtle ΔE = 1 eV Fe L2,3 shift in a few 12 × 12 pixel regions:
   the latent means of the shards (``s.cvae_results["latent_map"]``, a Signal2D stack
   on the shard grid, browsable with ``.plot()``) are drawn in ``latent_maps.png``; the
   latent Mahalanobis score (distance of each shard's latent mean from the bulk) is
   compared with the PCC score in ``mahalanobis.png``; the latent cosine similarity of
   clean/anomalous shard pairs (the paper's Fig. 5) is in ``latent_similarity.png``.
2. A film on a SrTiO3 substrate: k-means on the latent means, with the number of phases
   chosen by silhouette, gives a phase map; the decoded cluster centres are the phases'
   spectra (``phase_map.png``).
3. Every result is saved to .hspy and reloaded with ``hs.load``, metadata included.

    python examples/latent_space.py                  # 128 × 128 cubes, a few minutes
    python examples/latent_space.py --quick          # 64 × 64 cubes, < 1 min (CI)
"""

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hyperspy_cvae.synthetic import bifeo3_si  # noqa: E402
from hyperspy_cvae.synthetic import cluster_mask  # noqa: E402
from hyperspy_cvae.latent import latent_pair_similarity, phase_means  # noqa: E402
from hyperspy_cvae.plotting import plot_latent_similarity  # noqa: E402
from hyperspy_cvae.plotting import (plot_latent_maps, plot_phase_map, plot_score_histogram,  # noqa: E402
                                    plot_score_map)
from hyperspy_cvae.evaluation import detection_metrics  # noqa: E402
from hyperspy_cvae.scores import threshold_anomalies  # noqa: E402

WINDOW = (690.0, 730.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cubes, short training (CI)")
    ap.add_argument("--dE", type=float, default=1.0, help="injected shift in eV")
    ap.add_argument("--out", default=".", help="directory for the PNGs and .hspy files")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, epochs = (64, 6) if args.quick else (128, 20)
    cube = dict(offset=600.0, size=600)
    fit = dict(signal_range=(660.0, 760.0), epochs=epochs, random_state=0)

    # 1. film with subtle shifts in 12 × 12 regions ------------------------------------
    clean = bifeo3_si((size, size), random_state=0, **cube)
    truth_arr = cluster_mask((size, size), 2 if args.quick else 5, 12, random_state=3)
    bad, truth = clean.inject_shift(args.dE, WINDOW, mask=truth_arr, return_mask=True)
    cvae = bad.fit_cvae(**fit)
    pcc, mask = bad.anomaly_map("cvae", window=WINDOW, score="pcc")  # also fills bad.cvae_results
    latent_map = bad.cvae_results["latent_map"]           # latent_map.plot() to browse
    print(f"latent map: {latent_map} (shard grid, stride {latent_map.metadata.CVAE.latent.stride} px)")
    plt.close(plot_latent_maps(latent_map, n=8, path=out / "latent_maps.png"))

    maha = bad.latent_mahalanobis(stride=4)               # finer shard grid than the default 12
    maha_mask = threshold_anomalies(maha)
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 7.6))
    figures = {"dE": args.dE, "quick": args.quick}
    for col, (score, m, name, key) in enumerate(((pcc, mask, "PCC (reconstruction)", "pcc"),
                                                 (maha, maha_mask, "latent Mahalanobis", "mahalanobis"))):
        met = detection_metrics(m, truth, score)
        figures[f"{key}_roc_auc"] = met["roc_auc"]
        print(f"{name:22s} ROC-AUC {met['roc_auc']:.4f}  PR-AUC {met['pr_auc']:.4f}  F1@Otsu {met['f1']:.3f}")
        plot_score_map(score, m, truth, ax=axes[0, col],
                       title=f"{name}: ROC-AUC {met['roc_auc']:.3f}")
        plot_score_histogram(score, m, truth, ax=axes[1, col])
    fig.suptitle(f"ΔE = {args.dE:g} eV in 12 × 12 px regions (white: detected, red: missed, "
                 "orange: false alarm)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "mahalanobis.png", dpi=110)
    plt.close(fig)

    sim, _ = latent_pair_similarity(cvae, clean, bad, n_pairs=24 if args.quick else 64, truth=truth)
    ax = plot_latent_similarity(sim)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "latent_similarity.png", dpi=110)
    plt.close(ax.figure)

    # 2. film on a substrate: phase map from the latent space -----------------------------
    two = bifeo3_si((size, size), substrate_fraction=0.35, random_state=2, **cube)
    two.fit_cvae(**fit)
    labels, centres = two.cvae_phase_map(stride=8)        # K chosen by silhouette
    info = labels.metadata.CVAE.phase_map
    sil = ", ".join(f"K={k}: {v:.2f}" for k, v in zip(info.silhouette_k, info.silhouette))
    substrate = np.zeros((size, size), bool)
    substrate[size - int(round(0.35 * size)):] = True
    # Each cluster counts as the phase most of its pixels belong to (K may exceed 2: shards
    # straddling the interface form clusters of their own).
    is_sub = {k: substrate[labels.data == k].mean() > 0.5 for k in np.unique(labels.data)}
    predicted = np.vectorize(is_sub.get)(labels.data)
    agree = np.mean(predicted == substrate)
    figures.update(phase_k=int(info.n_clusters), phase_agreement=float(agree))
    print(f"phase map: K = {info.n_clusters} (silhouette {sil}); agreement with the true "
          f"substrate {agree:.1%} (each cluster assigned to its majority phase)")
    means = phase_means(two, labels, like=centres)       # measured mean spectrum per phase
    plt.close(plot_phase_map(labels, centres, means=means, path=out / "phase_map.png"))

    # 3. results persist ---------------------------------------------------------------------
    for name, sig in (("pcc", pcc), ("mask", mask), ("latent_mahalanobis", maha),
                      ("latent_map", latent_map), ("phases", labels), ("phase_centres", centres)):
        sig.save(out / f"{name}.hspy", overwrite=True)
    back = hs.load(out / "pcc.hspy")
    sc = back.metadata.CVAE.score
    print(f"reloaded pcc.hspy: method {sc.method}, window {sc.window}, model {sc.model_checksum[:12]}…, "
          f"hyperspy-cvae {sc.package_version}, threshold {hs.load(out / 'mask.hspy').metadata.CVAE.threshold.threshold:.3f}")
    (out / "latent_space.json").write_text(json.dumps(figures, indent=1) + "\n")  # quoted in the README
    for name in ("latent_maps.png", "mahalanobis.png", "latent_similarity.png", "phase_map.png",
                 "latent_space.json"):
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()

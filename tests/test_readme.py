"""Every measured figure the README quotes outside the generated benchmark block comes from a
committed, generated file; these tests check the README against those files (and the model size
against the network itself)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _load(rel):
    return json.loads((ROOT / rel).read_text())


def test_memory_figures_come_from_memory_json():
    mem = _load("benchmarks/results/memory.json")
    nz, ny, ne = mem["cube_shape"]
    assert f"a {nz} × {ny} × {ne} {mem['cube_dtype']} cube ({mem['cube_gib']:.1f} GiB; " \
           f"{mem['cube_on_disk_gib']:.2f} GiB compressed .zspy), {mem['cube_over_budget']:.1f} × " \
           f"the {mem['budget_mib']} MiB" in README
    assert f"peak resident memory {mem['peak_rss_increase_mib']} MiB above the process baseline" in README
    assert mem["within_budget"] and mem["detection"]["f1"] == 1.0 and "(F1 = 1)" in README


def test_model_size_is_the_networks():
    from hyperspy_cvae.cvae.model import CVAE3D, count_macs

    fe = count_macs(CVAE3D(334))       # 660–760 eV at 0.3 eV/channel
    whole = count_macs(CVAE3D(1200))   # the whole 420–780 eV axis
    assert (f"**{fe['parameters']:,} parameters, {fe['macs_per_spectrum']:,.0f} multiply-adds per "
            f"spectrum**") in README
    assert (f"would need {whole['parameters'] / 1e6:.1f} M parameters / "
            f"{whole['macs_per_spectrum'] / 1e6:.2f} M MACs") in README


def test_latent_space_figures_come_from_the_example():
    fig = _load("docs/images/latent_space.json")
    assert fig["quick"]
    assert (f"PCC ROC-AUC {fig['pcc_roc_auc']:.2f}, latent Mahalanobis "
            f"{fig['mahalanobis_roc_auc']:.2f}") in README
    assert f"silhouette picks K = {fig['phase_k']}" in README
    assert f"{fig['phase_agreement']:.0%} of the pixels agree with the true substrate" in README


def test_denoising_figures_come_from_the_example():
    fig = _load("docs/images/compare_with_pca.json")
    mse = fig["denoising_mse"]
    assert fig["quick"]
    quoted = (f"raw data {mse['raw data']:.0f}, CVAE {mse['CVAE']:.0f}, PCA(3) {mse['PCA(3)']:.1f}, "
              f"PCA(4) {mse['PCA(4)']:.1f}, PCA(5) {mse['PCA(5)']:.1f}")
    assert quoted in README
    assert f"({fig['size']} × {fig['size']}, {fig['epochs']} epochs" in README


@pytest.mark.parametrize("stale", ["python -m hyperspy_cvae.benchmark", "hyperspy_cvae.scoring",
                                   "hyperspy_cvae.data import", "hyperspy-cvae-benchmark",
                                   "return_results=True"])
def test_no_stale_api_in_readme(stale):
    assert stale not in README


def test_budget_check_figures_come_from_the_two_runs():
    import csv

    def rows(rel):
        with open(ROOT / rel, newline="") as fh:
            return {(r["method"], r["dE"], r["case"]): float(r["roc_auc"])
                    for r in csv.DictReader(fh) if r["seed"] == "0"}

    old, new = rows("benchmarks/results/metrics.csv"), rows("benchmarks/results/budget_check/metrics.csv")
    shift = [k for k in new if k[0] in ("cvae_self_shift", "cvae_clean_shift") and k[2] != "null"]
    assert len(shift) >= 40 and all(k in old for k in shift)
    assert all(abs(new[k] - old[k]) <= 0.002 for k in shift)  # "within 0.002 ... in every case"
    het = ("cvae_self_shift", "0.5", "heterogeneous")
    assert f"({old[het]:.4f} → {new[het]:.4f} on\nthe film/substrate cube at 0.5 eV)" in README
    others = [k for k in new if k[0].startswith("cvae") and k[0].endswith(("_pcc", "_deviance"))
              and k[2] == "heterogeneous" and k in old]
    worst = max(old[k] - new[k] for k in others)
    assert f"PCC and deviance lose up to {worst:.3f}" in README


def test_speed_figures_come_from_scaling_csv():
    import csv

    with open(ROOT / "benchmarks/results/scaling.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))

    def at(n, step):
        return next(r for r in rows if r["series"] == "nav" and r["ny"] == str(n) and r["step"] == step)

    am, pca, fit = at(192, "anomaly_map"), at(192, "pca"), at(192, "fit")
    assert f"192² × {fit['fit_channels']}\nchannels: `anomaly_map(\"cvae\")` {int(am['spectra_per_second']):,} spectra/s, " \
           f"{float(am['seconds']) / float(pca['seconds']):.1f} × HyperSpy PCA's time; `fit_cvae()` " \
           f"{float(fit['seconds']):.0f} s\n({fit['steps']} optimiser steps" in README
    fits = [float(r["seconds"]) for r in rows if r["series"] == "nav" and r["step"] == "fit"]
    assert f"{min(fits):.0f}–{max(fits):.0f} s on every map from 64² to 512²" in README

"""The benchmark's quick mode, as CI runs it: files exist, parse, and the CVAE beats PCA(3).

Also: the README's benchmark block is the committed run's ``headline.md``, rendered again from the
committed CSV files (so its numbers cannot drift from the run).
"""

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import benchmark_module

benchmark = benchmark_module("benchmark")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert benchmark.main(["--quick", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_quick_outputs_exist_and_parse(quick_run):
    rows = benchmark.read_metrics(quick_run / "metrics.csv")
    with open(quick_run / "metrics.csv", newline="") as fh:
        assert next(csv.reader(fh)) == benchmark.COLUMNS
    methods = {r["method"] for r in rows}
    for m in ("cvae_self_pcc", "cvae_self_deviance", "cvae_self_shift", "cvae_clean_pcc", "pca3_pcc",
              "pca4p_pcc", "pca5_deviance", "pca3p_shift", "rx", "oracle", "oracle_nodrift",
              "pcc_oracle", "ideal_pcc", "ideal_shift"):
        assert m in methods
    assert {r["case"] for r in rows} == {"null", "patches6"}
    for r in rows:
        p, rec = r["precision"], r["recall"]
        # F1 is the harmonic mean of the row's precision and recall; nothing flagged, nothing found.
        assert r["f1"] == pytest.approx(2 * p * rec / (p + rec) if p + rec else 0.0, abs=1e-5), r
        if r["n_flagged"] == 0:
            assert rec == 0, r
        if r["case"] == "null":
            # No anomalies: nothing to recall, no ranking metric.
            assert rec == 0 and np.isnan(r["roc_auc"]) and np.isnan(r["f1_best"]), r
        else:
            assert np.isfinite([r["roc_auc"], r["pr_auc"], r["f1_best"]]).all(), r
            # The best threshold (chosen with the truth) is at least as good as Otsu's.
            assert r["f1"] - 1e-9 <= r["f1_best"], r
    for name in ("summary.md", "f1_auc_vs_shift.png", "pcc_histograms.png", "score_maps.png",
                 "pr_curves.png", "latent_similarity.png", "shift_map.png", "shift_error.csv",
                 "denoising.csv", "speed.csv", "headline.md"):
        assert (quick_run / name).stat().st_size > 0, name
    summary = (quick_run / "summary.md").read_text()
    assert "Targets" in summary and "published" in summary.lower()
    assert (quick_run / "headline.md").read_text() == benchmark.headline(quick_run)


@pytest.mark.slow
def test_quick_cvae_beats_pca3_at_4ev(quick_run):
    rows = benchmark.read_metrics(quick_run / "metrics.csv")

    def auc(method):
        v = [r["roc_auc"] for r in rows if r["method"] == method and r["case"] == "patches6"
             and np.isclose(r["dE"], 4.0)]
        assert len(v) == 1
        return v[0]

    cvae = max(auc(f"cvae_self_{s}") for s in benchmark.SCORES)
    assert cvae > auc("pca3_pcc")
    assert auc("cvae_self_pcc") > auc("pca3_pcc")


ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- benchmark-headline:start -->", "<!-- benchmark-headline:end -->"


def test_readme_block_is_the_committed_run():
    results = ROOT / "benchmarks" / "results"
    rendered = benchmark.headline(results)
    assert (results / "headline.md").read_text() == rendered
    readme = (ROOT / "README.md").read_text()
    assert "\x1b" not in readme  # no terminal colour codes pasted from a log
    assert readme.count(START) == 1 and readme.count(END) == 1
    block = readme.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == rendered.strip()


def test_heterogeneous_masked_rows():
    """Film/substrate case: the ``*_masked`` rows leave out the Fe-free pixels found from the data;
    their metrics are over the whole map, substrate pixels are never flagged."""
    from hyperspy_cvae.synthetic import cluster_mask
    from hyperspy_cvae.scores import shift_analysis

    size = 32
    het, expected, bulk = benchmark._cube(size, 0, dose=150.0, substrate_fraction=0.3)
    film = size - int(round(0.3 * size))
    truth = np.zeros((size, size), bool)
    truth[:film] = cluster_mask((film, size), 2, 4, random_state=7)
    bad = het.inject_shift(1.0, window=benchmark.WINDOW, mask=truth)
    case = benchmark._Case("heterogeneous", 0, 1.0, bad, truth, expected, None, bulk)
    cropped = bad.isig[benchmark.RANGE[0]:benchmark.RANGE[1]]
    smap = shift_analysis(cropped, bulk.isig[benchmark.RANGE[0]:benchmark.RANGE[1]], benchmark.WINDOW)["score"]
    row, mask = benchmark._metrics_row("ideal_shift", 1.0, 0, "heterogeneous", smap, truth, 1.5)
    rows, keep = [row], {"ideal_shift": (smap, mask)}
    benchmark._score_masked(case, rows, keep)
    assert [r["method"] for r in rows] == ["ideal_shift", "ideal_shift_masked"]
    masked, flagged = keep["ideal_shift_masked"]
    assert np.isnan(masked.data[film:]).mean() > 0.97 and not np.isnan(masked.data[:film]).any()
    assert not flagged.data[np.isnan(masked.data)].any()
    r = rows[1]
    assert r["seconds"] >= 1.5 and r["f1"] >= rows[0]["f1"] and r["roc_auc"] >= rows[0]["roc_auc"]


def test_compare_runs_matches_rows_by_name(tmp_path):
    """Rows added to a run (new methods) leave the others comparable; a changed cell or a missing
    row fails the comparison, a timing does not."""
    cr = benchmark_module("compare_runs")
    head = "method,dE,seed,case,roc_auc,seconds\n"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "metrics.csv").write_text(head + "x,0.5,0,p6,0.9,1\ny,0.5,0,p6,0.8,1\n")
    (b / "metrics.csv").write_text(head + "new,0.5,0,p6,0.99,1\nx,0.5,0,p6,0.9,7\ny,0.5,0,p6,0.8,2\n")
    assert cr.compare(a, b) == {"metrics.csv": (2, 0, 0, 1)}
    assert cr.main([str(a), str(b)]) == 1 and cr.main([str(a), str(a)]) == 0
    (b / "metrics.csv").write_text(head + "y,0.5,0,p6,0.81,1\n")
    assert cr.compare(a, b) == {"metrics.csv": (2, 1, 1, 0)}

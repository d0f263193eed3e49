"""threshold="fdr": per-pixel Benjamini–Hochberg against the map's empirical null (issue 14, item 4)."""

import numpy as np
import pytest

from hyperspy_cvae.evaluation import detection_metrics
from hyperspy_cvae.synthetic import bifeo3_si

WINDOW = (690.0, 730.0)


@pytest.fixture(scope="module")
def clean():
    return bifeo3_si((96, 96), random_state=1)


@pytest.mark.parametrize("score", ["shift", "pcc", "deviance"])
def test_null_cube_flags_almost_nothing(clean, score):
    res = clean.anomaly_map("pca", WINDOW, score=score, threshold="fdr")
    assert res.mask.data.mean() <= 0.001
    th = res.mask.metadata.CVAE.threshold
    assert th.method == "fdr" and th.fdr == 0.05 and th.n_flagged == res.mask.data.sum()


def test_finds_a_weak_population_that_otsu_misses(clean):
    bad, truth = clean.inject_shift(0.5, window=WINDOW, n_clusters=6, cluster_size=5, random_state=3,
                                    return_mask=True)
    otsu = bad.anomaly_map("pca", WINDOW)
    fdr = bad.anomaly_map("pca", WINDOW, threshold="fdr")
    assert otsu.mask.data.sum() == 0                      # no valley in the histogram
    m = detection_metrics(fdr.mask.data, truth.data)
    assert m["f1"] > 0.85 and m["precision"] > 0.85
    assert fdr.mask.metadata.CVAE.threshold.two_sided      # signed by the shift's direction
    looser = bad.anomaly_map("pca", WINDOW, threshold="fdr", fdr=0.2)
    assert looser.mask.data.sum() >= fdr.mask.data.sum()


def test_left_out_pixels_are_never_flagged(clean):
    bad, truth = clean.inject_shift(1.0, window=WINDOW, n_clusters=6, cluster_size=5, random_state=3,
                                    return_mask=True)
    leave = np.zeros(truth.data.shape, bool)
    leave[:48] = True
    res = bad.anomaly_map("pca", WINDOW, threshold="fdr", navigation_mask=leave)
    assert not res.mask.data[leave].any() and res.mask.data[truth.data & ~leave].mean() > 0.9


def test_null_measured_on_the_pixels_with_the_edge():
    """On a film on a substrate (no Fe edge in 30 % of the map) the null comes from the film: the
    substrate's shift evidence, near 0, would make the bulk look tighter than it is."""
    film = bifeo3_si((48, 48), random_state=2, substrate_fraction=0.3)
    res = film.anomaly_map("pca", WINDOW, threshold="fdr")
    th = res.mask.metadata.CVAE.threshold
    assert th.null_from == "the pixels with the edge that are not outliers" and th.tail_df == np.inf
    assert res.mask.data.mean() <= 0.002
    counts = res.labels.metadata.CVAE.labels.counts
    assert counts["no edge"] > 500 and counts["anomalous"] == int((res.mask.data & (res.labels.data == 1)).sum())


@pytest.mark.parametrize("fdr", [0.0, 1.0, -0.1, "5 %", True])
def test_bad_fdr(clean, fdr):
    with pytest.raises(ValueError, match="`fdr`"):
        clean.anomaly_map("pca", WINDOW, threshold="fdr", fdr=fdr)

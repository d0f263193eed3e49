"""How a pixel differs: describe_pixels and AnomalyResult.describe() (issue 14, item 2)."""

import numpy as np
import pytest

from hyperspy_cvae.scores import EXPLANATIONS, LABELS, change_analysis, describe_pixels
from hyperspy_cvae.synthetic import bifeo3_si

FE = (693.0, 741.0)


@pytest.fixture(scope="module")
def clean():
    return bifeo3_si((48, 48), random_state=4, return_expected=True)


def _explanations(d, sel):
    expl = d.maps["explanation"].data[sel]
    return [d.names[i] for i in expl]


def test_shift_is_measured_and_named(clean):
    s, ideal = clean
    bad, truth = s.inject_shift(0.8, n_clusters=2, cluster_size=5, random_state=1, return_mask=True)
    d = describe_pixels(bad, ideal, (690.0, 730.0), mask=truth)
    t = truth.data
    shift, sigma = d.maps["shift"].data, d.maps["shift_sigma"].data
    assert abs(np.nanmedian(shift[t]) - 0.8) < 0.05
    assert abs(np.nanmedian(shift[~t])) < 0.03
    # the stated 1σ matches the scatter of the bulk's shifts (the per-pixel drift, 0.08 eV, adds to it)
    assert 0.5 < np.nanstd(shift[~t]) / np.sqrt(np.nanmedian(sigma[~t]) ** 2 + 0.08 ** 2) < 1.5
    names = _explanations(d, t)
    assert names.count("shift") / len(names) > 0.9
    # intensity and jump ratio of shifted pixels are those of the bulk
    assert abs(np.median(d.maps["intensity"].data[t]) - 1.0) < 0.05
    rows = d.table()
    assert [r["label"] for r in rows] == ["anomalous"] * int(t.sum())
    assert rows[0]["evidence_z"] >= rows[-1]["evidence_z"]
    assert all(t[r["index"]] for r in rows)


def test_new_peak_is_a_shape_change_with_its_spectrum(clean):
    s, ideal = clean
    bad, truth = s.inject_anomaly("new_peak", n_clusters=3, cluster_size=5, random_state=2, return_mask=True)
    d = describe_pixels(bad, ideal, FE, mask=truth)
    names = _explanations(d, truth.data)
    assert names.count("shape change") / len(names) > 0.8
    e = d.direction.axes_manager[0].axis
    assert abs(e[np.argmax(d.direction.data)] - 714.5) < 1.5
    assert np.median(d.maps["shape"].data[truth.data]) > 3 * np.median(np.abs(d.maps["shape"].data[~truth.data]))
    assert d.bulk_spectrum.data.shape == d.direction.data.shape


def test_thickness_changes_intensity_not_jump_ratio(clean):
    s, ideal = clean
    bad, truth = s.inject_anomaly("thickness", 0.3, n_clusters=3, cluster_size=5, random_state=3,
                                  return_mask=True)
    d = describe_pixels(bad, ideal, FE, mask=truth)
    t = truth.data
    assert abs(np.median(d.maps["intensity"].data[t]) - 1.3) < 0.05
    assert abs(np.nanmedian(d.maps["jump_ratio"].data[t]) - 1.0) < 0.05
    assert abs(np.nanmedian(d.maps["shift"].data[t])) < 0.05


def test_missing_edge_is_no_edge_and_a_glitch_an_outlier(clean):
    s, ideal = clean
    bad, truth = s.inject_anomaly("missing_edge", n_clusters=2, cluster_size=6, random_state=5,
                                  return_mask=True)
    bad.data[5, 40] //= 8                       # a glitch: 8× fewer counts
    d = describe_pixels(bad, ideal, FE, edge="Fe_L2,3")
    codes = d.labels.data
    assert (codes[truth.data] == LABELS.index("no edge")).mean() > 0.7
    assert codes[5, 40] == LABELS.index("outlier")
    assert (codes[~truth.data] == LABELS.index("bulk")).mean() > 0.98
    rows = {r["index"]: r for r in d.table(which="outlier")}
    assert rows[(5, 40)]["explanation"] == "outlier" and rows[(5, 40)]["intensity"] < 0.3
    # the 3 × 3-median rule also calls a few corners of the edgeless patches outliers, nothing else
    from scipy.ndimage import binary_dilation

    assert all(binary_dilation(truth.data)[i] for i in rows if i != (5, 40))
    with pytest.raises(ValueError, match="which"):
        d.table(which="vacuum")


def test_result_describe_reuses_the_scores_and_keeps_the_data(clean):
    s, _ = clean
    bad = s.inject_shift(1.2, n_clusters=2, cluster_size=4, random_state=6)
    before = bad.data.copy()
    res = bad.anomaly_map("pca", window=(690.0, 730.0))
    d = res.describe()
    assert res.describe() is d
    assert d.maps["shift"] is res._analyses["shift"]["shift"]          # computed once, by anomaly_map
    flagged = res.mask.data
    assert flagged.sum() > 0
    assert (d.labels.data[flagged] == LABELS.index("anomalous")).all()
    assert np.array_equal(bad.data, before)
    summary = d.summary()
    assert summary["anomalous"]["shift"]["pixels"] == int(flagged.sum())
    assert abs(summary["anomalous"]["shift"]["shift_eV"] - 1.2) < 0.1
    assert "anomalous (shift)" in repr(d) and "shift_eV" in str(d) and "<table>" in d._repr_html_()
    fig = d.plot()
    assert len(fig.axes) >= 6


def test_detector_units_describe_like_counts(clean):
    """Gain 5 ADU per count and 10 ADU of read noise (dark-subtracted): the same labels, shifts and
    ratios as the counts themselves."""
    s, _ = clean
    bad = s.inject_shift(1.0, n_clusters=2, cluster_size=4, random_state=7)
    adu = bad.deepcopy()
    adu.data = bad.data.astype(np.float32) * 5.0 + np.random.default_rng(0).normal(0, 10, bad.data.shape)
    adu.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                          {"gain_factor": 5.0, "gain_offset": 100.0, "correlation_factor": 1.0})
    r0 = bad.anomaly_map("pca", window=(690.0, 730.0), threshold="fdr")
    r1 = adu.anomaly_map("pca", window=(690.0, 730.0), threshold="fdr")
    assert r1.noise.gain == 5.0 and r1.noise.offset == 100.0
    d0, d1 = r0.describe(), r1.describe()
    assert (d0.labels.data == d1.labels.data).mean() > 0.995
    flagged = (d0.labels.data == 1) & (d1.labels.data == 1)
    assert flagged.sum() >= 30
    for key, tol in (("shift", 0.05), ("jump_ratio", 0.02), ("intensity", 0.01)):
        a, b = d0.maps[key].data, d1.maps[key].data
        assert np.nanmedian(np.abs(a - b)) < tol, key
        assert abs(np.nanmedian(a[flagged]) - np.nanmedian(b[flagged])) < tol, key
    # the pedestal (read noise / gain², 4 counts a channel) is not part of the intensity
    assert abs(np.median(d1.maps["intensity"].data) - 1.0) < 0.01


def test_line_scan_and_lazy(clean):
    s, _ = clean
    bad = s.inject_shift(1.5, n_clusters=1, cluster_size=4, random_state=8)
    d = bad.anomaly_map("pca", window=(690.0, 730.0)).describe()
    lazy = bad.as_lazy().anomaly_map("pca", window=(690.0, 730.0)).describe()
    assert np.array_equal(d.labels.data, lazy.labels.data)
    assert np.allclose(d.maps["shift"].data, lazy.maps["shift"].data, equal_nan=True, atol=1e-4)
    line = bad.inav[:, 22]
    dl = line.anomaly_map("pca", window=(690.0, 730.0), threshold="fdr").describe()
    assert dl.maps["shift"].data.shape == (48,)
    assert all(len(r["index"]) == 1 for r in dl.table())
    dl.plot()


def test_bad_input(clean):
    s, ideal = clean
    res = s.anomaly_map("rx", window=(690.0, 730.0))
    with pytest.raises(ValueError, match="no reconstruction"):
        res.describe()
    with pytest.raises(ValueError, match="seed"):
        change_analysis(s, ideal, FE, seed=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="no pixel"):
        change_analysis(s, ideal, FE, seed=np.zeros((48, 48), bool))
    assert EXPLANATIONS[0] == "shift"


def test_window_too_narrow_for_the_shape_tests(clean):
    """A coarse axis (the 8 eV/channel Cu map has 7 channels in its window): the shift, intensity,
    jump ratio and labels are still described, the shape tests say why they are missing."""
    s, ideal = clean
    bad, truth = s.inject_shift(1.0, n_clusters=2, cluster_size=5, random_state=9, return_mask=True)
    d = describe_pixels(bad, ideal, (704.0, 707.0), mask=truth)
    assert d.direction is None
    assert np.isnan(d.maps["shape"].data).all()
    assert "needs at least" in d.maps["shape"].metadata.CVAE.description.not_tested
    assert np.isfinite(d.maps["intensity"].data).all() and np.isfinite(d.maps["jump_ratio"].data).any()
    assert {r["explanation"] for r in d.table()} <= {"shift", "unknown"}
    d.plot()

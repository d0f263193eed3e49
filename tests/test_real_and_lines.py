"""Measured data (skipped without ../shared/realdata), line scans and the pixel labels."""

import pathlib

import numpy as np
import pytest

from conftest import WINDOW, benchmark_module
from hyperspy_cvae.scores import LABELS, label_pixels
from hyperspy_cvae.scores.labels import edge_jump, intensity_outliers
from hyperspy_cvae.synthetic import bifeo3_si

REALDATA = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
GE = REALDATA / "si2d" / "GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3"
needs_real = pytest.mark.skipif(not GE.exists(), reason="../shared/realdata is absent (a fresh clone): "
                                                        "the measured maps are not shipped")


def test_labels_on_a_film_with_a_substrate_and_a_glitch():
    f = bifeo3_si((24, 24), substrate_fraction=0.3, random_state=0)
    f.data[5, 5] /= 8.0                                           # a glitch in the film
    flagged = np.zeros((24, 24), bool)
    flagged[2, 2] = True
    lab = label_pixels(f, WINDOW, flagged, edge="Fe_L2,3")
    assert lab.data[5, 5] == LABELS.index("outlier")
    assert lab.data[2, 2] == LABELS.index("anomalous")
    assert (lab.data[18:] == LABELS.index("no edge")).mean() > 0.8
    assert abs(lab.metadata.CVAE.labels.onset_eV - 707.0) <= 1.5   # the rise found near 708 eV
    # without an edge name the onset is the steepest rise of the mean spectrum, near Fe L3
    assert abs(label_pixels(f, WINDOW).metadata.CVAE.labels.onset_eV - 708.0) < 2.0


def test_edge_jump_and_outliers_on_arrays():
    e = np.arange(80.0, 120.0, 0.1)
    x = np.stack([1e4 * (e / 80.0) ** -4 + 300 * (e > 100), 1e4 * (e / 80.0) ** -4])
    jump, se = edge_jump(e, x, 100.0)
    assert jump[0] == pytest.approx(300.0, rel=0.05) and abs(jump[1]) < 5.0
    with pytest.raises(ValueError, match="needs 10 eV before"):
        edge_jump(e, x, 82.0)
    ramp = np.outer(np.linspace(1, 3, 10), np.ones(10)) * 1e3   # thickness ramp: no outlier
    assert not intensity_outliers(ramp).any()


def test_line_scan_end_to_end_pca_and_cvae():
    s = bifeo3_si((16, 40), random_state=0)
    line = s.inav[:, 3]                                          # 40 pixels
    truth = np.zeros(40, bool)
    truth[10:12] = True
    bad = line.inject_shift(4.0, WINDOW, mask=truth)
    res = bad.anomaly_map("pca", WINDOW, n_components=1)  # 40 spectra: 2 components absorb 2 shifted ones
    assert res.score.axes_manager.signal_shape == (40,) and res.labels.data.shape == (40,)
    assert res.score.data[truth].min() > np.percentile(res.score.data[~truth], 90)
    import matplotlib.pyplot as plt

    plt.close(res.plot(truth=truth))                             # the profile drawn as one row
    plt.close(res.plot_labels())
    cut = bad.isig[670.0:750.0]
    cvae = cut.fit_cvae(latent_dim=8, epochs=2, random_state=0, show_progressbar=False)
    assert cvae.shard_size_ == 20                                 # "auto" on 40 pixels; rows = shard
    rec = cut.cvae_decomposition(show_progressbar=False)
    assert rec.axes_manager.navigation_shape == (40,)
    shift = cut.shift_map(WINDOW, show_progressbar=False)
    assert shift.data.shape == (40,)
    m = np.zeros(40, bool)
    m[:5] = True
    z, _ = cut.anomaly_map("cvae", WINDOW, navigation_mask=m, show_progressbar=False)
    assert np.isnan(z.data[:5]).all() and np.isfinite(z.data[5:]).all()


def test_inject_shift_on_a_line_scan_makes_segments():
    line = bifeo3_si((8, 40), random_state=0).inav[:, 0]
    out, truth = line.inject_shift(1.0, WINDOW, n_clusters=3, cluster_size=4, random_state=0,
                                   return_mask=True)
    assert truth.data.shape == (40,) and int(truth.data.sum()) == 12
    assert not np.array_equal(out.data[truth.data], line.data[truth.data])
    np.testing.assert_array_equal(out.data[~truth.data], line.data[~truth.data])


@needs_real
def test_measured_ge_map_by_edge_name_only(tmp_path):
    """The quick real-data benchmark: one measured map, the edge named and nothing else."""
    rd = benchmark_module("real_data")
    detail, summary, seen = rd.run(tmp_path, quick=True)
    (untouched,) = seen
    assert untouched["shard"] == 8 and untouched["edge"] == "Si_L2,3"
    lab = untouched["labels"].data
    assert (lab[:5] == LABELS.index("no edge")).all()            # the vacuum rows
    for y, x in ((11, 17), (12, 17), (11, 21)):                  # the glitch pixels of the README
        assert lab[y, x] == LABELS.index("outlier")
    assert (tmp_path / "summary.md").exists() and (tmp_path / "real_data.csv").exists()
    assert {r["case"] for r in detail} >= {"shift 0.5 eV"}


@needs_real
def test_pooled_null_on_a_layered_measured_map():
    """The Ge solar-cell map's shift evidence has heavy tails and correlated neighbours (layers,
    vacuum rows): an exchangeable normal null flagged 140 of its 990 untouched pixels."""
    rd = benchmark_module("real_data")
    s = rd.load(GE)
    res = s.anomaly_map("pca", edge="Si_L2,3", n_components=3, spatial="auto", show_progressbar=False)
    md = res.pooled.metadata.CVAE.spatial
    assert md.tail_df < 5 and max(md.window_spread.as_dictionary().values()) > 1.2
    assert md.null_from.startswith("the pixels with the edge")
    assert res.mask.data.sum() <= 5
    counts = res.labels.metadata.CVAE.labels.counts
    assert counts["anomalous"] <= int(res.mask.data.sum()) and counts["no edge"] >= 110   # vacuum rows
    truth = rd.injection_mask(res.mask.data.shape, seed=1)
    window = res.window.as_list()
    bad = s.inject_shift(1.0, window=tuple(window), mask=truth)
    found = bad.anomaly_map("pca", edge="Si_L2,3", n_components=3, spatial="auto", show_progressbar=False)
    hit = found.mask.data & truth
    assert hit.sum() >= 9 and (found.mask.data & ~truth).sum() <= 8


def test_real_data_benchmark_without_shared(monkeypatch, tmp_path, capsys):
    rd = benchmark_module("real_data")
    monkeypatch.setattr(rd, "REALDATA", tmp_path / "absent")
    assert rd.main(["--out", str(tmp_path / "out")]) == 0
    assert "absent" in capsys.readouterr().out and not (tmp_path / "out").exists()


def test_labels_of_a_lazy_map_equal_the_eager_ones():
    f = bifeo3_si((24, 24), substrate_fraction=0.3, random_state=0)
    lazy = f.as_lazy()
    lazy.data = lazy.data.rechunk((8, 8, -1))
    eager = label_pixels(f, WINDOW, edge="Fe_L2,3")
    np.testing.assert_array_equal(label_pixels(lazy, WINDOW, edge="Fe_L2,3").data, eager.data)

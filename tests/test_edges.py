"""Windows by edge name: onsets from exspy's database, clear errors, the same scores as the
equivalent eV window."""

import numpy as np
import pytest

from hyperspy_cvae.edges import POST_EDGE, PRE_EDGE, edge_onsets, edge_window, edges_in_range
from hyperspy_cvae.synthetic import bifeo3_si


def test_onsets_and_windows():
    assert edge_onsets("Fe_L23") == edge_onsets("Fe_L2,3") == {"L3": 708.0, "L2": 721.0}
    assert set(edge_onsets("Fe_L")) >= {"L2", "L3"}
    assert edge_window("O_K") == (532.0 - PRE_EDGE, 532.0 + POST_EDGE)
    assert "Ti_L3" in edges_in_range(450.0, 470.0) and "O_K" not in edges_in_range(450.0, 470.0)


@pytest.mark.parametrize("name,match", [("Fe L2,3", "form"), ("Xx_K", "Unknown element"),
                                        ("O_L3", "has no L3 edge"), ("fe_L3", "form")])
def test_bad_edge_names(name, match):
    with pytest.raises(ValueError, match=match):
        edge_onsets(name)


def test_anomaly_map_by_edge_equals_the_eV_window_and_records_it():
    s = bifeo3_si((24, 24), random_state=0).inject_shift(2.0, (690.0, 730.0), n_clusters=1,
                                                        random_state=1)
    by_name = s.anomaly_map("pca", n_components=3, edge="Fe_L2,3")
    by_ev = s.anomaly_map("pca", n_components=3, window=edge_window("Fe_L2,3"))
    np.testing.assert_array_equal(by_name.score.data, by_ev.score.data)
    assert by_name.score.metadata.CVAE.score.edge == "Fe_L2,3"
    assert by_name.window.as_list() == list(edge_window("Fe_L2,3"))
    dE = s.shift_map(method="pca", n_components=3, edge="Fe_L2,3")
    assert dE.metadata.CVAE.score.window == list(edge_window("Fe_L2,3"))


def test_edge_outside_the_axis_names_the_edge():
    s = bifeo3_si((16, 16), random_state=0).isig[680.0:740.0]
    with pytest.raises(ValueError, match="edge 'O_K'"):
        s.anomaly_map("pca", n_components=3, edge="O_K")


def test_no_window_no_edge_no_elements_lists_the_edges_in_the_axis():
    s = bifeo3_si((12, 12), random_state=0)
    del s.metadata.Sample
    for call in (lambda: s.anomaly_map("pca", n_components=3), lambda: s.shift_map(method="pca"),
                 lambda: s.inject_shift(1.0)):
        with pytest.raises(ValueError, match="Which edge.*Fe_L2,3.*O_K|Which edge.*O_K.*Fe_L2,3"):
            call()


def test_sample_elements_give_the_window_and_the_fit_range():
    from hyperspy_cvae.edges import FIT_MARGIN, resolve_window

    s = bifeo3_si((12, 12), random_state=0)
    s.metadata.Sample.elements = ["O", "Fe"]
    (lo, hi), label = resolve_window(s)
    assert label == "O_K+Fe_L2,3" and (lo, hi) == (532.0 - PRE_EDGE, 721.0 + POST_EDGE)
    s.metadata.Sample.elements = ["Cu"]                     # no Cu edge in 420-780 eV
    with pytest.raises(ValueError, match="Cu.*no.*major edge|has a major edge"):
        resolve_window(s)
    with pytest.raises(ValueError, match="not both"):
        resolve_window(s, window=(690.0, 730.0), edge="Fe_L3")
    s = bifeo3_si((12, 12), random_state=0)
    z = s.anomaly_map("pca", n_components=3)
    assert z.window.as_list() == list(edge_window("Fe_L2,3"))
    assert z.score.metadata.CVAE.score.edge == "Fe_L2,3"
    cut = s.isig[650.0:780.0]
    cvae = cut.fit_cvae(shard_size=8, latent_dim=4, epochs=1, random_state=0, show_progressbar=False)
    lo, hi = edge_window("Fe_L2,3")
    assert cvae.signal_range_ == pytest.approx([lo - FIT_MARGIN, hi + FIT_MARGIN], abs=0.3)  # channel grid
    assert "Fe_L2,3" in cut.metadata.CVAE.model.signal_range_source


def test_edge_window_is_clipped_to_the_axis():
    s = bifeo3_si((12, 12), random_state=0).isig[700.0:735.0]
    z = s.anomaly_map("pca", n_components=3, edge="Fe_L2,3")
    assert z.window.as_list() == pytest.approx([700.0, 735.0], abs=0.3)  # the axis, not 693-741


def test_fit_range_on_a_coarse_axis_holds_enough_channels():
    from hyperspy_cvae.edges import MIN_FIT_CHANNELS, fit_range

    s = bifeo3_si((4, 4), offset=420.0, scale=8.0, size=50, random_state=0)   # 420-820 eV
    lo, hi = fit_range(s, (693.0, 741.0))
    assert hi - lo == pytest.approx(MIN_FIT_CHANNELS * 8.0) and lo < 693.0 and hi > 741.0
    lo, hi = fit_range(s, (790.0, 815.0))                                       # at the axis end
    assert hi == pytest.approx(820.0) and hi - lo == pytest.approx(MIN_FIT_CHANNELS * 8.0)

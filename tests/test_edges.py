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

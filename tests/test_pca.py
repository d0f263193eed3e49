import numpy as np
import pytest

from hyperspy_cvae.scores import pcc_map, shift_score_map
from conftest import WINDOW, data_hash


def test_pca_path_equals_plain_hyperspy(small_cube):
    s = small_cube.inject_shift(4.0, n_clusters=2, random_state=1)
    before = data_hash(s)
    pcc, mask = s.anomaly_map("pca", WINDOW, n_components=3, score="pcc")
    assert data_hash(s) == before
    manual = s.deepcopy()
    manual.decomposition(print_info=False)
    ref = pcc_map(s, manual.get_decomposition_model(3), WINDOW)
    np.testing.assert_allclose(pcc.data, ref.data, atol=1e-8)
    # The default score is the shift likelihood ratio against the same reconstruction.
    z, _ = s.anomaly_map("pca", WINDOW, n_components=3)
    ref_z = shift_score_map(s, manual.get_decomposition_model(3), WINDOW)
    assert z.metadata.CVAE.score.kind == "shift"
    np.testing.assert_allclose(z.data, ref_z.data, atol=1e-8)
    assert pcc.metadata.CVAE.method == "PCA(3)" and mask.metadata.CVAE.method == "PCA(3)"
    assert mask.data.dtype == bool and mask.axes_manager.signal_shape == (48, 48)
    assert "threshold" in mask.metadata.CVAE.threshold


def test_pca_kwargs_and_lazy(small_cube):
    s = small_cube.inject_shift(4.0, n_clusters=2, random_state=1)
    z, mask = s.anomaly_map("pca", n_components=4, normalize_poissonian_noise=True)  # shift score
    assert "Poisson" in z.metadata.CVAE.method
    lz = s.as_lazy()
    z_l, mask_l = lz.anomaly_map("pca", WINDOW, n_components=3, threshold=None)
    assert z_l._lazy and mask_l is None
    z_l.compute()
    z_e, _ = s.anomaly_map("pca", WINDOW, n_components=3)
    np.testing.assert_allclose(z_l.data, z_e.data, atol=1e-4)


def test_anomaly_map_errors(small_cube):
    with pytest.raises(ValueError, match="method"):
        small_cube.anomaly_map("ica")
    with pytest.raises(ValueError, match="outside"):
        small_cube.anomaly_map("pca", window=(800.0, 850.0))
    with pytest.raises(RuntimeError, match="fit_cvae"):
        small_cube.anomaly_map("cvae")
    line = small_cube.inav[:, 0]
    z, mask = line.anomaly_map("pca")                      # a line scan: a profile along x
    assert z.axes_manager.signal_shape == (48,) and mask.data.shape == (48,)
    with pytest.raises(ValueError, match="two navigation axes"):
        small_cube.inav[0, 0].anomaly_map("pca")          # a single spectrum

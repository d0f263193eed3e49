"""Distributed inference: a 2-worker LocalCluster gives the single-process results, and
the model is shipped once per worker (scattered), never pickled into every task."""

import io

import numpy as np
import pytest
import torch

from conftest import FIT_SMALL, WINDOW, data_hash

pytestmark = pytest.mark.slow  # trains a CVAE; starts a LocalCluster

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from hyperspy_cvae import CVAE  # noqa: E402
from hyperspy_cvae.cvae import ModelHandle  # noqa: E402


def _n_worker_models():
    from hyperspy_cvae.cvae import streaming

    return len(streaming._WORKER_MODELS)


def _models_in(obj):
    """Model objects that pickling ``obj`` would embed (CVAE, ModelHandle, torch modules)."""
    found = []

    class Spy(cloudpickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, (CVAE, ModelHandle, torch.nn.Module)):
                found.append(type(o).__name__)
            return None

    Spy(io.BytesIO()).dump(obj)
    return found


@pytest.fixture(scope="module")
def fitted(small_cube):
    s = small_cube.deepcopy()
    s.fit_cvae(**FIT_SMALL)
    return s


def test_local_cluster_equals_single_process(fitted):
    ref_rec = fitted.cvae_decomposition()
    ref_pcc, ref_mask = fitted.anomaly_map("cvae", window=WINDOW, score="pcc")
    ref_lat = np.array(fitted.cvae_results["latent_map"].data)
    lazy = fitted.as_lazy()
    before = data_hash(fitted)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        scatters = []
        orig_scatter = client.scatter

        def counting_scatter(data, *args, **kwargs):
            scatters.append(kwargs.get("broadcast"))
            return orig_scatter(data, *args, **kwargs)

        client.scatter = counting_scatter
        rec_l = lazy.cvae_decomposition(cvae=fitted.cvae)
        # The graph holds a reference to the scattered model, not the model itself.
        assert _models_in(dict(rec_l.data.__dask_graph__())) == []
        rec_l.compute()
        rec = fitted.cvae_decomposition()                       # eager input, client active
        pcc, mask = fitted.anomaly_map("cvae", window=WINDOW, score="pcc")
        assert scatters == [True, True, True]                   # once per call, broadcast
        built = client.run(_n_worker_models)
        assert sorted(built.values()) == [1, 1]                 # one model per worker process
        client.scatter = orig_scatter
    assert data_hash(fitted) == before
    np.testing.assert_allclose(rec.data, ref_rec.data, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(rec_l.data, ref_rec.data, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pcc.data, ref_pcc.data, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mask.data, ref_mask.data)
    np.testing.assert_allclose(fitted.cvae_results["latent_map"].data, ref_lat, rtol=1e-5, atol=1e-5)


def test_local_scheduler_graph_holds_model_once(fitted):
    rec = fitted.as_lazy().cvae_decomposition(cvae=fitted.cvae)
    graph = dict(rec.data.__dask_graph__())
    holders = [k for k, v in graph.items() if _models_in(v)]
    assert len(holders) == 1, holders

import dask.array as da
import numpy as np
import pytest

from hyperspy_cvae.cvae.shards import extract_shards, shard_positions, stitch_shards
from hyperspy_cvae.cvae.streaming import map_shards


def test_extract_stitch_roundtrip_exact():
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(32, 40, 5))
    py, px = shard_positions(32, 8, 4), shard_positions(40, 8, 4)
    shards = extract_shards(cube, py, px, 8)
    assert shards.shape == (len(py) * len(px), 8, 8, 5)
    np.testing.assert_allclose(stitch_shards(shards, py, px, cube.shape), cube, rtol=1e-12)


def _identity_run(shape, chunk, *, seed, **kw):
    """A random cube and ``map_shards`` of it with the identity (latent: each shard's mean),
    shards of 8 at stride 4, from dask chunks that do not suit the grid."""
    cube = np.random.default_rng(seed).normal(size=shape).astype(np.float32)

    def ident(shards):
        return shards, shards.mean((1, 2, 3))[:, None]

    return cube, map_shards(da.from_array(cube, chunks=(13, 17, -1)), ident, shard_size=8, stride=4,
                            n_out=shape[-1], chunk=chunk, latent_dim=1, **kw)


@pytest.mark.parametrize("shape,chunk", [((50, 37, 6), 16), ((24, 24, 6), None), ((61, 48, 6), 24)])
def test_map_shards_identity_any_size(shape, chunk):
    cube, (rec, lat, grid) = _identity_run(shape, chunk, seed=1)
    np.testing.assert_allclose(rec.compute(), cube, rtol=1e-5, atol=1e-6)
    lat = lat.compute()
    assert lat.shape == (len(grid["pos_y"]), len(grid["pos_x"]), 1)
    y, x = grid["pos_y"][1], grid["pos_x"][2]
    assert lat[1, 2, 0] == pytest.approx(cube[y:y + 8, x:x + 8].mean(), rel=1e-5)


def test_map_shards_rejects_bad_stride():
    with pytest.raises(ValueError, match="divide"):
        map_shards(np.zeros((16, 16, 3)), lambda s: (s, None), shard_size=8, stride=3, n_out=3)


@pytest.mark.parametrize("shape,chunk", [((50, 37, 4), 16), ((24, 24, 4), None), ((61, 48, 4), 24),
                                         ((8, 40, 4), None)])
def test_quincunx_blend_covers_every_pixel_with_half_the_shards(shape, chunk):
    cube, (rec, lat, grid) = _identity_run(shape, chunk, seed=2, blend="quincunx")
    np.testing.assert_allclose(rec.compute(), cube, rtol=1e-5, atol=1e-6)  # no pixel left out
    lat = lat.compute()[..., 0]
    gy, gx = len(grid["pos_y"]), len(grid["pos_x"])
    assert gy % 2 == 1 and gx % 2 == 1  # the even rows and columns span the map
    kept = ~np.isnan(lat)
    border = np.zeros((gy, gx), bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    np.testing.assert_array_equal(kept, ((np.add.outer(np.arange(gy), np.arange(gx)) % 2) == 0) | border)
    # every pixel is blended from two overlapping shards where the full grid has two or more
    # (its four corner blocks have one), never from one alone as in a tiling
    pos_y, pos_x = grid["pos_y"], grid["pos_x"]
    count, full = (np.zeros((pos_y[-1] + 8, pos_x[-1] + 8), int) for _ in range(2))
    for i, y in enumerate(pos_y):
        for j, x in enumerate(pos_x):
            full[y:y + 8, x:x + 8] += 1
            count[y:y + 8, x:x + 8] += kept[i, j]
    assert (count >= np.minimum(full, 2))[:shape[0], :shape[1]].all()


def test_quincunx_needs_the_half_shard_stride():
    with pytest.raises(ValueError, match="half the shard"):
        map_shards(np.zeros((16, 16, 3)), lambda s: (s, None), shard_size=8, stride=2, n_out=3,
                   blend="quincunx")


@pytest.mark.parametrize("blend,chunk", [("full", 16), ("quincunx", None), ("quincunx", 24)])
def test_in_memory_maps_run_without_dask_and_give_the_same_floats(blend, chunk):
    """A NumPy cube runs its blocks in a plain loop (no dask graph): the same reconstruction and
    latents, bit for bit, as the same cube through dask."""
    cube = np.random.default_rng(5).normal(size=(61, 48, 6)).astype(np.float32)

    def blur(shards):  # not the identity: each output depends on the shard's neighbours
        return shards * 0.5 + shards.mean((1, 2), keepdims=True), shards.std((1, 2, 3))[:, None]

    kw = dict(shard_size=8, stride=4, n_out=6, chunk=chunk, latent_dim=1, blend=blend)
    rec, lat, grid = map_shards(cube, blur, **kw)
    rec_d, lat_d, grid_d = map_shards(da.from_array(cube, chunks=(61, 48, 6)), blur, **kw)
    assert isinstance(rec, np.ndarray) and isinstance(lat, np.ndarray)
    np.testing.assert_array_equal(rec, rec_d.compute(scheduler="synchronous"))
    np.testing.assert_array_equal(lat, lat_d.compute(scheduler="synchronous"))
    np.testing.assert_array_equal(grid["pos_y"], grid_d["pos_y"])


def test_first_anomaly_map_does_not_import_distributed():
    """An in-memory map in a fresh process: neither dask.distributed (imported by dask's first
    graph build) nor scikit-image is imported on the way to the mask."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from hyperspy_cvae.synthetic import bifeo3_si\n"
            "s = bifeo3_si((24, 24), random_state=0)\n"
            "s.fit_cvae(signal_range=(680., 740.), shard_size=8, max_steps=2, random_state=0, "
            "show_progressbar=False)\n"
            "r = s.anomaly_map('cvae', (690., 730.), show_progressbar=False)\n"
            "print(sorted(m for m in ('distributed', 'skimage') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"

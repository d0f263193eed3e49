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


@pytest.mark.parametrize("shape,chunk", [((50, 37, 6), 16), ((24, 24, 6), None), ((61, 48, 6), 24)])
def test_map_shards_identity_any_size(shape, chunk):
    rng = np.random.default_rng(1)
    cube = rng.normal(size=shape).astype(np.float32)

    def ident(shards):
        return shards, shards.mean((1, 2, 3))[:, None]

    rec, lat, grid = map_shards(da.from_array(cube, chunks=(13, 17, -1)), ident, shard_size=8,
                                stride=4, n_out=6, chunk=chunk, latent_dim=1)
    np.testing.assert_allclose(rec.compute(), cube, rtol=1e-5, atol=1e-6)
    lat = lat.compute()
    assert lat.shape == (len(grid["pos_y"]), len(grid["pos_x"]), 1)
    y, x = grid["pos_y"][1], grid["pos_x"][2]
    assert lat[1, 2, 0] == pytest.approx(cube[y:y + 8, x:x + 8].mean(), rel=1e-5)


def test_map_shards_rejects_bad_stride():
    with pytest.raises(ValueError, match="divide"):
        map_shards(np.zeros((16, 16, 3)), lambda s: (s, None), shard_size=8, stride=3, n_out=3)

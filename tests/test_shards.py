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

"""Streaming shard-wise inference over a (lazy) cube with dask: navigation blocks with the halo
their shards need, the model shipped once per worker, the blended reconstruction back.

Shards are ``S × S`` windows of the map (all energy channels); see :mod:`.shards` for their grid
and blending.
"""

from __future__ import annotations

import io
import logging
import sys
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from .checkpoint import checkpoint_dict
from .sampling import normalise_spectra
from .shards import ShardCanvas, checkerboard, cut_shards, grid_padding, shard_pairs, shard_positions

__all__ = ["map_shards", "plan_blocks", "active_client", "ModelHandle", "prepare_block", "forward_block",
           "compute_eager"]

_logger = logging.getLogger(__name__)

_WORKER_MODELS = {}  # (checksum, device) -> CVAE, one per process (see ModelHandle)
#: Input bytes of the shards a task cuts, runs and blends at a time (its working set, not the block's).
_GROUP_BYTES = 8 * 2**20


def active_client():
    """The active ``dask.distributed`` client, or None (no client, or distributed not installed).

    A client can only exist once ``distributed`` has been imported: until then it is not imported
    here either (its import alone costs a few tenths of a second)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _suitable_chunks(chunks, stride, shard_size):
    """The common chunk size of one navigation axis if it suits the shard grid, else None.

    Suitable: all chunks but the last have the same size, a multiple of ``stride``
    and at least one shard; the last may be shorter.
    """
    c = chunks[0]
    if c % stride or c < shard_size or any(ci != c for ci in chunks[:-1]) or chunks[-1] > c:
        return None
    return c


def plan_blocks(arr, *, shard_size, stride, chunk=None):
    """Choose the navigation blocks of :func:`map_shards` and rechunk ``arr`` to match.

    Each block of the (padded) map is one task that reads its own pixels plus a
    halo of ``shard_size - stride`` pixels on every side (the overlapping shards
    the Hann blending needs). Good chunks for that are: the energy axis in one
    chunk (a shard needs whole spectra), and navigation chunks that are a
    common multiple of ``stride`` and at least one shard, so that block edges
    fall on chunk edges. A dask array whose chunks are not like that is
    rechunked, and the change is logged (INFO).

    Parameters
    ----------
    arr : dask array (ny, nx, E)
    shard_size, stride : int
    chunk : int or (int, int), optional
        Block size in pixels, rounded to a multiple of ``stride``. Default: the
        array's own navigation chunks when suitable, else ``4·shard_size``.

    Returns
    -------
    arr : dask array
        ``arr``, rechunked if needed.
    block : (int, int)
        Block size (y, x) in pixels.

    Examples
    --------
    >>> import dask.array as da
    >>> a = da.zeros((100, 100, 50), chunks=(50, 50, 25))
    >>> b, block = plan_blocks(a, shard_size=24, stride=12)
    >>> block, b.chunks[0], b.chunks[2]
    ((96, 96), (96, 4), (50,))
    >>> plan_blocks(da.zeros((96, 96, 5), chunks=(48, 48, 5)), shard_size=24, stride=12)[1]
    (48, 48)
    """
    s = int(shard_size)
    if len(arr.chunks[2]) > 1:
        _logger.info("The energy axis is split into %d chunks; rechunking it into one (each shard "
                     "needs whole spectra).", len(arr.chunks[2]))
        arr = arr.rechunk({2: -1})
    block = _block_size(chunk, stride, s)
    if chunk is None:
        own = tuple(_suitable_chunks(arr.chunks[i], stride, s) for i in (0, 1))
        if all(c is not None for c in own):
            return arr, own
        if all(len(arr.chunks[i]) == 1 for i in (0, 1)):  # one chunk: nothing to align
            return arr, block
    if tuple(arr.chunks[0][:-1]) != (block[0],) * (len(arr.chunks[0]) - 1) or \
            tuple(arr.chunks[1][:-1]) != (block[1],) * (len(arr.chunks[1]) - 1) or \
            arr.chunks[0][-1] > block[0] or arr.chunks[1][-1] > block[1]:
        if not all(len(arr.chunks[i]) == 1 for i in (0, 1)):
            _logger.info(
                "Rechunking the navigation axes from chunks of %s × %s to %d × %d pixels (multiples "
                "of the shard stride %d, at least a shard of %d) so that each task reads its block "
                "plus a %d-pixel halo. Save the data with these chunks (e.g. `s.rechunk(nav_chunks="
                "(%d, %d))` before `s.save(...)`) to avoid this step.",
                arr.chunks[0][0], arr.chunks[1][0], block[0], block[1], stride, s, s - stride,
                block[1], block[0])
        arr = arr.rechunk({0: block[0], 1: block[1]})
    return arr, block


def _block_size(chunk, stride, shard_size):
    """Block size (y, x) in pixels of :func:`plan_blocks` for data without suitable chunks:
    ``chunk`` rounded to a multiple of ``stride``, or about 4 shards."""
    if chunk is None:
        default = max(stride, int(round(4 * shard_size / stride)) * stride)
        return default, default
    cy, cx = (chunk, chunk) if np.ndim(chunk) == 0 else chunk
    return tuple(max(stride, int(round(int(c) / stride)) * stride) for c in (cy, cx))


def _broadcast(payload):
    """Ship ``payload`` once: scattered to every worker of an active distributed client
    (a Future), or a single graph key for the local schedulers (nothing is copied)."""
    import dask

    client = active_client()
    if client is not None:
        return client.scatter(payload, broadcast=True, hash=True)
    return dask.delayed(payload, name=f"shard-payload-{id(payload):x}")


def _block_edges(n_padded, chunk):
    edges = list(range(0, n_padded, chunk)) + [n_padded]
    return list(zip(edges[:-1], edges[1:]))


def map_shards(data, func, *, shard_size, stride, n_out, chunk=None, latent_dim=None,
               out_dtype=np.float32, payload=None, prepare=None, blend="full", show_progressbar=False):
    """Apply ``func`` to every shard of a (lazy) cube and stitch the results.

    This is the streaming engine behind :meth:`CVAEEELSSpectrum.cvae_decomposition`.
    The padded map is split into navigation blocks (multiples of ``stride``);
    each block is processed by one dask task that reads the block plus the halo
    its shards need, runs ``func`` on those shards and blends them. Memory is
    bounded by a few blocks; a distributed scheduler runs the tasks on its
    workers. Blocks follow the input's chunks when they suit the shard grid,
    otherwise the input is rechunked (see :func:`plan_blocks`).

    Parameters
    ----------
    data : numpy or dask array (ny, nx, E)
        The cube (array order).
    func : callable
        ``func(shards) -> (out_shards, latents)`` with ``shards`` of shape
        (N, S, S, E), ``out_shards`` (N, S, S, n_out) and ``latents``
        (N, latent_dim) or None.
    shard_size, stride : int
        Shard side and grid step (``stride`` must divide ``shard_size``).
    n_out : int
        Channels of the output spectra.
    chunk : int or (int, int), optional
        Navigation block size (rounded to a multiple of ``stride``); default
        from the input's chunks (see :func:`plan_blocks`).
    payload : object, optional
        Something every task needs, e.g. a model. It is shipped once: with an
        active ``dask.distributed`` client it is scattered to all workers
        (``broadcast=True``) and each task receives the worker's copy; with
        the local schedulers it is one graph key. ``func`` is then called as
        ``func(payload, shards)``; keep ``func`` a small module-level function
        (or a ``functools.partial`` of one) so that tasks stay small.
    prepare : callable, optional
        ``prepare(block) -> tuple of arrays (Y, X, ...)``, run once on each
        task's block (its pixels and halo) before the shards are cut: work per
        spectrum (checks, normalisation) is then done once per spectrum, not
        once per overlapping shard. Each returned array is cut into shards and
        ``func`` receives them as separate arguments
        (``func([payload,] *shard_arrays)``). Default: the block itself.
    blend : {"full", "quincunx"}
        ``"full"``: every shard of the grid. ``"quincunx"`` (``stride`` must be half
        the shard): every other shard, in a checkerboard, and every shard along the
        map's borders (:func:`~hyperspy_cvae.cvae.shards.checkerboard`): each pixel
        is blended from two overlapping shards instead of four (the padded map has
        an odd number of shards per axis, so that the even rows and columns of the
        grid form a full grid of stride ``shard_size``). Skipped shards have NaN
        latents.

    show_progressbar : bool
        A progress bar over the block rows of an in-memory ``data`` (lazy blocks report through dask's
        progress bar when they are computed).

    Returns
    -------
    recon : dask array (ny, nx, n_out)
        A NumPy array when ``data`` is a NumPy array and no distributed client is active: the
        blocks then run in a plain loop, without a dask graph (whose first build in a process
        imports ``dask.distributed``, a few tenths of a second), block for block the same
        computation.
    latents : dask array (gy, gx, latent_dim) or None
        Outputs of ``func`` for every grid shard, on the grid (NumPy like ``recon``).
    grid : dict
        ``pos_y``, ``pos_x`` (top-left positions in pixels) and padding.
    """
    s = int(shard_size)
    if stride < 1 or s % stride:
        raise ValueError(f"`stride` must divide the shard size {s}, got {stride}.")
    if blend not in ("full", "quincunx"):
        raise ValueError(f"`blend` must be 'full' or 'quincunx', got {blend!r}.")
    quincunx = blend == "quincunx"
    if quincunx and 2 * stride != s:
        raise ValueError(f"blend='quincunx' needs a stride of half the shard ({s // 2}), got {stride}.")
    eager = isinstance(data, np.ndarray) and active_client() is None
    if eager:
        arr, (cy, cx) = data, _block_size(chunk, stride, s)
    else:
        import dask.array as da

        arr, (cy, cx) = plan_blocks(da.asarray(data), shard_size=s, stride=stride, chunk=chunk)
    ny, nx = arr.shape[:2]
    py, px = grid_padding(ny, s, stride), grid_padding(nx, s, stride)
    if quincunx:  # an odd number of shards per axis: the even rows and columns span the map
        py += stride * (((ny + py - s) // stride) % 2)
        px += stride * (((nx + px - s) // stride) % 2)
    if py or px:
        pad = ((0, py), (0, px), (0, 0))
        arr = np.pad(arr, pad, mode="symmetric") if eager else da.pad(arr, pad, mode="symmetric")
    nyp, nxp = ny + py, nx + px
    pos_y, pos_x = shard_positions(nyp, s, stride), shard_positions(nxp, s, stride)
    spec = _BlockSpec(func, prepare, s, stride, quincunx, (len(pos_y), len(pos_x)), n_out, out_dtype)
    edges_y, edges_x = _block_edges(nyp, cy), _block_edges(nxp, cx)
    if eager:  # each block written into the output as soon as it is done
        from tqdm.auto import tqdm

        edges_y = tqdm(edges_y, desc="Shards", unit="block row", disable=not show_progressbar, leave=False)
        recon = np.empty((nyp, nxp, n_out), out_dtype)
        latents = np.empty((len(pos_y), len(pos_x), latent_dim), np.float32) if latent_dim else None

        def run(block, oy, ox, core_y, core_x, py_loc, px_loc, own_y, own_x):
            rec, lat = _run_block(spec, block, payload, oy, ox, core_y, core_x, py_loc, px_loc, own_y, own_x)
            recon[core_y[0]:core_y[1], core_x[0]:core_x[1]] = rec
            if latents is not None:  # grid index = position / stride
                latents[np.ix_((oy + py_loc[own_y]) // stride, (ox + px_loc[own_x]) // stride)] = lat
    else:
        import dask

        shared, latents = (_broadcast(payload) if payload is not None else None), None
        task = dask.delayed(partial(_run_block, spec), pure=True)

        def run(block, oy, ox, core_y, core_x, py_loc, px_loc, own_y, own_x):
            res = task(block, shared, oy, ox, core_y, core_x, py_loc, px_loc, own_y, own_x)
            rec = da.from_delayed(res[0], shape=(core_y[1] - core_y[0], core_x[1] - core_x[0], n_out),
                                  dtype=out_dtype)
            lat = (da.from_delayed(res[1], shape=(len(own_y), len(own_x), latent_dim), dtype=np.float32)
                   if latent_dim else None)
            return rec, lat
    rows = []  # dask: per block row, per block (reconstruction, latents of the shards it owns)
    for (ya, yb) in edges_y:
        row = []
        for (xa, xb) in edges_x:
            sel_y = pos_y[(pos_y < yb) & (pos_y + s > ya)]
            sel_x = pos_x[(pos_x < xb) & (pos_x + s > xa)]
            oy, ox = int(sel_y[0]), int(sel_x[0])
            ey, ex = int(sel_y[-1]) + s, int(sel_x[-1]) + s
            own_y = np.nonzero((sel_y >= ya) & (sel_y < yb))[0]
            own_x = np.nonzero((sel_x >= xa) & (sel_x < xb))[0]
            row.append(run(arr[oy:ey, ox:ex], oy, ox, (ya, yb), (xa, xb), sel_y - oy, sel_x - ox, own_y, own_x))
        rows.append(row)
    grid = {"pos_y": pos_y, "pos_x": pos_x, "pad": (py, px)}
    if eager:
        return recon[:ny, :nx], latents, grid
    recon = da.concatenate([da.concatenate([r for r, _ in row], axis=1) for row in rows], axis=0)[:ny, :nx]
    if latent_dim:
        latents = da.concatenate([da.concatenate([lat for _, lat in row], axis=1) for row in rows], axis=0)
    return recon, latents, grid


class _BlockSpec(NamedTuple):
    """What every block of :func:`map_shards` shares."""
    func: object
    prepare: object
    shard_size: int
    stride: int
    quincunx: bool
    grid_shape: tuple
    n_out: int
    out_dtype: object


def _run_block(spec, ext, shared, oy, ox, core_y, core_x, py_loc, px_loc, lat_y, lat_x):
    """One block of :func:`map_shards`: cut the shards of ``ext`` (the block and its halo) a group
    at a time, run ``spec.func`` on them and blend them; returns the block's reconstruction and the
    latents of the shards it owns."""
    s, stride = spec.shard_size, spec.stride
    ext = np.asarray(ext)
    keep = checkerboard(len(py_loc), len(px_loc), (oy // stride, ox // stride), spec.grid_shape) \
        if spec.quincunx else None
    parts = (ext,) if spec.prepare is None else spec.prepare(ext)
    pairs = shard_pairs(py_loc, px_loc, keep)
    canvas = ShardCanvas(ext.shape[:2] + (spec.n_out,), s)
    group = max(1, _GROUP_BYTES // max(1, s * s * sum(a[0, 0].nbytes for a in parts)))
    lats = []
    for i in range(0, len(pairs), group):  # cut, run and blend a few shards at a time
        batch = pairs[i:i + group]
        shards = [cut_shards(a, batch, s) for a in parts]
        out, lat = spec.func(*shards) if shared is None else spec.func(shared, *shards)
        canvas.add(out, batch)
        lats.append(lat)
    rec = canvas.result()[core_y[0] - oy:core_y[1] - oy, core_x[0] - ox:core_x[1] - ox]
    lat = None if any(v is None for v in lats) else np.concatenate(lats)
    lat_block = None
    if lat is not None:
        if keep is not None:
            full = np.full((keep.size, lat.shape[-1]), np.nan, dtype=lat.dtype)
            full[keep.ravel()] = lat
            lat = full
        lat = lat.reshape(len(py_loc), len(px_loc), -1)
        lat_block = lat[np.ix_(lat_y, lat_x)]
    return rec.astype(spec.out_dtype, copy=False), lat_block


class ModelHandle:
    """A fitted :class:`CVAE` in a form that is cheap to ship to dask workers.

    Holds the checkpoint bytes (weights + metadata, as written by
    :meth:`CVAE.save`) and the weights' checksum. :meth:`get` rebuilds the
    network once per worker process (cached by checksum and device) and
    returns the same object to every later task. Loading goes through
    :meth:`CVAE.load`, i.e. ``torch.load(weights_only=True)``: no code runs.

    Examples
    --------
    >>> from hyperspy_cvae import CVAE
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0).isig[680.:740.]
    >>> cvae = CVAE(shard_size=16, epochs=1, random_state=0, show_progressbar=False).fit(s.data)
    >>> h = ModelHandle(cvae)
    >>> h.get().checksum() == cvae.checksum()
    True
    """

    def __init__(self, cvae, device="auto"):
        buf = io.BytesIO()
        torch.save(checkpoint_dict(cvae), buf)
        self.blob = buf.getvalue()
        self.checksum = cvae.checksum()
        self.device = device

    def get(self):
        key = (self.checksum, str(self.device))
        model = _WORKER_MODELS.get(key)
        if model is None:
            from .estimator import CVAE

            model = CVAE.load(io.BytesIO(self.blob), device=self.device)
            _WORKER_MODELS.clear()  # keep one model per process
            _WORKER_MODELS[key] = model
        return model



def prepare_block(block):
    """The per-task preparation of :meth:`CVAEEELSSpectrum.cvae_decomposition`, once per spectrum
    of a block (not once per overlapping shard): refuses NaN/inf (lazy data are checked here,
    block by block) and returns ``(normalised spectra, totals (Y, X, 1))``
    (:func:`~hyperspy_cvae.cvae.sampling.normalise_spectra`)."""
    if not np.isfinite(block).all():
        raise ValueError("The signal contains NaN or inf values in the model's energy range; replace "
                         "them (e.g. `s.map(np.nan_to_num)` on a copy) or crop the bad region.")
    p, total = normalise_spectra(block)
    return p, total[..., None]


def forward_block(model, p_shards, total_shards, batch_size=None):
    """Reconstruct shards of normalised spectra with ``model`` (a :class:`CVAE` or
    :class:`ModelHandle`): the per-task function of :meth:`CVAEEELSSpectrum.cvae_decomposition`,
    after :func:`prepare_block`. Returns ``(reconstructed counts, latent means)``.
    """
    if isinstance(model, ModelHandle):
        model = model.get()
    return model.forward_normalised(p_shards, total_shards[..., 0], batch_size)


def compute_eager(recon, latents, show_progressbar):
    """Compute dask results for an eager signal: on the distributed client if one is active,
    otherwise with the synchronous scheduler (torch already uses all cores). NumPy results (what
    :func:`map_shards` gives for in-memory data) are returned as they are."""
    import dask

    if isinstance(recon, np.ndarray):  # map_shards ran the blocks already
        return recon, latents
    if active_client() is not None:
        return dask.compute(recon, latents)
    if show_progressbar:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(recon, latents, scheduler="synchronous")
    return dask.compute(recon, latents, scheduler="synchronous")

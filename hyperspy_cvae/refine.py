"""A reconstruction refitted pixel by pixel to the nuisances every map has: the background's and the
edge's own intensities and a small energy drift.

A reconstruction from a code per shard (the CVAE's) cannot follow what changes from one pixel
to the next: the thickness, the lattice's weight on the edge against the background, the
per-pixel energy jitter. PCA's per-pixel coefficients can, which makes PCA(3) the better
denoiser of such a map (``benchmarks/results/denoising/``). Here each pixel's reconstruction
``μ`` is split into its pre-edge background ``B`` (a power law fitted to ``μ`` before the edge
onset and extrapolated, :func:`~hyperspy_cvae.background.power_law_background`) and the rest,
the edge ``μ − B``, and the data are fitted by weighted least squares (weights ``1 / Var``
from the noise model) with

``y ≈ a · B + b · (μ − B) + c · dμ/dk``

(``k`` the channel index): three numbers per pixel, as PCA(3) has, but each with a meaning.
``a`` and ``b`` scale the background and the edge (their ratio is the pixel's jump ratio
against the reconstruction's), and ``−c · Δ / b`` is the pixel's energy drift in eV (``Δ`` the
dispersion; a first-order term, good to about a channel).

The refit also follows what an anomaly does to those three numbers: a missing edge (``b`` → 0)
or a small shift is refitted into the reconstruction. Scores are therefore computed against the
reconstruction itself (their own nuisance terms are fitted in the score); the refit is a
denoised spectrum image and three maps.
"""

from __future__ import annotations

import numpy as np

from ._arrays import is_lazy
from .background import onset_from_data, power_law_background

__all__ = ["refine_spectra", "refine_reconstruction", "check_refine", "COEFFICIENTS"]

#: The refit's per-pixel numbers, in the order of ``refine_spectra``'s coefficients.
COEFFICIENTS = ("background", "edge", "drift", "drift_sigma")
#: eV left between the pre-edge channels the background is fitted to and the onset (at least a channel).
ONSET_GAP = 2.0
#: Fewest pre-edge channels the background is fitted to.
MIN_PRE_EDGE_CHANNELS = 3
#: The drift is given where the edge's intensity is this many standard errors above 0 (else NaN: a
#: pixel without the edge has no edge to drift).
EDGE_SIGMAS = 3.0
#: Pixels solved at a time (bounds the (n, E, 3) design's memory).
_BLOCK = 4096


def refine_spectra(energy, data, reconstruction, onset, *, gain=1.0, offset=0.0):
    """Refit each reconstructed spectrum to its data: ``a · B + b · (μ − B) + c · dμ/dk``.

    Parameters
    ----------
    energy : array (E,)
        Energy axis (eV) of both arrays.
    data, reconstruction : arrays (..., E)
        The spectra and their reconstructions ``μ``, in the same units.
    onset : float
        Edge onset (eV): the background ``B`` is fitted to ``μ`` below ``onset − ONSET_GAP``.
    gain, offset : float
        The noise model ``Var = gain · μ + offset`` (HyperSpy's ``Variance_linear_model``); the
        weights are ``1 / max(Var, gain)``.

    Returns
    -------
    refined : array (..., E)
        ``a · B + b · (μ − B) + c · dμ/dk``, float64.
    coefficients : array (..., 4)
        ``a`` (background), ``b`` (edge), the drift ``−c · Δ / b`` in eV and its standard error
        (from ``c``'s; NaN where ``b`` is not ``EDGE_SIGMAS`` standard errors above 0: no edge there).

    Examples
    --------
    A reconstruction that has the right edge but neither the pixel's intensities nor its drift:

    >>> e = np.arange(660.0, 760.0, 0.3)
    >>> def spectrum(bg, edge, drift):
    ...     x = e - drift
    ...     return bg * 1e3 * (x / 660) ** -3 + edge * 400 / (1 + ((x - 708) / 0.8) ** 2)
    >>> mu = spectrum(1.0, 1.0, 0.0)
    >>> truth = spectrum(1.2, 0.8, 0.1)
    >>> refined, coef = refine_spectra(e, truth[None], mu[None], 707.0)
    >>> np.round(coef[0, :3], 2)                 # background, edge, drift (eV)
    array([1.2, 0.8, 0.1])
    >>> bool(np.abs(refined - truth).max() < 0.05 * np.abs(mu - truth).max())
    True
    """
    energy = np.asarray(energy, float)
    y = np.asarray(data, float)
    mu = np.asarray(reconstruction, float)
    if y.shape != mu.shape or y.shape[-1] != energy.size:
        raise ValueError(f"The data {y.shape} and the reconstruction {mu.shape} must have the same shape, "
                         f"with {energy.size} channels.")
    gap = max(ONSET_GAP, abs(float(energy[1] - energy[0])))
    pre = energy < onset - gap
    if pre.sum() < MIN_PRE_EDGE_CHANNELS:
        raise ValueError(f"The refit needs at least {MIN_PRE_EDGE_CHANNELS} channels of pre-edge background "
                         f"below {onset - gap:g} eV (edge onset {onset:g} eV), and the range starts at "
                         f"{energy[0]:g} eV: reconstruct a range that starts before the edge.")
    shape = y.shape
    y, mu = y.reshape(-1, shape[-1]), mu.reshape(-1, shape[-1])
    refined = np.empty_like(y)
    coef = np.empty((y.shape[0], len(COEFFICIENTS)))
    dispersion = float(energy[1] - energy[0])
    for i in range(0, y.shape[0], _BLOCK):
        m, d = mu[i:i + _BLOCK], y[i:i + _BLOCK]
        background = power_law_background(energy, m, pre)
        design = np.stack([background, m - background, np.gradient(m, axis=-1)], -1)     # (n, E, 3)
        w = 1.0 / np.maximum(gain * m + offset, gain)
        normal = np.einsum("nek,nel,ne->nkl", design, design, w)
        rhs = np.einsum("nek,ne,ne->nk", design, d, w)
        cov = np.linalg.pinv(normal, rcond=1e-10)           # the coefficients' covariance (weights 1/Var)
        c = np.einsum("nkl,nl->nk", cov, rhs)
        refined[i:i + _BLOCK] = np.einsum("nek,nk->ne", design, c)
        edge_found = c[:, 1] > EDGE_SIGMAS * np.sqrt(np.clip(cov[:, 1, 1], 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            drift = np.where(edge_found, -c[:, 2] * dispersion / c[:, 1], np.nan)
            sigma = np.where(edge_found, np.sqrt(np.clip(cov[:, 2, 2], 0, None)) * abs(dispersion) / c[:, 1], np.nan)
        coef[i:i + _BLOCK] = np.stack([c[:, 0], c[:, 1], drift, sigma], -1)
    return refined.reshape(shape), coef.reshape(shape[:-1] + (len(COEFFICIENTS),))


def check_refine(refine):
    """The edge of ``cvae_decomposition(refine=...)``: ``False`` (no refit), ``None`` (from the
    metadata or the data) for ``True``, or the name given."""
    if refine is False or refine is True:
        return None if refine else False
    if isinstance(refine, str):
        return refine
    raise ValueError(f"`refine` must be True, False or an edge name such as 'Fe_L2,3', got {refine!r}.")


def _onset(signal, energy, data, edge, onset):
    """``(onset in eV, where it came from)``: given, of the named ``edge`` (the steepest rise of the
    mean of ``data`` near its database onset), of the first edge of ``metadata.Sample.elements`` in
    the range, else the steepest rise of the mean spectrum (one pass over lazy ``data``)."""
    from .edges import edge_onsets, element_edges

    if onset is not None:
        return float(onset), "given"
    mean = data.mean(axis=tuple(range(data.ndim - 1)))
    mean_spectrum = np.asarray(mean.compute() if is_lazy(mean) else mean, float)
    first, last = float(energy[0]), float(energy[-1])
    if edge is None:
        elements = signal.metadata.get_item("Sample.elements")
        names = element_edges(list(elements), first, last) if elements is not None and len(elements) else []
        edge = names[0] if names else None
    if edge is not None:
        listed = min(edge_onsets(str(edge).split("+")[0]).values())     # "Fe_L2,3+O_K": the first
        if not first < listed < last:
            raise ValueError(f"The onset of {edge!r} ({listed:g} eV) is outside the reconstruction's range "
                             f"({first:g}–{last:g} eV).")
        return onset_from_data(energy, mean_spectrum, near=listed), f"steepest rise near the {edge} onset ({listed:g} eV)"
    return onset_from_data(energy, mean_spectrum), "steepest rise of the mean spectrum"


def refine_reconstruction(signal, reconstruction, *, edge=None, onset=None, noise="auto"):
    """Refit a reconstruction of ``signal`` pixel by pixel: background and edge intensities and a small
    energy drift (:func:`refine_spectra`).

    Parameters
    ----------
    signal : CVAEEELSSpectrum or LazyCVAEEELSSpectrum
        The spectrum image (its channels under the reconstruction's energy range are used).
    reconstruction : signal
        Its reconstruction (``s.cvae_decomposition()``, ``get_decomposition_model(k)``), on the same
        navigation grid and dispersion.
    edge : str, optional
        Edge whose onset separates background from edge (``"Fe_L2,3"``: the steepest rise of the
        map's mean spectrum near its database onset); default the first edge of
        ``metadata.Sample.elements`` in the range, else the steepest rise of the mean spectrum.
        The mean spectrum costs one pass over a lazy signal's data.
    onset : float, optional
        The onset in eV, instead of ``edge`` (no pass over the data for it).
    noise : "auto", "counts", "estimate", NoiseModel or dict
        The noise model for the weights (:func:`hyperspy_cvae.noise.resolve_noise_model`).

    Returns
    -------
    refined : signal
        The refitted reconstruction (lazy if ``signal`` is), with ``metadata.CVAE.refinement``.
    coefficients : dict of signals
        Maps on the navigation grid (a line scan's are lines): ``"background"`` and ``"edge"``
        (each pixel's intensity of the reconstruction's background and edge; 1 = as
        reconstructed), ``"drift"`` and its standard error ``"drift_sigma"`` (eV; NaN where the
        edge is not found, see :func:`refine_spectra`). On a lazy signal each output is a slice
        of the same graph: compute them together (``dask.compute``) or the refit runs once
        for each.

    Examples
    --------
    >>> from hyperspy_cvae import denoising_mse
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, truth = bifeo3_si((24, 24), random_state=0, return_expected=True)
    >>> d = s.isig[660.:760.]
    >>> rough = d._deepcopy_with_new_data(np.broadcast_to(d.data.mean((0, 1)), d.data.shape).copy())
    >>> refined, maps = refine_reconstruction(s, rough, edge="Fe_L2,3")   # the mean at every pixel, refitted
    >>> bool(denoising_mse(refined, truth, (690., 730.)) < denoising_mse(rough, truth, (690., 730.)) / 3)
    True
    >>> sorted(maps)
    ['background', 'drift', 'drift_sigma', 'edge']
    """
    from ._validation import energy_axis
    from .noise import resolve_noise_model

    if edge is not None and not isinstance(edge, str):
        raise ValueError(f"`edge` (or `refine`) must be an edge name such as 'Fe_L2,3', got {edge!r}.")
    ax, full = energy_axis(reconstruction), energy_axis(signal)
    if not (ax.scale > 0 and full.scale > 0):
        raise ValueError("The refit needs an energy axis that increases (a positive scale).")
    if not np.isclose(ax.scale, full.scale) or reconstruction.axes_manager.navigation_shape != \
            signal.axes_manager.navigation_shape:
        raise ValueError(f"The reconstruction ({reconstruction.axes_manager.navigation_shape}, {ax.scale:g} "
                         f"{ax.units}/channel) is not of this signal's grid ({signal.axes_manager.navigation_shape}, "
                         f"{full.scale:g} {full.units}/channel).")
    position = (float(ax.offset) - float(full.offset)) / float(full.scale)
    start = int(round(position))
    if abs(position - start) > 0.01:
        raise ValueError(f"The reconstruction's channels are {position - start:+.2f} of a channel off the "
                         "signal's: it was made from a differently calibrated axis.")
    if start < 0 or start + ax.size > full.size:
        raise ValueError(f"The reconstruction's range ({ax.axis[0]:g}–{ax.axis[-1]:g} {ax.units}) is not "
                         f"inside the signal's ({full.axis[0]:g}–{full.axis[-1]:g}).")
    data = signal.isig[start:start + ax.size].data
    energy = np.asarray(ax.axis, float)
    rec = reconstruction.data
    nm = resolve_noise_model(signal, noise, data)
    on, source = _onset(signal, energy, data, edge, onset)
    kw = dict(gain=nm.gain, offset=nm.offset)
    if is_lazy(data) or is_lazy(rec):
        import dask.array as da

        data = da.asarray(data).rechunk({data.ndim - 1: -1})      # each block holds whole spectra
        rec = da.asarray(rec).rechunk(data.chunks)

        def block(d, m):
            r, c = refine_spectra(energy, d, m, on, **kw)
            return np.concatenate([r, c], -1)

        both = da.map_blocks(block, data, rec, dtype=float,
                             chunks=data.chunks[:-1] + ((ax.size + len(COEFFICIENTS),),))
        refined, coef = both[..., :ax.size], both[..., ax.size:]
    else:
        refined, coef = refine_spectra(energy, data, rec, on, **kw)
    out = reconstruction._deepcopy_with_new_data(refined)
    if is_lazy(refined) and not out._lazy:
        out = out.as_lazy()
    meta = {"method": "per-pixel background, edge and drift refit", "onset_eV": float(on),
            "onset_source": source, "noise": nm.as_metadata(),
            "reconstruction": reconstruction.metadata.General.title}
    out.metadata.set_item("CVAE.refinement", meta)
    out.metadata.General.title = f"Refined {reconstruction.metadata.General.title}"
    return out, _coefficient_maps(signal, coef, meta)


def _coefficient_maps(signal, coef, meta):
    """The refit's numbers as navigation maps, by name."""
    from ._maps import navigation_map

    units = {"background": "", "edge": "", "drift": "eV", "drift_sigma": "eV"}
    return {name: navigation_map(signal, coef[..., k], f"Per-pixel refit: {name}",
                                 metadata={"CVAE.refinement": dict(meta, coefficient=name, units=units[name])})
            for k, name in enumerate(COEFFICIENTS)}

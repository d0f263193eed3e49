"""Built-in synthetic data: a BiFeO3-like core-loss EELS spectrum image.

No public EELS spectrum image can be downloaded by this package, so it ships a
physics-based generator instead. Every ingredient has a parameter with a
physical meaning, and ``random_state`` makes the cube exactly reproducible. The
noise-free expectation (the "truth" a perfect reconstruction would give) is
available for the same ``random_state`` with ``return_expected=True``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bifeo3_si", "spectrum_components", "Scene", "data_checksum"]


def _lorentz(e, centre, fwhm):
    hw = fwhm / 2.0
    return hw**2 / ((e - centre) ** 2 + hw**2)


def _step(e, onset, width, decay_exponent=1.5):
    """Arctan continuum step at ``onset`` that decays slowly above the edge."""
    s = 0.5 + np.arctan((e - onset) / width) / np.pi
    return s * np.clip(e / onset, 1.0, None) ** (-decay_exponent)


def spectrum_components(energy, *, background_exponent=3.0, o_k_onset=532.0, fe_l3=708.0,
                        fe_l2=721.0, white_line_fwhm=(1.6, 2.2), white_line_ratio=0.45,
                        fe_strength=1.0, o_strength=1.0, ti_l3=457.0, ti_l2=463.0,
                        fe2_fraction=0.0, o_prepeak=0.20):
    """Noise-free spectral components on an energy grid (eV).

    Intensities are relative to the power-law background at the Fe L3 energy, so
    that ``fe_strength=1`` gives an L3 white line as high as the background
    under it (a typical Fe L2,3 edge in a perovskite at ~50 nm thickness).

    ``fe2_fraction`` mixes a simple Fe2+-like L2,3 shape into ``fe``: white lines 1.5 eV (L3) and
    1.0 eV (L2) lower, narrower (1.4, 2.0 eV), an L2/L3 ratio 1.3 times higher and the continuum
    steps at the lower onsets (the direction of the Fe3+ → Fe2+ change, not a fitted reference).
    ``o_prepeak`` is the height of the O K pre-peak of the film (O 2p – Fe 3d) relative to the
    background at the O K onset.

    Returns
    -------
    dict
        ``background``, ``fe`` (Fe L2,3), ``o_bfo`` (O K of the BiFeO3 film),
        ``o_sto`` (O K of SrTiO3) and ``ti`` (Ti L2,3), each an array like
        ``energy``.
    """
    e = np.asarray(energy, dtype=np.float64)
    bg = (e / fe_l3) ** (-background_exponent)
    b_fe = 1.0  # background at L3 by construction
    b_o = (o_k_onset / fe_l3) ** (-background_exponent)

    def fe_l23(l3, l2, fwhm, ratio):
        return fe_strength * b_fe * (
            1.0 * _lorentz(e, l3, fwhm[0])
            + ratio * _lorentz(e, l2, fwhm[1])
            + 0.22 * _step(e, l3, 0.8)
            + 0.11 * _step(e, l2, 0.8)
        )

    fe = fe_l23(fe_l3, fe_l2, white_line_fwhm, white_line_ratio)
    if fe2_fraction:
        fe = (1.0 - fe2_fraction) * fe + fe2_fraction * fe_l23(fe_l3 - 1.5, fe_l2 - 1.0, (1.4, 2.0),
                                                                 1.3 * white_line_ratio)
    o_bfo = o_strength * b_o * (
        o_prepeak * _lorentz(e, o_k_onset + 0.5, 1.2)   # O 2p - Fe 3d hybridisation pre-peak
        + 0.16 * _lorentz(e, o_k_onset + 9.0, 3.0)  # O 2p - Bi 6d
        + 0.18 * _lorentz(e, o_k_onset + 14.0, 4.0)
        + 0.35 * _step(e, o_k_onset + 2.0, 1.5)
    )
    o_sto = o_strength * b_o * (
        0.16 * _lorentz(e, o_k_onset - 1.0, 1.0)   # O 2p - Ti 3d t2g/eg split
        + 0.14 * _lorentz(e, o_k_onset + 2.5, 1.4)
        + 0.22 * _lorentz(e, o_k_onset + 12.0, 3.5)
        + 0.33 * _step(e, o_k_onset + 1.0, 1.5)
    )
    b_ti = (ti_l3 / fe_l3) ** (-background_exponent)
    ti = b_ti * (
        0.12 * _lorentz(e, ti_l3 - 1.8, 0.7) + 0.20 * _lorentz(e, ti_l3, 1.0)
        + 0.14 * _lorentz(e, ti_l2 - 1.8, 1.0) + 0.20 * _lorentz(e, ti_l2, 1.4)
        + 0.12 * _step(e, ti_l3, 0.6)
    )
    return {"background": bg, "fe": fe, "o_bfo": o_bfo, "o_sto": o_sto, "ti": ti}


def _smooth_field(rng, shape, n_modes=3):
    """A slowly varying random field in [-1, 1] (sum of a few long-wavelength cosines)."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    f = np.zeros(shape)
    for _ in range(n_modes):
        ky, kx = rng.uniform(0.2, 1.2, size=2) * np.pi / np.array(shape)
        phase = rng.uniform(0, 2 * np.pi)
        f += np.cos(ky * y + kx * x + phase)
    return f / n_modes


def _shift_tables(template, grid0, h, energy, n_sub, c_min, c_max):
    """Rows ``template[c + n_sub·k]`` (k = channel) for every integer offset c."""
    base = np.rint((energy[0] - grid0) / h).astype(np.int64)
    k = np.arange(energy.size) * n_sub
    cs = np.arange(c_min, c_max + 2)
    idx = np.clip(base + cs[:, None] + k[None, :], 0, template.size - 1)
    return template[idx], c_min


def _gather(table, c0, c, f):
    """Per-pixel linear interpolation between table rows ``c`` and ``c + 1``."""
    a = table[c - c0]
    b = table[c - c0 + 1]
    return a + f[:, None] * (b - a)


def data_checksum(data) -> str:
    """A short hash of an array's values (float32), to tell the generator's output from edited data."""
    import hashlib

    arr = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
    return hashlib.blake2b(arr.tobytes(), digest_size=12).hexdigest()


class Scene:
    """Everything of one :func:`bifeo3_si` cube but the Poisson noise: the per-pixel drift,
    thickness, lattice and substrate fields drawn from ``rng`` (in the generator's order), and
    the expectation of any pixels for any spectral components.

    ``params``: the generator's parameters (as recorded in ``metadata.CVAE.synthetic``).
    """

    #: Sub-channel steps of the fine template grid.
    N_SUB = 10

    def __init__(self, params, rng):
        p = self.params = dict(params)
        ny, nx = self.shape = tuple(int(v) for v in p["shape"])
        drift, pixel_size = p["drift"], p["pixel_size"]
        self.energy = p["offset"] + p["scale"] * np.arange(int(p["size"]))
        d = np.clip(rng.normal(0.0, drift, size=(ny, nx)) if drift > 0 else np.zeros((ny, nx)),
                    -20 * max(drift, 1e-3), 20 * max(drift, 1e-3))
        yy, xx = np.mgrid[0:ny, 0:nx] * pixel_size
        k = 2 * np.pi / p["lattice_period"]
        fe_cols = (np.cos(k * xx / 2) ** 2) * (np.cos(k * yy / 2) ** 2)  # Fe on the lattice sites
        o_cols = (np.sin(k * xx / 2) ** 2) * (np.sin(k * yy / 2) ** 2)   # O between them
        contrast = p["lattice_contrast"]
        a_fe = 1 + contrast * (fe_cols - fe_cols.mean()) / max(fe_cols.std(), 1e-12) / 2
        a_o = 1 + contrast * (o_cols - o_cols.mean()) / max(o_cols.std(), 1e-12) / 2
        wedge = np.linspace(-0.5, 0.5, nx)[None, :] * np.ones((ny, 1))
        t = 1 + p["thickness_variation"] * (0.6 * wedge + 0.4 * _smooth_field(rng, (ny, nx)) / 2)
        n_sub = int(round(p["substrate_fraction"] * ny))
        self.substrate = np.zeros((ny, nx), bool)
        if n_sub:
            self.substrate[ny - n_sub:, :] = True
        self.drift = d
        # Templates on a fine grid (scale / N_SUB); a pixel with drift d reads the template at
        # E - d: integer offset c = floor(-d / h) on the fine grid and a fractional part f shared
        # by all its channels.
        self.h = p["scale"] / self.N_SUB
        margin = 25 * max(drift, 0.01) + 2 * p["scale"]
        self.grid = np.arange(self.energy[0] - margin, self.energy[-1] + margin + self.h, self.h)
        film = ~self.substrate.ravel()
        w = {"background": np.ones(ny * nx), "fe": np.where(film, a_fe.ravel(), 0.0),
             "o_bfo": np.where(film, a_o.ravel(), 0.0), "o_sto": np.where(film, 0.0, a_o.ravel()),
             "ti": np.where(film, 0.0, a_fe.ravel())}
        self.weights = {kk: (v * t.ravel()).astype(np.float32) for kk, v in w.items()}

    def components(self, **changes):
        """:func:`spectrum_components` on the fine grid with the generator's parameters, updated
        by ``changes`` (e.g. ``fe2_fraction=0.5``)."""
        p = self.params
        kw = dict(background_exponent=p["background_exponent"], o_k_onset=p["o_k_onset"],
                  fe_l3=p["fe_l3"], fe_l2=p["fe_l2"], white_line_fwhm=tuple(p["white_line_fwhm"]),
                  white_line_ratio=p["white_line_ratio"], fe_strength=p["fe_strength"])
        kw.update(changes)
        return spectrum_components(self.grid, **kw)

    def expectation(self, comp, *, drift=True, pixels=None, weights=None):
        """Expected counts before the dose normalisation, float32 ``(ny, nx, E)``, or ``(n, E)``
        for the flat indices ``pixels``.

        ``comp``: components on the fine grid (:meth:`components`, or more keys with their
        ``weights``: per-pixel weights of every key, flat, default the generator's);
        ``drift=False``: the expectation without the per-pixel drift."""
        w = self.weights if weights is None else weights
        drift_map = self.drift if drift else np.zeros_like(self.drift)
        idx = np.arange(drift_map.size) if pixels is None else np.asarray(pixels, np.int64)
        pos = -drift_map.ravel() / self.h
        c_all = np.floor(pos).astype(np.int64)
        f_all = (pos - c_all).astype(np.float32)
        tables = {kk: _shift_tables(v.astype(np.float32), self.grid[0], self.h, self.energy,
                                    self.N_SUB, c_all.min(), c_all.max())
                  for kk, v in comp.items()}
        out_all = np.empty((idx.size, self.energy.size), dtype=np.float32)
        step = 4096
        for i in range(0, idx.size, step):
            rows = idx[i:i + step]
            out = out_all[i:i + step]
            out[:] = 0.0
            for kk, (table, c0) in tables.items():
                wk = w[kk][rows]
                if not wk.any():
                    continue
                out += wk[:, None] * _gather(table, c0, c_all[rows], f_all[rows])
        return out_all.reshape(self.shape + (-1,)) if pixels is None else out_all


def bifeo3_si(shape=(192, 192), *, offset=420.0, scale=0.3, size=1200, dose=150.0,
              pixel_size=0.1, background_exponent=3.0, o_k_onset=532.0, fe_l3=708.0,
              fe_l2=721.0, white_line_fwhm=(1.6, 2.2), white_line_ratio=0.45,
              lattice_period=0.396, lattice_contrast=0.2, thickness_variation=0.2,
              fe_strength=2.0, drift=0.08, substrate_fraction=0.0, noise=True, random_state=None,
              return_expected=False, lazy=False):
    """A BiFeO3-like core-loss EELS spectrum image with Poisson noise.

    The spectrum of pixel ``p`` is the expected count

    ``t(p) · [B(E - d_p) + a_Fe(p) · Fe(E - d_p) + a_O(p) · O(E - d_p)]``

    scaled to ``dose`` and drawn from a Poisson distribution, where ``B`` is a
    power-law background, ``Fe`` the Fe L2,3 white lines on arctan continuum
    steps, ``O`` the O K edge with its near-edge peaks, ``t`` a slow thickness
    variation, ``a_Fe``/``a_O`` an atomic-column lattice modulation and ``d_p``
    a small random energy drift per pixel.

    Parameters
    ----------
    shape : tuple of int
        Map size ``(ny, nx)`` in pixels.
    offset, scale, size : float, float, int
        Energy axis: first channel (eV), dispersion (eV/channel) and number of
        channels. The default 420–780 eV covers the O K and Fe L2,3 edges and the
        690–730 eV Fe L window with room for shifts (the brief's 1024 channels
        would end at 727 eV, inside the Fe L2 line, so the default is 1200).
    dose : float
        Mean expected counts per channel inside the Fe L2,3 window (690–730 eV),
        averaged over the map. Lower dose = noisier spectra.
    pixel_size : float
        Probe step in nm (navigation axes' scale).
    background_exponent : float
        ``r`` of the power-law background ``A·E^-r`` (typically 2–5).
    o_k_onset : float
        O K edge onset in eV (~532 eV).
    fe_l3, fe_l2 : float
        Fe L3 and L2 white-line energies in eV (~708 and ~721 eV for Fe3+).
    white_line_fwhm : tuple of float
        Full widths at half maximum (eV) of the L3 and L2 white lines.
    white_line_ratio : float
        L2/L3 white-line intensity ratio (sensitive to the Fe valence).
    fe_strength : float
        Height of the Fe L3 white line relative to the power-law background
        under it (Fe concentration × thickness); lower makes the edge weaker.
    lattice_period : float
        Period of the atomic-column lattice in nm (BiFeO3 pseudo-cubic a≈0.396 nm).
    lattice_contrast : float
        Fractional modulation of the Fe and O signals by the columns (0 = none).
    thickness_variation : float
        Relative peak-to-peak variation of the specimen thickness (intensity
        scale) across the map: a linear wedge plus a slow random undulation.
    drift : float
        Standard deviation in eV of a random per-pixel energy drift (a nuisance
        of the spectrometer, not an anomaly).
    substrate_fraction : float
        Fraction of rows at the bottom of the map that are SrTiO3 substrate
        (Ti L2,3 and a different O K, no Fe). 0 gives a pure BiFeO3 film.
    noise : bool
        Draw Poisson counts (True) or return the expectation (False).
    random_state : int, numpy.random.Generator or None
        Seed for drift, thickness undulation and noise.
    return_expected : bool or "no_drift"
        Also return the noise-free expected counts (same seed, same drift and
        lattice) as a second signal. ``"no_drift"`` returns instead the
        expectation *without* the per-pixel drift (same thickness, lattice and
        substrate): the best any reconstruction can do, since a random drift of
        one pixel cannot be told from a shift of that pixel.
    lazy : bool
        Return a lazy signal (the data are generated eagerly, then wrapped).

    Returns
    -------
    CVAEEELSSpectrum or tuple
        The calibrated spectrum image (navigation axes ``x``, ``y`` in nm, energy
        axis in eV), and the expected counts if ``return_expected``.
        ``metadata.Sample.elements`` is ``["Fe"]``, the element whose edge carries
        the anomalies, so scoring windows default to Fe L2,3 (693–741 eV) on this
        cube; measured data carry no such default.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> s
    <CVAEEELSSpectrum, title: Synthetic BiFeO3 spectrum image, dimensions: (48, 48|1200)>
    >>> s.axes_manager[-1].units
    'eV'
    """
    from hyperspy.signals import Signal1D

    if dose <= 0:
        raise ValueError(f"`dose` must be positive (counts/channel), got {dose}.")
    if not 0 <= substrate_fraction < 1:
        raise ValueError(f"`substrate_fraction` must be in [0, 1), got {substrate_fraction}.")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"`shape` must be (ny, nx) with positive sizes, got {shape!r}.")
    if return_expected not in (True, False, "no_drift"):
        raise ValueError(f"`return_expected` must be True, False or 'no_drift', got {return_expected!r}.")
    params = dict(shape=[int(v) for v in shape], offset=offset, scale=scale, size=size, dose=dose,
                  pixel_size=pixel_size, background_exponent=background_exponent,
                  o_k_onset=o_k_onset, fe_l3=fe_l3, fe_l2=fe_l2,
                  white_line_fwhm=[float(v) for v in white_line_fwhm],
                  white_line_ratio=white_line_ratio, lattice_period=lattice_period,
                  lattice_contrast=lattice_contrast, thickness_variation=thickness_variation,
                  fe_strength=fe_strength, drift=drift, substrate_fraction=substrate_fraction)
    rng = np.random.default_rng(random_state)
    scene = Scene(params, rng)
    comp = scene.components()
    expected = scene.expectation(comp)

    win = (scene.energy >= 690.0) & (scene.energy < 730.0)
    ref = expected[..., win].mean() if win.any() else expected.mean()
    norm = np.float32(dose / ref)
    expected *= norm
    data = rng.poisson(expected).astype(np.float32) if noise else expected.copy()
    params["norm"] = float(norm)

    def _wrap(arr, title):
        s = Signal1D(arr)
        s.set_signal_type("CVAE_EELS")  # the registered class, without importing it
        s.metadata.General.title = title
        ax_x, ax_y, ax_e = s.axes_manager[0], s.axes_manager[1], s.axes_manager[2]
        for ax, name in ((ax_x, "x"), (ax_y, "y")):
            ax.name, ax.units, ax.scale, ax.offset = name, "nm", pixel_size, 0.0
        ax_e.name, ax_e.units, ax_e.scale, ax_e.offset = "Energy loss", "eV", scale, offset
        s.metadata.set_item("Signal.quantity", "Counts")
        # The element whose edge carries the anomalies: scoring windows default to Fe L2,3.
        s.metadata.set_item("Sample.elements", ["Fe"])
        s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
        s.metadata.set_item("Acquisition_instrument.TEM.Detector.EELS.collection_angle", 50.0)
        s.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 30.0)
        s.metadata.set_item("CVAE.synthetic", dict(
            params, generator="hyperspy_cvae.synthetic.bifeo3_si",
            random_state=random_state if isinstance(random_state, (int, type(None))) else "Generator",
            noise=noise, checksum=data_checksum(arr)))
        return s.as_lazy() if lazy else s

    s = _wrap(data, "Synthetic BiFeO3 spectrum image")
    if return_expected == "no_drift":
        bulk = scene.expectation(comp, drift=False)
        bulk *= norm
        return s, _wrap(bulk, "Synthetic BiFeO3 spectrum image (expected counts, no drift)")
    if return_expected:
        return s, _wrap(expected, "Synthetic BiFeO3 spectrum image (expected counts)")
    return s

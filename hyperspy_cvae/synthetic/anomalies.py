"""Synthetic anomalies that are not shifts: a change of the generator's spectral components in
chosen pixels, drawn exactly from the Poisson distribution of the changed expectation.

A cube made by :func:`~hyperspy_cvae.synthetic.bifeo3_si` records its parameters and seed in
``metadata.CVAE.synthetic``, so its noise-free expectation can be rebuilt pixel by pixel, with the
pixel's own drift, thickness and lattice weight, for the original components (``mu0``) and for
changed ones (``mu1``). The counts ``y ~ Poisson(mu0)`` of a chosen pixel become, channel by
channel, ``Binomial(y, mu1 / mu0)`` where ``mu1 <= mu0`` (thinning) and ``y + Poisson(mu1 - mu0)``
where ``mu1 > mu0``: exactly ``Poisson(mu1)``, with the pixel's other noise kept. The same
``(mu0, mu1)`` give each kind its likelihood-ratio oracle.

Plain array functions; :meth:`CVAEEELSSpectrum.inject_anomaly` wires them to a signal.
"""

from __future__ import annotations

import numpy as np

from .data import Scene, _lorentz, data_checksum

__all__ = ["KINDS", "NUISANCES", "anomaly_expectations", "check_kind", "generator_params", "redraw_counts"]

#: Each kind: (default strength, what the strength means, its allowed range as (low, high, open
#: at low)). All change the film only (the Fe and O of BiFeO3), except ``thickness``.
KINDS = {
    "valence": (0.5, "fraction of the Fe turned from Fe3+ to Fe2+ (L3/L2 line shapes, positions "
                     "and ratio; see spectrum_components)", (0.0, 1.0, True)),
    "l3_l2_ratio": (0.3, "relative change of the L2/L3 white-line ratio", (-1.0, np.inf, True)),
    "prepeak": (-0.9, "relative change of the O K pre-peak (O 2p – Fe 3d)", (-1.0, np.inf, False)),
    "new_peak": (0.3, "height of a new peak (FWHM 1.5 eV at `peak_energy`, default midway between "
                      "L3 and L2) relative to the Fe L3 white line", (0.0, np.inf, True)),
    "missing_edge": (1.0, "fraction of the Fe L2,3 edge removed", (0.0, 1.0, True)),
    "thickness": (0.3, "relative change of the whole spectrum's intensity (a nuisance, not an "
                       "anomaly)", (-1.0, np.inf, True)),
}
#: Kinds that a detector must not flag.
NUISANCES = ("thickness",)


def generator_params(metadata, data=None) -> dict:
    """The generator's parameters from ``metadata`` (``CVAE.synthetic``), checked: a cube of
    :func:`bifeo3_si` with an integer seed, and (given ``data``) its values unchanged."""
    p = metadata.get_item("CVAE.synthetic") if metadata.has_item("CVAE.synthetic") else None
    p = p.as_dictionary() if hasattr(p, "as_dictionary") else p
    if not p or p.get("generator") != "hyperspy_cvae.synthetic.bifeo3_si" or "norm" not in p:
        raise ValueError("inject_anomaly changes the spectral components of a cube made by "
                         "hyperspy_cvae.synthetic.bifeo3_si (its parameters are read from "
                         "metadata.CVAE.synthetic, absent or incomplete here); on other data use "
                         "inject_shift.")
    if not isinstance(p.get("random_state"), (int, np.integer)):
        raise ValueError("inject_anomaly rebuilds the generator's noise-free cube from its seed: make "
                         f"the cube with an integer random_state (it was {p.get('random_state')!r}).")
    if data is not None:
        shape = tuple(p["shape"]) + (int(p["size"]),)
        if tuple(np.shape(data)) != shape or data_checksum(data) != p.get("checksum"):
            raise ValueError("The data are no longer the generator's output (shape or values differ "
                             "from metadata.CVAE.synthetic): inject_anomaly redraws the generator's "
                             "counts and needs its untouched cube (inject anomalies before cropping, "
                             "scaling or inject_shift).")
    return p


def check_kind(kind, strength=None) -> float:
    """``strength`` of ``kind`` (its default if None), checked against the kind's range."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {tuple(KINDS)}, got {kind!r}.")
    default, meaning, (lo, hi, open_lo) = KINDS[kind]
    s = default if strength is None else strength
    try:
        s = float(s)
    except (TypeError, ValueError):
        raise ValueError(f"`strength` of {kind!r} must be a number ({meaning}), got {strength!r}.") from None
    ok = np.isfinite(s) and s != 0 and (s > lo if open_lo else s >= lo) and s <= hi
    if not ok:
        rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{']' if np.isfinite(hi) else ')'}"
        raise ValueError(f"`strength` of {kind!r} ({meaning}) must be non-zero in {rng}, got {strength!r}.")
    return s


def _changed(scene, kind, s, peak_energy):
    """Components and per-pixel weights of ``scene`` with the anomaly ``kind`` of strength ``s``."""
    p = scene.params
    weights = dict(scene.weights)
    if kind == "valence":
        comp = scene.components(fe2_fraction=s)
    elif kind == "l3_l2_ratio":
        comp = scene.components(white_line_ratio=p["white_line_ratio"] * (1 + s))
    elif kind == "prepeak":
        comp = scene.components(o_prepeak=0.20 * (1 + s))
    elif kind == "missing_edge":
        comp = scene.components()
        comp["fe"] = comp["fe"] * (1 - s)
    elif kind == "new_peak":
        comp = scene.components()
        e0 = 0.5 * (p["fe_l3"] + p["fe_l2"]) if peak_energy is None else float(peak_energy)
        comp["new_peak"] = s * p["fe_strength"] * _lorentz(scene.grid, e0, 1.5)
        weights["new_peak"] = weights["fe"]  # on the film, with the Fe lattice weight
    else:  # thickness
        comp = scene.components()
        weights = {k: (v * np.float32(1 + s)).astype(np.float32) for k, v in weights.items()}
    return comp, weights


def anomaly_expectations(params, kind, strength=None, *, pixels=None, drift=True, peak_energy=None):
    """Expected counts of a :func:`bifeo3_si` cube without and with an anomaly: ``(mu0, mu1)``.

    Parameters
    ----------
    params : dict
        The generator's parameters (``metadata.CVAE.synthetic``, see :func:`generator_params`).
    kind : str
        One of :data:`KINDS`.
    strength : float, optional
        The kind's strength (its default if None; see :data:`KINDS`).
    pixels : array of int, optional
        Flat pixel indices; default every pixel (arrays ``(ny, nx, E)``).
    drift : bool
        Include each pixel's energy drift (False: the drift-free bulk, the reference of an oracle
        that does not know the drift).
    peak_energy : float, optional
        Centre of the ``new_peak`` in eV.

    Returns
    -------
    tuple of numpy.ndarray (float32)
        ``mu0`` equals the generator's expected counts (``return_expected``) bit for bit.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> from hyperspy_cvae.synthetic.anomalies import anomaly_expectations, generator_params
    >>> s, ex = bifeo3_si((8, 8), random_state=0, return_expected=True)
    >>> mu0, mu1 = anomaly_expectations(generator_params(s.metadata), "missing_edge")
    >>> bool((mu0 == ex.data).all()), bool((mu1 <= mu0).all())
    (True, True)
    """
    s = check_kind(kind, strength)
    scene = Scene(params, np.random.default_rng(int(params["random_state"])))
    norm = np.float32(params["norm"])
    comp1, w1 = _changed(scene, kind, s, peak_energy)
    mu0 = scene.expectation(scene.components(), drift=drift, pixels=pixels)
    mu1 = scene.expectation(comp1, drift=drift, pixels=pixels, weights=w1)
    mu0 *= norm
    mu1 *= norm
    return mu0, mu1


def redraw_counts(y, mu0, mu1, rng):
    """Counts ``y ~ Poisson(mu0)`` redrawn as ``Poisson(mu1)``, channel by channel: binomial
    thinning where ``mu1 <= mu0``, added ``Poisson(mu1 - mu0)`` counts elsewhere.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.poisson(100.0, 20000).astype(float)
    >>> z = redraw_counts(y, np.full(20000, 100.0), np.full(20000, 40.0), rng)
    >>> round(float(z.mean())), round(float(z.var()))
    (40, 40)
    """
    y = np.asarray(y)
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("Redrawing needs counts (non-negative integers).")
    mu0 = np.asarray(mu0, np.float64)
    mu1 = np.asarray(mu1, np.float64)
    keep = np.divide(mu1, mu0, out=np.ones_like(mu1), where=mu0 > 0)
    down = mu1 <= mu0
    out = np.where(down, rng.binomial(y.astype(np.int64), np.clip(keep, 0.0, 1.0)), y)
    out = out + np.where(down, 0, rng.poisson(np.where(down, 0.0, mu1 - mu0)))
    return out.astype(y.dtype if y.dtype.kind == "f" else np.float64)

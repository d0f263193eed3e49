"""The detector's noise model: read from HyperSpy's metadata or estimated from the data, and the
conversion of intensities to Poisson-equivalent counts that every Poisson step then uses.

HyperSpy's linear model (``metadata.Signal.Noise_properties.Variance_linear_model``) is
``Var[X] = (gain_factor · E[X] + gain_offset) · correlation_factor``. Folding the correlation
factor in, ``Var = A · E + B`` with ``A = gain_factor · correlation_factor`` (the effective gain,
intensity units per count) and ``B = gain_offset · correlation_factor`` (the variance at zero
signal: read noise, less ``A`` times a dark level left in the data). Then

``z = X / A + B / A²``

has ``Var[z] = E[z]``: Poisson-equivalent counts (the shifted-Poisson approximation of
Poisson–Gaussian noise). The training loss, the scores and the thresholds, written for counts,
are calibrated on ``z``; results go back to the data's units with :meth:`NoiseModel.from_counts`.

Without metadata, ``A`` and ``B`` are estimated from the data: a PCA of a sample of spectra
gives each channel's expected value, and the variance of the residuals, in bins of that
expected value, is fitted by a straight line (:func:`estimate_noise_model`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseModel", "COUNTS", "read_noise_model", "fitted_noise_model", "estimate_noise_model",
           "resolve_noise_model", "counts_signal", "keep_noise_model"]

_logger = logging.getLogger(__name__)

#: Data are taken as plain counts when the estimated variance is within this fraction of the
#: expected value over the whole range it was fitted on (the slope and intercept of an estimate
#: on a narrow range trade off; their variance at the data's intensities does not, and the
#: simpler model adds no estimation noise).
COUNTS_TOLERANCE = 0.1
#: When the smallest expected value is above this fraction of the largest, the data say nothing
#: about the variance at zero signal (an intercept would be extrapolated, and a large one adds a
#: pedestal to every channel that blunts the shift score): the fit is then ``Var = A·E``.
FAR_FROM_ZERO = 0.2
#: A metadata model whose gain differs from the data's estimate by more than this factor is
#: called wrong (the estimate is used, and both are recorded).
WRONG_METADATA_FACTOR = 2.0


@dataclass(frozen=True)
class NoiseModel:
    """``Var = gain · E + offset`` in the data's units (correlation folded in).

    Examples
    --------
    >>> nm = NoiseModel(gain=4.0, offset=32.0, source="given")
    >>> z = nm.to_counts(np.array([40.0, 400.0]))
    >>> z.tolist(), nm.from_counts(z).tolist()
    ([12.0, 102.0], [40.0, 400.0])
    """

    gain: float
    offset: float = 0.0
    source: str = "counts"
    detail: str = ""
    support: tuple = ()  # the expected values (min, max) an estimate was fitted on

    def __post_init__(self):
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"The noise model's gain must be a positive number, got {self.gain!r}.")
        if not np.isfinite(self.offset):
            raise ValueError(f"The noise model's offset must be finite, got {self.offset!r}.")

    @property
    def is_counts(self) -> bool:
        """True when the data are used as they are (``gain`` 1, ``offset`` 0)."""
        return self.gain == 1.0 and self.offset == 0.0

    @property
    def shift(self) -> float:
        """``B / A²``: the counts added to every channel by the conversion."""
        return self.offset / self.gain**2

    def to_counts(self, data):
        """Poisson-equivalent counts ``max(X / A + B / A², 0)`` (float32; numpy or dask)."""
        if self.is_counts:
            return data
        out = data / np.float32(self.gain) + np.float32(self.shift)
        out = out.clip(0, None) if hasattr(out, "clip") else np.clip(out, 0, None)
        return out.astype(np.float32)

    def from_counts(self, counts):
        """Back to the data's units: ``A · (z − B / A²)``."""
        if self.is_counts:
            return counts
        return ((counts - np.float32(self.shift)) * np.float32(self.gain)).astype(np.float32)

    def as_metadata(self) -> dict:
        """HyperSpy's three parameters (correlation folded into gain and offset) and the source."""
        d = {"gain_factor": float(self.gain), "gain_offset": float(self.offset), "correlation_factor": 1.0,
             "source": self.source}
        if self.detail:
            d["detail"] = self.detail
        return d


COUNTS = NoiseModel(1.0, 0.0, "counts")


def read_noise_model(metadata, path="Signal.Noise_properties.Variance_linear_model", source="metadata"):
    """The model in ``metadata.Signal.Noise_properties.Variance_linear_model`` (or another ``path``
    holding HyperSpy's three parameters), or None."""
    if not metadata.has_item(path):
        return None
    vlm = metadata.get_item(path)
    vlm = vlm.as_dictionary() if hasattr(vlm, "as_dictionary") else dict(vlm)
    try:
        a = float(vlm.get("gain_factor", 1.0))
        b = float(vlm.get("gain_offset", 0.0))
        c = float(vlm.get("correlation_factor", 1.0))
    except (TypeError, ValueError):
        raise ValueError(f"metadata.{path} holds non-numbers: {vlm!r}.") from None
    if not (a > 0 and c > 0 and np.isfinite(b)):
        raise ValueError(f"metadata.{path} must have gain_factor > 0, correlation_factor > 0 and a finite "
                         f"gain_offset; got {vlm!r}.")
    return NoiseModel(a * c, b * c, source)


def fitted_noise_model(metadata):
    """The model ``fit_cvae`` used, from ``metadata.CVAE.model.noise``, or None."""
    source = metadata.get_item("CVAE.model.noise.source", "recorded")
    return read_noise_model(metadata, "CVAE.model.noise", f"the fit's ({source})")


def _sample(data, n_max, rng):
    """Up to ``n_max`` spectra of ``data`` (..., E) as float64 numpy: random spectra of a numpy
    array; of a dask array, whole blocks in random order until ``n_max`` (a lazy map is read only
    that far)."""
    if hasattr(data, "dask"):
        data = data.rechunk({data.ndim - 1: -1})      # whole spectra in each block
        blocks = list(np.ndindex(*data.numblocks))
        parts, n = [], 0
        for i in rng.permutation(len(blocks)):
            b = np.asarray(data.blocks[blocks[i]].compute())
            parts.append(b.reshape(-1, b.shape[-1]))
            n += len(parts[-1])
            if n >= n_max:
                break
        data = np.concatenate(parts)
    flat = np.asarray(data).reshape(-1, data.shape[-1])
    n = flat.shape[0]
    idx = np.sort(rng.choice(n, n_max, replace=False)) if n > n_max else np.arange(n)
    return np.asarray(flat[idx], np.float64)


def estimate_noise_model(data, *, n_components=8, n_bins=24, max_spectra=4096, random_state=0):
    """Estimate ``Var = gain · E + offset`` from spectra ``data`` (..., E), numpy or dask.

    Up to ``max_spectra`` spectra are split in two halves: the mean and ``n_components``
    principal components of one give the expected value of every channel of the other (so the
    components have not absorbed the noise they are judged on; each channel's residual is
    corrected for the share of its noise the projection removes). The 1 % of spectra with the
    largest residuals relative to their intensity (glitches, outliers) are left out; the residuals'
    mean square, in ``n_bins`` quantile bins of the expected value, is fitted by a weighted
    straight line (through the origin when no expected value comes near zero:
    ``FAR_FROM_ZERO``).

    Returns
    -------
    NoiseModel
        ``source="estimated"``; ``detail`` gives the fit's range and its residual.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = np.linspace(20, 200, 300) * rng.uniform(0.8, 1.2, (2000, 1))
    >>> y = 3.0 * rng.poisson(mu) + rng.normal(0, 5, mu.shape) - 40   # gain 3, read noise 5, dark -40
    >>> nm = estimate_noise_model(y)
    >>> round(nm.gain, 1), round(nm.offset / 10) * 10   # B = 25 - 3 · (-40) = 145
    (3.0, 150)
    """
    rng = np.random.default_rng(random_state)
    y = _sample(data, max_spectra, rng)
    y = y[np.isfinite(y).all(1)]  # NaN/inf are refused by the steps that use the data, with their fix
    n, e = y.shape
    k = int(min(n_components, max(1, min(n, e) // 4)))
    if n < 2 * (k + 2) or e < 2 * (k + 2):
        raise ValueError(f"Too few spectra or channels ({n} × {e}) to estimate the noise model; give it "
                         "in metadata.Signal.Noise_properties.Variance_linear_model or use noise='counts'.")
    a_half, b_half = y[0::2], y[1::2]       # components from one half, residuals of the other
    mean = a_half.mean(0)
    vt = np.linalg.svd(a_half - mean, full_matrices=False)[2][:k]
    fit = mean + ((b_half - mean) @ vt.T) @ vt
    r = b_half - fit
    # the projection removes a share h_j of channel j's noise, the half's mean adds 1/n_A
    keep_share = 1.0 - (vt**2).sum(0) + 1.0 / len(a_half)
    r2 = r**2 / keep_share
    rel = r2.sum(1) / np.maximum(np.abs(fit), 1.0).sum(1)     # glitches and outliers: the top 1 %
    keep = rel <= np.quantile(rel, 0.99)
    fit, r2 = fit[keep].ravel(), r2[keep].ravel()
    edges = np.unique(np.quantile(fit, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, fit, side="right") - 1, 0, len(edges) - 2)
    cnt = np.bincount(which, minlength=len(edges) - 1)
    ok = cnt > 10
    if ok.sum() < 3:
        raise ValueError("The spectra have too narrow a range of intensities to estimate the noise model; "
                         "give it in metadata.Signal.Noise_properties.Variance_linear_model.")
    xm = np.bincount(which, fit, minlength=len(cnt))[ok] / cnt[ok]
    vm = np.bincount(which, r2, minlength=len(cnt))[ok] / cnt[ok]
    w = cnt[ok] / np.maximum(vm, 1e-12) ** 2          # Var of a mean square ∝ var² / n
    sw = np.sqrt(w)
    through_origin = xm.min() > FAR_FROM_ZERO * xm.max()
    if through_origin:  # the intercept would be an extrapolation far outside the data: Var = A·E
        a, b = float(np.sum(w * xm * vm) / np.sum(w * xm**2)), 0.0
    else:
        design = np.stack([xm, np.ones_like(xm)], 1)
        (a, b), *_ = np.linalg.lstsq(design * sw[:, None], vm * sw, rcond=None)
    design = np.stack([xm, np.ones_like(xm)], 1)
    if not (np.isfinite(a) and a > 0):
        raise ValueError("The residual variance does not grow with the signal here (fitted gain "
                         f"{a:.3g}): no Poisson-like noise model fits; give one in "
                         "metadata.Signal.Noise_properties.Variance_linear_model.")
    rel = float(np.sqrt(np.average((design @ [a, b] / vm - 1) ** 2, weights=cnt[ok])))
    detail = (f"fitted on {n} spectra × {e} channels, expected values {xm.min():.3g}–{xm.max():.3g}, "
              f"PCA({k}) residuals{', through the origin (no values near 0)' if through_origin else ''}; "
              f"rms relative misfit {rel:.3f}")
    return NoiseModel(float(a), float(b), "estimated", detail, (float(xm.min()), float(xm.max())))


def resolve_noise_model(signal, noise="auto", data=None, *, random_state=0):
    """The noise model of ``signal`` for ``noise``:

    * ``"auto"``: the metadata's model, unless the data's estimate differs from it by more than
      ``WRONG_METADATA_FACTOR`` in gain (then the estimate, with a warning); without metadata the
      estimate, or plain counts when the estimate says ``Var = E`` within ``COUNTS_TOLERANCE`` over
      the data's intensities;
    * ``"counts"``: the data are Poisson counts as they are;
    * ``"estimate"``: the estimate, whatever the metadata say;
    * a :class:`NoiseModel`, or a dict of HyperSpy's ``gain_factor``, ``gain_offset``,
      ``correlation_factor``.

    ``data``: the array to estimate from (default ``signal.data``; pass the fit range).
    """
    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, dict):
        unknown = set(noise) - {"gain_factor", "gain_offset", "correlation_factor"}
        if unknown:
            raise ValueError(f"A noise model dict takes gain_factor, gain_offset and correlation_factor; "
                             f"got {sorted(unknown)}.")
        from hyperspy.misc.utils import DictionaryTreeBrowser

        given = read_noise_model(DictionaryTreeBrowser({"Signal": {"Noise_properties": {
            "Variance_linear_model": noise}}}))
        return NoiseModel(given.gain, given.offset, "given")
    if noise not in ("auto", "counts", "estimate"):
        raise ValueError(f"`noise` must be 'auto', 'counts', 'estimate', a NoiseModel or a dict of "
                         f"gain_factor/gain_offset/correlation_factor; got {noise!r}.")
    if noise == "counts":
        return COUNTS
    data = signal.data if data is None else data
    meta = read_noise_model(signal.metadata)
    try:
        est = estimate_noise_model(data, random_state=random_state)
    except ValueError as err:
        if noise == "estimate":
            raise
        fallback = meta or COUNTS
        _logger.warning("The noise model could not be estimated from the data (%s); %s.", err,
                        "the metadata's is used" if meta else "the data are used as counts")
        return NoiseModel(fallback.gain, fallback.offset, f"{fallback.source} (no estimate: {err})")
    if noise == "estimate":
        return est
    if meta is not None:
        if max(meta.gain / est.gain, est.gain / meta.gain) <= WRONG_METADATA_FACTOR:
            return meta
        _logger.warning("metadata.Signal.Noise_properties.Variance_linear_model gives a gain of %.3g, the data "
                        "%.3g: the estimate is used.", meta.gain, est.gain)
        return NoiseModel(est.gain, est.offset, "estimated (metadata disagreed)",
                          f"{est.detail}; metadata gain {meta.gain:.4g}, offset {meta.offset:.4g}")
    x = np.array(est.support)
    if np.all(np.abs((est.gain * x + est.offset) / x - 1) <= COUNTS_TOLERANCE):
        return NoiseModel(1.0, 0.0, "counts (the estimate agrees)",
                          f"estimated gain {est.gain:.4g}, offset {est.offset:.4g}")
    return est



def counts_signal(signal, model):
    """``signal`` with its data as Poisson-equivalent counts under ``model``: a new signal (lazy if
    ``signal`` is) whose metadata record the model (``CVAE.noise``) and now say plain counts;
    ``signal`` itself when the model is plain counts. ``signal`` is not modified."""
    if model.is_counts:
        return signal
    out = signal._deepcopy_with_new_data(model.to_counts(signal.data))
    out.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                          {"gain_factor": 1.0, "gain_offset": 0.0, "correlation_factor": 1.0})
    out.metadata.set_item("CVAE.noise", model.as_metadata())
    return out


def keep_noise_model(source, target):
    """Copy ``source``'s ``Variance_linear_model`` (the detector's, still true of data derived from it
    count by count) to ``target``, whose ``_deepcopy_with_new_data`` dropped the whole
    ``Noise_properties`` (a per-pixel variance would no longer apply); returns ``target``."""
    path = "Signal.Noise_properties.Variance_linear_model"
    if source.metadata.has_item(path):
        vlm = source.metadata.get_item(path)
        target.metadata.set_item(path, vlm.as_dictionary() if hasattr(vlm, "as_dictionary") else dict(vlm))
    return target

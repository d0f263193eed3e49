"""The detector's steps as plain functions of a spectrum image: fit, reconstruct, score, threshold.

Data flow one way: signal → :class:`~hyperspy_cvae._validation.EnergyWindow` (made once, here) →
reconstruction (CVAE shards through :mod:`.cvae.streaming`, or HyperSpy PCA) → score map
(:mod:`.scores`) → threshold → :class:`~hyperspy_cvae.results.AnomalyResult`, which keeps what
plotting needs. The signal class's methods validate their arguments and call these.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ._arrays import compute_all
from ._linescan import as_line, as_map, is_line, is_one_row, middle_row
from ._maps import navigation_map
from ._sources import check_lazy_source
from ._validation import (all_spectra_identical, check_counts, check_finite_score, check_map_signal,
                          crop_energy, crop_to_model, energy_axis, energy_window, navigation_mask_array,
                          pixel_mask)
from ._version import __version__
from .cvae.sampling import resolve_shard_size
from .noise import counts_signal, resolve_noise_model
from .results import AnomalyResult

__all__ = ["fit_cvae", "cvae_decomposition", "reconstruct", "anomaly_map", "shift_map",
           "compare_methods", "fit_arguments"]

#: ``fit_cvae`` arguments that are not :class:`~hyperspy_cvae.CVAE` parameters.
_FIT_ONLY = ("signal_range", "train_mask", "max_train_shards", "noise")
#: Arguments of :func:`cvae_decomposition` that an anomaly map passes on to the reconstruction.
_DECOMPOSITION = ("stride", "blend", "batch_size", "chunk", "device")
#: CVAE parameters that belong to where the model runs, not to what it learns.
_RUNTIME = ("device", "show_progressbar")


def fit_arguments():
    """Names accepted by ``fit_cvae`` besides ``show_progressbar`` and ``device``: the
    :class:`~hyperspy_cvae.CVAE` parameters plus ``signal_range``, ``train_mask`` and
    ``max_train_shards``."""
    from .cvae import CVAE

    return tuple(_FIT_ONLY) + tuple(k for k in CVAE._get_param_names() if k not in _RUNTIME)


# --------------------------------------------------------------------------- CVAE
def default_fit_range(signal, edge=None):
    """``(signal_range, source)`` for training when none is given: the fit range of the named
    ``edge`` or of the edges of ``metadata.Sample.elements`` (:func:`~hyperspy_cvae.edges.fit_range`),
    else the whole axis (``None``)."""
    from .edges import fit_range, resolve_window

    if edge is None and not signal.metadata.get_item("Sample.elements"):
        return None, "the whole energy axis"
    window, label = resolve_window(signal, edge=edge)
    return fit_range(signal, window), f"edge {label}: its window ± FIT_MARGIN eV, clipped to the axis"


def fit_cvae(signal, signal_range=None, train_mask=None, *, max_train_shards=None, edge=None, noise="auto",
             robust=False, **params):
    """Train a :class:`~hyperspy_cvae.CVAE` on ``signal`` cropped to ``signal_range`` (default:
    :func:`default_fit_range`), in Poisson-equivalent counts under the ``noise`` model
    (:func:`~hyperspy_cvae.noise.resolve_noise_model`); with ``robust``, again without the pixels
    the first model flags (:mod:`~hyperspy_cvae.robust`).

    Returns ``(cvae, model_metadata)``; the caller decides where to keep them.
    """
    if robust:
        from .robust import fit_robust

        return fit_robust(signal, signal_range, train_mask, max_train_shards=max_train_shards, edge=edge,
                          noise=noise, **params)
    from .cvae import CVAE

    if signal_range is not None and edge is not None:
        raise ValueError("Give `signal_range` (eV) or `edge` (a name), not both.")
    source = "given"
    if signal_range is None:
        signal_range, source = default_fit_range(signal, edge)

    unknown = sorted(set(params) - set(CVAE._get_param_names()))
    if unknown:
        raise TypeError(f"fit_cvae got unknown argument(s) {unknown}; valid: {', '.join(fit_arguments())}, "
                        "device, show_progressbar.")
    cvae = CVAE(**params)
    if is_line(signal) or is_one_row(signal):  # a map of identical rows, one shard high
        n = signal.axes_manager.navigation_shape[0]
        rows = resolve_shard_size(cvae.shard_size, (n, n))
        cvae.shard_size = rows  # shards one map high: the line's whole 1D context in each
        if train_mask is not None:
            line_mask = pixel_mask(signal, train_mask, name="train_mask", meaning="True = learn from the pixel")
            train_mask = np.repeat(line_mask.reshape(1, -1), rows, axis=0)
        signal = as_map(signal, rows)
    nav = tuple(signal.axes_manager.navigation_shape[::-1])
    min_size = resolve_shard_size(cvae.shard_size, nav) if len(nav) == 2 else 8
    check_map_signal(signal, min_size=min_size, what="fit_cvae")
    check_lazy_source(signal)
    cropped, sr = crop_energy(signal, signal_range)
    ax = energy_axis(cropped)
    if train_mask is not None:
        train_mask = pixel_mask(signal, train_mask, name="train_mask", meaning="True = learn from the pixel")
    if not cropped._lazy:
        check_counts(cropped.data, name="The signal")
    nm = resolve_noise_model(cropped, noise, random_state=_seed(params.get("random_state")))
    cvae.fit(nm.to_counts(cropped.data), train_mask=train_mask,
             energy_axis={"offset": float(ax.offset), "scale": float(ax.scale), "size": int(ax.size),
                          "units": str(ax.units)},
             max_train_shards=max_train_shards)
    cvae.signal_range_ = list(sr)
    info = {"checksum": cvae.checksum(), "signal_range": list(sr), "signal_range_source": source,
            "latent_dim": int(cvae.latent_dim),
            "beta": float(cvae.beta), "fit_seconds": float(cvae.fit_seconds_),
            "noise": nm.as_metadata(), "package_version": __version__}
    return cvae, info


def _seed(random_state):
    """An integer seed for the noise estimate's sample (0 unless ``random_state`` is an int)."""
    return int(random_state) if isinstance(random_state, (int, np.integer)) else 0


def _counts(signal, noise, win, cvae=None):
    """``(model, work)``: the noise model of ``signal`` (:func:`~hyperspy_cvae.noise.resolve_noise_model`,
    estimated on the model's energy range, else the window's fit range) and ``signal`` in
    Poisson-equivalent counts (``signal`` itself for counts), sharing ``signal``'s fitted model."""
    from .edges import fit_range

    cvae = cvae if cvae is not None else getattr(signal, "cvae", None)
    rng = getattr(cvae, "signal_range_", None) or fit_range(signal, win)
    nm = resolve_noise_model(signal, noise, crop_energy(signal, rng)[0].data)
    work = counts_signal(signal, nm)
    if work is not signal and getattr(signal, "cvae", None) is not None:
        work.cvae = signal.cvae
    return nm, work


def _in_user_units(signal, work, nm, original, rec):
    """``original`` and ``rec`` (computed on ``work``) back in ``signal``'s units; a model fitted
    on ``work`` on the way, and the latent map, are attached to ``signal``."""
    if work is signal:
        return original, rec
    if getattr(work, "cvae", None) is not None and getattr(signal, "cvae", None) is not work.cvae:
        signal.cvae = work.cvae
        signal.metadata.set_item("CVAE.model", work.metadata.CVAE.model.as_dictionary())
    if getattr(work, "cvae_results", None) is not None:  # the latent map (the same in any units)
        signal.cvae_results = work.cvae_results
    ax = energy_axis(original)
    full = energy_axis(signal)
    start = int(full.value2index(float(ax.axis[0])))  # by channel: the same channels as ``original``
    user = signal if ax.size == full.size else signal.isig[start:start + ax.size]
    if rec is not None:
        rec = rec._deepcopy_with_new_data(nm.from_counts(rec.data))
    return user, rec


def model_provenance(cvae):
    """What identifies a fitted model in results' metadata."""
    sr = getattr(cvae, "signal_range_", None)
    return {"signal_range": [float(v) for v in sr] if sr else None, "model_checksum": cvae.checksum(),
            "checkpoint": getattr(cvae, "checkpoint_path_", None) or "", "package_version": __version__}


def cvae_decomposition(signal, cvae, *, stride=None, batch_size=None, device="auto",
                       show_progressbar=None, chunk=None, blend=None):
    """Reconstruct ``signal`` with a fitted CVAE (latent means), shard by shard through dask.

    Returns ``(reconstruction, latent_results)``: the reconstruction over the
    model's energy range (lazy for a lazy signal) and a dict with the latent
    map (``"latent_map"``), the shard positions, stride and shard size.
    """
    from hyperspy.defaults_parser import preferences

    from .cvae.streaming import (ModelHandle, active_client, compute_eager, forward_block, map_shards,
                                 prepare_block)
    from .latent.grid import latent_map_signal

    cvae.to(device)
    s_size = int(cvae.shard_size_)
    if is_line(signal) or is_one_row(signal):  # the middle row of a map of identical rows
        rec, results = cvae_decomposition(as_map(signal, s_size), cvae, stride=stride, batch_size=batch_size,
                                          device=device, show_progressbar=show_progressbar, chunk=chunk,
                                          blend=blend)
        rec = middle_row(rec)
        rec.metadata.set_item("CVAE.reconstruction.line_scan",
                              f"the line as {s_size} identical rows; the middle row is returned")
        return (as_line(rec) if is_line(signal) else rec), results
    check_map_signal(signal, min_size=s_size, what="cvae_decomposition")
    check_lazy_source(signal)
    cropped = crop_to_model(signal, cvae)
    if not signal._lazy:
        check_counts(cropped.data, name="The signal")
    stride = int(stride) if stride is not None else max(1, s_size // 2)
    blend = _blend(blend, stride, s_size)
    # The model travels once per worker (scattered), never pickled into every task.
    payload = ModelHandle(cvae, device) if active_client() is not None else cvae
    show = preferences.General.show_progressbar if show_progressbar is None else show_progressbar
    recon, latents, grid = map_shards(cropped.data, partial(forward_block, batch_size=batch_size),
                                      shard_size=s_size, stride=stride, n_out=cvae.n_channels_,
                                      chunk=chunk, latent_dim=int(cvae.latent_dim), payload=payload,
                                      prepare=prepare_block, blend=blend, show_progressbar=bool(show))
    if not signal._lazy:
        recon, latents = compute_eager(recon, latents, show)
    provenance = model_provenance(cvae)
    rec = cropped._deepcopy_with_new_data(recon)
    rec.metadata.General.title = f"CVAE reconstruction of {signal.metadata.General.title}"
    rec.metadata.set_item("CVAE.reconstruction", {
        "method": "CVAE", "stride": stride, "shard_size": s_size, "blend": blend,
        "signal_range": provenance["signal_range"], "model_checksum": provenance["model_checksum"],
        "latent": "mean", "checkpoint": provenance["checkpoint"], "package_version": __version__})
    lat_stride, pos_y, pos_x = stride, grid["pos_y"], grid["pos_x"]
    if blend == "quincunx":  # the kept shards of even row and column: a full grid of stride S
        latents, lat_stride, pos_y, pos_x = latents[::2, ::2], 2 * stride, pos_y[::2], pos_x[::2]
    lat = latents.transpose(2, 0, 1) if not isinstance(latents, np.ndarray) else np.moveaxis(latents, 2, 0)
    latent_map = latent_map_signal(lat, signal, stride=lat_stride, shard_size=s_size,
                                   provenance=dict(provenance, source=signal.metadata.General.title))
    results = {"latent_map": latent_map, "pos_y": pos_y, "pos_x": pos_x,
               "stride": lat_stride, "shard_size": s_size}
    return rec, results


def _blend(blend, stride, shard_size):
    """``blend`` of :func:`cvae_decomposition` resolved: ``"quincunx"`` by default at half-shard
    stride, else ``"full"``."""
    half = 2 * stride == shard_size
    if blend is None:
        return "quincunx" if half else "full"
    if blend not in ("quincunx", "full"):
        raise ValueError(f"`blend` must be 'quincunx' or 'full', got {blend!r}.")
    if blend == "quincunx" and not half:
        raise ValueError(f"blend='quincunx' needs the half-shard stride ({shard_size // 2}), got "
                         f"stride={stride}; use blend='full' with other strides.")
    return blend


def model_of(signal, cvae=None):
    """``cvae``, or the model attached to ``signal``, or a clear error."""
    cvae = cvae if cvae is not None else getattr(signal, "cvae", None)
    if cvae is None:
        raise RuntimeError("No fitted CVAE: call `s.fit_cvae(...)` or `s.load_cvae(path)` first, "
                           "or pass `cvae=`.")
    return cvae


# ------------------------------------------------------------------ reconstruction
def reconstruct(signal, method, window, *, n_components=3, cvae=None, show_progressbar=None, **kwargs):
    """``(original, reconstruction)`` on the same energy axis, for ``method`` "pca" or "cvae".

    ``"cvae"`` uses ``cvae`` or ``signal.cvae``; with none and ``fit_cvae``
    arguments in ``kwargs`` it fits one first (through ``signal.fit_cvae``, so
    the model is attached to the signal) on ``signal_range`` (default: the
    window ± ``FIT_MARGIN`` eV, clipped to the axis). Other ``kwargs`` go to HyperSpy's
    ``decomposition`` (PCA) or to :func:`cvae_decomposition` (CVAE).
    """
    from .baselines import pca_reconstruction

    if method == "pca":
        return signal, pca_reconstruction(signal, n_components, **kwargs)
    if method != "cvae":
        raise ValueError(f"`method` must be 'pca', 'cvae' or 'rx', got {method!r}.")
    if cvae is None:
        cvae = getattr(signal, "cvae", None)
    # With a fitted model, ``stride`` and ``batch_size`` (also training parameters) are the
    # reconstruction's; without one they train the model fitted here.
    fit_kw = {k: kwargs.pop(k) for k in list(kwargs)
              if k in fit_arguments() and (cvae is None or k not in _DECOMPOSITION)}
    if cvae is None:
        if not fit_kw:
            raise RuntimeError(
                "No fitted CVAE on this signal: call `s.fit_cvae(...)` first, pass `cvae=`, "
                "or pass fit_cvae arguments (e.g. `max_steps=400, random_state=0`) to fit one now.")
        if "signal_range" not in fit_kw:
            from .edges import fit_range

            fit_kw["signal_range"] = fit_range(signal, window)
        cvae = signal.fit_cvae(show_progressbar=show_progressbar, **fit_kw)
    elif fit_kw:
        raise ValueError(f"A fitted CVAE exists; fit arguments {sorted(fit_kw)} would be ignored. "
                         "Call `s.fit_cvae(...)` to refit.")
    rec = signal.cvae_decomposition(cvae=cvae, show_progressbar=show_progressbar, **kwargs)
    return crop_to_model(signal, cvae), rec


def _checked_input(signal, window, edge=None):
    """``(window, edge)``: the scoring window on ``signal``'s axis and the edge name it came from
    (:func:`~hyperspy_cvae.edges.resolve_window`: ``window``, a named ``edge`` or the edges of
    ``metadata.Sample.elements``), after the checks every score needs."""
    from .edges import resolve_window

    window, edge = resolve_window(signal, window, edge)
    name = "window" if edge is None else f"window of edge {edge!r}"
    win = energy_window(signal, window, name=name)
    check_map_signal(signal, min_size=1 if is_one_row(signal) else 2, what="anomaly_map")
    if not signal._lazy:
        check_counts(signal.data, name="The signal")
    check_lazy_source(signal)
    return win, edge


def _on_line(function, signal, cvae, navigation_mask, **kwargs):
    """``function`` (anomaly_map or shift_map) of a line scan, run on the line as a one-row map;
    a model fitted on the way is attached to the line."""
    row = as_map(signal, 1)
    cvae = cvae if cvae is not None else getattr(signal, "cvae", None)
    if navigation_mask is not None:
        kwargs["navigation_mask"] = navigation_mask_array(signal, navigation_mask).reshape(1, -1)
    out = function(row, cvae=cvae, **kwargs)
    if cvae is None and getattr(row, "cvae", None) is not None:
        signal.cvae = row.cvae
        signal.metadata.set_item("CVAE.model", row.metadata.CVAE.model.as_dictionary())
    return out


# ------------------------------------------------------------------------ scores
def anomaly_map(signal, method="pca", window=None, *, n_components=3, threshold="otsu",
                score="shift", cvae=None, show_progressbar=None, max_shift=10.0, navigation_mask=None,
                edge=None, spatial=None, fdr=0.05, noise="auto", direction="both", nuisance="scale", **kwargs):
    """Score every pixel and classify anomalies; see ``CVAEEELSSpectrum.anomaly_map``.

    Returns an :class:`~hyperspy_cvae.results.AnomalyResult`.
    """
    from .baselines import rx_map
    from .scores import SCORES, leave_out, score_map
    from .scores.shift import check_direction, check_nuisance
    from .scores.spatial import resolve_scales

    if score not in SCORES:
        raise ValueError(f"`score` must be one of {tuple(SCORES)}, got {score!r}.")
    check_direction(direction, score, method)
    check_nuisance(nuisance, score, method)
    spatial = resolve_scales(spatial)
    if not (isinstance(fdr, (int, float, np.floating)) and not isinstance(fdr, bool) and 0 < fdr < 1):
        raise ValueError(f"`fdr` (the false-discovery rate) must be a number in (0, 1), got {fdr!r}.")
    if is_line(signal):
        res = _on_line(anomaly_map, signal, cvae, navigation_mask, method=method, window=window,
                       n_components=n_components, threshold=threshold, score=score, nuisance=nuisance,
                       show_progressbar=show_progressbar, max_shift=max_shift, edge=edge,
                       spatial=spatial, fdr=fdr, noise=noise, direction=direction, **kwargs)
        return AnomalyResult(as_line(res.score), as_line(res.mask), original=as_line(res.original),
                             reconstruction=as_line(res.reconstruction), window=res.window,
                             method=res.method, labels=as_line(res.labels), pooled=as_line(res.pooled),
                             regions=res.regions, noise=res.noise, max_shift=max_shift)
    if navigation_mask is not None:
        check_map_signal(signal, min_size=1, what="anomaly_map")
        navigation_mask = navigation_mask_array(signal, navigation_mask)
    win, edge = _checked_input(signal, window, edge)
    nm, work = _counts(signal, noise, win, cvae)
    shift = None  # the shift map, kept where pooling needs its sign
    analyses = {}  # what describe() can reuse
    if method == "rx":
        smap = rx_map(work, win, n_components=n_components, **kwargs)
        label, original, rec = smap.metadata.CVAE.score.method, work, None
    else:
        original, rec = reconstruct(work, method, win, n_components=n_components, cvae=cvae,
                                    show_progressbar=show_progressbar, **kwargs)
        win = energy_window(original, win, axis_name="the model's energy range")
        if score == "shift":  # kept: its sign for pooling and FDR, its shifts for describe()
            from .scores import directional_shift_score, shift_analysis

            analyses["shift"] = shift_analysis(original, rec, win, max_shift, nuisance)
            smap = directional_shift_score(analyses["shift"]["score"], analyses["shift"]["shift"],
                                           direction)
            if direction == "both" and (spatial is not None or threshold == "fdr"):
                shift = analyses["shift"]["shift"]  # signed evidence (two-sided): the shift's sign
        elif score == "auto":
            from .scores import change_analysis

            analyses["change"] = change_analysis(original, rec, win)
            smap = analyses["change"]["score"]
        else:
            smap = score_map(original, rec, win, score, max_shift=max_shift)
        label = rec.metadata.CVAE.reconstruction.method
    if navigation_mask is not None:
        smap = leave_out(smap, navigation_mask)
    mask = labels = pooled = regions = None
    if threshold is None and spatial is not None:
        raise ValueError("`spatial` pooling makes the mask; it needs a threshold (keep the default).")
    if threshold is not None:
        from .scores.labels import label_pixels, with_mask

        labels = label_pixels(original, win, edge=edge)   # bulk, outlier, no edge; the mask comes later
        smap, mask = _threshold(smap, original, win, threshold, navigation_mask, fdr=fdr, shift=shift,
                                labels=labels)
        if spatial is not None:
            from .scores.spatial import pool_score_map

            pooled, mask, regions = pool_score_map(smap, mask, spatial, fdr, shift, labels=labels)
        labels = with_mask(labels, mask.data)
    for sig in (smap, mask):
        if sig is not None:
            if edge is not None:
                sig.metadata.set_item("CVAE.score.edge", str(edge))
            sig.metadata.set_item("CVAE.method", label)
            sig.metadata.set_item("CVAE.source", signal.metadata.General.title)
            sig.metadata.set_item("CVAE.noise", nm.as_metadata())
    original, rec = _in_user_units(signal, work, nm, original, rec)
    return AnomalyResult(smap, mask, original=original, reconstruction=rec, window=win, method=label,
                         labels=labels, pooled=pooled, regions=regions, noise=nm, analyses=analyses,
                         max_shift=max_shift)


def _threshold(smap, original, win, threshold, navigation_mask, *, fdr=0.05, shift=None, labels=None):
    """Compute a lazy score map (it is only ny × nx) and threshold it (``"fdr"``:
    :func:`~hyperspy_cvae.scores.spatial.fdr_threshold`)."""
    from .scores import fdr_threshold, threshold_anomalies

    identical = all_spectra_identical(original.data, win.slice)
    if smap._lazy:
        # Two passes over the data, not one: computed together, the check would read every chunk
        # early and dask would hold its slice until the score (behind the reconstruction) got to
        # it, i.e. most of the window of a large map in memory.
        smap = navigation_map(smap, compute_all(smap.data)[0], smap.metadata.General.title)
        identical = compute_all(identical)[0]
    values = smap.data if navigation_mask is None else smap.data[~navigation_mask]
    no_information = np.isnan(values) if smap.metadata.has_item("CVAE.score.nan_means") else None
    check_finite_score(values if no_information is None else values[~no_information])
    if isinstance(threshold, str) and threshold == "fdr":
        if shift is not None and getattr(shift, "_lazy", False):
            shift = navigation_map(shift, compute_all(shift.data)[0], shift.metadata.General.title)
        mask = fdr_threshold(smap, fdr, shift=shift, navigation_mask=navigation_mask, labels=labels)
    else:
        mask = threshold_anomalies(smap, threshold)
    if no_information is not None:
        mask.metadata.set_item("CVAE.threshold.n_no_information", int(no_information.sum()))
    if identical:  # nothing can be anomalous; Otsu on rounding noise would flag pixels
        mask.data[:] = False
        mask.metadata.set_item("CVAE.threshold.decision", "all spectra identical: no anomalies")
        mask.metadata.set_item("CVAE.threshold.n_flagged", 0)
    return smap, mask


def shift_map(signal, window=None, method="cvae", *, n_components=3, cvae=None,
              max_shift=10.0, show_progressbar=None, edge=None, noise="auto", nuisance="scale", **kwargs):
    """``(shift, sigma)`` maps in eV against the reconstruction; see ``CVAEEELSSpectrum.shift_map``."""
    from .scores.shift import check_nuisance, shift_map as _shift_map

    check_nuisance(nuisance, "shift", method)
    if is_line(signal):
        shift, sigma = _on_line(shift_map, signal, cvae, None, window=window, method=method,
                                n_components=n_components, max_shift=max_shift, nuisance=nuisance,
                                show_progressbar=show_progressbar, edge=edge, noise=noise, **kwargs)
        return as_line(shift), as_line(sigma)

    win, edge = _checked_input(signal, window, edge)
    nm, work = _counts(signal, noise, win, cvae)
    original, rec = reconstruct(work, method, win, n_components=n_components, cvae=cvae,
                                show_progressbar=show_progressbar, **kwargs)
    _in_user_units(signal, work, nm, original, None)  # attaches a model fitted on the way
    win = energy_window(original, win, axis_name="the model's energy range")
    shift, sigma = _shift_map(original, rec, win, max_shift=max_shift, nuisance=nuisance)
    for sig in (shift, sigma):
        if edge is not None:
            sig.metadata.set_item("CVAE.score.edge", str(edge))
        sig.metadata.set_item("CVAE.noise", nm.as_metadata())
    return shift, sigma


def parse_method(m, n_components=3):
    """``"cvae"``, ``"pca"``, ``"pca(k)"`` or ``("pca", k)`` → ``(name, k)``."""
    if isinstance(m, (tuple, list)):
        name, k = m[0], int(m[1])
    else:
        name = str(m).lower().replace(" ", "")
        k = int(n_components)
        if name.startswith("pca") and name[3:].strip("()"):
            k = int(name[3:].strip("()"))
            name = "pca"
    if name not in ("cvae", "pca"):
        raise ValueError(f"methods must be 'cvae', 'pca', 'pca(k)' or ('pca', k); got {m!r}.")
    return name, k


def compare_methods(signal, methods=("cvae", "pca"), window=None, *, score="pcc",
                    n_components=3, cvae=None, threshold="otsu", edge=None, **decomposition_kwargs):
    """``{label: AnomalyResult}`` of :func:`anomaly_map` for each method (PCC by default, the
    paper's comparison)."""
    out = {}
    for m in methods:
        name, k = parse_method(m, n_components)
        kw = decomposition_kwargs if name == "pca" else {}
        res = anomaly_map(signal, name, window, n_components=k, threshold=threshold, score=score,
                          cvae=cvae, edge=edge, **kw)
        out[res.method] = res
    return out


# ------------------------------------------------------------------------ latents
def latent_map(signal, cvae, *, show_progressbar=None, stride=None):
    """The latent map of ``cvae`` on ``signal`` at ``stride`` (default half a shard, every shard of
    the grid): ``signal.cvae_results``'s if it has that model and stride, else recomputed; computed."""
    stride = int(stride) if stride is not None else max(1, int(cvae.shard_size_) // 2)
    res = getattr(signal, "cvae_results", None)
    lm = res.get("latent_map") if res else None
    if (lm is None or lm.metadata.get_item("CVAE.latent.model_checksum") != cvae.checksum()
            or lm.metadata.get_item("CVAE.latent.stride") != stride):
        signal.cvae_decomposition(cvae=cvae, stride=stride, blend="full", show_progressbar=show_progressbar)
        lm = signal.cvae_results["latent_map"]
    if lm._lazy:
        lm.compute(show_progressbar=False)
    return lm

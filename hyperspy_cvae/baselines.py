"""Baseline reconstructions with HyperSpy's own decomposition (PCA/SVD)."""

from __future__ import annotations

import numpy as np

__all__ = ["pca_reconstruction", "rx_scores", "rx_map"]


def pca_reconstruction(signal, n_components=3, **decomposition_kwargs):
    """Rebuild a spectrum image from its first ``n_components`` PCA components.

    Exactly what a HyperSpy user would type: ``decomposition()`` on a copy (the
    input and its ``learning_results`` are left untouched), then
    ``get_decomposition_model(n_components)``.

    Parameters
    ----------
    signal : hyperspy Signal1D
        Spectrum image (eager or lazy; lazy uses HyperSpy's exact incremental
        SVD, ``svd_solver="incremental"``, with ``output_dimension=n_components``
        unless given: the cube is streamed chunk by chunk, memory stays bounded
        and the reconstruction stays lazy).
    n_components : int
        Number of components kept.
    **decomposition_kwargs
        Passed to :meth:`~hyperspy.signal.BaseSignal.decomposition`, e.g.
        ``normalize_poissonian_noise=True`` or ``algorithm="SVD"``.

    Returns
    -------
    hyperspy signal
        The reconstruction (same class), with ``metadata.CVAE.reconstruction``
        recording the method, and the fitted copy's ``learning_results`` in
        ``reconstruction.learning_results``.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> rec = pca_reconstruction(s, 3)
    >>> rec.metadata.CVAE.reconstruction.method
    'PCA(3)'
    """
    if int(n_components) < 1:
        raise ValueError(f"`n_components` must be >= 1, got {n_components}.")
    work = signal.deepcopy()
    if work.data.dtype not in (np.float32, np.float64):  # integers, float16: linalg needs these
        work.change_dtype("float64")
    kwargs = {"print_info": False}
    kwargs.update(decomposition_kwargs)
    if work._lazy:
        # HyperSpy's lazy SVD needs the number of components up front; its
        # default solver is randomised (run-to-run differences), so use the
        # exact, streaming incremental SVD unless the user chooses otherwise.
        kwargs.setdefault("output_dimension", int(n_components))
        if kwargs.get("algorithm", "SVD") == "SVD":
            kwargs.setdefault("svd_solver", "incremental")
    try:
        work.decomposition(**kwargs)
    except (ValueError, np.linalg.LinAlgError) as err:
        if "nan" in str(err).lower() or "inf" in str(err).lower() or "converge" in str(err).lower():
            raise ValueError(
                "HyperSpy's decomposition failed on NaN/inf values in the data; replace them "
                "first, e.g. `s.map(np.nan_to_num)` on a copy, or crop the bad region.") from err
        raise
    model = work.get_decomposition_model(int(n_components))
    label = f"PCA({int(n_components)})"
    if kwargs.get("normalize_poissonian_noise"):
        label = f"PCA({int(n_components)}, Poisson-normalised)"
    model.metadata.set_item("CVAE.reconstruction", {
        "method": label, "n_components": int(n_components),
        "decomposition_kwargs": {k: v for k, v in kwargs.items()
                                 if isinstance(v, (bool, int, float, str))}})
    model.learning_results = work.learning_results
    return model


def rx_scores(spectra, n_components=10, random_state=0):
    """Reed–Xiaoli (RX) anomaly detector on PCA-reduced spectra.

    Each spectrum is normalised to unit sum (the intensity is thickness, not
    chemistry), projected on the first ``n_components`` principal components
    (scikit-learn PCA, whitened) and scored by its squared Mahalanobis
    distance from the mean of all pixels: ``RX(x) = Σ_i z_i²`` with ``z`` the
    whitened scores. The classic hyperspectral detector (Reed & Yu, 1990),
    written out here because no maintained implementation is among the
    project's dependencies (``spectral.rx`` computes the same on the full
    band covariance).

    Parameters
    ----------
    spectra : numpy.ndarray (N, C)
        Counts in the window.
    n_components : int
        Principal components kept.
    random_state : int
        Seed of the (randomised, for large inputs) PCA solver.

    Returns
    -------
    numpy.ndarray (N,)
        RX statistic; high values are anomalous.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(100, (500, 40)).astype(float)
    >>> x[0, 10:20] += 60
    >>> int(np.argmax(rx_scores(x, 5)))
    0
    """
    from sklearn.decomposition import PCA

    x = np.asarray(spectra, np.float64)
    tot = x.sum(-1, keepdims=True)
    x = x / np.where(tot > 0, tot, 1.0)
    k = int(min(n_components, x.shape[0] - 1, x.shape[1]))
    if k < 1:
        raise ValueError("RX needs at least 2 spectra and 1 component.")
    z = PCA(n_components=k, whiten=True, random_state=random_state).fit_transform(x)
    return (z * z).sum(-1)


def rx_map(signal, window=None, n_components=10, random_state=0):
    """RX anomaly score map of a spectrum image inside an energy window.

    See :func:`rx_scores`. The window of the cube is loaded into memory for a
    lazy signal (it is ``ny × nx × channels-in-window``).

    Returns
    -------
    hyperspy Signal2D
        RX statistic map (``metadata.CVAE.score.kind == "rx"``, high =
        anomalous), calibrated like the navigation axes.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> rx_map(s, (690., 730.), n_components=5).metadata.CVAE.score.kind
    'rx'
    """
    from ._arrays import to_numpy
    from ._validation import energy_window
    from .scores import score_signal

    window = energy_window(signal, window)
    data = to_numpy(signal.data[..., window.slice])
    nav = data.shape[:-1]
    r = rx_scores(data.reshape(-1, data.shape[-1]), n_components, random_state).reshape(nav)
    label = f"RX({int(n_components)})"
    return score_signal(signal, r, kind="rx", anomalous="high", window=window,
                        title=f"{label} {window[0]:g}-{window[1]:g} eV",
                        extra={"method": label, "n_components": int(n_components)})

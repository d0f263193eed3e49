"""Baseline reconstructions with HyperSpy's own decomposition (PCA/SVD)."""

from __future__ import annotations

import numpy as np

__all__ = ["pca_reconstruction"]


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
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> rec = pca_reconstruction(s, 3)
    >>> rec.metadata.CVAE.reconstruction.method
    'PCA(3)'
    """
    if int(n_components) < 1:
        raise ValueError(f"`n_components` must be >= 1, got {n_components}.")
    work = signal.deepcopy()
    if not np.issubdtype(work.data.dtype, np.floating):
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

"""Injection of known anomalies into a spectrum image (methods of :class:`CVAEEELSSpectrum`):
edge shifts in any map, other spectral changes in the built-in synthetic cube."""

from __future__ import annotations

import numpy as np

from ._linescan import is_line
from ._maps import navigation_map
from ._validation import check_counts, check_map_signal, energy_axis, energy_window, pixel_mask
from .noise import keep_noise_model

__all__ = ["InjectMethods"]


class InjectMethods:
    """``inject_shift`` and ``inject_anomaly``, mixed into :class:`CVAEEELSSpectrum`."""

    def inject_shift(self, dE, window=None, n_clusters=6, cluster_size=6, mask=None,
                     random_state=None, return_mask=False, ramp=2.0):
        """Return a copy with the edge in ``window`` shifted by ``dE`` eV in chosen pixels.

        The input signal is never modified. Inside the window the spectra of the
        chosen pixels are shifted by sub-channel, count-conserving
        interpolation (see :func:`hyperspy_cvae.synthetic.shift_window`): no
        wrap-around, the spectrum outside the window is untouched and joined
        continuously through raised-cosine ramps, and the total counts inside
        the window are preserved.

        Parameters
        ----------
        dE : float
            Shift in eV (axis units); positive moves the edge to higher loss.
            Must be smaller than the window width.
        window : tuple of float, optional
            ``(start, end)`` in eV, e.g. ``(690., 730.)`` around Fe L2,3. Default: the
            window of the edges in ``metadata.Sample.elements``
            (:func:`hyperspy_cvae.edges.resolve_window`).
        n_clusters, cluster_size : int
            Number and side (pixels) of the square, non-overlapping patches
            of anomalous pixels (segments of ``cluster_size`` pixels on a line
            scan; ignored when ``mask`` is given).
        mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to shift instead of random patches (array order, i.e. the
            shape of ``s.data.shape[:2]``).
        random_state : int, numpy.random.Generator or None
            Seed for the patch positions.
        return_mask : bool
            If True return ``(signal, truth_mask)``.
        ramp : float
            Width in eV of the blending ramps at each end of the window.

        Returns
        -------
        CVAEEELSSpectrum or (CVAEEELSSpectrum, Signal2D)
            The new signal; ``metadata.CVAE.injection`` holds ``dE``, ``window``,
            the seed and a copy of the truth mask (a boolean Signal2D with the
            navigation calibration).

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> s2, truth = s.inject_shift(2.5, n_clusters=2, random_state=1, return_mask=True)
        >>> int(truth.data.sum())
        72
        """
        from .synthetic.inject import cluster_mask, shift_pixels

        axis = energy_axis(self)
        line = is_line(self)
        nav_shape = (1, self.axes_manager.navigation_shape[0]) if line else \
            check_map_signal(self, what="inject_shift")
        win = energy_window(self, window)
        dE, ramp = float(dE), float(ramp)
        if not np.isfinite(dE) or abs(dE) >= win.end - win.start:
            raise ValueError(f"|dE| = {abs(dE):g} eV must be smaller than the window width "
                             f"{win.end - win.start:g} eV.")
        if not np.isfinite(ramp) or ramp < 0:
            raise ValueError(f"`ramp` must be a width in eV >= 0, got {ramp!r}.")
        if mask is None and line:  # segments of `cluster_size` pixels along the line
            truth = cluster_mask((cluster_size, nav_shape[1]), n_clusters, cluster_size,
                                 random_state=random_state)[0]
        elif mask is None:
            truth = cluster_mask(nav_shape, n_clusters, cluster_size, random_state=random_state)
        else:
            truth = pixel_mask(self, mask, name="mask", meaning="True = shift the pixel")
        if not self._lazy:
            check_counts(self.data, name="The signal")
        data, truth2d = (self.data[None], truth[None]) if line else (self.data, truth)
        new = shift_pixels(data, truth2d, dE / axis.scale, win.slice, int(round(ramp / axis.scale)))
        new = new[0] if line else new
        out = keep_noise_model(self, self._deepcopy_with_new_data(new))
        truth_sig = navigation_map(self, truth, f"Injected shift {dE:g} eV (truth)")
        seed = random_state if isinstance(random_state, (int, np.integer, type(None))) else "Generator"
        info = {"dE": dE, "window": win.as_list(),
                "random_state": None if seed is None else (seed if isinstance(seed, str) else int(seed)),
                "n_clusters": None if mask is not None else int(n_clusters),
                "cluster_size": None if mask is not None else int(cluster_size),
                "n_pixels": int(truth.sum()), "method": "count-conserving sub-channel shift",
                "ramp": ramp, "mask": truth_sig.deepcopy()}
        out.metadata.set_item("CVAE.injection", info)
        title = self.metadata.General.title or "Spectrum image"
        out.metadata.General.title = f"{title} (+{dE:g} eV shift injected)"
        return (out, truth_sig) if return_mask else out

    def inject_anomaly(self, kind, strength=None, *, n_clusters=6, cluster_size=6, mask=None,
                       random_state=None, return_mask=False, peak_energy=None):
        """Return a copy of a synthetic cube with a spectral change other than a shift in chosen pixels.

        The cube must come from :func:`hyperspy_cvae.synthetic.bifeo3_si` with an integer
        ``random_state``, untouched: its noise-free expectation is rebuilt from
        ``metadata.CVAE.synthetic`` for each chosen pixel, with and without the change, and the
        pixel's counts are redrawn exactly from the changed expectation (binomial thinning where
        it falls, added Poisson counts where it rises; see
        :func:`hyperspy_cvae.synthetic.anomalies.redraw_counts`). Each pixel keeps its drift,
        thickness and lattice weight. The input signal is never modified.

        Parameters
        ----------
        kind : str
            ``"valence"`` (Fe3+ → Fe2+ mixture: L3 shape and position, L3/L2 ratio),
            ``"l3_l2_ratio"``, ``"prepeak"`` (the O K pre-peak), ``"new_peak"``,
            ``"missing_edge"`` (Fe L2,3) or ``"thickness"`` (intensity only: a nuisance that a
            detector must not flag).
        strength : float, optional
            Size of the change; default and meaning per kind in
            :data:`hyperspy_cvae.synthetic.anomalies.KINDS` (0.5 of the Fe turned Fe2+; +30 %
            L2/L3 ratio; −90 % pre-peak; a new peak 0.3 × the L3 line; the whole Fe edge
            removed; +30 % intensity).
        n_clusters, cluster_size : int
            Number and side (pixels) of square, non-overlapping patches (ignored when ``mask``
            is given).
        mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to change instead of random patches.
        random_state : int, numpy.random.Generator or None
            Seed for the patch positions and the redrawn counts.
        return_mask : bool
            If True return ``(signal, truth_mask)``.
        peak_energy : float, optional
            Centre in eV of the ``"new_peak"`` (default midway between the Fe L3 and L2 lines).

        Returns
        -------
        CVAEEELSSpectrum or (CVAEEELSSpectrum, Signal2D)
            The new signal; ``metadata.CVAE.injection`` holds the kind, strength, seed and the
            truth mask: the chosen pixels whose expectation changed (a film-only change leaves
            substrate pixels as they were, and they are not in the truth).

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((24, 24), random_state=0)
        >>> bad, truth = s.inject_anomaly("valence", n_clusters=2, cluster_size=4, random_state=1,
        ...                               return_mask=True)
        >>> int(truth.data.sum()), bad.metadata.CVAE.injection.kind
        (32, 'valence')
        """
        from .synthetic.anomalies import anomaly_expectations, check_kind, generator_params, redraw_counts
        from .synthetic.inject import cluster_mask

        s = check_kind(kind, strength)
        if is_line(self):
            raise ValueError("inject_anomaly works on the maps of the synthetic generator, not on line scans.")
        nav_shape = check_map_signal(self, what="inject_anomaly")
        data = np.asarray(self.data.compute() if self._lazy else self.data)
        params = generator_params(self.metadata, data)
        rng = np.random.default_rng(random_state)
        if mask is None:
            chosen = cluster_mask(nav_shape, n_clusters, cluster_size, random_state=rng)
        else:
            chosen = pixel_mask(self, mask, name="mask", meaning="True = change the pixel")
        idx = np.flatnonzero(chosen)
        mu0, mu1 = anomaly_expectations(params, kind, s, pixels=idx, peak_energy=peak_energy)
        changed = np.any(mu1 != mu0, axis=-1)
        idx, mu0, mu1 = idx[changed], mu0[changed], mu1[changed]
        new = data.copy()
        flat = new.reshape(-1, new.shape[-1])
        if params.get("noise", True):
            flat[idx] = redraw_counts(flat[idx], mu0, mu1, rng)
        else:  # the noise-free cube: the changed expectation itself
            flat[idx] = mu1
        truth = np.zeros(nav_shape, bool)
        truth.flat[idx] = True
        out = keep_noise_model(self, self._deepcopy_with_new_data(new))
        if self._lazy:
            out = out.as_lazy()
        truth_sig = navigation_map(self, truth, f"Injected {kind} anomaly (truth)")
        seed = random_state if isinstance(random_state, (int, np.integer, type(None))) else "Generator"
        out.metadata.set_item("CVAE.injection", {
            "kind": kind, "strength": s,
            "random_state": None if seed is None else (seed if isinstance(seed, str) else int(seed)),
            "n_clusters": None if mask is not None else int(n_clusters),
            "cluster_size": None if mask is not None else int(cluster_size),
            "n_pixels": int(truth.sum()), "n_chosen_unchanged": int((~changed).sum()),
            "peak_energy": None if peak_energy is None else float(peak_energy),
            "method": "exact Poisson redraw of the changed expectation (binomial thinning / added counts)",
            "mask": truth_sig.deepcopy()})
        title = self.metadata.General.title or "Spectrum image"
        out.metadata.General.title = f"{title} (+{kind} anomaly injected)"
        return (out, truth_sig) if return_mask else out

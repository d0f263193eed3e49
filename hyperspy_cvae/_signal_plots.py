"""The plotting methods of the signal class (a mixin of :class:`~hyperspy_cvae.CVAEEELSSpectrum`):
they draw results that :mod:`hyperspy_cvae.workflow` computed, through :mod:`hyperspy_cvae.plotting`."""

from __future__ import annotations

from ._arrays import to_numpy
from ._validation import energy_axis

__all__ = ["PlotMethods"]


class PlotMethods:
    """``plot_anomaly_results``, ``plot_comparison`` and ``plot_reconstruction``."""

    def plot_anomaly_results(self, result, truth=None, reconstruction=None, path=None, mask=None):
        """Plot one method's anomaly results: map, histogram, example spectra.

        Left: the score map with flagged pixels outlined — with ``truth``,
        detected anomalies in white, missed ones in red and false alarms in
        orange. Middle: the score histogram on a log scale with the threshold
        and the unimodality verdict. Right: a normal and the most anomalous
        spectrum with their reconstructions in the scoring window (shaded).

        Parameters
        ----------
        result : AnomalyResult or Signal2D
            What :meth:`anomaly_map` returned (it keeps its reconstruction), or
            a score map together with ``reconstruction`` (and ``mask``).
        truth : Signal2D or array of bool, optional
            True anomalies (e.g. ``inject_shift(..., return_mask=True)``).
        reconstruction : hyperspy Signal1D, optional
            With a bare score map: the reconstruction it was scored against.
        path : str, optional
            Also save the figure (PNG).
        mask : Signal2D of bool, optional
            With a bare score map: its anomaly mask.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> bad, truth = s.inject_shift(4.0, n_clusters=2, random_state=1, return_mask=True)
        >>> result = bad.anomaly_map("pca", n_components=3)
        >>> fig = bad.plot_anomaly_results(result, truth)
        """
        from .plotting.results import plot_anomaly_results
        from .results import AnomalyResult

        if truth is not None and getattr(truth, "metadata", None) is not None and \
                truth.metadata.has_item("CVAE.threshold"):
            raise TypeError("`truth` is an anomaly mask from `anomaly_map`, not a truth mask. Call "
                            "`s.plot_anomaly_results(result, truth)` with the result of anomaly_map.")
        if isinstance(result, AnomalyResult):
            return result.plot(truth=truth, path=path)
        if reconstruction is None:
            raise ValueError("A bare score map does not say what it was scored against: pass the "
                             "result of `anomaly_map` itself (it keeps its reconstruction), or "
                             "`reconstruction=`.")
        return plot_anomaly_results(self, reconstruction, result, mask, truth, path=path)

    def plot_comparison(self, methods=("cvae", "pca"), window=None, truth=None, path=None,
                        suptitle=None, **kwargs):
        """Several methods side by side (the paper's Fig. 1/3): :meth:`compare_methods`, drawn by
        :func:`hyperspy_cvae.plot_comparison`.

        Parameters
        ----------
        methods, window
            As in :meth:`compare_methods`.
        truth : Signal2D, array of bool or False, optional
            True anomalies; default ``metadata.CVAE.injection.mask`` if present.
            ``False`` ignores it.
        path : str, optional
            Save the figure (PNG).
        suptitle : str, optional
        **kwargs
            Passed to :meth:`compare_methods` (``score``, ``n_components``,
            ``cvae``, ``threshold``, ``decomposition`` arguments).

        Returns
        -------
        figure, results : matplotlib.figure.Figure, dict of AnomalyResult

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> fig, results = s.plot_comparison(("pca(3)", "pca(5)"))
        >>> list(results)
        ['PCA(3)', 'PCA(5)']
        """
        from .plotting.results import plot_comparison

        if truth is None:
            truth = self.metadata.get_item("CVAE.injection.mask", None)
        elif truth is False:
            truth = None
        results = self.compare_methods(methods, window, **kwargs)
        return plot_comparison(results, truth=truth, path=path, suptitle=suptitle), results

    def plot_reconstruction(self, reconstruction=None, navigator=None, color="red", **kwargs):
        """Interactive: browse the spectra with their reconstruction overlaid.

        Plots this signal (cropped to the reconstruction's energy range) with
        HyperSpy's ``plot()``; the reconstruction is drawn as a second line
        that follows the navigation. Pass a score map as ``navigator`` to
        navigate by score: clicking an anomalous pixel shows the spectrum
        that the model could not reproduce.

        Parameters
        ----------
        reconstruction : hyperspy Signal1D or AnomalyResult, optional
            Default: ``s.cvae_decomposition()``. An :meth:`anomaly_map` result
            gives its reconstruction, and its score map as the navigator.
        navigator : Signal2D, optional
            E.g. the score map from :meth:`anomaly_map` (any signal HyperSpy
            accepts as a navigator).
        color : str
            Colour of the reconstruction line.
        **kwargs
            Passed to ``plot()``.

        Returns
        -------
        hyperspy signal
            The plotted (cropped) signal; ``.plot`` state lives there.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> shown = s.plot_reconstruction(s.anomaly_map("pca", n_components=3))
        """
        from hyperspy.drawing.signal1d import Signal1DLine

        from .results import AnomalyResult

        if isinstance(reconstruction, AnomalyResult):
            navigator = reconstruction.score if navigator is None else navigator
            reconstruction = reconstruction.reconstruction
        rec = reconstruction if reconstruction is not None else self.cvae_decomposition()
        er = energy_axis(rec)
        ea = energy_axis(self)
        i0 = int(round((er.offset - ea.offset) / ea.scale))
        shown = self.isig[i0:i0 + er.size] if (i0, er.size) != (0, ea.size) else self
        if shown.axes_manager.navigation_shape != rec.axes_manager.navigation_shape:
            raise ValueError("The reconstruction's navigation shape differs from the signal's.")

        def _rec_data(axes_manager=None):
            return to_numpy(rec.data[tuple(axes_manager.indices[::-1])])

        if navigator is not None:
            kwargs["navigator"] = navigator
        shown.plot(**kwargs)
        line = Signal1DLine()
        line.data_function = _rec_data
        line.set_line_properties(color=color, type="line")
        shown._plot.signal_plot.add_line(line)
        line.plot()
        shown._plot.signal_plot.ax.set_title(
            f"{self.metadata.General.title} (black) and "
            f"{rec.metadata.get_item('CVAE.reconstruction.method', 'reconstruction')} ({color})", fontsize=9)
        return shown

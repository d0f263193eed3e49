"""Energy windows from edge names ("Fe_L2,3", "Ti_L3", "O_K"), with onsets from exspy's element
database."""

from __future__ import annotations

import re

__all__ = ["edge_onsets", "edge_window", "edges_in_range", "edge_names_in_range", "element_edges",
           "resolve_window", "fit_range", "white_line_windows", "PRE_EDGE", "POST_EDGE", "FIT_MARGIN"]

#: eV kept before the first onset of a named edge (its pre-edge background).
PRE_EDGE = 15.0
#: eV kept after the last onset of a named edge (its white lines or near-edge structure).
POST_EDGE = 20.0
#: eV the default fit range adds on each side of the scoring window (more pre-edge background for the
#: model to learn, and the tail after the edge), clipped to the axis.
FIT_MARGIN = 20.0
#: Fewest channels of a default fit range (the network takes 16 at least; 32 leaves it room).
MIN_FIT_CHANNELS = 32


def _binding_energies(element):
    from exspy.material import elements

    if not hasattr(elements, element):
        raise ValueError(f"Unknown element {element!r} in the edge name; use a chemical symbol such "
                         "as 'Fe' or 'O'.")
    return getattr(elements, element).Atomic_properties.Binding_energies.as_dictionary()


def edge_onsets(edge):
    """Onset energies (eV) of a named edge: ``{subshell: onset}``.

    Parameters
    ----------
    edge : str
        ``"<Element>_<shell>"``: ``"O_K"``, ``"Ti_L3"``, ``"Fe_L2,3"`` (or ``"Fe_L23"``),
        ``"La_M4,5"``; a shell letter alone (``"Fe_L"``) takes every subshell of that shell the
        database lists.

    Examples
    --------
    >>> edge_onsets("Fe_L2,3")
    {'L3': 708.0, 'L2': 721.0}
    >>> edge_onsets("O_K")
    {'K': 532.0}
    """
    m = re.fullmatch(r"\s*([A-Z][a-z]?)_([KLMNO])([0-9,]*)\s*", str(edge))
    if m is None:
        raise ValueError(f"Edge {edge!r} is not of the form 'Fe_L2,3', 'Ti_L3' or 'O_K'.")
    element, shell, numbers = m.groups()
    table = _binding_energies(element)
    if numbers:
        wanted = [shell + n for n in numbers.replace(",", "")]
    else:
        wanted = [k for k in table if k.startswith(shell)]
    missing = [w for w in wanted if w not in table]
    if missing or not wanted:
        raise ValueError(f"{element} has no {', '.join(missing) or shell} edge in exspy's database; "
                         f"it lists {', '.join(f'{element}_{k}' for k in table)}.")
    onsets = {w: float(table[w]["onset_energy (eV)"]) for w in wanted}
    return dict(sorted(onsets.items(), key=lambda kv: kv[1]))


def edge_window(edge, *, pre=PRE_EDGE, post=POST_EDGE):
    """``(start, end)`` in eV around a named edge: from ``pre`` eV before its first onset to
    ``post`` eV after its last.

    Examples
    --------
    >>> edge_window("Fe_L2,3")
    (693.0, 741.0)
    >>> edge_window("Ti_L3", post=8.0)
    (441.0, 464.0)
    """
    onsets = list(edge_onsets(edge).values())
    return (min(onsets) - float(pre), max(onsets) + float(post))


def _major_edges(start, end, elements=None):
    """``[(onset, element, subshell)]`` of the major edges with onset in ``[start, end)``."""
    from exspy.material import elements as db

    found = []
    for element in (db.keys() if elements is None else elements):
        if not hasattr(db, element):
            raise ValueError(f"Unknown element {element!r} in metadata.Sample.elements.")
        table = getattr(db, element).Atomic_properties.as_dictionary().get("Binding_energies", {})
        for shell, info in table.items():
            onset = float(info["onset_energy (eV)"])
            if start <= onset < end and info.get("relevance") == "Major":
                found.append((onset, element, shell))
    return sorted(found)


def edges_in_range(start, end):
    """Names of the major edges whose onset lies in ``[start, end)`` eV, by energy.

    Examples
    --------
    >>> edges_in_range(700.0, 725.0)
    ['Fe_L3', 'Fe_L2']
    """
    return [f"{el}_{shell}" for _, el, shell in _major_edges(start, end)]


def _grouped(found):
    """Subshells of one shell joined the usual way: ``Fe_L3``, ``Fe_L2`` → ``Fe_L2,3``."""
    groups = {}
    for onset, el, shell in found:
        groups.setdefault((el, shell[0]), []).append((onset, shell[1:]))
    names = []
    for (el, letter), subs in sorted(groups.items(), key=lambda kv: min(o for o, _ in kv[1])):
        digits = sorted({d for _, n in subs for d in n.replace(",", "") if d})
        names.append(f"{el}_{letter}{','.join(digits)}")
    return names


def edge_names_in_range(start, end):
    """Major edges with an onset in ``[start, end)`` eV, one name per shell (``"Si_L2,3"``), by
    energy: the names :func:`edge_window` and ``anomaly_map(edge=...)`` take.

    Examples
    --------
    >>> "Si_L2,3" in edge_names_in_range(95.0, 105.0)
    True
    """
    return _grouped(_major_edges(start, end))


def element_edges(elements, start, end):
    """Edge names (one per shell) of ``elements`` whose major onsets lie in ``[start, end)`` eV.

    Examples
    --------
    >>> element_edges(["Ti", "O"], 420.0, 600.0)
    ['Ti_L2,3', 'O_K']
    >>> element_edges(["Fe"], 420.0, 600.0)
    []
    """
    return _grouped(_major_edges(start, end, [str(e) for e in elements]))


def _axis_range(signal):
    from ._validation import energy_axis

    ax = energy_axis(signal)
    return float(ax.axis[0]), float(ax.axis[-1]) + float(ax.scale)


def _clipped_edge_window(names, first, last):
    """The window spanning ``names`` (each from :func:`edge_window`), clipped to the axis."""
    starts, ends = zip(*(edge_window(n) for n in names))
    outside = [n for n in names if not any(first <= o < last for o in edge_onsets(n).values())]
    if outside:
        raise ValueError(f"The onset of edge {outside[0]!r} ({min(edge_onsets(outside[0]).values()):g} eV) "
                         f"lies outside the energy axis ({first:g}–{last:g} eV); edges inside it: "
                         f"{', '.join(edge_names_in_range(first, last)[:12]) or 'none'}.")
    return max(min(starts), first), min(max(ends), last)


def resolve_window(signal, window=None, edge=None):
    """The scoring window of ``signal`` in eV and the edge it came from: ``((start, end), edge)``.

    In order: ``window`` as given (``edge`` None); the window of the named ``edge``
    (:func:`edge_window`: ``PRE_EDGE`` eV before its first onset to ``POST_EDGE`` eV after its
    last, clipped to the energy axis); else the edges of ``metadata.Sample.elements`` that lie in the
    axis (``s.add_elements(["Ti", "O"])``), one window spanning them all. With none of these it
    raises, listing the edges inside the energy axis: there is no material-specific default.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((8, 8), random_state=0)          # the synthetic cube names Fe
    >>> resolve_window(s)
    ((693.0, 741.0), 'Fe_L2,3')
    >>> resolve_window(s, edge="O_K")
    ((517.0, 552.0), 'O_K')
    >>> resolve_window(s, window=(690., 730.))
    ((690.0, 730.0), None)
    """
    if window is not None and edge is not None:
        raise ValueError("Give `window` (eV) or `edge` (a name), not both.")
    if window is not None:
        return window, None
    first, last = _axis_range(signal)
    if edge is not None:
        if isinstance(edge, (list, tuple)):
            names = [str(e) for e in edge]
        else:
            names = [str(edge)]
        return _clipped_edge_window(names, first, last), "+".join(names)
    elements = signal.metadata.get_item("Sample.elements")
    if elements is not None and len(elements):
        names = element_edges(list(elements), first, last)
        if not names:
            raise ValueError(
                f"None of the elements in metadata.Sample.elements ({', '.join(map(str, elements))}) has "
                f"a major edge in the energy axis ({first:g}–{last:g} eV). Name the edge, e.g. "
                f"`edge={(edge_names_in_range(first, last) or ['O_K'])[0]!r}`, or give `window=(start, end)`.")
        return _clipped_edge_window(names, first, last), "+".join(names)
    inside = edge_names_in_range(first, last)
    listing = ", ".join(inside[:20]) + (f" (and {len(inside) - 20} more)" if len(inside) > 20 else "")
    raise ValueError(
        "Which edge? Give `edge=` (a name such as 'Si_L2,3'), `window=(start, end)` in eV, or the "
        "sample's elements (`s.add_elements(['Si'])`, read from metadata.Sample.elements). Major edges "
        f"inside this energy axis ({first:g}–{last:g} eV): {listing or 'none'}.")


def fit_range(signal, window):
    """The default training range for scoring ``window``: the window ± :data:`FIT_MARGIN` eV,
    clipped to the energy axis, so that the model sees the edge, its pre-edge background and its
    post-edge; widened about its centre to :data:`MIN_FIT_CHANNELS` channels on a coarse axis.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> fit_range(bifeo3_si((8, 8), random_state=0), (693.0, 741.0))
    (673.0, 761.0)
    """
    from ._validation import energy_axis

    first, last = _axis_range(signal)
    lo, hi = float(window[0]) - FIT_MARGIN, float(window[1]) + FIT_MARGIN
    least = MIN_FIT_CHANNELS * float(energy_axis(signal).scale)
    if hi - lo < least:  # e.g. 8 eV/channel: the margins alone hold too few channels
        centre = 0.5 * (lo + hi)
        lo, hi = centre - least / 2, centre + least / 2
        if lo < first:
            lo, hi = first, first + least
        if hi > last:
            lo, hi = max(last - least, first), last
    return max(lo, first), min(hi, last)


def white_line_windows(edge):
    """``(edge_window, pre_edge_window)`` in eV for an edge-jump test: 2 eV before to 3 eV after the
    first onset of ``edge``, and 13 to 8 eV before it.

    Examples
    --------
    >>> white_line_windows("Fe_L2,3")
    ((706.0, 711.0), (695.0, 700.0))
    """
    onset = min(edge_onsets(edge).values())
    return (onset - 2.0, onset + 3.0), (onset - 13.0, onset - 8.0)

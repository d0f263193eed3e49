"""Energy windows from edge names ("Fe_L2,3", "Ti_L3", "O_K"), with onsets from exspy's element
database."""

from __future__ import annotations

import re

__all__ = ["edge_onsets", "edge_window", "edges_in_range", "PRE_EDGE", "POST_EDGE"]

#: eV kept before the first onset of a named edge (its pre-edge background).
PRE_EDGE = 15.0
#: eV kept after the last onset of a named edge (its white lines or near-edge structure).
POST_EDGE = 20.0


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


def edges_in_range(start, end):
    """Names of the major edges whose onset lies in ``[start, end)`` eV, by energy.

    Examples
    --------
    >>> edges_in_range(700.0, 725.0)
    ['Fe_L3', 'Fe_L2']
    """
    from exspy.material import elements

    found = []
    for element in elements.keys():
        table = getattr(elements, element).Atomic_properties.as_dictionary().get("Binding_energies", {})
        for shell, info in table.items():
            onset = float(info["onset_energy (eV)"])
            if start <= onset < end and info.get("relevance") == "Major":
                found.append((onset, f"{element}_{shell}"))
    return [name for _, name in sorted(found)]

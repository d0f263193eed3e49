"""Denoising: the CVAE's reconstruction, refitted per pixel or not, against HyperSpy's PCA.

Synthetic cubes (the noise-free truth is known): the mean squared error of each reconstruction
against the expected counts in 690–730 eV over the bulk pixels (the anomalous ones left out
where the cube has anomalies), and the 4-channel ripple of the error (the power of the bulk
error's mean periodogram at a period of 4 channels over the median of its neighbouring
frequencies: 1 = no ripple). Cases: the main benchmark's 192 × 192 null cube (seeds 0, 1, 2),
and 128 × 128 / 96 × 96 cubes the refit was not developed on: a 0.2 eV jitter, a film on a
substrate, a fifth of the dose, a thick wedge with twice the lattice contrast on a steeper
background, 20 × the dose, and two anomalous cubes (a 0.5 eV shift, a valence change in 6
patches). The CVAE is trained on each cube (fit range 660–760 eV, default budget).

Measured maps (no truth): each map, as Poisson-equivalent counts (its noise model), is split
by binomial thinning into two independent halves of equal noise; every method reconstructs the
first half and is scored against the second in the edge's window: ``mean((f − y₂)²)`` over the
raw first half's ``mean((y₁ − y₂)²)``. 1 = no better than the raw data; 0.5 = the expected counts
themselves for Poisson-equivalent counts (the held-out half's own noise is all that is left).
Below 0.5, the map's noise is not Poisson in the noise model's counts (thinning then leaves the
halves part of their noise in common); the methods are still compared on the same halves.

Rows: the raw data; the CVAE (``cvae_decomposition()``); the CVAE refitted per pixel
(``refine_reconstruction(s, rec, edge=...)``, what ``cvae_decomposition(refine=True)`` calls:
background and edge intensities and a drift); the map's
mean spectrum refitted the same way (what the refit alone gives, without the CVAE); PCA(3),
plain and Poisson-normalised. Writes ``denoising.csv``, ``measured.csv``, ``summary.md`` and
``readme_block.md`` (quoted in the README).

    python benchmarks/denoising.py [--out benchmarks/results/denoising] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REALDATA = HERE.parent.parent / "shared" / "realdata"
WINDOW = (690.0, 730.0)
RANGE = (660.0, 760.0)
#: (name, size, seeds, bifeo3_si arguments, anomaly: None, ("shift", ΔE) or ("valence", strength)).
CASES = [("benchmark null cube", 192, (0, 1, 2), {}, None),
         ("jitter 0.2 eV", 128, (1,), {"drift": 0.2}, None),
         ("film/substrate 30 %", 128, (2,), {"substrate_fraction": 0.3}, None),
         ("dose 30", 128, (3,), {"dose": 30.0}, None),
         ("thick wedge, lattice 0.4, background E^-4", 128, (4,),
          {"thickness_variation": 0.5, "lattice_contrast": 0.4, "background_exponent": 4.0}, None),
         ("dose 3000", 96, (5,), {"dose": 3000.0}, None),
         ("0.5 eV shift, 6 patches", 128, (6,), {}, ("shift", 0.5)),
         ("valence change, 6 patches", 128, (7,), {}, ("valence", 0.5))]
#: (file, edge) of the measured maps.
MAPS = [("si2d/GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3", "Si_L2,3"),
        ("si2d/SiL_SI_20x20_50-357eV_20nmprobe.dm3", "Si_L2,3"),
        ("si2d/SiL_SI_16x16_50-357eV_25nm.dm3", "Si_L2,3"),
        ("si2d/SI_16x16_28-540eV.dm3", "Si_L2,3"),
        ("si2d/CuZn_EELS_SI_40x50_700-1988eV.hspy", "Cu_L2,3")]
METHODS = ("raw", "cvae", "cvae_refined", "mean_refined", "pca3", "pca3p")


def ripple(err):
    """Power of the mean periodogram of ``err`` (n, E) at a period of 4 channels over the median of
    the 10 frequencies around it (1 = no ripple)."""
    p = (np.abs(np.fft.rfft(err - err.mean(1, keepdims=True), axis=1)) ** 2).mean(0)
    k = int(round(err.shape[1] / 4))
    near = np.r_[p[max(k - 6, 1):k - 1], p[k + 2:k + 7]]
    return float(p[k - 1:k + 2].max() / np.median(near))


def _reconstructions(s, energy_range, edge=None, budget=None):
    """Every method's reconstruction of ``s`` (counts) over ``energy_range``, and seconds each
    (``budget``: training arguments, default the package's)."""
    from hyperspy_cvae import refine_reconstruction

    out, secs, maps = {}, {}, None
    d = s.isig[energy_range[0]:energy_range[1]]
    out["raw"], secs["raw"] = d, 0.0
    t0 = time.perf_counter()
    s.fit_cvae(signal_range=energy_range, random_state=0, show_progressbar=False, **(budget or {}))
    out["cvae"] = s.cvae_decomposition(show_progressbar=False)
    secs["cvae"] = time.perf_counter() - t0
    t2 = time.perf_counter()
    out["cvae_refined"], maps = refine_reconstruction(s, out["cvae"], edge=edge)
    secs["cvae_refined"] = secs["cvae"] + time.perf_counter() - t2
    mean = np.asarray(d.data, float).reshape(-1, d.data.shape[-1]).mean(0)
    flat = d._deepcopy_with_new_data(np.broadcast_to(mean, d.data.shape).astype(np.float32))
    t0 = time.perf_counter()
    out["mean_refined"] = refine_reconstruction(s, flat, edge=edge)[0]
    secs["mean_refined"] = time.perf_counter() - t0
    for name, poisson in (("pca3", False), ("pca3p", True)):
        t0 = time.perf_counter()
        work = d.deepcopy()
        work.change_dtype("float64")
        work.decomposition(print_info=False, normalize_poissonian_noise=poisson, output_dimension=10)
        out[name] = work.get_decomposition_model(3)
        secs[name] = time.perf_counter() - t0
    return out, secs, maps


def synthetic_rows(cases=CASES, budget=None):
    from hyperspy_cvae.synthetic import bifeo3_si
    from hyperspy_cvae.synthetic.data import Scene

    rows = []
    for name, size, seeds, kw, anomaly in cases:
        for seed in seeds:
            s, expected = bifeo3_si((size, size), random_state=seed, return_expected=True, **kw)
            truth = expected.isig[RANGE[0]:RANGE[1]].data.astype(float)     # the bulk pixels' truth
            mask = np.zeros((size, size), bool)
            if anomaly is not None:
                kind, strength = anomaly
                if kind == "shift":
                    s, m = s.inject_shift(strength, window=WINDOW, random_state=seed, return_mask=True)
                else:
                    s, m = s.inject_anomaly(kind, strength, random_state=seed, return_mask=True)
                mask = np.asarray(m.data, bool)
            recs, secs, maps = _reconstructions(s, RANGE, edge="Fe_L2,3", budget=budget)
            energy = recs["raw"].axes_manager[-1].axis
            w = (energy >= WINDOW[0]) & (energy < WINDOW[1])
            scene = Scene(s.metadata.CVAE.synthetic.as_dictionary(), np.random.default_rng(seed))
            for method in METHODS:
                err = (np.asarray(recs[method].data, float) - truth)[..., w]
                bulk = err[~mask]
                row = {"case": name, "size": size, "seed": seed, "method": method,
                       "mse_bulk": round(float((bulk ** 2).mean()), 4),
                       "anomalous_pixels": int(mask.sum()),
                       "ripple": round(ripple(bulk), 3), "drift_rms_eV": "", "drift_sigma_eV": "",
                       "seconds": round(secs[method], 2)}
                if method == "cvae_refined":
                    drift, sigma = maps["drift"].data, maps["drift_sigma"].data
                    ok = ~mask & ~scene.substrate & np.isfinite(drift)    # the pixels with the Fe edge
                    row["drift_rms_eV"] = round(float(np.sqrt(np.mean((drift - scene.drift)[ok] ** 2))), 4)
                    row["drift_sigma_eV"] = round(float(np.median(sigma[ok])), 4)
                rows.append(row)
            print(f"{name} seed {seed}: " + ", ".join(f"{r['method']} {r['mse_bulk']:.2f}" for r in rows[-6:]),
                  flush=True)
    return rows


def measured_rows(maps=MAPS):
    import hyperspy.api as hs

    from hyperspy_cvae.edges import fit_range, resolve_window
    from hyperspy_cvae.noise import resolve_noise_model

    rows = []
    for path, edge in maps:
        s = hs.load(str(REALDATA / path))
        s.set_signal_type("CVAE_EELS")
        window, _ = resolve_window(s, edge=edge)
        rng_e = fit_range(s, window)
        nm = resolve_noise_model(s, "auto", s.isig[rng_e[0]:rng_e[1]].data)
        z = np.rint(np.clip(np.asarray(nm.to_counts(np.asarray(s.data, np.float32)), float), 0, None))
        rng = np.random.default_rng(0)
        y1 = rng.binomial(z.astype(np.int64), 0.5).astype(np.float32)
        y2 = (z - y1).astype(float)
        half = s._deepcopy_with_new_data(y1)
        half.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                               {"gain_factor": 1.0, "gain_offset": 0.0, "correlation_factor": 1.0})
        try:
            recs, secs, _ = _reconstructions(half, rng_e, edge=edge)
        except ValueError as err:
            print(f"{path}: {err}")
            rows.append({"map": pathlib.Path(path).name, "edge": edge, "method": "all", "heldout_error": "",
                         "mean_counts": "", "seconds": "", "note": str(err)[:120]})
            continue
        ax = s.axes_manager[-1]
        i0 = int(round((recs["raw"].axes_manager[-1].offset - ax.offset) / ax.scale))
        energy = recs["raw"].axes_manager[-1].axis
        w = (energy >= window[0]) & (energy < window[1])
        held = y2[..., i0:i0 + energy.size][..., w]
        raw = float(((np.asarray(recs["raw"].data, float)[..., w] - held) ** 2).mean())
        for method in METHODS:
            f = np.asarray(recs[method].data, float)[..., w]
            rows.append({"map": pathlib.Path(path).name, "edge": edge, "method": method,
                         "heldout_error": round(float(((f - held) ** 2).mean()) / raw, 4),
                         "mean_counts": round(float(held.mean()), 1), "seconds": round(secs[method], 2),
                         "note": nm.source})
        print(f"{path}: " + ", ".join(f"{r['method']} {r['heldout_error']}" for r in rows[-6:]), flush=True)
    return rows


def _mean_over_seeds(rows, case, method, key):
    v = [float(r[key]) for r in rows if r["case"] == case and r["method"] == method and r[key] != ""]
    return float(np.mean(v)) if v else float("nan")


def write(out, rows, measured):
    out.mkdir(parents=True, exist_ok=True)
    for fname, rr in (("denoising.csv", rows), ("measured.csv", measured)):
        if rr:
            with open(out / fname, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rr[0]))
                w.writeheader()
                w.writerows(rr)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    head = "| cube | " + " | ".join(METHODS) + " |"
    rule = "|---" * (len(METHODS) + 1) + "|"
    table = [head, rule]
    for c in cases:
        table.append(f"| {c} | " + " | ".join(f"{_mean_over_seeds(rows, c, m, 'mse_bulk'):.2f}" for m in METHODS)
                     + " |")
    def at_or_below(ref):
        return [c for c in cases if _mean_over_seeds(rows, c, "cvae_refined", "mse_bulk")
                <= _mean_over_seeds(rows, c, ref, "mse_bulk")]
    wins, wins_p = at_or_below("pca3"), at_or_below("pca3p")
    verdict = (f"The refitted CVAE is at or below PCA(3) on {len(wins)} of {len(cases)} cubes"
               + (f" ({'; '.join(wins)})" if wins else "")
               + f", and at or below the Poisson-normalised PCA(3) on {len(wins_p)}"
               + (f" ({'; '.join(wins_p)})" if wins_p else "") + ".")
    L = ["# Denoising: the CVAE, refitted per pixel or not, against PCA", "",
         "Generated by `python benchmarks/denoising.py`; do not edit by hand. Synthetic cubes: MSE against "
         "the noise-free truth in 690–730 eV over the bulk pixels (counts², mean over seeds).", ""]
    L += table + ["", verdict, ""]
    L += ["Ripple at a period of 4 channels (the power of the bulk error's mean periodogram there over the "
          "median of its neighbouring frequencies; about 1 = none) and the refit's drift against the true "
          "per-pixel drift (RMS over the bulk pixels with the Fe edge where the refit finds it, and the "
          "median of its own standard error, eV):", "",
          "| cube | CVAE | CVAE refitted | PCA(3) | drift RMS | its σ |", "|---|---|---|---|---|---|"]
    for c in cases:
        L.append(f"| {c} | {_mean_over_seeds(rows, c, 'cvae', 'ripple'):.2f} | "
                 f"{_mean_over_seeds(rows, c, 'cvae_refined', 'ripple'):.2f} | {_mean_over_seeds(rows, c, 'pca3', 'ripple'):.2f} | "
                 f"{_mean_over_seeds(rows, c, 'cvae_refined', 'drift_rms_eV'):.3f} | "
                 f"{_mean_over_seeds(rows, c, 'cvae_refined', 'drift_sigma_eV'):.3f} |")
    if measured:
        L += ["", "## Measured maps: held-out error of one binomial half against the other", "",
              "`mean((f − y₂)²) / mean((y₁ − y₂)²)` in the edge's window (1 = no better than the raw half, "
              "0.5 = the expected counts for Poisson counts; below 0.5 the halves share noise that is not "
              "Poisson in the noise model's counts), and the mean Poisson-equivalent counts per channel there:", "",
              "| map | edge | counts/channel | " + " | ".join(METHODS) + " |", "|---|---|---" + "|---" * len(METHODS) + "|"]
        for mp in dict.fromkeys(r["map"] for r in measured):
            mr = {r["method"]: r for r in measured if r["map"] == mp}
            if "all" in mr:
                L.append(f"| {mp} | {mr['all']['edge']} | – | " + " | ".join("–" for _ in METHODS) + " |")
                continue
            L.append(f"| {mp} | {mr['raw']['edge']} | {float(mr['raw']['mean_counts']):.0f} | "
                     + " | ".join(f"{float(mr[m]['heldout_error']):.3f}" for m in METHODS) + " |")
    (out / "summary.md").write_text("\n".join(L) + "\n")
    (out / "readme_block.md").write_text("\n".join(table + ["", verdict]) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "results" / "denoising"))
    p.add_argument("--quick", action="store_true", help="one small cube, no measured maps (a smoke run)")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    if a.quick:
        rows = synthetic_rows([("quick", 32, (0,), {}, ("shift", 1.0))], budget={"max_steps": 40})
        measured = []
    else:
        rows = synthetic_rows()
        measured = measured_rows() if REALDATA.exists() else []
    write(pathlib.Path(a.out), rows, measured)
    print(f"wrote {a.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

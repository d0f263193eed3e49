"""A measured map, the real workflow: load a .dm3, name the edge, fit, map, explain, save.

Reads the Ge solar-cell cross-section (22 × 45 pixels, 70–172 eV, Si L2,3 on a steep
background, five rows of vacuum on top and a few glitch pixels) from ``../shared/realdata``
(the measured data are not shipped with the package). Nothing but the edge is set by hand: the
shard size, the fit range and the scoring window follow from the map and the edge's name.

    python examples/real_map.py [--out DIR] [--file PATH] [--edge Si_L2,3]

Writes ``real_map_result.png`` (score map, histogram, example spectra with their
reconstruction), ``real_map_labels.png`` (what the detector saw: bulk, anomalous, outlier, no
edge), ``real_map_describe.png`` (how each pixel differs: ``result.describe().plot()``), ``real_map_labels.hspy`` and ``real_map_cvae.pt``. Where ``../shared/realdata`` is absent
it says so and exits with status 0.
"""

import argparse
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402

import hyperspy_cvae  # noqa: E402, F401  (registers the CVAE_EELS signal type)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "realdata" / "si2d" / "GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=str(DEFAULT), help="a measured spectrum image or line scan")
    ap.add_argument("--edge", default="Si_L2,3", help="the edge to look at, by name")
    ap.add_argument("--out", default=".", help="output folder")
    ap.add_argument("--quick", action="store_true",
                    help="a short training (400 steps instead of the map's budget), for the tests")
    args = ap.parse_args(argv)
    if not pathlib.Path(args.file).exists():
        print(f"{args.file} is absent (the measured data live in ../shared/realdata): nothing to do.")
        return 0
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    s = hs.load(args.file)                      # a DM file comes in as an EELSSpectrum
    s.set_signal_type("CVAE_EELS")
    budget = dict(max_steps=400, validation_every=25) if args.quick else {}
    cvae = s.fit_cvae(edge=args.edge, random_state=0, **budget)  # shard size and fit range: automatic
    res = s.anomaly_map("cvae", edge=args.edge)                # default score: edge shift
    print(res)
    print("fit range", s.metadata.CVAE.model.signal_range, "eV; shard", cvae.shard_size_,
          "; window", res.window.label)
    counts = res.labels.metadata.CVAE.labels.counts
    print("labels:", ", ".join(f"{k} {v}" for k, v in counts.as_dictionary().items()))

    res.plot(path=str(out / "real_map_result.png"))
    res.plot_labels(path=str(out / "real_map_labels.png"))
    d = res.describe()                                         # how each pixel differs
    print(repr(d))
    d.plot(path=str(out / "real_map_describe.png"))
    res.labels.save(str(out / "real_map_labels.hspy"), overwrite=True)
    cvae.save(str(out / "real_map_cvae.pt"))
    print("wrote", ", ".join(p.name for p in sorted(out.glob("real_map_*"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

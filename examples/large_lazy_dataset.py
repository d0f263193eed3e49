"""A spectrum image handled lazily from disk: .zspy → fit_cvae → anomaly_map → .zspy, never loaded whole.

What a microscopist types for a cube bigger than memory (see ``benchmarks/memory.py`` for the
measured 3.1 GiB case): write the (here synthetic) acquisition to a chunked .zspy store, load it
with ``lazy=True``, train on shards sampled from the chunks (``max_train_shards`` bounds the
training cache), score it block by block, and stream the CVAE reconstruction back to .zspy.
Prints the peak resident memory (psutil) next to the size of the cube and writes
``large_lazy_pcc.png`` (PCC map with the flagged pixels) into ``--out``.

    python examples/large_lazy_dataset.py --out /tmp/lazy            # 384 × 384 × 1200 (0.66 GiB)
    python examples/large_lazy_dataset.py --quick --out /tmp/lazy    # 96 × 96, for CI

With a ``dask.distributed.Client`` active (``Client(LocalCluster(...))`` or a SLURM cluster via
dask-jobqueue) the same calls run the blocks on the workers; nothing else changes.
"""

import argparse
import pathlib
import tempfile
import threading
import time

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from hyperspy_cvae.synthetic import bifeo3_si  # noqa: E402
from hyperspy_cvae.plotting import plot_score_map  # noqa: E402
from hyperspy_cvae.evaluation import detection_metrics  # noqa: E402

WINDOW = (690.0, 730.0)


def _peak_rss(stop, out):
    proc = psutil.Process()
    while not stop.is_set():
        out[0] = max(out[0], proc.memory_info().rss)
        time.sleep(0.02)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cube, short training (CI)")
    ap.add_argument("--out", default=".", help="directory for the PNG")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, epochs, chunk = (96, 4, 48) if args.quick else (384, 12, 96)

    with tempfile.TemporaryDirectory() as tmp:
        # The "acquisition": written once, chunked 48 × 48 (or 96 × 96) pixels × all channels.
        s, truth = bifeo3_si((size, size), random_state=0).inject_shift(
            2.5, window=WINDOW, n_clusters=max(2, size // 32), random_state=1, return_mask=True)
        s = s.as_lazy()
        s.data = s.data.rechunk((chunk, chunk, -1))
        cube = pathlib.Path(tmp) / "si.zspy"
        s.save(cube)
        nbytes = s.data.nbytes
        del s

        peak, stop = [0], threading.Event()
        base = psutil.Process().memory_info().rss
        watcher = threading.Thread(target=_peak_rss, args=(stop, peak), daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        lazy = hs.load(cube, lazy=True, signal_type="CVAE_EELS")
        lazy.fit_cvae(signal_range=(660.0, 760.0), epochs=epochs, random_state=0,
                      max_train_shards=64, show_progressbar=False)
        pcc, mask = lazy.anomaly_map("cvae", window=WINDOW, score="pcc", show_progressbar=False)
        rec = lazy.cvae_decomposition(show_progressbar=False)      # lazy: nothing computed yet
        assert rec._lazy
        rec.save(pathlib.Path(tmp) / "reconstruction.zspy")        # streamed chunk by chunk
        seconds = time.perf_counter() - t0
        stop.set()
        watcher.join()

    m = detection_metrics(mask, truth, pcc)
    print(f"cube {size} × {size} × 1200 float32 = {nbytes / 2**20:,.0f} MiB on disk (lazy), "
          f"chunks {chunk} × {chunk} × 1200")
    print(f"fit + anomaly map + reconstruction → .zspy: {seconds:.0f} s, peak RSS "
          f"{(peak[0] - base) / 2**20:,.0f} MiB above the {base / 2**20:,.0f} MiB baseline")
    print(f"CVAE PCC: precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} "
          f"ROC-AUC {m['roc_auc']:.4f} ({m['n_flagged']} flagged, {m['n_true']} true)")
    ax = plot_score_map(pcc, mask, truth)
    ax.set_title(f"Lazy pipeline from .zspy: PCC (CVAE), F1 {m['f1']:.3f}", fontsize=9)
    ax.figure.savefig(out / "large_lazy_pcc.png", dpi=110, bbox_inches="tight")
    return 0 if np.isfinite(m["roc_auc"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())

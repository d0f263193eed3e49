"""Peak memory of the lazy pipeline on a spectrum image several times larger than a budget.

1. A child process writes a synthetic BiFeO3 cube (default 640 × 640 × 2048 float32 = 3.1 GiB, 4 × the default budget of 768 MiB)
   to a temporary ``.zspy`` store, chunk by chunk (48 × 48 × 2048 chunks, each tile generated
   by :func:`hyperspy_cvae.synthetic.bifeo3_si`; a 2.5 eV Fe L2,3 shift is injected into a 6 × 6
   patch of every 9th tile, the truth is kept).
2. A second child process, whose resident memory (RSS) is polled every 20 ms with psutil,
   runs what a microscopist types::

       s = hs.load(cube, lazy=True, signal_type="CVAE_EELS")
       s.fit_cvae(signal_range=(660., 760.), epochs=..., random_state=0)
       pcc, mask = s.anomaly_map("cvae", window=(690., 730.))
       s.cvae_decomposition().save(rec.zspy)        # streams chunk by chunk

   The budget is the increase of RSS over the process's baseline after importing HyperSpy,
   torch and hyperspy-cvae (so that the ~0.5 GiB of libraries do not count). The run fails
   (exit code 1) if any phase exceeds it. ``ru_maxrss`` is recorded as a cross-check.
3. Results go to ``benchmarks/results/memory.{json,md}``; the cube and the reconstruction
   are deleted (nothing big is ever written to the repository).

    python benchmarks/memory.py                       # ≈ 15 min on 2 idle CPU cores
    python benchmarks/memory.py --ny 320 --nx 320     # quicker, 1/4 of the cube
"""

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
WINDOW = (690.0, 730.0)
SIGNAL_RANGE = (660.0, 760.0)
CHUNK = 48


def generate(path, ny, nx, n_e, seed, offset=420.0, scale=0.3, inject=True):
    """Write the cube to ``path`` (.zspy) tile by tile (``n_e`` channels from ``offset`` eV, ``scale``
    eV each), and the truth mask of the injected patches (``inject``) next to it."""
    import dask
    import dask.array as da
    import numpy as np

    from hyperspy_cvae.synthetic import bifeo3_si
    from hyperspy_cvae.signals import LazyCVAEEELSSpectrum

    gy, gx = -(-ny // CHUNK), -(-nx // CHUNK)
    truth = np.zeros((ny, nx), bool)

    def tile(block_info=None):
        (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
        k = (y0 // CHUNK) * gx + x0 // CHUNK
        s = bifeo3_si((y1 - y0, x1 - x0), offset=offset, scale=scale, size=n_e, random_state=seed + k)
        if inject and k % 9 == 4 and min(y1 - y0, x1 - x0) >= 24:
            m = np.zeros((y1 - y0, x1 - x0), bool)
            m[9:15, 9:15] = True
            s = s.inject_shift(2.5, window=WINDOW, mask=m)
        return s.data.astype(np.float32)

    for k in range(gy * gx):
        if inject and k % 9 == 4:
            y0, x0 = (k // gx) * CHUNK, (k % gx) * CHUNK
            if min(ny - y0, nx - x0, CHUNK) >= 24:
                truth[y0 + 9:y0 + 15, x0 + 9:x0 + 15] = True
    arr = da.map_blocks(tile, chunks=((CHUNK,) * (ny // CHUNK) + ((ny % CHUNK,) if ny % CHUNK else ()),
                                      (CHUNK,) * (nx // CHUNK) + ((nx % CHUNK,) if nx % CHUNK else ()),
                                      (n_e,)), dtype=np.float32)
    s = LazyCVAEEELSSpectrum(arr)
    ref = bifeo3_si((4, 4), offset=offset, scale=scale, size=n_e, random_state=0)
    for i in range(3):
        s.axes_manager[i].update_from(ref.axes_manager[i], ("name", "units", "scale", "offset"))
    s.metadata.set_item("Sample.elements", list(ref.metadata.get_item("Sample.elements", [])))
    s.metadata.General.title = "Synthetic BiFeO3 (memory benchmark)"
    with dask.config.set(scheduler="threads", num_workers=2):
        s.save(path, overwrite=True, chunks=(CHUNK, CHUNK, n_e), show_progressbar=False)
    np.save(str(path) + ".truth.npy", truth)


class PeakRSS:
    """Poll this process's RSS in a thread; ``peak()`` since the last ``reset()``."""

    def __init__(self, interval=0.02):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def now(self):
        return self._proc.memory_info().rss

    def reset(self):
        self._peak = self.now()

    def peak(self):
        self._peak = max(self._peak, self.now())
        return self._peak

    def stop(self):
        self._stop = True
        self._thread.join()


def measure(path, out_path, epochs, budget):
    """The measured run (a fresh process): returns a dict of figures."""
    import gc
    import resource

    import dask
    import hyperspy.api as hs
    import numpy as np
    import torch  # noqa: F401  (baseline includes the libraries)

    import hyperspy_cvae
    from hyperspy_cvae.evaluation import detection_metrics

    hs.preferences.General.show_progressbar = False
    gc.collect()
    mon = PeakRSS()
    time.sleep(0.2)
    baseline = mon.now()
    phases = {}

    def phase(name, fn):
        gc.collect()
        mon.reset()
        t0 = time.perf_counter()
        res = fn()
        phases[name] = {"seconds": round(time.perf_counter() - t0, 1),
                        "peak_rss_increase_mib": round((mon.peak() - baseline) / 2**20, 1)}
        print(f"  {name}: {phases[name]}", flush=True)
        return res

    with dask.config.set(scheduler="threads", num_workers=2):
        s = phase("load (lazy)", lambda: hs.load(path, lazy=True, signal_type="CVAE_EELS"))
        assert s._lazy and type(s).__name__ == "LazyCVAEEELSSpectrum"
        cvae = phase("fit_cvae", lambda: s.fit_cvae(signal_range=SIGNAL_RANGE, epochs=epochs,
                                                    random_state=0, show_progressbar=False))
        pcc, mask = phase("anomaly_map", lambda: s.anomaly_map("cvae", window=WINDOW,
                                                               show_progressbar=False))
        rec = s.cvae_decomposition(show_progressbar=False)
        assert rec._lazy
        phase("reconstruction → .zspy", lambda: rec.save(out_path, overwrite=True,
                                                        show_progressbar=False))
    peak_total = max(p["peak_rss_increase_mib"] for p in phases.values())
    truth = np.load(str(path) + ".truth.npy")
    metrics = detection_metrics(mask, truth, pcc)
    mon.stop()
    return {
        "cube_shape": list(s.data.shape), "cube_dtype": str(s.data.dtype),
        "cube_gib": round(s.data.nbytes / 2**30, 3),
        "chunks": [int(s.data.chunksize[i]) for i in range(3)],
        "budget_mib": budget, "cube_over_budget": round(s.data.nbytes / 2**20 / budget, 2),
        "baseline_rss_mib": round(baseline / 2**20, 1),
        "peak_rss_increase_mib": peak_total,
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "within_budget": bool(peak_total <= budget),
        "phases": phases, "epochs": epochs, "signal_range": list(SIGNAL_RANGE),
        "train_shards": list(cvae.n_train_shards_),
        "reconstruction_shape": list(rec.data.shape),
        "detection": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
        "threshold_decision": mask.metadata.CVAE.threshold.decision,
        "hyperspy_cvae": hyperspy_cvae.__version__,
    }


def write_results(res, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "memory.json").write_text(json.dumps(res, indent=2) + "\n")
    ny, nx, n_e = res["cube_shape"]
    lines = [
        f"# Peak memory of the lazy pipeline ({ny} × {nx} × {n_e} float32, "
        f"{res['cube_gib']:g} GiB in memory, {res['cube_on_disk_gib']:g} GiB compressed on disk as .zspy)",
        "",
        "Generated by `python benchmarks/memory.py`; do not edit by hand.",
        "",
        f"Budget: **{res['budget_mib']} MiB** of resident memory above the process baseline "
        f"(after importing HyperSpy, torch and hyperspy-cvae: {res['baseline_rss_mib']:g} MiB). "
        f"The cube is **{res['cube_over_budget']:g} ×** the budget.",
        "",
        "| phase | time (s) | peak RSS increase (MiB) |",
        "|---|---|---|",
    ]
    for name, p in res["phases"].items():
        lines.append(f"| {name} | {p['seconds']:g} | {p['peak_rss_increase_mib']:g} |")
    ok = "within" if res["within_budget"] else "**OVER**"
    lines += [
        "",
        f"Peak RSS increase over all phases: **{res['peak_rss_increase_mib']:g} MiB** ({ok} the "
        f"budget); `ru_maxrss` (absolute, includes the baseline): {res['ru_maxrss_mib']:g} MiB.",
        f"Chunks {tuple(res['chunks'])}; training on {res['train_shards'][0]} sampled shards "
        f"(+{res['train_shards'][1]} validation), {res['epochs']} epochs, signal range "
        f"{res['signal_range'][0]:g}–{res['signal_range'][1]:g} eV; the reconstruction "
        f"{tuple(res['reconstruction_shape'])} was written lazily to .zspy.",
        f"Detection of the injected 2.5 eV patches (PCC in 690–730 eV, Otsu after the unimodality "
        f"check, decision: {res['threshold_decision']}): precision "
        f"{res['detection']['precision']:.3f}, recall {res['detection']['recall']:.3f}, "
        f"ROC-AUC {res['detection'].get('roc_auc', float('nan')):.4f}.",
        f"Environment: {res['machine']}, generation of the cube {res['generate_seconds']:g} s (not "
        f"measured), total wall time {res['wall_seconds']:g} s.",
        "",
    ]
    (out_dir / "memory.md").write_text("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ny", type=int, default=640)
    ap.add_argument("--nx", type=int, default=640)
    ap.add_argument("--channels", type=int, default=2048)
    ap.add_argument("--budget-mib", type=int, default=768)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", default=None, help="directory for the temporary cube")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--_child", choices=["generate", "measure"], help=argparse.SUPPRESS)
    ap.add_argument("--_path", help=argparse.SUPPRESS)
    ap.add_argument("--_json", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child == "generate":
        generate(a._path, a.ny, a.nx, a.channels, a.seed)
        return 0
    if a._child == "measure":
        res = measure(a._path, a._path.replace(".zspy", "_rec.zspy"), a.epochs, a.budget_mib)
        pathlib.Path(a._json).write_text(json.dumps(res))
        return 0

    t_all = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cvae-memory-", dir=a.tmp))
    try:
        cube = str(tmp / "cube.zspy")
        common = [sys.executable, __file__, "--ny", str(a.ny), "--nx", str(a.nx), "--channels",
                  str(a.channels), "--budget-mib", str(a.budget_mib), "--epochs", str(a.epochs),
                  "--seed", str(a.seed), "--_path", cube]
        t0 = time.perf_counter()
        print(f"Writing the {a.ny} × {a.nx} × {a.channels} cube to {cube} ...", flush=True)
        subprocess.run(common + ["--_child", "generate"], check=True)
        gen_s = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in pathlib.Path(cube).rglob("*") if f.is_file())
        print(f"  done in {gen_s:.0f} s; measuring ...", flush=True)
        js = tmp / "res.json"
        subprocess.run(common + ["--_child", "measure", "--_json", str(js)], check=True)
        res = json.loads(js.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import torch

    res["generate_seconds"] = round(gen_s, 1)
    res["cube_on_disk_gib"] = round(disk / 2**30, 3)
    res["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    res["machine"] = (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
                      f"Python {platform.python_version()}")
    write_results(res, pathlib.Path(a.out))
    print((pathlib.Path(a.out) / "memory.md").read_text())
    return 0 if res["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())

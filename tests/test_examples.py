import math
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # each test runs an example script (which trains a CVAE)


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_quickstart_quick(tmp_path):
    out = tmp_path / "qs.png"
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert out.stat().st_size > 10_000
    lines = [l for l in res.stdout.splitlines() if l.startswith(("CVAE,", "PCA("))]
    labels = [" ".join(l.split()[:2]) for l in lines]
    assert labels == ["CVAE, PCC", "PCA(3), PCC", "PCA(4), PCC", "PCA(5), PCC", "CVAE, shift"]
    auc = {}
    for label, l in zip(labels, lines):
        prec, rec, f1, auc[label] = (float(v) for v in l.split()[2:6])
        # F1 is the harmonic mean of the printed precision and recall (all printed to 3 decimals)
        assert f1 == pytest.approx(2 * prec * rec / (prec + rec) if prec + rec else 0.0, abs=2e-3), l
        assert math.isfinite(auc[label]), l
    assert auc["CVAE, PCC"] > 0.9 and auc["CVAE, shift"] > 0.9


def _run_example(name, out_dir):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--quick", "--out", str(out_dir)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_compare_with_pca_quick(tmp_path):
    out = _run_example("compare_with_pca.py", tmp_path)
    for name in ("compare.png", "denoising.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert (tmp_path / "bfo_cvae.pt").exists()
    rows = {l.split()[0]: l.split() for l in out.splitlines() if l.startswith(("CVAE ", "PCA("))}
    assert list(rows) == ["CVAE", "PCA(3)", "PCA(5)"]
    assert float(rows["CVAE"][4]) > 0.9                       # ROC-AUC of the CVAE
    mse = {l.split()[0]: float(l.split()[-2]) for l in out.splitlines() if l.startswith("  ")}
    assert mse["PCA(3)"] < mse["raw"] and mse["CVAE"] < mse["raw"]  # both denoise
    reapplied = next(l for l in out.splitlines() if l.startswith("re-applied"))
    assert float(reapplied.split("ROC-AUC")[1]) > 0.9


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_latent_space_quick(tmp_path):
    out = _run_example("latent_space.py", tmp_path)
    for name in ("latent_maps.png", "mahalanobis.png", "latent_similarity.png", "phase_map.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    for name in ("pcc", "mask", "latent_mahalanobis", "latent_map", "phases", "phase_centres"):
        assert (tmp_path / f"{name}.hspy").exists(), name
    phase = next(l for l in out.splitlines() if l.startswith("phase map"))
    assert float(re.search(r"substrate ([\d.]+)%", phase).group(1)) > 85   # substrate found
    assert "reloaded pcc.hspy: method CVAE" in out


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_large_lazy_dataset_quick(tmp_path):
    out = _run_example("large_lazy_dataset.py", tmp_path)
    assert (tmp_path / "large_lazy_pcc.png").stat().st_size > 10_000
    line = next(l for l in out.splitlines() if l.startswith("CVAE PCC"))
    f1 = float(line.split("F1")[1].split()[0])
    assert f1 > 0.9
    assert "peak RSS" in out


REAL_MAP = ROOT.parent / "shared" / "realdata" / "si2d" / "GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3"


@pytest.mark.skipif(not REAL_MAP.exists(), reason="../shared/realdata is absent (a fresh clone): "
                                                  "the measured maps are not shipped")
def test_real_map_example(tmp_path):
    out = _run_example("real_map.py", tmp_path)
    for name in ("real_map_result.png", "real_map_labels.png", "real_map_describe.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert (tmp_path / "real_map_cvae.pt").exists() and (tmp_path / "real_map_labels.hspy").exists()
    labels = next(l for l in out.splitlines() if l.startswith("labels:"))
    counts = dict(item.rsplit(" ", 1) for item in labels[len("labels: "):].split(", "))
    assert int(counts["no edge"]) >= 110 and int(counts["outlier"]) >= 3   # vacuum rows, glitches
    assert "shard 8" in out


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_describe_anomalies_example(tmp_path):
    out = _run_example("describe_anomalies.py", tmp_path)
    assert (tmp_path / "describe.png").stat().st_size > 10_000
    # the injected valence change is found and mostly described as what it is: a shift of the
    # L3 line to lower energy with a changed shape
    m = re.search(r"labelled 'anomalous': (\d+) pixels, precision ([\d.]+), recall ([\d.]+)", out)
    assert m and float(m.group(3)) > 0.9 and float(m.group(2)) > 0.5, out[-2000:]
    rows = re.findall(r"anomalous / (shift|shape change)\s+(\d+) pixels, median shift ([+-][\d.]+) eV", out)
    assert rows and all(float(dE) < -0.3 for _, _, dE in rows), out[-2000:]
    assert re.search(r"outlier / outlier\s+1 pixels", out), out[-2000:]

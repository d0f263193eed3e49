import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "examples").exists(), reason="examples not in this checkout")
def test_quickstart_quick(tmp_path):
    out = tmp_path / "qs.png"
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert out.stat().st_size > 10_000
    lines = [l for l in res.stdout.splitlines() if l.startswith(("CVAE ", "PCA("))]
    assert [l.split()[0] for l in lines] == ["CVAE", "PCA(3)", "PCA(4)", "PCA(5)"]
    for l in lines:
        prec, rec, f1, auc = (float(v) for v in l.split()[1:5])
        assert 0 <= f1 <= 1 and 0 <= auc <= 1
    cvae_auc = float(lines[0].split()[4])
    assert cvae_auc > 0.9

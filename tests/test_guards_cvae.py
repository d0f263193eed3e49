"""Never a silent wrong answer from the CVAE itself: dead channels and dark offsets train finite
models, every training step and validation loss is guarded (with the likely cause named),
checkpoints are verified on load (weights checksum, metadata schema) and saved with clear errors,
and concurrent fits in threads give the same model as a sequential fit."""

import io
import json
import logging
import math
import os
import threading
import time
import zipfile

import numpy as np
import pytest
import torch

from hyperspy_cvae import CVAE
from hyperspy_cvae.cvae import NonFiniteTrainingError, model as model_mod
from hyperspy_cvae.cvae.checkpoint import PARAM_SCHEMA, state_sha256
from hyperspy_cvae.cvae.guards import describe_channels, grads_finite
from hyperspy_cvae.cvae.model import MEAN_SPECTRUM_FLOOR, CVAE3D, floor_mean_spectrum
from hyperspy_cvae.cvae.sampling import validation_blocks
from hyperspy_cvae.synthetic import bifeo3_si

FIT = dict(shard_size=16, latent_dim=8, epochs=2, batch_size=4, random_state=0, show_progressbar=False)
DEAD = 50  # channel of the 680–740 eV crop: 680.1 + 50 × 0.3 = 695.1 eV


@pytest.fixture(scope="module")
def crop32():
    """32 × 32 map, 200 channels (680.1–739.8 eV): no validation tiles (4 tiles of 16 × 16)."""
    return bifeo3_si((32, 32), random_state=0).isig[680.0:740.0]


@pytest.fixture(scope="module")
def crop48():
    """48 × 48 map, 200 channels: 9 tiles, one held out for validation."""
    return bifeo3_si((48, 48), random_state=0).isig[680.0:740.0]


@pytest.fixture(scope="module")
def tiny(crop32):
    """A fitted CVAE (one epoch) with a calibrated energy axis."""
    ax = crop32.axes_manager[-1]
    return CVAE(**dict(FIT, epochs=1)).fit(
        crop32.data, energy_axis={"offset": ax.offset, "scale": ax.scale, "size": ax.size, "units": "eV"})


def _weights_finite(cvae):
    return all(torch.isfinite(t).all() for t in cvae.model_.state_dict().values())


def _nan_loss(when):
    """A ``CVAE._loss`` whose loss is NaN in training (``"train"``) or validation (``"val"``)."""
    real = CVAE._loss

    def loss(self, model, p, counts, weight, sample=True):
        out = real(self, model, p, counts, weight, sample=sample)
        if (when == "train") == sample:
            return (out[0] * float("nan"),) + out[1:]
        return out
    return loss


# --------------------------------------------------------------------------- 1. dead channel
def test_mean_spectrum_floor_leaves_ordinary_values_bit_identical():
    rng = np.random.default_rng(0)
    ms = rng.dirichlet(np.ones(200)).astype(np.float32)
    np.testing.assert_array_equal(floor_mean_spectrum(torch.from_numpy(ms), 200).numpy(), ms)
    ms[[3, 7]] = 0.0
    out = floor_mean_spectrum(torch.from_numpy(ms), 200).numpy()
    assert out[3] == out[7] == np.float32(MEAN_SPECTRUM_FLOOR / 200)
    m = CVAE3D(200, 16, 8, mean_spectrum=torch.from_numpy(ms))
    p = torch.from_numpy(np.broadcast_to(ms, (1, 16, 16, 200)).copy())
    logits, mu, logvar = m(p, sample=False)
    assert torch.isfinite(logits).all() and torch.isfinite(mu).all()


@pytest.mark.slow
def test_dead_channel_trains_and_reconstructs_zero(crop32, caplog):
    s = crop32.deepcopy()
    s.data[..., DEAD] = 0
    with caplog.at_level(logging.WARNING, logger="hyperspy_cvae"):
        c = s.fit_cvae(**FIT)
    assert "Channel 50 (695.1 eV) has no counts in any training spectrum" in caplog.text
    assert np.isfinite(c.history_["train_loss"]).all() and _weights_finite(c)
    rec = s.cvae_decomposition(show_progressbar=False).data
    assert np.isfinite(rec).all()
    assert np.abs(rec[..., DEAD]).max() < 1e-2  # ~0 counts at the dead channel (others: ~150)
    assert np.abs(rec - s.data).mean() / s.data.mean() < 0.15


# --------------------------------------------------------------------------- 2. dark offset
@pytest.mark.slow
@pytest.mark.parametrize("offset, lazy", [(50, False), (200, False), (200, True)])
def test_dark_offset_trains_with_finite_losses(crop48, offset, lazy, caplog):
    s = crop48.deepcopy()
    s.data -= offset
    if lazy:
        s = s.as_lazy()
        s.rechunk(nav_chunks=(16, 16))
    with caplog.at_level(logging.WARNING, logger="hyperspy_cvae"):
        c = s.fit_cvae(**FIT, noise="counts")  # taken as counts (the noise model would see an offset)
    if offset == 200:  # values below 0 are clipped, with the warning
        assert "Negative counts found" in caplog.text
    h = c.history_
    assert np.isfinite(h["train_loss"]).all() and np.isfinite(h["val_loss"]).all()  # validation held out
    assert _weights_finite(c)
    rec = s.cvae_decomposition(show_progressbar=False).data
    rec = rec.compute() if hasattr(rec, "compute") else rec
    assert np.isfinite(rec).all()


# --------------------------------------------------------------------------- 3. step guards
def test_grads_finite_and_channel_names():
    m = CVAE3D(64, 8, 4)
    for q in m.parameters():
        q.grad = torch.ones_like(q)
    assert grads_finite(m.parameters())
    next(m.parameters()).grad.view(-1)[5] = 1e30  # huge but finite: no false alarm
    assert grads_finite(m.parameters())
    next(m.parameters()).grad.view(-1)[5] = float("nan")
    assert not grads_finite(m.parameters())
    ax = {"offset": 680.1, "scale": 0.3, "units": "eV"}
    assert describe_channels([50], ax) == "channel 50 (695.1 eV)"
    assert describe_channels([0, 1, 2, 9], ax) == "channels 0–2 (680.1–680.7 eV), 9 (682.8 eV)"
    assert describe_channels([4], {"offset": 0.0, "scale": 1.0, "units": ""}) == "channel 4"


@pytest.mark.slow
def test_guard_names_the_dead_channel(crop32, monkeypatch):
    monkeypatch.setattr(model_mod, "MEAN_SPECTRUM_FLOOR", 0.0)  # the old behaviour: p / 0, log(0)
    s = crop32.deepcopy()
    s.data[..., DEAD] = 0
    with pytest.raises(FloatingPointError, match="training loss is NaN at epoch 1, step 1") as err:
        s.fit_cvae(**FIT)
    assert isinstance(err.value, ValueError)
    assert "channel 50 (695.1 eV) is zero in every training spectrum (a dead channel" in str(err.value)


@pytest.mark.slow
def test_guard_names_negative_offset_and_empty_spectra(crop32, monkeypatch):
    monkeypatch.setattr(CVAE, "_loss", _nan_loss("train"))
    s = crop32.deepcopy()
    s.data -= 300  # 99.8 % of the values < 0; 780 spectra all zero after clipping
    with pytest.raises(NonFiniteTrainingError) as err:
        s.fit_cvae(**FIT, noise="counts")  # taken as counts (the noise model would see an offset)
    msg = str(err.value)
    assert "99.8 % of the values are negative (a dark or background offset?)" in msg
    assert "780 of 1024 spectra (76.2 %) are all zero" in msg


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_guard_names_huge_counts(crop32):
    s = crop32.deepcopy()
    s.data = s.data * np.float32(1e35)  # finite in float32; the Poisson sums overflow
    with pytest.raises(NonFiniteTrainingError, match="the counts are huge") as err:
        s.fit_cvae(**FIT, noise="counts")  # as counts (the noise model would see a gain of 1e35)
    assert "divide the data by a constant" in str(err.value)


@pytest.mark.parametrize("lazy", [False, True])
def test_values_beyond_float32_refused_up_front(crop32, lazy):
    s = crop32.deepcopy()
    s.data = s.data.astype(np.float64) * 1e37
    if lazy:
        s = s.as_lazy()
    with pytest.raises(ValueError, match="beyond the float32 range"):
        s.fit_cvae(**FIT, noise="counts")


@pytest.mark.slow
def test_guard_catches_nonfinite_gradients(crop32, monkeypatch):
    real = CVAE._loss

    def loss(self, model, p, counts, weight, sample=True):
        out = real(self, model, p, counts, weight, sample=sample)
        x = next(model.parameters()).sum()
        bad = torch.where(torch.tensor(True), x * 0, torch.sqrt(x * 0 - 1))  # value 0, gradient NaN
        return (out[0] + bad,) + out[1:]

    monkeypatch.setattr(CVAE, "_loss", loss)
    est = CVAE(**FIT)
    with pytest.raises(NonFiniteTrainingError, match="gradient of the training loss is NaN/inf at epoch 1"):
        est.fit(crop32.data)
    assert not est.is_fitted
    with pytest.raises(NonFiniteTrainingError, match="no dead channel.*smaller `learning_rate`"):
        est.fit(crop32.data)


@pytest.mark.slow
@pytest.mark.parametrize("lazy", [False, True])
def test_guard_checks_validation_eager_and_lazy(crop48, monkeypatch, lazy):
    monkeypatch.setattr(CVAE, "_loss", _nan_loss("val"))
    s = crop48.as_lazy() if lazy else crop48
    with pytest.raises(NonFiniteTrainingError, match="validation loss is NaN at epoch 1"):
        s.fit_cvae(**FIT)


@pytest.mark.slow
@pytest.mark.parametrize("lazy", [False, True])
def test_nan_in_a_validation_tile_refused_eager_and_lazy(crop48, lazy):
    est = CVAE(**FIT)
    rng = np.random.default_rng(FIT["random_state"])
    rng.integers(0, 2**31 - 1)  # as fit: the torch seed, then the validation tiles
    val_pos, _ = validation_blocks(est, rng, np.ones((48, 48), np.float32))
    y, x = val_pos[0]
    s = crop48.deepcopy()
    s.data[y + 12, x + 12, 10] = np.nan  # only in the held-out tile (the training cache: 1 shard)
    if lazy:
        s = s.as_lazy()
        s.rechunk(nav_chunks=(16, 16))
    with pytest.raises(ValueError, match="NaN/inf"):
        s.fit_cvae(max_train_shards=2, **FIT) if lazy else s.fit_cvae(**FIT)


# --------------------------------------------------------------------------- 4. checkpoints
def _meta(path):
    return json.loads(torch.load(path, weights_only=True)["meta_json"])


def _rewrite(src, dst, edit_meta=None, edit_state=None):
    ckpt = torch.load(src, weights_only=True)
    meta = json.loads(ckpt["meta_json"])
    if edit_meta:
        edit_meta(meta)
    if edit_state:
        edit_state(ckpt["state_dict"])
    ckpt["meta_json"] = json.dumps(meta)
    torch.save(ckpt, dst)
    return dst


def test_param_schema_covers_every_cvae_parameter():
    assert set(PARAM_SCHEMA) == set(CVAE._get_param_names())


@pytest.mark.slow
def test_checkpoint_stores_and_verifies_weights_checksum(tiny, tmp_path):
    path = tiny.save(tmp_path / "m.pt")
    meta = _meta(path)
    assert meta["format_version"] == 2
    assert meta["weights_sha256"] == state_sha256(tiny.model_.state_dict())
    assert CVAE.load(path).checksum() == tiny.checksum()
    # flip bytes in the middle of the largest weight tensor of the file (stored, not compressed)
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    h = info.header_offset
    name_len, extra_len = (int.from_bytes(blob[h + k:h + k + 2], "little") for k in (26, 28))
    start = h + 30 + name_len + extra_len  # the local file header, then the stored bytes
    for k in range(8):
        blob[start + info.file_size // 2 + k] ^= 0x5A
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="the weights do not match their checksum"):
        CVAE.load(flipped)


@pytest.mark.slow
def test_version_1_checkpoint_without_checksum_still_loads(tiny, tmp_path):
    def to_v1(meta):
        del meta["weights_sha256"]
        meta["format_version"] = 1

    v1 = _rewrite(tiny.save(tmp_path / "m.pt"), tmp_path / "v1.pt", to_v1)
    assert CVAE.load(v1).checksum() == tiny.checksum()
    no_sum = _rewrite(tiny.save(tmp_path / "m.pt"), tmp_path / "v2.pt",
                      lambda m: m.pop("weights_sha256"))
    with pytest.raises(ValueError, match="`weights_sha256` is missing"):
        CVAE.load(no_sum)
    newer = _rewrite(tiny.save(tmp_path / "m.pt"), tmp_path / "v3.pt",
                     lambda m: m.update(format_version=3))
    with pytest.raises(ValueError, match="newer hyperspy-cvae"):
        CVAE.load(newer)


def _set(dotted, value):
    def edit(meta):
        *parents, last = dotted.split(".")
        d = meta
        for k in parents:
            d = d[k]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return edit


BAD_METADATA = [
    ("architecture.n_channels", 10**9, "`architecture.n_channels` must be an integer in [16, 99999]"),
    ("architecture.n_channels", "200", "`architecture.n_channels` must be an integer"),
    ("architecture.shard_size", 18,
     "`architecture.shard_size` must be an integer in [8, 1024], a multiple of 4"),
    ("architecture.latent_dim", 0, "`architecture.latent_dim` must be an integer in [1, 4096]"),
    ("architecture.widths", [8, 16, 32], "`architecture.widths` must be a list of 4 positive integers"),
    ("architecture.widths", [8, 16, 32, 10**6], "`architecture.widths[3]` must be an integer in [1, 4096]"),
    ("architecture.class", "Other", "`architecture.class` must be one of 'CVAE3D'"),
    ("architecture", KeyError, "`architecture` is missing"),
    ("params.latent_dim", 9, "`params.latent_dim` (9) differs from `architecture.latent_dim` (8)"),
    ("params.foo", 1, "`params.foo` is not a CVAE parameter"),
    ("params.loss", "mse", "`params.loss` must be one of 'poisson', 'ce'"),
    ("params.beta", "x", "`params.beta` must be a finite number"),
    ("params.epochs", True, "`params.epochs` must be an integer"),
    ("params.validation_fraction", 0.7, "`params.validation_fraction` must be a finite number in [0, 0.5)"),
    ("params", [], "`params` must be a JSON object"),
    ("energy_axis.scale", 0.0, "`energy_axis.scale` must be a finite number in (0, 1e+09]"),
    ("energy_axis.offset", float("nan"), "`energy_axis.offset` must be a finite number"),
    ("energy_axis.units", KeyError, "`energy_axis.units` is missing"),
    ("history.train_loss", "x", "`history.train_loss` must be a list of at most"),
    ("history.val_loss", [1.0, "a"], "`history.val_loss[1]` must be a number"),
    ("signal_range", [740.0, 680.0], "`signal_range` must have start < end"),
    ("weights_sha256", "xyz", "`weights_sha256` must be 64 lowercase hex digits"),
    ("extra", 1, "`extra` is not a checkpoint metadata field"),
]


@pytest.mark.slow
def test_hand_edited_metadata_refused_with_the_field_named(tiny, tmp_path):
    good = tiny.save(tmp_path / "m.pt")
    for i, (field, value, fragment) in enumerate(BAD_METADATA):
        bad = _rewrite(good, tmp_path / f"bad{i}.pt", _set(field, value))
        with pytest.raises(ValueError) as err:
            CVAE.load(bad)
        msg = str(err.value)
        assert "invalid checkpoint metadata" in msg and fragment in msg, (field, msg)
    # a missing parameter takes its default
    no_patience = _rewrite(good, tmp_path / "nopatience.pt", _set("params.patience", KeyError))
    assert CVAE.load(no_patience).patience == 6


@pytest.mark.slow
def test_huge_architecture_refused_without_allocating(tiny, tmp_path):
    def huge(meta):
        meta["architecture"].update(n_channels=99_999, shard_size=1024, latent_dim=4096, widths=[4096] * 4)
        meta["params"].update(shard_size=1024, latent_dim=4096, widths=[4096] * 4)

    bad = _rewrite(tiny.save(tmp_path / "m.pt"), tmp_path / "huge.pt", huge)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="weights do not match the stored architecture"):
        CVAE.load(bad)  # would be ~10¹⁵ parameters
    assert time.perf_counter() - t0 < 5


@pytest.mark.slow
def test_checkpoint_with_nonfinite_weights_refused(tiny, tmp_path):
    def poison(state):
        state["decoder.from_latent.bias"][0] = float("nan")

    def fix_sum(meta):
        state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
        poison(state)
        meta["weights_sha256"] = state_sha256(state)

    bad = _rewrite(tiny.save(tmp_path / "m.pt"), tmp_path / "nan.pt", fix_sum, poison)
    with pytest.raises(ValueError, match="the weights contain NaN/inf.*diverged"):
        CVAE.load(bad)


def _not_writable(folder):
    if not os.path.isdir(folder):
        return False
    probe = os.path.join(folder, f".probe-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return True
    os.unlink(probe)
    return False


@pytest.mark.slow
def test_save_errors_name_the_path_and_reason(tiny, tmp_path):
    with pytest.raises(IsADirectoryError, match="this is a folder") as err:
        tiny.save(tmp_path)
    assert str(tmp_path) in str(err.value)
    missing = tmp_path / "no" / "such" / "m.pt"
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        tiny.save(missing)
    assert str(missing) in str(err.value)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        # root ignores permission bits: then use a folder where files cannot be created (sysfs)
        ro = next((d for d in (ro, "/sys", "/proc") if _not_writable(d)), None)
        if ro is None:
            pytest.skip("no read-only folder available to this user")
        target = os.path.join(ro, "m.pt")
        with pytest.raises(OSError, match="not writable") as err:
            tiny.save(target)
        assert target in str(err.value) and not isinstance(err.value, RuntimeError)
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]  # no temporary file left behind


# --------------------------------------------------------------------------- 5. threads
@pytest.mark.slow
def test_concurrent_fits_match_a_sequential_fit(crop32):
    X = crop32.data
    kw = dict(FIT, epochs=1)
    ref = CVAE(**kw).fit(X).checksum()
    for _ in range(2):
        out = [None, None]
        barrier = threading.Barrier(2)

        def work(i):
            barrier.wait()
            out[i] = CVAE(**kw).fit(X).checksum()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out == [ref, ref]
    assert math.isfinite(torch.randn(1).item())  # the global RNG is usable afterwards

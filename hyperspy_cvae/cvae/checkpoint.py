"""Saving, loading and identifying fitted CVAEs: a ``torch.save`` file of tensors and one JSON
string, read back with ``weights_only=True`` (no code runs).

Since format version 2 the JSON metadata hold a SHA-256 of the weights (``weights_sha256``,
:func:`state_sha256`), checked on load: a file whose weights changed after saving (flipped bytes,
a bad copy) is refused instead of giving a silently different model. The metadata are validated
against a schema with bounded shapes (:func:`validate_metadata`) before anything is allocated, so a
hand-edited file gives one ``ValueError`` that names the offending field. Version 1 files (no
checksum) still load, without that verification.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import secrets
from pathlib import Path

import torch

from .._version import __version__
from .device import resolve_device
from .model import CVAE3D

__all__ = ["save_checkpoint", "load_checkpoint", "weights_checksum", "state_sha256",
           "validate_metadata"]

_CHECKPOINT_FORMAT = "hyperspy-cvae-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: weights_sha256 in the metadata; 1: no checksum

# -- bounds of the metadata schema ---------------------------------------------------------------
_MAX_CHANNELS = 100_000
_MAX_SHARD = 1024
_MAX_LATENT = 4096
_MAX_WIDTH = 4096
_MAX_COUNT = 10**9  # epochs, batch sizes, patience, shards per epoch
_MAX_HISTORY = 10**6  # entries per history list
_MAX_STR = 1000


def checkpoint_dict(est):
    """Weights (CPU tensors) and a JSON string of everything needed to apply them."""
    params = est.get_params()
    params["device"] = "auto"
    params["random_state"] = params["random_state"] if isinstance(
        params["random_state"], (int, type(None))) else None
    params["widths"] = list(params["widths"])
    state = {k: v.detach().cpu() for k, v in est.model_.state_dict().items()}
    meta = {
        "format": _CHECKPOINT_FORMAT, "format_version": _CHECKPOINT_VERSION,
        "package_version": __version__, "params": params,
        "architecture": {"class": "CVAE3D", "n_channels": est.n_channels_,
                         "shard_size": int(est.shard_size_), "latent_dim": int(est.latent_dim),
                         "widths": list(est.widths)},
        "energy_axis": est.energy_axis_,
        "normalisation": "spectra clipped at 0 and normalised to sum 1; input = p / mean_spectrum - 1",
        "history": est.history_,
        "signal_range": getattr(est, "signal_range_", None),
        "weights_sha256": state_sha256(state),
    }
    return {"meta_json": json.dumps(meta), "state_dict": state}


def _save_error(err, target, reason):
    msg = f"cannot save the CVAE checkpoint ({reason})"
    if isinstance(err, OSError) and err.errno is not None:
        return type(err)(err.errno, msg, str(target))
    return OSError(f"{msg}: {target}")


def save_checkpoint(est, path):
    """Save ``est``'s weights and everything needed to apply them (a ``torch.save`` file).

    The file holds only tensors and a JSON string, so :func:`load_checkpoint`
    reads it with ``torch.load(weights_only=True)`` (no code is executed).
    ``path`` is written atomically (a temporary file in the same folder,
    renamed on success), so a failed save never leaves a truncated checkpoint.
    A file-like object is written to directly.

    Raises
    ------
    OSError
        ``IsADirectoryError`` if ``path`` is a folder, ``FileNotFoundError`` if
        its folder does not exist, ``PermissionError`` if the folder is not
        writable, ...; the message names the path and the reason.
    """
    ckpt = checkpoint_dict(est)
    if hasattr(path, "write"):
        torch.save(ckpt, path)
        return path
    target = Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "cannot save the CVAE checkpoint: this is a folder; "
                                "give a file name (e.g. 'model.pt' in it)", str(target))
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot save the CVAE checkpoint: the folder "
                                f"'{folder}' does not exist (create it first)", str(target))
    tmp = folder / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise _save_error(err, target, f"the folder '{folder}' is not writable: "
                                       f"{err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
        os.replace(tmp, target)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, (OSError, RuntimeError)):  # torch reports write errors as RuntimeError
            raise _save_error(err, target, getattr(err, "strerror", None) or str(err)) from err
        raise
    return path


def weights_checksum(model) -> str:
    """SHA-256 of a network's weights (identifies the model in results' metadata)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def state_sha256(state) -> str:
    """SHA-256 of a state dict's content: names, dtypes, shapes and raw bytes, in name order.

    Unlike :func:`weights_checksum` it does not depend on how ``torch.save`` lays out a file,
    so it is stored in checkpoints and verified on load (across torch versions).
    """
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0{len(raw)}\0".encode())
        h.update(raw)
    return h.hexdigest()


# -- metadata schema ----------------------------------------------------------------------------
class _Invalid(ValueError):
    def __init__(self, field, problem):
        super().__init__(f"`{field}` {problem}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v, field, lo, hi, multiple=None):
    if not _is_int(v) or not lo <= v <= hi or (multiple and v % multiple):
        extra = f", a multiple of {multiple}" if multiple else ""
        raise _Invalid(field, f"must be an integer in [{lo}, {hi}]{extra}, got {v!r}")
    return v


def _num(v, field, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    ok = _is_num(v) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and (
        v < hi if hi_open else v <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise _Invalid(field, f"must be a finite number in {rng}, got {v!r}")
    return v


def _str(v, field, max_len=_MAX_STR):
    if not isinstance(v, str) or len(v) > max_len:
        raise _Invalid(field, f"must be a string of at most {max_len} characters, got {v!r:.80}")
    return v


def _bool(v, field):
    if not isinstance(v, bool):
        raise _Invalid(field, f"must be true or false, got {v!r}")
    return v


def _optional(check):
    def f(v, field):
        return None if v is None else check(v, field)
    return f


def _widths(v, field):
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        raise _Invalid(field, f"must be a list of 4 positive integers <= {_MAX_WIDTH}, got {v!r:.80}")
    for i, w in enumerate(v):
        _int(w, f"{field}[{i}]", 1, _MAX_WIDTH)
    return list(v)


def _choice(*options):
    def f(v, field):
        if v not in options or not isinstance(v, str):
            raise _Invalid(field, f"must be one of {', '.join(map(repr, options))}, got {v!r:.80}")
        return v
    return f


def _dict(v, field):
    if not isinstance(v, dict):
        raise _Invalid(field, f"must be a JSON object, got {type(v).__name__}")
    return v


#: Type and range of every :class:`~hyperspy_cvae.CVAE` parameter stored in a checkpoint
#: (a missing one takes its default; an unknown one is refused).
PARAM_SCHEMA = {
    "latent_dim": lambda v, f: _int(v, f, 1, _MAX_LATENT),
    "beta": lambda v, f: _num(v, f, 0.0, 1e6),
    "shard_size": lambda v, f: v if v == "auto" else _int(v, f, 8, _MAX_SHARD, multiple=4),
    "stride": _optional(lambda v, f: _int(v, f, 1, _MAX_SHARD)),
    "epochs": _optional(lambda v, f: _int(v, f, 1, _MAX_COUNT)),
    "max_steps": lambda v, f: v if v == "auto" else _int(v, f, 1, _MAX_COUNT),
    "validation_every": lambda v, f: v if v == "auto" else _int(v, f, 1, _MAX_COUNT),
    "batch_size": lambda v, f: _int(v, f, 1, _MAX_COUNT),
    "learning_rate": lambda v, f: _num(v, f, 0.0, 1e3, lo_open=True),
    "loss": _choice("poisson", "ce"),
    "widths": _widths,
    "validation_fraction": lambda v, f: _num(v, f, 0.0, 0.5, hi_open=True),
    "early_stopping": _bool,
    "patience": lambda v, f: _int(v, f, 0, _MAX_COUNT),
    "augment": _bool,
    "device": lambda v, f: _str(v, f, 64),
    "random_state": _optional(lambda v, f: _int(v, f, -2**63, 2**64 - 1)),
    "show_progressbar": _optional(_bool),
    "shards_per_epoch": _optional(lambda v, f: _int(v, f, 1, _MAX_COUNT)),
}

_ARCH_SCHEMA = {
    "class": _choice("CVAE3D"),
    "n_channels": lambda v, f: _int(v, f, 16, _MAX_CHANNELS - 1),
    "shard_size": lambda v, f: _int(v, f, 8, _MAX_SHARD, multiple=4),
    "latent_dim": PARAM_SCHEMA["latent_dim"],
    "widths": _widths,
}


def _energy_axis(v, field):
    _dict(v, field)
    for key in ("offset", "scale", "size", "units"):
        if key not in v:
            raise _Invalid(f"{field}.{key}", "is missing")
    _num(v["offset"], f"{field}.offset", -1e9, 1e9)
    _num(v["scale"], f"{field}.scale", 0.0, 1e9, lo_open=True)
    _int(v["size"], f"{field}.size", 1, _MAX_CHANNELS)
    _str(v["units"], f"{field}.units", 64)
    for key, val in v.items():  # anything else a caller stored: JSON scalars only
        if key not in ("offset", "scale", "size", "units") and not (
                val is None or isinstance(val, (bool, int, float)) or
                (isinstance(val, str) and len(val) <= _MAX_STR)):
            raise _Invalid(f"{field}.{key}", f"must be a number, a string or null, got {val!r:.80}")
    return v


def _history(v, field):
    _dict(v, field)
    if len(v) > 32:
        raise _Invalid(field, f"has {len(v)} entries (at most 32)")
    for key, vals in v.items():
        if not isinstance(vals, list) or len(vals) > _MAX_HISTORY:
            raise _Invalid(f"{field}.{key}", f"must be a list of at most {_MAX_HISTORY} numbers, "
                                             f"got {type(vals).__name__}")
        for i, x in enumerate(vals):
            if not _is_num(x):
                raise _Invalid(f"{field}.{key}[{i}]", f"must be a number, got {x!r:.80}")
    return v


def _signal_range(v, field):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise _Invalid(field, f"must be null or [start, end], got {v!r:.80}")
    a = _num(v[0], f"{field}[0]", -1e9, 1e9)
    b = _num(v[1], f"{field}[1]", -1e9, 1e9)
    if not a < b:
        raise _Invalid(field, f"must have start < end, got {v!r}")
    return v


def _sha256(v, field):
    if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise _Invalid(field, f"must be 64 lowercase hex digits, got {v!r:.80}")
    return v


_META_SCHEMA = {  # field: (check, required)
    "format": (lambda v, f: v, True),
    "format_version": (lambda v, f: _int(v, f, 1, _CHECKPOINT_VERSION), True),
    "package_version": (_optional(lambda v, f: _str(v, f, 64)), False),
    "params": (_dict, True),
    "architecture": (_dict, True),
    "energy_axis": (_energy_axis, True),
    "normalisation": (_optional(_str), False),
    "history": (_history, True),
    "signal_range": (_signal_range, False),
    "weights_sha256": (_sha256, False),
}


def validate_metadata(meta, param_names=None):
    """Check checkpoint metadata against the schema; return ``(params, architecture)``.

    ``params`` are the stored CVAE parameters (``widths`` as a tuple), ``param_names`` the
    parameters the estimator class accepts (default: those of :data:`PARAM_SCHEMA`). Raises
    ``ValueError`` naming the first offending field (missing, unknown, of the wrong type or out of
    range, or architecture and parameters that disagree). Nothing is allocated from the values.
    """
    _dict(meta, "metadata")
    names = set(PARAM_SCHEMA if param_names is None else param_names)
    for key in meta:
        if key not in _META_SCHEMA:
            raise _Invalid(key, "is not a checkpoint metadata field")
    for key, (check, required) in _META_SCHEMA.items():
        if key not in meta:
            if required:
                raise _Invalid(key, "is missing")
            continue
        check(meta[key], key)
    if meta["format_version"] >= 2 and "weights_sha256" not in meta:
        raise _Invalid("weights_sha256", "is missing (required since format version 2)")
    params = dict(meta["params"])
    for key, val in params.items():
        if key not in names or key not in PARAM_SCHEMA:
            raise _Invalid(f"params.{key}", "is not a CVAE parameter")
        PARAM_SCHEMA[key](val, f"params.{key}")
    arch = meta["architecture"]
    for key in arch:
        if key not in _ARCH_SCHEMA:
            raise _Invalid(f"architecture.{key}", "is not an architecture field")
    for key, check in _ARCH_SCHEMA.items():
        if key not in arch:
            raise _Invalid(f"architecture.{key}", "is missing")
        check(arch[key], f"architecture.{key}")
    for key in ("shard_size", "latent_dim", "widths"):
        if key in params and not (key == "shard_size" and params[key] == "auto"):
            p = list(params[key]) if key == "widths" else params[key]
            if p != arch[key]:
                raise _Invalid(f"params.{key}", f"({p!r}) differs from `architecture.{key}` "
                                                f"({arch[key]!r})")
    if params.get("stride") is not None and params["stride"] > arch["shard_size"]:
        raise _Invalid("params.stride", f"({params['stride']}) exceeds the shard size "
                                        f"({arch['shard_size']})")
    if "widths" in params:
        params["widths"] = tuple(params["widths"])
    return params, arch


def _check_state(state, path):
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: corrupt checkpoint (`state_dict` is not a dict of named tensors).")


def load_checkpoint(cls, path, device="auto"):
    """An estimator of class ``cls`` from a checkpoint written by :func:`save_checkpoint`
    (see :meth:`hyperspy_cvae.CVAE.load` for the errors it raises)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # corrupt zip, pickled objects, ...
        raise ValueError(f"{path} is not a valid hyperspy-cvae checkpoint (it could not be read "
                         f"safely with weights_only=True: {type(err).__name__}).") from err
    if not isinstance(ckpt, dict) or "meta_json" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a hyperspy-cvae checkpoint (missing metadata).")
    try:
        meta = json.loads(ckpt["meta_json"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: corrupt checkpoint metadata.") from err
    if not isinstance(meta, dict) or meta.get("format") != _CHECKPOINT_FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{path} is not a hyperspy-cvae checkpoint (format {fmt!r}).")
    version = meta.get("format_version", 0)
    if _is_int(version) and version > _CHECKPOINT_VERSION:
        raise ValueError(f"{path} was written by a newer hyperspy-cvae "
                         f"({meta.get('package_version')}); upgrade to load it.")
    try:
        params, arch = validate_metadata(meta, cls._get_param_names())
    except _Invalid as err:
        raise ValueError(f"{path}: invalid checkpoint metadata: {err}") from None
    state = ckpt["state_dict"]
    _check_state(state, path)
    if "weights_sha256" in meta and state_sha256(state) != meta["weights_sha256"]:
        raise ValueError(f"{path}: the weights do not match their checksum (weights_sha256): the "
                         "file was modified or damaged after saving; use an intact copy.")
    with torch.device("meta"):  # the shapes the architecture implies, without allocating them
        skeleton = CVAE3D(arch["n_channels"], arch["shard_size"], arch["latent_dim"],
                          tuple(arch["widths"]))
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if expected != {k: tuple(v.shape) for k, v in state.items()}:
        raise ValueError(f"{path}: weights do not match the stored architecture.")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: the weights contain NaN/inf ({', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): this model diverged during training "
                         "and cannot be used; train it again.")
    obj = cls(**params)
    obj.device_ = resolve_device(device)
    model = CVAE3D(arch["n_channels"], arch["shard_size"], arch["latent_dim"], tuple(arch["widths"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not match the stored architecture.") from err
    model.eval()
    obj.model_ = model.to(obj.device_)
    obj.n_channels_ = arch["n_channels"]
    obj.shard_size_ = arch["shard_size"]
    obj.energy_axis_ = meta["energy_axis"]
    obj.history_ = meta["history"]
    obj.signal_range_ = meta.get("signal_range")
    obj.package_version_ = meta.get("package_version")
    obj.checkpoint_path_ = str(path)
    obj.fit_seconds_ = obj.history_["seconds"][-1] if obj.history_.get("seconds") else 0.0
    steps = obj.history_.get("steps")
    obj.n_steps_ = int(steps[-1]) if steps else None  # files from before the step budget: unknown
    return obj

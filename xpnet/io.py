"""Saving and loading models: architecture (JSON) + weights (+ optimizer state) in one ``.npz``.

Files are written atomically (a temporary file in the same folder, fsync, ``os.replace``): a failed
save leaves the previous file untouched and no temporary behind. Loading rebuilds the model on any
backend (train on CuPy, load on NumPy) and refuses truncated, corrupt or mismatched files with a
``ValueError`` naming the file.

bfloat16 arrays (torch), which NumPy cannot hold, are stored as their raw 16-bit patterns (uint16)
and named in the metadata's ``"dtypes"``: saved and loaded bit for bit. Loaded on a backend without
bfloat16 they become float32, which holds every bfloat16 value exactly.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from . import losses, optimizers
from .backend import Backend, host_rng, resolve_backend, to_numpy, use_backend
from .layers import LAYERS
from .model import Sequential

FORMAT, VERSION = "xpnet", 1


def _loss_config(loss: losses.Loss) -> dict[str, Any]:
    if isinstance(loss, losses.Flooding):
        return {"class": "Flooding", "b": loss.b, "inner": _loss_config(loss.loss)}
    return {"class": type(loss).__name__}


def _make_loss(cfg: dict[str, Any]) -> losses.Loss:
    if cfg["class"] == "Flooding":
        return losses.Flooding(_make_loss(cfg["inner"]), cfg["b"])
    return losses.LOSSES[cfg["class"]]()


def save(model: Sequential, path: str | os.PathLike, optimizer: optimizers.Optimizer | None = None,
         run: dict[str, Any] | None = None, run_arrays: dict[str, np.ndarray] | None = None) -> None:
    """Write ``model`` (and ``optimizer``'s state, if given) to ``path`` atomically.

    ``run``, ``run_arrays``: a training run's state (JSON-able, host arrays) stored beside the model: a
    run checkpoint, see :mod:`xpnet.checkpoint`; :func:`load` reads the model out of such a file too."""
    path = pathlib.Path(path)
    if not path.parent.is_dir():  # else the error would name the temporary file
        raise FileNotFoundError(f"{path}: the folder {str(path.parent)!r} does not exist")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "layers": [{"class": type(layer).__name__, "config": layer.config()} for layer in model.layers],
        "loss": _loss_config(model.loss_layer),
        "input_shape": list(model.input_shape) if model.input_shape else None,
        "input_grad": model.input_grad,
    }
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    arrays.update({f"buffer/{k}": v for k, v in model.buffers.items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"class": type(optimizer).__name__, "config": optimizer.config(), "t": state["t"]}
        for key, slots in state["state"].items():
            arrays.update({f"opt/{key}/{slot}": a for slot, a in slots.items()})
    if run is not None:
        meta["run"] = run
        arrays.update({f"run/{k}": a for k, a in (run_arrays or {}).items()})
    arrays = _to_host(arrays, meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _to_host(arrays: dict[str, Any], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Host copies; bfloat16 ones as raw bits (the upper half of their exact float32), named in
    ``meta["dtypes"]``."""
    out, dtypes = {}, {}
    for name, a in arrays.items():
        h = to_numpy(a)
        if str(a.dtype).endswith("bfloat16"):
            h, dtypes[name] = (np.asarray(h, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16), "bfloat16"
        out[name] = h
    if dtypes:
        meta["dtypes"] = dtypes
    return out


def _from_bits(path: pathlib.Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Replace the raw-bit entries named in ``meta["dtypes"]`` by their exact float32 values in place;
    returns ``{entry: dtype name}``."""
    try:
        dtypes = dict(meta.get("dtypes", {}))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid dtype table: {e}") from e
    for name, kind in dtypes.items():
        a = arrays.get(name)
        if kind != "bfloat16" or a is None or a.dtype != np.uint16:
            raise ValueError(f"{path}: entry {name!r} is not stored as {kind!r} raw bits (uint16)")
        arrays[name] = (a.astype(np.uint32) << 16).view(np.float32)
    return dict(dtypes)


def _on(backend: Backend, a: np.ndarray, kind: str | None) -> Any:
    """A host array onto ``backend``, as bfloat16 where it was saved so and the backend has it."""
    if kind is not None:
        try:
            return backend.from_host(a, dtype=backend.dtype(kind))
        except TypeError:  # no bfloat16 here: float32 holds its values exactly
            pass
    return backend.from_host(a)


def _read(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The description and arrays of an xpnet file; ``ValueError`` "not an xpnet checkpoint (...)"
    or "corrupt or truncated (...)" naming the file (never NumPy's advice on pickles)."""
    with open(path, "rb") as f:  # FileNotFoundError as it is
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise ValueError(f"{path}: not an xpnet checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise ValueError(f"{path}: not an xpnet checkpoint (an .npz without xpnet's 'meta' entry)")
            arrays = {}
            for k in data.files:
                try:
                    arrays[k] = data[k]
                except ValueError as e:
                    if "pickle" not in str(e):
                        raise
                    raise ValueError(f"{path}: not an xpnet checkpoint (entry {k!r} holds pickled Python objects)") from None
    except ValueError as e:
        if str(e).startswith(f"{path}: "):
            raise
        raise ValueError(f"{path}: corrupt or truncated ({e})") from e
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated ({type(e).__name__}: {e})") from e
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("no xpnet format marker")
        if meta.get("version") != VERSION:
            raise ValueError(f"format version {meta.get('version')}; this xpnet reads {VERSION}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not an xpnet checkpoint ({e})") from e
    return meta, arrays


def _assign(path: pathlib.Path, what: str, current: dict[str, Any], saved: dict[str, np.ndarray], backend: Backend,
            kinds: dict[str, str]) -> dict[str, Any]:
    """Saved host arrays for ``current``'s keys, checked (keys, shapes, finite) and moved."""
    if set(saved) != set(current):
        raise ValueError(
            f"{path}: {what} mismatch with the architecture: missing {sorted(set(current) - set(saved))}, "
            f"unexpected {sorted(set(saved) - set(current))}"
        )
    out = {}
    for key, a in saved.items():
        if tuple(a.shape) != tuple(current[key].shape):
            raise ValueError(f"{path}: {what} {key!r} has shape {a.shape}, the architecture needs {tuple(current[key].shape)}")
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: {what} {key!r} is not finite floating data (dtype {a.dtype})")
        out[key] = _on(backend, a, kinds.get(key))
    return out


def load_checkpoint(path: str | os.PathLike, backend: str | Backend | None = None, device: Any = None):
    """``(model, optimizer or None)`` from a file written by :func:`save`, on ``backend`` (default: active)."""
    path = pathlib.Path(path)
    meta, arrays = _read(path)
    target = resolve_backend(backend, device)
    dtypes = _from_bits(path, meta, arrays)
    groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "buffer": {}, "opt": {}, "run": {}}  # run: checkpoint.py
    kinds: dict[str, dict[str, str]] = {"param": {}, "buffer": {}, "opt": {}, "run": {}}
    for name, a in arrays.items():
        kind, _, key = name.partition("/")
        if kind not in groups:
            raise ValueError(f"{path}: unexpected entry {name!r}")
        groups[kind][key] = a
        if name in dtypes:
            kinds[kind][key] = dtypes[name]
    rng_state = host_rng().bit_generator.state  # building layers draws weights: keep the user's stream
    try:
        with use_backend(target):
            layers = []
            for spec in meta["layers"]:
                if spec["class"] not in LAYERS:
                    raise ValueError(f"unknown layer class {spec['class']!r}")
                layers.append(LAYERS[spec["class"]](**spec["config"]))
            model = Sequential(layers, loss=_make_loss(meta["loss"]), input_shape=meta.get("input_shape"),
                               input_grad=meta.get("input_grad", False))
            opt = None
            if "optimizer" in meta:
                opt = optimizers.OPTIMIZERS[meta["optimizer"]["class"].lower()](**meta["optimizer"]["config"])
    except (KeyError, TypeError, ValueError) as e:  # a tampered or foreign description
        raise ValueError(f"{path}: invalid architecture description: {e!r}") from e
    finally:
        host_rng().bit_generator.state = rng_state
    for what, current, attr in (("parameter", model.params, "param"), ("buffer", model.buffers, "buffer")):
        for key, value in _assign(path, what, current, groups[attr], target, kinds[attr]).items():
            i, name = key.split(".", 1)
            setattr(model.layers[int(i)], name, value)
    if opt is not None:
        params = model.params
        state: dict[str, dict[str, Any]] = {}
        for name, a in groups["opt"].items():
            key, _, slot = name.rpartition("/")
            if key not in params or tuple(a.shape) != tuple(params[key].shape):
                raise ValueError(f"{path}: optimizer state {name!r} does not match the model's parameters")
            state.setdefault(key, {})[slot] = _on(target, a, kinds["opt"].get(name))
        try:
            opt.load_state_dict({"t": meta["optimizer"]["t"], "state": state}, params)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
    return model, opt


def load(path: str | os.PathLike, backend: str | Backend | None = None, device: Any = None,
         optimizer: optimizers.Optimizer | None = None) -> Sequential:
    """A model saved by ``model.save(path)``, rebuilt on ``backend`` (default: the active one).

    With ``optimizer``, its state (steps, moments) is restored from the file in place; the file must
    hold the state of an optimizer of the same class.
    """
    model, saved = load_checkpoint(path, backend, device)
    if optimizer is not None:
        if saved is None:
            raise ValueError(f"{path}: holds no optimizer state (save with model.save(path, optimizer=opt))")
        if type(saved) is not type(optimizer):
            raise ValueError(f"{path}: holds {type(saved).__name__} state, not {type(optimizer).__name__}")
        optimizer.load_state_dict(saved.state_dict(), model.params)
    return model

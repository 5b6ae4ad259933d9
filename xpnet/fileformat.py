"""The xpnet file format: one ``.npz`` holding a JSON description (``meta``) and host arrays.

Below the model: it writes a model's layers, loss, parameters, buffers and optimizer state, and reads a
file back into ``(meta, arrays)``; rebuilding a model from them is :mod:`xpnet.io`'s job (above the model).

Files are written atomically by :func:`xpnet.atomic.atomic_write` (a temporary file in the same folder,
fsync, ``os.replace``, permissions ``0666 & ~umask``): a failed save leaves the previous file untouched
and no temporary behind. Reading refuses truncated, corrupt or
foreign files with a ``ValueError`` naming the file.

bfloat16 arrays (torch), which NumPy cannot hold, are stored as their raw 16-bit patterns (uint16)
and named in the metadata's ``"dtypes"``: saved and loaded bit for bit. Loaded on a backend without
bfloat16 they become float32, which holds every bfloat16 value exactly.
"""

from __future__ import annotations

import json
import os
import pathlib
import zipfile
import zlib
from typing import Any, cast

import numpy as np

from . import atomic, losses
from .backend import Backend, to_numpy

FORMAT, VERSION = "xpnet", 1


def layer_specs(model: Any) -> list[dict[str, Any]]:
    """Each layer's class name and constructor arguments, as stored in a file."""
    return [{"class": type(layer).__name__, "config": layer.config()} for layer in model.layers]


def loss_config(loss: losses.Loss) -> dict[str, Any]:
    if isinstance(loss, losses.Flooding):
        return {"class": "Flooding", "b": loss.b, "inner": loss_config(loss.loss)}
    return {"class": type(loss).__name__}


def make_loss(cfg: dict[str, Any]) -> losses.Loss:
    if cfg["class"] == "Flooding":
        return losses.Flooding(make_loss(cfg["inner"]), cfg["b"])
    return losses.LOSSES[cfg["class"]]()


def save(
    model: Any,
    path: str | os.PathLike,
    optimizer: Any = None,
    run: dict[str, Any] | None = None,
    run_arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``model`` (a :class:`~xpnet.Sequential`; and ``optimizer``'s state, if given) to ``path`` atomically.

    ``run``, ``run_arrays``: a training run's state (JSON-able, host arrays) stored beside the model: a
    run checkpoint, see :mod:`xpnet.checkpoint`; :func:`xpnet.load` reads the model out of such a file too."""
    path = atomic.check_writable(path)  # before the arrays are gathered: a bad path costs nothing
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "layers": layer_specs(model),
        "loss": loss_config(model.loss_layer),
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
    arrays = to_host(arrays, meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic.atomic_write(path) as f:
        np.savez(f, **cast(dict[str, Any], arrays))  # (the stubs read a key as allow_pickle)


def to_host(arrays: dict[str, Any], meta: dict[str, Any]) -> dict[str, np.ndarray]:
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


def from_bits(path: pathlib.Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, str]:
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


def on_backend(backend: Backend, a: np.ndarray, kind: str | None) -> Any:
    """A host array onto ``backend``, as bfloat16 where it was saved so and the backend has it."""
    if kind is not None:
        try:
            return backend.from_host(a, dtype=backend.dtype(kind))
        except TypeError:  # no bfloat16 here: float32 holds its values exactly
            pass
    return backend.from_host(a)


def read(path: pathlib.Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
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
                    raise ValueError(
                        f"{path}: not an xpnet checkpoint (entry {k!r} holds pickled Python objects)"
                    ) from None
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

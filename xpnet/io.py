"""Loading models: rebuilding a :class:`~xpnet.Sequential` (and its optimizer) from a file on any backend.

The file format itself (writing, reading, bfloat16 bits) is :mod:`xpnet.fileformat`, below the model:
``model.save(path)`` and :func:`save` write through it; :func:`load` and :func:`load_checkpoint` read it
back here, above the model (train on CuPy, load on NumPy), and refuse truncated, corrupt or mismatched
files with a ``ValueError`` naming the file.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from . import optimizers
from .backend import Backend, host_rng, resolve_backend, use_backend
from .fileformat import from_bits, make_loss, on_backend, read, save
from .layers import LAYERS
from .model import Sequential

__all__ = ["load", "load_checkpoint", "save"]


def _assign(
    path: pathlib.Path,
    what: str,
    current: dict[str, Any],
    saved: dict[str, np.ndarray],
    backend: Backend,
    kinds: dict[str, str],
) -> dict[str, Any]:
    """Saved host arrays for ``current``'s keys, checked (keys, shapes, finite) and moved."""
    if set(saved) != set(current):
        raise ValueError(
            f"{path}: {what} mismatch with the architecture: missing {sorted(set(current) - set(saved))}, "
            f"unexpected {sorted(set(saved) - set(current))}"
        )
    out = {}
    for key, a in saved.items():
        if tuple(a.shape) != tuple(current[key].shape):
            raise ValueError(
                f"{path}: {what} {key!r} has shape {a.shape}, the architecture needs {tuple(current[key].shape)}"
            )
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: {what} {key!r} is not finite floating data (dtype {a.dtype})")
        out[key] = on_backend(backend, a, kinds.get(key))
    return out


def load_checkpoint(path: str | os.PathLike, backend: str | Backend | None = None, device: Any = None):
    """``(model, optimizer or None)`` from a file written by :func:`save`, on ``backend`` (default: active)."""
    path = pathlib.Path(path)
    meta, arrays = read(path)
    target = resolve_backend(backend, device)
    dtypes = from_bits(path, meta, arrays)
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
            model = Sequential(
                layers,
                loss=make_loss(meta["loss"]),
                input_shape=meta.get("input_shape"),
                input_grad=meta.get("input_grad", False),
            )
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
            state.setdefault(key, {})[slot] = on_backend(target, a, kinds["opt"].get(name))
        try:
            opt.load_state_dict({"t": meta["optimizer"]["t"], "state": state}, params)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
    return model, opt


def load(
    path: str | os.PathLike,
    backend: str | Backend | None = None,
    device: Any = None,
    optimizer: optimizers.Optimizer | None = None,
) -> Sequential:
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

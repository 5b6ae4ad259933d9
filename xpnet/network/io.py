"""Loading models: rebuilding a :class:`~xpnet.Sequential` (and its optimizer) from a file on any backend.

The file format itself (writing, reading, bfloat16 bits) is :mod:`xpnet.network.fileformat`, below the model:
``model.save(path)`` and :func:`save` write through it; :func:`load` and :func:`load_checkpoint` read it
back here, above the model (train on CuPy, load on NumPy), and refuse truncated, corrupt or mismatched
files with a ``ValueError`` naming the file.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ..backends import Backend, host_rng, resolve_backend, use_backend
from ..optim import optimizers
from .fileformat import Archive, CorruptFile, make_loss, on_backend, open_file, save
from .layers import LAYERS, Layer
from .layers.base import pending_arrays
from .model import Sequential

__all__ = ["load", "load_checkpoint", "save"]


ABSTRACT = ("Layer", "Activation")
"""Base classes a file may not name (nor any class whose name starts with ``_``, such as ``_Pool``)."""


def loadable_layers() -> dict[str, type[Layer]]:
    """The layer classes a file may name: xpnet's layers and the user's subclasses defined so far,
    without the abstract bases."""
    return {
        name: cls
        for name, cls in LAYERS.items()
        if name not in ABSTRACT and not name.startswith("_") and cls.forward is not Layer.forward
    }


def _build_layers(specs: Any) -> list[Layer]:
    """The layers a description declares, with :class:`~xpnet.network.layers.base.Pending` placeholders for
    their arrays (nothing allocated, nothing drawn from the RNG)."""
    if not isinstance(specs, list) or not specs:
        raise ValueError("'layers' must be a non-empty list")
    classes = loadable_layers()
    layers = []
    for i, spec in enumerate(specs):
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("class"), str)
            or not isinstance(spec.get("config", {}), dict)
        ):
            raise ValueError(f"layer {i} is not {{'class': name, 'config': {{...}}}}")
        name = spec["class"]
        cls = classes.get(name)
        if cls is None and name in LAYERS:
            raise ValueError(f"layer {i}: {name!r} is an abstract base class, not a layer")
        if cls is None:
            raise ValueError(
                f"layer {i}: unknown layer class {name!r:.60} (define your own layer classes before loading)"
            )
        with pending_arrays():
            layers.append(cls(**spec.get("config", {})))
    return layers


def _expected(layers: list[Layer]) -> dict[str, dict[str, Any]]:
    """``{"param": {"0.W": placeholder or array}, "buffer": {...}}`` of the built layers."""
    out: dict[str, dict[str, Any]] = {"param": {}, "buffer": {}}
    for i, layer in enumerate(layers):
        out["param"].update({f"{i}.{k}": v for k, v in layer.params.items()})
        out["buffer"].update({f"{i}.{k}": v for k, v in layer.buffers.items()})
    return out


def _check_entries(archive: Archive, expected: dict[str, dict[str, Any]], opt: optimizers.Optimizer | None) -> str:
    """Every entry the architecture needs, with its shape, and no other (``run/`` entries are
    :mod:`xpnet.training.checkpoint`'s); one floating dtype for all. Returns that dtype's name."""
    path = archive.path
    groups: dict[str, dict[str, str]] = {"param": {}, "buffer": {}, "opt": {}, "run": {}}
    for name in archive.entries:
        kind, _, key = name.partition("/")
        if kind not in groups:
            raise ValueError(f"{path}: unexpected entry {name!r}")
        groups[kind][key] = name
    want = dict(expected)
    if opt is not None:
        want["opt"] = {f"{k}/{s}": p for k, p in expected["param"].items() for s in opt.slots}
        if set(groups["opt"]) and set(groups["opt"]) != set(want["opt"]):
            missing = sorted(set(want["opt"]) - set(groups["opt"]))
            unexpected = sorted(set(groups["opt"]) - set(want["opt"]))
            raise ValueError(f"{path}: optimizer state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        want["opt"] = {k: v for k, v in want["opt"].items() if k in groups["opt"]}
    elif groups["opt"]:
        raise ValueError(f"{path}: optimizer state {sorted(groups['opt'])[:3]} without an optimizer description")
    what = {"param": "parameter", "buffer": "buffer", "opt": "optimizer state"}
    dtypes = set()
    for kind, current in want.items():
        saved = groups[kind]
        if set(saved) != set(current):
            raise ValueError(
                f"{path}: {what[kind]} mismatch with the architecture: missing {sorted(set(current) - set(saved))}, "
                f"unexpected {sorted(set(saved) - set(current))}"
            )
        for key, name in saved.items():
            shape, dtype = archive.shape(name), archive.dtype(name)
            needed = tuple(current[key].shape)
            if shape != needed:
                raise ValueError(f"{path}: {what[kind]} {key!r} has shape {shape}, the architecture needs {needed}")
            if dtype.kind != "f":
                raise ValueError(f"{path}: {what[kind]} {key!r} is {dtype}, not floating data")
            dtypes.add(archive.dtypes.get(name, dtype.name))
    if len(dtypes) > 1:
        raise ValueError(f"{path}: the arrays mix dtypes {sorted(dtypes)}; a model has one")
    return next(iter(dtypes), "")


def _host_array(archive: Archive, name: str, what: str, nonnegative: bool = False) -> np.ndarray:
    """An entry's array, checked finite (and >= 0 where asked) on the host."""
    a = archive.array(name)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{archive.path}: {what} {name.partition('/')[2]!r} is not finite (holds NaN or infinity)")
    if nonnegative and not np.all(a >= 0):
        raise ValueError(f"{archive.path}: {what} {name.partition('/')[2]!r} holds negative values")
    return a


def _describe(path: pathlib.Path, meta: dict[str, Any], target: Backend) -> tuple[list[Layer], Any, Any, bool, Any]:
    """Layers (placeholders), loss, input shape, input_grad and optimizer of a description; any fault
    in it is one ``ValueError`` naming the file."""
    rng_state = host_rng().bit_generator.state  # a user's layer might draw: keep the user's stream
    try:
        with use_backend(target):
            layers = _build_layers(meta.get("layers"))
            loss = make_loss(meta.get("loss"))
        shape = meta.get("input_shape")
        if shape is not None and (
            not isinstance(shape, list) or not all(type(s) is int and 0 < s < 2**31 for s in shape)
        ):
            raise ValueError(f"input_shape must be a list of positive integers, got {shape!r:.60}")
        input_grad = meta.get("input_grad", False)
        if not isinstance(input_grad, bool):
            raise ValueError(f"input_grad must be true or false, got {input_grad!r:.60}")
        opt = None
        if meta.get("optimizer") is not None:
            opt = optimizers.from_config(meta["optimizer"])
    except MemoryError:
        raise
    except Exception as e:  # a tampered or foreign description: TypeError, OverflowError, RecursionError, ...
        kind = "" if type(e) is ValueError else f"{type(e).__name__}: "
        raise CorruptFile(f"{path}: invalid architecture description: {kind}{e}") from e
    finally:
        host_rng().bit_generator.state = rng_state
    return layers, loss, shape, input_grad, opt


def load_checkpoint(path: str | os.PathLike, backend: str | Backend | None = None, device: Any = None):
    """``(model, optimizer or None)`` from a file written by :func:`save`, on ``backend`` (default: active).

    Checks first, allocates last: the description and every entry's shape and dtype are checked
    against each other before any array is read, and the layers get the saved arrays (no random
    initialisation). Any fault in the file is a ``ValueError`` naming it."""
    path = pathlib.Path(path)
    target = resolve_backend(backend, device)
    with open_file(path) as archive:
        layers, loss, shape, input_grad, opt = _describe(path, archive.meta, target)
        expected = _expected(layers)
        _check_entries(archive, expected, opt)
        for kind, what in (("param", "parameter"), ("buffer", "buffer")):
            for key in expected[kind]:
                name = f"{kind}/{key}"
                a = on_backend(target, _host_array(archive, name, what), archive.dtypes.get(name))
                i, attr = key.split(".", 1)
                setattr(layers[int(i)], attr, a)
        state: dict[str, dict[str, Any]] = {}
        if opt is not None:
            for name in archive.entries:
                if name.startswith("opt/"):
                    key, _, slot = name[4:].rpartition("/")
                    a = _host_array(archive, name, "optimizer state", slot in opt.nonnegative)
                    state.setdefault(key, {})[slot] = on_backend(target, a, archive.dtypes.get(name))
    with use_backend(target):
        model = Sequential(layers, loss=loss, input_shape=shape, input_grad=input_grad)
    if opt is not None:
        try:
            opt.load_state_dict({"t": opt.t, "state": state}, model.params)
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

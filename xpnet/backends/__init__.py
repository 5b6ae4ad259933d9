"""Backends: the only package that knows the names of array libraries.

One small adapter per library (``_numpy``, ``_cupy``, ``_torch``, ``_strict``), each a subclass of
:class:`Backend` owning what differs — device parsing, host↔device transfer, random draws,
synchronisation, the sync guard — as Chainer's ``chainer/backends/``. Everything above this package
receives ``xp`` and the device from a backend object and never imports NumPy, CuPy, PyTorch or
array-api-strict, nor asks which library it is on.

A backend switch (:func:`set_backend`) affects objects created afterwards; a model keeps the backend
it was built on until it is moved with ``model.to(name, device=...)``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._base import Backend, BackendUnavailableError, adapter_of
from ._cupy import CupyBackend
from ._numpy import NumpyBackend
from ._state import state as _settings
from ._strict import StrictBackend
from ._torch import TorchBackend

__all__ = [
    "ADAPTERS",
    "BACKEND_NAMES",
    "Backend",
    "BackendUnavailableError",
    "adapter_of",
    "asarray",
    "available_backends",
    "get_backend",
    "get_default_dtype",
    "host_rng",
    "namespace_of",
    "parse_spec",
    "resolve_backend",
    "seed",
    "set_backend",
    "set_default_dtype",
    "to_numpy",
    "use_backend",
]

ADAPTERS: dict[str, type[Backend]] = {cls.name: cls for cls in (NumpyBackend, CupyBackend, TorchBackend, StrictBackend)}
"""The adapter class of each library, by backend name."""

BACKEND_NAMES = tuple(ADAPTERS)
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


# -- loading ---------------------------------------------------------------------------------


def parse_spec(spec: str, device: Any = None) -> tuple[str, Any]:
    """``"name[:device]"`` (``"torch:meta"``, ``"torch:cuda:1"``, ``"cupy:1"``, ``"array_api_strict:device1"``)
    → ``(name, device)``; a device given both ways is a ``ValueError``."""
    name, sep, rest = str(spec).partition(":")
    if sep:
        if device is not None:
            raise ValueError(f"backend {spec!r} names a device and device={device!r} names another: give one")
        if not rest:
            raise ValueError(f"backend {spec!r}: empty device after ':' (use name or name:device)")
        device = rest
    return name, device


def _load(name: str, device: Any = None) -> Backend:
    name, device = parse_spec(name, device)
    cls = ADAPTERS.get(name)
    if cls is None:
        raise ValueError(f"unknown backend {name!r}; valid backends are: {', '.join(BACKEND_NAMES)}")
    backend = cls.load(device)
    seed_value = _settings["seed"]
    if seed_value is not None and name not in _settings["seeded"]:  # xpnet.seed(n) before the import
        cls.seed_library(seed_value)
        _settings["seeded"].add(name)
    return backend


def _probe(name: str) -> bool:
    try:
        _load(name)
    except ImportError:
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends usable here (cupy only where a CUDA device answers)."""
    return [n for n in BACKEND_NAMES if _probe(n)]


# -- the active backend ----------------------------------------------------------------------


def get_backend() -> Backend:
    """The active backend (``XPNET_BACKEND`` = ``name[:device]``, or numpy, at start-up)."""
    if _settings["backend"] is None:
        backend = _load(os.environ.get("XPNET_BACKEND", "numpy") or "numpy")
        backend.activate()
        _settings["backend"] = backend
    return _settings["backend"]


def set_backend(name: str | Backend, device: Any = None) -> Backend:
    """Make ``name`` (on ``device``) the active backend for objects created from now on.

    ``device``: strict ``"CPU_DEVICE"``, ``"device1"``, ``"device2"``; torch ``"cpu"``, ``"meta"``,
    ``"cuda"``, ``"cuda:N"``; a CUDA ordinal for cupy; ``name`` may also be ``"name:device"``.
    Unknown name or device → ``ValueError`` (listing the valid ones); known but unusable →
    :class:`BackendUnavailableError` (an ``ImportError``). On any error the previous backend stays active.
    """
    backend = resolve_backend(name, device)
    backend.activate()
    _settings["backend"] = backend
    return backend


def resolve_backend(name: str | Backend | None, device: Any = None) -> Backend:
    """A backend object from a name (``None``: the active one), without activating it."""
    if name is None:
        return get_backend() if device is None else _load(get_backend().name, device)
    if isinstance(name, Backend):
        return name if device is None else _load(name.name, device)
    return _load(name, device)


@contextlib.contextmanager
def use_backend(name: str | Backend, device: Any = None) -> Iterator[Backend]:
    """Context manager: a backend active inside the block; on exit the previous one (and, for CuPy,
    the previous current device) is restored — no global side effect survives the block."""
    backend = resolve_backend(name, device)
    previous = _settings["backend"]
    _settings["backend"] = backend
    try:
        with backend.activated():
            yield backend
    finally:
        _settings["backend"] = previous


def set_default_dtype(name: str) -> None:
    """Floating dtype of new parameters and of floating input: ``"float32"`` (default) or ``"float64"``
    (``"float16"``/``"bfloat16"`` where the backend supports them)."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {', '.join(FLOAT_DTYPES)}")
    _settings["dtype"] = name


def get_default_dtype() -> str:
    return _settings["dtype"]


# -- randomness ------------------------------------------------------------------------------


def seed(n: int) -> None:
    """Seed the host RNG (initial weights, shuffling, host-side dropout masks) and the device RNGs
    (CuPy, PyTorch) — of libraries imported already and, when their backend loads, of those imported later."""
    _settings["rng"] = np.random.default_rng(n)
    _settings["seed"] = n
    _settings["seeded"] = set()
    for name, cls in ADAPTERS.items():
        if cls.module in sys.modules and sys.modules[cls.module] is not None:
            cls.seed_library(n)
            _settings["seeded"].add(name)


def host_rng() -> np.random.Generator:
    """The host ``numpy.random.Generator`` seeded by :func:`seed`."""
    return _settings["rng"]


# -- arrays at the boundary ------------------------------------------------------------------


def namespace_of(x: Any) -> Any:
    """The array-API namespace of an array, as its backend hands it out."""
    backend = adapter_of(x)
    if backend is None:
        raise TypeError(f"{type(x).__name__} is not an array of a known backend ({', '.join(BACKEND_NAMES)})")
    return backend.xp


def to_numpy(x: Any) -> np.ndarray:
    """Copy any backend's array to a host NumPy array (a no-op for NumPy input): an explicit transfer.

    A bfloat16 array (torch) comes back as float32, which holds every bfloat16 value exactly: NumPy
    has no bfloat16."""
    if isinstance(x, np.ndarray):
        return x
    backend = adapter_of(x)
    return np.asarray(x) if backend is None else backend.to_host(x)


def asarray(x: Any, dtype: Any = None, device: Any = None) -> Any:
    """Convert ``x`` onto the active backend — on ``device`` if given, else the backend's device.

    Floating input takes the default float dtype; integer and bool input keep theirs.
    """
    return resolve_backend(None, device).asarray(x, dtype)

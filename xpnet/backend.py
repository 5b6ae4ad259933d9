"""Backends: the only module that knows the names of array libraries.

Everything above this module receives an array-API namespace ``xp`` (from
array-api-compat) and never imports NumPy, CuPy, PyTorch or array-api-strict.

A backend switch (:func:`set_backend`) affects objects created afterwards; a model
keeps the backend it was built on until it is moved with ``model.to(name)``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "BACKEND_NAMES",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "set_default_dtype",
    "get_default_dtype",
    "seed",
    "host_rng",
    "asarray",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "torch", "array_api_strict")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

_INSTALL_HINTS = {
    "cupy": 'pip install "xpnet[cuda12]"  (CUDA 12.x)  or  pip install "xpnet[cuda13]"  (CUDA 13.x)',
    "torch": 'pip install "xpnet[torch]"',
    "array_api_strict": 'pip install "xpnet[test]"  (or: pip install array-api-strict)',
}


class BackendUnavailableError(ImportError):
    """A known backend cannot be used here (library missing or no device)."""


@dataclass(frozen=True, eq=False)
class Backend:
    """One array library on one device.

    Attributes:
        name: ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"array_api_strict"``.
        xp: the array-API namespace (array-api-compat wrapper or the strict module).
        device: the device arrays are created on (backend specific object).
    """

    name: str
    xp: Any
    device: Any
    _lib: Any = field(repr=False)
    _array_type: type = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Backend) and other.name == self.name and str(other.device) == str(self.device)
        )

    def __hash__(self) -> int:
        return hash((self.name, str(self.device)))

    # -- dtypes ---------------------------------------------------------------
    def dtype(self, name: str | None = None) -> Any:
        """The namespace's dtype object for a name (default: the default float dtype)."""
        name = name or get_default_dtype()
        if name == "bfloat16":
            if self.name != "torch":
                raise TypeError(f"bfloat16 is not supported by the {self.name} backend (use torch)")
            return self._lib.bfloat16
        if not hasattr(self.xp, name):
            raise TypeError(f"{name} is not supported by the {self.name} backend")
        return getattr(self.xp, name)

    def is_float(self, x: Any) -> bool:
        return self.xp.isdtype(x.dtype, "real floating")

    # -- moving data ----------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """True when ``x`` is an array of this backend (on its device)."""
        if not isinstance(x, self._array_type):
            return False
        return self.name not in ("cupy", "torch") or _same_device(x.device, self.device)

    def from_host(self, a: np.ndarray, dtype: Any = None) -> Any:
        """Copy a NumPy array onto this backend's device (the one way in for host data)."""
        device = self.device.id if self.name == "cupy" else self.device  # compat's CuPy asarray takes an ordinal
        return self.xp.asarray(a, dtype=dtype, device=device)

    def asarray(self, x: Any, dtype: Any = None, *, strict: bool = False) -> Any:
        """Any array-like onto this backend; floating input takes the default float dtype.

        ``dtype`` may be a name (``"float32"``) or a dtype of this namespace.
        With ``strict=True`` (model inputs), only conversions that are cheap and safe are made
        (host data and CPU arrays); an array living on another device raises ``TypeError``.
        """
        if isinstance(dtype, str):
            dtype = self.dtype(dtype)
        if not self.owns(x):
            if strict and _is_device_array(x):
                raise TypeError(
                    f"got a {_library_of(x)} array on device {x.device!r}, but this model lives on the "
                    f"{self.name} backend ({self.device}); move the data explicitly with "
                    f"xpnet.asarray(x) (after xpnet.set_backend({self.name!r})) or move the model "
                    f"with model.to(...)"
                )
            x = self._foreign_to_here(x)
        if dtype is None and self.is_float(x):
            dtype = self.dtype()
        if dtype is not None and x.dtype != dtype:
            x = self.xp.astype(x, dtype)
        return x

    def _foreign_to_here(self, x: Any) -> Any:
        if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
            return self.from_host(np.asarray(x))
        if hasattr(x, "__dlpack__") and self.name in ("cupy", "torch"):
            with contextlib.suppress(Exception):
                return self.xp.from_dlpack(x)
        return self.from_host(to_numpy(x))

    def move(self, x: Any) -> Any:
        """An array of any backend onto this one, keeping its dtype (DLPack where possible)."""
        return x if self.owns(x) else self._foreign_to_here(x)

    # -- randomness and synchronisation ---------------------------------------
    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Uniform [0, 1) samples drawn on the device (host RNG for CPU libraries)."""
        if self.name == "cupy":
            return self._lib.random.random(shape, dtype=np.float32).astype(dtype, copy=False)
        if self.name == "torch":
            return self._lib.rand(shape, dtype=dtype, device=self.device)
        return self.from_host(host_rng().random(shape, dtype=np.float32), dtype=dtype)

    def rng_state(self) -> dict[str, Any]:
        """Every random state this backend draws from, as host data (for run checkpoints): the host
        Generator's state and, for torch, its generator's bytes (CuPy's cuRAND state cannot be read)."""
        state: dict[str, Any] = {"host": host_rng().bit_generator.state}
        if self.name == "torch":
            cuda = self.device.type == "cuda"
            state["torch"] = (self._lib.cuda.get_rng_state(self.device) if cuda else self._lib.get_rng_state()).numpy()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rng_state` (a state of another library is ignored)."""
        host_rng().bit_generator.state = state["host"]
        if self.name == "torch" and "torch" in state:
            saved = self._lib.from_numpy(np.array(state["torch"], dtype=np.uint8))
            if self.device.type == "cuda":
                self._lib.cuda.set_rng_state(saved, self.device)
            else:
                self._lib.set_rng_state(saved)

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (no-op on CPU libraries)."""
        if self.name == "cupy":
            self._lib.cuda.Device(self.device.id).synchronize()
        elif self.name == "torch" and self.device.type == "cuda":
            self._lib.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        """Inside, a host–device synchronisation raises (CuPy: ``cupyx.allow_synchronize(False)``;
        CUDA torch: ``torch.cuda.set_sync_debug_mode("error")``). A no-op on CPU backends, where
        there is nothing to synchronise. Used to prove the training step never waits for the GPU."""
        if self.name == "cupy":
            import cupyx

            with cupyx.allow_synchronize(False):
                yield
        elif self.name == "torch" and self.device.type == "cuda":
            previous = self._lib.cuda.get_sync_debug_mode()
            self._lib.cuda.set_sync_debug_mode("error")
            try:
                yield
            finally:
                self._lib.cuda.set_sync_debug_mode(previous)
        else:
            yield

    def activate(self) -> None:
        """Make this backend's device the current one where the library has such a global (CuPy:
        its creation functions follow the current device, not a ``device=`` argument)."""
        if self.name == "cupy":
            self.device.use()

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy" or (self.name == "torch" and self.device.type == "cuda")

    def __str__(self) -> str:
        return f"{self.name} ({self.device})"


def _same_device(a: Any, b: Any) -> bool:
    """Devices compared by their text (torch) or CUDA ordinal (CuPy)."""
    if str(a) == str(b):
        return True
    ids = getattr(a, "id", None), getattr(b, "id", None)
    return ids[0] is not None and ids[0] == ids[1]


def _library_of(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _is_device_array(x: Any) -> bool:
    """True for arrays living on an accelerator (CuPy arrays, CUDA torch tensors)."""
    lib = _library_of(x)
    if lib == "cupy":
        return True
    if lib == "torch":
        return getattr(x, "device", None) is not None and x.device.type != "cpu"
    return False


def to_numpy(x: Any) -> np.ndarray:
    """Copy any backend's array to a host NumPy array (a no-op for NumPy input).

    A bfloat16 array (torch) comes back as float32, which holds every bfloat16 value exactly: NumPy
    has no bfloat16."""
    if isinstance(x, np.ndarray):
        return x
    lib = _library_of(x)
    if lib == "cupy":
        return x.get()
    if lib == "torch":
        x = x.detach().cpu()
        return (x.float() if x.dtype == sys.modules["torch"].bfloat16 else x).numpy()
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


# -- loading -------------------------------------------------------------------


def _import(module: str, backend: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailableError(
            f"backend {backend!r} needs the Python package {module!r}, which is not installed "
            f"({e}). Install it with: {_INSTALL_HINTS[backend]}"
        ) from e


def _load(name: str, device: Any = None) -> Backend:
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; valid backends are: {', '.join(BACKEND_NAMES)}")
    if name == "numpy":
        import array_api_compat.numpy as xp

        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on 'cpu' only, not {device!r}")
        return Backend("numpy", xp, "cpu", np, np.ndarray)
    if name == "cupy":
        cupy = _import("cupy", "cupy")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA driver missing or broken
            raise BackendUnavailableError(
                f"backend 'cupy': CuPy is installed but no CUDA device answers ({e}). "
                f"A CUDA GPU with its driver is needed; the CuPy package must match the CUDA version: "
                f"{_INSTALL_HINTS['cupy']}"
            ) from e
        if count == 0:
            raise BackendUnavailableError(
                "backend 'cupy': CuPy is installed but no CUDA device was found. "
                f"A CUDA GPU is needed; install the CuPy that matches its CUDA: {_INSTALL_HINTS['cupy']}"
            )
        index = 0 if device is None else int(getattr(device, "id", device))
        if not 0 <= index < count:
            raise ValueError(f"CUDA device {index} does not exist (this machine has {count})")
        import array_api_compat.cupy as xp

        dev = cupy.cuda.Device(index)
        dev.use()
        return Backend("cupy", xp, dev, cupy, cupy.ndarray)
    if name == "torch":
        torch = _import("torch", "torch")
        import array_api_compat.torch as xp

        dev = torch.device(device if device is not None else "cpu")
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError(
                    "backend 'torch' on a CUDA device: this PyTorch build has no CUDA or no GPU answers. "
                    "Install a CUDA build of PyTorch (see pytorch.org) on a machine with a GPU."
                )
            if dev.index is None:
                dev = torch.device("cuda", torch.cuda.current_device())
        return Backend("torch", xp, dev, torch, torch.Tensor)
    strict = _import("array_api_strict", "array_api_strict")
    return Backend("array_api_strict", strict, strict.Device("CPU_DEVICE"), strict, type(strict.asarray(0)))


def _probe(name: str) -> bool:
    try:
        _load(name)
    except ImportError:
        return False
    return True


# -- global state ----------------------------------------------------------------

_state: dict[str, Any] = {"backend": None, "dtype": "float32", "rng": np.random.default_rng()}


def available_backends() -> list[str]:
    """Names of the backends usable here (cupy only where a CUDA device answers)."""
    return [n for n in BACKEND_NAMES if _probe(n)]


def get_backend() -> Backend:
    """The active backend (``XPNET_BACKEND`` or numpy at start-up)."""
    if _state["backend"] is None:
        _state["backend"] = _load(os.environ.get("XPNET_BACKEND", "numpy") or "numpy")
    return _state["backend"]


def set_backend(name: str | Backend, device: Any = None) -> Backend:
    """Make ``name`` the active backend for objects created from now on.

    ``device``: a CUDA device index for cupy, a ``torch.device``/string for torch.
    Unknown name → ``ValueError``; known but unusable → :class:`BackendUnavailableError`
    (an ``ImportError``), and the previous backend stays active.
    """
    backend = name if isinstance(name, Backend) else _load(name, device)
    backend.activate()
    _state["backend"] = backend
    return backend


def resolve_backend(name: str | Backend | None, device: Any = None) -> Backend:
    """A backend object from a name (``None`` = the active one), without activating it."""
    if name is None:
        return get_backend()
    return name if isinstance(name, Backend) else _load(name, device)


@contextlib.contextmanager
def use_backend(name: str | Backend, device: Any = None) -> Iterator[Backend]:
    """Context manager: activate a backend, restore the previous one on exit."""
    previous = _state["backend"]
    try:
        yield set_backend(name, device)
    finally:
        _state["backend"] = previous
        if previous is not None:
            previous.activate()


def set_default_dtype(name: str) -> None:
    """Floating dtype of new parameters and of floating input: ``"float32"`` (default) or ``"float64"``
    (``"float16"``/``"bfloat16"`` where the backend supports them)."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {', '.join(FLOAT_DTYPES)}")
    _state["dtype"] = name


def get_default_dtype() -> str:
    return _state["dtype"]


def seed(n: int) -> None:
    """Seed the host RNG (initial weights, shuffling) and the device RNGs (dropout masks)."""
    _state["rng"] = np.random.default_rng(n)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(n)
    if "cupy" in sys.modules:
        with contextlib.suppress(Exception):
            sys.modules["cupy"].random.seed(n)


def host_rng() -> np.random.Generator:
    """The host ``numpy.random.Generator`` seeded by :func:`seed`."""
    return _state["rng"]


def asarray(x: Any, dtype: Any = None) -> Any:
    """Convert ``x`` onto the active backend and device.

    Floating input takes the default float dtype; integer and bool input keep theirs.
    """
    return get_backend().asarray(x, dtype)

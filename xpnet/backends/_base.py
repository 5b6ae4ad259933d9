"""The adapter protocol: what every array library must provide, and the shared mechanics.

A :class:`Backend` is one array library on one device. Subclasses (one small module per library)
own what differs: device parsing and validation, host↔device transfer, random draws,
synchronisation and the sync guard. Everything above this package uses only this interface.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from . import _state

if TYPE_CHECKING:
    from ._kernels import NativeKernels


class BackendUnavailableError(ImportError):
    """A known backend cannot be used here (library missing or no device)."""


_LIBRARY_OF_MODULE = {"numpy": "numpy", "cupy": "cupy", "torch": "torch", "array_api_strict": "array_api_strict"}


def adapter_of(x: Any) -> Backend | None:
    """The backend (library and device) an array lives on; ``None`` for host data that is not an
    array of a known library (lists, scalars)."""
    name = _LIBRARY_OF_MODULE.get(type(x).__module__.split(".")[0])
    adapters = {cls.name: cls for cls in Backend.__subclasses__()}  # the adapter modules define them
    if name is None or (name == "numpy" and not isinstance(x, np.ndarray)) or name not in adapters:
        return None
    cls = adapters[name]
    return cls.load() if name == "numpy" else cls.load(x.device)


class Backend:
    """One array library on one device.

    Attributes:
        name: ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"array_api_strict"``.
        xp: the array-API namespace (array-api-compat wrapper or the strict module).
        device: the device arrays are created on (the library's own device object; ``"cpu"`` for NumPy).
    """

    name: ClassVar[str] = ""
    module: ClassVar[str] = ""  # the Python package of the library
    install_hint: ClassVar[str] = ""
    device_forms: ClassVar[str] = ""  # the valid ``device=`` values, for error messages
    checker: ClassVar[bool] = False  # a conformance checker (slow), not a fast path
    numpy_allocator: ClassVar[bool] = False  # arrays allocated by NumPy (visible to tracemalloc)
    low_precision: ClassVar[tuple[str, ...]] = ("float16",)  # floating dtypes below float32 it has
    #: The kernels :meth:`native_kernels` may offer (``"conv2d"``, ``"max_pool"``, ``"relu"``), known without
    #: loading them: a layer whose operation is not listed never triggers their import.
    native_ops: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, xp: Any, device: Any, lib: Any, array_type: type) -> None:
        self.xp, self.device, self._lib, self._array_type = xp, device, lib, array_type

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def import_library(cls) -> Any:
        """The library's module, or :class:`BackendUnavailableError` with the install hint."""
        try:
            return importlib.import_module(cls.module)
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend {cls.name!r} needs the Python package {cls.module!r}, which is not installed "
                f"({e}). Install it with: {cls.install_hint}"
            ) from e

    @classmethod
    def load(cls, device: Any = None) -> Backend:
        """A backend object for ``device`` (``None``: the library's default); no global state changes."""
        raise NotImplementedError

    @classmethod
    def bad_device(cls, device: Any, why: str = "") -> ValueError:
        reason = f" ({why})" if why else ""
        return ValueError(
            f"unknown device {device!r} for backend {cls.name!r}{reason}; valid devices: {cls.device_forms}"
        )

    @classmethod
    def seed_library(cls, n: int) -> None:
        """Seed the library's own RNG (device draws), if it has one; called when it is imported."""

    # -- identity ------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and other.name == self.name and str(other.device) == str(self.device)

    def __hash__(self) -> int:
        return hash((self.name, str(self.device)))

    def __str__(self) -> str:
        return f"{self.name} ({self.device})"

    def __repr__(self) -> str:
        return f"<Backend {self.name} on {self.device!s}>"

    # -- what kind of device -------------------------------------------------------------
    @property
    def is_gpu(self) -> bool:
        """True on a CUDA device (where a host read synchronises with the GPU)."""
        return False

    @property
    def host_memory(self) -> bool:
        """True when arrays live in host memory: reading a value back costs no device synchronisation."""
        return True

    @property
    def has_data(self) -> bool:
        """False on devices whose arrays hold no values (PyTorch's ``meta``): shapes and dtypes only."""
        return True

    @property
    def exports_buffers(self) -> bool:
        """True when arrays can be handed as they are to C libraries such as MPI (buffer protocol,
        DLPack or the CUDA array interface); False for the strict checker and for data-less devices."""
        return self.has_data

    def device_of(self, x: Any) -> Any:
        """The device an array of this library lives on."""
        return x.device

    def same_device(self, device: Any) -> bool:
        return str(device) == str(self.device)

    # -- dtypes --------------------------------------------------------------------------
    def supports_dtype(self, name: str) -> bool:
        return name in ("float32", "float64") or name in self.low_precision

    def dtype(self, name: str | None = None) -> Any:
        """The namespace's dtype object for a name (default: the default float dtype)."""
        name = name or _state.state["dtype"]
        if name in ("float16", "bfloat16") and name not in self.low_precision:
            hint = " (use torch)" if name == "bfloat16" else ""
            raise TypeError(f"{name} is not supported by the {self.name} backend{hint}")
        if not hasattr(self.xp, name):
            raise TypeError(f"{name} is not supported by the {self.name} backend")
        return getattr(self.xp, name)

    def is_float(self, x: Any) -> bool:
        return self.xp.isdtype(x.dtype, "real floating")

    # -- moving data ---------------------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """True when ``x`` is an array of this backend on its device."""
        return isinstance(x, self._array_type) and self.same_device(self.device_of(x))

    def from_host(self, a: np.ndarray, dtype: Any = None) -> Any:
        """Copy a NumPy array onto this backend's device (the one way in for host data)."""
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    def to_host(self, x: Any) -> np.ndarray:
        """An array of this library (any of its devices) as a host NumPy array: an explicit transfer."""
        return np.asarray(x)

    def move_within(self, x: Any) -> Any:
        """An array of this library on another of its devices, onto this backend's device."""
        return self.from_host(self.to_host(x))

    def asarray(self, x: Any, dtype: Any = None, *, strict: bool = False) -> Any:
        """Any array-like onto this backend; floating input takes the default float dtype.

        ``dtype`` may be a name (``"float32"``) or a dtype of this namespace.
        With ``strict=True`` (model inputs), only conversions that are cheap and safe are made
        (host data and arrays in host memory); an array living on another device raises ``TypeError``.
        """
        if isinstance(dtype, str):
            dtype = self.dtype(dtype)
        if not self.owns(x):
            if strict:
                other = adapter_of(x)
                if other is not None and not other.host_memory:
                    raise TypeError(
                        f"got a {other.name} array on device {other.device!s}, but this model lives on "
                        f"the {self.name} backend ({self.device}); move the data explicitly with "
                        f"xpnet.asarray(x) (after xpnet.set_backend({self.name!r})) or move the model "
                        f"with model.to(...)"
                    )
            x = self.move(x)
        if dtype is None and self.is_float(x):
            dtype = self.dtype()
        if dtype is not None and x.dtype != dtype:
            x = self.xp.astype(x, dtype)
        return x

    def move(self, x: Any) -> Any:
        """An array of any backend (or host data) onto this one, keeping its dtype.

        Same library: the library's own device copy; CuPy ↔ CUDA torch: DLPack; otherwise via the host."""
        if self.owns(x):
            return x
        if isinstance(x, self._array_type):
            return self.move_within(x)
        other = adapter_of(x)
        if other is None:  # host data: NumPy arrays, scalars, lists
            return self.from_host(np.asarray(x))
        if other.is_gpu and self.is_gpu:
            with contextlib.suppress(Exception):
                y = self.xp.from_dlpack(x)
                if self.owns(y):
                    return y
        return self.from_host(other.to_host(x))

    # -- randomness, synchronisation, memory ---------------------------------------------
    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Uniform [0, 1) samples on the device (drawn on the host RNG for host-side libraries)."""
        return self.from_host(_state.state["rng"].random(shape, dtype=np.float32), dtype=dtype)

    def rng_state(self) -> dict[str, Any]:
        """Every random state this backend draws from, as host data (for run checkpoints): the host
        Generator's state, plus what the library keeps (torch's generator bytes; CuPy's cuRAND state
        cannot be read)."""
        return {"host": _state.state["rng"].bit_generator.state}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rng_state` (a state of another library is ignored)."""
        _state.state["rng"].bit_generator.state = state["host"]

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (no-op where work is not queued)."""

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        """Inside, a host–device synchronisation raises where the library can tell (CuPy, CUDA torch);
        elsewhere a no-op. Used to prove the training step never waits for the GPU."""
        yield

    def activate(self) -> None:
        """Make this backend's device the library's current one, where it has such a global (CuPy)."""

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """``activate`` for the duration of a block, restoring the library's previous current device."""
        yield

    def free_memory(self) -> None:
        """Return cached device memory to the driver (CuPy's pool, torch's caching allocator)."""

    def device_memory_free(self) -> int | None:
        """Bytes arrays may still take on a device outside host memory (the driver's free memory plus what
        the library's cache holds unused); ``None`` for host memory (see :mod:`xpnet.experiments.memory`) or unknown."""
        return None

    def native_kernels(self) -> NativeKernels | None:
        """The library's own convolution and max-pooling kernels (:mod:`xpnet.backends.kernels` decides whether the
        layers use them), or None: the layers run the array-API reference (im2col, window-position pooling)."""
        return None

    def peer_torch_device(self) -> str | None:
        """The PyTorch device holding the same memory as this backend's device (the benchmark peer),
        or ``None`` where PyTorch cannot run there."""
        return "cpu"

"""CuPy: CUDA devices by ordinal (``0``, ``1``, ... or a ``cupy.cuda.Device``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._base import Backend, BackendUnavailableError

CUPY_KERNELS_ENV = "XPNET_CUPY_KERNELS"
_KERNELS: list[Any] = []  # one instance, compiled on first use


class CupyBackend(Backend):
    name = "cupy"
    module = "cupy"
    native_ops = frozenset({"conv2d", "max_pool"})
    install_hint = 'pip install "xpnet[cuda12]"  (CUDA 12.x)  or  pip install "xpnet[cuda13]"  (CUDA 13.x)'
    device_forms = "a CUDA device ordinal 0, 1, ... (int or digits), 'cuda:N', or a cupy.cuda.Device (default 0)"

    @classmethod
    def _ordinal(cls, device: Any) -> int | None:
        """The ordinal a device form names, None for a cupy.cuda.Device (checked after import)."""
        if device is None:
            return 0
        if isinstance(device, bool):
            raise cls.bad_device(device)
        if isinstance(device, int):
            index = device
        elif isinstance(device, str):
            text = device.removeprefix("cuda:")
            if not text.isdigit():
                raise cls.bad_device(device)
            index = int(text)
        else:
            return None
        if index < 0:
            raise cls.bad_device(device)
        return index

    @classmethod
    def load(cls, device: Any = None) -> Backend:
        index = cls._ordinal(device)
        cupy = cls.import_library()
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA driver missing or broken
            raise BackendUnavailableError(
                f"backend 'cupy': CuPy is installed but no CUDA device answers ({e}). "
                f"A CUDA GPU with its driver is needed; the CuPy package must match the CUDA version: "
                f"{cls.install_hint}"
            ) from e
        if count == 0:
            raise BackendUnavailableError(
                "backend 'cupy': CuPy is installed but no CUDA device was found. "
                f"A CUDA GPU is needed; install the CuPy that matches its CUDA: {cls.install_hint}"
            )
        if index is None:
            if not isinstance(device, cupy.cuda.Device):
                raise cls.bad_device(device)
            index = device.id
        if not 0 <= index < count:
            raise ValueError(f"CUDA device {index} does not exist (this machine has {count})")
        import array_api_compat.cupy as xp

        return cls(xp, cupy.cuda.Device(index), cupy, cupy.ndarray)

    @classmethod
    def seed_library(cls, n: int) -> None:
        with contextlib.suppress(Exception):  # no device: nothing to seed
            import cupy

            cupy.random.seed(n)

    @property
    def is_gpu(self) -> bool:
        return True

    @property
    def host_memory(self) -> bool:
        return False

    def same_device(self, device: Any) -> bool:
        return getattr(device, "id", None) == self.device.id

    def from_host(self, a: np.ndarray, dtype: Any = None) -> Any:
        with self.device:  # CuPy's creation functions follow the current device
            return self.xp.asarray(a, dtype=dtype, device=self.device.id)

    def to_host(self, x: Any) -> np.ndarray:
        return x.get()

    def move_within(self, x: Any) -> Any:
        with self.device:
            return self._lib.array(x, copy=True)  # peer copy onto this device

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self.device:
            return self._lib.random.random(shape, dtype=np.float32).astype(dtype, copy=False)

    def synchronize(self) -> None:
        self.device.synchronize()

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        """``cupyx.allow_synchronize(False)``: an implicit synchronisation raises."""
        import cupyx

        with cupyx.allow_synchronize(False):
            yield

    def activate(self) -> None:
        self.device.use()

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        with self.device:  # restores the previous current device on exit
            yield

    def free_memory(self) -> None:
        self._lib.get_default_memory_pool().free_all_blocks()

    def device_memory_free(self) -> int | None:
        with self.device:
            free, _total = self._lib.cuda.runtime.memGetInfo()
        return int(free + self._lib.get_default_memory_pool().free_bytes())

    def native_kernels(self) -> Any:
        """CuPy's native kernels (:mod:`xpnet.backends._cupy_kernels`) — UNVERIFIED, so off unless the
        environment variable ``XPNET_CUPY_KERNELS=1``: None (the array-API reference) by default."""
        if os.environ.get(CUPY_KERNELS_ENV, "0") != "1":
            return None
        if not _KERNELS:
            from ._cupy_kernels import CupyKernels

            _KERNELS.append(CupyKernels(self._lib))
        return _KERNELS[0]

    def peer_torch_device(self) -> str | None:
        try:
            import torch
        except ImportError:
            return None
        return f"cuda:{self.device.id}" if torch.cuda.is_available() else None

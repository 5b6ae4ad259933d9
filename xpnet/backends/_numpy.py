"""NumPy: the host, device ``"cpu"``."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import numpy as np

from ._base import Backend
from ._kernels import NativeKernels

log = logging.getLogger(__name__)

NUMBA_KERNELS_ENV = "XPNET_NUMBA_KERNELS"
"""``XPNET_NUMBA_KERNELS=1`` turns NumPy's compiled kernels on (where numba imports). Off by default: in the
2026-12-07 idle-machine run (docs/bench-2026-12-07-cpu/cnn_paths_numpy_torch_2thread_idle.json, 2 threads,
every thread pool loaded) they made SimpleConvNet's step 1.54-1.58x and DeepConvNet's 2.98-3.31x PyTorch
eager's, against the im2col reference's 1.02-1.13x and 2.75-2.91x: slower, so not the default."""


@functools.cache
def numba_kernels() -> NativeKernels | None:
    """The numba-compiled convolution and max pooling (one set per process), or ``None`` where numba
    cannot be imported. numba is imported on the first call, never by ``import xpnet``; nothing is
    compiled before a kernel runs."""
    try:
        from ._numba import NumbaKernels
    except ImportError as e:  # numba missing, or too old/new for this NumPy
        log.info("NumPy native kernels off (numba not importable: %s); the reference runs", e)
        return None
    return NumbaKernels()


class NumpyBackend(Backend):
    name = "numpy"
    module = "numpy"
    native_ops = frozenset({"conv2d", "max_pool"})
    install_hint = "pip install numpy"
    device_forms = "'cpu' (or None)"
    numpy_allocator = True

    @classmethod
    def load(cls, device: Any = None) -> Backend:
        if device not in (None, "cpu"):
            raise cls.bad_device(device, "NumPy arrays live in host memory only")
        import array_api_compat.numpy as xp

        return cls(xp, "cpu", np, np.ndarray)

    def device_of(self, x: Any) -> Any:
        return "cpu"  # NumPy 1.x arrays have no .device

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def native_kernels(self) -> NativeKernels | None:
        """numba's direct convolution and max pooling where numba is installed (``pip install numba`` or
        ``xpnet[fast]``) and ``XPNET_NUMBA_KERNELS=1`` (see :data:`NUMBA_KERNELS_ENV`: measured slower than the
        reference, so off by default); ``None`` otherwise: the array-API reference runs."""
        if os.environ.get(NUMBA_KERNELS_ENV, "0") != "1":
            return None
        return numba_kernels()

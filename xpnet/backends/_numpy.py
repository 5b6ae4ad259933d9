"""NumPy: the host, device ``"cpu"``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    module = "numpy"
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

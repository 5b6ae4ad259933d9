"""array-api-strict: the standard's reference checker, with two emulated non-CPU devices.

Arrays on ``Device("device1")``/``"device2"`` refuse to mix with arrays on another device and refuse
implicit conversion to NumPy — as CuPy arrays do — so the suite run there proves that nothing above
the backend mixes devices or reads device data implicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Backend

DEVICES = ("CPU_DEVICE", "device1", "device2")


class StrictBackend(Backend):
    name = "array_api_strict"
    module = "array_api_strict"
    install_hint = 'pip install "xpnet[test]"  (or: pip install array-api-strict)'
    device_forms = ", ".join(repr(d) for d in DEVICES) + " (or None, or an array_api_strict.Device)"
    checker = True
    numpy_allocator = True  # strict wraps NumPy arrays
    low_precision = ()  # the standard defines float32/float64 only

    @classmethod
    def load(cls, device: Any = None) -> Backend:
        if device is None or isinstance(device, str):
            if device is not None and device not in DEVICES:
                raise cls.bad_device(device)
            strict = cls.import_library()
            dev = strict.Device(device or "CPU_DEVICE")
        else:
            strict = cls.import_library()
            if not isinstance(device, strict.Device):
                raise cls.bad_device(device)
            dev = device
        return cls(strict, dev, strict, type(strict.asarray(0)))

    @property
    def host_memory(self) -> bool:
        return str(self.device) == str(self._lib.Device("CPU_DEVICE"))

    @property
    def exports_buffers(self) -> bool:
        return False  # a checker: its arrays are not handed to C libraries

    def to_host(self, x: Any) -> np.ndarray:
        cpu = self._lib.Device("CPU_DEVICE")
        if str(x.device) != str(cpu):
            x = x.to_device(cpu)  # the explicit transfer that np.asarray refuses to make
        return np.from_dlpack(x)

    def move_within(self, x: Any) -> Any:
        return x.to_device(self.device)

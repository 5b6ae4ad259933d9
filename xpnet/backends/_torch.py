"""PyTorch: devices ``"cpu"``, ``"meta"`` (shapes without data), ``"cuda"``, ``"cuda:N"``.

On ``meta`` every host read (``.item()``, ``float()``, ``bool()``, ``__array__``) raises: a training
step that completes there made no host–device synchronisation.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _state
from ._aten import AtenKernels
from ._base import Backend, BackendUnavailableError

_ATEN: list[AtenKernels] = []  # one stateless instance, made on first use

_FORM = re.compile(r"cpu|meta|cuda(:\d+)?")


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    native_ops = frozenset({"conv2d", "max_pool", "relu"})
    install_hint = 'pip install "xpnet[torch]"'
    device_forms = "'cpu' (default), 'meta', 'cuda', 'cuda:N' (or a torch.device)"
    low_precision = ("float16", "bfloat16")

    @classmethod
    def load(cls, device: Any = None) -> Backend:
        if isinstance(device, str) and not _FORM.fullmatch(device):
            raise cls.bad_device(device)
        if device is not None and not isinstance(device, str) and type(device).__module__.split(".")[0] != "torch":
            raise cls.bad_device(device)  # checked before the import: a bad form is a ValueError even without torch
        torch = cls.import_library()
        import array_api_compat.torch as xp

        if device is not None and not isinstance(device, (str, torch.device)):
            raise cls.bad_device(device)
        dev = torch.device(device if device is not None else "cpu")
        if dev.type not in ("cpu", "meta", "cuda"):
            raise cls.bad_device(device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError(
                    "backend 'torch' on a CUDA device: this PyTorch build has no CUDA or no GPU answers. "
                    "Install a CUDA build of PyTorch (see pytorch.org) on a machine with a GPU."
                )
            count = torch.cuda.device_count()
            index = dev.index if dev.index is not None else torch.cuda.current_device()
            if index >= count:
                raise ValueError(f"CUDA device {index} does not exist (this machine has {count})")
            dev = torch.device("cuda", index)
        return cls(xp, dev, torch, torch.Tensor)

    @classmethod
    def seed_library(cls, n: int) -> None:
        import torch

        torch.manual_seed(n)  # CPU and every CUDA device

    @property
    def is_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def host_memory(self) -> bool:
        return self.device.type == "cpu"

    @property
    def has_data(self) -> bool:
        return self.device.type != "meta"

    def same_device(self, device: Any) -> bool:
        return device == self.device

    def dtype(self, name: str | None = None) -> Any:
        name = name or _state.state["dtype"]
        return self._lib.bfloat16 if name == "bfloat16" else super().dtype(name)

    def to_host(self, x: Any) -> np.ndarray:
        if x.device.type == "meta":
            raise RuntimeError(
                "a torch tensor on the 'meta' device holds no data: there is nothing to copy to the host"
            )
        x = x.detach().cpu()  # bfloat16 comes back as float32, which holds every bfloat16 value exactly
        return (x.float() if x.dtype == self._lib.bfloat16 else x).numpy()

    def move_within(self, x: Any) -> Any:
        if x.device.type == "meta" and self.device.type != "meta":
            self.to_host(x)  # raises: a meta tensor has no values to move
        return x.to(self.device)

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._lib.rand(shape, dtype=dtype, device=self.device)

    def rng_state(self) -> dict[str, Any]:
        state = super().rng_state()
        lib = self._lib
        state["torch"] = (lib.cuda.get_rng_state(self.device) if self.is_gpu else lib.get_rng_state()).numpy()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        super().set_rng_state(state)
        if "torch" in state:
            saved = self._lib.from_numpy(np.array(state["torch"], dtype=np.uint8))
            if self.is_gpu:
                self._lib.cuda.set_rng_state(saved, self.device)
            else:
                self._lib.set_rng_state(saved)

    def synchronize(self) -> None:
        if self.is_gpu:
            self._lib.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def forbid_sync(self) -> Iterator[None]:
        """CUDA: ``torch.cuda.set_sync_debug_mode("error")``; on ``meta`` every host read raises anyway."""
        if not self.is_gpu:
            yield
            return
        previous = self._lib.cuda.get_sync_debug_mode()
        self._lib.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            self._lib.cuda.set_sync_debug_mode(previous)

    def free_memory(self) -> None:
        if self.is_gpu:
            self._lib.cuda.empty_cache()

    def device_memory_free(self) -> int | None:
        if not self.is_gpu:
            return None
        cuda = self._lib.cuda
        free, _total = cuda.mem_get_info(self.device)
        return int(free + cuda.memory_reserved(self.device) - cuda.memory_allocated(self.device))

    def native_kernels(self) -> AtenKernels:
        """ATen's convolution and max-pooling (:mod:`xpnet.backends._aten`), on every device."""
        if not _ATEN:
            _ATEN.append(AtenKernels(self._lib))
        return _ATEN[0]

    def peer_torch_device(self) -> str | None:
        return None if self.device.type == "meta" else str(self.device)

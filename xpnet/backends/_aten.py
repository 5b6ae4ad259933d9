"""PyTorch's native kernels: ATen's convolution and max-pooling (cuDNN/oneDNN where PyTorch uses them).

Called as ATen operators on the layer's own tensors under ``torch.no_grad()`` (no graph is recorded),
with no host read: they run on ``meta`` too. Max-pooling is delegated for ``pad == 0`` only: the
reference pads windows with zeros, ATen with −inf. ATen's ties go to the first maximum in row-major window
order (strict ``>``), as the reference's (``tests/test_conv.py`` checks it on tied windows).
"""

from __future__ import annotations

from typing import Any

from ._kernels import NativeKernels


class AtenKernels(NativeKernels):
    name = "aten"

    def __init__(self, torch: Any) -> None:
        self._torch, self._ops = torch, torch.ops.aten

    def conv2d(self, x: Any, w: Any, b: Any, stride: int, pad: int) -> Any:
        with self._torch.no_grad():
            return self._ops.convolution(x, w, b, [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1)

    def conv2d_backward(
        self, dy: Any, x: Any, w: Any, stride: int, pad: int, need_dx: bool
    ) -> tuple[Any | None, Any, Any]:
        with self._torch.no_grad():
            return tuple(
                self._ops.convolution_backward(
                    dy, x, w, [w.shape[0]], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, [need_dx, True, True]
                )
            )

    def max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> tuple[Any, Any]:
        with self._torch.no_grad():
            y, argmax = self._ops.max_pool2d_with_indices(x, list(size), [stride] * 2, [pad] * 2, [1, 1], False)
        return y, (x, argmax)

    def max_pool_backward(
        self, dy: Any, state: Any, x_shape: tuple[int, ...], size: tuple[int, int], stride: int, pad: int
    ) -> Any:
        x, argmax = state
        with self._torch.no_grad():
            return self._ops.max_pool2d_with_indices_backward(
                dy, x, list(size), [stride] * 2, [pad] * 2, [1, 1], False, argmax
            )

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        return bool(x.dtype == w.dtype)

    def supports_max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> bool:
        return pad == 0

"""PyTorch's native kernels: ATen's convolution, max-pooling and ReLU (cuDNN/oneDNN where PyTorch uses them).

Called as ATen operators on the layer's own tensors under ``torch.no_grad()`` (no graph is recorded),
with no host read: they run on ``meta`` too. Max-pooling is delegated for ``pad == 0`` only (the
reference pads windows with zeros, ATen with −inf), and not on the CPU (see :attr:`AtenKernels.max_pool_on_cpu`).
ATen's ties go to the first maximum in row-major window order (strict ``>``), as the reference's
(``tests/test_conv.py`` checks it on tied windows).
"""

from __future__ import annotations

from typing import Any

from ._kernels import NativeKernels


class AtenKernels(NativeKernels):
    name = "aten"
    #: Whether max-pooling is delegated on the CPU too. Off: ATen's CPU ``max_pool2d_with_indices`` computes
    #: an index per output scalar by scalar and is slower than the reference there (SimpleConvNet's 2×2 pool on
    #: 100×30×24×24 float32, 1 thread, CPU time: forward 9.7 ms vs 2.5, backward 0.7 vs 3.4; PyTorch eager pays
    #: the 9.7 too). On CUDA (cuDNN-like kernels) and ``meta`` it is delegated. Tests turn it on to check ATen's
    #: CPU results against the reference.
    max_pool_on_cpu: bool = False

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

    def relu(self, x: Any) -> Any:
        with self._torch.no_grad():
            return self._ops.relu(x)

    def relu_backward(self, dy: Any, y: Any) -> Any:
        with self._torch.no_grad():
            return self._ops.threshold_backward(dy, y, 0)

    def supports_relu(self, x: Any) -> bool:
        return True

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        return bool(x.dtype == w.dtype)

    def supports_max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> bool:
        return pad == 0 and (self.max_pool_on_cpu or x.device.type != "cpu")

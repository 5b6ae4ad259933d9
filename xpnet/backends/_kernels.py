"""The native-kernel interface (issue 25): what a backend adapter may hand the layers instead of the
array-API reference (im2col convolution, strided-slice pooling).

Every method works on the backend's own arrays, NCHW, with no host read and no autograd. A kernel set
declines a case through :meth:`NativeKernels.supports_conv2d` / :meth:`NativeKernels.supports_max_pool`;
the layers then run the reference.
"""

from __future__ import annotations

from typing import Any


class NativeKernels:
    """Convolution and max-pooling kernels of one backend (see ``docs/backends.md``)."""

    name: str = ""  # e.g. "aten", "numba", "cupy-elementwise" (shown in benchmarks)

    def conv2d(self, x: Any, w: Any, b: Any, stride: int, pad: int) -> Any:
        """``x (N, C, H, W)``, ``w (F, C, KH, KW)``, ``b (F,)`` → ``y (N, F, OH, OW)``; ``pad`` symmetric in H and W."""
        raise NotImplementedError

    def conv2d_backward(
        self, dy: Any, x: Any, w: Any, stride: int, pad: int, need_dx: bool
    ) -> tuple[Any | None, Any, Any]:
        """``(dx or None, dw, db)`` for the output gradient ``dy (N, F, OH, OW)``."""
        raise NotImplementedError

    def max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> tuple[Any, Any]:
        """``(y, state)``: the window maxima and an opaque state for the backward pass (e.g. argmax
        indices); ties go to the first maximum in row-major window order, as the reference."""
        raise NotImplementedError

    def max_pool_backward(
        self, dy: Any, state: Any, x_shape: tuple[int, ...], size: tuple[int, int], stride: int, pad: int
    ) -> Any:
        """The input gradient of :meth:`max_pool` (shape ``x_shape``)."""
        raise NotImplementedError

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        """Whether :meth:`conv2d` and :meth:`conv2d_backward` take this case (else the reference runs)."""
        return True

    def supports_max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> bool:
        """Whether :meth:`max_pool` and :meth:`max_pool_backward` take this case (else the reference runs)."""
        return True

"""The interface of an adapter's native kernels: convolution and max-pooling the array API lacks.

An adapter that has them returns an instance from :meth:`Backend.native_kernels`; the layers call them
through :func:`xpnet.backends.kernels.for_backend` and fall back to the array-API reference (im2col, window-position
pooling) where it returns None or a ``supports_*`` method declines. Every method works on the backend's own
arrays (NCHW), makes no host read and records no autograd graph.
"""

from __future__ import annotations

from typing import Any


class NativeKernels:
    """Convolution (forward; input, weight and bias gradients) and max-pooling (forward with its argmax
    state; backward). Subclasses implement the four kernels; ``supports_*`` decline cases they cannot
    compute exactly as the reference does."""

    name: str = ""  # e.g. "aten", "numba", "cupy-elementwise" (shown in benchmarks)

    def conv2d(self, x: Any, w: Any, b: Any, stride: int, pad: int) -> Any:
        """``x (N, C, H, W)``, ``w (F, C, KH, KW)``, ``b (F,)`` → ``y (N, F, OH, OW)``; ``pad`` on all four sides."""
        raise NotImplementedError

    def conv2d_backward(
        self, dy: Any, x: Any, w: Any, stride: int, pad: int, need_dx: bool
    ) -> tuple[Any | None, Any, Any]:
        """``(dx, dw, db)`` for the output gradient ``dy``; ``dx`` is None unless ``need_dx``."""
        raise NotImplementedError

    def max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> tuple[Any, Any]:
        """``(y, state)``: each window's maximum, and what backward needs (e.g. the argmax); ties go to the
        window's first maximum in row-major order, as the reference's."""
        raise NotImplementedError

    def max_pool_backward(
        self, dy: Any, state: Any, x_shape: tuple[int, ...], size: tuple[int, int], stride: int, pad: int
    ) -> Any:
        """The input gradient (shape ``x_shape``): each window's gradient to its maximum's position."""
        raise NotImplementedError

    def relu(self, x: Any) -> Any:
        """``max(x, 0)`` in one pass (optional: see :meth:`supports_relu`)."""
        raise NotImplementedError

    def relu_backward(self, dy: Any, y: Any) -> Any:
        """``dy`` where the ReLU's output ``y`` is positive, else 0."""
        raise NotImplementedError

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        return True

    def supports_max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> bool:
        return True

    def supports_relu(self, x: Any) -> bool:
        """Optional kernels (ReLU) are off unless a subclass turns them on."""
        return False

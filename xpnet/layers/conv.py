"""Convolution (NCHW, im2col) and Flatten."""

from __future__ import annotations

import math
from typing import Any

from ..ops import Ones, column_sums
from .base import Layer, init_weight, zeros
from .im2col import col2im, im2col, out_size


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Convolution(Layer):
    """2-D convolution: ``Y = im2col(X)·W_colᵀ + b`` with ``W`` of shape ``(FN, C, KH, KW)``.

    Backward: ``dW = dYᵀ·col``, ``db = Σ dY``, ``dX = col2im(dY·W_col)``. Kernels may be
    non-square (``kernel_size=(3, 5)``); ``init`` as :class:`Affine` with fan-in ``C·KH·KW``.
    """

    param_names = ("W", "b")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 pad: int = 0, init: str | float = "he") -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.pad, self.init = pair(kernel_size), int(stride), int(pad), init
        if min(self.in_channels, self.out_channels, *self.kernel_size, self.stride) < 1 or self.pad < 0:
            raise ValueError(f"invalid convolution sizes: {self.describe()}")
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self.W = init_weight(self.backend, (self.out_channels, self.in_channels, kh, kw), fan_in, init)
        self.b = zeros(self.backend, (self.out_channels,))
        self.ones = Ones()  # for db = ones·dY
        self.clear()

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": self.stride, "pad": self.pad, "init": self.init}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise self._mismatch(f"(N, {self.in_channels}, H, W)", ("N", *shape))
        (kh, kw), s, p = self.kernel_size, self.stride, self.pad
        oh, ow = out_size(shape[1], kh, s, p), out_size(shape[2], kw, s, p)
        if oh < 1 or ow < 1:
            raise self._mismatch(f"(N, {self.in_channels}, H >= {kh - 2 * p}, W >= {kw - 2 * p})", ("N", *shape))
        return (self.out_channels, oh, ow)

    def forward(self, x: Any, train: bool = True) -> Any:
        xp = self.xp
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise self._mismatch(f"(N, {self.in_channels}, H, W)", tuple(x.shape))
        kh, kw = self.kernel_size
        col, oh, ow = im2col(xp, x, kh, kw, self.stride, self.pad)
        w_col = xp.reshape(self.W, (self.out_channels, -1))
        out = col @ xp.matrix_transpose(w_col)
        out += self.b
        self.x_shape, self.col, self.w_col = tuple(x.shape), col, w_col
        return xp.permute_dims(xp.reshape(out, (x.shape[0], oh, ow, self.out_channels)), (0, 3, 1, 2))

    def backward(self, dout: Any) -> Any:
        xp = self.xp
        dout = xp.reshape(xp.permute_dims(dout, (0, 2, 3, 1)), (-1, self.out_channels))
        self.db = column_sums(self.backend, self.ones, dout)
        self.dW = xp.reshape(xp.matrix_transpose(dout) @ self.col, self.W.shape)
        if not self.input_grad:
            return None
        kh, kw = self.kernel_size
        return col2im(xp, dout @ self.w_col, self.x_shape, kh, kw, self.stride, self.pad)

    def clear(self) -> None:
        self.col = self.w_col = None


class Flatten(Layer):
    """``(N, d1, d2, ...)`` → ``(N, d1·d2·...)``; backward restores the shape."""

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def forward(self, x: Any, train: bool = True) -> Any:
        self.x_shape = tuple(x.shape)
        return self.xp.reshape(x, (x.shape[0], -1))

    def backward(self, dout: Any) -> Any:
        return self.xp.reshape(dout, self.x_shape)

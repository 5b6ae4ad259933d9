"""Affine (fully connected) layer: ``Y = X·W + b``."""

from __future__ import annotations

import math
from typing import Any

from ..ops import Ones, column_sums
from .base import Layer, init_weight, zeros


class Affine(Layer):
    """``Y = X·W + b``; backward ``dX = dY·Wᵀ``, ``dW = Xᵀ·dY``, ``db = Σ_rows dY``.

    N-D input ``(N, d1, d2, ...)`` is flattened to ``(N, d1·d2·...)`` as in the book, and ``dX``
    is returned in the input's shape.
    """

    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, init: str | float = "he") -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Affine needs positive sizes, got {in_features} x {out_features}")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.W = init_weight(self.backend, (in_features, out_features), in_features, init)
        self.b = zeros(self.backend, (out_features,))
        self.x: Any = None
        self.x_shape: tuple[int, ...] = ()
        self.ones = Ones()  # for db = ones·dY

    def config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features, "init": self.init}

    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if math.prod(shape) != self.in_features:
            raise self._mismatch(f"(N, {self.in_features})", ("N", *shape))
        return (self.out_features,)

    def forward(self, x: Any, train: bool = True) -> Any:
        self.x_shape = x.shape
        if x.ndim != 2:
            x = self.xp.reshape(x, (x.shape[0], -1))
        if x.shape[1] != self.in_features:
            raise self._mismatch(f"(N, {self.in_features})", tuple(self.x_shape))
        self.x = x
        out = x @ self.W
        out += self.b  # in place: no temporary for the bias
        return out

    def backward(self, dout: Any) -> Any:
        self.dW = self.db = None  # free last step's gradients first: the allocator reuses their memory
        self.dW = self.x.T @ dout
        self.db = column_sums(self.backend, self.ones, dout)
        if not self.input_grad:
            return None
        dx = dout @ self.W.T
        return dx if len(self.x_shape) == 2 else self.xp.reshape(dx, self.x_shape)

    def clear(self) -> None:
        self.x = None

"""Batch normalisation (Ioffe & Szegedy 2015), as the book's ``BatchNormalization``."""

from __future__ import annotations

import math
from typing import Any

from .base import Layer, ones, zeros


class BatchNorm(Layer):
    """``y = γ·(x - μ)/√(σ² + ε) + β`` per feature.

    Training uses the batch's mean and variance and updates the running statistics
    ``r ← momentum·r + (1-momentum)·batch``; evaluation uses the running statistics.
    Input ``(N, features)``; image input ``(N, C, H, W)`` is normalised per channel (``features = C``).
    """

    param_names = ("gamma", "beta")
    buffer_names = ("running_mean", "running_var")

    def __init__(self, features: int, momentum: float = 0.9, eps: float = 1e-5) -> None:
        super().__init__()
        self.features, self.momentum, self.eps = int(features), float(momentum), float(eps)
        self.gamma = ones(self.backend, (self.features,))
        self.beta = zeros(self.backend, (self.features,))
        self.running_mean = zeros(self.backend, (self.features,))
        self.running_var = ones(self.backend, (self.features,))
        self.clear()

    def config(self):
        return {"features": self.features, "momentum": self.momentum, "eps": self.eps}

    def output_shape(self, shape):
        if not shape or shape[0] != self.features or len(shape) not in (1, 3):
            raise self._mismatch(f"(N, {self.features}) or (N, {self.features}, H, W)", ("N", *shape))
        return shape

    def _axes(self, x: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if x.ndim == 2 and x.shape[1] == self.features:
            return (0,), (1, self.features)
        if x.ndim == 4 and x.shape[1] == self.features:
            return (0, 2, 3), (1, self.features, 1, 1)
        raise self._mismatch(f"(N, {self.features}) or (N, {self.features}, H, W)", tuple(x.shape))

    def forward(self, x: Any, train: bool = True) -> Any:
        xp = self.xp
        axes, shape = self._axes(x)
        if train:
            mu = xp.mean(x, axis=axes)
            xc = x - xp.reshape(mu, shape)
            var = xp.mean(xc * xc, axis=axes)
            std = xp.sqrt(var + self.eps)
            xn = xc / xp.reshape(std, shape)
            m = self.momentum
            self.running_mean *= m
            self.running_mean += (1.0 - m) * mu
            self.running_var *= m
            self.running_var += (1.0 - m) * var
            self.xn, self.std, self.axes, self.shape = xn, std, axes, shape
        else:
            xn = (x - xp.reshape(self.running_mean, shape)) / xp.reshape(xp.sqrt(self.running_var + self.eps), shape)
        return xp.reshape(self.gamma, shape) * xn + xp.reshape(self.beta, shape)

    def backward(self, dout: Any) -> Any:
        """``dx = γ/σ · (dy - mean(dy) - x̂·mean(dy·x̂))`` (the book's graph, simplified)."""
        xp, axes, shape, xn = self.xp, self.axes, self.shape, self.xn
        self.dbeta = xp.sum(dout, axis=axes)
        self.dgamma = xp.sum(dout * xn, axis=axes)
        if not self.input_grad:
            return None
        n = math.prod(dout.shape) // self.features
        dxn = dout * xp.reshape(self.gamma, shape)
        return (
            dxn
            - xp.reshape(xp.sum(dxn, axis=axes) / n, shape)
            - xn * xp.reshape(xp.sum(dxn * xn, axis=axes) / n, shape)
        ) / xp.reshape(self.std, shape)

    def clear(self) -> None:
        self.xn = self.std = None

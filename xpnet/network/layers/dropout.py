"""Dropout (inverted): an activation whose slope is a random mask."""

from __future__ import annotations

from typing import Any

from .activations import Activation


class Dropout(Activation):
    """Training: ``y = x·m/(1-p)`` with ``m ~ Bernoulli(1-p)`` drawn on the device; eval: ``y = x``.

    (The book scales at eval time instead; inverted dropout gives the same expectation and makes
    prediction free.) ``freeze = True`` reuses the last mask (used by the gradient check).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.freeze = False

    def config(self):
        return {"p": self.p}

    def fn(self, x: Any, train: bool) -> tuple[Any, Any]:
        if not train:
            return x, None
        if self.freeze and self.slope is not None and self.slope.shape == x.shape:
            mask = self.slope
        else:
            keep = self.backend.uniform(tuple(x.shape), x.dtype) >= self.p
            mask = self.xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.p))
        return x * mask, mask

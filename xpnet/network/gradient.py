"""Numerical gradients by central differences and the backprop gradient check (the book's ch. 4-5)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import to_numpy

if TYPE_CHECKING:  # for the annotations only: the gradient needs no import of the model
    from .model import Sequential


def numerical_gradient(model: Sequential, x: Any, t: Any, h: float | None = None) -> dict[str, Any]:
    """``∂L/∂p ≈ (L(p + h) - L(p - h)) / 2h`` for every element of every parameter.

    2 forward passes per element (slow: use small models, float64). ``h`` defaults to 1e-5 in
    float64 and 1e-3 in lower precision (where a smaller step drowns in rounding). Dropout masks are
    fixed and running statistics restored, so the result is comparable with backprop. Returns arrays
    on the model's backend, keyed like ``model.params``.
    """
    backend = model.backend
    x, t = model.check_data(x, t)
    if h is None:
        h = 1e-5 if str(model.dtype).endswith("float64") else 1e-3

    def loss() -> float:
        return float(model.step_loss(x, t))

    with model.frozen():
        loss()  # draws the dropout masks that the frozen passes reuse
        grads = {}
        for key, p in model.params.items():
            g = np.zeros(tuple(p.shape))
            for idx in np.ndindex(*p.shape):
                old = float(p[idx])
                p[idx] = old + h
                stored_up = float(p[idx])  # the step as stored (float32 rounds old ± h)
                up = loss()
                p[idx] = old - h
                stored_down = float(p[idx])
                down = loss()
                p[idx] = old
                g[idx] = (up - down) / (stored_up - stored_down)
            grads[key] = backend.from_host(g, dtype=p.dtype)
    return grads


def gradient_check(model: Sequential, x: Any, t: Any, h: float | None = None) -> dict[str, float]:
    """Per parameter: ``max |g_bp - g_num| / max(1e-8, |g_bp| + |g_num|)`` over its elements.

    Run it in float64: values below ~1e-6 mean backprop is right. In lower precision rounding
    dominates (float32 gives 1e-2 to 1e-1 even when backprop is right): a ``RuntimeWarning`` says so.
    """
    if not str(model.dtype).endswith("float64"):
        warnings.warn(
            f"gradient_check in {model.dtype}: rounding makes the differences 1e-2 to 1e-1 even when backprop "
            f"is right; build the model in float64 (xpnet.set_default_dtype('float64')) for a meaningful check",
            RuntimeWarning,
            stacklevel=2,
        )
    with model.frozen():
        backprop = {k: to_numpy(v).astype(np.float64) for k, v in model.gradient(x, t).items()}
        numeric = {k: to_numpy(v).astype(np.float64) for k, v in numerical_gradient(model, x, t, h).items()}
    return {
        k: float(
            np.max(
                np.abs(backprop[k] - numeric[k]) / np.maximum(1e-8, np.abs(backprop[k]) + np.abs(numeric[k])),
                initial=0.0,
            )
        )
        for k in backprop
    }

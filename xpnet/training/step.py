"""One training step: the gradients of a batch, the data-parallel reduction, clipping, the update.

The trainer, the benchmarks and the tests all step through :func:`train_step`; it reads nothing back
from the device (backprop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..optim.clipping import clip_by_global_norm

GRADIENTS = ("backprop", "numerical")
"""``Trainer(gradient=...)`` modes."""


def check_gradient_mode(mode: str) -> str:
    if mode not in GRADIENTS:
        raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, got {mode!r}")
    return mode


def step_gradients(model: Any, x: Any, t: Any, mode: str = "backprop") -> dict[str, Any]:
    """The gradients of one training step on device data ``x, t``.

    ``backprop``: one training-mode forward and one backward (no host read). ``numerical``: central
    differences of the training loss by :func:`xpnet.numerical_gradient` — 2 forward passes per
    parameter element, each loss read back to the host: by its nature exempt from the step's
    no-host-read rule. Running statistics (BatchNorm) then move once, as one backprop forward would.
    """
    if mode == "backprop":
        model.step_loss(x, t, value=False)
        return model.backward()
    from ..network.gradient import numerical_gradient

    grads = numerical_gradient(model, x, t)
    if model.buffers:
        model.forward(x, True)
    return grads


def train_step(
    model: Any,
    optimizer: Any,
    x: Any,
    t: Any,
    gradient: str = "backprop",
    clip_norm: float | None = None,
    reduce: Callable[[Any], Any] | None = None,
) -> None:
    """One training step on device data: gradients (:func:`step_gradients`), then ``reduce`` (the
    data-parallel allreduce; ``x`` is None on a rank without samples), then clipping by global norm,
    then ``optimizer.update(model.params, grads)``. Reads nothing back from the device (backprop).

    The trainer, the benchmarks and the tests all step through this function.
    """
    grads = step_gradients(model, x, t, gradient) if x is not None else None
    if reduce is not None:
        grads = reduce(grads)
    if grads is None:
        raise ValueError("train_step: x is None (no samples) and no reduce brought other ranks' gradients")
    optimizer.update(model.params, clip_by_global_norm(grads, clip_norm) if clip_norm else grads)

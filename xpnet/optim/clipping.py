"""Gradient clipping by global norm, on the device (array API only; the norm is never read back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backends import namespace_of

CLIP_EPS = 1e-6
"""Added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does."""


def check_clip_norm(clip_norm: float | None, owner: str = "clip_norm") -> float | None:
    if clip_norm is None:
        return None
    if (
        isinstance(clip_norm, bool)
        or not isinstance(clip_norm, (int, float))
        or not clip_norm > 0
        or clip_norm == float("inf")
    ):
        raise ValueError(f"{owner} must be a finite number > 0, got {clip_norm!r}")
    return float(clip_norm)


def global_norm(grads: dict[str, Any] | Sequence[Any]) -> Any:
    """``‖g‖ = √(Σ_i Σ g_i²)`` over all gradient arrays, as a 0-d device array (not read back)."""
    arrays = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not arrays:
        raise ValueError("global_norm needs at least one gradient array")
    xp = namespace_of(arrays[0])
    total = xp.sum(arrays[0] * arrays[0])
    for g in arrays[1:]:
        total = total + xp.sum(g * g)
    return xp.sqrt(total)


def clip_by_global_norm(grads: dict[str, Any], max_norm: float) -> dict[str, Any]:
    """Every gradient times ``min(1, C / (‖g‖ + 1e-6))`` with ``C = max_norm`` (the global norm of all
    of them, as ``torch.nn.utils.clip_grad_norm_``). The scale is computed and applied on the device
    (``xp.minimum``): no host read, no sync. Returns new arrays; the incoming ones are not modified."""
    limit = check_clip_norm(max_norm, "max_norm")
    if limit is None:
        raise ValueError("max_norm must be a positive finite number, got None")
    max_norm = limit
    norm = global_norm(grads)
    xp = namespace_of(next(iter(grads.values())))  # (NumPy's sums are scalars, not arrays)
    ratio = max_norm / (norm + CLIP_EPS)
    scale = xp.minimum(ratio, xp.ones_like(ratio))
    return {k: g * xp.astype(scale, g.dtype) for k, g in grads.items()}

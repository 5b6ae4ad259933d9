"""The validation data a fit holds out: a seeded, stratified split of the training data.

The split runs on the host once per fit (labels read once); the rows are gathered on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import to_numpy


def stratified_split(labels: Any, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_index, val_index)``: a seeded split holding out ``fraction`` of each class.

    ``labels``: integer labels or one-hot rows (any backend; read to the host once). Each class gives
    ``round(fraction · n_class)`` samples (at least one where it has two or more), so class proportions
    match in both parts; the same seed gives the same split. Indices are sorted host int64 arrays.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"validation_split must be a fraction in (0, 1), got {fraction!r}")
    t = np.asarray(to_numpy(labels))
    if t.ndim == 2:
        t = t.argmax(axis=1)
    if t.ndim != 1:
        raise ValueError(f"validation_split needs labels (N,) or one-hot targets (N, C), got shape {t.shape}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(t):
        members = np.flatnonzero(t == c)
        k = round(fraction * len(members))
        k = min(max(k, 1 if len(members) > 1 else 0), len(members) - 1)
        val.append(rng.permutation(members)[:k])
    val_index = np.sort(np.concatenate(val)).astype(np.int64)
    if val_index.size == 0 or val_index.size == t.size:
        raise ValueError(f"validation_split={fraction} of {t.size} samples leaves an empty part")
    mask = np.ones(t.size, dtype=bool)
    mask[val_index] = False
    return np.flatnonzero(mask).astype(np.int64), val_index


def split_validation(model: Any, x: Any, t: Any, fraction: float, seed: int) -> tuple[Any, Any, Any, Any]:
    """Checked device data ``x, t`` → ``(x_train, t_train, x_val, t_val)`` by :func:`stratified_split`
    (labels read to the host once; the rows are gathered on the device)."""
    train, val = stratified_split(t, fraction, seed)
    xp, put = model.backend.xp, model.backend.from_host
    train, val = put(train), put(val)
    return xp.take(x, train, axis=0), xp.take(t, train, axis=0), xp.take(x, val, axis=0), xp.take(t, val, axis=0)

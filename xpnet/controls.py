"""Training controls around the step: the gradient mode (backprop or numerical), a seeded
stratified validation split, and best-weights keeping (clipping: :mod:`xpnet.clipping`).

The split runs on the host once per fit; best weights are device copies taken once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import to_numpy
from .clipping import clip_by_global_norm

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
    from .gradient import numerical_gradient

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


def describe(trainer: Any, validation_split: float | None, val: Any) -> dict[str, Any]:
    """The controls a fit used, for ``History.config`` (only those that are on, besides the gradient)."""
    out: dict[str, Any] = {"gradient": trainer.gradient}
    if trainer.schedule is not None:
        out["schedule"] = repr(trainer.schedule)
    if trainer.clip_norm is not None:
        out["clip_norm"] = trainer.clip_norm
    if validation_split is not None:
        out["validation_split"] = validation_split
    if val is not None:
        out["validation_samples"] = int(val[0].shape[0])
    if trainer.restore_best:
        out["restore_best"] = True
    return out


# -- the validation split ----------------------------------------------------------------------
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


# -- best weights ----------------------------------------------------------------------------------
class BestWeights:
    """Device copies of a model's parameters and buffers at its best epoch (lowest watched loss).

    ``update(model, loss, epoch)`` copies when ``loss`` improves (strictly, so the first of equal
    minima wins); ``restore(model)`` writes the copies back in place (parameter identity is kept,
    so optimizer state and layers stay bound to the same arrays).
    """

    def __init__(self) -> None:
        self.loss = float("inf")
        self.epoch: int | None = None
        self.params: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}

    def update(self, model: Any, loss: float, epoch: int) -> bool:
        if not loss < self.loss:
            return False
        xp = model.backend.xp
        self.loss, self.epoch = loss, epoch
        self.params = {k: xp.asarray(v, copy=True) for k, v in model.params.items()}
        self.buffers = {k: xp.asarray(v, copy=True) for k, v in model.buffers.items()}
        return True

    def restore(self, model: Any) -> None:
        if self.epoch is None:
            return
        for key, p in model.params.items():
            p[...] = self.params[key]
        for key, value in self.buffers.items():
            i, name = key.split(".", 1)
            setattr(model.layers[int(i)], name, model.backend.xp.asarray(value, copy=True))


# -- the command line's options ------------------------------------------------------------------
class OptionError(ValueError):
    """A command-line option with an invalid value: reported in one line before any training (exit 2),
    ``--option: what is wrong; what is valid``."""

    def __init__(self, message: str) -> None:
        flag, sep, rest = message.partition(" ")
        if flag.startswith("--") and not flag.endswith(":") and sep:  # "--warmup must be ..." → "--warmup: must be ..."
            message = f"{flag}: {rest}"
        super().__init__(message.replace(": : ", ": "))


def cli_options(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(Trainer kwargs, fit kwargs)`` from the command line's settings (``gradient``, ``schedule``,
    ``warmup``, ``clip_norm``, ``validation_split``, ``patience``, ``restore_best``, with ``lr`` and
    ``epochs``). Raises :class:`OptionError` naming the option and what is valid."""
    from .clipping import check_clip_norm
    from .schedules import from_spec

    gradient = cfg.get("gradient") or "backprop"
    if gradient not in GRADIENTS:
        raise OptionError(f"--gradient: unknown mode {gradient!r}; valid: {', '.join(GRADIENTS)}")
    schedule = None
    if (
        isinstance(cfg.get("lr"), (int, float))
        and cfg["lr"] > 0
        and isinstance(cfg.get("epochs"), int)
        and cfg["epochs"] >= 1
    ):  # a bad --lr or --epochs is reported by its own check
        try:
            schedule = from_spec(cfg.get("schedule"), cfg["lr"], cfg["epochs"], cfg.get("warmup") or 0)
        except ValueError as e:
            raise OptionError(str(e)) from None
    try:
        clip_norm = check_clip_norm(cfg.get("clip_norm"), "--clip-norm")
    except ValueError as e:
        raise OptionError(str(e)) from None
    split = cfg.get("validation_split")
    if split is not None and not 0 < split < 1:
        raise OptionError(f"--validation-split: must be a fraction in (0, 1) of the training data, got {split}")
    patience, restore_best = cfg.get("patience"), bool(cfg.get("restore_best"))
    if patience is not None and patience < 1:
        raise OptionError(f"--patience: must be an integer >= 1 (epochs without improvement), got {patience}")
    if (patience is not None or restore_best) and split is None:
        flag = "--patience" if patience is not None else "--restore-best"
        raise OptionError(
            f"{flag}: needs --validation-split: the best epoch is chosen on validation data, never on the test set"
        )
    trainer = {
        "gradient": gradient,
        "schedule": schedule,
        "clip_norm": clip_norm,
        "patience": patience,
        "restore_best": restore_best,
    }
    return trainer, ({"validation_split": split} if split is not None else {})


def timed_rows(rows: list[tuple[dict[str, Any], list[Any]]], ratio: bool) -> list[tuple[dict[str, Any], dict]]:
    """``compare``'s one-seed rows ``(cfg, [history])`` → ``(cfg, summary)``; with ``ratio`` (the gradient
    mode varies) each summary gains ``wall`` (seconds of the whole run) and ``ratio`` (to the fastest)."""
    out = [(cfg, runs[0].summary()) for cfg, runs in rows]
    if ratio:
        walls = [runs[0].config["wall_seconds"] for _, runs in rows]
        for (_, summary), wall in zip(out, walls):
            summary.update(wall=wall, ratio=wall / min(walls))
    return out


def default_dtype(cfg: dict[str, Any], given: bool) -> str:
    """``--dtype`` when ``given``, else float64 for numerical gradients (float32 central differences are
    off by a few percent) and ``cfg["dtype"]`` (the default, float32) otherwise."""
    return cfg["dtype"] if given or cfg.get("gradient") != "numerical" else "float64"

"""Training controls around the step, kept here for their old names: the gradient mode and the step
(:mod:`xpnet.training.step`), the stratified validation split (:mod:`xpnet.training.validation`),
best-weights keeping (:mod:`xpnet.training.extensions.early_stopping`); and the command line's options.
"""

from __future__ import annotations

from typing import Any

from .training.extensions.early_stopping import BestWeights
from .training.step import GRADIENTS, check_gradient_mode, step_gradients, train_step
from .training.trainer import describe
from .training.validation import split_validation, stratified_split

__all__ = [
    "GRADIENTS",
    "BestWeights",
    "OptionError",
    "check_gradient_mode",
    "cli_options",
    "default_dtype",
    "describe",
    "split_validation",
    "step_gradients",
    "stratified_split",
    "timed_rows",
    "train_step",
]


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

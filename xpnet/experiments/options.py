"""A run's options, shared by the command line and the experiment tools: what each may hold
(:data:`CHECKS`: a function per option that converts its value or says what is valid), the models and
the options each takes, the backend they name (:func:`resolve`), and the ``Trainer`` and ``fit`` keywords
they ask for (:func:`cli_options`; it and :class:`OptionError` keep the names they had in ``xpnet.controls``,
though the experiment tools use them too).

A bad value raises :class:`UsageError` ``"--option: what is wrong; valid: ..."`` or :class:`OptionError`:
one line, which the command line reports with exit status 2. Names (datasets, models, activations,
optimizers, dtypes, gradient modes, schedules, backends) are case-insensitive: each is converted to the
name xpnet lists."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from .. import backends as B
from ..backends import FLOAT_DTYPES
from ..data.datasets import DATASETS
from ..data.download import DOWNLOADS
from ..network.layers import ACTIVATIONS
from ..optim.clipping import check_clip_norm
from ..optim.optimizers import OPTIMIZERS
from ..optim.schedules import SCHEDULES, from_spec
from ..training.step import GRADIENTS

__all__ = [
    "CHECKS",
    "MODELS",
    "MODEL_OPTIONS",
    "MODEL_SHAPING",
    "OptionError",
    "UsageError",
    "check_dtype",
    "check_model_options",
    "check_unused_options",
    "cli_options",
    "convert",
    "default_dtype",
    "flag",
    "hidden_sizes",
    "init_value",
    "names",
    "resolve",
]


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


def default_dtype(cfg: dict[str, Any], given: bool) -> str:
    """``--dtype`` when ``given``, else float64 for numerical gradients (float32 central differences are
    off by a few percent) and ``cfg["dtype"]`` (the default, float32) otherwise."""
    return cfg["dtype"] if given or cfg.get("gradient") != "numerical" else "float64"


MODELS = ("mlp", "simple-cnn", "deep-cnn")


MODEL_OPTIONS = {
    "mlp": None,  # every option
    "simple-cnn": {"activation", "hswish_n", "init"},
    "deep-cnn": set(),
}
"""Which model-shaping options each model takes (``None``: all)."""


MODEL_SHAPING = ("hidden", "activation", "hswish_n", "dropout", "batchnorm", "flooding", "init")


class UsageError(ValueError):
    """A bad command line: ``--option: message`` (exit status 2)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(f"{flag(option)}: {message}" if option else message)


def flag(dest: str) -> str:
    """``batch_size`` → ``--batch-size``; a flag (``--lr``), an environment variable or a positional
    argument's name (``XPNET_BACKEND``, ``NAME``) is kept as it is."""
    return dest if dest.isupper() or dest.startswith("-") else "--" + dest.replace("_", "-")


def _name(v: Any) -> str:
    return str(v).strip().lower()


def _choice(valid: Iterable[str], normalize: Callable[[str], str] = _name) -> Callable[[Any], Any]:
    """One of ``valid``, compared after ``normalize`` (case-insensitive), returned as listed there."""
    valid = list(valid)

    def check(v: Any) -> Any:
        matches = [x for x in valid if normalize(x) == normalize(str(v))]
        if not matches:
            raise ValueError(f"unknown value {v!r}; valid: {', '.join(valid)}")
        return matches[0]

    return check


def _number(
    kind: type,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    none: bool = False,
) -> Callable[[Any], Any]:
    """A number of ``kind`` within ``[lo, hi]`` (``lo_open``/``hi_open``: excluded)."""
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    what = f"{'an integer' if kind is int else 'a number'}"
    if lo is not None and hi is not None:
        what += f" in {left}{lo}, {hi}{right}"
    elif lo is not None:
        what += f" {'>' if lo_open else '>='} {lo}"

    def check(v: Any) -> Any:
        if v is None and none:
            return None
        try:
            x = kind(v)
            if kind is int and str(v).strip() != str(x) and float(v) != x:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{v!r} is not {what}") from None
        if (
            math.isnan(x)
            or (lo is not None and (x < lo or (lo_open and x == lo)))
            or (hi is not None and (x > hi or (hi_open and x == hi)))
        ):
            raise ValueError(f"{v!r} is not {what}")
        return x

    return check


def hidden_sizes(v: Any) -> list[int]:
    """``"100,50"`` → ``[100, 50]``: one or more positive integers separated by commas."""
    parts = [p.strip() for p in str(v).split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{v!r} is not a list of positive integers separated by commas (e.g. 100,50)")
    return [int(p) for p in parts]


def init_value(v: Any) -> str | float:
    """``--init``: he, xavier or auto (any case), or a positive standard deviation."""
    if _name(v) in ("he", "xavier", "auto"):
        return _name(v)
    try:
        x = float(v)
    except ValueError:
        x = -1.0
    if not x > 0:
        raise ValueError(f"unknown value {v!r}; valid: he, xavier, auto, or a positive standard deviation")
    return x


def _schedule(v: Any) -> str | None:
    """``--schedule``: its name case-insensitive (``Cosine:0.001`` → ``cosine:0.001``); the values are
    checked with ``--lr`` and ``--epochs`` (:func:`xpnet.experiments.options.cli_options`)."""
    if v is None:
        return None
    name, sep, rest = str(v).strip().partition(":")
    return _choice(SCHEDULES)(name) + sep + rest


def _backend(v: Any) -> str | None:
    """``--backend``: its name lower-cased (``NumPy`` → ``numpy``), a device after ``:`` kept as given;
    resolved, and refused where unknown or unavailable, by :func:`resolve`."""
    if v is None:
        return None
    name, sep, device = str(v).strip().partition(":")
    return _name(name) + sep + device


CHECKS: dict[str, Callable[[Any], Any]] = {
    "dataset": _choice(DATASETS),
    "model": _choice(MODELS),
    "hidden": hidden_sizes,
    "activation": _choice(ACTIVATIONS, lambda s: s.lower().replace("-", "").replace("_", "")),
    "hswish_n": _number(float, 0, lo_open=True),
    "optimizer": _choice(OPTIMIZERS),
    "lr": _number(float, 0, lo_open=True),
    "momentum": _number(float, 0, 1, hi_open=True),
    "batch_size": _number(int, 1),
    "epochs": _number(int, 1),
    "seed": _number(int, 0),
    "flooding": _number(float, 0, none=True),
    "weight_decay": _number(float, 0),
    "dropout": _number(float, 0, 1, hi_open=True),
    "dtype": _choice(FLOAT_DTYPES),
    "init": init_value,
    "warmup": _number(int, 0),
    "clip_norm": _number(float, 0, lo_open=True, none=True),
    "validation_split": _number(float, 0, 1, lo_open=True, hi_open=True, none=True),
    "gradient": _choice(("backprop", "numerical")),
    "schedule": _schedule,
    "backend": _backend,
    "patience": _number(int, 1, none=True),
    "checkpoint_every": _number(int, 1, none=True),
    "seeds": _number(int, 1, none=True),
    "download": _choice(DOWNLOADS),
    "rounds": _number(int, 1, none=True),
    "min_time": _number(float, 0, lo_open=True, none=True),
}
"""Per option: a function that returns the value (converted) or raises ValueError saying what is valid."""


def convert(key: str, value: Any) -> Any:
    """``value`` of option ``key``, converted and checked (:class:`UsageError` otherwise)."""
    if key not in CHECKS:
        return value
    try:
        out = CHECKS[key](value)
    except ValueError as e:
        raise UsageError(key, str(e)) from None
    if key == "hidden" or (key == "init" and not isinstance(out, str)):
        return str(value).strip()  # keep the text in tables and configs ("100,50", "0.01")
    return out


def names(option: str, text: str, valid: Iterable[str]) -> list[str]:
    """A comma-separated list of names, each one of ``valid`` (case-insensitive, returned as listed there)."""
    check = _choice(valid)
    try:
        return [check(v) for v in text.split(",")]
    except ValueError as e:
        raise UsageError(option, str(e)) from None


def check_model_options(cfg: dict[str, Any], given: Iterable[str]) -> None:
    """Refuse options that ``cfg["model"]`` cannot take (``given``: the options set on the command line)."""
    allowed = MODEL_OPTIONS.get(cfg["model"])
    if allowed is None:
        return
    for key in given:
        if key in MODEL_SHAPING and key not in allowed:
            takes = ", ".join(flag(k) for k in MODEL_SHAPING if k in allowed) or "none of the MLP's options"
            raise UsageError(key, f"the {cfg['model']} model cannot take it (mlp only; {cfg['model']} takes {takes})")


def check_unused_options(cfgs: Iterable[dict[str, Any]], given: Iterable[str]) -> None:
    """Refuse options that no run would use, rather than ignore them: ``--hswish-n`` without the
    hswish activation, ``--data-path`` with only the embedded digits (which need no files)."""
    cfgs, given = list(cfgs), set(given)
    if "hswish_n" in given and not any(str(c.get("activation", "")).lower().replace("-", "") == "hswish" for c in cfgs):
        raise UsageError("hswish_n", "only the hswish activation takes it (add --activation hswish)")
    if "data_path" in given and all(c.get("dataset") == "digits" for c in cfgs):
        raise UsageError("data_path", "the embedded digits need no files; it is for --dataset mnist or fashion-mnist")


def resolve(name: str | None, device: Any, option: str = "backend") -> B.Backend:
    """The backend ``name`` (``None``: ``$XPNET_BACKEND``, else numpy); ``name:device`` is accepted."""
    if name is None:
        name = os.environ.get("XPNET_BACKEND") or "numpy"
        option = "XPNET_BACKEND" if os.environ.get("XPNET_BACKEND") else option
    if ":" in name and device is None:
        name, device = name.split(":", 1)
    name = _name(name)  # names are case-insensitive; a device ("cuda:0") is passed as given
    try:
        return B.resolve_backend(name, device)
    except (ValueError, ImportError, TypeError) as e:
        raise UsageError(option, str(e)) from None


def check_dtype(backend: B.Backend, dtype: str) -> None:
    try:
        backend.dtype(dtype)
    except (TypeError, AttributeError) as e:
        raise UsageError("dtype", str(e)) from None

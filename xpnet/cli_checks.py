"""The command line's checks, all done before the first training step, in one error style.

A bad value raises :class:`UsageError` ``"--option: what is wrong; valid: ..."`` (one line; the
CLI exits with status 2, as argparse does for a bad command line). :class:`Parser` answers argparse's
own errors (a type or choice error, an unknown or abbreviated option) the same way, without the usage
block. Names (datasets, models, activations, optimizers, dtypes, gradient modes, schedules, backends,
networks) are case-insensitive everywhere: each is converted to the name xpnet lists.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import math
import os
import pathlib
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from . import backend as B
from .backends import FLOAT_DTYPES
from .datasets import DATASETS, DOWNLOADS
from .layers import ACTIVATIONS
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES

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


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that refuses abbreviated options and raises :class:`UsageError` (one line,
    naming the option) where argparse would print its usage block: the command line's every mistake
    reads the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """argparse's message (``argument --lr: ...``, ``unrecognized arguments: ...``) as a UsageError."""
        argument = "argument "
        if message.startswith(argument) and ": " in message:
            names, _, what = message[len(argument) :].partition(": ")
            option = next((n for n in names.split("/") if n.startswith("--")), names.split("/")[0])
            raise UsageError(option if option.startswith("-") else option.upper(), what)
        unknown = "unrecognized arguments: "
        if message.startswith(unknown):
            raise self._unknown(message[len(unknown) :].split(" ")[0])
        required = "the following arguments are required: "
        if message.startswith(required):
            name = message[len(required) :].split(", ")[0]
            action = next((a for a in self._actions if name in (a.dest, a.metavar)), None)
            raise UsageError(
                name.upper(), f"missing ({action.help if action and action.help else self.prog + ' --help'})"
            )
        raise UsageError("", message)

    def _unknown(self, token: str) -> UsageError:
        if not token.startswith("-"):
            return UsageError("", f"unexpected argument {token!r} ({self.prog} --help lists what it takes)")
        name = token.split("=", 1)[0]
        options = [o for o in self._option_string_actions if o.startswith("--")]
        longer = [o for o in options if o.startswith(name)]
        guess = longer or difflib.get_close_matches(name, options, n=3)
        hint = f"did you mean {' or '.join(guess)}?" if guess else f"{self.prog} --help lists the options"
        return UsageError(name, f"unknown option (abbreviations are not accepted); {hint}")


def option_type(key: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for option ``key``: :func:`convert`'s value, or an ``ArgumentTypeError``
    saying what is valid (reported by :class:`Parser` in one line)."""

    def parse(value: str) -> Any:
        try:
            return convert(key, value)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e).partition(": ")[2]) from None

    parse.__name__ = key
    return parse


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


def _init(v: Any) -> str | float:
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
    checked with ``--lr`` and ``--epochs`` (:func:`xpnet.controls.cli_options`)."""
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
    "init": _init,
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


def check_output(option: str, path: str | None, suffixes: tuple[str, ...] = ()) -> None:
    """``path`` ends in one of ``suffixes`` (any name where none are given) and can be written (its folder
    exists and is writable)."""
    if path is None:
        return
    p = pathlib.Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise UsageError(option, f"{path!r} must end in {' or '.join(suffixes)}")
    folder = p.parent if str(p.parent) else pathlib.Path(".")
    if p.is_dir():
        ending = f" ending in {' or '.join(suffixes)}" if suffixes else ""
        raise UsageError(option, f"{path!r} is a folder; give a file name{ending}")
    if not folder.is_dir():
        raise UsageError(option, f"the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(option, f"{path!r} is not writable")


def check_plot(path: str | None) -> None:
    if path is None:
        return
    check_output("plot", path, (".png", ".pdf", ".svg"))
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise UsageError("plot", 'needs matplotlib, which is not installed: pip install "xpnet[plot]"') from None

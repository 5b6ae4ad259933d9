"""The command line's checks, all done before the first training step, in one error style.

A bad value raises :class:`UsageError` ``"--option: what is wrong; valid: ..."`` (one line; the
CLI exits with status 2, as argparse does for a bad command line). What each option may hold is
checked by :mod:`xpnet.experiments.options` (the experiment tools share it); here are argparse's side
(:class:`Parser` answers argparse's own errors: a type or choice error, an unknown or abbreviated option,
the same way, without the usage block; :func:`add_checked` adds an option checked as it is parsed), the checks
of a command's whole set of runs (:func:`check_runs`) and the output files' checks.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import pathlib
from collections.abc import Callable
from typing import Any, NoReturn

from .. import backends as B
from ..experiments import memory
from ..experiments.options import (
    CHECKS,
    MODEL_OPTIONS,
    MODEL_SHAPING,
    MODELS,
    UsageError,
    check_dtype,
    check_model_options,
    check_unused_options,
    convert,
    flag,
    hidden_sizes,
    names,
    resolve,
)

__all__ = [  # the option checks keep their old names here (``xpnet.cli_checks``)
    "CHECKS",
    "MODELS",
    "MODEL_OPTIONS",
    "MODEL_SHAPING",
    "Parser",
    "UsageError",
    "add_checked",
    "check_dtype",
    "check_model_options",
    "check_output",
    "check_plot",
    "check_runs",
    "check_unused_options",
    "convert",
    "flag",
    "hidden_sizes",
    "names",
    "option_type",
    "resolve",
]


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


def add_checked(parser: argparse.ArgumentParser, flag: str, help: str, **kwargs: Any) -> None:
    """``parser.add_argument(flag, ...)`` for an option that :func:`option_type` converts and checks as it is
    parsed (default ``None`` unless ``default=`` is given)."""
    kwargs.setdefault("default", None)
    parser.add_argument(flag, type=option_type(flag.removeprefix("--").replace("-", "_")), help=help, **kwargs)


def check_runs(cfgs: list[dict[str, Any]], given: set[str], device: Any) -> None:
    """Every run's every value, its model's options, backend and dtype: before the first step."""
    backends: dict[Any, B.Backend] = {}
    check_unused_options(cfgs, given)
    for cfg in cfgs:
        for key in CHECKS:
            if key in cfg:
                convert(key, cfg[key])
        check_model_options(cfg, given)
        if cfg["backend"] not in backends:
            backends[cfg["backend"]] = resolve(cfg["backend"], device)
        check_dtype(backends[cfg["backend"]], cfg["dtype"])
        if cfg["model"] == "mlp" and (
            why := memory.for_config(cfg, backends[cfg["backend"]], hidden_sizes(cfg["hidden"]))
        ):
            raise UsageError("hidden", why)  # before the model is built (xpnet/experiments/memory.py)


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

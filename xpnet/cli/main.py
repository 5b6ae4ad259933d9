"""``xpnet train | compare | bench | data`` — the articles' experiments from the command line.

Every option is checked before the first training step: a bad value ends the command with one line
naming the option and what is valid, exit status 2 (as argparse); a failure while running (data
not found, a download that fails, ...) with one line and exit status 1. Here: the command's choice,
its errors, Ctrl-C/SIGTERM and a closed pipe; each command in its own module (:mod:`.train`,
:mod:`.compare`, :mod:`.bench`, :mod:`.data`), their parsers in :mod:`.parsers`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .. import backends as B
from ..data.download import DownloadError
from ..experiments.options import OptionError
from ..training import checkpoint as ckpt
from ..training import distributed
from . import bench
from . import checks as C
from .compare import cmd_compare
from .data import cmd_data
from .parsers import compare_parser, data_parser, train_parser
from .train import cmd_train

COMMANDS = {
    "train": "train a model (default: the digits MLP, offline, seconds)",
    "compare": "train several configurations and print one comparison table",
    "bench": "time xpnet against PyTorch and the GEMM bound (the matrix products alone) on each backend",
    "data": "download a dataset (mnist, fashion-mnist) and verify its checksums",
}


def version() -> str:
    """``xpnet.__version__``: the package metadata's version (pyproject.toml's in a source checkout)."""
    from .._version import __version__

    return __version__


def _usage(out: Any) -> None:
    print("usage: xpnet {train,compare,bench,data} [options]   (xpnet <command> --help; xpnet --version)", file=out)
    for name, text in COMMANDS.items():
        print(f"  {name:8s} {text}", file=out)


def _dispatch(command: str, rest: list[str]) -> int:
    if command == "train":
        return cmd_train(train_parser().parse_args(rest), rest)
    if command == "compare":
        return cmd_compare(compare_parser().parse_args(rest))
    if command == "data":
        return cmd_data(data_parser().parse_args(rest))
    return bench.main(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """``xpnet COMMAND [options]``; returns the exit status (0, 1 failure while running, 2 bad command line)."""
    try:
        status = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return status
    except BrokenPipeError:
        return _broken_pipe()


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        _usage(sys.stdout)
        return 0
    if argv[0] == "--version":
        print(f"xpnet {version()}")
        return 0
    if argv[0] not in COMMANDS:
        print(
            f"xpnet: error: unknown command {argv[0]!r}; valid: {', '.join(COMMANDS)} (xpnet --help)", file=sys.stderr
        )
        return 2
    command, rest = argv[0], argv[1:]
    undo = ckpt.raise_on_sigterm()
    try:
        return _dispatch(command, rest)
    except (C.UsageError, OptionError) as e:
        return _failed(command, e, 2)
    except BrokenPipeError:
        raise
    except (B.BackendUnavailableError, DownloadError, OSError, ValueError, ImportError) as e:
        return _failed(command, e, 1)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: one line, no traceback
        return _interrupted(command, rest, e)
    finally:
        undo()


def _failed(command: str, e: Exception, status: int) -> int:
    """One line on stderr; under MPI the other ranks are stopped (they must not wait for this one)."""
    print(f"xpnet {command}: error: {e}", file=sys.stderr)
    distributed.stop_all()
    return status


def _interrupted(command: str, rest: Sequence[str], e: KeyboardInterrupt) -> int:
    """One line for Ctrl-C/SIGTERM: what was saved and the command that resumes; exit status 128 + signal."""
    signum = getattr(e, "signum", signal.SIGINT)
    epoch, step = getattr(e, "epoch", 0), getattr(e, "step", 0)  # an xpnet.checkpoint.Interrupted has them
    what = signal.Signals(signum).name + (f" at epoch {epoch}" if epoch else "")
    what += f", step {step}" if step else ""
    path = getattr(e, "path", None)
    if path is not None:
        what += f"; checkpoint saved to {path}"
    else:  # stopped outside a checkpointing fit: the newest checkpoint on disk, if any, is intact
        p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        p.add_argument("--checkpoint")
        p.add_argument("--resume")
        known, _ = p.parse_known_args(rest)
        path = next((f for f in (known.checkpoint, known.resume) if f and pathlib.Path(f).exists()), None)
        if path is not None:
            what += f"; the last checkpoint {'folder ' if command == 'compare' else ''}{path} is intact"
    if command == "data":  # it has no --checkpoint: verified files stay, the partial one is removed
        hint = f"the files verified so far are kept; run `xpnet {shlex.join([command, *rest])}` again for the rest"
    elif path is None:
        where = "DIR" if command == "compare" else "PATH"
        hint = f"nothing was saved (run with --checkpoint {where} to be able to resume)"
    elif command == "train":
        hint = f"resume with: xpnet train --resume {shlex.quote(str(path))}"
    else:
        hint = f"resume with: xpnet {command} {shlex.join(rest)}"
    if getattr(e, "root", True):  # under MPI rank 0 speaks for all
        print(f"xpnet {command}: interrupted ({what}); {hint}", file=sys.stderr, flush=True)
    return 128 + int(signum)


def _broken_pipe() -> int:
    """The reader went away (``xpnet train | head``): stop quietly, as Unix tools do (status 128 + SIGPIPE)."""
    try:  # later writes (and the interpreter's final flush) go nowhere instead of raising again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 141


if __name__ == "__main__":
    raise SystemExit(main())

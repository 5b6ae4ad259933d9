"""The parsers of ``xpnet train``, ``xpnet compare`` and ``xpnet data``: their options and help texts;
the training options take their defaults from :data:`xpnet.experiments.config.DEFAULTS`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .. import backends as B
from ..data.download import DOWNLOADS
from ..experiments.config import DEFAULTS
from ..optim.optimizers import OPTIMIZERS
from . import checks as C


def add_training_options(p: argparse.ArgumentParser, many: bool) -> None:
    """The options of ``train``; with ``many`` (``compare``) each takes a list of values (checked by
    :func:`xpnet.cli.compare.compare_grid`); ``train``'s are converted and checked as they are parsed
    (:func:`C.option_type`)."""

    def opt(flag: str, typ: Any, help: str) -> None:
        default = DEFAULTS[flag[2:].replace("-", "_")]
        if many:
            p.add_argument(flag, type=str, nargs="+", default=None, metavar="V", help=help + f" (default {default})")
        else:
            key = flag[2:].replace("-", "_")
            check = C.option_type(key) if key in C.CHECKS else typ
            p.add_argument(flag, type=check, default=default, help=help + f" (default {default})")

    opt("--dataset", str, "digits | mnist | fashion-mnist")
    opt(
        "--model",
        str,
        "mlp (--hidden, --activation, ...) | simple-cnn (--activation, --hswish-n, --init) "
        "| deep-cnn (the book's CNNs)",
    )
    opt(
        "--backend",
        str,
        "numpy | cupy | torch | array_api_strict, optionally with :device "
        "(e.g. torch:cuda:0); default $XPNET_BACKEND, else numpy",
    )
    opt("--hidden", str, "hidden layer sizes, comma separated")
    opt("--activation", str, "relu | sigmoid | tanh | leakyrelu | relu6 | swish | mish | hswish | tanhexp")
    opt("--hswish-n", float, "n of the generalised h-swish")
    opt("--optimizer", str, " | ".join(OPTIMIZERS))
    opt("--lr", float, "learning rate")
    opt("--momentum", float, "momentum of momentum/nesterov")
    opt("--batch-size", int, "mini-batch size")
    opt("--epochs", int, "epochs")
    opt("--seed", int, "seed of the initial weights and of the shuffling")
    opt("--flooding", float, "flood level b (off by default)")
    opt("--weight-decay", float, "L2 weight decay λ")
    opt("--dropout", float, "dropout probability after each hidden activation")
    opt(
        "--dtype",
        str,
        " | ".join(B.FLOAT_DTYPES) + " (float16/bfloat16 where the backend has them; "
        "float64 with --gradient numerical unless given)",
    )
    opt("--init", str, "he | xavier | <std> | auto (xavier for sigmoid/tanh, else he)")
    opt("--gradient", str, "backprop | numerical (central differences, 2 forwards per parameter: slow)")
    opt(
        "--schedule",
        str,
        "learning rate per epoch: constant | step[:SIZE[:GAMMA]] | exponential[:GAMMA] | cosine[:MIN_LR]",
    )
    opt("--warmup", int, "epochs of linear learning-rate warm-up before the schedule")
    opt("--clip-norm", float, "clip the gradients to this global norm each step")
    opt("--validation-split", float, "hold out this stratified fraction of the training data for validation")
    C.add_checked(
        p, "--patience", "stop after this many epochs without a lower validation loss (needs --validation-split)"
    )
    p.add_argument(
        "--restore-best",
        action="store_true",
        help="end with the weights of the lowest validation loss (needs --validation-split)",
    )
    p.add_argument("--batchnorm", action="store_true", help="BatchNorm after each hidden Affine")
    p.add_argument("--device", default=None, help="device of the backend (cupy: GPU index; torch: 'cuda:0')")
    p.add_argument("--data-path", default=None, help="folder holding the IDX files (mnist, fashion-mnist)")
    p.add_argument("--plot", default=None, help="write loss/accuracy curves to this PNG")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="DIR" if many else "PATH",
        help="a folder of run checkpoints, one per row: a rerun skips finished rows and resumes the others"
        if many
        else "write a run checkpoint here after every epoch (resume with --resume)",
    )
    C.add_checked(p, "--checkpoint-every", "checkpoint every K-th epoch (default 1)", metavar="K")
    if many:
        p.add_argument("--verbose", action="store_true", help="the model summary and every epoch of every run")


def train_parser() -> argparse.ArgumentParser:
    """``xpnet train``'s options."""
    p = C.Parser(
        prog="xpnet train",
        description="Train a model (an MLP, or the book's CNNs with --model) and print the articles' table row.",
    )
    add_training_options(p, many=False)
    p.add_argument("--save", default=None, help="save model + optimizer state to this .npz")
    p.add_argument("--history", default=None, help="write per-epoch records to this .json or .csv")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes of "
        "`mpiexec -n P xpnet train --distributed ...` (--batch-size is the global batch; docs/distributed.md)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="PATH",
        help="continue the run checkpointed in PATH, with its "
        "options (--epochs, --backend, --device, output and logging options may change)",
    )
    return p


def compare_parser() -> argparse.ArgumentParser:
    """``xpnet compare``'s options: ``train``'s, each taking a list of values."""
    p = C.Parser(
        prog="xpnet compare",
        description="Run every combination of the given values and "
        "print one table (lists: --activation relu,swish --lr 0.1 0.5).",
    )
    add_training_options(p, many=True)
    p.add_argument(
        "--history",
        default=None,
        help="write all runs' records to this .json or .csv "
        "(read back with xpnet.history.load_histories or xpnet.experiments.load_runs)",
    )
    C.add_checked(
        p,
        "--seeds",
        "run each configuration with seeds S..S+N-1 (S = --seed) and print mean ± sd (min–max) per column",
        metavar="N",
    )
    return p


def data_parser() -> argparse.ArgumentParser:
    """``xpnet data``'s options."""
    p = C.Parser(
        prog="xpnet data",
        description="Download a dataset's IDX files, verify their "
        "published SHA-256, and keep them where xpnet looks ($XPNET_DATA/NAME, else "
        "~/.cache/xpnet/NAME).",
    )
    p.add_argument("name", type=C.option_type("download"), metavar="NAME", help="the dataset: " + " | ".join(DOWNLOADS))
    p.add_argument("--dir", default=None, help="download into this folder instead of the cache")
    p.add_argument(
        "--mirror",
        action="append",
        default=None,
        metavar="URL",
        help="a base URL to fetch from (repeatable; replaces the built-in list and $XPNET_MIRRORS)",
    )
    return p


def given_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The options given on the command line (argparse fills in only the absent ones)."""
    unset = object()
    ns = parser.parse_args(argv, argparse.Namespace(**{a.dest: unset for a in parser._actions}))
    return {k for k, v in vars(ns).items() if v is not unset}

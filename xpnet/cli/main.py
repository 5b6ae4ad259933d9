"""``xpnet train | compare | bench | data`` — the articles' experiments from the command line.

Every option is checked before the first training step: a bad value ends the command with one line
naming the option and what is valid, exit status 2 (as argparse); a failure while running (data
not found, a download that fails, ...) with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import pathlib
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import backends as B
from ..data.datasets import DOWNLOADS, DownloadError, cache_dir, download
from ..experiments.config import DEFAULTS, SETTINGS, classes_of, load_data, run_config
from ..experiments.options import OptionError, cli_options, default_dtype
from ..experiments.seedstats import compare_seeds, format_seed_table, plot_bands
from ..optim.optimizers import OPTIMIZERS
from ..training import Trainer, distributed, memory
from ..training import checkpoint as ckpt
from ..training.history import plot_histories, save_histories
from ..training.validation import stratified_split
from ..utils.tables import markdown_table
from . import checks as C

TABLE_COLUMNS = ("train", "test", "best", "TS95", "TS97", "TS98", "time")
OPTIONAL_COLUMNS = ("val_epoch", "test@val", "wall", "ratio")
"""Shown when a row has them: the test accuracy at the lowest validation loss; wall time and its
ratio to the fastest run (``compare --gradient numerical,backprop``)."""


def _add_training_options(p: argparse.ArgumentParser, many: bool) -> None:
    """The options of ``train``; with ``many`` (``compare``) each takes a list of values (checked by
    :func:`compare_grid`); ``train``'s are converted and checked as they are parsed (:func:`C.option_type`)."""

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
    p.add_argument(
        "--patience",
        type=C.option_type("patience"),
        default=None,
        help="stop after this many epochs without a lower validation loss (needs --validation-split)",
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
    p.add_argument(
        "--checkpoint-every",
        type=C.option_type("checkpoint_every"),
        default=None,
        metavar="K",
        help="checkpoint every K-th epoch (default 1)",
    )
    if many:
        p.add_argument("--verbose", action="store_true", help="the model summary and every epoch of every run")


def data_line(
    name: str, data: Any, path: str | None = None, validation_split: float | None = None, seed: int = 0
) -> str:
    """What a run trains on, in one line: ``data: digits (8×8, embedded in xpnet), 1438 train / 359 test``."""
    (x, t), (xt, _) = data
    if x.ndim == 4:
        size = "×".join(map(str, x.shape[2:])) + (f"×{x.shape[1]} channels" if x.shape[1] > 1 else "")
    else:
        side = math.isqrt(x.shape[1])
        size = f"{side}×{side}" if side * side == x.shape[1] else f"{x.shape[1]} features"
    where = "embedded in xpnet" if name == "digits" else f"IDX files from {path}" if path else "IDX files"
    train = f"{x.shape[0]} train"
    if validation_split is not None:
        held = stratified_split(t, validation_split, seed)[1].size
        train += f" ({held} of them held out for validation)"
    return f"data: {name} ({size}, {classes_of(t)} classes, {where}), {train} / {xt.shape[0]} test"


def loss_warning(command: str, classes: int, run: str = "") -> Callable[[Any, dict[str, Any]], None]:
    """A ``Trainer`` callback for the command line: one warning line on stderr, the first time an epoch
    ends with a training loss above ln(classes) (worse than a uniform guess; training diverges). The run
    goes on; the Python API adds no such callback and stays silent."""
    limit = math.log(classes)
    warned = False

    def check(trainer: Trainer, record: dict[str, Any]) -> None:
        nonlocal warned
        loss = record["train_loss"]
        if not warned and trainer.comm.is_root and loss > limit:
            warned = True
            print(
                f"xpnet {command}: warning: {run}epoch {record['epoch']} ended with a training loss of {loss:.4g}, "
                f"above ln({classes}) = {limit:.4f} (a uniform guess): training diverges, try a lower --lr; "
                f"the run goes on",
                file=sys.stderr,
                flush=True,
            )

    return check


def timed_rows(rows: list[tuple[dict[str, Any], list[Any]]], ratio: bool) -> list[tuple[dict[str, Any], dict]]:
    """``compare``'s one-seed rows ``(cfg, [history])`` → ``(cfg, summary)``; with ``ratio`` (the gradient
    mode varies) each summary gains ``wall`` (seconds of the whole run) and ``ratio`` (to the fastest)."""
    out = [(cfg, runs[0].summary()) for cfg, runs in rows]
    if ratio:
        walls = [runs[0].config["wall_seconds"] for _, runs in rows]
        for (_, summary), wall in zip(out, walls):
            summary.update(wall=wall, ratio=wall / min(walls))
    return out


def format_table(rows: list[tuple[dict[str, Any], dict[str, Any]]], keys: Sequence[str]) -> str:
    """The articles' result table: the varied settings, then train/test/best %, TS95/97/98, time
    (and :data:`OPTIONAL_COLUMNS` where a row has them)."""
    columns = [*TABLE_COLUMNS, *(c for c in OPTIONAL_COLUMNS if any(c in summary for _, summary in rows))]
    header = [*keys, *columns]

    def cell(v: Any, col: str) -> str:
        if v is None:
            return "–"
        if col in ("train", "test", "best", "test@val"):
            return f"{v:.2f}"
        if col in ("time", "wall"):
            return f"{v:.1f} s" if col == "time" else f"{v:.3g} s"
        if col == "ratio":
            return f"{v:.0f}×" if v >= 10 else f"{v:.2f}×"
        return str(v)

    body = [[str(cfg[k]) for k in keys] + [cell(summary.get(c), c) for c in columns] for cfg, summary in rows]
    return markdown_table(header, body)


def _explicit(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The options given on the command line (argparse fills in only the absent ones)."""
    unset = object()
    ns = parser.parse_args(argv, argparse.Namespace(**{a.dest: unset for a in parser._actions}))
    return {k for k, v in vars(ns).items() if v is not unset}


def check_runs(cfgs: list[dict[str, Any]], given: set[str], device: Any) -> None:
    """Every run's every value, its model's options, backend and dtype: before the first step."""
    backends: dict[Any, B.Backend] = {}
    C.check_unused_options(cfgs, given)
    for cfg in cfgs:
        for key in C.CHECKS:
            if key in cfg:
                C.convert(key, cfg[key])
        C.check_model_options(cfg, given)
        if cfg["backend"] not in backends:
            backends[cfg["backend"]] = C.resolve(cfg["backend"], device)
        C.check_dtype(backends[cfg["backend"]], cfg["dtype"])
        if cfg["model"] == "mlp" and (
            why := memory.for_config(cfg, backends[cfg["backend"]], C.hidden_sizes(cfg["hidden"]))
        ):
            raise C.UsageError("hidden", why)  # before the model is built (xpnet/memory.py)


def _run_label(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with the backend as resolved (``None`` → ``$XPNET_BACKEND`` or numpy)."""
    return {**cfg, "backend": cfg["backend"] or os.environ.get("XPNET_BACKEND") or "numpy"}


def cmd_train(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    comm = distributed.init() if args.distributed else None
    if args.resume:
        cfg = _resumed_config(args, argv)
    else:
        cfg = {k: getattr(args, k) for k in (*SETTINGS, "batchnorm", "patience", "restore_best")}
        cli_options(cfg)  # options checked before the data is loaded
        cfg["dtype"] = default_dtype(cfg, given=any(a.split("=")[0] == "--dtype" for a in argv))
        _refuse_existing(args.checkpoint)
    check_runs([cfg], _explicit(_train_parser(), argv), args.device)
    C.check_output("save", args.save, (".npz",))
    C.check_output("checkpoint", args.checkpoint)
    C.check_output("history", args.history, (".json", ".csv"))
    C.check_plot(args.plot)
    cfg["data_path"] = args.data_path if args.data_path is not None else cfg.get("data_path")
    data = load_data(cfg["dataset"], cfg["data_path"], images=cfg["model"] != "mlp")
    root = comm is None or comm.is_root
    if root:
        print(data_line(cfg["dataset"], data, cfg["data_path"], cfg.get("validation_split"), cfg["seed"]), flush=True)
    done_before = len(ckpt.info(args.resume)["history"]["records"]) if args.resume else 0
    start = time.perf_counter()
    model, optimizer, history = run_config(
        cfg,
        data,
        args.device,
        verbose=not args.quiet,
        comm=comm,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        callbacks=[loss_warning("train", classes_of(data[0][1]))],
    )
    wall = time.perf_counter() - start
    if not root:
        return 0  # rank 0 prints the table, saves and plots
    print(format_table([(cfg, history.summary())], ["model" if cfg["model"] != "mlp" else "activation"]))
    print(wall_time_line(wall, history, done_before))
    if args.save:
        model.save(args.save, optimizer=optimizer)
        print(f"model saved to {args.save}")
    if args.history:
        history.save(args.history)
    if args.plot:
        history.plot(args.plot, label=cfg["activation"])
    return 0


def wall_time_line(wall: float, history: Any, done_before: int = 0) -> str:
    """The time of this invocation, and of the run's training and per-epoch evaluation: for a resumed
    run (``done_before`` epochs were recorded by earlier invocations) both this invocation's epochs and
    the whole run's, each figure saying what it covers."""
    records = history.records
    mine = sum(r["seconds"] for r in records[done_before:])
    if not done_before:
        return f"wall time {wall:.1f} s (training and per-epoch evaluation: {mine:.1f} s)"
    if len(records) > done_before:
        now = f"epochs {records[done_before]['epoch']}–{records[-1]['epoch']}"
    else:
        now = "no epoch left to train"
    return (
        f"wall time of this invocation {wall:.1f} s ({now}: training and per-epoch evaluation {mine:.1f} s); "
        f"the whole run, {len(records)} epochs over all invocations: {history.total_seconds:.1f} s of training "
        f"and per-epoch evaluation (the table's time)"
    )


def compare_grid(args: argparse.Namespace) -> dict[str, list[Any]]:
    """Per setting, the values to run (each comma-separated item split, converted and checked)."""
    defaults = {a.dest: a.default for a in _train_parser()._actions if a.dest in SETTINGS}
    grid: dict[str, list[Any]] = {}
    for key, default in defaults.items():
        given = getattr(args, key)
        values = [v for item in given for v in (item.split(",") if key != "hidden" else [item])] if given else [default]
        grid[key] = [C.convert(key, v) if v is not None else v for v in values]
    return grid


def cmd_compare(args: argparse.Namespace) -> int:
    grid = compare_grid(args)
    try:
        seeds = compare_seeds(grid.pop("seed"), args.seeds)
    except ValueError as e:  # "--seed lists a seed twice ..." or "--seeds N runs ..."
        option, _, message = str(e).partition(" ")
        raise C.UsageError(option.removeprefix("--").replace("-", "_"), message) from None
    if args.dtype is None and "numerical" in grid["gradient"]:
        grid["dtype"] = ["float64"]  # one dtype for all runs, so that only the gradient differs
    varied = [k for k, v in grid.items() if len(v) > 1] or ["activation"]
    cfgs = [
        dict(
            zip(grid, combo),
            batchnorm=args.batchnorm,
            patience=args.patience,
            restore_best=args.restore_best,
            seed=seeds[0],
        )
        for combo in itertools.product(*grid.values())
    ]
    for cfg in cfgs:
        cli_options(cfg)  # every run's options checked before the first one trains
    given = {k for k in SETTINGS if getattr(args, k) is not None} | ({"batchnorm"} if args.batchnorm else set())
    check_runs(cfgs, given, args.device)
    C.check_output("history", args.history, (".json", ".csv"))
    C.check_plot(args.plot)
    rows, histories, datasets = [], {}, {}
    runs_done, total = 0, len(cfgs) * len(seeds)
    for cfg in cfgs:
        label = ", ".join(f"{k}={cfg[k]}" for k in varied)
        images = cfg["model"] != "mlp"
        if (cfg["dataset"], images) not in datasets:
            datasets[cfg["dataset"], images] = load_data(cfg["dataset"], args.data_path, images)
            if not args.quiet:
                print(data_line(cfg["dataset"], datasets[cfg["dataset"], images], args.data_path), flush=True)
        runs = []
        for s in seeds:
            name = label + (f", seed={s}" if len(seeds) > 1 else "")
            if args.verbose:
                print(f"== {name}", flush=True)
            run = {**cfg, "seed": s}
            row = _row_checkpoint(args.checkpoint, run) if args.checkpoint else None  # resumed when it exists
            start = time.perf_counter()
            history = run_config(
                run,
                datasets[cfg["dataset"], images],
                args.device,
                verbose=args.verbose,
                checkpoint=row,
                checkpoint_every=args.checkpoint_every,
                resume=row if row is not None and row.exists() else None,
                callbacks=[loss_warning("compare", classes_of(datasets[cfg["dataset"], images][0][1]), f"{name}: ")],
            )[2]
            history.config["wall_seconds"] = time.perf_counter() - start
            runs.append(history)
            runs_done += 1
            if not args.quiet:
                summary = history.summary()
                print(
                    f"[{runs_done}/{total}] {name}: test {_pct(summary['test'])}, best {_pct(summary['best'])}, "
                    f"{summary['time']:.1f} s",
                    flush=True,
                )
        rows.append((_run_label(cfg), runs))
        histories[label] = runs
    if len(seeds) == 1:
        print(format_table(timed_rows(rows, "gradient" in varied), varied))
    else:
        print(format_seed_table(rows, varied))
    if args.plot and len(seeds) > 1:
        plot_bands(histories, args.plot)
    elif args.plot:
        plot_histories({k: v[0] for k, v in histories.items()}, args.plot)
    if args.history:
        save_histories(
            {
                label + (f", seed={h.config['seed']}" if len(seeds) > 1 else ""): h
                for label, runs in histories.items()
                for h in runs
            },
            args.history,
        )
    return 0


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} %"


def cmd_data(args: argparse.Namespace) -> int:
    """``xpnet data NAME``: download and verify a dataset's files, say where they are."""
    folder = download(args.name, args.dir, args.mirror, log=lambda line: print(f"{args.name}: {line}", flush=True))
    print(f"{args.name}: {len(DOWNLOADS[args.name]['files'])} files in {folder}")
    if args.dir is not None and pathlib.Path(args.dir).resolve() != cache_dir(args.name).resolve():
        print(f"use them with: xpnet train --dataset {args.name} --data-path {folder}")
    else:
        print(f"xpnet train --dataset {args.name} (and load_{args.name.replace('-', '_')}()) find them there")
    return 0


def _data_parser() -> argparse.ArgumentParser:
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


def _compare_parser() -> argparse.ArgumentParser:
    p = C.Parser(
        prog="xpnet compare",
        description="Run every combination of the given values and "
        "print one table (lists: --activation relu,swish --lr 0.1 0.5).",
    )
    _add_training_options(p, many=True)
    p.add_argument(
        "--history",
        default=None,
        help="write all runs' records to this .json or .csv "
        "(read back with xpnet.history.load_histories or xpnet.experiments.load_runs)",
    )
    p.add_argument(
        "--seeds",
        type=C.option_type("seeds"),
        default=None,
        metavar="N",
        help="run each configuration with seeds S..S+N-1 (S = --seed) and print mean ± sd (min–max) per column",
    )
    return p


def _train_parser() -> argparse.ArgumentParser:
    p = C.Parser(
        prog="xpnet train",
        description="Train a model (an MLP, or the book's CNNs with --model) and print the articles' table row.",
    )
    _add_training_options(p, many=False)
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


COMMANDS = {
    "train": "train a model (default: the digits MLP, offline, seconds)",
    "compare": "train several configurations and print one comparison table",
    "bench": "time xpnet against PyTorch and the GEMM bound (the matrix products alone) on each backend",
    "data": "download a dataset (mnist, fashion-mnist) and verify its checksums",
}


def version() -> str:
    """``xpnet.__version__``: the package metadata's version (pyproject.toml's in a source checkout)."""
    from .. import __version__

    return __version__


def _usage(out: Any) -> None:
    print("usage: xpnet {train,compare,bench,data} [options]   (xpnet <command> --help; xpnet --version)", file=out)
    for name, text in COMMANDS.items():
        print(f"  {name:8s} {text}", file=out)


def _dispatch(command: str, rest: list[str]) -> int:
    if command == "train":
        return cmd_train(_train_parser().parse_args(rest), rest)
    if command == "compare":
        return cmd_compare(_compare_parser().parse_args(rest))
    if command == "data":
        return cmd_data(_data_parser().parse_args(rest))
    from ..experiments.bench import main as bench_main

    return bench_main(rest)


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
    except C.UsageError as e:
        print(f"xpnet {command}: error: {e}", file=sys.stderr)
        distributed.stop_all()  # under MPI: the other ranks must not wait for this one
        return 2
    except OptionError as e:
        print(f"xpnet {command}: error: {e}", file=sys.stderr)
        distributed.stop_all()
        return 2
    except BrokenPipeError:
        raise
    except (B.BackendUnavailableError, DownloadError, OSError, ValueError, ImportError) as e:
        print(f"xpnet {command}: error: {e}", file=sys.stderr)
        distributed.stop_all()  # under MPI: the other ranks must not wait for this one
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: one line, no traceback
        return _interrupted(command, rest, e)
    finally:
        undo()


# -- run checkpoints: --checkpoint, --resume, interrupts (xpnet/checkpoint.py) -----------------------
RESUME_MAY_CHANGE = (
    "epochs",
    "backend",
    "device",
    "data_path",
    "plot",
    "quiet",
    "save",
    "history",
    "checkpoint",
    "checkpoint_every",
    "resume",
    "distributed",
)
"""``train --resume`` options that leave the run's model, data and optimizer alone."""


def _resumed_config(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """The checkpointed run's options, with the changes ``--resume`` allows (others refused, one line)."""
    if not pathlib.Path(args.resume).is_file():
        raise C.UsageError("resume", f"{args.resume}: no such checkpoint file")
    saved = ckpt.info(args.resume).get("info", {}).get("cli")
    if not isinstance(saved, dict):
        raise C.UsageError(
            "resume",
            f"{args.resume} holds no xpnet train options (written by Trainer(checkpoint=...)?); "
            f"continue it in Python with Trainer.from_checkpoint",
        )
    parser = _train_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    for key, value in given.items():
        if key not in RESUME_MAY_CHANGE and value != saved.get(key, False):
            raise C.UsageError(
                key,
                f"{value} differs from the run's {saved.get(key)} in {args.resume}: a resumed run keeps its "
                f"model, data and optimizer (only --epochs, --backend, --device, output and logging may change)",
            )
    return {**saved, **{k: given[k] for k in ("epochs", "backend") if k in given}}


def _refuse_existing(path: str | None) -> None:
    """A new run does not overwrite a checkpoint: that is what --resume is for."""
    if path is not None and pathlib.Path(path).exists():
        raise C.UsageError(
            "checkpoint",
            f"{path} already exists: continue that run with `xpnet train --resume {path}`, "
            f"or remove the file to start over",
        )


def _row_checkpoint(folder: str, cfg: dict[str, Any]) -> pathlib.Path:
    """``compare``'s checkpoint of one row: named by its settings, so a rerun finds it."""
    key = json.dumps(cfg, sort_keys=True)
    label = "_".join(f"{k}-{cfg[k]}" for k in ("model", "activation", "optimizer", "lr"))
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{re.sub(r'[^A-Za-z0-9.,_-]', '', label)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.ckpt"


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

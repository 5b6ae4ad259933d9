"""``xpnet train``: one run, from its options or resumed from its checkpoint (``--resume``), and its
table row, wall time and output files."""

from __future__ import annotations

import argparse
import pathlib
import time
from collections.abc import Sequence
from typing import Any

from ..experiments.config import SETTINGS, classes_of, load_data, run_config
from ..experiments.options import cli_options, default_dtype
from ..training import checkpoint as ckpt
from ..training import distributed
from . import checks as C
from .parsers import given_options, train_parser
from .report import data_line, format_table, loss_warning

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


def cmd_train(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """``xpnet train``: every option checked, the data line, the run, its table row and wall time, then the
    files asked for (``--save``, ``--history``, ``--plot``); under MPI rank 0 prints and writes."""
    comm = distributed.init() if args.distributed else None
    if args.resume:
        cfg = resumed_config(args, argv)
    else:
        cfg = {k: getattr(args, k) for k in (*SETTINGS, "batchnorm", "patience", "restore_best")}
        cli_options(cfg)  # options checked before the data is loaded
        cfg["dtype"] = default_dtype(cfg, given=any(a.split("=")[0] == "--dtype" for a in argv))
        refuse_existing(args.checkpoint)
    C.check_runs([cfg], given_options(train_parser(), argv), args.device)
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


def resumed_config(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
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
    parser = train_parser()
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


def refuse_existing(path: str | None) -> None:
    """A new run does not overwrite a checkpoint: that is what --resume is for."""
    if path is not None and pathlib.Path(path).exists():
        raise C.UsageError(
            "checkpoint",
            f"{path} already exists: continue that run with `xpnet train --resume {path}`, "
            f"or remove the file to start over",
        )

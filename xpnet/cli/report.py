"""What ``xpnet train`` and ``xpnet compare`` print about their runs: the data line, the divergence
warning and the articles' result table."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..experiments.config import classes_of
from ..training import Trainer
from ..training.validation import stratified_split
from ..utils.tables import markdown_table

TABLE_COLUMNS = ("train", "test", "best", "TS95", "TS97", "TS98", "time")
OPTIONAL_COLUMNS = ("val_epoch", "test@val", "wall", "ratio")
"""Shown when a row has them: the test accuracy at the lowest validation loss; wall time and its
ratio to the fastest run (``compare --gradient numerical,backprop``)."""


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

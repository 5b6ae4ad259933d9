"""Per-epoch training records, the articles' summary row, JSON/CSV files and plots."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

FIELDS = ("epoch", "train_acc", "train_loss", "test_acc", "test_loss", "seconds")
OPTIONAL_FIELDS = ("val_acc", "val_loss", "lr")
"""Columns present only when the run had them (a validation set, a learning-rate schedule)."""


@dataclass
class History:
    """What :meth:`xpnet.Trainer.fit` returns. Accuracies are fractions in [0, 1]."""

    records: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> list[Any]:
        """A column: ``history["test_acc"]``."""
        return [r.get(name) for r in self.records]

    # the columns as attributes: history.test_acc, history.seconds (per epoch), ...
    epoch = property(lambda self: self["epoch"])
    train_acc = property(lambda self: self["train_acc"])
    train_loss = property(lambda self: self["train_loss"])
    test_acc = property(lambda self: self["test_acc"])
    test_loss = property(lambda self: self["test_loss"])
    seconds = property(lambda self: self["seconds"])
    val_acc = property(lambda self: self["val_acc"])
    val_loss = property(lambda self: self["val_loss"])
    lr = property(lambda self: self["lr"])

    def best_val_epoch(self) -> int | None:
        """The epoch of the lowest validation loss (the first of equal ones), or None without validation."""
        scored = [(r["val_loss"], r["epoch"]) for r in self.records if r.get("val_loss") is not None]
        return min(scored, key=lambda s: s[0])[1] if scored else None

    def epochs_to(self, accuracy: float, split: str = "test") -> int | None:
        """The first epoch whose accuracy reaches ``accuracy`` (the TS95/97/98 columns), or None."""
        for r in self.records:
            if r.get(f"{split}_acc") is not None and r[f"{split}_acc"] >= accuracy:
                return r["epoch"]
        return None

    @property
    def total_seconds(self) -> float:
        return sum(r["seconds"] for r in self.records)

    def best(self, split: str = "test") -> float | None:
        values = [v for v in self[f"{split}_acc"] if v is not None]
        return max(values) if values else None

    def summary(self) -> dict[str, Any]:
        """The articles' table row: final train/test accuracy (%), best test, TS95/97/98, time (s).

        With a validation set, also the epoch of the lowest validation loss (``val_epoch``) and the test
        accuracy at that epoch (``test@val``): the honest "best", chosen without looking at the test set.
        """
        last = self.records[-1] if self.records else {}

        def pct(v: float | None) -> float | None:
            return None if v is None else round(100 * v, 2)

        at_val = self.best_val_epoch()
        extra = {} if at_val is None else {
            "val_epoch": at_val, "test@val": pct(next(r.get("test_acc") for r in self.records if r["epoch"] == at_val))}
        return {
            "train": pct(last.get("train_acc")),
            "test": pct(last.get("test_acc")),
            "best": pct(self.best()),
            "TS95": self.epochs_to(0.95),
            "TS97": self.epochs_to(0.97),
            "TS98": self.epochs_to(0.98),
            "time": round(self.total_seconds, 1),
            **extra,
        }

    # -- files ----------------------------------------------------------------------------
    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The records, config and summary as JSON (also written to ``path`` if given)."""
        text = json.dumps({"config": self.config, "records": self.records, "summary": self.summary()}, indent=2)
        if path is not None:
            pathlib.Path(path).write_text(text)
        return text

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """One row per epoch (also written to ``path`` if given)."""
        out = io.StringIO()
        extra = [f for f in OPTIONAL_FIELDS if any(f in r for r in self.records)]
        writer = csv.DictWriter(out, fieldnames=[*FIELDS, *extra], extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.records)
        if path is not None:
            pathlib.Path(path).write_text(out.getvalue())
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        """Write ``.json`` (records, config, summary) or ``.csv`` (records), by the file's suffix."""
        path = pathlib.Path(path)
        if path.suffix not in (".json", ".csv"):
            raise ValueError(f"{path}: history files end in .json or .csv")
        path.write_text(self.to_json() if path.suffix == ".json" else self.to_csv())

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        data = json.loads(pathlib.Path(path).read_text())
        return cls(records=data["records"], config=data.get("config", {}))

    def plot(self, path: str | os.PathLike, label: str | None = None) -> None:
        """Loss and accuracy curves (train and test) as a PNG; needs matplotlib (``xpnet[plot]``)."""
        plot_histories({label or "": self}, path)


def plot_histories(histories: dict[str, History], path: str | os.PathLike) -> None:
    """One figure, loss on the left and accuracy on the right, a pair of curves per history."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: pip install "xpnet[plot]"') from e
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, h in histories.items():
        prefix = f"{label} " if label else ""
        for split, style in (("train", "--"), ("test", "-")):
            if any(v is not None for v in h[f"{split}_acc"]):
                ax_loss.plot(h["epoch"], h[f"{split}_loss"], style, label=f"{prefix}{split}")
                ax_acc.plot(h["epoch"], [100 * v for v in h[f"{split}_acc"]], style, label=f"{prefix}{split}")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

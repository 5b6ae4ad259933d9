"""Per-epoch training records, the articles' summary row, JSON/CSV files and plots.

Units: accuracies in records, :meth:`History.epochs_to` and :meth:`History.best` are fractions in
[0, 1] (as ``model.accuracy``); :meth:`History.summary` gives the articles' percent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

from ..utils import atomic

FIELDS = ("epoch", "train_acc", "train_loss", "test_acc", "test_loss", "seconds")
OPTIONAL_FIELDS = ("val_acc", "val_loss", "lr")
"""Columns present only when the run had them (a validation set, a learning-rate schedule)."""


@dataclass
class History:
    """What :meth:`xpnet.Trainer.fit` returns. Accuracies are fractions in [0, 1] (``summary()``: percent)."""

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
        """The first epoch whose accuracy reaches ``accuracy``, a fraction (0.97, not 97), or None.

        The TS95/97/98 columns of :meth:`summary` are ``epochs_to(0.95)``, ... ."""
        if not 0 <= accuracy <= 1:
            raise ValueError(f"epochs_to takes a fraction in [0, 1] (0.97 for 97 %), got {accuracy}")
        for r in self.records:
            if r.get(f"{split}_acc") is not None and r[f"{split}_acc"] >= accuracy:
                return r["epoch"]
        return None

    @property
    def total_seconds(self) -> float:
        return sum(r["seconds"] for r in self.records)

    def best(self, split: str = "test") -> float | None:
        """The highest accuracy of ``split`` as a fraction, or None."""
        values = [v for v in self[f"{split}_acc"] if v is not None]
        return max(values) if values else None

    def summary(self) -> dict[str, Any]:
        """The articles' table row: final train/test accuracy and best test in **percent** (97.79),
        TS95/97/98 (the first epoch reaching 95/97/98 % test accuracy), time (s).

        With a validation set, also the epoch of the lowest validation loss (``val_epoch``) and the test
        accuracy at that epoch (``test@val``): the honest "best", chosen without looking at the test set.
        """
        last = self.records[-1] if self.records else {}

        def pct(v: float | None) -> float | None:
            return None if v is None else round(100 * v, 2)

        at_val = self.best_val_epoch()
        extra = (
            {}
            if at_val is None
            else {
                "val_epoch": at_val,
                "test@val": pct(next(r.get("test_acc") for r in self.records if r["epoch"] == at_val)),
            }
        )
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
            atomic.write_text(path, text)
        return text

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """One row per epoch, the columns of :data:`FIELDS` then any others (also written to ``path`` if given).

        The records only: the config is kept by JSON files."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_columns([self]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.records)
        if path is not None:
            atomic.write_text(path, out.getvalue())
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        """Write ``.json`` (records, config, summary) or ``.csv`` (records), by the file's suffix, atomically
        (:func:`xpnet.utils.atomic.atomic_write`: a failure leaves the previous file as it was)."""
        path = _suffix(path)
        atomic.write_text(path, self.to_json() if path.suffix.lower() == ".json" else self.to_csv())

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """A history written by :meth:`save` (``.json`` or ``.csv``, by the file's suffix)."""
        runs = load_histories(path)
        if len(runs) != 1:
            raise ValueError(f"{path}: holds {len(runs)} runs (written by compare): read it with load_histories")
        return next(iter(runs.values()))

    def plot(self, path: str | os.PathLike, label: str | None = None) -> None:
        """Loss and accuracy curves (train and test) as a PNG; needs matplotlib (``xpnet[plot]``)."""
        plot_histories({label or "": self}, path)


def _suffix(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"{path}: history files end in .json or .csv")
    return path


def _columns(histories: list[History]) -> list[str]:
    extra = {k: None for h in histories for r in h.records for k in r if k not in FIELDS}
    return [*FIELDS, *extra]


def _number(text: str) -> Any:
    """A CSV cell back to what it was: '' → None, integers, floats; other text stays text."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


RUN = "run"
"""The CSV column naming each run in a file of several runs (``compare --history runs.csv``)."""


def save_histories(histories: dict[str, History], path: str | os.PathLike) -> None:
    """Several labelled runs in one file: ``.json`` (a list of {label, config, records, summary})
    or ``.csv`` (one row per run and epoch, the label in a ``run`` column)."""
    path = _suffix(path)
    if path.suffix.lower() == ".json":
        runs = [{"label": label, **json.loads(h.to_json())} for label, h in histories.items()]
        atomic.write_text(path, json.dumps(runs, indent=2) + "\n")
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[RUN, *_columns(list(histories.values()))], lineterminator="\n")
    writer.writeheader()
    for label, h in histories.items():
        writer.writerows({RUN: label, **r} for r in h.records)
    atomic.write_text(path, out.getvalue())


def load_histories(path: str | os.PathLike) -> dict[str, History]:
    """The runs of a file written by :func:`save_histories` or :meth:`History.save`, by label."""
    path = _suffix(path)
    with atomic.open_regular(path) as f:  # a named pipe is refused, not waited on
        try:
            text = f.read().decode()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not an xpnet history file ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
            runs = data.get("runs", [data]) if isinstance(data, dict) else data  # also xpnet.experiments.save_runs
            labels = [r.get("label", "" if len(runs) == 1 else f"run {i + 1}") for i, r in enumerate(runs)]
            return {label: History(records=r["records"], config=r.get("config", {})) for label, r in zip(labels, runs)}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not an xpnet history file ({e})") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "epoch" not in rows[0]:
        raise ValueError(f"{path}: not an xpnet history file (no 'epoch' column)")
    out: dict[str, History] = {}
    for row in rows:
        label = row.pop(RUN, None) or ""
        # a column that only some runs or epochs have: absent where empty
        out.setdefault(label, History()).append({k: _number(v) for k, v in row.items() if k in FIELDS or v != ""})
    return out or {"": History()}


def plot_histories(histories: dict[str, History], path: str | os.PathLike):
    """Loss and accuracy curves, one panel per metric: a colour per run, solid test and dashed train,
    one legend (runs by colour, splits by style) outside the axes.
    Returns the (closed) matplotlib figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: pip install "xpnet[plot]"') from e
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    n = len(histories)
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    colours = [cmap(i) for i in range(cmap.N)]  # a colour per run (cycles past 20)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12 if n > 1 else 10, 4.2))
    handles = []
    for i, (label, h) in enumerate(histories.items()):
        colour = colours[i % len(colours)]
        for split, style in (("train", "--"), ("test", "-")):  # a line style per split
            if any(v is not None for v in h[f"{split}_acc"]):
                ax_loss.plot(h["epoch"], h[f"{split}_loss"], style, color=colour, linewidth=1.3)
                ax_acc.plot(
                    h["epoch"],
                    [None if v is None else 100 * v for v in h[f"{split}_acc"]],
                    style,
                    color=colour,
                    linewidth=1.3,
                )
        handles.append(Line2D([], [], color=colour, linewidth=2.5, label=label or "run"))
    handles += [
        Line2D([], [], color="black", linestyle="-", label="test"),
        Line2D([], [], color="black", linestyle="--", label="train"),
    ]
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(name.split(" ")[0])
        ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return fig

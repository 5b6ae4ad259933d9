"""Statistics of repeated runs over seeds: aggregate them (mean ± sd, min–max), tabulate, save, reload, plot.

Running them is :mod:`xpnet.experiments` (above the command line, whose training it uses); these
functions only read :class:`~xpnet.History` objects, so the command line can use them too.

A single MNIST run moves by a few tenths of a point with the seed, so a table row is a set of runs
with seeds ``S, S+1, …, S+N-1`` (each seed fixes both the initial weights and the data order), and
each column is reported as mean ± standard deviation over those runs::

    from xpnet.experiments import run_seeds, aggregate, load_runs
    histories = run_seeds({"activation": "swish", "epochs": 5}, seeds=seeds_from(10, 5))
    stats = aggregate(histories)          # {"test": {"mean": .., "sd": .., "min": .., "max": .., "n": 5}, ...}
    save_runs("runs.json", histories)     # every run's per-epoch records
    histories = load_runs("runs.json")    # back into History objects

The standard deviation is the sample one (``ddof=1``; 0 for a single run). Epochs-to-target columns
(TS95/97/98) average only the runs that reached the target and count them: ``6.2 (4/5)``.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..training.history import History
from ..utils import atomic
from ..utils.tables import markdown_table

__all__ = [
    "COLUMNS",
    "CURVES",
    "TARGET_COLUMNS",
    "VALUE_COLUMNS",
    "aggregate",
    "compare_seeds",
    "curve_stats",
    "format_seed_table",
    "format_stat",
    "group_runs",
    "load_runs",
    "markdown_table",
    "plot_bands",
    "save_runs",
    "seeds_from",
    "stat",
    "within",
]

VALUE_COLUMNS = ("train", "test", "best", "time")
"""Summary columns aggregated as mean ± sd (min–max)."""
TARGET_COLUMNS = ("TS95", "TS97", "TS98")
"""Epochs-to-target columns: mean over the runs that reached the target, and how many did."""
COLUMNS = ("train", "test", "best", "TS95", "TS97", "TS98", "time")

CURVES = ("train_loss", "test_loss", "train_acc", "test_acc")
"""The per-epoch metrics plotted, one panel each."""


# -- seeds and configurations --------------------------------------------------------------------
def seeds_from(seed: int, n: int) -> list[int]:
    """``[seed, seed+1, …, seed+n-1]``: the seeds of one row of ``xpnet compare --seeds n``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--seeds must be a whole number >= 1, got {n!r}")
    return [int(seed) + i for i in range(n)]


def compare_seeds(given: Sequence[int], n: int | None) -> list[int]:
    """The seeds of every row of ``xpnet compare``: the ``--seed`` list, or ``S..S+N-1`` with ``--seeds N``."""
    given = [int(s) for s in given]
    if len(set(given)) != len(given):
        raise ValueError(f"--seed lists a seed twice ({' '.join(map(str, given))}): each seed is one run")
    if n is None:
        return given
    if len(given) != 1:
        raise ValueError(
            f"--seeds {n} runs seeds S..S+{n}-1 from one --seed S; got --seed {' '.join(map(str, given))}"
            " (give either one --seed with --seeds, or a list of seeds without it)"
        )
    return seeds_from(given[0], n)


# -- aggregation ---------------------------------------------------------------------------------
def stat(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "sd", "min", "max", "n"}`` of the values (sd with ``ddof=1``; 0 for one value)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "n": n}


def aggregate(histories: Sequence[History]) -> dict[str, dict[str, Any]]:
    """Per summary column, the statistics over runs (one history per seed).

    ``train``/``test``/``best`` (%) and ``time`` (s): :func:`stat` over the runs that have a value.
    ``TS95``/``TS97``/``TS98``: ``{"mean", "sd", "min", "max", "reached", "n"}`` over only the runs that
    reached the target (``mean`` is None when none did), ``reached`` of ``n`` runs.
    """
    if not histories:
        raise ValueError("aggregate needs at least one history")
    summaries = [h.summary() for h in histories]
    out: dict[str, dict[str, Any]] = {}
    for col in VALUE_COLUMNS:
        out[col] = stat([s[col] for s in summaries if s.get(col) is not None])
    for col in TARGET_COLUMNS:
        reached = [s[col] for s in summaries if s.get(col) is not None]
        out[col] = {**stat(reached), "reached": len(reached), "n": len(summaries)}
    return out


def curve_stats(histories: Sequence[History], metric: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and sd (``ddof=1``) of one per-epoch metric over the runs that have that epoch."""
    by_epoch: dict[int, list[float]] = {}
    for h in histories:
        for r in h.records:
            if r.get(metric) is not None:
                by_epoch.setdefault(int(r["epoch"]), []).append(float(r[metric]))
    epochs = sorted(by_epoch)
    stats = [stat(by_epoch[e]) for e in epochs]
    return epochs, [s["mean"] for s in stats], [s["sd"] for s in stats]


def format_stat(col: str, s: Mapping[str, Any], spread: bool = True) -> str:
    """One table cell: ``97.74 ± 0.05 (97.70–97.79)``, ``6.2 (4/5)``, ``14.1 ± 0.3 s``."""
    if col in TARGET_COLUMNS:
        mean = "–" if s["mean"] is None else f"{s['mean']:.1f}"
        return f"{mean} ({s['reached']}/{s['n']})"
    if s["mean"] is None:
        return "–"
    if col == "time":
        return f"{s['mean']:.1f} ± {s['sd']:.1f} s"
    cell = f"{s['mean']:.2f} ± {s['sd']:.2f}"
    return cell + (f" ({s['min']:.2f}–{s['max']:.2f})" if spread else "")


def format_seed_table(rows: Sequence[tuple[Mapping[str, Any], Sequence[History]]], keys: Sequence[str]) -> str:
    """The articles' table, one row per configuration, every column aggregated over its seeds."""
    header = [*keys, "seeds", *COLUMNS]
    body = []
    for cfg, histories in rows:
        stats = aggregate(histories)
        seeds = sorted(int(h.config.get("seed", 0)) for h in histories)
        body.append([str(cfg[k]) for k in keys] + [_seed_range(seeds)] + [format_stat(c, stats[c]) for c in COLUMNS])
    return markdown_table(header, body)


def _seed_range(seeds: Sequence[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ",".join(map(str, seeds))


def within(published: float, s: Mapping[str, Any], k: float = 2.0) -> bool:
    """Whether ``published`` lies within ``k`` standard deviations of the mean of ``s``."""
    return abs(float(published) - s["mean"]) <= k * s["sd"] + 1e-9


# -- files ---------------------------------------------------------------------------------------
def save_runs(path: str | os.PathLike, histories: Iterable[History], **extra: Any) -> None:
    """Write every run's history (config, records, summary) to one JSON file readable by :func:`load_runs`.

    The file is a JSON list of histories (the format ``xpnet compare --history`` always wrote); with
    ``extra`` keys (e.g. ``meta``: machine, versions, command) it is ``{**extra, "runs": [...]}``.
    """
    runs = [json.loads(h.to_json()) for h in histories]
    atomic.write_text(path, json.dumps({**extra, "runs": runs} if extra else runs, indent=1) + "\n")


def load_runs(path: str | os.PathLike) -> list[History]:
    """The histories of a runs file (``xpnet compare --history runs.json``, :func:`save_runs`, the
    reproduction tables' JSON); a plain list of history objects, or one history, is read too."""
    data = json.loads(pathlib.Path(path).read_text())
    runs = data.get("runs") if isinstance(data, dict) and "runs" in data else data
    if isinstance(runs, dict):
        runs = [runs]
    if not isinstance(runs, list) or not all(isinstance(r, dict) and "records" in r for r in runs):
        raise ValueError(f"{path}: not a runs file (expected a list of histories with 'records', or {{'runs': [...]}})")
    return [History(records=r["records"], config=r.get("config", {})) for r in runs]


def group_runs(histories: Iterable[History], keys: Sequence[str] | None = None) -> dict[str, list[History]]:
    """Histories grouped by their configuration without the seed (or by ``keys`` only), in first-seen order.

    The group label names the settings that differ between groups (``activation=relu, lr=0.1``).
    """
    histories = list(histories)

    def ident(h: History) -> tuple:
        cfg = {k: v for k, v in h.config.items() if k != "seed" and (keys is None or k in keys)}
        return tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in cfg.items()))

    groups: dict[tuple, list[History]] = {}
    for h in histories:
        groups.setdefault(ident(h), []).append(h)
    varied = keys or sorted({k for g in groups for k, v in g if len({dict(o).get(k) for o in groups}) > 1})
    out: dict[str, list[History]] = {}
    for hs in groups.values():
        cfg = hs[0].config
        out[", ".join(f"{k}={cfg.get(k)}" for k in varied) or "run"] = hs
    return out


# -- plots ---------------------------------------------------------------------------------------
def plot_bands(
    groups: Mapping[str, Sequence[History]],
    path: str | os.PathLike,
    metrics: Sequence[str] = CURVES,
    title: str | None = None,
) -> None:
    """One panel per metric: the mean curve of each group with a ±1 sd band over its seeds, legend outside.

    Accuracies are drawn in %. Needs matplotlib (``xpnet[plot]``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: pip install "xpnet[plot]"') from e
    metrics = [
        m for m in metrics if any(h[m] and any(v is not None for v in h[m]) for hs in groups.values() for h in hs)
    ]
    if not metrics:
        raise ValueError(f"none of the histories has a per-epoch {' / '.join(CURVES)} to plot")
    cols = min(2, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols + 3.2, 3.6 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        scale = 100.0 if metric.endswith("_acc") else 1.0
        late: list[float] = []  # accuracies after the first tenth of training set the y range
        for label, hs in groups.items():
            epochs, mean, sd = curve_stats(hs, metric)
            if not epochs:
                continue
            late += [scale * m for e, m in zip(epochs, mean) if e > max(epochs) // 10]
            lo = [scale * (m - s) for m, s in zip(mean, sd)]
            hi = [scale * (m + s) for m, s in zip(mean, sd)]
            (line,) = ax.plot(epochs, [scale * m for m in mean], label=f"{label} (n={len(hs)})", lw=1.2)
            ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        if metric.endswith("_loss"):
            ax.set_yscale("log")
        elif late:
            ax.set_ylim(bottom=max(0.0, min(late) - 0.5), top=min(100.5, max(late) + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_acc", " accuracy (%)").replace("_loss", " loss").replace("_", " "))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title + " — mean ± 1 sd over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)

"""``xpnet compare``: every combination of the given values (over ``--seeds``), one line per finished
run, then one table; ``--checkpoint DIR`` keeps one checkpoint per row so that a rerun resumes."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import pathlib
import re
import time
from typing import Any

from ..experiments.config import SETTINGS, classes_of, load_data, run_config
from ..experiments.options import cli_options
from ..experiments.seedstats import compare_seeds, format_seed_table, plot_bands
from ..training.history import plot_histories, save_histories
from . import checks as C
from .parsers import train_parser
from .report import data_line, format_table, loss_warning


def compare_grid(args: argparse.Namespace) -> dict[str, list[Any]]:
    """Per setting, the values to run (each comma-separated item split, converted and checked)."""
    defaults = {a.dest: a.default for a in train_parser()._actions if a.dest in SETTINGS}
    grid: dict[str, list[Any]] = {}
    for key, default in defaults.items():
        given = getattr(args, key)
        values = [v for item in given for v in (item.split(",") if key != "hidden" else [item])] if given else [default]
        grid[key] = [C.convert(key, v) if v is not None else v for v in values]
    return grid


def cmd_compare(args: argparse.Namespace) -> int:
    """``xpnet compare``: every run's options checked before the first trains, then the runs and the table
    (mean ± sd over seeds with ``--seeds``), the plot and the histories asked for."""
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
    C.check_runs(cfgs, given, args.device)
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
            row = row_checkpoint(args.checkpoint, run) if args.checkpoint else None  # resumed when it exists
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


def timed_rows(rows: list[tuple[dict[str, Any], list[Any]]], ratio: bool) -> list[tuple[dict[str, Any], dict]]:
    """``compare``'s one-seed rows ``(cfg, [history])`` → ``(cfg, summary)``; with ``ratio`` (the gradient
    mode varies) each summary gains ``wall`` (seconds of the whole run) and ``ratio`` (to the fastest)."""
    out = [(cfg, runs[0].summary()) for cfg, runs in rows]
    if ratio:
        walls = [runs[0].config["wall_seconds"] for _, runs in rows]
        for (_, summary), wall in zip(out, walls):
            summary.update(wall=wall, ratio=wall / min(walls))
    return out


def row_checkpoint(folder: str, cfg: dict[str, Any]) -> pathlib.Path:
    """``compare``'s checkpoint of one row: named by its settings, so a rerun finds it."""
    key = json.dumps(cfg, sort_keys=True)
    label = "_".join(f"{k}-{cfg[k]}" for k in ("model", "activation", "optimizer", "lr"))
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{re.sub(r'[^A-Za-z0-9.,_-]', '', label)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.ckpt"


def _run_label(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with the backend as resolved (``None`` → ``$XPNET_BACKEND`` or numpy)."""
    return {**cfg, "backend": cfg["backend"] or os.environ.get("XPNET_BACKEND") or "numpy"}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} %"

"""Repeated runs over seeds: run them (:func:`run_seeds`), then aggregate, save, reload and plot them
(the statistics live in :mod:`xpnet.experiments.seedstats` and are re-exported here)::

    from xpnet.experiments import run_seeds, aggregate, load_runs, seeds_from
    histories = run_seeds({"activation": "swish", "epochs": 5}, seeds=seeds_from(10, 5))
    stats = aggregate(histories)          # {"test": {"mean": .., "sd": .., "min": .., "max": .., "n": 5}, ...}
    save_runs("runs.json", histories)     # every run's per-epoch records
    histories = load_runs("runs.json")    # back into History objects
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..training.history import History
from .config import default_config, load_data, run_config
from .seedstats import *  # noqa: F403 -- the statistics, under their old home
from .seedstats import __all__ as _stats_all

__all__ = ["default_config", "run_seeds", *_stats_all]


def run_seeds(
    cfg: Mapping[str, Any],
    seeds: Iterable[int],
    data: Any = None,
    data_path: str | None = None,
    device: Any = None,
    verbose: bool = False,
) -> list[History]:
    """Train the configuration ``cfg`` once per seed; the histories, in the order of ``seeds``.

    ``cfg`` holds ``xpnet train`` settings (missing ones take the command's defaults, see
    :func:`default_config`); its ``seed`` is replaced by each of ``seeds``. ``data`` is the dataset
    split as the loaders return it (loaded from ``cfg["dataset"]`` and ``data_path`` when None).
    """
    base = default_config(**dict(cfg))
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    if data is None:
        data = load_data(base["dataset"], data_path, images=base["model"] != "mlp")
    histories = []
    for s in seeds:
        _, _, history = run_config({**base, "seed": int(s)}, data, device, verbose=verbose)
        histories.append(history)
    return histories

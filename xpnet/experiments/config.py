"""One run from its settings, for the command line and the experiment tools alike: the settings and
their defaults (:data:`DEFAULTS`, ``xpnet train``'s with no options), the data set they name
(:func:`load_data`), the model (:func:`build_model`), and the whole run (:func:`run_config`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backends as B
from ..data.datasets import DATASETS
from ..network.models import deep_cnn, mlp, simple_cnn
from ..optim.optimizers import OPTIMIZERS
from ..training.trainer import Trainer
from .options import MODELS, UsageError, cli_options, hidden_sizes, init_value, resolve

__all__ = ["DEFAULTS", "SETTINGS", "build_model", "default_config", "load_data", "run_config"]

DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "backend": None,
    "hidden": "100,50",
    "activation": "relu",
    "hswish_n": 6.0,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "batch_size": 100,
    "epochs": 50,
    "seed": 10,
    "flooding": None,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "dtype": "float32",
    "init": "auto",
    "gradient": "backprop",
    "schedule": None,
    "warmup": 0,
    "clip_norm": None,
    "validation_split": None,
    "batchnorm": False,
}
"""The settings of ``xpnet train`` with no options (the command line's defaults are these)."""
CONVERT = {
    "hswish_n": float,
    "lr": float,
    "momentum": float,
    "batch_size": int,
    "epochs": int,
    "seed": int,
    "flooding": float,
    "weight_decay": float,
    "dropout": float,
    "warmup": int,
    "clip_norm": float,
    "validation_split": float,
}


SETTINGS = (
    *CONVERT,
    "dataset",
    "model",
    "backend",
    "hidden",
    "activation",
    "optimizer",
    "dtype",
    "init",
    "gradient",
    "schedule",
)
"""The options that describe one run (``compare`` takes a list for each)."""


def load_data(name: str, path: str | None, images: bool = False) -> Any:
    """The data set; a ``--data-path`` that is no folder or lacks the files is a bad command line (exit 2)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if name == "digits":
        return DATASETS[name](flatten=not images)
    try:
        return DATASETS[name](path, flatten=not images)
    except (FileNotFoundError, NotADirectoryError) as e:
        if path is None:  # found nowhere it looked: not a mistake in the command line
            raise
        raise UsageError("data_path", str(e)) from None


def classes_of(t: np.ndarray) -> int:
    return int(t.max()) + 1 if t.ndim == 1 else int(t.shape[1])


def build_model(cfg: dict[str, Any], x: np.ndarray, t: np.ndarray):
    classes = classes_of(t)
    if cfg["model"] == "simple-cnn":
        return simple_cnn(
            x, classes, activation_name=cfg["activation"], init=init_value(cfg["init"]), hswish_n=cfg["hswish_n"]
        )
    if cfg["model"] == "deep-cnn":
        return deep_cnn(x, classes)
    if cfg["model"] != "mlp":
        raise ValueError(f"unknown model {cfg['model']!r}; valid: {', '.join(MODELS)}")
    hidden = hidden_sizes(cfg["hidden"])
    return mlp(
        [int(np.prod(x.shape[1:])), *hidden, classes],
        cfg["activation"],
        dropout=cfg["dropout"],
        batchnorm=cfg["batchnorm"],
        init=init_value(cfg["init"]),
        flooding=cfg["flooding"],
        hswish_n=cfg["hswish_n"],
    )


def run_config(
    cfg: dict[str, Any],
    data: Any,
    device: Any = None,
    verbose: bool = True,
    out=None,
    comm=None,
    checkpoint: Any = None,
    checkpoint_every: int | None = None,
    resume: Any = None,
    callbacks: Sequence[Callable[[Any, dict[str, Any]], Any]] = (),
):
    """Build the model and optimizer that ``cfg`` describes, train them, return (model, optimizer, history).

    ``comm``: train data-parallel on this communicator (:func:`xpnet.training.distributed.init`).
    ``checkpoint``: write a run checkpoint (holding ``cfg``) there; ``resume``: continue the run saved
    in that file instead (its model and optimizer; ``cfg`` gives the epochs and backend).
    ``callbacks``: the ``Trainer``'s (the command line's :func:`loss_warning`)."""
    (x, t), (xt, tt) = data
    trainer_options, fit_options = cli_options(cfg)
    trainer_options["callbacks"] = list(callbacks)
    if resume is not None:
        trainer = resumed_trainer(
            cfg, resume, device, verbose, out, checkpoint, checkpoint_every, comm, trainer_options
        )
        history = trainer.fit(x, t, xt, tt, **fit_options)
        history.config.update(cfg)
        return trainer.model, trainer.optimizer, history
    backend = resolve(cfg["backend"], device)
    B.set_default_dtype(cfg["dtype"])
    with B.use_backend(backend):
        B.seed(cfg["seed"])
        model = build_model(cfg, x, t)
        if comm is not None and comm.size > 1:
            B.seed(cfg["seed"] + comm.rank)  # dropout masks per rank (weights come from rank 0)
    name = cfg["optimizer"].lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    kwargs: dict[str, Any] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = cfg["momentum"]
    optimizer = OPTIMIZERS[name](**kwargs)
    trainer = Trainer(
        model,
        optimizer,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        seed=cfg["seed"],
        verbose=verbose,
        out=out,
        comm=comm,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every or 1,
        **trainer_options,
    )
    trainer.run_info = {"cli": cfg}
    history = trainer.fit(x, t, xt, tt, **fit_options)
    history.config.update({k: v for k, v in cfg.items()})
    return model, optimizer, history


def resumed_trainer(
    cfg: dict[str, Any],
    path: Any,
    device: Any,
    verbose: bool,
    out: Any,
    checkpoint: Any,
    every: int | None,
    comm: Any,
    controls: dict[str, Any] | None = None,
) -> Trainer:
    options = {"checkpoint_every": every} if every is not None else {}
    options.update(controls or {})  # schedule, clipping, gradient mode, patience: as the run had them
    options.update({"comm": comm} if comm is not None else {})
    trainer = Trainer.from_checkpoint(
        path,
        epochs=cfg["epochs"],
        verbose=verbose,
        out=out,
        backend=cfg["backend"],
        device=device,
        checkpoint=checkpoint if checkpoint is not None else True,
        **options,
    )
    trainer.run_info = {**trainer.run_info, "cli": cfg}
    return trainer


def default_config(**overrides: Any) -> dict[str, Any]:
    """The configuration ``xpnet train`` runs with no options, updated with ``overrides``.

    Keys are the option names with ``_`` (``batch_size``, ``hswish_n``, ...); an unknown key raises.
    """
    cfg = dict(DEFAULTS)
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(cfg))}")
    cfg.update(overrides)
    return cfg

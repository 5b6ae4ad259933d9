"""Early stopping and best weights: watch a loss each epoch, stop when it no longer improves, end with
the weights of its lowest epoch."""

from __future__ import annotations

import math
from typing import Any, TextIO

import numpy as np

from ...backends import to_numpy
from ..extension import Extension, Trainer


class BestWeights:
    """Device copies of a model's parameters and buffers at its best epoch (lowest watched loss).

    ``update(model, loss, epoch)`` copies when ``loss`` improves (strictly, so the first of equal
    minima wins); ``restore(model)`` writes the copies back in place (parameter identity is kept,
    so optimizer state and layers stay bound to the same arrays).
    """

    def __init__(self) -> None:
        self.loss = float("inf")
        self.epoch: int | None = None
        self.params: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}

    def update(self, model: Any, loss: float, epoch: int) -> bool:
        if not loss < self.loss:
            return False
        xp = model.backend.xp
        self.loss, self.epoch = loss, epoch
        self.params = {k: xp.asarray(v, copy=True) for k, v in model.params.items()}
        self.buffers = {k: xp.asarray(v, copy=True) for k, v in model.buffers.items()}
        return True

    def restore(self, model: Any) -> None:
        if self.epoch is None:
            return
        for key, p in model.params.items():
            p[...] = self.params[key]
        for key, value in self.buffers.items():
            i, name = key.split(".", 1)
            setattr(model.layers[int(i)], name, model.backend.xp.asarray(value, copy=True))


def watched(record: dict[str, Any]) -> float:
    """The loss a run watches: the validation loss, else the test loss, else the train loss."""
    return next(record[k] for k in ("val_loss", "test_loss", "train_loss") if record.get(k) is not None)


class EarlyStopping(Extension):
    """``Trainer(patience=..., restore_best=...)``: after each epoch, compare the watched loss
    (:func:`watched`) with the best so far; stop when it has not improved for ``patience`` epochs
    (``None``: never, only count). With ``restore_best``, keep device copies of the best epoch's weights
    (:class:`BestWeights`) and write them back at the end. Messages go to ``out`` (``None``: silent).

    Run state: ``best``, ``since_best``, ``best_weights`` and the arrays ``best/params/*``, ``best/buffers/*``.
    """

    def __init__(self, patience: int | None = None, restore_best: bool = False, out: TextIO | None = None) -> None:
        self.patience, self.restore_best, self.out = patience, bool(restore_best), out

    def on_fit_start(self, trainer: Trainer) -> None:
        self.model, self.best, self.since_best, self.keeper = trainer.model, math.inf, 0, BestWeights()
        self.validation = "validation_samples" in trainer.history.config  # the fit's own data

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool:
        loss = watched(record)
        if self.restore_best:
            self.keeper.update(self.model, loss, record["epoch"])
        self.best, self.since_best = (loss, 0) if loss < self.best else (self.best, self.since_best + 1)
        early = self.patience is not None and self.since_best >= self.patience
        if early and self.out is not None:
            print(f"early stop: no improvement for {self.patience} epochs", file=self.out)
        return early

    def on_fit_end(self, trainer: Trainer) -> None:
        keeper = self.keeper
        if self.restore_best and keeper.epoch is not None:
            keeper.restore(self.model)
            if self.out is not None:
                print(
                    f"restored the weights of epoch {keeper.epoch} (lowest "
                    f"{'validation' if self.validation else 'watched'} loss {keeper.loss:.4f})",
                    file=self.out,
                )

    def state_dict(self) -> dict[str, Any]:
        keeper = self.keeper
        state: dict[str, Any] = {
            "best": None if math.isinf(self.best) else self.best,
            "since_best": self.since_best,
            "best_weights": None if keeper.epoch is None else {"loss": keeper.loss, "epoch": keeper.epoch},
        }
        for kind in ("params", "buffers") if keeper.epoch is not None else ():
            state.update({f"best/{kind}/{k}": np.asarray(to_numpy(v)) for k, v in getattr(keeper, kind).items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = math.inf if state.get("best") is None else state["best"]
        self.since_best = state.get("since_best", 0)
        if state.get("best_weights") is not None:
            put, keeper = self.model.backend.from_host, self.keeper
            keeper.loss, keeper.epoch = state["best_weights"]["loss"], state["best_weights"]["epoch"]
            for kind in ("params", "buffers"):
                prefix = f"best/{kind}/"
                setattr(keeper, kind, {k[len(prefix) :]: put(a) for k, a in state.items() if k.startswith(prefix)})

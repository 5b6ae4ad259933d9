"""A learning-rate schedule per epoch, and the ``lr`` column of the history."""

from __future__ import annotations

from typing import Any

from ...optim.schedules import Schedule, unit_of
from ..extension import Extension, Trainer


class LearningRateSchedule(Extension):
    """``Trainer(schedule=...)``: before each epoch, ``optimizer.lr = schedule(epoch - 1)`` (a host float)
    for ``unit="epoch"`` schedules; ``unit="step"`` ones are applied by the trainer before each step
    (count = ``optimizer.t``). Each record gains ``lr``, the rate of the epoch's last step."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule, self.unit = schedule, unit_of(schedule)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.unit == "epoch":
            trainer.optimizer.lr = float(self.schedule(epoch - 1))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        record["lr"] = trainer.optimizer.lr

"""A progress bar of each epoch's steps, cleared when the epoch ends (its log line stays)."""

from __future__ import annotations

from typing import Any, TextIO

from tqdm import tqdm

from ..extension import Extension, Trainer


def progress_bar(total: int, out: TextIO) -> Any:
    """A ``tqdm`` bar of ``total`` steps on ``out``, cleared when the epoch ends (its log line stays)."""
    return tqdm(total=total, file=out, leave=False, unit="step", dynamic_ncols=True, mininterval=0.2)


class ProgressBar(Extension):
    """``Trainer(progress=True)``: a bar per epoch on ``out``, one tick per step (nothing read from the device)."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.bar = out, None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.bar = progress_bar(trainer.steps_per_epoch - trainer.run.step, self.out)  # a resumed epoch: the rest

    def on_step(self, trainer: Trainer, step: int) -> None:
        if self.bar is not None:
            self.bar.update()

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.on_fit_end(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""Write the run checkpoint as the run goes, and stop cleanly on a signal (see :mod:`xpnet.training.run`)."""

from __future__ import annotations

from typing import Any

from ..extension import Extension, Trainer
from ..interrupts import stop_requested


class Checkpoint(Extension):
    """``Trainer(checkpoint=PATH, checkpoint_every=k)``: write the run (``trainer.run``, a
    :class:`xpnet.training.run.Run`: model, optimizer, RNGs, position and every extension's
    ``state_dict()``) every ``k`` epochs and when the run ends. While ``fit`` runs, SIGINT and SIGTERM
    finish the step, save and raise :class:`xpnet.training.interrupts.Interrupted`. Put it last: it saves the
    state the other extensions reached in the epoch."""

    def on_fit_start(self, trainer: Trainer) -> None:
        self.done = False  # the run's end is written

    def on_step(self, trainer: Trainer, step: int) -> None:
        if stop_requested(trainer):  # a signal: save where the epoch stopped and raise (not after its last step)
            trainer.run.steps_done(trainer.epoch, step, trainer.steps_per_epoch, trainer.epoch_start)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.stop = trainer.comm.any(trainer.stop)  # the earlier hooks' stop, agreed: every rank saves alike
        self.done = trainer.stop or record["epoch"] == trainer.epochs
        trainer.run.end_epoch(record["epoch"], self.done)  # every k epochs and at the end; honours a signal

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.stop and not self.done:  # a hook after this one stopped the run
            trainer.run.save(trainer.run.epoch, 0, 0.0, done=True)

"""Keep each epoch's record in ``trainer.history`` (saved with a run checkpoint, restored on resume)."""

from __future__ import annotations

from typing import Any

from ..extension import Extension, Trainer


class RecordHistory(Extension):
    """Append each record to ``trainer.history``; its records and config travel with the checkpoint
    (run state ``history``). A resumed run's config takes the trainer's ``epochs``."""

    def on_fit_start(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.history.append(record)

    def state_dict(self) -> dict[str, Any]:
        history = self.trainer.history
        return {"history": {"records": history.records, "config": history.config}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        history = self.trainer.history
        history.records = list(state["history"]["records"])
        history.config = {**state["history"]["config"], "epochs": self.trainer.epochs}

"""The model summary before training and one line per epoch (``Trainer(verbose=True)``)."""

from __future__ import annotations

from typing import Any, TextIO

from ..extension import Extension, Trainer


def format_epoch(r: dict[str, Any]) -> str:
    """The articles' per-epoch line: epoch, train acc, train loss, test acc, test loss."""
    line = f"epoch {r['epoch']:3d} | train acc {100 * r['train_acc']:6.2f} | train loss {r['train_loss']:.4f}"
    if r.get("test_acc") is not None:
        line += f" | test acc {100 * r['test_acc']:6.2f} | test loss {r['test_loss']:.4f}"
    if r.get("val_acc") is not None:
        line += f" | val acc {100 * r['val_acc']:6.2f} | val loss {r['val_loss']:.4f}"
    if r.get("lr") is not None:
        line += f" | lr {r['lr']:.4g}"
    return line + f" | {r['seconds']:.2f} s"


class PrintEpoch(Extension):
    """Print the model's summary at the start and :func:`format_epoch`'s line after each epoch on ``out``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def on_fit_start(self, trainer: Trainer) -> None:
        print(trainer.model.summary(), file=self.out)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        print(format_epoch(record), file=self.out, flush=True)

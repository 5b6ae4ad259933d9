"""Stop a diverging run at the epoch whose loss is no longer a number."""

from __future__ import annotations

import math
from typing import Any

from ..extension import Extension, Trainer


class FailOnNonFinite(Extension):
    """Raise ``ValueError`` naming the epoch and the likely causes when a loss of the record is NaN or
    infinite (before the record is kept or printed)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        for name in ("train_loss", "test_loss", "val_loss"):
            if record.get(name) is not None and not math.isfinite(record[name]):
                raise ValueError(
                    f"non-finite {name.replace('_', ' ')} ({record[name]}) at epoch {record['epoch']}: the learning "
                    f"rate may be too high, the data holds NaN/inf, or labels lie outside [0, classes - 1] or "
                    f"target rows are no distributions (on a device backend such targets make the loss NaN "
                    f"instead of raising)"
                )

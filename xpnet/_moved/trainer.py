"""``xpnet.trainer``: the trainer's old home; it lives in :mod:`xpnet.training` now."""

from ..training.extension import Callback
from ..training.extensions import format_epoch, progress_bar
from ..training.trainer import Trainer, describe

__all__ = ["Callback", "Trainer", "describe", "format_epoch", "progress_bar"]

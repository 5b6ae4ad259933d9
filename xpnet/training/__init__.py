"""Training: the loop (:class:`Trainer`), the step (:mod:`.step`), the extension protocol
(:mod:`.extension`) and the extensions (:mod:`.extensions`, one per file)."""

from . import extensions
from .extension import Extension, LambdaCallback
from .step import train_step
from .trainer import Trainer

__all__ = ["Extension", "LambdaCallback", "Trainer", "extensions", "train_step"]

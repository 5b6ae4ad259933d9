"""Training: the step (:mod:`.step`), the extension protocol (:mod:`.extension`) and the extensions
(:mod:`.extensions`, one per file)."""

from . import extensions
from .extension import Extension, LambdaCallback
from .step import train_step

__all__ = ["Extension", "LambdaCallback", "extensions", "train_step"]

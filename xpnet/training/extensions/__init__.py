"""The trainer's extensions, one per file: what ``Trainer``'s keywords switch on, in the order they run."""

from .checkpoint import Checkpoint
from .early_stopping import BestWeights, EarlyStopping
from .fail_on_non_finite import FailOnNonFinite
from .learning_rate import LearningRateSchedule
from .print_epoch import PrintEpoch, format_epoch
from .progress_bar import ProgressBar, progress_bar
from .record_history import RecordHistory

__all__ = [
    "BestWeights",
    "Checkpoint",
    "EarlyStopping",
    "FailOnNonFinite",
    "LearningRateSchedule",
    "PrintEpoch",
    "ProgressBar",
    "RecordHistory",
    "format_epoch",
    "progress_bar",
]

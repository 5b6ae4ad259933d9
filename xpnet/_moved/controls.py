"""``xpnet.controls``: names that lived here, now in their own homes: the gradient mode and the step
(:mod:`xpnet.training.step`), the stratified validation split (:mod:`xpnet.training.validation`),
best-weights keeping (:mod:`xpnet.training.extensions.early_stopping`), the run options
(:mod:`xpnet.experiments.options`) and ``compare``'s timed rows (:mod:`xpnet.cli.compare`)."""

from ..cli.compare import timed_rows
from ..experiments.options import OptionError, cli_options, default_dtype
from ..training.extensions.early_stopping import BestWeights
from ..training.step import GRADIENTS, check_gradient_mode, step_gradients, train_step
from ..training.trainer import describe
from ..training.validation import split_validation, stratified_split

__all__ = [
    "GRADIENTS",
    "BestWeights",
    "OptionError",
    "check_gradient_mode",
    "cli_options",
    "default_dtype",
    "describe",
    "split_validation",
    "step_gradients",
    "stratified_split",
    "timed_rows",
    "train_step",
]

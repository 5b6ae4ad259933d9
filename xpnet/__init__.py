"""xpnet: the backprop of *Deep Learning from Scratch*, written once against the array API standard,
running unchanged on NumPy, CuPy, PyTorch and array-api-strict.

The folders are the layers, from the ground up: ``backends`` (one adapter per array library),
``utils``, ``data``, ``network`` (layers, losses, the model), ``optim`` (optimizers, schedules,
clipping), ``training`` (the loop, the step, extensions, checkpoints), ``experiments`` (run settings,
seed statistics, reproduce, bench) and ``cli``. The modules' old names still import (:mod:`._moved`).
"""

from . import _moved
from ._version import __version__
from .backends import (
    Backend,
    BackendUnavailableError,
    asarray,
    available_backends,
    get_backend,
    get_default_dtype,
    seed,
    set_backend,
    set_default_dtype,
    to_numpy,
    use_backend,
)
from .data import datasets
from .network import layers, losses, models
from .network.gradient import gradient_check, numerical_gradient
from .network.io import load, load_checkpoint, save
from .network.model import Sequential
from .optim import optimizers, schedules
from .optim.clipping import clip_by_global_norm, global_norm
from .training import Trainer, checkpoint, distributed
from .training.history import History

_moved.install()


def __getattr__(name: str) -> object:
    """``xpnet.kernels``, ``xpnet.model``, ...: a module's old name, as an attribute of the package too."""
    if f"{__name__}.{name}" in _moved.MOVED or f"{__name__}.{name}" in _moved.GATHERED:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "History",
    "Sequential",
    "Trainer",
    "__version__",
    "asarray",
    "available_backends",
    "checkpoint",
    "clip_by_global_norm",
    "datasets",
    "distributed",
    "get_backend",
    "get_default_dtype",
    "global_norm",
    "gradient_check",
    "layers",
    "load",
    "load_checkpoint",
    "losses",
    "models",
    "numerical_gradient",
    "optimizers",
    "save",
    "schedules",
    "seed",
    "set_backend",
    "set_default_dtype",
    "to_numpy",
    "use_backend",
]

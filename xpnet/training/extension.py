"""The extension protocol: what :meth:`xpnet.Trainer.fit` calls around its loop.

An extension is an object with any of these hooks (the base class :class:`Extension` gives each a
default that does nothing); ``fit`` calls every extension's hook in turn, in the order of
``trainer.extensions``:

- ``on_fit_start(trainer)``: before the first epoch; prepare (reset) for a new fit. On a resumed run
  ``load_state_dict`` follows with the state saved in the checkpoint.
- ``on_epoch_start(trainer, epoch)``: before the epoch's steps (``epoch`` counts from 1).
- ``on_step(trainer, step)``: after each step (``step``: steps done in this epoch). Runs between
  device steps: it must read nothing from the device (no ``float(array)``), or every step waits.
- ``on_epoch_end(trainer, record)``: after the epoch's evaluation; ``record`` is the epoch's row of the
  history (``epoch``, ``train_loss``, ...), which an extension may extend with columns of its own.
- ``on_fit_end(trainer)``: after the last epoch, in reverse order (the last extension closes first).

``on_fit_start``, ``on_step`` and ``on_epoch_end`` may return ``True`` to stop the run (no epoch runs;
the epoch's steps end there, then it is evaluated and recorded; the fit ends after this epoch); setting
``trainer.stop = True`` stops it after the epoch. Under MPI an epoch-end stop on any rank stops every rank;
a step-hook stop must be the same on every rank.

``state_dict()`` returns the extension's own state for a run checkpoint: JSON values, and host NumPy
arrays (saved as arrays); the keys are names in the checkpoint's run state, shared by all extensions,
so choose names of your own. ``load_state_dict(state)`` gets the run state back (JSON values and those
arrays, under the same keys) when a run resumes; a key may be missing (a checkpoint of a run without
this extension). With both, resuming is exact without the checkpoint code knowing any extension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Trainer = Any
"""An :class:`xpnet.Trainer` (not imported: the trainer imports this module)."""


class Extension:
    """Base class of trainer extensions: override the hooks you need (see the module's text)."""

    def on_fit_start(self, trainer: Trainer) -> bool | None:
        """Before the first epoch (after the data are checked, before a resumed state is loaded)."""
        return None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the steps of ``epoch``."""

    def on_step(self, trainer: Trainer, step: int) -> bool | None:
        """After each step; reads nothing from the device. ``True`` stops the run after this epoch's
        evaluation (the same on every rank under MPI)."""
        return None

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool | None:
        """After the epoch's evaluation, with its history row; ``True`` stops the run."""
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (the hooks run in reverse order)."""

    def state_dict(self) -> dict[str, Any]:
        """This extension's state for a run checkpoint (JSON values, host NumPy arrays)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back the state of a resumed run (a checkpoint's whole run state; keys may be missing)."""


Callback = Callable[[Trainer, dict[str, Any]], Any]
"""``f(trainer, record)`` after each epoch; returning ``True`` stops training (``Trainer(callbacks=...)``)."""


class LambdaCallback(Extension):
    """A ``callbacks=`` function as an extension: ``f(trainer, record)`` at each epoch's end."""

    def __init__(self, function: Callback) -> None:
        if not callable(function):
            raise TypeError(f"callbacks: {function!r} is neither an Extension nor a function f(trainer, record)")
        self.function = function

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool:
        return self.function(trainer, record) is True

    def __repr__(self) -> str:
        return f"LambdaCallback({self.function!r})"


def as_extension(item: Extension | Callback) -> Extension:
    """An extension as given, a function wrapped in :class:`LambdaCallback`."""
    return item if isinstance(item, Extension) else LambdaCallback(item)


def call(trainer: Trainer, hook: str, *args: Any) -> bool:
    """Call ``hook`` of each of ``trainer.extensions`` in order (``on_fit_end``: reversed); one that
    returns ``True`` sets ``trainer.stop``, which the later ones see. Returns whether one did."""
    extensions, stop = trainer.extensions, False
    for ext in reversed(extensions) if hook == "on_fit_end" else extensions:
        if getattr(ext, hook)(trainer, *args) is True:
            trainer.stop = stop = True
    return stop

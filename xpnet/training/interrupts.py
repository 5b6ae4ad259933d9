"""Signals during a run: while :meth:`xpnet.Trainer.fit` runs with a checkpoint, SIGINT and SIGTERM finish
the current step, write the checkpoint and raise :class:`Interrupted` (a ``KeyboardInterrupt``); a second
signal stops at once, leaving the previous checkpoint intact."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

Trainer = Any
"""An :class:`xpnet.Trainer` (not imported: the trainer imports this module, which stays below it)."""


SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after finishing a step.

    Attributes:
        signum: the signal (``signal.SIGINT``, ``signal.SIGTERM``).
        path: the checkpoint written, or ``None`` when nothing was saved.
        epoch, step: the epoch in progress and the steps done in it.
        exit_code: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), the shell's convention.
    """

    def __init__(
        self, signum: int, path: str | os.PathLike | None = None, epoch: int = 0, step: int = 0, root: bool = True
    ) -> None:
        self.signum, self.path, self.epoch, self.step, self.root = int(signum), path, epoch, step, root
        where = f" at epoch {epoch}" + (f", step {step}" if step else "") if epoch else ""
        saved = f"checkpoint saved to {path}" if path is not None else "nothing was saved"
        super().__init__(f"{signal.Signals(self.signum).name}{where}: {saved}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# -- signals -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _handlers(handler: Callable[[int, Any], None]) -> Iterator[bool]:
    """Install ``handler`` for SIGINT and SIGTERM, restore the previous ones on exit (main thread only:
    elsewhere Python cannot install handlers, and this yields ``False``)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield True
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def stop_after_step(trainer: Trainer) -> Iterator[None]:
    """While training with a checkpoint: a signal sets ``trainer.signal_received``, the loop finishes
    its step, saves and raises :class:`Interrupted`; a second signal raises it at once (nothing saved)."""
    trainer.signal_received = None
    if trainer.checkpoint is None:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if trainer.signal_received is not None:
            raise Interrupted(signum)
        trainer.signal_received = signum

    with _handlers(handler):
        yield


def stop_requested(trainer: Trainer) -> bool:
    """Has a signal asked the run to stop? Under MPI (with a checkpoint) the ranks agree, so that all stop
    after the same step: one tiny allreduce per call."""
    comm = getattr(trainer, "comm", None)
    if comm is None or comm.size == 1 or trainer.checkpoint is None:
        return trainer.signal_received is not None
    mine = trainer.signal_received
    count, total = comm.sum_values(mine is not None, mine or 0)
    if count and mine is None:
        trainer.signal_received = round(total / count)  # the signal another rank received
    return count > 0


def raise_on_sigterm() -> Callable[[], None]:
    """SIGTERM raises :class:`Interrupted` as SIGINT raises ``KeyboardInterrupt`` (the CLI ends both
    without a traceback; training with a checkpoint overrides it while it runs). Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo

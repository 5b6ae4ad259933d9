"""The training loop: shuffled mini-batches on the device, metrics read once per epoch, everything
else an extension (:mod:`xpnet.training.extension`)."""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any, TextIO

import numpy as np

from ..network.model import Sequential
from ..optim.clipping import check_clip_norm
from ..optim.optimizers import Optimizer
from ..optim.schedules import Schedule, unit_of
from . import checkpoint as ckpt
from .distributed import Communicator, SingleCommunicator
from .extension import Callback, Extension, as_extension, call
from .extensions import (
    Checkpoint,
    EarlyStopping,
    FailOnNonFinite,
    LearningRateSchedule,
    PrintEpoch,
    ProgressBar,
    RecordHistory,
)
from .history import History
from .interrupts import stop_after_step
from .run import Run
from .step import check_gradient_mode, train_step
from .validation import split_validation


class Trainer:
    """Mini-batch training of a :class:`Sequential` model.

    The whole dataset is moved to the device once; each epoch's order is drawn from a host RNG
    seeded by ``seed`` (the same seed gives the same run on every backend) and batches are gathered
    on the device. Nothing in the step reads device data: train/test loss and accuracy are evaluated
    after each epoch and read once (one host–device sync per epoch).

    Args:
        model: what to train.
        optimizer: how to update its parameters.
        epochs: one epoch visits every sample once.
        batch_size: samples per step; the last batch of an epoch may be smaller.
        seed: seeds the shuffling (initial weights come from ``xpnet.seed`` before building the model).
        eval_batch_size: batch size of the per-epoch evaluation passes.
        verbose: print the model summary and one line per epoch.
        progress: a progress bar per epoch (default: when ``out`` is a terminal).
        patience: stop when the watched loss has not improved for this many epochs: the validation
            loss (see :meth:`fit`), else the test loss, else the train loss.
        restore_best: at the end, write back the weights (and running statistics) of the epoch with
            the lowest watched loss.
        gradient: ``"backprop"`` or ``"numerical"`` (central differences, 2 forward passes per
            parameter element, reading each loss back: slow, and exempt from the no-host-read rule).
        schedule: an :mod:`xpnet.optim.schedules` schedule (or ``count -> lr``) setting ``optimizer.lr`` (a
            host float) before each epoch, or each step for ``unit="step"`` schedules (count =
            ``optimizer.t``); the history gains an ``lr`` column.
        clip_norm: scale the gradients by ``min(1, C/‖g‖)`` (global norm) on the device each step.
        callbacks: extensions (:class:`xpnet.training.Extension`: hooks at fit start, each step, each
            epoch's end, fit end; see :mod:`xpnet.training.extension`) and functions ``f(trainer, record)``
            called after each epoch (returning ``True`` stops training); they run after the default
            extensions that the other keywords switch on, before the checkpoint's.
        out: where log lines go (default ``sys.stdout``).
        comm: data-parallel training (:func:`xpnet.training.distributed.init`): ``batch_size`` is the global batch,
            each rank takes its share of it and one allreduce per step averages the gradients; only rank 0
            prints. Default: one process.
        checkpoint: write a run checkpoint (model, optimizer, history, RNG states) to this file,
            atomically, every ``checkpoint_every`` epochs and at the end (under MPI rank 0 writes); while
            it trains, SIGINT and SIGTERM finish the step, save and raise
            :class:`xpnet.training.interrupts.Interrupted`. Continue a run with :meth:`from_checkpoint` (or
            :meth:`restore`).
    """

    def __init__(
        self,
        model: Sequential,
        optimizer: Optimizer,
        epochs: int = 20,
        batch_size: int = 100,
        seed: int = 0,
        eval_batch_size: int = 10000,
        verbose: bool = True,
        progress: bool | None = None,
        patience: int | None = None,
        callbacks: tuple[Extension | Callback, ...] | list[Extension | Callback] = (),
        out: TextIO | None = None,
        gradient: str = "backprop",
        schedule: Schedule | None = None,
        clip_norm: float | None = None,
        restore_best: bool = False,
        comm: Communicator | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        if epochs < 1 or batch_size < 1 or eval_batch_size < 1 or checkpoint_every < 1:
            raise ValueError("epochs, batch_size, eval_batch_size and checkpoint_every must be >= 1")
        self.checkpoint, self.checkpoint_every = ckpt.check_path(checkpoint), int(checkpoint_every)
        self.run_info: dict[str, Any] = {}  # JSON-able facts kept in each checkpoint (the CLI's options)
        self._resume: dict[str, Any] | None = None
        self.signal_received: int | None = None
        self.model, self.optimizer = model, optimizer
        self.epochs, self.batch_size, self.seed = int(epochs), int(batch_size), seed
        self.comm = comm if comm is not None else SingleCommunicator()
        verbose = verbose and self.comm.is_root  # under MPI only rank 0 prints
        self.eval_batch_size, self.verbose = int(eval_batch_size), verbose
        self.out = out if out is not None else sys.stdout
        self.progress = self.comm.is_root and (progress if progress is not None else verbose and _isatty(self.out))
        self.patience, self.callbacks = patience, list(callbacks)
        self.history = History()
        self.gradient, self.restore_best = check_gradient_mode(gradient), bool(restore_best)
        self.schedule, self.clip_norm = schedule, check_clip_norm(clip_norm)
        self.schedule_unit = unit_of(schedule) if schedule is not None else None
        if self.clip_norm is not None and getattr(optimizer, "clip_norm", None) is not None:
            raise ValueError("clip_norm is set on both the Trainer and the optimizer: set it on one")
        self.stop, self.extensions = False, self.build_extensions()  # each fit builds them anew

    # -- run checkpoints (training/checkpoint.py, training/run.py) -----------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        epochs: int | None = None,
        *,
        verbose: bool = True,
        checkpoint: str | os.PathLike | bool = True,
        backend: Any = None,
        device: Any = None,
        **options: Any,
    ) -> Trainer:
        """The trainer, model and optimizer of a run checkpoint; ``fit(x, t, x_test, t_test)`` with the
        run's data continues it to ``epochs`` (default: the run's own count), bitwise as if never stopped.

        ``checkpoint``: keep writing to ``path`` (``True``), to a new file, or not at all (``False``).
        ``backend``/``device``: where to resume (default: the run's backend). ``options``: other
        ``Trainer`` options that leave the trajectory alone (``progress``, ``out``, ``callbacks``, ...).
        """
        return ckpt.from_checkpoint(cls, path, epochs, checkpoint, backend, device, verbose=verbose, **options)

    def restore(self, path: str | os.PathLike) -> Trainer:
        """Load a run checkpoint of this model and optimizer; the next ``fit`` continues that run.
        A checkpoint of another architecture, optimizer, batch size or seed is refused."""
        ckpt.restore(self, path)
        return self

    def build_extensions(self) -> list[Extension]:
        """The extensions of a fit, in the order their hooks run: those the keywords switch on, then
        ``callbacks`` (functions wrapped in :class:`LambdaCallback`), then the checkpoint's."""
        out = self.out if self.verbose else None
        extensions: list[Extension] = [ProgressBar(self.out)] if self.progress else []
        extensions += [LearningRateSchedule(self.schedule)] if self.schedule is not None else []
        extensions += [FailOnNonFinite(), RecordHistory()] + ([PrintEpoch(self.out)] if self.verbose else [])
        extensions += [EarlyStopping(self.patience, self.restore_best, out), *map(as_extension, self.callbacks)]
        return extensions + ([Checkpoint()] if self.checkpoint is not None else [])

    # -- one pass ---------------------------------------------------------------------------
    def train_epoch(self, x: Any, t: Any, order: np.ndarray, first: int = 0) -> int:
        """One epoch of steps over device data in the given host order (no host syncs), from step
        ``first``, each step followed by the extensions' ``on_step`` hooks; returns the steps done:
        fewer when a hook stopped the run (a signal stops it by raising, see ``checkpoint``)."""
        model, opt, xp, b, n = self.model, self.optimizer, self.model.backend.xp, self.batch_size, x.shape[0]
        index = model.backend.from_host(order)
        schedule = self.schedule if self.schedule_unit == "step" else None  # the rate as a function of opt.t
        done = first
        for i in range(first * b, n, b):
            stop = min(i + b, n)  # in-bounds stop: the standard leaves out-of-bounds unspecified
            lo, hi = self.comm.share(i, stop)  # this rank's part of the global batch (all of it alone)
            if schedule is not None:
                opt.lr = float(schedule(opt.t))
            idx = index[lo:hi] if hi > lo else None
            reduce = functools.partial(
                self.comm.allreduce_grad, params=model.params, backend=model.backend, weight=(hi - lo) / (stop - i)
            )
            xb, tb = (xp.take(x, idx, axis=0), xp.take(t, idx, axis=0)) if idx is not None else (None, None)
            train_step(model, opt, xb, tb, self.gradient, self.clip_norm, reduce)
            done += 1
            if call(self, "on_step", done):
                break
        return done

    def evaluate(self, x: Any, t: Any) -> tuple[float, float]:
        """(mean loss, accuracy) of checked device data in evaluation mode, read once (under MPI each rank
        evaluates its share and the sums are combined)."""
        n = x.shape[0]
        start, end = self.comm.share(0, n)
        loss, correct = 0.0, 0
        if end > start:  # this rank's mean loss weighted by its share (no float16 overflow of a sum)
            loss, correct = self.model.evaluate(x[start:end, ...], t[start:end, ...], self.eval_batch_size)
            loss = loss * ((end - start) / n)
        loss, correct = self.comm.sum_values(loss, correct)
        return float(loss + self.optimizer.penalty(self.model.params)), int(correct) / n

    # -- the loop --------------------------------------------------------------------------
    def fit(
        self,
        x_train: Any,
        t_train: Any,
        x_test: Any = None,
        t_test: Any = None,
        *,
        x_val: Any = None,
        t_val: Any = None,
        validation_split: float | None = None,
        patience: int | None = None,
        restore_best: bool | None = None,
    ) -> History:
        """Train for ``epochs`` and return the :class:`History` (also kept as ``self.history``).

        Validation data, ``x_val, t_val`` or ``validation_split=f`` (a seeded, stratified fraction of
        the training data, held out), is evaluated each epoch (``val_acc``, ``val_loss`` columns) and
        watched by ``patience`` and ``restore_best`` (given here, they override the constructor's).
        """
        if patience is not None:
            self.patience = patience
        if restore_best is not None:
            self.restore_best = bool(restore_best)
        train, test, val = self._data(x_train, t_train, x_test, t_test, x_val, t_val, validation_split)
        self.comm.check_fit(
            self, {"train": train, "test": test, "validation": val}
        )  # ranks agree, before any collective
        with ckpt.locked(self), stop_after_step(self):  # one run per checkpoint path; a signal saves and stops
            run = self._start(train, test, val, validation_split)
            for epoch in range(run.epoch + 1, run.last + 1):
                self.epoch, self.epoch_start = epoch, time.perf_counter() - run.elapsed
                call(self, "on_epoch_start", epoch)
                self.train_epoch(*train, run.order(train[0].shape[0]), run.step)
                self.comm.bcast_data(self.model.buffers, self.model.backend)  # BatchNorm statistics: rank 0's
                record = self._record(train, test, val)
                self.stop = self.comm.any(call(self, "on_epoch_end", record) or self.stop)  # one rank's stops all
                run.epoch, run.step, run.elapsed = epoch, 0, 0.0
                if self.stop:
                    break
            call(self, "on_fit_end")
        return self.history

    def _data(
        self, x: Any, t: Any, x_test: Any, t_test: Any, x_val: Any, t_val: Any, split: float | None
    ) -> tuple[tuple[Any, Any], tuple[Any, Any] | None, tuple[Any, Any] | None]:
        """``(train, test, val)``: checked device data, moved once (never in the step); ``val`` held out
        of ``train`` by ``split``, or given."""
        model = self.model
        x, t = model.check_data(x, t, values=True, names=("x_train", "t_train"))
        test = model.check_data(x_test, t_test, values=True, names=("x_test", "t_test")) if x_test is not None else None
        if split is not None and x_val is not None:
            raise ValueError("give validation_split or x_val/t_val, not both")
        if split is not None:
            x, t, *held_out = split_validation(model, x, t, split, self.seed)
            return (x, t), test, (held_out[0], held_out[1])
        val = model.check_data(x_val, t_val, values=True, names=("x_val", "t_val")) if x_val is not None else None
        return (x, t), test, val

    def _start(self, train: tuple[Any, Any], test: tuple[Any, Any] | None, val: Any, split: float | None) -> Run:
        """Fit start: the history, the extensions' start hooks, then the run (fresh,
        or where :meth:`restore` left off, each extension given its saved state)."""
        model, n = self.model, train[0].shape[0]
        config: dict[str, Any] = {"epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed}
        config.update(optimizer=repr(self.optimizer), backend=str(model.backend), **describe(self, split, val))
        self.history, self.steps_per_epoch = History(config=config), -(-n // self.batch_size)
        self.stop, self.extensions = False, self.build_extensions()
        stopped = self.comm.any(call(self, "on_fit_start") or self.stop)
        self.run = run = Run(self, train, test)  # fresh, or resumed: RNGs, position, extensions' states
        run.last = run.epoch if stopped else run.last
        self.comm.bcast_data(model.params, model.backend)  # every rank starts from rank 0's parameters
        return run

    def _record(self, train: tuple[Any, Any], test: tuple[Any, Any] | None, val: Any) -> dict[str, Any]:
        """The epoch's row of the history: train (and test, validation) loss and accuracy, seconds."""
        train_loss, train_acc = self.evaluate(*train)
        test_loss, test_acc = self.evaluate(*test) if test is not None else (None, None)
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "train_acc": train_acc,
            "train_loss": train_loss,
            "test_acc": test_acc,
            "test_loss": test_loss,
            "seconds": time.perf_counter() - self.epoch_start,
        }
        if val is not None:
            record["val_loss"], record["val_acc"] = self.evaluate(*val)
        return record


def describe(trainer: Trainer, validation_split: float | None, val: Any) -> dict[str, Any]:
    """The controls a fit used, for ``History.config`` (only those that are on, besides the gradient)."""
    out: dict[str, Any] = {"gradient": trainer.gradient}
    if trainer.schedule is not None:
        out["schedule"] = repr(trainer.schedule)
    if trainer.clip_norm is not None:
        out["clip_norm"] = trainer.clip_norm
    if validation_split is not None:
        out["validation_split"] = validation_split
    if val is not None:
        out["validation_samples"] = int(val[0].shape[0])
    if trainer.restore_best:
        out["restore_best"] = True
    return out


def _isatty(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())

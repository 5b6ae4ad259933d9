"""The training loop: shuffled mini-batches on the device, metrics read once per epoch."""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from . import checkpoint as ckpt
from . import controls
from .clipping import check_clip_norm
from .distributed import Communicator, SingleCommunicator
from .history import History
from .model import Sequential
from .optimizers import Optimizer
from .schedules import Schedule, unit_of

Callback = Callable[["Trainer", dict[str, Any]], Any]


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
        schedule: an :mod:`xpnet.schedules` schedule (or ``count -> lr``) setting ``optimizer.lr`` (a
            host float) before each epoch, or each step for ``unit="step"`` schedules (count =
            ``optimizer.t``); the history gains an ``lr`` column.
        clip_norm: scale the gradients by ``min(1, C/‖g‖)`` (global norm) on the device each step.
        callbacks: ``f(trainer, record)`` after each epoch; returning ``True`` stops training.
        out: where log lines go (default ``sys.stdout``).
        comm: data-parallel training (:func:`xpnet.distributed.init`): ``batch_size`` is the global batch,
            each rank takes its share of it and one allreduce per step averages the gradients; only rank 0
            prints. Default: one process.
        checkpoint: write a run checkpoint (model, optimizer, history, RNG states) to this file,
            atomically, every ``checkpoint_every`` epochs and at the end (under MPI rank 0 writes); while
            it trains, SIGINT and SIGTERM finish the step, save and raise
            :class:`xpnet.checkpoint.Interrupted`. Continue a run with :meth:`from_checkpoint` (or :meth:`restore`).
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
        callbacks: tuple[Callback, ...] | list[Callback] = (),
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
        self.gradient, self.restore_best = controls.check_gradient_mode(gradient), bool(restore_best)
        self.schedule, self.clip_norm = schedule, check_clip_norm(clip_norm)
        self.schedule_unit = unit_of(schedule) if schedule is not None else None
        if self.clip_norm is not None and getattr(optimizer, "clip_norm", None) is not None:
            raise ValueError("clip_norm is set on both the Trainer and the optimizer: set it on one")

    # -- run checkpoints (xpnet/checkpoint.py) ----------------------------------------------
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

    def _scheduled(self, count: int) -> float:
        if self.schedule is None:  # schedule_unit is set only with a schedule
            raise RuntimeError("no schedule")
        return float(self.schedule(count))

    # -- one pass ---------------------------------------------------------------------------
    def train_epoch(self, x: Any, t: Any, order: np.ndarray, first: int = 0) -> int:
        """One epoch of steps over device data in the given host order (no host syncs), from step
        ``first``; returns the steps done: fewer when a signal asked to stop (see ``checkpoint``)."""
        model, opt, xp, b = self.model, self.optimizer, self.model.backend.xp, self.batch_size
        index = model.backend.from_host(order)
        params = model.params
        n = x.shape[0]
        steps = range(first * b, n, b)
        bar = progress_bar(len(steps), self.out) if self.progress else None
        done = first
        for i in steps:
            stop = min(i + b, n)  # in-bounds stop: the standard leaves out-of-bounds unspecified
            lo, hi = self.comm.share(i, stop)  # this rank's part of the global batch (all of it alone)
            if self.schedule_unit == "step":
                opt.lr = float(self._scheduled(opt.t))
            idx = index[lo:hi] if hi > lo else None
            controls.train_step(
                model,
                opt,
                xp.take(x, idx, axis=0) if idx is not None else None,
                xp.take(t, idx, axis=0) if idx is not None else None,
                self.gradient,
                self.clip_norm,
                functools.partial(
                    self.comm.allreduce_grad, params=params, backend=model.backend, weight=(hi - lo) / (stop - i)
                ),
            )
            if bar:
                bar.update()
            done += 1
            if ckpt.stop_requested(self):  # a signal: finish this step, then stop (fit saves the run)
                break
        if bar:
            bar.close()
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
        with ckpt.locked(self), ckpt.stop_after_step(self):  # one run per checkpoint path
            return self._fit(x_train, t_train, x_test, t_test, x_val, t_val, validation_split)

    def _fit(
        self,
        x_train: Any,
        t_train: Any,
        x_test: Any = None,
        t_test: Any = None,
        x_val: Any = None,
        t_val: Any = None,
        validation_split: float | None = None,
    ) -> History:
        model = self.model
        x, t = model.check_data(x_train, t_train, values=True)  # moved and checked once, never in the step
        test = model.check_data(x_test, t_test, values=True) if x_test is not None else None
        if validation_split is not None and x_val is not None:
            raise ValueError("give validation_split or x_val/t_val, not both")
        if validation_split is not None:
            x, t, *val_data = controls.split_validation(model, x, t, validation_split, self.seed)
            val: tuple[Any, ...] | None = tuple(val_data)
        else:
            val = model.check_data(x_val, t_val, values=True) if x_val is not None else None
        keeper = controls.BestWeights()
        self.history = History(
            config={
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "optimizer": repr(self.optimizer),
                "backend": str(model.backend),
            }
        )
        self.history.config.update(controls.describe(self, validation_split, val))
        self.stop = False
        if self.verbose:
            print(model.summary(), file=self.out)
        run = ckpt.Run(self, (x, t), test)  # fresh, or where restore() left off (RNGs, history, position)
        run.keep(keeper)  # the best weights so far travel with the checkpoint
        best, since_best = run.best, run.since_best
        self.comm.check_equal(
            samples=x.shape[0],
            parameters=model.n_params(),
            batch_size=self.batch_size,
            epochs=self.epochs,
            test_samples=test[0].shape[0] if test is not None else 0,
        )
        self.comm.bcast_data(model.params, model.backend)  # every rank starts from rank 0's parameters
        for epoch in range(run.epoch + 1, run.last + 1):
            start = time.perf_counter() - run.elapsed
            if self.schedule_unit == "epoch":
                self.optimizer.lr = float(self._scheduled(epoch - 1))
            steps = self.train_epoch(x, t, run.order(x.shape[0]), run.step)
            run.steps_done(epoch, steps, -(-x.shape[0] // self.batch_size), start)
            self.comm.bcast_data(model.buffers, model.backend)  # BatchNorm statistics: rank 0's, as DDP
            train_loss, train_acc = self.evaluate(x, t)
            test_loss, test_acc = self.evaluate(*test) if test is not None else (None, None)
            record: dict[str, Any] = {
                "epoch": epoch,
                "train_acc": train_acc,
                "train_loss": train_loss,
                "test_acc": test_acc,
                "test_loss": test_loss,
                "seconds": time.perf_counter() - start,
            }
            if val is not None:
                record["val_loss"], record["val_acc"] = self.evaluate(*val)
            if self.schedule is not None:
                record["lr"] = self.optimizer.lr  # the rate of the epoch's last step
            for name in ("train_loss", "test_loss", "val_loss"):
                if record.get(name) is not None and not math.isfinite(record[name]):
                    raise ValueError(
                        f"non-finite {name.replace('_', ' ')} ({record[name]}) at epoch {epoch}: the learning "
                        f"rate may be too high, the data holds NaN/inf, or labels lie outside [0, classes - 1] "
                        f"(on a device backend an out-of-range label makes the loss NaN instead of raising)"
                    )
            self.history.append(record)
            if self.verbose:
                print(format_epoch(record), file=self.out, flush=True)
            watched = record["val_loss"] if val is not None else test_loss if test_loss is not None else train_loss
            if self.restore_best:
                keeper.update(model, watched, epoch)
            if watched < best:
                best, since_best = watched, 0
            else:
                since_best += 1
            early = self.patience is not None and since_best >= self.patience
            if early and self.verbose:
                print(f"early stop: no improvement for {self.patience} epochs", file=self.out)
            stop = self.comm.any(early or any(cb(self, record) is True for cb in self.callbacks) or self.stop)
            run.end_epoch(epoch, best, since_best, done=stop or epoch == self.epochs)
            if stop:
                break
        if self.restore_best and keeper.epoch is not None:
            keeper.restore(model)
            if self.verbose:
                print(
                    f"restored the weights of epoch {keeper.epoch} (lowest {'validation' if val else 'watched'} "
                    f"loss {keeper.loss:.4f})",
                    file=self.out,
                )
        return self.history


def format_epoch(r: dict[str, Any]) -> str:
    """The articles' per-epoch line: epoch, train acc, train loss, test acc, test loss."""
    line = f"epoch {r['epoch']:3d} | train acc {100 * r['train_acc']:6.2f} | train loss {r['train_loss']:.4f}"
    if r.get("test_acc") is not None:
        line += f" | test acc {100 * r['test_acc']:6.2f} | test loss {r['test_loss']:.4f}"
    if r.get("val_acc") is not None:
        line += f" | val acc {100 * r['val_acc']:6.2f} | val loss {r['val_loss']:.4f}"
    if r.get("lr") is not None:
        line += f" | lr {r['lr']:.4g}"
    return line + f" | {r['seconds']:.2f} s"


def _isatty(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(total: int, out: TextIO) -> Any:
    """A ``tqdm`` bar of ``total`` steps on ``out``, cleared when the epoch ends (its log line stays)."""
    return tqdm(total=total, file=out, leave=False, unit="step", dynamic_ncols=True, mininterval=0.2)

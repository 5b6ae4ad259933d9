"""Run checkpoints: a training run that survives a crash, a kill or Ctrl-C, and resumes exactly.

A run checkpoint is a model file (:func:`xpnet.save`: architecture, weights, buffers, optimizer state)
plus the run's state under ``meta["run"]``: the epoch (and the step inside it, when a signal stopped
the run mid-epoch), the trainer's options, the history so far, the early-stopping counters, the
data-order RNG state, every backend RNG state (host NumPy Generator; torch's generator) and a
fingerprint of the data. ``xpnet.load`` reads the model out of it like any model file.

Resuming restores all of it, so the continued run draws the same batches and the same dropout masks:
the final parameters and history are bitwise those of the uninterrupted run (NumPy, array-api-strict,
torch on CPU; on CuPy the dropout stream restarts, as cuRAND's state cannot be read back).

While :meth:`xpnet.Trainer.fit` runs with a checkpoint, SIGINT and SIGTERM finish the current step,
write the checkpoint and raise :class:`Interrupted` (a ``KeyboardInterrupt``); a second signal stops
at once, leaving the previous checkpoint intact.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import filelock
import numpy as np

from ..backends import resolve_backend, to_numpy
from ..network import fileformat, io
from ..utils import atomic

Trainer = Any
"""An :class:`xpnet.Trainer` (not imported: the trainer imports this module, which stays below it)."""

RUN_VERSION = 1
OPTIONS = (
    "epochs",
    "batch_size",
    "seed",
    "eval_batch_size",
    "patience",
    "checkpoint_every",
    "gradient",
    "clip_norm",
    "restore_best",
)
"""The trainer's options stored with a run (``from_checkpoint`` rebuilds the trainer from them, and the schedule)."""
FIXED = ("batch_size", "seed")
"""Options a resumed run cannot change (they decide the data order)."""
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


# -- reading -----------------------------------------------------------------------------------
_RUN_ARRAY = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z0-9_][A-Za-z0-9_.]*)*")
"""The name of a run array: an extension's state key (EarlyStopping's ``best/params/0.W``, a user's own)."""


def read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, run arrays)`` of a run checkpoint, its run state checked (:func:`check_run`); a plain
    model file is refused with a clear error. The model's own arrays are not read here."""
    path = pathlib.Path(path)
    with fileformat.open_file(path) as archive:
        meta = archive.meta
        run = meta.get("run")
        if not isinstance(run, dict):
            raise ValueError(
                f"{path}: a model file without a training run's state (written by model.save); "
                f"run checkpoints are written by Trainer(..., checkpoint=PATH) or `xpnet train --checkpoint PATH`"
            )
        if run.get("version") != RUN_VERSION:
            raise ValueError(f"{path}: run state version {run.get('version')!r:.20} (this xpnet reads {RUN_VERSION})")
        check_run(path, run)
        names = [n for n in archive.entries if n.startswith("run/")]
        for name in names:
            if not _RUN_ARRAY.fullmatch(name[4:]):
                raise ValueError(f"{path}: unexpected entry {name!r}")
        arrays = {name: archive.array(name) for name in names}
        kinds = {name: archive.dtypes[name] for name in names if name in archive.dtypes}
    meta["run"]["best_dtypes"] = kinds
    return meta, arrays


def _is_int(v: Any, low: int = 0, high: int = 2**62) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < high


def _is_number(v: Any, low: float = 0.0) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= low


OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "batch_size": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "seed": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "eval_batch_size": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "patience": (lambda v: v is None or _is_int(v, 0), "null or an integer >= 0"),
    "checkpoint_every": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "gradient": (lambda v: isinstance(v, str), "a gradient mode"),
    "clip_norm": (lambda v: v is None or (_is_number(v) and v > 0), "null or a finite number > 0"),
    "restore_best": (lambda v: isinstance(v, bool), "true or false"),
}
"""What each stored trainer option may be (the Trainer's constructor then applies its own checks)."""


def check_run(path: pathlib.Path, run: dict[str, Any]) -> None:
    """Every field of a run's state: types, ranges, finiteness (``ValueError`` naming the file and field)."""

    def need(ok: bool, field: str, valid: str) -> None:
        if not ok:
            value = run.get(field) if "." not in field else "..."
            raise ValueError(f"{path}: invalid run state: {field}={value!r:.60} (must be {valid})")

    need(_is_int(run.get("epoch"), 0, 2**31), "epoch", "an integer >= 0")
    need(_is_int(run.get("step"), 0, 2**31), "step", "an integer >= 0")
    need(_is_number(run.get("elapsed")), "elapsed", "a finite number >= 0")
    need(isinstance(run.get("done"), bool), "done", "true or false")
    need(run.get("best") is None or _is_number(run.get("best"), -math.inf), "best", "null or a finite number")
    need(_is_int(run.get("since_best"), 0, 2**31), "since_best", "an integer >= 0")
    need(isinstance(run.get("backend"), str), "backend", "a backend name")
    need(isinstance(run.get("info", {}), dict), "info", "an object")
    need(isinstance(run.get("order_rng"), dict), "order_rng", "a NumPy generator state")
    rng = run.get("rng")
    need(isinstance(rng, list) and len(rng) > 0 and all(isinstance(r, dict) for r in rng), "rng", "RNG states")
    history = run.get("history")
    need(
        isinstance(history, dict)
        and isinstance(history.get("records"), list)
        and all(isinstance(r, dict) for r in history["records"])
        and isinstance(history.get("config"), dict),
        "history",
        "{records: [...], config: {...}}",
    )
    need(run.get("schedule") is None or isinstance(run.get("schedule"), dict), "schedule", "null or an object")
    data = run.get("data")
    need(data is None or isinstance(data, dict), "data", "a data fingerprint")
    options = run.get("trainer")
    if not isinstance(options, dict) or not set(options) <= set(OPTIONS):
        raise ValueError(f"{path}: invalid run state: trainer={options!r:.80} (must hold the trainer's options)")
    for name in FIXED:
        need(name in options, f"trainer.{name}", "present")
    for name, value in options.items():
        check, valid = OPTION_CHECKS[name]
        if not check(value):
            raise ValueError(f"{path}: invalid run state: trainer option {name}={value!r:.60} (must be {valid})")
    best = run.get("best_weights")
    need(
        best is None
        or (isinstance(best, dict) and _is_number(best.get("loss"), -math.inf) and _is_int(best.get("epoch"), 1)),
        "best_weights",
        "null or {loss: finite number, epoch: integer >= 1}",
    )


def info(path: str | os.PathLike) -> dict[str, Any]:
    """The run's state in a checkpoint (epoch, step, done, options, history records, ``info``)."""
    return read(path)[0]["run"]


def _check_architecture(path: pathlib.Path, meta: dict[str, Any], trainer: Trainer) -> None:
    """Refuse a checkpoint of another model, loss, optimizer or dtype than the trainer's."""
    model, opt = trainer.model, trainer.optimizer
    saved, mine = meta["layers"], fileformat.layer_specs(model)
    if saved != mine:
        where = next((i for i, (a, b) in enumerate(zip(saved, mine)) if a != b), min(len(saved), len(mine)))

        def describe(specs: list[dict[str, Any]]) -> str:
            return f"{specs[where]['class']}{specs[where]['config']}" if where < len(specs) else "none"

        raise ValueError(
            f"{path}: the checkpoint holds another architecture ({len(saved)} layers; layer {where} is "
            f"{describe(saved)}, this model's {describe(mine)})"
        )
    if meta["loss"] != fileformat.loss_config(model.loss_layer):
        raise ValueError(
            f"{path}: the checkpoint's loss {meta['loss']} is not this model's "
            f"{fileformat.loss_config(model.loss_layer)}"
        )
    saved_opt = meta.get("optimizer") or {}
    scheduled = {"lr"} if getattr(trainer, "schedule", None) is not None else set()  # a schedule sets lr
    config = {k: v for k, v in opt.config().items() if k not in scheduled}
    if (
        saved_opt.get("class") != type(opt).__name__
        or {k: v for k, v in saved_opt.get("config", {}).items() if k not in scheduled} != config
    ):
        raise ValueError(
            f"{path}: the checkpoint's optimizer {saved_opt.get('class')}({saved_opt.get('config')}) is not "
            f"this trainer's {opt!r}; an exact resume continues the same optimizer"
        )


def restore(trainer: Trainer, path: str | os.PathLike) -> None:
    """Load a run checkpoint into ``trainer`` (its model, optimizer and next ``fit``), after checking
    that it holds the same architecture, optimizer and data-order options."""
    path = pathlib.Path(path)
    meta, arrays = read(path)
    run = meta["run"]
    model, opt = io.load_checkpoint(path, backend=trainer.model.backend)  # every model field checked
    _check_architecture(path, meta, trainer)
    for name in FIXED:
        if run["trainer"][name] != getattr(trainer, name):
            raise ValueError(
                f"{path}: {name}={getattr(trainer, name)!r} differs from the run's {run['trainer'][name]!r} "
                f"(it decides the data order; resume with the run's value)"
            )
    trained = run["epoch"] + (1 if run["step"] else 0)  # a run stopped mid-epoch has begun the next one
    if trained > trainer.epochs:
        raise ValueError(f"{path}: epochs={trainer.epochs}, but the run has already reached epoch {trained}")
    mine = trainer.model
    for key, value in [*model.params.items(), *model.buffers.items()]:
        current = {**mine.params, **mine.buffers}[key]
        if value.dtype != current.dtype:
            raise ValueError(f"{path}: {key!r} is {value.dtype} in the checkpoint, {current.dtype} in this model")
        i, name = key.split(".", 1)
        setattr(mine.layers[int(i)], name, value)
    trainer.optimizer.load_state_dict(opt.state_dict(), mine.params)
    best = _best_arrays(path, run, {k: a for k, a in arrays.items() if k.startswith("run/best/")}, mine)
    saved = {k.removeprefix("run/"): a for k, a in arrays.items() if not k.startswith("run/best/")}  # extensions'
    saved.update({f"best/{k}": a for k, a in best.items()})  # the best weights, checked against the model above
    trainer._resume = {**run, **saved, "path": str(path)}


def _best_arrays(path: pathlib.Path, run: dict[str, Any], arrays: dict[str, np.ndarray], model: Any) -> dict[str, Any]:
    """The run's best weights, ``{"params/0.W": host array, ...}``, checked against ``model`` (every
    parameter and buffer, their shapes and dtypes, finite) before anything may write them into it."""
    best = {k.removeprefix("run/best/"): a for k, a in arrays.items()}
    kinds = {k.removeprefix("run/best/"): v for k, v in run.get("best_dtypes", {}).items()}
    if run["best_weights"] is None:
        if best:
            raise ValueError(f"{path}: best weights stored without their epoch and loss")
        return best
    mine = {f"{kind}/{k}": v for kind in ("params", "buffers") for k, v in getattr(model, kind).items()}
    if set(best) != set(mine):
        raise ValueError(
            f"{path}: the best weights do not match the model: missing {sorted(set(mine) - set(best))[:5]}, "
            f"unexpected {sorted(set(best) - set(mine))[:5]}"
        )
    for key, a in best.items():
        current = mine[key]
        if tuple(a.shape) != tuple(current.shape):
            raise ValueError(f"{path}: best weights {key!r} have shape {a.shape}, the model {tuple(current.shape)}")
        saved_dtype, model_dtype = kinds.get(key, a.dtype.name), str(current.dtype).rsplit(".", 1)[-1]
        if saved_dtype != model_dtype:
            raise ValueError(f"{path}: best weights {key!r} are {saved_dtype}, the model's {model_dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: best weights {key!r} hold NaN or infinity")
    return best


def from_checkpoint(
    cls: type[Trainer],
    path: str | os.PathLike,
    epochs: int | None = None,
    checkpoint: str | os.PathLike | bool = True,
    backend: Any = None,
    device: Any = None,
    **options: Any,
) -> Trainer:
    """See :meth:`xpnet.Trainer.from_checkpoint`."""
    path = pathlib.Path(path)
    meta, _ = read(path)
    run = meta["run"]
    for name in FIXED:
        if name in options:
            raise ValueError(
                f"{name} comes from the checkpoint ({run['trainer'][name]!r}); a resumed run cannot change it"
            )
    model, opt = io.load_checkpoint(path, backend=backend if backend is not None else run["backend"], device=device)
    if "schedule" not in options and run.get("schedule") is not None:
        options["schedule"] = _make_schedule(path, run["schedule"])
    kwargs = {**run["trainer"], **options, "epochs": run["trainer"]["epochs"] if epochs is None else epochs}
    kwargs["checkpoint"] = path if checkpoint is True else (checkpoint or None)
    try:
        trainer = cls(model, opt, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid run state: {e}") from e
    trainer.run_info = dict(run.get("info", {}))
    trainer.restore(path)
    return trainer


def _schedule_spec(schedule: Any) -> dict[str, Any] | None:
    """An :mod:`xpnet.schedules` schedule as JSON (class and fields, nested for ``Join``); another
    callable as its repr, which ``from_checkpoint`` cannot rebuild (it asks for ``schedule=``)."""
    if schedule is None:
        return None
    from ..optim import schedules

    if not (dataclasses.is_dataclass(schedule) and type(schedule).__module__ == schedules.__name__):
        return {"custom": repr(schedule)}

    def value(v: Any) -> Any:
        return [value(u) for u in v] if isinstance(v, tuple) else _schedule_spec(v) if callable(v) else v

    fields = {f.name: value(getattr(schedule, f.name)) for f in dataclasses.fields(schedule)}
    return {"class": type(schedule).__name__, "fields": fields}


def _make_schedule(path: pathlib.Path, spec: Any, nested: int = 0) -> Any:
    """The :mod:`xpnet.schedules` schedule a run stored (classes from :data:`xpnet.schedules.CLASSES`
    only, with their constructors' checks); ``ValueError`` naming the file for anything else."""
    from ..optim import schedules

    if isinstance(spec, dict) and "custom" in spec:
        raise ValueError(
            f"{path}: the run used a schedule that cannot be saved ({spec['custom']!r:.80}); "
            f"pass it again: Trainer.from_checkpoint(path, schedule=...)"
        )
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict) or nested > 8:
        raise ValueError(f"{path}: invalid run state: schedule {spec!r:.80}")
    cls = schedules.CLASSES.get(spec.get("class"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(
            f"{path}: invalid run state: unknown schedule {spec.get('class')!r:.40}; "
            f"valid: {', '.join(schedules.CLASSES)}"
        )

    def value(v: Any) -> Any:
        if isinstance(v, list):
            return tuple(value(u) for u in v)
        return _make_schedule(path, v, nested + 1) if isinstance(v, dict) else v

    try:
        return cls(**{k: value(v) for k, v in spec["fields"].items()})
    except (TypeError, ValueError, OverflowError) as e:
        if str(e).startswith(f"{path}: "):
            raise
        raise ValueError(f"{path}: invalid run state: schedule {spec.get('class')}: {e}") from e


# -- the run -------------------------------------------------------------------------------------
def _fingerprint(model: Any, data: tuple[Any, Any], test: tuple[Any, Any] | None) -> dict[str, Any]:
    """Shapes and position-weighted float64 sums of the data (a reordered or edited copy differs)."""
    xp = model.backend.xp

    def weighted(a: Any) -> float:
        a = a if xp.isdtype(a.dtype, "real floating") else xp.astype(a, xp.float64)  # labels: small
        rows = xp.sum(xp.reshape(a, (a.shape[0], -1)), axis=1, dtype=xp.float64)
        return float(xp.sum(rows * model.backend.from_host(np.linspace(1.0, 2.0, a.shape[0]))))

    def one(pair: tuple[Any, Any] | None) -> dict[str, Any] | None:
        if pair is None:
            return None
        x, t = pair
        return {"x": list(x.shape), "t": list(t.shape), "sums": [weighted(x), weighted(t)]}

    return {"train": one(data), "test": one(test)}


def _check_data(path: str, saved: dict[str, Any], now: dict[str, Any] | None) -> None:
    if now is None:  # no fingerprint taken (neither resuming nor checkpointing): nothing to compare
        return
    for split in ("train", "test"):
        a, b = saved.get(split), now[split]
        if (a is None) != (b is None):
            raise ValueError(
                f"{path}: the run was trained {'with' if a else 'without'} test data; resume it the same way"
            )
        if a is None:
            continue
        if a["x"] != b["x"] or a["t"] != b["t"]:
            raise ValueError(
                f"{path}: the run's {split} data had x of shape {tuple(a['x'])} and t {tuple(a['t'])}, "
                f"got {tuple(b['x'])} and {tuple(b['t'])}; resume with the run's data"
            )
        if not all(math.isclose(u, v, rel_tol=1e-6, abs_tol=1e-9) for u, v in zip(a["sums"], b["sums"])):
            raise ValueError(f"{path}: the {split} data differ from the run's (same shapes, other values or order)")


class Run:
    """The bookkeeping of one ``fit``: position, data-order RNG, checkpoints.

    A fresh run starts at epoch 1 with the order RNG seeded by ``trainer.seed``; after
    :meth:`xpnet.Trainer.restore` it starts where the checkpoint left off, RNGs restored and each of
    ``trainer.extensions`` given the saved state (``load_state_dict``: history, early-stopping counters,
    best weights, a user's own). A checkpoint holds every extension's ``state_dict()`` beside the run's.
    """

    def __init__(self, trainer: Trainer, data: tuple[Any, Any], test: tuple[Any, Any] | None) -> None:
        self.trainer = trainer
        self.order_rng = np.random.default_rng(trainer.seed)
        self.epoch, self.step, self.elapsed = 0, 0, 0.0  # epochs done; steps and seconds into the next
        self.last = trainer.epochs
        self._order_state: Mapping[str, Any] | None = None
        saved, trainer._resume = trainer._resume, None
        self.data = _fingerprint(trainer.model, data, test) if saved or trainer.checkpoint is not None else None
        if saved:
            self._resume(saved, data[0].shape[0])
        elif trainer.checkpoint is not None:
            self.save(0, 0, 0.0, done=False)  # from now on a checkpoint exists, whenever the run is stopped

    def _resume(self, saved: dict[str, Any], samples: int) -> None:
        trainer = self.trainer
        path = saved["path"]
        try:
            _check_data(path, saved["data"], self.data)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: invalid run state: data fingerprint ({type(e).__name__}: {e})") from e
        steps = -(-samples // trainer.batch_size)
        if saved["step"] >= steps:
            raise ValueError(
                f"{path}: invalid run state: step={saved['step']}, but an epoch of {samples} samples in batches "
                f"of {trainer.batch_size} has {steps} steps"
            )
        if saved["epoch"] > saved["trainer"]["epochs"] or saved["since_best"] > saved["epoch"]:
            raise ValueError(
                f"{path}: invalid run state: epoch={saved['epoch']}, since_best={saved['since_best']} "
                f"for a run of {saved['trainer']['epochs']} epochs"
            )
        self.epoch, self.step, self.elapsed = saved["epoch"], saved["step"], saved["elapsed"]
        if saved["done"] and trainer.epochs <= saved["trainer"]["epochs"]:
            self.last = self.epoch  # finished or stopped early: nothing left to train
        ranks = saved["rng"]  # one state per rank: rank r continues its own dropout stream
        try:
            self.order_rng.bit_generator.state = saved["order_rng"]
            trainer.model.backend.set_rng_state(_decode(ranks[_rank(trainer) % len(ranks)]))
        except Exception as e:  # a tampered state: KeyError, TypeError, binascii.Error, RuntimeError, ...
            if isinstance(e, MemoryError):
                raise
            raise ValueError(f"{path}: invalid run state: RNG state ({type(e).__name__}: {e})") from e
        for extension in trainer.extensions:  # history, early-stopping counters, best weights, ...
            extension.load_state_dict(saved)
        if trainer.verbose:
            at = f" and {self.step} steps of epoch {self.epoch + 1}" if self.step else ""
            then = f"training to epoch {self.last}" if self.last > self.epoch else "the run is finished"
            print(f"resumed from {saved['path']} after epoch {self.epoch}{at}; {then}", file=trainer.out)

    def order(self, n: int) -> np.ndarray:
        """This epoch's sample order (the state before it is kept for a mid-epoch checkpoint)."""
        self._order_state = self.order_rng.bit_generator.state
        return self.order_rng.permutation(n)

    def steps_done(self, epoch: int, steps: int, total: int, start: float) -> None:
        """After the epoch's steps: when a signal stopped them early, save where they stopped and raise."""
        signum = self.trainer.signal_received  # agreed by every rank (train_epoch stopped on stop_requested)
        if signum is not None and steps < total:
            self.save(epoch - 1, steps, time.perf_counter() - start, done=False, order_state=self._order_state)
            self._raise(signum, epoch, steps)

    def end_epoch(self, epoch: int, done: bool) -> None:
        """Write the checkpoint every ``checkpoint_every`` epochs (and at the end); honour a signal."""
        self.epoch, self.step, self.elapsed = epoch, 0, 0.0
        trainer = self.trainer
        signalled = stop_requested(trainer)
        if trainer.checkpoint is not None and (done or signalled or epoch % trainer.checkpoint_every == 0):
            self.save(epoch, 0, 0.0, done)
        if signalled and not done:
            self._raise(trainer.signal_received, epoch, 0)

    def _raise(self, signum: int, epoch: int, step: int) -> None:
        comm = getattr(self.trainer, "comm", None)
        if comm is not None and comm.size > 1:
            comm.sum_values(0)  # a barrier: no rank exits (and ends the job) before rank 0 has written
        raise Interrupted(signum, self.trainer.checkpoint, epoch, step, root=_rank(self.trainer) == 0)

    def save(
        self, epoch: int, step: int, elapsed: float, done: bool, order_state: Mapping[str, Any] | None = None
    ) -> None:
        """Write the run's state atomically. Under MPI every rank calls it (the ranks' RNG states are
        gathered) and rank 0 writes: the rest of the state is the same on every rank."""
        trainer = self.trainer
        if trainer.checkpoint is None:
            return
        ranks = _gather(trainer, _encode(trainer.model.backend.rng_state()))
        if _rank(trainer) != 0:
            return
        state = {
            "version": RUN_VERSION,
            "epoch": epoch,
            "step": step,
            "elapsed": elapsed,
            "done": done,
            "trainer": {name: getattr(trainer, name) for name in OPTIONS if hasattr(trainer, name)},
            "order_rng": order_state if order_state is not None else self.order_rng.bit_generator.state,
            "rng": ranks,
            "backend": trainer.model.backend.name,
            "data": self.data,
            "info": trainer.run_info,
            "schedule": _schedule_spec(getattr(trainer, "schedule", None)),
        }
        arrays: dict[str, np.ndarray] = {}
        for extension in trainer.extensions:  # each one's own state: JSON values, host arrays
            for key, value in extension.state_dict().items():
                if key in state or key in arrays:
                    raise ValueError(
                        f"{type(extension).__name__}.state_dict(): {key!r} is taken in the run's state; rename it"
                    )
                (arrays if isinstance(value, np.ndarray) else state)[key] = value
        path = pathlib.Path(trainer.checkpoint)
        fileformat.save(trainer.model, path, trainer.optimizer, run=state, run_arrays=arrays)


def _rank(trainer: Trainer) -> int:
    return getattr(getattr(trainer, "comm", None), "rank", 0)


def _encode(state: dict[str, Any]) -> dict[str, Any]:
    """A backend's RNG state as JSON (generator bytes in base64)."""
    return {
        k: {"uint8": base64.b64encode(v.tobytes()).decode()} if isinstance(v, np.ndarray) else v
        for k, v in state.items()
    }


def _decode(state: dict[str, Any]) -> dict[str, Any]:
    return {
        k: np.frombuffer(base64.b64decode(v["uint8"]), dtype=np.uint8) if isinstance(v, dict) and "uint8" in v else v
        for k, v in state.items()
    }


def _gather(trainer: Trainer, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's ``state`` on every rank (MPI: two allreduces of host buffers; one process: ``[state]``)."""
    comm = getattr(trainer, "comm", None)
    if comm is None or comm.size == 1:
        return [state]
    host = resolve_backend("numpy")
    mine = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    sizes = np.zeros(comm.size)
    sizes[comm.rank] = mine.size
    sizes = to_numpy(comm.allreduce(sizes, host)).astype(int)
    rows = np.zeros((comm.size, int(sizes.max())))
    rows[comm.rank, : mine.size] = mine  # bytes as float64: sums of one non-zero row are exact
    rows = to_numpy(comm.allreduce(rows.reshape(-1), host)).reshape(comm.size, -1)
    return [json.loads(rows[r, : sizes[r]].astype(np.uint8).tobytes()) for r in range(comm.size)]


# -- one run per checkpoint path -----------------------------------------------------------------
class CheckpointInUse(ValueError):
    """Another run (this process or another) holds the checkpoint path's lock."""


def lock_path(path: str | os.PathLike) -> pathlib.Path:
    """The lock file of a checkpoint path: ``.NAME.lock`` beside it (empty; left in place after a run, as
    removing a lock file races with the next run taking it; it never blocks anything by itself)."""
    path = pathlib.Path(path)
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def locked(trainer: Trainer) -> Iterator[None]:
    """Hold the checkpoint path's OS-level lock (``filelock``; ``flock`` on POSIX, released by the OS when
    the process dies) for a ``fit``: a second run on the same path stops at its start with
    :class:`CheckpointInUse`. The holder removes temporary files that killed writers left. Under MPI,
    rank 0 (the writer) takes it and every rank learns whether it did."""
    path = trainer.checkpoint
    if path is None:
        yield
        return
    lock, failure = None, ""
    if _rank(trainer) == 0:
        lock = filelock.FileLock(str(lock_path(path)))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            lock = None
            failure = (
                f"checkpoint: {path} is in use by another run (which holds the lock {lock_path(path)}); wait for "
                f"that run to end or give another checkpoint path"
            )
        except OSError as e:
            lock, failure = None, f"checkpoint: cannot lock {lock_path(path)}: {e}"
    comm = getattr(trainer, "comm", None)
    if comm is not None and comm.size > 1:
        failed = comm.sum_values(1 if failure else 0)[0] > 0
        failure = failure or ("checkpoint: rank 0 could not lock " + str(lock_path(path)) if failed else "")
    if failure:
        if lock is not None:
            lock.release()
        raise CheckpointInUse(failure)
    try:
        if lock is not None:
            atomic.remove_leftovers(path)  # only the lock holder may: no other writer of this path is alive
        yield
    finally:
        if lock is not None:
            lock.release()


def check_path(path: str | os.PathLike | None) -> pathlib.Path | None:
    """A checkpoint path whose folder exists (checked up front, not after the first epoch)."""
    if path is None:
        return None
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint: {path} is a folder; give a file path such as {path / 'run.ckpt'}")
    if not path.parent.is_dir():
        raise ValueError(f"checkpoint: the folder {path.parent} does not exist")
    atomic.check_writable(path)  # a named pipe or device there is refused now, not at the first save
    return path

"""Run checkpoints: a training run that survives a crash, a kill or Ctrl-C, and resumes exactly.

A run checkpoint is a model file (:func:`xpnet.save`: architecture, weights, buffers, optimizer state)
plus the run's state under ``meta["run"]``: the epoch (and the step inside it, when a signal stopped
the run mid-epoch), the trainer's options, the history so far, the early-stopping counters, the
data-order RNG state, every backend RNG state (host NumPy Generator; torch's generator) and a
fingerprint of the data. ``xpnet.load`` reads the model out of it like any model file.

Resuming restores all of it, so the continued run draws the same batches and the same dropout masks:
the final parameters and history are bitwise those of the uninterrupted run (NumPy, array-api-strict,
torch on CPU; on CuPy the dropout stream restarts, as cuRAND's state cannot be read back).

This module reads, checks and restores the file and keeps one run per path; the state itself is
:class:`~xpnet.training.run.Run`, and the signals are handled by :mod:`xpnet.training.interrupts`.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import filelock
import numpy as np

from ..network import fileformat, io
from ..utils import atomic
from .interrupts import SIGNALS, Interrupted, raise_on_sigterm, stop_after_step, stop_requested
from .run import FIXED, OPTIONS, RUN_VERSION, Run, make_schedule, rank_of

__all__ = [
    "SIGNALS",
    "CheckpointInUse",
    "Interrupted",
    "Run",
    "check_path",
    "check_run",
    "from_checkpoint",
    "info",
    "lock_path",
    "locked",
    "raise_on_sigterm",
    "read",
    "restore",
    "stop_after_step",
    "stop_requested",
]
"""The run checkpoint's file (reading, checking, restoring, one writer per path), with the run state
(:mod:`.run`) and the signal handling (:mod:`.interrupts`) under the names they had here."""

Trainer = Any
"""An :class:`xpnet.Trainer` (not imported: the trainer imports this module, which stays below it)."""


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
        options["schedule"] = make_schedule(path, run["schedule"])
    kwargs = {**run["trainer"], **options, "epochs": run["trainer"]["epochs"] if epochs is None else epochs}
    kwargs["checkpoint"] = path if checkpoint is True else (checkpoint or None)
    try:
        trainer = cls(model, opt, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid run state: {e}") from e
    trainer.run_info = dict(run.get("info", {}))
    trainer.restore(path)
    return trainer


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
    if rank_of(trainer) == 0:
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

"""The state of one ``fit`` (:class:`Run`): the epoch and the step inside it, the data-order RNG, every
backend RNG state, a fingerprint of the data, and the extensions' states; written to the run checkpoint
(:mod:`.checkpoint`) and restored from it, so that a resumed run continues bitwise as the uninterrupted one."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backends import resolve_backend, to_numpy
from ..network import fileformat
from .interrupts import Interrupted, stop_requested

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


def schedule_spec(schedule: Any) -> dict[str, Any] | None:
    """An :mod:`xpnet.optim.schedules` schedule as JSON (class and fields, nested for ``Join``); another
    callable as its repr, which ``from_checkpoint`` cannot rebuild (it asks for ``schedule=``)."""
    if schedule is None:
        return None
    from ..optim import schedules

    if not (dataclasses.is_dataclass(schedule) and type(schedule).__module__ == schedules.__name__):
        return {"custom": repr(schedule)}

    def value(v: Any) -> Any:
        return [value(u) for u in v] if isinstance(v, tuple) else schedule_spec(v) if callable(v) else v

    fields = {f.name: value(getattr(schedule, f.name)) for f in dataclasses.fields(schedule)}
    return {"class": type(schedule).__name__, "fields": fields}


def make_schedule(path: pathlib.Path, spec: Any, nested: int = 0) -> Any:
    """The :mod:`xpnet.optim.schedules` schedule a run stored (classes from :data:`xpnet.optim.schedules.CLASSES`
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
        return make_schedule(path, v, nested + 1) if isinstance(v, dict) else v

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
            trainer.model.backend.set_rng_state(_decode(ranks[rank_of(trainer) % len(ranks)]))
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
        raise Interrupted(signum, self.trainer.checkpoint, epoch, step, root=rank_of(self.trainer) == 0)

    def save(
        self, epoch: int, step: int, elapsed: float, done: bool, order_state: Mapping[str, Any] | None = None
    ) -> None:
        """Write the run's state atomically. Under MPI every rank calls it (the ranks' RNG states are
        gathered) and rank 0 writes: the rest of the state is the same on every rank."""
        trainer = self.trainer
        if trainer.checkpoint is None:
            return
        ranks = _gather(trainer, _encode(trainer.model.backend.rng_state()))
        if rank_of(trainer) != 0:
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
            "schedule": schedule_spec(getattr(trainer, "schedule", None)),
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


def rank_of(trainer: Trainer) -> int:
    """The trainer's MPI rank (0 in one process)."""
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

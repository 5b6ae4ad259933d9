"""Learning-rate schedules: small objects, each a pure function of a count (epoch or step).

``schedule(count) -> float`` with ``count = 0, 1, 2, ...`` (optax's model; ``count`` 0 is the first epoch
or step). The :class:`~xpnet.Trainer` calls it on the host before each epoch (``unit="epoch"``, the
default) or each step (``unit="step"``) and writes the Python float into ``optimizer.lr``: no array is
touched, so a schedule never syncs the device. Any callable ``count -> float`` works as a schedule
(it is applied per epoch).

    >>> warmup_cosine(0.1, warmup=4, total=50)(0)    # 0.1 · 1/4
    0.025
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Schedule = Callable[[int], float]
UNITS = ("epoch", "step")


def _positive(name: str, value: float, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")


def _count(name: str, value: Any, owner: str) -> None:
    """An integer >= 1 (a fractional, infinite or non-numeric value gets the clear error)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or math.floor(value) != value
        or value < 1
    ):
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")


def _check_unit(unit: str, owner: str) -> None:
    if not isinstance(unit, str) or unit not in UNITS:
        raise ValueError(f"{owner}: unit must be one of {', '.join(UNITS)}, got {unit!r}")


def _check_count(count: int) -> int:
    if count < 0:
        raise ValueError(f"a schedule's count starts at 0, got {count}")
    return int(count)


@dataclass(frozen=True)
class Constant:
    """``η(n) = lr``."""

    lr: float
    unit: str = "epoch"

    def __post_init__(self) -> None:
        _positive("lr", self.lr, type(self).__name__)
        _check_unit(self.unit, type(self).__name__)

    def __call__(self, count: int) -> float:
        _check_count(count)
        return float(self.lr)


@dataclass(frozen=True)
class StepDecay:
    """``η(n) = lr · γ^⌊n / step_size⌋`` (PyTorch ``StepLR``)."""

    lr: float
    step_size: int | float  # checked: an integer >= 1 (a fractional value gets the clear error)
    gamma: float = 0.1
    unit: str = "epoch"

    def __post_init__(self) -> None:
        _positive("lr", self.lr, "StepDecay")
        _check_unit(self.unit, "StepDecay")
        _count("step_size", self.step_size, "StepDecay")
        _positive("gamma", self.gamma, "StepDecay")

    def __call__(self, count: int) -> float:
        return float(self.lr * self.gamma ** (_check_count(count) // int(self.step_size)))


@dataclass(frozen=True)
class Exponential:
    """``η(n) = lr · γⁿ`` (PyTorch ``ExponentialLR``; Chainer's ``ExponentialShift``)."""

    lr: float
    gamma: float
    unit: str = "epoch"

    def __post_init__(self) -> None:
        _positive("lr", self.lr, "Exponential")
        _check_unit(self.unit, "Exponential")
        _positive("gamma", self.gamma, "Exponential")

    def __call__(self, count: int) -> float:
        return float(self.lr * self.gamma ** _check_count(count))


@dataclass(frozen=True)
class Cosine:
    """``η(n) = min_lr + ½(lr - min_lr)(1 + cos(π·min(n, total)/total))`` (cosine annealing,
    PyTorch ``CosineAnnealingLR`` without restarts; optax ``cosine_decay_schedule``). Stays at
    ``min_lr`` after ``total``."""

    lr: float
    total: int
    min_lr: float = 0.0
    unit: str = "epoch"

    def __post_init__(self) -> None:
        _positive("lr", self.lr, "Cosine")
        _check_unit(self.unit, "Cosine")
        _count("total", self.total, "Cosine")
        min_lr = self.min_lr
        if isinstance(min_lr, bool) or not isinstance(min_lr, numbers.Real) or not 0 <= min_lr <= self.lr:
            raise ValueError(f"Cosine: min_lr must be in [0, lr={self.lr}], got {self.min_lr!r}")

    def __call__(self, count: int) -> float:
        n = min(_check_count(count), int(self.total))
        return float(self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * n / self.total)))


@dataclass(frozen=True)
class LinearWarmup:
    """``η(n) = lr · min(1, (n + 1) / warmup)``: rises linearly over the first ``warmup`` counts
    (the first gets ``lr/warmup``, never 0: no wasted epoch), then stays at ``lr`` (Goyal et al. 2017)."""

    lr: float
    warmup: int
    unit: str = "epoch"

    def __post_init__(self) -> None:
        _positive("lr", self.lr, "LinearWarmup")
        _check_unit(self.unit, "LinearWarmup")
        _count("warmup", self.warmup, "LinearWarmup")

    def __call__(self, count: int) -> float:
        return float(self.lr * min(1.0, (_check_count(count) + 1) / self.warmup))


@dataclass(frozen=True)
class Join:
    """One schedule after another (optax ``join_schedules``): ``schedules[i]`` runs from
    ``boundaries[i-1]`` on, counting from 0 again at each boundary."""

    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...]
    unit: str = "epoch"

    def __post_init__(self) -> None:
        if not all(isinstance(s, (list, tuple)) for s in (self.schedules, self.boundaries)):
            raise ValueError("Join: schedules and boundaries must be sequences")
        for b in self.boundaries:
            _count("boundaries (each)", b, "Join")
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))
        _check_unit(self.unit, "Join")
        if not all(callable(s) for s in self.schedules):
            raise ValueError("Join: every schedule must be a schedule (a callable count -> lr)")
        if len(self.schedules) != len(self.boundaries) + 1:
            raise ValueError(
                f"Join: {len(self.schedules)} schedules need {len(self.schedules) - 1} boundaries, "
                f"got {len(self.boundaries)}"
            )
        if any(b < 1 for b in self.boundaries) or list(self.boundaries) != sorted(set(self.boundaries)):
            raise ValueError(f"Join: boundaries must be increasing integers >= 1, got {list(self.boundaries)}")

    def __call__(self, count: int) -> float:
        count = _check_count(count)
        start = 0
        for schedule, boundary in zip(self.schedules, (*self.boundaries, math.inf)):
            if count < boundary:
                return float(schedule(count - start))
            start = int(boundary)
        raise AssertionError("unreachable")  # the last boundary is infinite


def warmup_cosine(lr: float, warmup: int, total: int, min_lr: float = 0.0, unit: str = "epoch") -> Join:
    """Linear warm-up over ``warmup`` counts, then cosine annealing to ``min_lr`` at ``total``."""
    if warmup >= total:
        raise ValueError(f"warmup_cosine: warmup ({warmup}) must be shorter than total ({total})")
    return Join((LinearWarmup(lr, warmup, unit), Cosine(lr, total - warmup, min_lr, unit)), (warmup,), unit)


CLASSES: dict[str, type] = {c.__name__: c for c in (Constant, StepDecay, Exponential, Cosine, LinearWarmup, Join)}
"""The schedule classes by name: the ones a run checkpoint may name (nothing else is reachable)."""


def unit_of(schedule: Schedule) -> str:
    """``"epoch"`` or ``"step"``: when the trainer applies ``schedule`` (plain callables: per epoch)."""
    unit = getattr(schedule, "unit", "epoch")
    _check_unit(unit, type(schedule).__name__)
    return unit


SCHEDULES = ("constant", "step", "exponential", "cosine")
"""The command line's schedule names (``--schedule``)."""


def from_spec(spec: str | None, lr: float, epochs: int, warmup: int = 0) -> Schedule | None:
    """A per-epoch schedule from the command line's ``--schedule`` and ``--warmup``.

    ``spec``: ``constant`` | ``step[:STEP_SIZE[:GAMMA]]`` (default every ``epochs//3`` epochs, γ 0.1) |
    ``exponential[:GAMMA]`` (default 0.95) | ``cosine[:MIN_LR]`` (to 0 by default, over the epochs left
    after the warm-up). ``warmup`` > 0 puts a linear warm-up of that many epochs first. ``None`` with
    no warm-up is no schedule. Errors name the option and say what is valid.
    """
    name, *args = (spec or "constant").split(":")
    usage = "valid: constant | step[:STEP_SIZE[:GAMMA]] | exponential[:GAMMA] | cosine[:MIN_LR]"
    if name not in SCHEDULES:
        raise ValueError(f"--schedule: unknown schedule {name!r}; {usage}")
    if int(warmup) != warmup or warmup < 0:
        raise ValueError(f"--warmup must be an integer >= 0 epochs, got {warmup!r}")
    warmup = int(warmup)
    if warmup >= epochs:
        raise ValueError(f"--warmup ({warmup}) must be fewer than --epochs ({epochs})")
    if spec is None and not warmup:
        return None
    max_args = {"constant": 0, "step": 2, "exponential": 1, "cosine": 1}[name]
    try:
        if len(args) > max_args:
            raise ValueError(f"{name} takes at most {max_args} value(s)")
        values = [float(a) for a in args]
        left = epochs - warmup
        if name == "constant":
            main: Schedule = Constant(lr)
        elif name == "step":
            size = values[0] if values else max(1, left // 3)
            whole = math.isfinite(size) and size == int(size)
            main = StepDecay(lr, int(size) if whole else size, values[1] if len(values) > 1 else 0.1)
        elif name == "exponential":
            main = Exponential(lr, values[0] if values else 0.95)
        else:
            main = Cosine(lr, left, values[0] if values else 0.0)
    except ValueError as e:
        raise ValueError(f"--schedule {spec}: {e}; {usage}") from None
    return Join((LinearWarmup(lr, warmup), main), (warmup,)) if warmup else main


def values(schedule: Schedule, counts: Sequence[int] | int) -> list[float]:
    """``[schedule(n) for n in counts]`` (``counts`` an int means ``range(counts)``): for plots and tables."""
    return [schedule(n) for n in (range(counts) if isinstance(counts, int) else counts)]

"""Memory a run needs, estimated before anything is allocated, and the memory this process may use.

:func:`mlp_bytes` counts what an MLP's training holds at its peak: parameters, gradients and optimizer
state, the activations of a training step and of an evaluation batch, and the host draw of the largest
weight matrix while it is built. :func:`available` is what the process may still allocate: the least of
the host's available memory, the address-space limit (``RLIMIT_AS``, ``ulimit -v``) less what the
process already maps, and a cgroup (container) limit; on a GPU, the device's free memory. The command
line refuses a run whose estimate exceeds it (:func:`refusal`) before building the model.
"""

from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Sequence
from typing import Any

from ..optim.optimizers import OPTIMIZERS

DATASET_SIZES = {"digits": (1797, 64), "mnist": (70000, 784), "fashion-mnist": (70000, 784)}
"""(samples, features) of the command line's data sets (train and test together)."""

ACTIVATION_COPIES = 4
"""Arrays of a hidden layer's width per sample alive at a training step's peak: the affine output, the
activation's output, what its backward keeps (mask or derivative) and the gradient flowing back (an
evaluation batch keeps only a layer's input and output)."""

HOST_DRAW_BYTES = 8
"""Bytes per weight of the host draw while a layer is initialised (float64; the model's copy is made from it)."""


def mlp_bytes(
    sizes: Sequence[int],
    batch_size: int,
    itemsize: int = 4,
    optimizer_slots: int = 0,
    eval_batch_size: int = 10000,
    batchnorm: bool = False,
    data_values: int = 0,
) -> dict[str, int]:
    """Peak bytes of training an MLP of layer ``sizes`` (``[features, hidden..., classes]``).

    Returns ``{"parameters", "activations", "build", "data", "total"}``: parameters with their gradients
    and ``optimizer_slots`` state arrays each; activations of the larger of a training step and an
    evaluation batch; the largest weight's host draw and its copy in the model's dtype while it is built;
    ``data_values`` values of data (host copy and model copy). ``total`` is the larger peak, building or
    training (a draw is freed before training starts), plus the data."""
    weights = [a * b for a, b in itertools.pairwise(sizes)]
    n_params = sum(weights) + sum(sizes[1:]) + (4 * sum(sizes[1:-1]) if batchnorm else 0)
    params = n_params * itemsize * (2 + optimizer_slots)
    step = batch_size * itemsize * (sizes[0] + ACTIVATION_COPIES * sum(sizes[1:]))
    evaluation = eval_batch_size * itemsize * 2 * max(sizes)  # a layer's input and output at once
    activations = max(step, evaluation)
    build = max(weights, default=0) * (HOST_DRAW_BYTES + itemsize)
    data = 2 * data_values * itemsize
    total = data + max(n_params * itemsize + build, params + activations)
    return {"parameters": params, "activations": activations, "build": build, "data": data, "total": total}


def available(backend: Any = None) -> int | None:
    """Bytes this process may still allocate where ``backend`` keeps its arrays (``None``: unknown).

    Host memory: the least of ``MemAvailable`` (Linux), the address-space limit less the process's
    current size, and the cgroup limit less its usage. A device: its free memory, as the backend reports
    it (``device_memory_free``)."""
    if backend is not None and not backend.host_memory:
        free = getattr(backend, "device_memory_free", lambda: None)()
        return None if free is None else int(free)
    limits = [v for v in (_meminfo_available(), _address_space_left(), _cgroup_left()) if v is not None]
    return min(limits) if limits else None


def refusal(estimate: dict[str, int], budget: int | None, what: str) -> str | None:
    """A one-line reason to refuse a run whose ``estimate`` exceeds ``budget`` bytes, else ``None``."""
    if budget is None or estimate["total"] <= budget:
        return None
    return (
        f"{what} needs about {_gb(estimate['total'])} ({_gb(estimate['parameters'])} of parameters, gradients "
        f"and optimizer state, {_gb(estimate['activations'])} of activations), but this process may use "
        f"{_gb(budget)} (the least of the available memory, ulimit -v and the device's free memory): "
        f"choose smaller sizes"
    )


def for_config(cfg: dict[str, Any], backend: Any, hidden: Sequence[int]) -> str | None:
    """The command line's check of an ``mlp`` run configuration (``cfg``: its settings; ``hidden``: the
    parsed ``--hidden``): a one-line reason to refuse it, or ``None`` (other models are small and fixed)."""
    if cfg.get("model", "mlp") != "mlp":
        return None
    samples, features = DATASET_SIZES.get(cfg.get("dataset", ""), (0, 1))
    optimizer = OPTIMIZERS.get(str(cfg.get("optimizer", "sgd")).lower())
    estimate = mlp_bytes(
        [features, *hidden, 10],  # the command line's data sets have 10 classes
        int(cfg.get("batch_size") or 1),
        itemsize=4 if cfg.get("dtype") in (None, "float32") else 8 if cfg.get("dtype") == "float64" else 2,
        optimizer_slots=len(optimizer.slots) if optimizer is not None else 0,
        batchnorm=bool(cfg.get("batchnorm")),
        data_values=samples * features,
    )
    sizes = ",".join(map(str, hidden))
    return refusal(estimate, available(backend), f"an MLP of hidden sizes {sizes}")


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _meminfo_available() -> int | None:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other POSIX systems: free pages (an underestimate of what could be freed)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_left() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    return max(0, soft - _mapped())


def _mapped() -> int:
    """The process's current virtual size (what counts against ``RLIMIT_AS``), 0 where unknown."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_left() -> int | None:
    """cgroup v2 ``memory.max`` less ``memory.current`` of this process's group (containers)."""
    try:
        group = pathlib.Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        folder = pathlib.Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((folder / "memory.current").read_text()))
    except (OSError, ValueError, IndexError):
        return None

"""pytest-benchmark suite: kernels and training steps on every available backend.

Run the full suite (see docs/benchmarks.md):

    python -m pytest benchmarks --benchmark-enable --benchmark-group-by=group --benchmark-columns=median,iqr,ops

In the default test run (``--benchmark-disable`` from pyproject.toml) each benchmark body runs once,
so the suite is exercised by CI and cannot rot. ``XPNET_BENCH_QUICK=1`` shrinks the sizes.
GPU timings synchronise inside the timed function: an asynchronous launch is never what is timed.
"""

from __future__ import annotations

import gc
import os

import pytest

import xpnet
from xpnet.backend import BACKEND_NAMES, BackendUnavailableError

QUICK = os.environ.get("XPNET_BENCH_QUICK") == "1"


@pytest.fixture(autouse=True)
def _reset():
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")
    yield
    gc.collect()
    xpnet.set_backend("numpy")


@pytest.fixture(params=[*BACKEND_NAMES, "torch:cuda"])
def backend(request):
    name, _, device = request.param.partition(":")
    try:
        b = xpnet.set_backend(name, device=device or None)
    except BackendUnavailableError as e:
        pytest.skip(f"backend {request.param} unavailable here: {e}")
    yield b
    from xpnet.bench import _free_memory

    _free_memory(b)


def big(backend, full: int, strict: int) -> int:
    """A size: ``full`` normally, ``strict`` on array_api_strict (slow by design), tiny in quick mode."""
    if QUICK:
        return max(2, min(full, strict) // 8)
    return strict if backend.name == "array_api_strict" else full


def synced(backend, f):
    """``f`` followed by a device synchronisation (a no-op on CPU backends)."""

    def run():
        out = f()
        backend.synchronize()
        return out

    return run


def torch_device(backend):
    """The torch device beside ``backend`` for the PyTorch peer, or skip."""
    pytest.importorskip("torch", reason="the PyTorch peer needs torch")
    from xpnet.bench import _torch_device

    device = _torch_device(backend)
    if device is None:
        pytest.skip(f"no PyTorch device beside {backend}")
    return device

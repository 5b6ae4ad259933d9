"""pytest-benchmark suite: kernels and training steps on every available backend.

Run the full suite (see docs/benchmarks.md):

    python -m pytest benchmarks --benchmark-enable --benchmark-group-by=group --benchmark-columns=median,iqr,ops

In the default test run (``--benchmark-disable`` from pyproject.toml) each benchmark body runs once,
so the suite is exercised by CI and cannot rot. ``XPNET_BENCH_QUICK=1`` shrinks the sizes.
GPU timings synchronise inside the timed function: an asynchronous launch is never what is timed.
"""

from __future__ import annotations

import contextlib
import gc

import pytest

import xpnet
from xpnet.backend import BACKEND_NAMES, BackendUnavailableError


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record in the raw JSON what the figures depend on: the BLAS kernel and threads, the pinned-kernel
    variables (none in a benchmark run), PyTorch's version and threads, and the command."""
    import sys

    import numpy

    from xpnet.bench import blas_info

    with contextlib.suppress(ImportError):
        import torch  # noqa: F401  (blas_info reports it once imported)
    machine_info["xpnet"] = {"blas": blas_info(), "numpy": numpy.__version__, "command": " ".join(sys.argv)}


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
    from xpnet.bench import free_memory

    free_memory(b)


@pytest.fixture(params=["native", "reference"])
def kernels_path(request, backend):
    """Each kernel path of the backend (:mod:`xpnet.kernels`) as its own benchmark row; "native" is skipped
    where the backend has no native kernels (it would time the reference again)."""
    from xpnet import kernels
    from xpnet.bench import kernel_paths

    if request.param not in kernel_paths(backend):
        pytest.skip(f"{backend} has no native kernels: its native path is the reference")
    with kernels.using(request.param):
        yield request.param

"""One suite, every backend: the ``backend`` fixture runs a test on each available library."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.backend import BACKEND_NAMES, BackendUnavailableError
from xptest import CPU_BACKENDS


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Each test starts on numpy/float32 and leaves the global state as it found it."""
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")
    xpnet.seed(0)
    yield
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")


def _activate(name: str):
    name, _, device = name.partition(":")
    try:
        return xpnet.set_backend(name, device=device or None)
    except BackendUnavailableError as e:  # e.g. no CUDA device on this machine
        pytest.skip(f"backend {name} unavailable here: {e}")


@pytest.fixture(params=[*BACKEND_NAMES, "torch:cuda"])
def backend(request):
    """Activates each backend in turn, torch on CUDA too (skipped, with the reason, where it cannot run)."""
    return _activate(request.param)


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    return _activate(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

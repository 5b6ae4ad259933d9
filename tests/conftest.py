"""One suite, every backend: the ``backend`` fixture runs a test on each available library."""

from __future__ import annotations

import os

import numpy as np
import pytest
from xptest import CPU_BACKENDS, DEVICE_BACKENDS, KERNEL_MODES, backend_device_combinations, kernel_modes, skip_summary

import xpnet
from xpnet import kernels
from xpnet.backends import BackendUnavailableError

# NumPy's compiled kernels are opt-in (measured slower than im2col, xpnet/backends/_numpy.py); where numba is
# installed (CI's extras job) the suite runs them on every native-path case.
os.environ.setdefault("XPNET_NUMBA_KERNELS", "1")


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Each test starts on numpy/float32 and leaves the global state as it found it."""
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")
    xpnet.seed(0)
    mode = kernels.current()
    yield
    kernels.use(mode)
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")


def _activate(spec: str):
    try:
        return xpnet.set_backend(spec)
    except BackendUnavailableError as e:  # e.g. no CUDA device on this machine
        pytest.skip(f"backend {spec} unavailable here: {e}")


@pytest.fixture(params=backend_device_combinations(values=True))
def backend(request):
    """Activates each backend and device whose arrays hold values in turn: the host libraries, strict's
    emulated ``device1``, CuPy and torch on CUDA (skipped, with the reason, where they cannot run)."""
    return _activate(request.param)


@pytest.fixture(params=DEVICE_BACKENDS)
def device_backend(request):
    """Each off-host device: strict ``device1`` and torch ``meta`` (emulated, here), CuPy and torch CUDA."""
    return _activate(request.param)


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    return _activate(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=KERNEL_MODES)
def kernels_mode(request):
    """Runs a test on each kernel path (:mod:`xpnet.kernels`) of the test's backend; "native" is skipped where
    the backend has no native kernels (its run would repeat the reference's)."""
    for name in ("backend", "device_backend", "cpu_backend"):
        if name in request.fixturenames:
            active = request.getfixturevalue(name)
            break
    else:
        active = xpnet.get_backend()
    if request.param not in kernel_modes(active):
        pytest.skip(f"{active} has no native kernels: its native path is the reference")
    with kernels.using(request.param):
        yield request.param


def pytest_terminal_summary(terminalreporter):
    """Skips as one count per reason, after the failures and errors (``-rfE`` in pyproject.toml)."""
    skip_summary(terminalreporter)

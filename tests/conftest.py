"""One suite, every backend: the ``backend`` fixture runs a test on each available library."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.backend import BACKEND_NAMES, BackendUnavailableError


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


CPU_BACKENDS = ("numpy", "torch", "array_api_strict")


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    return _activate(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def host(x):
    return np.asarray(xpnet.to_numpy(x))


def assert_input_gradient(model, x, t, eps=1e-6):
    """``model.dx`` (built with ``input_grad=True``) against central differences of the loss in x."""
    model.gradient(x, t)
    dx = host(model.dx)
    num = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        with model.frozen():
            num[i] = (float(model.loss(up, t)) - float(model.loss(down, t))) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-8)


def assert_same_on_cpu_backends(build, x, t, seed=7):
    """``build()`` under the same seed on every CPU backend (float64): same outputs and gradients."""
    results = {}
    for name in CPU_BACKENDS:
        try:
            xpnet.set_backend(name)
        except xpnet.BackendUnavailableError:
            continue
        xpnet.set_default_dtype("float64")
        xpnet.seed(seed)
        model = build()
        results[name] = (host(model.predict(x)), {k: host(v) for k, v in model.gradient(x, t).items()})
    assert len(results) >= 2, "needs at least two CPU backends"
    y0, g0 = results["numpy"]
    for name, (y, g) in results.items():
        np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12, err_msg=name)
        for k in g0:
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-10, atol=1e-12, err_msg=f"{name} {k}")

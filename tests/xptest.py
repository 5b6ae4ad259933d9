"""Helpers shared by the test modules (a plain module: two conftest.py files cannot both be imported
as ``conftest`` when tests/ and benchmarks/ are collected in one run)."""

from __future__ import annotations

import numpy as np

import xpnet

CPU_BACKENDS = ("numpy", "torch", "array_api_strict")
"""Backends whose arrays live in host memory (reading a value is free)."""

DEVICE_BACKENDS = ("array_api_strict:device1", "torch:meta", "cupy", "torch:cuda")
"""Off-host devices, as ``name:device``: two emulated (strict ``device1`` refuses to mix with the CPU
device or to convert implicitly to NumPy; torch ``meta`` holds no data, so every host read raises) and
the real CUDA ones (skipped, with the reason, where no GPU answers)."""


def backend_device_combinations(values: bool = True) -> tuple[str, ...]:
    """Every ``name[:device]`` a test should run on (scikit-learn's
    ``yield_namespace_device_dtype_combinations``): the host backends and the off-host devices;
    with ``values=True`` only those whose arrays hold values (torch ``meta`` holds none)."""
    devices = [d for d in DEVICE_BACKENDS if not (values and d == "torch:meta")]
    return ("numpy", "torch", "array_api_strict", *devices)


def host(x):
    """Any backend's array as a host NumPy array."""
    return np.asarray(xpnet.to_numpy(x))


def assert_input_gradient(model, x, t, eps=1e-6):
    """``model.dx`` (built with ``input_grad=True``) against central differences of the loss in x."""
    model.gradient(x, t)
    dx = host(model.dx)
    np.testing.assert_allclose(dx, numerical_input_gradient(model, x, t, eps), rtol=1e-5, atol=1e-8)


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


def skip_reason(report) -> str:
    """A skipped test's reason, without pytest's ``Skipped: `` prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def skip_summary(terminalreporter) -> None:
    """The suite's skips as one count per reason (``-rfE`` reports failures and errors in full; ``-ra``
    listed every skipped test, hundreds of lines burying the result)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts: dict[str, int] = {}
    for report in skipped:
        reason = skip_reason(report)
        counts[reason] = counts.get(reason, 0) + 1
    terminalreporter.write_sep("=", f"{len(skipped)} skipped, by reason")
    for reason, n in sorted(counts.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{n:5d} × {reason}")


KERNEL_MODES = ("native", "reference")
"""The two kernel paths (:mod:`xpnet.kernels`)."""


def kernel_modes(backend=None) -> tuple[str, ...]:
    """The kernel modes whose paths differ on ``backend`` (default: the active one): both where its adapter
    has native kernels, else the reference alone (there "native" runs the reference too)."""
    backend = backend or xpnet.get_backend()
    return KERNEL_MODES if backend.native_kernels() is not None else ("reference",)


def numerical_input_gradient(model, x, t, eps=1e-6):
    """Central differences of the loss in each element of ``x`` (host float64)."""
    num = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        with model.frozen():
            num[i] = (float(model.loss(up, t, train=True)) - float(model.loss(down, t, train=True))) / (2 * eps)
    return num


def assert_gradients_on_every_path(model, x, t, tol=1e-6, input_gradient=True):
    """The gradient check (float64) of ``model``'s backprop on each kernel path the backend has.

    Central differences are taken once, with the forwards of the mode in force (both paths' forwards agree
    to rounding: tests/test_conv.py compares them directly); each path's backprop — parameters, as
    :func:`xpnet.gradient_check` measures them, and the input gradient where ``input_gradient`` — is
    checked against them."""
    from xpnet import kernels
    from xpnet.gradient import numerical_gradient

    numeric = {k: host(v) for k, v in numerical_gradient(model, x, t).items()}
    num_dx = numerical_input_gradient(model, x, t) if input_gradient else None
    for mode in kernel_modes(model.backend):
        with kernels.using(mode), model.frozen():
            grads = {k: host(v) for k, v in model.gradient(x, t).items()}
            dx = host(model.dx) if input_gradient else None
        for k, g in grads.items():
            error = np.max(np.abs(g - numeric[k]) / np.maximum(1e-8, np.abs(g) + np.abs(numeric[k])), initial=0.0)
            assert error < tol, f"{mode} path, {k}: relative error {error}"
        if input_gradient:
            np.testing.assert_allclose(dx, num_dx, rtol=1e-5, atol=1e-8, err_msg=f"{mode} path, input gradient")

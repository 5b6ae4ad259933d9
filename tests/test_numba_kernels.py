"""NumPy's compiled kernels (numba, issue 25) against the reference layers: outputs and every gradient.

The kernel cases share three compiled kernel sizes (3×3 in float64 and float32, 2×3 in float64: the
strided cases map onto them), so the first run compiles six kernels and later runs load numba's disk cache.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import xpnet
from xpnet import layers as L
from xpnet.backends import _numpy

try:
    from xpnet.backends import _numba
except ImportError:  # no numba: the tests that need it skip
    _numba = None  # type: ignore[assignment]

requires_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None,
    reason="numba is not installed: the NumPy compiled kernels (pip install numba, or xpnet[fast]) are off",
)
TOL = {"float64": 1e-12, "float32": 2e-5}


@pytest.fixture(scope="module")
def kernels():
    k = _numpy.numba_kernels()
    assert isinstance(k, _numba.NumbaKernels)
    return k


def _close(got, want, dtype):
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(float(np.abs(want).max()), 1.0)
    assert float(np.abs(got - want).max()) <= TOL[dtype] * scale


# (N, C, F, H, W, kernel, stride, pad, dtype): stride 2 and 3 run as 2×3 stride-1 kernels over phase planes
CONV_CASES = {
    "3x3-pad0": (2, 3, 5, 7, 8, (3, 3), 1, 0, "float64"),
    "3x3-pad1": (2, 3, 6, 7, 8, (3, 3), 1, 1, "float64"),
    "3x3-pad2": (2, 2, 5, 6, 5, (3, 3), 1, 2, "float64"),
    "pad-beyond-kernel": (2, 2, 3, 5, 6, (2, 3), 1, 3, "float64"),  # dY cropped for dX
    "non-square": (2, 3, 4, 6, 9, (2, 3), 1, 1, "float64"),
    "stride2-non-square": (2, 3, 5, 9, 11, (3, 5), 2, 1, "float64"),
    "stride3-pad2": (2, 2, 3, 10, 12, (6, 9), 3, 2, "float64"),
    "batch1-float32": (1, 2, 7, 6, 6, (3, 3), 1, 1, "float32"),
    "float32-lenet": (3, 1, 6, 8, 8, (3, 3), 1, 0, "float32"),
}


@requires_numba
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_convolution_equals_the_reference_layer(kernels, rng, case):
    n, c, f, h, w, k, s, p, dtype = CONV_CASES[case]
    xpnet.set_default_dtype(dtype)
    conv = L.Convolution(c, f, k, stride=s, pad=p)
    conv.b[...] = rng.standard_normal(f)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y_ref = conv.forward(x)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = conv.backward(dy)
    assert kernels.supports_conv2d(x, conv.W, s, p) == (c * k[0] * k[1] >= _numba.MIN_COLUMN_ROWS)
    _close(kernels.conv2d(x, conv.W, conv.b, s, p), y_ref, dtype)
    dx, dw, db = kernels.conv2d_backward(dy, x, conv.W, s, p, need_dx=True)
    _close(dx, dx_ref, dtype)
    _close(dw, conv.dW, dtype)
    _close(db, conv.db, dtype)
    assert kernels.conv2d_backward(dy, x, conv.W, s, p, need_dx=False)[0] is None


@requires_numba
def test_convolution_takes_non_contiguous_input(kernels, rng):
    xpnet.set_default_dtype("float64")
    conv = L.Convolution(3, 4, 3, pad=1)
    x = rng.standard_normal((2, 6, 7, 3)).transpose(0, 3, 1, 2)[:, :, :, ::-1]  # strided view, negative stride
    _close(kernels.conv2d(x, conv.W, conv.b, 1, 1), conv.forward(np.ascontiguousarray(x)), "float64")


def _with_infinities(rng, shape):
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.1] = np.inf
    x[rng.random(shape) < 0.1] = -np.inf
    return x


# (size, stride, pad): non-overlapping, overlapping, padded (zeros take part, as in the reference), non-square
POOL_CASES = [((2, 2), 2, 0), ((3, 3), 2, 1), ((2, 3), 1, 0), ((3, 2), 1, 2), ((2, 2), 3, 0)]


@requires_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("size, stride, pad", POOL_CASES)
@pytest.mark.parametrize("data", ["normal", "ties", "negative", "nan", "inf"])
def test_max_pooling_equals_the_reference_layer(kernels, rng, dtype, size, stride, pad, data):
    shape = (1, 3, 7, 8) if data == "normal" else (2, 2, 6, 7)
    x = {
        "normal": lambda: rng.standard_normal(shape),
        "ties": lambda: rng.integers(0, 2, shape).astype(float),  # many equal maxima: the first one wins
        "negative": lambda: -rng.random(shape) - 0.5,  # the padding's zeros win the border windows
        "nan": lambda: np.where(rng.random(shape) < 0.1, np.nan, rng.standard_normal(shape)),
        "inf": lambda: _with_infinities(rng, shape),
    }[data]().astype(dtype)
    xpnet.set_default_dtype(dtype)
    pool = L.Pooling(size, stride, pad)
    y_ref = pool.forward(x)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = pool.backward(dy)
    assert kernels.supports_max_pool(x, size, stride, pad)
    y, state = kernels.max_pool(x, size, stride, pad)
    np.testing.assert_array_equal(y, y_ref)  # exact: a maximum, no arithmetic
    assert y.dtype == y_ref.dtype
    dx = kernels.max_pool_backward(dy, state, x.shape, size, stride, pad)
    np.testing.assert_allclose(dx, dx_ref, rtol=TOL[dtype], atol=TOL[dtype])
    assert dx.dtype == dx_ref.dtype


@requires_numba
def test_unsupported_cases_are_declined(kernels):
    x16, w16 = np.zeros((1, 1, 4, 4), np.float16), np.zeros((1, 1, 3, 3), np.float16)
    assert not kernels.supports_conv2d(x16, w16, 1, 0)
    assert not kernels.supports_conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3), np.float32), 1, 0)
    assert not kernels.supports_conv2d(np.zeros((1, 1, 9, 9)), np.zeros((1, 1, 8, 8)), 1, 0)  # 64 taps
    assert not kernels.supports_conv2d(np.zeros((1, 3, 9, 9)), np.zeros((8, 3, 3, 3)), 1, 0)  # 27 im2col rows
    assert kernels.supports_conv2d(np.zeros((1, 4, 9, 9)), np.zeros((8, 4, 3, 3)), 1, 0)
    assert not kernels.supports_max_pool(x16, (2, 2), 2, 0)
    assert kernels.supports_max_pool(np.zeros((1, 1, 4, 4)), (2, 2), 2, 0)


@requires_numba
def test_compile_time_is_reported(kernels, rng):
    for _ in range(2):
        kernels.conv2d(rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((4, 1, 3, 3)), np.zeros(4), 1, 0)
    assert kernels.jit_seconds > 0
    assert "conv3x3.forward" in [label for label, _, _ in kernels.compiled]
    compiled = [(label, signature) for label, signature, _ in kernels.compiled]
    assert len(compiled) == len(set(compiled))  # each kernel and signature compiled once per process


@requires_numba
def test_one_kernel_set_per_process():
    assert _numpy.numba_kernels() is _numpy.numba_kernels()
    assert xpnet.get_backend().native_kernels() is _numpy.numba_kernels()


@requires_numba
def test_kernels_are_written_in_memory_where_no_cache_directory_can_be_made(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(_numba, "_kernel_dir", lambda: blocker / "kernels")  # mkdir under a file fails
    module = _numba._load_conv(1, 2)
    assert hasattr(module.forward, "signatures") and hasattr(module.wgrad, "signatures")


@requires_numba
def test_jit_without_a_cache_location_compiles_per_process():
    namespace: dict = {}
    exec("def f(a):\n    return a + 1\n", namespace)  # no source file: numba has nowhere to cache it
    assert _numba.jit(namespace["f"], parallel=False)(1) == 2


# -- without numba (these run everywhere) ------------------------------------------------------


def test_import_xpnet_imports_no_numba():
    code = "import sys, xpnet; xpnet.get_backend(); assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_mlp_step_imports_no_numba():
    """The main job (an MLP: Affine, ReLU) never loads the compiled convolution: ReLU asks for a native
    ``relu``, which NumPy's adapter does not list in ``native_ops``."""
    code = (
        "import sys, numpy as np, xpnet\nfrom xpnet import layers as L\n"
        "m = xpnet.Sequential([L.Affine(6, 5), L.ReLU(), L.Affine(5, 3)])\n"
        "m.gradient(np.ones((4, 6)), np.arange(4) % 3)\n"
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_numba_the_reference_runs(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.delitem(sys.modules, "xpnet.backends._numba", raising=False)
    _numpy.numba_kernels.cache_clear()
    try:
        assert xpnet.get_backend().native_kernels() is None
    finally:
        monkeypatch.undo()
        _numpy.numba_kernels.cache_clear()

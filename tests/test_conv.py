"""Convolution, pooling and Flatten: gradient checks (float64) on every backend and both kernel paths
(native where the backend has them, and the array-API reference), the paths compared directly, im2col
identities."""

import numpy as np
import pytest
from xptest import assert_gradients_on_every_path, assert_same_on_cpu_backends, host, kernel_modes

import xpnet
from xpnet import kernels
from xpnet import layers as L
from xpnet.layers.im2col import col2im, im2col


@pytest.fixture(autouse=True)
def _native_pooling_on_the_cpu_too(monkeypatch):
    """ATen's max-pooling is off on the CPU by default (slower there than the reference); here it is on, so
    that its CPU results are checked against the reference too."""
    from xpnet.backends._aten import AtenKernels

    monkeypatch.setattr(AtenKernels, "max_pool_on_cpu", True)


CONV_CASES = {
    "plain": dict(c=1, fn=2, k=3, stride=1, pad=0, hw=(5, 5), n=2),
    "stride2-pad1": dict(c=2, fn=3, k=3, stride=2, pad=1, hw=(6, 5), n=2),
    "non-square": dict(c=2, fn=2, k=(2, 3), stride=1, pad=1, hw=(4, 5), n=2),
    "batch-of-one": dict(c=3, fn=2, k=2, stride=1, pad=0, hw=(4, 4), n=1),
    "pad-wider-than-kernel": dict(c=2, fn=2, k=(2, 3), stride=1, pad=2, hw=(3, 4), n=2),  # dY cropped for dX
}


@pytest.mark.parametrize(
    "case, method",
    [
        (case, m)
        for case, p in CONV_CASES.items()
        for m in ("auto", "route", "correlate")
        if p["stride"] == 1 or m != "correlate"
    ],
)  # both input-gradient methods on every case they apply to (correlation: stride 1)
def test_convolution_gradient_check(backend, rng, case, method):
    p = CONV_CASES[case]
    xpnet.set_default_dtype("float64")
    conv = L.Convolution(p["c"], p["fn"], p["k"], stride=p["stride"], pad=p["pad"])
    conv.input_gradient_method = method
    shape = conv.output_shape((p["c"], *p["hw"]))
    model = xpnet.Sequential(
        [conv, L.Tanh(), L.Flatten(), L.Affine(int(np.prod(shape)), 3)], input_shape=(p["c"], *p["hw"]), input_grad=True
    )
    x = rng.standard_normal((p["n"], p["c"], *p["hw"]))
    t = rng.integers(0, 3, p["n"])
    assert_gradients_on_every_path(model, x, t)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("size, stride, pad", [(2, 2, 0), (3, 1, 0), (2, 1, 1), (3, 2, 1)])
def test_pooling_gradient_check(backend, rng, pool, size, stride, pad):
    xpnet.set_default_dtype("float64")
    layer = (L.Pooling if pool == "max" else L.AvgPooling)(size, stride, pad)
    conv = L.Convolution(2, 2, 2)
    shape = layer.output_shape(conv.output_shape((2, 6, 6)))
    model = xpnet.Sequential(
        [conv, layer, L.Flatten(), L.Affine(int(np.prod(shape)), 3)], input_shape=(2, 6, 6), input_grad=True
    )
    x = rng.standard_normal((2, 2, 6, 6))
    t = np.array([0, 2])
    assert_gradients_on_every_path(model, x, t)


def test_max_pooling_values_and_routing(backend, kernels_mode):
    xpnet.set_default_dtype("float64")
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    layer = L.Pooling(2, 2)
    y = host(layer.forward(xpnet.asarray(x)))
    np.testing.assert_array_equal(y, [[[[5, 7], [13, 15]]]])
    dx = host(layer.backward(xpnet.asarray(np.ones((1, 1, 2, 2)))))
    expected = np.zeros((4, 4))
    expected[[1, 1, 3, 3], [1, 3, 1, 3]] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)
    ties = L.Pooling(2, 2)
    ties.forward(xpnet.asarray(np.ones((1, 1, 2, 2))))
    assert host(ties.backward(xpnet.asarray(np.ones((1, 1, 1, 1))))).sum() == 1  # one maximum gets it, not all


def test_avg_pooling_values(backend, kernels_mode):
    xpnet.set_default_dtype("float64")
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(host(L.AvgPooling(2, 2).forward(xpnet.asarray(x))), [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_convolution_matches_direct_loops(backend, kernels_mode, rng):
    xpnet.set_default_dtype("float64")
    conv = L.Convolution(2, 3, (2, 3), stride=2, pad=1)
    x = rng.standard_normal((2, 2, 5, 6))
    y = host(conv.forward(xpnet.asarray(x)))
    w, b = host(conv.W), host(conv.b)
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = (5 + 2 - 2) // 2 + 1, (6 + 2 - 3) // 2 + 1
    ref = np.zeros((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp_[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 3]
            ref[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w) + b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col(backend, rng):
    """<im2col(x), c> == <x, col2im(c)> for any x, c: the backward routing is exact."""
    xpnet.set_default_dtype("float64")
    xp = backend.xp
    x = rng.standard_normal((2, 3, 7, 6))
    col, _oh, _ow = im2col(xp, xpnet.asarray(x), 3, 2, 2, 1)
    c = rng.standard_normal(tuple(col.shape))
    lhs = np.sum(host(col) * c)
    rhs = np.sum(x * host(col2im(xp, xpnet.asarray(c), x.shape, 3, 2, 2, 1)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"layer 0 .*Convolution.*\(N, 3, H, W\).*\('N', 1, 28, 28\)"):
        xpnet.Sequential([L.Convolution(3, 4, 3), L.Flatten()], input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="Convolution"):
        L.Convolution(1, 2, 3).forward(xpnet.asarray(np.zeros((2, 28, 28))))
    with pytest.raises(ValueError, match="does not fit|H >="):
        xpnet.Sequential([L.Convolution(1, 2, 5), L.Flatten()], input_shape=(1, 3, 3))


def test_book_cnns_build_and_summarise():
    simple = xpnet.models.simple_cnn()
    text = simple.summary()
    assert "30 x 24 x 24" in text and "30 x 12 x 12" in text and "4320" in text
    deep = xpnet.models.deep_cnn()
    assert deep.shapes[-1][1] == (10,) and sum(isinstance(layer, L.Convolution) for layer in deep.layers) == 6


def test_cnn_trains_on_digit_images(backend):
    (x, t), (xt, tt) = xpnet.datasets.load_digits(flatten=False)
    xpnet.seed(0)
    model = xpnet.models.simple_cnn(input_shape=(1, 8, 8), filters=8, kernel=3, hidden=32)
    xpnet.Trainer(model, xpnet.optimizers.Adam(0.01), epochs=4, batch_size=50, verbose=False).fit(x, t)
    assert model.accuracy(xt, tt) > 0.9


def test_cnn_save_load_round_trip(cpu_backend, kernels_mode, rng, tmp_path):
    model = xpnet.models.simple_cnn(input_shape=(1, 8, 8), filters=4, kernel=3, hidden=8)
    x = rng.random((3, 1, 8, 8))
    model.save(tmp_path / "cnn.npz")
    loaded = xpnet.load(tmp_path / "cnn.npz")
    np.testing.assert_allclose(host(loaded.predict(x)), host(model.predict(x)), rtol=1e-6)


@pytest.mark.parametrize("mode", kernels.MODES)
def test_cnn_cross_backend_equivalence(rng, mode):
    """Same seed and data → same CNN outputs and gradients on every CPU backend (float64), on either path."""
    kernels.use(mode)
    assert_same_on_cpu_backends(
        lambda: xpnet.Sequential(
            [
                L.Convolution(2, 3, 3, stride=2, pad=1),
                L.ReLU(),
                L.Pooling(2, 1),
                L.Convolution(3, 2, 2),
                L.AvgPooling(1),
                L.Flatten(),
                L.Affine(8, 3),
            ],
            input_shape=(2, 7, 7),
        ),
        rng.standard_normal((3, 2, 7, 7)),
        np.array([0, 2, 1]),
    )


@pytest.mark.parametrize("pool", [L.Pooling, L.AvgPooling])
def test_pooling_that_tiles_its_input_exactly(backend, rng, pool):
    """stride == size dividing H and W: the backward writes each element once (no zero fill needed)."""
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([pool(2, 2), L.Flatten(), L.Affine(2 * 3 * 3, 3)], input_shape=(2, 6, 6), input_grad=True)
    x, t = rng.standard_normal((2, 2, 6, 6)), np.array([1, 2])
    assert_gradients_on_every_path(model, x, t)


@pytest.mark.parametrize(
    "c, fn, pad, method",
    [(2, 2, 1, "correlate"), (2, 2, 0, "route"), (2, 4, 1, "route"), (8, 2, 0, "correlate")],
)  # "auto" correlates where FN·H·W <= C·OH·OW: its columns no larger than the forward's
def test_auto_input_gradient_picks_the_smaller_columns(c, fn, pad, method):
    kernels.use("reference")  # the method applies to the reference path only
    conv = L.Convolution(c, fn, 3, pad=pad)
    x = xpnet.asarray(np.ones((2, c, 6, 6)))
    y = conv.forward(x)
    conv.backward(xpnet.asarray(np.ones(tuple(y.shape))))
    assert (conv.grad_workspace is not None) == (method == "correlate")


def test_input_gradient_method_is_checked():
    kernels.use("reference")
    x = xpnet.asarray(np.ones((1, 1, 5, 5)))
    conv = L.Convolution(1, 1, 3, stride=2)
    conv.input_gradient_method = "correlate"
    conv.forward(x)
    with pytest.raises(ValueError, match="needs stride 1"):
        conv.backward(xpnet.asarray(np.ones((1, 1, 2, 2))))
    conv.input_gradient_method = "fast"
    with pytest.raises(ValueError, match="'auto', 'correlate' or 'route'"):
        conv.backward(xpnet.asarray(np.ones((1, 1, 2, 2))))


def test_the_column_workspaces_are_reused_by_training_and_released_by_evaluation():
    kernels.use("reference")
    layer = L.Convolution(3, 2, 3, pad=1)
    x = xpnet.asarray(np.random.default_rng(0).standard_normal((4, 3, 5, 5)))
    dout = xpnet.asarray(np.ones((4, 2, 5, 5)))
    y = layer.forward(x)
    ws = layer.workspace
    assert ws is not None and tuple(ws.shape) == (4, 3 * 9 + 1, 5, 5)  # the columns and the bias row
    dx = layer.backward(dout)
    gws = layer.grad_workspace  # stride 1, no more outputs than inputs: dX from dY's columns
    assert gws is not None and tuple(gws.shape) == (4, 2 * 9, 5, 5)
    np.testing.assert_allclose(xpnet.to_numpy(layer.backward(dout)), xpnet.to_numpy(dx))  # backward repeats
    layer.forward(x)
    layer.backward(dout)
    assert layer.workspace is ws and layer.grad_workspace is gws  # same batch shape: reused
    y_eval = layer.forward(x, train=False)  # an evaluation keeps nothing batch-sized
    assert layer.workspace is None and layer.grad_workspace is None
    np.testing.assert_allclose(xpnet.to_numpy(y_eval), xpnet.to_numpy(y), rtol=1e-6, atol=1e-6)


# -- the native path against the reference, directly -------------------------------------------------------


def _both_paths(layer, x, dout=None):
    """``layer``'s output, input gradient and parameter gradients on each kernel path, as host arrays."""
    results = {}
    for mode in kernels.MODES:
        with kernels.using(mode):
            y = layer.forward(xpnet.asarray(x))
            d = xpnet.asarray(dout if dout is not None else np.cos(np.arange(np.prod(y.shape))).reshape(y.shape))
            dx = layer.backward(d)
            results[mode] = (host(y), None if dx is None else host(dx), {k: host(v) for k, v in layer.grads.items()})
    return results


def _assert_paths_agree(results, rtol, atol):
    (y0, dx0, g0), (y1, dx1, g1) = results["native"], results["reference"]
    np.testing.assert_allclose(y0, y1, rtol=rtol, atol=atol, err_msg="output")
    assert (dx0 is None) == (dx1 is None)
    if dx0 is not None:
        np.testing.assert_allclose(dx0, dx1, rtol=rtol, atol=atol, err_msg="input gradient")
    for k in g1:
        np.testing.assert_allclose(g0[k], g1[k], rtol=rtol, atol=atol, err_msg=k)


def _needs_native(backend):
    if len(kernel_modes(backend)) < 2:
        pytest.skip(f"{backend} has no native kernels: nothing to compare the reference with")


@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_native_convolution_matches_the_reference(backend, rng, case, dtype, tol, input_grad):
    _needs_native(backend)
    p = CONV_CASES[case]
    xpnet.set_default_dtype(dtype)
    conv = L.Convolution(p["c"], p["fn"], p["k"], stride=p["stride"], pad=p["pad"])
    conv.b = xpnet.asarray(rng.standard_normal(p["fn"]))
    conv.input_grad = input_grad
    _assert_paths_agree(_both_paths(conv, rng.standard_normal((p["n"], p["c"], *p["hw"]))), tol, tol)


@pytest.mark.parametrize("size, stride, pad", [(2, 2, 0), (3, 1, 0), ((2, 3), 2, 0), (2, 1, 1), (3, 2, 1)])
def test_native_max_pooling_matches_the_reference(backend, rng, size, stride, pad):
    _needs_native(backend)
    xpnet.set_default_dtype("float64")
    x = rng.standard_normal((2, 3, 7, 6))
    native = backend.native_kernels()
    if native.name == "aten":  # ATen pads windows with -inf, the reference with zeros: only pad 0 agrees
        assert native.supports_max_pool(xpnet.asarray(x), L.Pooling(size).size, stride, pad) == (pad == 0)
    results = _both_paths(L.Pooling(size, stride, pad), x)
    _assert_paths_agree(results, 1e-15, 1e-15)  # overlapping windows add shares in another order


@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (3, 64, 8, 8)])
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1), ((3, 2), 2)])
@pytest.mark.parametrize("data", ["all-equal", "few-values"])
def test_native_max_pooling_breaks_ties_as_the_reference(backend, rng, shape, size, stride, data):
    """Tied windows (all equal, or values from {0, 1, 2}): both paths route each window's gradient to its
    first maximum in row-major order, exactly."""
    _needs_native(backend)
    x = np.ones(shape) if data == "all-equal" else rng.integers(0, 3, shape).astype(float)
    layer = L.Pooling(size, stride)
    oh, ow = layer.output_shape(shape[1:])[1:]
    dout = (np.arange(shape[0] * shape[1] * oh * ow) % 7 + 1.0).reshape(shape[0], shape[1], oh, ow)  # exact sums
    results = _both_paths(layer, x, dout)
    _assert_paths_agree(results, 0, 0)
    if data == "all-equal":  # each window's gradient to its top-left element
        y, dx = results["native"][0], results["native"][1]
        expected = np.zeros(shape)
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                expected[:, :, i * stride, j * stride] += dout[:, :, i, j]
        np.testing.assert_array_equal(dx, expected)


def test_native_convolution_keeps_only_its_input(cpu_backend, rng):
    """On the native path a training forward keeps x (no columns, no workspaces); an evaluation forward,
    :meth:`clear` and ``model.to`` keep nothing."""
    _needs_native(cpu_backend)
    model = xpnet.Sequential([L.Convolution(4, 3, 3, pad=1), L.Pooling(2), L.Flatten()], input_shape=(4, 4, 4))
    conv, pool = model.layers[0], model.layers[1]  # 4·3·3 im2col rows: a case every native kernel set takes
    x = xpnet.asarray(rng.standard_normal((2, 4, 4, 4)))
    model.forward(x, train=True)
    assert conv.x is x and conv.col is None and conv.workspace is None and conv.grad_workspace is None
    assert pool.state is not None and pool.took is None
    model.forward(x, train=False)
    assert conv.x is None and conv.native is None and pool.state is None
    model.forward(x, train=True)
    conv.clear()
    assert conv.x is None
    with pytest.raises(RuntimeError, match="needs a forward pass"):
        conv.backward(xpnet.asarray(np.ones((2, 3, 4, 4))))
    model.forward(x, train=True)
    model.to("numpy")
    assert conv.x is None and pool.state is None


def test_a_step_uses_the_path_its_forward_took(cpu_backend, rng):
    """Switching the mode between forward and backward does not mix the paths."""
    _needs_native(cpu_backend)
    conv = L.Convolution(4, 3, 3)  # 4·3·3 im2col rows: a case every native kernel set takes
    x = xpnet.asarray(rng.standard_normal((2, 4, 5, 5)))
    with kernels.using("native"):
        y = conv.forward(x)
    with kernels.using("reference"):
        dx = conv.backward(cpu_backend.xp.ones_like(y))
    assert conv.col is None and tuple(dx.shape) == (2, 4, 5, 5)

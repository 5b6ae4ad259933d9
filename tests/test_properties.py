"""Property tests (hypothesis), issue 12 item 8: every layer's backward against central differences
over random shapes, dtypes and backends; save/load round trips over random architectures; label
checks over random label arrays. Examples are small so the suite stays fast; the gradient property
(which has tolerances) is derandomized, the exact properties draw new examples on every run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from xptest import CPU_BACKENDS, host

import xpnet
from xpnet import layers as L
from xpnet import losses, optimizers

BACKENDS = [name for name in CPU_BACKENDS if name in xpnet.available_backends()]
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _float64_and_back():
    yield
    xpnet.set_backend("numpy")
    xpnet.set_default_dtype("float32")


# -- layers: backward against central differences -------------------------------------------------

ACTIVATIONS = L.ACTIVATIONS


LAYER_KINDS = ["Affine", "activation", "Dropout", "BatchNorm", "Convolution", "Pooling", "AvgPooling", "Flatten"]


@st.composite
def layer_cases(draw, kind):
    """``(name, factory, input shape)`` for one layer of the given kind and a random size."""
    n = draw(st.integers(1, 3))
    if kind == "Affine":
        dims = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
        out = draw(st.integers(1, 4))
        return kind, (lambda: L.Affine(math.prod(dims), out)), (n, *dims)
    if kind in ("activation", "Dropout", "Flatten"):
        dims = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        if kind == "activation":
            kind = draw(st.sampled_from(sorted(ACTIVATIONS)))
            return kind, ACTIVATIONS[kind], (n, *dims)
        if kind == "Dropout":
            p = draw(st.sampled_from([0.0, 0.3, 0.7]))
            return kind, (lambda: L.Dropout(p)), (n, *dims)
        return kind, L.Flatten, (n, *dims)
    if kind == "BatchNorm":
        f = draw(st.integers(1, 4))
        image = draw(st.booleans())
        shape = (draw(st.integers(2, 4)), f, *((draw(st.integers(1, 3)), draw(st.integers(1, 3))) if image else ()))
        return kind, (lambda: L.BatchNorm(f, momentum=0.5)), shape
    c = draw(st.integers(1, 3))
    if kind == "Convolution":
        f, kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        h, w = draw(st.integers(max(1, kh - 2 * pad), 5)), draw(st.integers(max(1, kw - 2 * pad), 5))
        return kind, (lambda: L.Convolution(c, f, (kh, kw), stride=stride, pad=pad)), (n, c, h, w)
    size = draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, size // 2))
    h, w = draw(st.integers(max(1, size - 2 * pad), 5)), draw(st.integers(max(1, size - 2 * pad), 5))
    pool = L.Pooling if kind == "Pooling" else L.AvgPooling
    return kind, (lambda: pool(size, stride=stride, pad=pad)), (n, c, h, w)


def _copy_to_float64(layer, layer64):
    """The float64 twin gets exactly the tested layer's parameters (and Dropout mask)."""
    for name in layer.param_names:
        setattr(layer64, name, xpnet.asarray(host(getattr(layer, name)).astype(np.float64), dtype="float64"))
    if isinstance(layer, L.Dropout):
        layer64.freeze = True
        layer64.slope = xpnet.asarray(host(layer.slope).astype(np.float64), dtype="float64")


@pytest.mark.parametrize("kind", LAYER_KINDS)
@given(
    data=st.data(),
    backend=st.sampled_from(BACKENDS),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
@settings(PROPERTY, max_examples=12)
def test_layer_backward_matches_central_differences(kind, data, backend, dtype, seed):
    """Directional derivatives: ``<dx, v>`` and ``<dP, v_P>`` from backward (in the drawn dtype)
    against ``(f(θ + hv) - f(θ - hv)) / 2h`` of ``f = Σ forward·dout`` in float64."""
    name, build, shape = data.draw(layer_cases(kind))
    rng = np.random.default_rng(seed)
    xpnet.set_backend(backend)
    xpnet.set_default_dtype(dtype)
    xpnet.seed(seed)
    layer = build()
    x = (rng.standard_normal(shape) * 3).astype(dtype)  # scale 3: every piece of the piecewise activations
    y = layer.forward(xpnet.asarray(x), train=True)
    dout = rng.standard_normal(tuple(y.shape)).astype(dtype)
    dx = layer.backward(xpnet.asarray(dout))
    dt = xpnet.get_backend().dtype(dtype)
    assert y.dtype == dt and dx.dtype == dt, (name, y.dtype, dx.dtype)
    grads = {p: host(getattr(layer, "d" + p)).astype(np.float64) for p in layer.param_names}
    assert all(getattr(layer, "d" + p).dtype == dt for p in layer.param_names)

    xpnet.set_default_dtype("float64")
    xpnet.seed(seed)
    layer64 = build()
    _copy_to_float64(layer, layer64)
    d64 = xpnet.asarray(dout.astype(np.float64))

    def f(x_host):
        return float(xpnet.get_backend().xp.sum(layer64.forward(xpnet.asarray(x_host), train=True) * d64))

    h, rtol = 1e-6, (1e-7 if dtype == "float64" else 1e-3)
    x64 = x.astype(np.float64)
    checks = {"x": (host(dx).astype(np.float64), x64.shape)}
    checks.update({p: (g, g.shape) for p, g in grads.items()})
    for what, (analytic, shape_) in checks.items():
        v = rng.standard_normal(shape_)
        if what == "x":
            numeric = (f(x64 + h * v) - f(x64 - h * v)) / (2 * h)
        else:
            p0 = host(getattr(layer64, what)).copy()
            setattr(layer64, what, xpnet.asarray(p0 + h * v))
            up = f(x64)
            setattr(layer64, what, xpnet.asarray(p0 - h * v))
            down = f(x64)
            setattr(layer64, what, xpnet.asarray(p0))
            numeric = (up - down) / (2 * h)
        directional = float(np.sum(analytic * v))
        # relative to the products summed, plus a floor for gradients that cancel to almost 0 in the
        # layer (BatchNorm of 2 samples): rounding of the drawn dtype on ‖dout‖·‖v‖
        tol = rtol * (float(np.sum(np.abs(analytic * v))) + 0.1 * float(np.linalg.norm(dout) * np.linalg.norm(v)))
        assert abs(directional - numeric) <= tol, (name, shape, what, directional, numeric)


# -- save/load round trips over random architectures ------------------------------------------------


@st.composite
def architectures(draw):
    """A random Sequential (MLP or small CNN) with a random loss, as a builder."""
    activation = st.sampled_from(sorted(ACTIVATIONS))
    classes = draw(st.integers(2, 4))
    if draw(st.booleans()):
        c, hw = draw(st.integers(1, 2)), draw(st.integers(4, 6))
        f, k, act, pool = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(activation), draw(st.booleans())
        bn = draw(st.booleans())
        input_shape = (c, hw, hw)

        def build():
            layers = [L.Convolution(c, f, k, pad=k // 2)] + ([L.BatchNorm(f)] if bn else []) + [ACTIVATIONS[act]()]
            if pool:
                layers.append(L.Pooling(2, 2) if hw % 2 == 0 else L.AvgPooling(2, 1))
            n = int(math.prod(_out_shape(layers, input_shape)))
            return [*layers, L.Flatten(), L.Affine(n, classes)]
    else:
        widths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
        extras = [(draw(activation), draw(st.booleans()), draw(st.sampled_from([0.0, 0.25]))) for _ in widths[1:]]
        input_shape = (widths[0],)

        def build():
            layers = []
            for (a, b), (act, bn, p) in zip(itertools.pairwise(widths), extras):
                layers.append(L.Affine(a, b))
                layers += [L.BatchNorm(b)] if bn else []
                layers.append(ACTIVATIONS[act]())
                layers += [L.Dropout(p)] if p else []
            return [*layers, L.Affine(widths[-1], classes)]

    loss = draw(st.sampled_from(["sce", "mse", "flood"]))
    make_loss = {
        "sce": losses.SoftmaxCrossEntropy,
        "mse": losses.MeanSquaredError,
        "flood": lambda: losses.Flooding(losses.SoftmaxCrossEntropy(), 0.05),
    }[loss]
    return build, make_loss, input_shape, classes, loss == "mse"


def _out_shape(layers, shape):
    for layer in layers:
        shape = layer.output_shape(shape)
    return shape


@given(
    arch=architectures(),
    backend=st.sampled_from(BACKENDS),
    dtype=st.sampled_from(["float32", "float64", "bfloat16"]),
    opt_name=st.sampled_from([None, *sorted(optimizers.OPTIMIZERS)]),
    seed=st.integers(0, 2**16),
)
@settings(PROPERTY, max_examples=15, derandomize=False)  # exact property: random examples every run
def test_save_load_round_trip(tmp_path_factory, arch, backend, dtype, opt_name, seed):
    build, make_loss, input_shape, classes, regression = arch
    assume(dtype != "bfloat16" or backend == "torch")  # bfloat16 exists on torch only
    rng = np.random.default_rng(seed)
    xpnet.set_backend(backend)
    xpnet.set_default_dtype(dtype)
    xpnet.seed(seed)
    model = xpnet.Sequential(build(), loss=make_loss(), input_shape=input_shape)
    x = rng.standard_normal((4, *input_shape))
    t = rng.standard_normal((4, classes)) if regression else rng.integers(0, classes, 4)
    opt = optimizers.OPTIMIZERS[opt_name](lr=0.01) if opt_name else None
    grads = model.gradient(x, t)  # moves the running statistics, fills the optimizer state
    if opt is not None:
        opt.update(model.params, grads)
    path = tmp_path_factory.mktemp("rt") / "m.npz"
    model.save(path, optimizer=opt)
    loaded, opt2 = xpnet.load_checkpoint(path)
    assert [layer.describe() for layer in loaded.layers] == [layer.describe() for layer in model.layers]
    assert type(loaded.loss_layer) is type(model.loss_layer) and repr(loaded.loss_layer) == repr(model.loss_layer)
    for group in ("params", "buffers"):
        a, b = getattr(model, group), getattr(loaded, group)
        assert list(a) == list(b)
        for k in a:
            assert b[k].dtype == a[k].dtype
            np.testing.assert_array_equal(host(b[k]), host(a[k]), err_msg=f"{group} {k}")  # bfloat16: exact float32
    np.testing.assert_array_equal(host(loaded.predict(x)), host(model.predict(x)))
    assert float(loaded.loss(x, t)) == float(model.loss(x, t))
    if opt is None:
        assert opt2 is None
    else:
        assert type(opt2) is type(opt) and opt2.t == opt.t and opt2.config() == opt.config()
        for k, slots in opt.state.items():
            for s, v in slots.items():
                np.testing.assert_array_equal(host(opt2.state[k][s]), host(v))


# -- label checks over random label arrays --------------------------------------------------------

LABEL_DTYPES = ["int8", "uint8", "int16", "int32", "int64"]


@given(
    backend=st.sampled_from(BACKENDS),
    classes=st.sampled_from([2, 3, 7, 130, 300]),
    dtype=st.sampled_from(LABEL_DTYPES),
    n=st.integers(1, 6),
    data=st.data(),
)
@settings(PROPERTY, max_examples=60, derandomize=False)  # exact property: random examples every run
def test_labels_are_checked_or_used_exactly(backend, classes, dtype, n, data):
    """``model.loss`` raises ValueError for out-of-range or miscounted labels, and otherwise gives the
    exact cross-entropy of those labels (any integer dtype, any number of classes)."""
    info = np.iinfo(dtype)
    labels = data.draw(st.lists(st.integers(0, min(classes - 1, info.max)), min_size=n, max_size=n))
    fault = data.draw(st.sampled_from(["none", "none", "negative", "too large", "count"]))
    i = data.draw(st.integers(0, n - 1))
    if fault == "negative" and info.min < 0:
        labels[i] = data.draw(st.integers(int(info.min), -1))
    elif fault == "too large" and classes <= info.max:
        labels[i] = data.draw(st.integers(classes, int(info.max)))
    elif fault == "count":
        labels = labels[:-1] if data.draw(st.booleans()) else [*labels, 0]
    labels = np.array(labels, dtype=dtype)
    xpnet.set_backend(backend)
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(3, classes, init=1.0)])
    x = np.random.default_rng(n).standard_normal((n, 3))
    bad_count = labels.shape[0] != n
    bad_range = bool(np.any(labels < 0) or np.any(labels >= classes))
    if bad_count or bad_range:
        with pytest.raises(ValueError, match=r"labels|targets|inputs"):
            model.loss(x, labels)
        with pytest.raises(ValueError, match=r"labels|targets|inputs"):
            model.gradient(x, labels)
        return
    y = host(model.predict(x))
    m = y.max(axis=1, keepdims=True)
    ref = np.mean((m[:, 0] + np.log(np.exp(y - m).sum(axis=1))) - y[np.arange(n), labels.astype(np.int64)])
    np.testing.assert_allclose(float(model.loss(x, labels)), ref, rtol=1e-12, atol=1e-12)
    onehot = np.eye(classes)[labels.astype(np.int64)]
    np.testing.assert_allclose(
        host(model.gradient(x, labels)["0.b"]),
        (np.exp(y - m) / np.exp(y - m).sum(axis=1, keepdims=True) - onehot).mean(axis=0),
        rtol=1e-10,
        atol=1e-12,
    )


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_narrow_labels_with_many_classes(cpu_backend, dtype):
    """Found by the property above: ``arange(300)`` in the labels' int8/uint8 wrapped around, so
    label 0 also matched class 256 and the loss was silently wrong."""
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(3, 300, init=1.0)])
    x = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.array([0, 5, 43, 100], dtype=dtype)
    np.testing.assert_allclose(float(model.loss(x, labels)), float(model.loss(x, labels.astype(np.int64))), rtol=1e-14)

"""Numerics and dtypes (issue 12, items 1-5): each test pins a defect that gave a silent wrong answer."""

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet import losses
from xpnet.optimizers import Adam

F32_EPS = float(np.finfo(np.float32).eps)


def _float_dtype_or_skip(backend, name):
    try:
        return backend.dtype(name)
    except TypeError as e:
        pytest.skip(f"{backend.name} has no {name}: {e}")


# -- 1. integer targets keep the model's float dtype ------------------------------------------------


@pytest.mark.parametrize("loss_cls", [losses.SoftmaxCrossEntropy, losses.MeanSquaredError])
def test_integer_targets_keep_the_model_dtype(backend, rng, loss_cls):
    """Integer one-hot (cross-entropy) or integer (squared error) targets: loss and gradients stay float32."""
    model = xpnet.Sequential([L.Affine(4, 3), L.Tanh(), L.Affine(3, 3)], loss=loss_cls())
    x = rng.standard_normal((5, 4))
    t = np.eye(3, dtype=np.int64)[[0, 1, 2, 1, 0]]
    f32 = backend.xp.float32
    assert model.loss(x, t).dtype == f32
    assert all(g.dtype == f32 for g in model.gradient(x, t).values())
    loss = loss_cls()
    e = loss.forward(xpnet.asarray(rng.standard_normal((5, 3))), xpnet.asarray(t))
    assert e.dtype == f32 and loss.backward().dtype == f32
    # the values are those of float targets
    ref = loss_cls()
    np.testing.assert_allclose(
        float(ref.forward(xpnet.asarray(host(model.predict(x))), xpnet.asarray(t.astype(np.float32)))),
        float(model.loss(x, t)),
        rtol=1e-6,
    )


# -- 2. cross-entropy subtracts per row ---------------------------------------------------------------


def test_cross_entropy_of_large_logits_is_accurate_in_float32(backend, rng):
    """Logits near +1000: the float32 loss is within a few epsilon of the exact loss of the same numbers."""
    a32 = (1000.0 + rng.standard_normal((256, 10))).astype(np.float32)
    t = rng.integers(0, 10, 256)
    a = a32.astype(np.float64)
    m = a.max(axis=1)
    exact = np.mean(m + np.log(np.exp(a - m[:, None]).sum(axis=1)) - a[np.arange(256), t])
    loss = losses.SoftmaxCrossEntropy()
    e = loss.forward(xpnet.asarray(a32), xpnet.asarray(t))
    assert e.dtype == backend.xp.float32
    assert abs(float(e) - exact) <= 4 * F32_EPS * exact, (float(e), exact)


# -- 3. TanhExp finite in every float dtype ---------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_tanhexp_forward_and_backward_are_finite_for_every_finite_input(backend, dtype):
    dt = _float_dtype_or_skip(backend, dtype)
    big = float(np.finfo(dtype).max)
    xs = np.array([-big, -1e4, -20.0, -3.0, 0.0, 1.0, 3.0, 10.0, 11.0, 11.5, 12.0, 20.0, 88.0, 100.0, 1e4, big])
    layer = L.TanhExp()
    x = xpnet.asarray(xs, dtype=dt)
    y = layer.forward(x)
    dx = layer.backward(xpnet.asarray(np.ones(len(xs)), dtype=dt))
    assert y.dtype == dt and dx.dtype == dt
    y, dx = host(y).astype(np.float64), host(dx).astype(np.float64)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)), (y, dx)
    xr = host(x).astype(np.float64)  # the inputs as the dtype holds them
    with np.errstate(over="ignore", invalid="ignore"):  # the reference's own inf·0 where x > 30 is masked
        e = np.exp(np.minimum(xr, 30.0))
        t = np.tanh(e)
        ref_dx = t + np.where(xr > 30, 0.0, xr * e * (1 - t * t))
    tol = float(np.finfo(dtype).eps) * 8
    np.testing.assert_allclose(y, xr * t, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol)


# -- 4. Adam never divides 0 by 0 -------------------------------------------------------------------


def _adam_zero_gradient_step(backend, dtype, eps):
    model = xpnet.Sequential([L.Affine(3, 2)])
    for layer in model.layers:
        for name in layer.param_names:
            setattr(layer, name, backend.xp.astype(getattr(layer, name), dtype))
    opt = Adam(lr=0.1, eps=eps)
    before = {k: host(v).copy() for k, v in model.params.items()}
    zero = {k: v * 0.0 for k, v in model.params.items()}
    for _ in range(3):
        opt.update(model.params, zero)
    return before, {k: host(v) for k, v in model.params.items()}


@pytest.mark.parametrize("dtype, eps", [("float16", 1e-7), ("float32", 1e-37)])
def test_adam_with_a_tiny_eps_and_a_zero_gradient_is_not_nan(backend, dtype, eps):
    """ε·√(1-β₂ᵗ) underflowed to 0 in the parameter dtype: a zero gradient gave 0/0 = NaN."""
    dt = _float_dtype_or_skip(backend, dtype)
    before, after = _adam_zero_gradient_step(backend, dt, eps)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])  # zero gradient, zero step


@pytest.mark.parametrize(
    "dtype, eps",
    [("float16", 1e-8), ("float32", 1e-46), ("float32", 1e-44), ("float64", 0.0)],  # 1e-44: subnormal, 0 on a GPU
)
def test_adam_refuses_an_eps_that_vanishes_in_the_dtype(backend, dtype, eps):
    dt = _float_dtype_or_skip(backend, dtype)
    with pytest.raises(ValueError, match=r"eps="):
        _adam_zero_gradient_step(backend, dt, eps)


# -- 5. bfloat16 (torch) saved and loaded exactly -------------------------------------------------


@pytest.fixture
def bf16_model(rng):
    pytest.importorskip("torch", reason="bfloat16 models exist on the torch backend only")
    with xpnet.use_backend("torch"):
        xpnet.set_default_dtype("bfloat16")
        model = xpnet.Sequential([L.Affine(4, 6), L.BatchNorm(6), L.ReLU(), L.Affine(6, 3)])
        opt = Adam(0.01)
        x, t = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        opt.update(model.params, model.gradient(x, t))
        xpnet.set_default_dtype("float32")
    return model, opt, x


def test_to_numpy_of_bfloat16_is_float32(bf16_model):
    model, _, _ = bf16_model
    w = model.params["0.W"]
    a = xpnet.to_numpy(w)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, w.float().numpy())
    assert "bfloat16" in xpnet.to_numpy.__doc__


def test_bfloat16_model_round_trips_exactly(bf16_model, tmp_path):
    model, opt, x = bf16_model
    model.save(tmp_path / "m.npz", optimizer=opt)
    with xpnet.use_backend("torch"):
        loaded, opt2 = xpnet.load_checkpoint(tmp_path / "m.npz")
    for what, a, b in [("param", model.params, loaded.params), ("buffer", model.buffers, loaded.buffers)]:
        for k in a:
            assert b[k].dtype == a[k].dtype, (what, k)
            assert bool((b[k] == a[k]).all()), (what, k)
    for k, slots in opt.state.items():
        for s, v in slots.items():
            assert opt2.state[k][s].dtype == v.dtype and bool((opt2.state[k][s] == v).all())
    assert bool((loaded.predict(x) == model.predict(x)).all())


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_bfloat16_file_loads_as_float32_where_there_is_no_bfloat16(bf16_model, tmp_path, name):
    model, _, _ = bf16_model
    model.save(tmp_path / "m.npz")
    loaded = xpnet.load(tmp_path / "m.npz", backend=name)
    for k, v in model.params.items():
        assert loaded.params[k].dtype == loaded.backend.xp.float32
        np.testing.assert_array_equal(host(loaded.params[k]), xpnet.to_numpy(v))


def test_a_tampered_bfloat16_entry_is_a_value_error_naming_the_file(bf16_model, tmp_path):
    import json

    model, _, _ = bf16_model
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    assert meta["dtypes"]["param/0.W"] == "bfloat16" and arrays["param/0.W"].dtype == np.uint16
    arrays["param/0.W"] = arrays["param/0.W"].astype(np.float32)  # no longer raw bits
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"m\.npz.*0\.W.*bfloat16"):
        xpnet.load(path)


# -- issue 26, item 10: cross-entropy of a spread beyond the dtype's range is finite ----------------


@pytest.mark.parametrize("dtype, big", [("float16", 4e4), ("float32", 2e38), ("float64", 1e308)])
def test_cross_entropy_of_scores_whose_spread_overflows_is_finite(backend, dtype, big):
    """``a - max(a)`` overflows to -inf (float16 ``[4e4, 0, -4e4]``); ``0 · -inf`` made the loss NaN. Now
    the loss is the true value, or the dtype's largest finite value where the true one is beyond it."""
    _float_dtype_or_skip(backend, dtype)
    xpnet.set_default_dtype(dtype)
    a = np.array([[big, 0.0, -big]] * 3, dtype=dtype)
    top = float(np.finfo(dtype).max)
    for label, want in ((0, 0.0), (1, float(a[0, 0])), (2, top)):
        for t in (np.full(3, label), np.eye(3, dtype=dtype)[[label] * 3]):  # labels, one-hot rows
            loss = losses.SoftmaxCrossEntropy()
            e = float(loss.forward(xpnet.asarray(a), xpnet.asarray(t)))
            assert e == pytest.approx(want, rel=1e-3), (label, t.ndim, e)
            assert np.isfinite(host(loss.backward())).all()


def test_float16_cross_entropy_of_a_large_batch_does_not_overflow_its_sum(backend):
    """10000 rows of loss ≈ 10 in float16: the sum (1e5) is beyond float16, the mean is not."""
    _float_dtype_or_skip(backend, "float16")
    xpnet.set_default_dtype("float16")
    a = np.tile(np.array([[10.0, 0.0]], dtype=np.float16), (10000, 1))
    e = float(losses.SoftmaxCrossEntropy().forward(xpnet.asarray(a), xpnet.asarray(np.ones(10000, dtype=np.int64))))
    assert e == pytest.approx(10.0, rel=1e-3)

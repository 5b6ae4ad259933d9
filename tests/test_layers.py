"""Every layer and loss: gradient check (float64) on every backend, formulas, edge cases."""

import math

import numpy as np
import pytest
from xptest import assert_input_gradient, host

import xpnet
from xpnet import layers as L

ACTIVATION_FACTORIES = {
    "ReLU": L.ReLU,
    "Sigmoid": L.Sigmoid,
    "Tanh": L.Tanh,
    "LeakyReLU": lambda: L.LeakyReLU(0.1),
    "ReLU6": L.ReLU6,
    "Swish": L.Swish,
    "Mish": L.Mish,
    "HSwish": L.HSwish,
    "HSwish(n=2)": lambda: L.HSwish(2),
    "TanhExp": L.TanhExp,
}


def _check(model, x, t, tol=1e-6):
    errors = xpnet.gradient_check(model, x, t)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("name", list(ACTIVATION_FACTORIES))
def test_activation_gradient_check(backend, rng, name):
    xpnet.set_default_dtype("float64")
    xpnet.seed(1)
    # scale 3 spreads pre-activations over every piece (ReLU6's clip, HSwish's three pieces)
    model = xpnet.Sequential([L.Affine(4, 6, init=3.0), ACTIVATION_FACTORIES[name](), L.Affine(6, 3)])
    _check(model, rng.standard_normal((5, 4)), np.array([0, 1, 2, 1, 0]))


def test_affine_gradient_check_and_nd_input(backend, rng):
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(12, 5), L.Sigmoid(), L.Affine(5, 3)], input_shape=(3, 2, 2), input_grad=True)
    x = rng.standard_normal((4, 3, 2, 2))
    _check(model, x, np.array([0, 1, 2, 2]))
    model.gradient(x, np.array([0, 1, 2, 2]))
    assert tuple(model.dx.shape) == (4, 3, 2, 2)


def test_affine_backward_formulas(backend):
    xpnet.set_default_dtype("float64")
    layer = L.Affine(2, 3)
    x = xpnet.asarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    layer.forward(x)
    dout = xpnet.asarray(np.array([[1.0, 2.0, 3.0], [100.0, 200.0, 300.0]]))
    dx = layer.backward(dout)
    np.testing.assert_allclose(host(layer.db), [101, 202, 303])
    np.testing.assert_allclose(host(layer.dW), host(x).T @ host(dout))
    np.testing.assert_allclose(host(dx), host(dout) @ host(layer.W).T)


def test_batchnorm_gradient_check(backend, rng):
    xpnet.set_default_dtype("float64")
    # a bias right before BatchNorm has an exactly-zero gradient (pure round-off): put Tanh between
    model = xpnet.Sequential([L.Affine(4, 5), L.Tanh(), L.BatchNorm(5), L.ReLU(), L.Affine(5, 3)])
    _check(model, rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2]))


def test_batchnorm_input_gradient(backend, rng):
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.BatchNorm(4), L.Tanh(), L.Affine(4, 3)], input_shape=(4,), input_grad=True)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 1, 2, 0, 1])
    assert_input_gradient(model, x, t)


def test_batchnorm_train_and_eval(backend, rng):
    xpnet.set_default_dtype("float64")
    bn = L.BatchNorm(3, momentum=0.5)
    x = rng.standard_normal((50, 3)) * 2 + 5
    y = host(bn.forward(xpnet.asarray(x), train=True))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(host(bn.running_mean), 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(host(bn.running_var), 0.5 + 0.5 * x.var(axis=0))
    y_eval = host(bn.forward(xpnet.asarray(x), train=False))
    expected = (x - host(bn.running_mean)) / np.sqrt(host(bn.running_var) + bn.eps)
    np.testing.assert_allclose(y_eval, expected)


def test_batchnorm_per_channel_on_images(backend, rng):
    xpnet.set_default_dtype("float64")
    bn = L.BatchNorm(2)
    x = rng.standard_normal((4, 2, 3, 3)) + np.array([10.0, -10.0])[None, :, None, None]
    y = host(bn.forward(xpnet.asarray(x)))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    with pytest.raises(ValueError, match="BatchNorm"):
        bn.forward(xpnet.asarray(rng.standard_normal((4, 3))))


def test_dropout_gradient_check_with_frozen_mask(backend, rng):
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(4, 8), L.Tanh(), L.Dropout(0.4), L.Affine(8, 3)])
    _check(model, rng.standard_normal((5, 4)), np.array([0, 1, 2, 1, 0]))


def test_dropout_train_and_eval(backend):
    xpnet.set_default_dtype("float64")
    d = L.Dropout(0.25)
    x = xpnet.asarray(np.ones((400, 50)))
    y = host(d.forward(x, train=True))
    kept = y != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(host(d.backward(x)), y)
    np.testing.assert_array_equal(host(d.forward(x, train=False)), 1.0)
    with pytest.raises(ValueError, match="Dropout"):
        L.Dropout(1.0)


def _reference(name, x):
    sig = 1 / (1 + np.exp(-x))
    sp = np.log1p(np.exp(x))
    return {
        "ReLU": np.maximum(x, 0),
        "Sigmoid": sig,
        "Tanh": np.tanh(x),
        "LeakyReLU": np.where(x > 0, x, 0.1 * x),
        "ReLU6": np.clip(x, 0, 6),
        "Swish": x * sig,
        "Mish": x * np.tanh(sp),
        "HSwish": x * np.clip(x + 3, 0, 6) / 6,
        "HSwish(n=2)": np.where(x > 1, x, np.where(x > -1, x * (x + 1) / 2, 0)),
        "TanhExp": x * np.tanh(np.exp(x)),
    }[name]


@pytest.mark.parametrize("name", list(ACTIVATION_FACTORIES))
def test_activation_values(backend, name):
    xpnet.set_default_dtype("float64")
    x = np.linspace(-8, 8, 161)
    y = host(ACTIVATION_FACTORIES[name]().forward(xpnet.asarray(x), train=False))
    np.testing.assert_allclose(y, _reference(name, x), rtol=1e-12, atol=1e-12)


def test_hswish_generalised_pieces(backend):
    xpnet.set_default_dtype("float64")
    layer = L.HSwish(n=4)  # pieces at ±2
    x = xpnet.asarray(np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]))
    y = host(layer.forward(x))
    slope = host(layer.backward(xpnet.asarray(np.ones(7))))
    xs = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(y, [0, 0, -0.25, 0, 0.75, 2.0, 3.0])
    np.testing.assert_allclose(slope, np.where(xs > 2, 1, np.where(xs > -2, (2 * xs + 2) / 4, 0)))


def test_tanhexp_is_finite_for_large_inputs(backend):
    layer = L.TanhExp()
    x = xpnet.asarray(np.array([-1e4, -50.0, 0.0, 50.0, 88.0, 1e4, 3e38]))
    y = host(layer.forward(x))
    dx = host(layer.backward(xpnet.asarray(np.ones(7))))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx[3:], 1.0)
    np.testing.assert_allclose(y[5], 1e4, rtol=1e-6)


@pytest.mark.parametrize("name", ["Sigmoid", "Swish", "Mish"])
def test_saturating_activations_stay_finite(backend, name):
    layer = ACTIVATION_FACTORIES[name]()
    y = host(layer.forward(xpnet.asarray(np.array([-1e4, 1e4]))))
    dx = host(layer.backward(xpnet.asarray(np.ones(2))))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_backward_before_forward_is_clear(backend):
    with pytest.raises(RuntimeError, match="train=True"):
        L.ReLU().backward(xpnet.asarray(np.ones(3)))


def test_affine_rejects_bad_init():
    with pytest.raises(ValueError, match="init"):
        L.Affine(3, 2, init="uniform")


def test_init_scales():
    xpnet.seed(0)
    assert abs(np.std(host(L.Affine(2000, 200, init="he").W)) - math.sqrt(2 / 2000)) < 1e-3
    assert abs(np.std(host(L.Affine(2000, 200, init="xavier").W)) - math.sqrt(1 / 2000)) < 1e-3
    assert abs(np.std(host(L.Affine(2000, 200, init=0.01).W)) - 0.01) < 1e-3

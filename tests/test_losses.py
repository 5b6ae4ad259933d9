import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet import losses


def _softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_cross_entropy_labels_and_onehot_agree(backend, rng):
    xpnet.set_default_dtype("float64")
    a = rng.standard_normal((6, 4))
    t = np.array([0, 3, 1, 2, 3, 0])
    onehot = np.eye(4)[t]
    ref = -np.mean(np.log(_softmax(a)[np.arange(6), t]))
    for target in (xpnet.asarray(t), xpnet.asarray(onehot)):
        loss = losses.SoftmaxCrossEntropy()
        e = loss.forward(xpnet.asarray(a), target)
        assert e.ndim == 0
        np.testing.assert_allclose(float(e), ref, rtol=1e-12)
        np.testing.assert_allclose(host(loss.backward()), (_softmax(a) - onehot) / 6, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_is_stable_for_huge_scores(backend):
    loss = losses.SoftmaxCrossEntropy()
    a = xpnet.asarray(np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]]))
    e = float(loss.forward(a, xpnet.asarray(np.array([1, 1]))))
    assert np.isfinite(e) and abs(e - 5e3) < 1.0  # losses 1e4 and 0, mean 5e3
    assert np.all(np.isfinite(host(loss.backward())))


def test_softmax_cross_entropy_gradient_check(backend, rng):
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(3, 4)], loss=losses.SoftmaxCrossEntropy())
    onehot = np.eye(4)[[0, 1, 3]]
    assert max(xpnet.gradient_check(model, rng.standard_normal((3, 3)), onehot).values()) < 1e-6


def test_mean_squared_error(backend, rng):
    xpnet.set_default_dtype("float64")
    y, d = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    loss = losses.MeanSquaredError()
    np.testing.assert_allclose(float(loss.forward(xpnet.asarray(y), xpnet.asarray(d))), 0.5 * np.sum((y - d) ** 2) / 5)
    np.testing.assert_allclose(host(loss.backward()), (y - d) / 5)
    model = xpnet.Sequential([L.Affine(3, 4), L.Tanh(), L.Affine(4, 2)], loss=losses.MeanSquaredError())
    assert max(xpnet.gradient_check(model, rng.standard_normal((5, 3)), d).values()) < 1e-6


def test_flooding_flips_gradient_only_below_b(backend, rng):
    xpnet.set_default_dtype("float64")
    a = xpnet.asarray(rng.standard_normal((4, 3)))
    t = xpnet.asarray(np.array([0, 1, 2, 0]))
    plain = losses.SoftmaxCrossEntropy()
    e = float(plain.forward(a, t))
    g = host(plain.backward())
    above = losses.Flooding(losses.SoftmaxCrossEntropy(), b=e / 2)  # E >= b: unchanged
    np.testing.assert_allclose(float(above.forward(a, t)), e)
    np.testing.assert_allclose(host(above.backward()), g)
    below = losses.Flooding(losses.SoftmaxCrossEntropy(), b=e + 1)  # E < b: |E-b|+b, gradient negated
    np.testing.assert_allclose(float(below.forward(a, t)), (e + 1 - e) + e + 1)
    np.testing.assert_allclose(host(below.backward()), -g)


def test_flooding_gradient_check(backend, rng):
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([L.Affine(3, 3)], loss=losses.Flooding(losses.SoftmaxCrossEntropy(), 5.0))
    assert max(xpnet.gradient_check(model, rng.standard_normal((4, 3)), np.array([0, 1, 2, 1])).values()) < 1e-6


def test_flooding_rejects_negative_level():
    with pytest.raises(ValueError):
        losses.Flooding(losses.SoftmaxCrossEntropy(), -1)

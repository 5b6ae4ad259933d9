"""Affine forward/backward vs its bare matmuls (the GEMM bound), each activation, SoftmaxCrossEntropy."""

from __future__ import annotations

import numpy as np
import pytest
from benchutil import big, synced

import xpnet
from xpnet import layers as L
from xpnet.losses import SoftmaxCrossEntropy
from xpnet.models import activation


def _affine(backend, rng):
    n, d_in, d_out = big(backend, 1024, 128), big(backend, 2048, 256), big(backend, 2048, 256)
    layer = L.Affine(d_in, d_out)
    x = xpnet.asarray(rng.random((n, d_in), dtype=np.float32))
    dout = xpnet.asarray(rng.random((n, d_out), dtype=np.float32))
    return layer, x, dout


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.benchmark(group="affine-forward")
def test_affine_forward(benchmark, backend, rng):
    layer, x, _ = _affine(backend, rng)
    out = benchmark(synced(backend, lambda: layer.forward(x)))
    assert tuple(out.shape) == (x.shape[0], layer.out_features)


@pytest.mark.benchmark(group="affine-forward")
def test_matmul_forward_gemm_bound(benchmark, backend, rng):
    layer, x, _ = _affine(backend, rng)
    benchmark(synced(backend, lambda: x @ layer.W))


@pytest.mark.benchmark(group="affine-backward")
def test_affine_backward(benchmark, backend, rng):
    layer, x, dout = _affine(backend, rng)
    layer.forward(x)
    dx = benchmark(synced(backend, lambda: layer.backward(dout)))
    assert tuple(dx.shape) == tuple(x.shape) and tuple(layer.dW.shape) == tuple(layer.W.shape)


@pytest.mark.benchmark(group="affine-backward")
def test_matmul_backward_gemm_bound(benchmark, backend, rng):
    layer, x, dout = _affine(backend, rng)
    xp = backend.xp
    benchmark(synced(backend, lambda: (xp.matrix_transpose(x) @ dout, dout @ xp.matrix_transpose(layer.W))))


@pytest.mark.benchmark(group="activation")
@pytest.mark.parametrize(
    "name", ["relu", "sigmoid", "tanh", "swish", "mish", "hswish", "tanhexp", "relu6", "leakyrelu"]
)
def test_activation_forward_backward(benchmark, backend, rng, name):
    n = big(backend, 1024, 128)
    layer = activation(name)
    x = xpnet.asarray(rng.standard_normal((n, 2048 if n > 128 else 256), dtype=np.float32))

    def run():
        layer.forward(x)
        return layer.backward(x)

    out = benchmark(synced(backend, run))
    assert tuple(out.shape) == tuple(x.shape)


@pytest.mark.benchmark(group="softmax-cross-entropy")
def test_softmax_cross_entropy(benchmark, backend, rng):
    n = big(backend, 1024, 128)
    loss = SoftmaxCrossEntropy()
    a = xpnet.asarray(rng.standard_normal((n, 10), dtype=np.float32))
    t = xpnet.asarray(rng.integers(0, 10, n))

    def run():
        loss.forward(a, t)
        return loss.backward()

    out = benchmark(synced(backend, run))
    assert tuple(out.shape) == (n, 10)

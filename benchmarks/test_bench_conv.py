"""Convolution forward/backward (im2col, the product, col2im) vs PyTorch conv2d and the GEMM floor of
its im2col product; a SimpleConvNet training step in the step group."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import layers as L
from xpnet.layers.im2col import col2im, im2col
from xpnet.optimizers import Adam

from benchutil import QUICK, big, synced, torch_device


def _conv(backend):
    n = big(backend, 100, 8)
    c, f, k, hw = (1, 30, 5, 28) if not QUICK else (1, 4, 3, 8)
    layer = L.Convolution(c, f, k)
    rng = np.random.default_rng(0)
    x = xpnet.asarray(rng.random((n, c, hw, hw), dtype=np.float32))
    return layer, x


@pytest.mark.benchmark(group="conv-forward")
def test_conv_forward(benchmark, backend):
    layer, x = _conv(backend)
    benchmark(synced(backend, lambda: layer.forward(x)))


@pytest.mark.benchmark(group="conv-forward")
def test_conv_im2col_only(benchmark, backend):
    layer, x = _conv(backend)
    benchmark(synced(backend, lambda: im2col(backend.xp, x, *layer.kernel_size, layer.stride, layer.pad)))


@pytest.mark.benchmark(group="conv-forward")
def test_conv_gemm_floor(benchmark, backend):
    layer, x = _conv(backend)
    xp = backend.xp
    col, _, _ = im2col(xp, x, *layer.kernel_size, layer.stride, layer.pad)
    w_col = xp.matrix_transpose(xp.reshape(layer.W, (layer.out_channels, -1)))
    benchmark(synced(backend, lambda: col @ w_col))


def _torch_conv(backend, requires_grad=False):
    """The PyTorch peer's input and weight, beside ``backend``, and a synchronising wrapper."""
    if backend.checker:
        pytest.skip("PyTorch CPU, the peer, is measured beside numpy and torch")
    torch = pytest.importorskip("torch", reason="the PyTorch peer needs torch")

    layer, x = _conv(backend)
    device = torch_device(backend)
    tx = torch.from_numpy(xpnet.to_numpy(x)).to(device).requires_grad_(requires_grad)
    w = torch.from_numpy(xpnet.to_numpy(layer.W)).to(device).requires_grad_(requires_grad)

    def synced_torch(f):
        def run():
            out = f()
            if tx.is_cuda:
                torch.cuda.synchronize()
            return out

        return run

    return torch, tx, w, synced_torch


@pytest.mark.benchmark(group="conv-forward")
def test_conv_forward_torch_peer(benchmark, backend):
    torch, tx, w, synced_torch = _torch_conv(backend)
    benchmark(synced_torch(lambda: torch.nn.functional.conv2d(tx, w)))


@pytest.mark.benchmark(group="conv-backward")
def test_conv_backward(benchmark, backend):
    layer, x = _conv(backend)
    layer.input_grad = True
    dout = layer.forward(x)
    benchmark(synced(backend, lambda: layer.backward(dout)))


@pytest.mark.benchmark(group="conv-backward")
def test_conv_col2im_only(benchmark, backend):
    layer, x = _conv(backend)
    col, _, _ = im2col(backend.xp, x, *layer.kernel_size, layer.stride, layer.pad)
    benchmark(synced(backend, lambda: col2im(backend.xp, col, tuple(x.shape), *layer.kernel_size, layer.stride, layer.pad)))


@pytest.mark.benchmark(group="conv-backward")
def test_conv_backward_torch_peer(benchmark, backend):
    torch, tx, w, synced_torch = _torch_conv(backend, requires_grad=True)
    out = torch.nn.functional.conv2d(tx, w)
    dout = torch.ones_like(out)
    benchmark(synced_torch(lambda: torch.autograd.grad(out, (tx, w), dout, retain_graph=True)))


@pytest.mark.benchmark(group="step-cnn")
def test_simple_cnn_step(benchmark, backend):
    n = big(backend, 100, 8)
    xpnet.seed(0)
    model = xpnet.models.simple_cnn() if not QUICK else xpnet.models.simple_cnn((1, 8, 8), filters=4, kernel=3, hidden=8)
    rng = np.random.default_rng(0)
    x, t = model.check_data(rng.random((n, *model.input_shape), dtype=np.float32), rng.integers(0, 10, n))
    opt, params = Adam(0.001), model.params

    def step():
        model.step_loss(x, t, value=False)
        opt.update(params, model.backward())

    benchmark(synced(backend, step))

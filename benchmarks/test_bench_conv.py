"""The CNN layers' kernels beside PyTorch eager: convolution forward/backward (im2col alone, the GEMM bound
of its im2col product, col2im alone) at SimpleConvNet's and DeepConvNet's second convolution's shapes;
ReLU and 2×2 max pooling forward/backward at SimpleConvNet's shape (100×30×24×24). The training steps
are in test_bench_step.py. xpnet's convolution and layer kernels run on each kernel path of the backend
(``kernels_path``: native where the adapter has them, and the array-API reference), one row each."""

from __future__ import annotations

import numpy as np
import pytest
from benchutil import QUICK, big, synced, torch_device

import xpnet
from xpnet import layers as L
from xpnet.layers.im2col import col2im, im2col

CONVS = {"simple": (1, 30, 5, 28, 0), "deep2": (16, 16, 3, 28, 1)}  # C, F, K, H=W, pad


@pytest.fixture(params=list(CONVS))
def conv(request, benchmark):
    benchmark.group = benchmark.group.replace("conv-", f"conv-{request.param}-")  # one group per shape
    return request.param


def _conv(backend, which="simple"):
    n = big(backend, 100, 8)
    c, f, k, hw, pad = CONVS[which] if not QUICK else (2, 4, 3, 8, 1)
    layer = L.Convolution(c, f, k, pad=pad)
    layer.input_grad = c > 1  # SimpleConvNet's first layer needs no input gradient; DeepConvNet's second does
    rng = np.random.default_rng(0)
    x = xpnet.asarray(rng.random((n, c, hw, hw), dtype=np.float32))
    return layer, x


@pytest.mark.benchmark(group="conv-forward")
def test_conv_forward(benchmark, backend, kernels_path, conv):
    layer, x = _conv(backend, conv)
    benchmark(synced(backend, lambda: layer.forward(x)))


@pytest.mark.benchmark(group="conv-forward")
def test_conv_im2col_only(benchmark, backend, conv):
    layer, x = _conv(backend, conv)
    benchmark(synced(backend, lambda: im2col(backend.xp, x, *layer.kernel_size, layer.stride, layer.pad)))


@pytest.mark.benchmark(group="conv-forward")
def test_conv_gemm_bound(benchmark, backend, conv):
    layer, x = _conv(backend, conv)
    xp = backend.xp
    col, _, _ = im2col(xp, x, *layer.kernel_size, layer.stride, layer.pad)
    w_col = xp.reshape(xp.permute_dims(layer.W, (0, 2, 3, 1)), (layer.out_channels, -1))  # as the columns' rows
    benchmark(synced(backend, lambda: w_col @ col))


def _torch_conv(backend, conv, requires_grad=False):
    """The PyTorch peer's input and weight, beside ``backend``, and a synchronising wrapper."""
    if backend.checker:
        pytest.skip("PyTorch CPU, the peer, is measured beside numpy and torch")
    torch = pytest.importorskip("torch", reason="the PyTorch peer needs torch")

    layer, x = _conv(backend, conv)
    device = torch_device(backend)
    tx = torch.from_numpy(xpnet.to_numpy(x)).to(device).requires_grad_(requires_grad and layer.input_grad)
    w = torch.from_numpy(xpnet.to_numpy(layer.W)).to(device).requires_grad_(requires_grad)

    def synced_torch(f):
        def run():
            out = f()
            if tx.is_cuda:
                torch.cuda.synchronize()
            return out

        return run

    return torch, tx, w, layer.pad, synced_torch


@pytest.mark.benchmark(group="conv-forward")
def test_conv_forward_torch_peer(benchmark, backend, conv):
    torch, tx, w, pad, synced_torch = _torch_conv(backend, conv)
    benchmark(synced_torch(lambda: torch.nn.functional.conv2d(tx, w, padding=pad)))


@pytest.mark.benchmark(group="conv-backward")
def test_conv_backward(benchmark, backend, kernels_path, conv):
    layer, x = _conv(backend, conv)
    dout = layer.forward(x)
    benchmark(synced(backend, lambda: layer.backward(dout)))


@pytest.mark.benchmark(group="conv-backward")
def test_conv_col2im_only(benchmark, backend, conv):
    layer, x = _conv(backend, conv)
    col, _, _ = im2col(backend.xp, x, *layer.kernel_size, layer.stride, layer.pad)
    benchmark(
        synced(backend, lambda: col2im(backend.xp, col, tuple(x.shape), *layer.kernel_size, layer.stride, layer.pad))
    )


@pytest.mark.benchmark(group="conv-backward")
def test_conv_backward_torch_peer(benchmark, backend, conv):
    torch, tx, w, pad, synced_torch = _torch_conv(backend, conv, requires_grad=True)
    w.requires_grad_(True)
    out = torch.nn.functional.conv2d(tx, w, padding=pad)
    dout = torch.ones_like(out)
    inputs = (tx, w) if tx.requires_grad else (w,)
    benchmark(synced_torch(lambda: torch.autograd.grad(out, inputs, dout, retain_graph=True)))


def _activation_input(backend):
    n = big(backend, 100, 8)
    shape = (n, 30, 24, 24) if not QUICK else (n, 4, 6, 6)
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


LAYERS = {"relu": (L.ReLU, "relu"), "pool": (lambda: L.Pooling(2, 2), "max_pool2d")}


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_layer_kernel(benchmark, backend, kernels_path, kind, direction):
    benchmark.group = f"{kind}-{direction}"
    layer = LAYERS[kind][0]()
    x = xpnet.asarray(_activation_input(backend))
    out = layer.forward(x)
    benchmark(synced(backend, (lambda: layer.forward(x)) if direction == "forward" else (lambda: layer.backward(out))))


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_layer_kernel_torch_peer(benchmark, backend, kind, direction):
    if backend.checker:
        pytest.skip("PyTorch CPU, the peer, is measured beside numpy and torch")
    device = torch_device(backend)
    import torch

    benchmark.group = f"{kind}-{direction}"
    fn = torch.relu if kind == "relu" else (lambda v: torch.nn.functional.max_pool2d(v, 2, 2))
    x = torch.from_numpy(_activation_input(backend)).to(device).requires_grad_(True)
    out = fn(x)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def run():
        r = fn(x.detach()) if direction == "forward" else torch.autograd.grad(out, x, out.detach(), retain_graph=True)
        sync()
        return r

    benchmark(run)

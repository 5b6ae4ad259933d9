"""Every network the book builds, built the book's way — from layers, with no ``input_shape`` — and trained
the book's way (``gradient`` + ``update``) and through ``Trainer.fit``, on every CPU backend; on the emulated
devices (``array_api_strict:device1``, ``torch:meta``) the book's step.

The images are the embedded 8×8 digits scaled up to MNIST's 28×28 (each pixel a 3×3 block, 2 pixels of
border), so the networks keep the book's exact sizes (``Affine(30 * 12 * 12, 100)``) and the tests need no
download.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import datasets
from xpnet import layers as L
from xpnet.optimizers import SGD, Adam


def two_layer_net():
    """The book's ``TwoLayerNet`` (ch. 5): Affine-ReLU-Affine on flat rows."""
    return [L.Affine(784, 50), L.ReLU(), L.Affine(50, 10)]


def multi_layer_net_extend():
    """The book's ``MultiLayerNetExtend`` (ch. 6): Affine-BatchNorm-ReLU-Dropout per hidden layer."""
    return [
        *(L.Affine(784, 40), L.BatchNorm(40), L.ReLU(), L.Dropout(0.1)),
        *(L.Affine(40, 40), L.BatchNorm(40), L.ReLU(), L.Dropout(0.1)),
        L.Affine(40, 10),
    ]


def simple_conv_net(flatten: bool = True):
    """The book's ``SimpleConvNet`` (ch. 7), as the issue's snippet builds it; the book's ``Affine`` flattens by
    itself, so the ``Flatten`` is optional."""
    head = [L.Affine(30 * 12 * 12, 100), L.ReLU(), L.Affine(100, 10)]
    return [L.Convolution(1, 30, 5), L.ReLU(), L.Pooling(2, 2), *([L.Flatten()] if flatten else []), *head]


def deep_conv_net():
    """The book's ``DeepConvNet`` (ch. 8): six 3×3 convolutions, three poolings, Affine-ReLU-Dropout twice."""

    def conv(c_in, c_out, pad=1):
        return [L.Convolution(c_in, c_out, 3, pad=pad), L.ReLU()]

    return [
        *conv(1, 16),
        *conv(16, 16),
        L.Pooling(2, 2),
        *conv(16, 32),
        *conv(32, 32, pad=2),
        L.Pooling(2, 2),
        *conv(32, 64),
        *conv(64, 64),
        L.Pooling(2, 2),
        *(L.Affine(64 * 4 * 4, 50), L.ReLU(), L.Dropout(0.5)),
        *(L.Affine(50, 10), L.Dropout(0.5)),
    ]


# name: (layers, whether it takes images, samples, optimizer) — the CNNs get fewer samples (strict is slow)
NETWORKS = {
    "TwoLayerNet": (two_layer_net, False, 60, lambda: SGD(lr=0.1)),
    "MultiLayerNetExtend": (multi_layer_net_extend, False, 60, lambda: SGD(lr=0.1)),
    "SimpleConvNet": (simple_conv_net, True, 24, lambda: SGD(lr=0.05)),
    "SimpleConvNet-no-Flatten": (lambda: simple_conv_net(flatten=False), True, 24, lambda: SGD(lr=0.05)),
    "DeepConvNet": (deep_conv_net, True, 8, lambda: Adam(lr=0.002)),
}


def mnist_sized_digits(n: int, images: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` embedded digits as 28×28 images ``(n, 1, 28, 28)``, or flat rows ``(n, 784)``."""
    (x, t), _ = datasets.load_digits(flatten=False)
    x = np.pad(np.kron(x[:n], np.ones((1, 1, 3, 3), x.dtype)), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return (x if images else x.reshape(n, -1)), t[:n]


@pytest.mark.parametrize("name", list(NETWORKS))
def test_book_loop_trains_every_book_network(cpu_backend, name):
    """The book's loop: ``grads = model.gradient(x, t)``, ``optimizer.update(model.params, grads)``; the loss on
    the batch falls, and the shapes, unknown before data where convolutions come first, are all known after."""
    build, images, n, make_optimizer = NETWORKS[name]
    xpnet.seed(3)
    model = xpnet.Sequential(build())
    x, t = mnist_sized_digits(n, images)
    optimizer = make_optimizer()
    before = float(host(model.loss(x, t)))
    for _ in range(8):
        grads = model.gradient(x, t)
        optimizer.update(model.params, grads)
    after = float(host(model.loss(x, t)))
    assert np.isfinite(after) and after < before, (before, after)
    assert model.input_shape == ((1, 28, 28) if images else (784,))
    assert "?" not in str(model)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_trainer_fit_trains_every_book_network(cpu_backend, name):
    build, images, n, make_optimizer = NETWORKS[name]
    xpnet.seed(4)
    model = xpnet.Sequential(build())
    x, t = mnist_sized_digits(n, images)
    history = xpnet.Trainer(model, make_optimizer(), epochs=3, batch_size=n // 2, verbose=False).fit(x, t, x, t)
    losses = history.train_loss
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert "?" not in str(model)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_book_step_on_devices(device_backend, name):
    """``gradient`` + ``update`` on ``array_api_strict:device1`` and ``torch:meta``: no host read, every
    gradient on the model's device."""
    build, images, _, make_optimizer = NETWORKS[name]
    model = xpnet.Sequential(build())
    x, t = mnist_sized_digits(4, images)
    x, t = device_backend.asarray(x), device_backend.asarray(t)
    grads = model.gradient(x, t)
    make_optimizer().update(model.params, grads)
    assert set(grads) == set(model.params)
    for key, g in grads.items():
        assert device_backend.owns(g) and tuple(g.shape) == tuple(model.params[key].shape), key


def test_flat_rows_are_reshaped_once_the_image_shape_is_known(rng):
    model = xpnet.Sequential(simple_conv_net())
    images, t = mnist_sized_digits(6, images=True)
    flat = images.reshape(6, -1)
    assert model.accuracy(images, t) == model.accuracy(flat, t)  # fixed by the images, then flat rows fit it
    built = xpnet.Sequential(simple_conv_net(), input_shape=(1, 28, 28))
    built.gradient(flat, t)  # known from input_shape: flat rows are reshaped
    assert all(g is not None for g in built.grads.values())


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize(
    "use", [lambda m, x, t: m.gradient(x, t), lambda m, x, t: m.accuracy(x, t), lambda m, x, t: m.predict(x)]
)
def test_flat_rows_for_a_cnn_say_what_to_do_and_fix_nothing(flatten, use):
    model = xpnet.Sequential(simple_conv_net(flatten))
    x, t = mnist_sized_digits(4, images=False)
    with pytest.raises(ValueError, match=r"flat rows.*Convolution.*load_mnist\(flatten=False\).*input_shape=") as e:
        use(model, x, t)
    assert "4320" not in str(e.value)  # never a middle layer's size
    assert model.input_shape is None  # flat rows never fix a CNN's input shape
    images, _ = mnist_sized_digits(4, images=True)
    model.gradient(images, t)  # the images still can
    assert model.input_shape == (1, 28, 28)


def test_the_first_data_fixes_the_input_shape_and_later_batches_are_checked():
    model = xpnet.Sequential(simple_conv_net())
    images, t = mnist_sized_digits(4, images=True)
    model.gradient(images, t)
    small = images[:, :, :20, :20]
    with pytest.raises(ValueError, match=r"\(1, 20, 20\).*built for \(1, 28, 28\)"):
        model.gradient(small, t)


def test_data_the_layers_cannot_chain_names_the_data_first():
    model = xpnet.Sequential(simple_conv_net())
    images, t = mnist_sized_digits(2, images=True)
    with pytest.raises(ValueError, match=r"inputs of shape \(1, 20, 20\) per sample do not fit this model"):
        model.gradient(images[:, :, :20, :20], t)
    assert model.input_shape is None


def test_summary_after_fit_has_no_unknown_shapes():
    model = xpnet.Sequential(simple_conv_net())
    assert "?" in str(model)  # before any data, the convolutions' shapes are unknown
    x, t = mnist_sized_digits(8, images=True)
    xpnet.Trainer(model, SGD(lr=0.01), epochs=1, batch_size=4, out=io.StringIO()).fit(x, t)
    assert "?" not in str(model) and "30 x 24 x 24" in str(model)

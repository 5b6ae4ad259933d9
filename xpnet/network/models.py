"""Ready-made architectures: the articles' MLPs (and the book's CNNs where available)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from . import layers as L
from .losses import Flooding, Loss, SoftmaxCrossEntropy
from .model import Sequential

SIGMOID_LIKE = {"sigmoid", "tanh"}


def activation(name: str, hswish_n: float = 6.0) -> L.Activation:
    """An activation layer by its command-line name (``relu``, ``swish``, ``hswish``, ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in L.ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(L.ACTIVATIONS)}")
    return L.HSwish(hswish_n) if key == "hswish" else L.ACTIVATIONS[key]()


def mlp(
    sizes: Sequence[int],
    activation_name: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
    init: str | float = "auto",
    flooding: float | None = None,
    loss: Loss | None = None,
    hswish_n: float = 6.0,
) -> Sequential:
    """``sizes = (784, 100, 50, 10)`` → Affine-[BatchNorm]-act-[Dropout] per hidden layer, then Affine.

    ``init="auto"``: Xavier for sigmoid/tanh, He otherwise (the book's choice).
    """
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {list(sizes)}")
    if init == "auto":
        init = "xavier" if activation_name.lower() in SIGMOID_LIKE else "he"
    layers: list[L.Layer] = []
    for n_in, n_out in itertools.pairwise(sizes[:-1]):  # the hidden layers (the output layer follows)
        layers.append(L.Affine(n_in, n_out, init=init))
        if batchnorm:
            layers.append(L.BatchNorm(n_out))
        layers.append(activation(activation_name, hswish_n))
        if dropout:
            layers.append(L.Dropout(dropout))
    layers.append(L.Affine(sizes[-2], sizes[-1], init=init))
    loss = loss if loss is not None else SoftmaxCrossEntropy()
    if flooding is not None:
        loss = Flooding(loss, flooding)
    return Sequential(layers, loss=loss)


def _flat_size(layers: list[L.Layer], input_shape: tuple[int, ...]) -> int:
    import math

    shape = tuple(input_shape)
    for layer in layers:
        shape = layer.output_shape(shape)
    return math.prod(shape)


def image_shape(input_shape: Any, builder: str) -> tuple[int, int, int]:
    """``(C, H, W)`` from a shape or from data ``(N, C, H, W)`` (its ``.shape[1:]``); else a ValueError
    naming the argument."""
    shape = tuple(input_shape.shape[1:]) if hasattr(input_shape, "shape") else input_shape
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        got = f"data of shape {tuple(input_shape.shape)}" if hasattr(input_shape, "shape") else repr(input_shape)
        raise ValueError(
            f"{builder}: input_shape must be (channels, height, width) or image data (N, C, H, W) "
            f"(load it with flatten=False), got {got}"
        )
    return shape


def simple_cnn(
    input_shape: Any = (1, 28, 28),
    classes: int = 10,
    filters: int = 30,
    kernel: int = 5,
    hidden: int = 100,
    activation_name: str = "relu",
    init: str | float = "he",
    hswish_n: float = 6.0,
) -> Sequential:
    """The book's ``SimpleConvNet``: conv 30×5×5 – ReLU – max-pool 2×2 – Affine 100 – ReLU – Affine 10.

    ``input_shape``: ``(C, H, W)`` per image (default MNIST's ``(1, 28, 28)``), or the training images
    themselves, ``(N, C, H, W)``, to take it from the data: ``simple_cnn(x_train)``. ``init="auto"``:
    Xavier for sigmoid/tanh, He otherwise.
    """
    input_shape = image_shape(input_shape, "simple_cnn")
    if init == "auto":
        init = "xavier" if activation_name.lower() in SIGMOID_LIKE else "he"

    def act() -> L.Activation:
        return activation(activation_name, hswish_n)

    features = [L.Convolution(input_shape[0], filters, kernel, init=init), act(), L.Pooling(2, 2)]
    n = _flat_size(features, input_shape)
    return Sequential(
        [*features, L.Flatten(), L.Affine(n, hidden, init=init), act(), L.Affine(hidden, classes, init=init)],
        input_shape=input_shape,
    )


def deep_cnn(input_shape: Any = (1, 28, 28), classes: int = 10, dropout: float = 0.5) -> Sequential:
    """The book's ``DeepConvNet``: six 3×3 convolutions (16, 16, 32, 32, 64, 64 filters) with ReLU and a
    max-pool after each pair, then Affine 50 – ReLU – Dropout – Affine 10 – Dropout (as the book), He init.

    ``input_shape``: as :func:`simple_cnn` (a shape, or the images ``(N, C, H, W)``)."""
    input_shape = image_shape(input_shape, "deep_cnn")
    c = input_shape[0]
    features: list[L.Layer] = []
    for i, (filters, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]):
        features += [L.Convolution(c, filters, 3, pad=pad), L.ReLU()]
        c = filters
        if i % 2:
            features.append(L.Pooling(2, 2))
    n = _flat_size(features, input_shape)
    head: list[L.Layer] = [
        L.Flatten(),
        L.Affine(n, 50),
        L.ReLU(),
        L.Dropout(dropout),
        L.Affine(50, classes),
        L.Dropout(dropout),
    ]
    return Sequential([*features, *head], input_shape=input_shape)

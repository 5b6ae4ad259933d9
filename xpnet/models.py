"""Ready-made architectures: the articles' MLPs (and the book's CNNs where available)."""

from __future__ import annotations

from typing import Sequence

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
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
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

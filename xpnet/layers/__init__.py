"""Layers: each has ``forward(x, train=True)`` and ``backward(dout) -> dx``."""

from .activations import (
    ACTIVATIONS,
    Activation,
    HSwish,
    LeakyReLU,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    Swish,
    Tanh,
    TanhExp,
)
from .affine import Affine
from .base import LAYERS, Layer
from .batchnorm import BatchNorm
from .dropout import Dropout

__all__ = [
    "ACTIVATIONS", "LAYERS", "Activation", "Affine", "BatchNorm", "Dropout", "HSwish", "Layer",
    "LeakyReLU", "Mish", "ReLU", "ReLU6", "Sigmoid", "Swish", "Tanh", "TanhExp",
]

"""Layers: each has ``forward(x, train=True)`` and ``backward(dout) -> dx``."""

from .activations import ACTIVATIONS, Activation, HSwish, LeakyReLU, Mish, ReLU, ReLU6, Sigmoid, Swish, Tanh, TanhExp
from .affine import Affine
from .base import LAYERS, Layer
from .batchnorm import BatchNorm
from .conv import Convolution, Flatten
from .dropout import Dropout
from .pooling import AvgPooling, Pooling

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Activation",
    "Affine",
    "AvgPooling",
    "BatchNorm",
    "Convolution",
    "Dropout",
    "Flatten",
    "HSwish",
    "Layer",
    "LeakyReLU",
    "Mish",
    "Pooling",
    "ReLU",
    "ReLU6",
    "Sigmoid",
    "Swish",
    "Tanh",
    "TanhExp",
]

"""Which convolution and pooling kernels the layers use: ``"native"`` (default) or ``"reference"``.

``"native"``: where the backend's adapter has its own kernels (:meth:`Backend.native_kernels`: ATen on
torch, numba on NumPy where it is installed), convolution and max-pooling call them; every other backend,
and every case a kernel set declines, runs the portable array-API code (im2col, window-position pooling).
``"reference"``: the array-API code everywhere — the reference the native kernels are tested against.

The default comes from the environment variable ``XPNET_KERNELS`` (``native`` or ``reference``), read
when first needed; :func:`use` sets it for the process, :func:`using` for a block (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._base import Backend
    from ._kernels import NativeKernels

MODES = ("native", "reference")
ENV = "XPNET_KERNELS"
_mode: str | None = None  # None: not yet read from the environment


def _checked(mode: object, what: str) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{what} must be 'native' or 'reference', not {mode!r}")
    return mode


def current() -> str:
    """The mode in force: ``"native"`` or ``"reference"``."""
    global _mode
    if _mode is None:
        _mode = _checked(os.environ.get(ENV, "native").strip() or "native", f"the environment variable {ENV}")
    return _mode


def use(mode: str) -> None:
    """Use ``"native"`` kernels where the backend has them, or the array-API ``"reference"`` everywhere."""
    global _mode
    _mode = _checked(mode, "kernels mode")


@contextlib.contextmanager
def using(mode: str) -> Iterator[None]:
    """:func:`use` for the duration of a block, restoring the previous mode after it."""
    previous = _mode
    use(mode)
    try:
        yield
    finally:
        globals()["_mode"] = previous


def for_backend(backend: Backend, op: str | None = None) -> NativeKernels | None:
    """``backend``'s native kernels in ``"native"`` mode (None where it has none); None in ``"reference"`` mode.

    ``op`` (``"conv2d"``, ``"max_pool"``, ``"relu"``): None unless the adapter lists it in ``native_ops``,
    judged before its kernels are loaded (an MLP's ReLU never imports NumPy's compiled convolution)."""
    if current() != "native" or (op is not None and op not in backend.native_ops):
        return None
    return backend.native_kernels()

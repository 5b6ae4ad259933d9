"""The layer protocol shared by every layer: the book's ``forward``/``backward``.

A layer owns its parameters as attributes named in ``param_names`` (the book's ``W``, ``b``);
the gradient of parameter ``P`` is the attribute ``dP`` (``dW``, ``db``), set by ``backward``.
Non-trained state (running statistics) is named in ``buffer_names``.

Evaluation semantics, shared by every layer (``__init_subclass__`` wraps each subclass's
``forward``/``backward``, so a layer only writes the book's two methods and ``clear``):
an evaluation forward (``train=False``) keeps nothing — the layer's ``clear()`` runs right after
it, dropping what the last training forward kept too — and ``backward`` after it raises
``RuntimeError`` instead of returning a gradient built from an older training batch.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from ...backends import Backend, get_backend, host_rng

LAYERS: dict[str, type[Layer]] = {}
"""Every layer class by name (used to rebuild a saved model)."""


class Layer:
    """Base class: ``forward(x, train=True) -> y`` and ``backward(dout) -> dx``."""

    param_names: ClassVar[tuple[str, ...]] = ()
    buffer_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the layer takes images ``(N, C, H, W)`` only (convolution, pooling): flat rows never fix a
    #: model's input shape through it.
    takes_images: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LAYERS[cls.__name__] = cls
        if "forward" in cls.__dict__:
            cls.forward = _evaluation_keeps_nothing(cls.__dict__["forward"])  # type: ignore[method-assign]
        if "backward" in cls.__dict__:
            cls.backward = _needs_training_forward(cls.__dict__["backward"])  # type: ignore[method-assign]
        if "__init__" in cls.__dict__:
            cls.__init__ = _names_itself_when_out_of_memory(cls.__dict__["__init__"])  # type: ignore[method-assign]

    #: Whether the last forward was a training forward whose caches ``backward`` may use.
    trained: bool = False

    def __init__(self) -> None:
        self.backend: Backend = get_backend()
        self.xp = self.backend.xp
        self.name = type(self).__name__
        #: Whether ``backward`` must return dx; ``Sequential`` turns it off for its first layer.
        self.input_grad = True
        for p in self.param_names:
            setattr(self, "d" + p, None)

    # -- the protocol ----------------------------------------------------------------
    def forward(self, x: Any, train: bool = True) -> Any:
        raise NotImplementedError

    def backward(self, dout: Any) -> Any:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (saved with a model)."""
        return {}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape (raises on a mismatch)."""
        return shape

    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample input shape this layer requires, where it fixes one."""
        return None

    # -- parameters ------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.param_names}

    @property
    def grads(self) -> dict[str, Any]:
        return {p: getattr(self, "d" + p) for p in self.param_names}

    @property
    def buffers(self) -> dict[str, Any]:
        return {b: getattr(self, b) for b in self.buffer_names}

    def to(self, backend: Backend) -> Layer:
        """Move parameters and buffers to ``backend`` (dtypes kept); drop cached activations."""
        for n in self.param_names + self.buffer_names:
            setattr(self, n, backend.move(getattr(self, n)))
        for p in self.param_names:
            setattr(self, "d" + p, None)
        self.backend, self.xp = backend, backend.xp
        self.clear()
        self.trained = False
        return self

    def clear(self) -> None:
        """Forget what the last forward pass kept for backward."""

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self) -> str:
        return self.describe()

    def _mismatch(self, expected: str, got: tuple[Any, ...]) -> ValueError:
        return ValueError(f"layer {self.name} ({self.describe()}): expected input of shape {expected}, got {got}")


def _evaluation_keeps_nothing(forward: Callable[..., Any]) -> Callable[..., Any]:
    """``forward`` followed, in evaluation, by ``clear()``: nothing batch-sized stays behind."""

    @functools.wraps(forward)
    def wrapper(self: Layer, x: Any, train: bool = True) -> Any:
        y = forward(self, x, train)
        self.trained = bool(train)
        if not train:
            self.clear()
        return y

    return wrapper


def _names_itself_when_out_of_memory(init: Callable[..., None]) -> Callable[..., None]:
    """A ``MemoryError`` while a layer is created names the layer, as called (``Affine(30000, 30000)``)."""

    @functools.wraps(init)
    def wrapper(self: Layer, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except MemoryError as e:
            if getattr(e, "xpnet_layer", None) is not None:  # named by the subclass's own __init__ already
                raise
            call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            named = MemoryError(f"{type(self).__name__}({call}): out of memory creating the layer: {e}")
            named.xpnet_layer = type(self).__name__  # type: ignore[attr-defined]
            raise named from e

    return wrapper


def _needs_training_forward(backward: Callable[..., Any]) -> Callable[..., Any]:
    """``backward`` refused unless the last forward was a training forward (its caches are current)."""

    @functools.wraps(backward)
    def wrapper(self: Layer, dout: Any) -> Any:
        if not self.trained:
            raise RuntimeError(
                f"layer {self.name}: backward() needs a forward pass with train=True first; an evaluation "
                f"forward (train=False) keeps nothing for backward"
            )
        return backward(self, dout)

    return wrapper


class Pending:
    """A parameter or buffer that is not allocated: what :func:`init_weight`, :func:`zeros` and
    :func:`ones` return while :func:`pending_arrays` is active (``xpnet.load`` builds a layer so, checks
    each shape against the file and then sets the saved arrays: no random initialisation, no memory)."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape, self.dtype = tuple(int(s) for s in shape), dtype

    def __repr__(self) -> str:
        return f"Pending(shape={self.shape})"


_pending = contextvars.ContextVar("xpnet_pending_arrays", default=False)


@contextlib.contextmanager
def pending_arrays() -> Iterator[None]:
    """Layers built inside get :class:`Pending` placeholders for their parameters and buffers."""
    token = _pending.set(True)
    try:
        yield
    finally:
        _pending.reset(token)


def init_weight(backend: Backend, shape: tuple[int, ...], fan_in: int, init: str | float) -> Any:
    """Initial weights drawn on the host (seeded by ``xpnet.seed``) and moved to the device.

    ``init``: ``"he"`` (std = sqrt(2/fan_in), for ReLU-like), ``"xavier"`` (std = sqrt(1/fan_in),
    the book's Xavier, for sigmoid/tanh) or a float std.
    """
    if init in ("he", "xavier"):
        std = math.sqrt((2.0 if init == "he" else 1.0) / fan_in)
    elif isinstance(init, (int, float)) and not isinstance(init, bool) and init > 0 and math.isfinite(init):
        std = float(init)
    else:
        raise ValueError(f"init must be 'he', 'xavier' or a positive float std, got {init!r}")
    if _pending.get():
        return Pending(shape, backend.dtype())
    try:
        w = host_rng().standard_normal(shape)  # float64 on the host, whatever the model's dtype
        w *= std  # in place: the same values as `* std`, without a second float64 copy
        return backend.asarray(w)
    except MemoryError as e:
        n, dtype = math.prod(shape), backend.dtype()
        name = getattr(dtype, "__name__", str(dtype))
        raise MemoryError(
            f"weights of shape {tuple(shape)} ({n:,} values: {n * 8 / 1e9:.2f} GB drawn as float64 on the host, "
            f"then {n * backend.xp.finfo(dtype).bits / 8e9:.2f} GB as {name}): {e}"
        ) from e


def zeros(backend: Backend, shape: tuple[int, ...]) -> Any:
    if _pending.get():
        return Pending(shape, backend.dtype())
    return backend.xp.zeros(shape, dtype=backend.dtype(), device=backend.device)


def ones(backend: Backend, shape: tuple[int, ...]) -> Any:
    if _pending.get():
        return Pending(shape, backend.dtype())
    return backend.xp.ones(shape, dtype=backend.dtype(), device=backend.device)

"""``Sequential``: a stack of layers and a loss, with the book's ``predict/loss/gradient/accuracy``."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

from ..backends import Backend, resolve_backend
from ..utils.tables import plain_table
from . import fileformat
from .layers.base import Layer
from .losses import Loss, SoftmaxCrossEntropy, labels_in_range


class Sequential:
    """Layers applied in order, then a loss.

    Semantics (as the book's ``loss(x, t, train_flg=False)``): :meth:`predict`, :meth:`loss` and
    :meth:`accuracy` evaluate — Dropout off, BatchNorm on its running statistics (which they never
    move), in batches of ``batch_size`` (default :attr:`eval_batch_size`), keeping nothing
    batch-sized. :meth:`gradient` is the training step: a training-mode forward of the batch, the
    loss, :meth:`backward`. ``backward()`` uses the caches of the last training-mode loss and raises
    ``RuntimeError`` after an evaluation.

    ``params``/``grads`` are dicts keyed ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ...) holding
    the layers' own arrays: an optimizer that updates them in place updates the model.

    Args:
        layers: the layers, all created on the same backend.
        loss: the loss layer (default :class:`SoftmaxCrossEntropy`).
        input_shape: per-sample input shape, e.g. ``(1, 28, 28)``. When omitted, it is what the first
            layer fixes (an ``Affine`` first: ``(in_features,)``), else the shape of the first data the
            model sees (:meth:`check_data`, :meth:`predict`, :meth:`accuracy`, ...), fixed from then on as
            Keras builds on first call. Used to check that layer sizes chain; flat rows ``(N, C·H·W)``
            given to a model whose image shape is known are reshaped to it.
        input_grad: compute ``dL/dx`` for the input too (off by default: nobody needs it and it
            is a whole matrix product).
    """

    #: Batch size of the evaluation passes (:meth:`predict`, :meth:`loss`, :meth:`accuracy`) when
    #: none is given: a large input never needs all its activations at once.
    eval_batch_size: int = 10000

    def __init__(
        self,
        layers: Iterable[Layer],
        loss: Loss | None = None,
        input_shape: tuple[int, ...] | None = None,
        input_grad: bool = False,
    ) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {type(layer).__name__}, not an xpnet layer")
            layer.name = str(i)
        self.loss_layer = loss if loss is not None else SoftmaxCrossEntropy()
        self.backend: Backend = self.layers[0].backend
        parts: list[Layer | Loss] = [*self.layers, self.loss_layer]
        for i, obj in enumerate(parts):
            if obj.backend != self.backend:
                raise ValueError(
                    f"{'the loss' if obj is self.loss_layer else f'layer {i}'} was created on backend "
                    f"{obj.backend}, but layer 0 on {self.backend}: create all layers under one backend"
                )
        self._slots = [(f"{i}.{p}", layer, p) for i, layer in enumerate(self.layers) for p in layer.param_names]
        self.layers[0].input_grad = input_grad
        self.input_grad = input_grad
        self.shapes = self._infer_shapes(input_shape)
        self._backprop = False  # whether the loss layer and the layers hold a training step's caches

    # -- structure ---------------------------------------------------------------------
    def _infer_shapes(self, input_shape: tuple[int, ...] | None) -> list[tuple[Any, Any]]:
        """(input, output) per-sample shapes per layer; raises ValueError where sizes do not chain.

        Only the first layer's input shape (or ``input_shape``) is the model's; a later layer that fixes
        its own (an ``Affine`` after convolutions) only lets the shapes after it be shown before data."""
        shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
        shapes = []
        for layer in self.layers:
            if shape is None:
                shape = layer.input_shape()
            out = layer.output_shape(shape) if shape is not None else None
            shapes.append((shape, out))
            shape = out
        self.input_shape = shapes[0][0]
        return shapes

    def _fix_input_shape(self, shape: tuple[int, ...]) -> None:
        """Fix the model's input shape from the first data it sees (every layer's shapes then follow);
        data the first layer cannot take fixes nothing and raises a ValueError that says what to do."""
        try:
            shapes = self._infer_shapes(shape)
        except ValueError as e:
            self.input_shape = None
            # the first layer that decides what the input must be: one that takes images, or one that fixes a shape
            decider = next(la for la in self.layers if la.takes_images or la.input_shape() is not None)
            if len(shape) == 1 and decider.takes_images:
                raise ValueError(
                    f"inputs are flat rows of {shape[0]} features per sample, but layer {decider.name}, "
                    f"{decider.describe()}, takes images (N, C, H, W): load images (e.g. load_mnist(flatten=False)) "
                    f"or build the model with input_shape=(C, H, W) (e.g. (1, 28, 28)), and flat rows are reshaped "
                    f"to it"
                ) from None
            raise ValueError(f"inputs of shape {shape} per sample do not fit this model: {e}") from None
        self.shapes = shapes

    def _image_rows(self, x: Any, shape: tuple[int, ...]) -> Any:
        """Flat rows ``(N, C·H·W)`` reshaped to the model's image shape (where it is known and sizes match)."""
        built = self.input_shape
        if built is not None and len(built) > 1 and len(shape) == 1 and shape[0] == math.prod(built):
            return self.backend.xp.reshape(x, (x.shape[0], *built))
        return x

    @property
    def dtype(self) -> Any:
        for layer in self.layers:
            for p in layer.params.values():
                return p.dtype
        return self.backend.dtype()

    @property
    def params(self) -> dict[str, Any]:
        return {key: getattr(layer, name) for key, layer, name in self._slots}

    @property
    def grads(self) -> dict[str, Any]:
        return {key: getattr(layer, "d" + name) for key, layer, name in self._slots}

    @property
    def buffers(self) -> dict[str, Any]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.buffers.items()}

    def n_params(self) -> int:
        """The number of trained scalars."""
        return sum(math.prod(p.shape) for p in self.params.values())

    # -- data at the boundary -------------------------------------------------------------
    def _input(self, x: Any, flat: bool = False) -> Any:
        """Input onto the model's backend and dtype, its per-sample shape checked against the model's
        ``input_shape`` (the first data fixes it where nothing else did). Flat rows given to a model of known
        image shape are reshaped to it. A flat ``input_shape`` (an ``Affine`` first) takes any shape of as many
        features; its mismatches are checked with ``flat=True`` (otherwise the first layer's check names it)."""
        x = self.backend.asarray(x, self.dtype, strict=True)
        if x.ndim < 1:
            raise ValueError(f"inputs must be an array of samples (N, ...), got a {x.ndim}-d array")
        shape = tuple(x.shape[1:])
        if self.input_shape is None:
            self._fix_input_shape(shape)
        x = self._image_rows(x, shape)
        shape, built = tuple(x.shape[1:]), self.input_shape
        assert built is not None  # fixed above, or refused
        if len(built) == 1 and not flat:
            return x
        if shape != built and (len(built) > 1 or math.prod(shape) != math.prod(built)):
            hint = (
                "load images with load_mnist(flatten=False) or give input_shape=(C, H, W)"
                if len(shape) == 1
                else "build it for this data, e.g. simple_cnn(input_shape=x.shape[1:]) or an MLP whose first size "
                "is the features"
            )
            raise ValueError(
                f"inputs of shape {shape} per sample, but the model was built for {built} (its input_shape): {hint}"
            )
        return x

    def _target(self, t: Any, name: str = "t") -> Any:
        """Targets onto the model's backend: floating ones in the model's dtype; uint64 labels as int64
        (some libraries cannot compare or reduce uint64; a label >= 2**63 turns negative and is refused)."""
        xp = self.backend.xp
        t = self.backend.asarray(_real_samples(self.backend, t, name), strict=True)
        if t.dtype == xp.uint64:
            t = xp.astype(t, xp.int64)
        return xp.astype(t, self.dtype) if self.backend.is_float(t) else t

    def check_data(
        self, x: Any, t: Any, values: bool | None = None, names: tuple[str, str] = ("x", "t")
    ) -> tuple[Any, Any]:
        """Move ``x, t`` to the model's backend and check them once: shapes and dtypes always (real
        numbers, at least one sample); the label range and that one-hot or soft target rows are
        distributions with ``values=True`` (one read: where data enters training) or, by default, only
        where reading is free (host memory). On a device the loss of such targets is NaN instead.
        ``names``: the arguments' names in error messages (the trainer's ``x_train``, ``t_train``, ...)."""
        x = self._input(_real_samples(self.backend, x, names[0]), flat=True)
        t = self._target(t, names[1])
        _same_samples(x, t, names)
        out = self.shapes[-1][1]
        if out is None:
            out = tuple(self.forward(x[:1, ...], train=False).shape[1:])
        self.loss_layer.check_target((x.shape[0], *out), t, values)
        return x, t

    # -- the book's interface -----------------------------------------------------------------
    def forward(self, x: Any, train: bool = True) -> Any:
        """Scores for device input ``x`` (no conversion or checks: the training loop's path).

        ``train=False`` keeps nothing in the layers (and makes :meth:`backward` refuse to run)."""
        self._backprop = False
        if not train:
            self.loss_layer.clear()
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def _batches(self, n: int, batch_size: int | None) -> Iterator[slice]:
        """Consecutive slices of at most ``batch_size`` rows covering ``n`` rows (one empty slice if n = 0)."""
        b = self.eval_batch_size if batch_size is None else batch_size
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"batch_size must be a positive integer (or None for eval_batch_size), got {b!r}")
        for i in range(0, max(n, 1), b):
            yield slice(i, min(i + b, n))

    def predict(self, x: Any, batch_size: int | None = None) -> Any:
        """Scores (before the loss's softmax) in evaluation mode, computed ``batch_size`` rows at a time."""
        x = self._input(_real_samples(self.backend, x, "x"))
        out = [self.forward(x[s, ...], train=False) for s in self._batches(x.shape[0], batch_size)]
        return out[0] if len(out) == 1 else self.backend.xp.concat(out, axis=0)

    def evaluate(
        self, x: Any, t: Any, batch_size: int | None = None, loss: bool = True, correct: bool = True
    ) -> tuple[Any, Any]:
        """``(mean loss, number of correct top-1 predictions)`` of data checked by :meth:`check_data`,
        as 0-d device arrays (no host read; ``None`` for what is not asked), in evaluation mode and
        batches of ``batch_size``; keeps nothing. The mean is the batches' losses weighted by their
        sizes (for :class:`~xpnet.network.losses.Flooding`: the mean of per-batch flooded losses)."""
        xp, n = self.backend.xp, x.shape[0]
        total = hits = None
        for s in self._batches(n, batch_size):
            y, tb = self.forward(x[s, ...], train=False), t[s, ...]
            if loss:
                e = self.loss_layer.forward(y, tb) * ((s.stop - s.start) / max(n, 1))
                total = e if total is None else total + e
            if correct:
                labels = tb if tb.ndim == 1 else xp.argmax(tb, axis=1)
                c = xp.sum(xp.astype(xp.argmax(y, axis=1) == labels, xp.int64))
                hits = c if hits is None else hits + c
        self.loss_layer.clear()
        return (xp.asarray(total) if loss else None), hits  # NumPy: 0-d, not a scalar

    def loss(self, x: Any, t: Any, train: bool = False, batch_size: int | None = None) -> Any:
        """The loss as a 0-d array on the device (no host sync). Checks ``t`` against the outputs.

        Evaluation by default (the book's ``train_flg=False``): repeatable, running statistics
        untouched, in batches. ``train=True`` is one training-mode pass (Dropout draws masks,
        BatchNorm uses and updates batch statistics) that :meth:`backward` can follow."""
        x, t = self.check_data(x, t)
        if train:
            return self.backend.xp.asarray(self.step_loss(x, t))
        return self.evaluate(x, t, batch_size, correct=False)[0]

    def step_loss(self, x: Any, t: Any, value: bool = True) -> Any:
        """Training-mode loss of device data already checked by :meth:`check_data` (no checks).

        ``value=False`` prepares ``backward`` without computing the loss value (the trainer's step)."""
        e = self.loss_layer.forward(self.forward(x, True), t, value)
        self._backprop = True
        return e

    def backward(self) -> dict[str, Any]:
        """Backpropagate the last training-mode loss (:meth:`gradient`, :meth:`step_loss`,
        ``loss(train=True)``); fills each layer's gradients and returns :attr:`grads`.

        The input gradient, when ``input_grad=True``, is kept in ``self.dx``. After an evaluation
        (:meth:`predict`, :meth:`loss`, :meth:`accuracy`, ``forward(train=False)``) it raises
        ``RuntimeError``: an evaluation keeps nothing to backpropagate.
        """
        if not self._backprop:
            raise RuntimeError(
                "backward() needs a training-mode loss first (model.gradient(x, t), model.loss(x, t, train=True) "
                "or step_loss); the last pass was an evaluation (predict, loss, accuracy or forward with "
                "train=False), which keeps nothing for backward"
            )
        dout = self.loss_layer.backward(1.0)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        self.dx = dout
        return self.grads

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """The training step (the book's ``gradient``): a training-mode forward of the checked batch,
        the loss, :meth:`backward`; returns :attr:`grads`. It does not go through :meth:`loss`."""
        x, t = self.check_data(x, t)
        self.step_loss(x, t, value=False)
        return self.backward()

    def accuracy(self, x: Any, t: Any, batch_size: int | None = None) -> float:
        """Fraction in [0, 1] (not percent) of samples whose top score is the label (labels or one-hot
        targets, checked as :meth:`loss` checks them), evaluated ``batch_size`` rows at a time. One read:
        the number of correct samples together with the number of out-of-range labels and of non-finite
        values in the data (each a ``ValueError``: a NaN input would still give a number)."""
        xp = self.backend.xp
        x = self._input(_real_samples(self.backend, x, "x"))
        t = self._target(t)
        _same_samples(x, t, ("x", "t"), "accuracy")
        out = self.shapes[-1][1] or tuple(self.forward(x[:1, ...], train=False).shape[1:])
        if t.ndim == 2:  # one-hot or soft targets: the loss's own check (distributions, where reading is free)
            self.loss_layer.check_target((x.shape[0], *out), t)
        hits = self.evaluate(x, t, batch_size, loss=False)[1]
        zero = xp.zeros((), dtype=xp.int64, device=self.backend.device)
        bad, c = zero, out[-1]
        if t.ndim == 1 and xp.isdtype(t.dtype, "integral"):
            ok = labels_in_range(xp, t, c)
            if ok is not None:
                bad = xp.sum(xp.astype(~ok, xp.int64))
        counts = [
            xp.astype(hits, xp.int64),
            bad,
            _non_finite(xp, x),
            _non_finite(xp, t) if self.backend.is_float(t) else zero,
        ]
        correct, out_of_range, bad_x, bad_t = (int(v) for v in self.backend.to_host(xp.stack(counts)))
        if out_of_range:
            raise ValueError(f"accuracy: {out_of_range} labels outside [0, {c - 1}] for {c} classes")
        if bad_x or bad_t:
            raise ValueError(
                f"accuracy: the data hold non-finite values (NaN or inf: {bad_x} in x, {bad_t} in t); "
                f"an accuracy of such data means nothing"
            )
        return correct / x.shape[0]

    # -- moving, state ------------------------------------------------------------------------
    def to(self, backend: str | Backend, device: Any = None) -> Sequential:
        """Move the model to another backend and/or device (explicitly; a global switch never moves it).

        ``model.to("torch", device="meta")``, ``model.to("array_api_strict:device1")``, ``model.to("numpy")``."""
        target = resolve_backend(backend, device)
        for layer in self.layers:
            layer.to(target)
        self.loss_layer.to(target)
        self.backend = target
        self._backprop = False
        return self

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Repeatable training-mode forwards: dropout masks fixed, running statistics restored."""
        saved = {k: self.backend.xp.asarray(v, copy=True) for k, v in self.buffers.items()}
        frozen = [layer for layer in self.layers if hasattr(layer, "freeze")]
        for layer in frozen:
            layer.freeze = True
        try:
            yield
        finally:
            for layer in frozen:
                layer.freeze = False
            for key, value in saved.items():
                i, name = key.split(".", 1)
                setattr(self.layers[int(i)], name, value)

    def summary(self) -> str:
        """A table: layer name, kind, input size, output size (as the articles print)."""

        def size(s: Any) -> str:
            return "?" if s is None else " x ".join(map(str, s))

        rows = [
            (layer.name, layer.describe(), size(s_in), size(s_out))
            for layer, (s_in, s_out) in zip(self.layers, self.shapes)
        ]
        rows.append(("loss", repr(self.loss_layer), size(self.shapes[-1][1]), "1"))
        table = plain_table(("layer", "kind", "input", "output"), rows)
        return f"{table}\nparameters: {self.n_params():,}  backend: {self.backend}  dtype: {self.dtype}"

    def __repr__(self) -> str:
        return self.summary()

    def save(self, path: str, optimizer: Any = None) -> None:
        """Save architecture + weights (+ optimizer state) atomically; see :func:`xpnet.load`."""
        fileformat.save(self, path, optimizer=optimizer)


# -- data at the boundary: small checks shared by check_data, predict and accuracy -------------------------
def _real_samples(backend: Backend, a: Any, name: str) -> Any:
    """``a`` (host data such as lists become an array of ``backend``), refused when complex (casting
    would drop the imaginary part) or 0-d (no sample axis)."""
    if not (hasattr(a, "dtype") and hasattr(a, "shape")):
        a = backend.asarray(a, strict=True)
    if "complex" in str(a.dtype):
        raise ValueError(
            f"{name} is complex ({a.dtype}); xpnet computes with real numbers and would drop the imaginary "
            f"part: give real data (e.g. the real and imaginary parts as separate features)"
        )
    if len(a.shape) == 0:
        raise ValueError(f"{name} is a 0-d array (one number); give samples along the first axis, shape (N, ...)")
    return a


def _same_samples(x: Any, t: Any, names: tuple[str, str], who: str = "") -> None:
    """``ValueError`` naming the arguments unless ``x`` and ``t`` hold the same number (>= 1) of samples."""
    prefix = f"{who}: " if who else ""
    if x.shape[0] != t.shape[0]:
        raise ValueError(f"{prefix}{x.shape[0]} inputs but {t.shape[0]} targets ({names[0]}, {names[1]})")
    if x.shape[0] == 0:
        raise ValueError(f"{prefix}{names[0]} and {names[1]} hold 0 samples: give at least one")


def _non_finite(xp: Any, a: Any) -> Any:
    """The number of NaN and infinite values of a floating array, as a 0-d int64 device array."""
    return xp.sum(xp.astype(~xp.isfinite(a), xp.int64))

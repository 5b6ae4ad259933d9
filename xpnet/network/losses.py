"""Losses: ``forward(y, t) -> E`` (a 0-d array on the device) and ``backward(dout=1) -> dE/dy``."""

from __future__ import annotations

import math
from typing import Any

from ..backends import Backend, get_backend
from .ops import Ones, constant, row_sums


class Loss:
    """Base class. A loss lives on the backend that was active when it was created."""

    def __init__(self) -> None:
        self.backend: Backend = get_backend()
        self.xp = self.backend.xp

    def forward(self, y: Any, t: Any, value: bool = True) -> Any:
        """Keep what ``backward`` needs and return E; ``value=False`` skips computing E (and
        returns None) where the caller never reads it — the training step."""
        raise NotImplementedError

    def backward(self, dout: Any = 1.0) -> Any:
        raise NotImplementedError

    def target(self, t: Any, dtype: Any) -> Any:
        """Floating targets in the outputs' dtype: integer (or float64) targets must not promote
        the loss and its gradient (NumPy would give float64, array-api-strict raises)."""
        return t if t.dtype == dtype else self.xp.astype(t, dtype)

    def check_target(self, y_shape: tuple[int, ...], t: Any, values: bool | None = None) -> None:
        """Validate targets against outputs: shapes and dtypes always; the values (label range) when
        ``values`` is true, or — ``None`` — where reading them is free (host memory, no device sync)."""
        if tuple(t.shape) != tuple(y_shape):
            raise ValueError(
                f"{type(self).__name__}: targets of shape {tuple(t.shape)} do not match outputs of shape "
                f"{tuple(y_shape)}"
            )

    def config(self) -> dict[str, Any]:
        return {}

    def to(self, backend: Backend) -> Loss:
        self.backend, self.xp = backend, backend.xp
        self.__dict__.pop("_classes", None)
        self.clear()
        return self

    def clear(self) -> None:
        """Forget what the last forward kept."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def labels_in_range(xp: Any, t: Any, c: int) -> Any:
    """Boolean array: which labels lie in ``[0, C-1]`` — compared only where the labels' dtype can hold
    the bound (int8 labels and 300 classes: ``t < 300`` would wrap); ``None`` when every value is valid."""
    info = xp.iinfo(t.dtype)
    ok = t >= 0 if info.min < 0 else None
    if info.max >= c:
        ok = t < c if ok is None else ok & (t < c)
    return ok


def check_labels(backend: Backend, t: Any, c: int) -> None:
    """``ValueError`` unless every label lies in ``[0, C-1]`` (one read of min and max)."""
    xp = backend.xp
    lo, hi = (int(v) for v in backend.to_host(xp.stack([xp.min(t), xp.max(t)])))
    if lo < 0 or hi >= c:
        raise ValueError(
            f"SoftmaxCrossEntropy: labels must lie in [0, {c - 1}] for {c} classes, got values in [{lo}, {hi}]"
        )


def distributions(backend: Backend, t: Any) -> Any:
    """Boolean ``(N,)`` array: which target rows are distributions — no negative (or NaN) entry, a sum
    within ``max(1e-3, √eps)`` of 1 (soft targets made in a narrower dtype keep their rounding)."""
    xp = backend.xp
    if not backend.is_float(t):
        t = xp.astype(t, backend.dtype())  # integer one-hot rows: 0 and 1 are exact
    tol = max(1e-3, math.sqrt(xp.finfo(t.dtype).eps))
    return xp.all(t >= 0, axis=1) & (xp.abs(xp.sum(t, axis=1) - 1.0) <= tol)


def check_distributions(backend: Backend, t: Any, who: str = "SoftmaxCrossEntropy") -> None:
    """``ValueError`` unless every row of the ``(N, C)`` targets is a distribution (one read)."""
    xp = backend.xp
    bad = xp.astype(~distributions(backend, t), xp.int64)
    count, first = (int(v) for v in backend.to_host(xp.stack([xp.sum(bad), xp.argmax(bad)])))
    if count:
        raise ValueError(
            f"{who}: one-hot or soft targets must be distributions (entries >= 0, each row summing to 1), "
            f"but {count} of {t.shape[0]} rows are not (the first is row {first}); for class labels give "
            f"integers of shape (N,)"
        )


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy as one layer (the book's ``SoftmaxWithLoss``).

    ``E = mean_n(log Σ_c e^(a_nc - m_n) - Σ_c t_nc (a_nc - m_n))`` with ``m_n = max_c a_nc``: each row's
    loss is formed from the shifted scores before the mean (no cancellation between batch sums, so
    scores near ±1000 lose nothing in float32); ``dE/da = (softmax(a) - t) / N``. Targets: integer
    class labels of shape ``(N,)`` or one-hot (or soft, rows summing to 1) targets of shape ``(N, C)``,
    cast to the scores' dtype. E is finite for every finite input: a spread of scores beyond the dtype's
    range (float16 ``[4e4, -4e4]``) gives the true loss, saturated at the dtype's largest value where
    that is beyond its range. Labels outside ``[0, C-1]`` and target rows that are no distributions
    make E NaN (checked without a host read; :meth:`check_target` raises where reading is free).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ones = Ones(column=True)  # for the row sums Σ_c e^(a - max)
        self._classes_for: tuple[int, Any] | None = None  # (C, label dtype) of the cached arange

    def forward(self, a: Any, t: Any, value: bool = True) -> Any:
        xp = self.xp
        n, c = a.shape
        z = a - xp.max(a, axis=1, keepdims=True)
        e = xp.exp(z)
        s = row_sums(self.backend, self.ones, e)
        self.y = e / s
        self.t = self.onehot(t, c, a.dtype) if t.ndim == 1 else self.target(t, a.dtype)
        if not value:
            return None
        e = self.mean(xp.log(s) - row_sums(self.backend, self.ones, self.t * self.floor(z)), n)
        ok = labels_in_range(xp, t, c) if t.ndim == 1 else distributions(self.backend, self.t)
        if ok is not None:  # an out-of-range label or a target row that is no distribution makes E NaN,
            e = xp.where(xp.all(ok), e, constant(self.backend, math.nan, e.dtype))  # without a host read
        return e

    def floor(self, z: Any) -> Any:
        """``z`` with ``-inf`` raised to the dtype's lowest finite value: a spread of scores beyond the
        dtype's range (float16 ``[4e4, -4e4]``) overflows ``a - max`` to ``-inf``, and ``0 · -inf`` in
        ``t · z`` would make E NaN. Those classes' probabilities are 0 all the same."""
        xp = self.xp
        return xp.maximum(z, constant(self.backend, -xp.finfo(z.dtype).max, z.dtype))

    def mean(self, rows: Any, n: int) -> Any:
        """The mean of per-row losses, saturated at the dtype's largest finite value (a loss beyond the
        dtype's range has no finite value closer); float16 and bfloat16 are summed in float32, so that
        a batch of moderate losses does not overflow the sum."""
        xp, dtype = self.xp, rows.dtype
        top = xp.finfo(dtype).max
        wide = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
        e = xp.sum(xp.astype(rows, wide) / n) if wide != dtype else xp.sum(rows / n)
        e = xp.minimum(e, constant(self.backend, top, wide))
        return e if wide == dtype else xp.astype(e, dtype)

    def onehot(self, t: Any, c: int, dtype: Any) -> Any:
        """One-hot rows by comparison with ``arange(C)`` (the standard has no scatter); ``arange``
        in the labels' dtype where it holds C - 1 (uint8 labels and 300 classes would wrap)."""
        xp = self.xp
        classes = getattr(self, "_classes", None)
        if classes is None or self._classes_for != (c, t.dtype):
            wide = xp.iinfo(t.dtype).max >= c - 1
            classes = self._classes = xp.arange(c, dtype=t.dtype if wide else xp.int64, device=self.backend.device)
            self._classes_for = (c, t.dtype)
        return xp.astype(t[:, None] == classes, dtype)

    def backward(self, dout: Any = 1.0) -> Any:
        return (self.y - self.t) * (dout / self.y.shape[0])

    def check_target(self, y_shape: tuple[int, ...], t: Any, values: bool | None = None) -> None:
        n, c = y_shape
        if t.ndim == 1:
            if not self.xp.isdtype(t.dtype, "integral"):
                raise ValueError(
                    f"SoftmaxCrossEntropy: class labels of shape (N,) must be integers, got dtype {t.dtype}"
                )
            if t.shape[0] != n:
                raise ValueError(f"SoftmaxCrossEntropy: {t.shape[0]} labels for {n} samples (outputs {tuple(y_shape)})")
            if n and (values or (values is None and self.backend.host_memory)):
                check_labels(self.backend, t, c)
        elif t.ndim == 2:
            super().check_target(y_shape, t)
            if n and (values or (values is None and self.backend.host_memory)):
                check_distributions(self.backend, t)
        else:
            raise ValueError(
                f"SoftmaxCrossEntropy: targets must be labels (N,) or one-hot (N, {c}), got shape {tuple(t.shape)}"
            )

    def clear(self) -> None:
        self.y = self.t = None


class MeanSquaredError(Loss):
    """Identity output with squared error: ``E = ½‖y - t‖² / N``; ``dE/dy = (y - t) / N``."""

    def forward(self, y: Any, t: Any, value: bool = True) -> Any:
        self.diff = y - self.target(t, y.dtype)
        return 0.5 * self.xp.sum(self.diff * self.diff) / y.shape[0] if value else None

    def backward(self, dout: Any = 1.0) -> Any:
        return self.diff * (dout / self.diff.shape[0])

    def clear(self) -> None:
        self.diff = None


class Flooding(Loss):
    """Flooding (Ishida et al. 2020): ``Ẽ = |E - b| + b``.

    The gradient is ``dE`` when ``E ≥ b`` and ``-dE`` below the flood level ``b``. The sign is kept
    as a 0-d device array: no host–device sync.
    """

    def __init__(self, loss: Loss, b: float) -> None:
        super().__init__()
        if not 0 <= b < math.inf:  # NaN and inf too: they would train into NaN
            raise ValueError(f"flood level b must be a finite number >= 0, got {b!r}")
        self.loss, self.b = loss, float(b)

    def forward(self, y: Any, t: Any, value: bool = True) -> Any:
        e = self.loss.forward(y, t)  # the sign needs E itself
        self.sign = self.xp.astype(e >= self.b, e.dtype) * 2.0 - 1.0
        return self.xp.abs(e - self.b) + self.b

    def backward(self, dout: Any = 1.0) -> Any:
        return self.loss.backward(self.sign * dout)

    def check_target(self, y_shape, t, values=None):
        self.loss.check_target(y_shape, t, values)

    def config(self):
        return {"loss": type(self.loss).__name__, "b": self.b}

    def to(self, backend):
        self.loss.to(backend)
        return super().to(backend)

    def clear(self):
        self.sign = None
        self.loss.clear()


LOSSES: dict[str, type[Loss]] = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "MeanSquaredError": MeanSquaredError}

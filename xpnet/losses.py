"""Losses: ``forward(y, t) -> E`` (a 0-d array on the device) and ``backward(dout=1) -> dE/dy``."""

from __future__ import annotations

from typing import Any

from .backend import Backend, get_backend
from .ops import Ones, row_sums


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

    def check_target(self, y_shape: tuple[int, ...], t: Any, values: bool | None = None) -> None:
        """Validate targets against outputs: shapes and dtypes always; the values (label range) when
        ``values`` is true, or — ``None`` — where reading them is free (host memory, no device sync)."""
        if tuple(t.shape) != tuple(y_shape):
            raise ValueError(f"{type(self).__name__}: targets of shape {tuple(t.shape)} do not match outputs of shape {tuple(y_shape)}")

    def config(self) -> dict[str, Any]:
        return {}

    def to(self, backend: Backend) -> "Loss":
        self.backend, self.xp = backend, backend.xp
        self.__dict__.pop("_classes", None)
        self.clear()
        return self

    def clear(self) -> None:
        """Forget what the last forward kept."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def check_labels(backend: Backend, t: Any, c: int) -> None:
    """``ValueError`` unless every label lies in ``[0, C-1]`` (one read of min and max)."""
    xp = backend.xp
    lo, hi = (int(v) for v in backend.to_host(xp.stack([xp.min(t), xp.max(t)])))
    if lo < 0 or hi >= c:
        raise ValueError(f"SoftmaxCrossEntropy: labels must lie in [0, {c - 1}] for {c} classes, got values in [{lo}, {hi}]")


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy as one layer (the book's ``SoftmaxWithLoss``).

    ``E = mean_n(logsumexp(a_n) - a_n[t_n])`` computed with the max shift (stable for any scores);
    ``dE/da = (softmax(a) - onehot(t)) / N``. Targets: integer class labels of shape ``(N,)``
    or one-hot (or soft) targets of shape ``(N, C)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ones = Ones(column=True)  # for the row sums Σ_c e^(a - max)

    def forward(self, a: Any, t: Any, value: bool = True) -> Any:
        xp = self.xp
        n, c = a.shape
        m = xp.max(a, axis=1, keepdims=True)
        e = xp.exp(a - m)
        s = row_sums(self.backend, self.ones, e)
        self.y = e / s
        self.t = self.onehot(t, c, a.dtype) if t.ndim == 1 else t
        if not value:
            return None
        e = (xp.sum(xp.log(s) + m) - xp.sum(self.t * a)) / n
        if t.ndim == 1:  # an out-of-range label (one-hot row of zeros) makes E NaN, without a host read
            e = xp.where(xp.all((t >= 0) & (t < c)), e, xp.nan)
        return e

    def onehot(self, t: Any, c: int, dtype: Any) -> Any:
        """One-hot rows by comparison with ``arange(C)`` (the standard has no scatter)."""
        xp = self.xp
        classes = getattr(self, "_classes", None)
        if classes is None or classes.shape[0] != c or classes.dtype != t.dtype:
            classes = self._classes = xp.arange(c, dtype=t.dtype, device=self.backend.device)
        return xp.astype(t[:, None] == classes, dtype)

    def backward(self, dout: Any = 1.0) -> Any:
        return (self.y - self.t) * (dout / self.y.shape[0])

    def check_target(self, y_shape: tuple[int, ...], t: Any, values: bool | None = None) -> None:
        n, c = y_shape
        if t.ndim == 1:
            if not self.xp.isdtype(t.dtype, "integral"):
                raise ValueError(f"SoftmaxCrossEntropy: class labels of shape (N,) must be integers, got dtype {t.dtype}")
            if t.shape[0] != n:
                raise ValueError(f"SoftmaxCrossEntropy: {t.shape[0]} labels for {n} samples (outputs {tuple(y_shape)})")
            if n and (values or (values is None and self.backend.host_memory)):
                check_labels(self.backend, t, c)
        elif t.ndim == 2:
            super().check_target(y_shape, t)
        else:
            raise ValueError(f"SoftmaxCrossEntropy: targets must be labels (N,) or one-hot (N, {c}), got shape {tuple(t.shape)}")

    def clear(self) -> None:
        self.y = self.t = None


class MeanSquaredError(Loss):
    """Identity output with squared error: ``E = ½‖y - t‖² / N``; ``dE/dy = (y - t) / N``."""

    def forward(self, y: Any, t: Any, value: bool = True) -> Any:
        self.diff = y - t
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
        if b < 0:
            raise ValueError(f"flood level b must be >= 0, got {b!r}")
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


LOSSES: dict[str, type[Loss]] = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "MeanSquaredError": MeanSquaredError}

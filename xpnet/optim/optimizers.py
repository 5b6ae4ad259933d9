"""Optimizers: state + one per-parameter rule + an in-place write-back.

``opt.update(model.params, model.grads)`` (the book's call) or ``opt.step(model)``. Parameters are
updated in place (``p -= lr * g``), so the layers holding them see the new values; state
(velocities, moments) lives on the parameters' device. Hyper-parameters stay Python floats so a
float32 model stays float32 (no NumPy scalars, NEP 50).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

from ..backends import namespace_of
from .clipping import check_clip_norm, clip_by_global_norm


class Optimizer:
    """Base class: subclasses give ``slots`` (state arrays per parameter) and ``update_one``.

    Args:
        lr: learning rate η.
        weight_decay: L2 coefficient λ for weights (parameters named ``W``), as the book: the
            gradient becomes ``g + λW`` and the reported loss gains ``½λΣW²`` (see :meth:`penalty`).
        clip_norm: clip the gradients by global norm first, ``g ← g·min(1, C/‖g‖)`` (on the device,
            never read back; see :func:`xpnet.optim.clipping.clip_by_global_norm`). Off (None) by default.
    """

    slots: ClassVar[tuple[str, ...]] = ()
    nonnegative: ClassVar[tuple[str, ...]] = ()  # slots that hold sums of squares (checked when loaded)
    decoupled: ClassVar[bool] = False  # AdamW: decay applied to the weights, not the gradient

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None) -> None:
        self.lr = self._number("lr", lr, low=0.0, low_open=True)
        self.weight_decay = self._number("weight_decay", weight_decay, low=0.0)
        self.clip_norm = check_clip_norm(clip_norm, f"{type(self).__name__}: clip_norm")
        self.t = 0
        self.state: dict[str, dict[str, Any]] = {}
        self.xp: Any = None
        self._array_type: type | None = None

    def _number(self, name: str, value: Any, low: float, low_open: bool = False, high: float = math.inf) -> float:
        """``value`` as a finite float in ``[low, high)`` (``(low, high)`` with ``low_open``); else a
        ``ValueError`` naming the argument (the same check when a checkpoint is loaded)."""
        owner = type(self).__name__
        interval = f"{'(' if low_open else '['}{low:g}, {high:g})" if high != math.inf else None
        valid = f"in {interval}" if interval else f"a finite number {'>' if low_open else '>='} {low:g}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{owner}: {name}={value!r} is not a number; valid: {valid}")
        value = float(value)
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value >= high:
            raise ValueError(f"{owner}: {name}={value!r} is out of range; valid: {valid}")
        return value

    def config(self) -> dict[str, float]:
        """Constructor arguments (saved with a checkpoint)."""
        clip = {"clip_norm": self.clip_norm} if self.clip_norm is not None else {}
        return {"lr": self.lr, "weight_decay": self.weight_decay, **clip}

    @staticmethod
    def decays(key: str) -> bool:
        """Weight decay applies to weights (``"0.W"``), not to biases or BatchNorm's γ, β."""
        return key.rsplit(".", 1)[-1] == "W"

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """One step for every parameter, in place."""
        self.t += 1
        self.begin_step()
        self._bind(params)
        if self.clip_norm is not None:
            grads = clip_by_global_norm({k: grads[k] for k in params if k in grads}, self.clip_norm)
        for key, p in params.items():
            g = grads.get(key)
            if g is None:
                raise ValueError(f"no gradient for parameter {key!r}: call model.backward() before the update")
            state = self.state.get(key)
            if state is None:
                self.check_dtype(key, p)
                state = self.state[key] = {s: p * 0.0 for s in self.slots}  # zeros like p, same device
            if self.weight_decay and self.decays(key):
                if self.decoupled:
                    p *= 1.0 - self.lr * self.weight_decay
                else:
                    g = g + self.weight_decay * p
            self.update_one(p, g, state)

    def __getattr__(self, name: str) -> dict[str, Any]:
        """The book's view of the state: ``opt.v[key]`` (Momentum), ``opt.m``/``opt.v`` (Adam), ``opt.h``."""
        if name in type(self).slots:
            return {key: slots[name] for key, slots in self.__dict__.get("state", {}).items()}
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _bind(self, params: dict[str, Any]) -> None:
        """Take the array namespace of the parameters' backend (once per array type)."""
        first = next(iter(params.values()), None)
        if first is not None and type(first) is not self._array_type:
            self.xp, self._array_type = namespace_of(first), type(first)

    def step(self, model: Any) -> None:
        """``update(model.params, model.grads)``."""
        self.update(model.params, model.grads)

    def check_dtype(self, key: str, p: Any) -> None:
        """Refuse an ``eps`` that vanishes in the parameter's dtype (checked on the host, from
        ``finfo``): it would leave ``0/(√0 + 0) = NaN`` wherever a gradient is exactly zero.

        In float32 the bound is the smallest *normal* number: GPU kernels flush float32 subnormals to
        zero (seen on an H100 with CuPy: ``eps=1e-44`` gave NaN). float16 arithmetic runs in float32
        there, and float64 keeps its subnormals, so for those the smallest subnormal is the bound."""
        eps = getattr(self, "eps", None)
        if eps is None:
            return
        info = self.xp.finfo(p.dtype)
        tiniest = float(info.smallest_normal)
        if p.dtype != self.xp.float32:
            tiniest *= float(info.eps)  # the smallest subnormal
        if not eps >= tiniest:
            raise ValueError(
                f"{type(self).__name__}: eps={eps} underflows to 0 in {p.dtype} (parameter {key!r}; its smallest "
                f"positive value is {tiniest:.3g}) and a zero gradient would give 0/0 = NaN; use eps >= "
                f"{float(info.smallest_normal):.1g} with this dtype"
            )

    def begin_step(self) -> None:
        """Per-step host computations (e.g. Adam's bias correction), before the parameters."""

    def update_one(self, p: Any, g: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def penalty(self, params: dict[str, Any]) -> Any:
        """``½λΣ‖W‖²`` added to the reported loss (0 when decay is off or decoupled)."""
        if not self.weight_decay or self.decoupled:
            return 0.0
        self._bind(params)
        return sum(0.5 * self.weight_decay * self.xp.sum(p * p) for k, p in params.items() if self.decays(k))

    # -- saving and restoring -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"t": steps, "state": {param key: {slot: array}}}`` (arrays on the device)."""
        return {"t": self.t, "state": {k: dict(v) for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        """Restore :meth:`state_dict` (arrays already on the parameters' backend; with ``params``,
        keys and shapes are checked against them)."""
        restored = {}
        for key, slots in state["state"].items():
            if set(slots) != set(self.slots):
                raise ValueError(
                    f"optimizer state for {key!r} has slots {sorted(slots)}, expected {sorted(self.slots)}"
                )
            if params is not None:
                if key not in params:
                    raise ValueError(f"optimizer state for {key!r}, which the model does not have")
                for name, a in slots.items():
                    if tuple(a.shape) != tuple(params[key].shape):
                        raise ValueError(
                            f"optimizer state {key}/{name} has shape {tuple(a.shape)}, "
                            f"the parameter {tuple(params[key].shape)}"
                        )
            restored[key] = dict(slots)
        t = state["t"]
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < 2**53:
            raise ValueError(f"optimizer step count t must be an integer >= 0, got {t!r}")
        self.t = int(t)
        self.state = restored

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class SGD(Optimizer):
    """``W ← W - η·g``."""

    def __init__(self, lr: float = 0.01, weight_decay: float = 0.0, clip_norm: float | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm)

    def update_one(self, p, g, state):
        p -= self.lr * g


class Momentum(Optimizer):
    """``v ← μv - η·g;  W ← W + v``."""

    slots = ("v",)

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, clip_norm: float | None = None
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.momentum = self._number("momentum", momentum, low=0.0, high=1.0)

    def config(self):
        return {**super().config(), "momentum": self.momentum}

    def update_one(self, p, g, state):
        v = state["v"]
        v *= self.momentum
        v -= self.lr * g
        p += v


class Nesterov(Momentum):
    """Nesterov without the look-ahead evaluation (SEEDS.md):
    ``v' = μv - η·g;  W ← W - μv + μv' + v'``."""

    def update_one(self, p, g, state):
        v, mu = state["v"], self.momentum
        p -= mu * v
        v *= mu
        v -= self.lr * g
        p += (1.0 + mu) * v


class AdaGrad(Optimizer):
    """``h ← h + g²;  W ← W - η·g/(√h + ε)``."""

    slots = nonnegative = ("h",)

    def __init__(
        self, lr: float = 0.01, eps: float = 1e-7, weight_decay: float = 0.0, clip_norm: float | None = None
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.eps = self._number("eps", eps, low=0.0, low_open=True)

    def config(self):
        return {**super().config(), "eps": self.eps}

    def update_one(self, p, g, state):
        h = state["h"]
        h += g * g
        p -= self.lr * g / (self.xp.sqrt(h) + self.eps)


class RMSProp(Optimizer):
    """``h ← ρh + (1-ρ)g²;  W ← W - η·g/(√h + ε)``."""

    slots = nonnegative = ("h",)

    def __init__(
        self,
        lr: float = 0.01,
        decay_rate: float = 0.99,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.decay_rate = self._number("decay_rate", decay_rate, low=0.0, high=1.0)
        self.eps = self._number("eps", eps, low=0.0, low_open=True)

    def config(self):
        return {**super().config(), "decay_rate": self.decay_rate, "eps": self.eps}

    def update_one(self, p, g, state):
        h = state["h"]
        h *= self.decay_rate
        h += (1.0 - self.decay_rate) * (g * g)
        p -= self.lr * g / (self.xp.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba, Algorithm 1, as PyTorch): ``m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;``
    ``W ← W - η·m̂/(√v̂ + ε)`` with ``m̂ = m/(1-β₁ᵗ)``, ``v̂ = v/(1-β₂ᵗ)``.

    Computed as ``W ← W - η_t·m/(√v·c_t + ε)`` with ``η_t = η/(1-β₁ᵗ)`` and ``c_t = 1/√(1-β₂ᵗ)``
    (host scalars): the same update without bias-corrected copies, and ε is added as given — the
    product ε√(1-β₂ᵗ) would underflow to 0 in float16 (ε = 1e-7) and turn a zero gradient into
    0/0 = NaN. An ε that is 0 in the parameter dtype is refused (``ValueError`` naming ``eps``).
    """

    slots = ("m", "v")
    nonnegative = ("v",)

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.beta1 = self._number("beta1", beta1, low=0.0, high=1.0)
        self.beta2 = self._number("beta2", beta2, low=0.0, high=1.0)
        self.eps = self._number("eps", eps, low=0.0, low_open=True)

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def begin_step(self) -> None:
        self.lr_t = self.lr / (1.0 - self.beta1**self.t)
        self.c_t = 1.0 / math.sqrt(1.0 - self.beta2**self.t)

    def update_one(self, p, g, state):
        m, v = state["m"], state["v"]
        m += (1.0 - self.beta1) * (g - m)
        v += (1.0 - self.beta2) * (g * g - v)
        p -= self.lr_t * m / (self.xp.sqrt(v) * self.c_t + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``W ← W(1 - ηλ)`` then the Adam step."""

    decoupled = True

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "adamw": AdamW,
}
"""Optimizers by their command-line name."""


def from_config(spec: Any) -> Optimizer:
    """The optimizer a file describes, ``{"class": "Adam", "config": {...}, "t": steps}``, with the
    constructor's checks (a ``ValueError`` or ``TypeError`` for anything else)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"an optimizer is described by {{'class', 'config', 't'}}, got {spec!r:.80}")
    classes = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    cls = classes.get(spec.get("class"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown optimizer {spec.get('class')!r:.40}; valid: {', '.join(classes)}")
    opt = cls(**spec["config"])
    opt.load_state_dict({"t": spec.get("t", 0), "state": {}})
    return opt

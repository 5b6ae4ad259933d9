"""Max and average pooling (NCHW), computed window position by window position.

For each of the PH·PW positions in a window, one strided slice of the (padded) input covers that
position in every window at once; the output is their elementwise max (or mean). Loops run over
the window only, never over the batch or the output pixels, and there is no reduction over a
short axis (slow on NumPy) and no scatter: the backward pass adds each slice's share into the
input gradient with slice assignment. That is the array-API reference; max pooling calls the backend's
native kernels instead where it has them and they support the case (:mod:`xpnet.backends.kernels`).
"""

from __future__ import annotations

from typing import Any

from ...backends import kernels
from .base import Layer
from .conv import pair
from .im2col import out_size, window


class _Pool(Layer):
    """Shared mechanics: padding, the window positions, shape checks; subclasses combine and route."""

    takes_images = True

    def __init__(self, size: int | tuple[int, int] = 2, stride: int | None = None, pad: int = 0) -> None:
        super().__init__()
        self.size = pair(size)
        self.stride = int(stride) if stride is not None else self.size[0]
        self.pad = int(pad)
        if min(*self.size, self.stride) < 1 or self.pad < 0:
            raise ValueError(f"invalid pooling sizes: size={size}, stride={stride}, pad={pad}")
        self.clear()

    def config(self) -> dict[str, Any]:
        return {"size": list(self.size), "stride": self.stride, "pad": self.pad}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise self._mismatch("(N, C, H, W)", ("N", *shape))
        oh, ow = self._out(shape[1], shape[2])
        if oh < 1 or ow < 1:
            raise self._mismatch(
                f"(N, C, H >= {self.size[0] - 2 * self.pad}, W >= {self.size[1] - 2 * self.pad})", ("N", *shape)
            )
        return (shape[0], oh, ow)

    def _out(self, h: int, w: int) -> tuple[int, int]:
        return out_size(h, self.size[0], self.stride, self.pad), out_size(w, self.size[1], self.stride, self.pad)

    def _regions(self, h: int, w: int) -> list[tuple[slice, ...]]:
        """One index per window position: that position in every window."""
        oh, ow = self._out(h, w)
        return [
            (slice(None), slice(None), window(i, oh, self.stride), window(j, ow, self.stride))
            for i in range(self.size[0])
            for j in range(self.size[1])
        ]

    def forward(self, x: Any, train: bool = True) -> Any:
        xp, p = self.xp, self.pad
        if x.ndim != 4:
            raise self._mismatch("(N, C, H, W)", tuple(x.shape))
        n, c, h, w = x.shape
        if self._out(h, w)[0] < 1 or self._out(h, w)[1] < 1:
            raise self._mismatch(f"(N, C, H >= {self.size[0]}, W >= {self.size[1]})", tuple(x.shape))
        self.x_shape = (n, c, h, w)
        y = self.native_forward(x, train)
        if y is not None:
            return y
        if p:
            padded = xp.zeros((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device)
            padded[:, :, p : p + h, p : p + w] = x
            x = padded
        self.x_shape, self.padded_shape = (n, c, h, w), tuple(x.shape)
        # each window position as a compact copy: one strided pass each, then the combining passes run over
        # contiguous memory (NumPy, 100×30×24×24 max pooling: 1.3 ms instead of 1.9 on strided views)
        return self.combine([xp.asarray(x[r], copy=True) for r in self._regions(h, w)], train)

    def backward(self, dout: Any) -> Any:
        dx = self.native_backward(dout)
        if dx is not None:
            return dx
        xp, p = self.xp, self.pad
        _, _, h, w = self.x_shape
        overlapping = self.stride < max(self.size)
        (ph, pw), s = self.size, self.stride
        tiled = not p and (s, s) == (ph, pw) and h % ph == 0 and w % pw == 0  # every element written once
        dx = (xp.empty if tiled else xp.zeros)(self.padded_shape, dtype=dout.dtype, device=dout.device)
        for region, share in zip(self._regions(h, w), self.route(dout)):
            # windows that do not overlap own each input element once: assign instead of accumulate
            dx[region] = dx[region] + share if overlapping else share
        return dx[:, :, p : p + h, p : p + w] if p else dx

    def native_forward(self, x: Any, train: bool) -> Any:
        """The output by the backend's native kernels, or None: the reference computes it."""
        return None

    def native_backward(self, dout: Any) -> Any:
        """The input gradient by the native kernels the forward used, or None: the reference's routing."""
        return None

    def combine(self, pieces: list[Any], train: bool) -> Any:
        """The output from the input's value at each window position."""
        raise NotImplementedError

    def route(self, dout: Any) -> list[Any]:
        """The gradient's share for each window position."""
        raise NotImplementedError


class Pooling(_Pool):
    """Max pooling (the book's ``Pooling``): each window's gradient goes to its first maximum.

    The argmax mask is cheap: a running maximum over the window positions k = 0, 1, ... keeps one
    boolean per position, ``took_k = piece_k > running max`` (strictly: ties stay with the earlier
    position). The winner is the last k that took the lead, so backward peels the gradient off from
    the last position down: ``share_k = rest·took_k``, ``rest -= share_k``, and position 0 gets the rest.
    Forward costs two passes per position, and only 1-byte masks are kept.

    Where the backend has native kernels supporting the case (ATen: ``pad=0``), they compute the same
    (ties to the first maximum too) and keep their own state (ATen: the input and the argmax indices).
    """

    def native_forward(self, x, train):
        native = kernels.for_backend(self.backend, "max_pool")
        if native is None or not native.supports_max_pool(x, self.size, self.stride, self.pad):
            self.native = self.state = None
            return None
        self.took = None
        y, state = native.max_pool(x, self.size, self.stride, self.pad)
        self.native, self.state = (native, state) if train else (None, None)
        return y

    def native_backward(self, dout):
        if self.native is None:
            return None
        return self.native.max_pool_backward(dout, self.state, self.x_shape, self.size, self.stride, self.pad)

    def combine(self, pieces, train):
        xp = self.xp
        out, took = pieces[0], []
        for piece in pieces[1:]:
            if train:
                took.append(piece > out)
            out = xp.maximum(out, piece)
        self.took = took if train else None
        return out

    def route(self, dout):
        if self.took is None:
            raise RuntimeError(f"layer {self.name}: backward() needs a forward pass with train=True first")
        xp, rest, shares = self.xp, dout, []
        for took in reversed(self.took):
            share = rest * xp.astype(took, dout.dtype)
            rest = rest - share
            shares.append(share)
        shares.append(rest)
        return shares[::-1]

    def clear(self):
        self.took = self.native = self.state = None


class AvgPooling(_Pool):
    """Average pooling: every element of a window receives ``dout / (PH·PW)``."""

    def combine(self, pieces, train):
        out = pieces[0]
        for piece in pieces[1:]:
            out = out + piece
        return out * (1.0 / len(pieces))

    def route(self, dout):
        share = dout * (1.0 / (self.size[0] * self.size[1]))
        return [share] * (self.size[0] * self.size[1])

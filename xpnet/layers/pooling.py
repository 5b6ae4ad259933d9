"""Max and average pooling over im2col windows (NCHW)."""

from __future__ import annotations

from typing import Any

from .base import Layer
from .conv import pair
from .im2col import col2im, im2col, out_size


class _Pool(Layer):
    """Shared mechanics: windows as rows of ``(N·OH·OW·C, PH·PW)``; subclasses reduce and route."""

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
        (ph, pw), s, p = self.size, self.stride, self.pad
        oh, ow = out_size(shape[1], ph, s, p), out_size(shape[2], pw, s, p)
        if oh < 1 or ow < 1:
            raise self._mismatch(f"(N, C, H >= {ph}, W >= {pw})", ("N", *shape))
        return (shape[0], oh, ow)

    def forward(self, x: Any, train: bool = True) -> Any:
        xp = self.xp
        if x.ndim != 4:
            raise self._mismatch("(N, C, H, W)", tuple(x.shape))
        (ph, pw), n, c = self.size, x.shape[0], x.shape[1]
        col, oh, ow = im2col(xp, x, ph, pw, self.stride, self.pad)
        windows = xp.reshape(col, (-1, ph * pw))
        out = self.reduce(windows, train)
        self.x_shape, self.oh, self.ow = tuple(x.shape), oh, ow
        return xp.permute_dims(xp.reshape(out, (n, oh, ow, c)), (0, 3, 1, 2))

    def backward(self, dout: Any) -> Any:
        xp = self.xp
        d = xp.reshape(xp.permute_dims(dout, (0, 2, 3, 1)), (-1, 1))
        dcol = xp.reshape(self.route(d), (-1, self.x_shape[1] * self.size[0] * self.size[1]))
        return col2im(xp, dcol, self.x_shape, *self.size, self.stride, self.pad)

    def reduce(self, windows: Any, train: bool) -> Any:
        raise NotImplementedError

    def route(self, d: Any) -> Any:
        """``(rows, 1)`` output gradients → ``(rows, PH·PW)`` window gradients."""
        raise NotImplementedError


class Pooling(_Pool):
    """Max pooling (the book's ``Pooling``): the gradient goes to each window's first maximum,
    selected by comparing ``argmax`` with ``arange`` (no scatter)."""

    def reduce(self, windows, train):
        xp = self.xp
        if train:
            k = windows.shape[1]
            arg = xp.argmax(windows, axis=1)
            self.mask = xp.astype(arg[:, None] == xp.arange(k, dtype=arg.dtype, device=self.backend.device), windows.dtype)
        return xp.max(windows, axis=1)

    def route(self, d):
        if self.mask is None:
            raise RuntimeError(f"layer {self.name}: backward() needs a forward pass with train=True first")
        return self.mask * d

    def clear(self):
        self.mask = None


class AvgPooling(_Pool):
    """Average pooling: every element of a window receives ``dout / (PH·PW)``."""

    def reduce(self, windows, train):
        return self.xp.mean(windows, axis=1)

    def route(self, d):
        k = self.size[0] * self.size[1]
        return self.xp.broadcast_to(d * (1.0 / k), (d.shape[0], k))

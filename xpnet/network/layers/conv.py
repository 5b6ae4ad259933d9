"""Convolution (NCHW, im2col) and Flatten."""

from __future__ import annotations

import math
from typing import Any

from ...backends import kernels
from ..ops import Ones, column_sums
from .base import Layer, init_weight, zeros
from .im2col import accumulate, im2col, out_size, output_hw, pad_nchw


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Convolution(Layer):
    """2-D convolution: ``Y_n = [W_col | b]·[col_n; 1]`` with ``W`` of shape ``(FN, C, KH, KW)``, ``W_col``
    its ``(FN, KH·KW·C)`` matrix (kernel position outermost, as the columns) and ``col_n = im2col(X)_n`` of
    shape ``(KH·KW·C, OH·OW)``: the bias rides in the matrix product on a row of ones kept in the column
    workspace (no separate pass to add it).

    Backward: ``[dW | db] = Σ_n dY_n·[col_n; 1]ᵀ`` (the same augmented columns). With stride 1, where
    its columns are no larger than the forward's (``FN·H·W <= C·OH·OW``), ``dX`` is the correlation of
    ``dY`` (padded by ``K-1-pad``) with the kernels flipped and their channel axes swapped — a forward
    convolution again, one batched matmul over im2col columns; otherwise ``W_kᵀ·dY`` for each kernel
    position k is slice-added at k's windows (on NumPy the faster where the correlation's columns would
    be the larger).
    The columns (and the input gradient's, where it has them) live in workspaces reused from step to step
    (:meth:`clear` releases them); an evaluation forward (``train=False``) keeps nothing.

    That is the array-API reference. Where the backend has native kernels (:mod:`xpnet.backends.kernels`: ATen on
    torch, for example) and they support the case, forward and backward call them instead, the same
    convolution without columns; a training forward then keeps only ``x`` for backward. Kernels may be
    non-square (``kernel_size=(3, 5)``); ``init`` as :class:`Affine` with fan-in ``C·KH·KW``.
    """

    param_names = ("W", "b")
    takes_images = True
    #: How backward computes dX: ``"auto"`` (correlation for stride 1 where its columns are no larger than
    #: the forward's, ``FN·H·W <= C·OH·OW``; else routing), ``"correlate"`` (stride 1 only) or ``"route"``.
    #: Set on an instance or the class to compare them (``benchmarks/conv_input_gradient.py``); same dX.
    input_gradient_method: str = "auto"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        pad: int = 0,
        init: str | float = "he",
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.pad, self.init = pair(kernel_size), int(stride), int(pad), init
        if min(self.in_channels, self.out_channels, *self.kernel_size, self.stride) < 1 or self.pad < 0:
            raise ValueError(f"invalid convolution sizes: {self.describe()}")
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self.W = init_weight(self.backend, (self.out_channels, self.in_channels, kh, kw), fan_in, init)
        self.b = zeros(self.backend, (self.out_channels,))
        self.ones = Ones()  # for Σ_n
        self.workspace: Any = None
        self.grad_workspace: Any = None
        self.native: Any = None  # the native kernels the last training forward used (None: the reference)
        self.x: Any = None  # its input, kept for the native backward
        self.clear()

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "pad": self.pad,
            "init": self.init,
        }

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise self._mismatch(f"(N, {self.in_channels}, H, W)", ("N", *shape))
        (kh, kw), s, p = self.kernel_size, self.stride, self.pad
        oh, ow = out_size(shape[1], kh, s, p), out_size(shape[2], kw, s, p)
        if oh < 1 or ow < 1:
            raise self._mismatch(f"(N, {self.in_channels}, H >= {kh - 2 * p}, W >= {kw - 2 * p})", ("N", *shape))
        return (self.out_channels, oh, ow)

    def _buffer(self, name: str, shape: tuple[int, ...], like: Any) -> Any:
        """The workspace attribute ``name`` as a ``shape`` array of ``like``'s dtype and device, reused while
        those stay (an evaluation forward's :meth:`clear` releases it)."""
        buf = getattr(self, name)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != like.dtype or not self.backend.owns(buf):
            setattr(self, name, None)  # free the old one before allocating
            buf = self.xp.empty(shape, dtype=like.dtype, device=like.device)
            setattr(self, name, buf)
        return buf

    def forward(self, x: Any, train: bool = True) -> Any:
        xp = self.xp
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise self._mismatch(f"(N, {self.in_channels}, H, W)", tuple(x.shape))
        (kh, kw), s, p = self.kernel_size, self.stride, self.pad
        oh, ow = output_hw(x.shape[2], x.shape[3], kh, kw, s, p)
        self.x_shape: tuple[int, ...] = tuple(x.shape) if train else ()
        native = kernels.for_backend(self.backend, "conv2d")
        if native is not None and native.supports_conv2d(x, self.W, s, p):
            self.clear()  # the reference's workspaces and columns are not needed
            self.x, self.native = (x, native) if train else (None, None)
            return native.conv2d(x, self.W, self.b, s, p)
        self.x = self.native = None
        ckk = self.in_channels * kh * kw
        previous = self.workspace
        ws = self._buffer("workspace", (x.shape[0], ckk + 1, oh, ow), x)
        if ws is not previous:  # a new buffer: its last row, the bias's ones, is filled once
            ws[:, ckk, ...] = 1.0
        col, _, _ = im2col(xp, x, kh, kw, s, p, out=ws)
        w_col = xp.reshape(xp.permute_dims(self.W, (0, 2, 3, 1)), (self.out_channels, -1))  # (FN, KH·KW·C)
        w_b = xp.concat([w_col, xp.reshape(self.b, (-1, 1))], axis=1)
        out = w_b @ col  # (N, FN, OH·OW): NCHW, bias included, no transpose
        self.col: Any = col if train else None
        return xp.reshape(out, (x.shape[0], self.out_channels, oh, ow))

    def backward(self, dout: Any) -> Any:
        if self.native is not None:
            self.dW = self.db = None  # free last step's gradients first
            dx, self.dW, self.db = self.native.conv2d_backward(
                dout, self.x, self.W, self.stride, self.pad, self.input_grad
            )
            return dx if self.input_grad else None
        xp, col = self.xp, self.col
        if col is None:
            raise RuntimeError(f"layer {self.name}: backward() needs a forward pass with train=True first")
        correlate = self._correlates(dout.shape[2] * dout.shape[3])  # a bad method is refused before any work
        n, fn = dout.shape[0], self.out_channels
        dy = xp.reshape(dout, (n, fn, -1))  # (N, FN, OH·OW)
        self.dW = self.db = None  # free last step's gradients first
        ckk = col.shape[1] - 1
        per_image = xp.reshape(dy @ xp.matrix_transpose(col), (n, -1))  # dY_n·[col_n; 1]ᵀ, (N, FN·(CKK+1))
        dw_b = xp.reshape(column_sums(self.backend, self.ones, per_image), (fn, ckk + 1))
        (kh, kw), c = self.kernel_size, self.in_channels
        self.dW = xp.permute_dims(xp.reshape(dw_b[:, :ckk], (fn, kh, kw, c)), (0, 3, 1, 2))
        self.db = dw_b[:, ckk]
        if not self.input_grad:
            return None
        if correlate:
            return self._input_gradient(dout)
        # W_kᵀ for every kernel position k as row blocks of one contiguous (KH·KW·C, FN) matrix (the reshape copies)
        w_k = xp.reshape(xp.permute_dims(xp.reshape(self.W, (fn, c, kh * kw)), (2, 1, 0)), (kh * kw * c, fn))
        oh, ow = dout.shape[2], dout.shape[3]
        return accumulate(
            xp,
            lambda k: xp.reshape(w_k[k * c : (k + 1) * c, :] @ dy, (n, c, oh, ow)),
            self.x_shape,
            kh,
            kw,
            self.stride,
            self.pad,
            dout.dtype,
            dout.device,
        )

    def _correlates(self, out_pixels: int) -> bool:
        """Whether backward takes dX by correlation (see :attr:`input_gradient_method`), for an output of
        ``out_pixels = OH·OW`` per channel."""
        method = self.input_gradient_method
        if method not in ("auto", "correlate", "route"):
            raise ValueError(f"input_gradient_method must be 'auto', 'correlate' or 'route', not {method!r}")
        if method == "correlate" and self.stride != 1:
            raise ValueError(f"layer {self.name}: input_gradient_method='correlate' needs stride 1, not {self.stride}")
        if method == "auto":  # the correlation's columns (FN·H·W per kernel position) no larger than the forward's
            _, _, h, w = self.x_shape
            return self.stride == 1 and self.out_channels * h * w <= self.in_channels * out_pixels
        return method == "correlate"

    def _input_gradient(self, dout: Any) -> Any:
        """Stride 1: ``dX = corr(pad(dY, K-1-pad), W')`` with ``W'[c, f, i, j] = W[f, c, KH-1-i, KW-1-j]``, in
        the forward's im2col form (both methods timed: ``benchmarks/conv_input_gradient.py``)."""
        xp, (kh, kw), fn = self.xp, self.kernel_size, self.out_channels
        n, c, h, w = self.x_shape
        dy = pad_nchw(xp, dout, kh - 1 - self.pad, kw - 1 - self.pad)
        w_flip = xp.reshape(xp.permute_dims(xp.flip(self.W, axis=(2, 3)), (1, 2, 3, 0)), (c, kh * kw * fn))
        col, _, _ = im2col(xp, dy, kh, kw, 1, 0, out=self._buffer("grad_workspace", (n, kh * kw * fn, h, w), dout))
        return xp.reshape(w_flip @ col, (n, c, h, w))

    def clear(self) -> None:
        self.col = self.workspace = self.grad_workspace = self.x = self.native = None


class Flatten(Layer):
    """``(N, d1, d2, ...)`` → ``(N, d1·d2·...)``; backward restores the shape."""

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def forward(self, x: Any, train: bool = True) -> Any:
        self.x_shape = tuple(x.shape)
        return self.xp.reshape(x, (x.shape[0], -1))

    def backward(self, dout: Any) -> Any:
        return self.xp.reshape(dout, self.x_shape)

"""im2col / col2im (the book's ch. 7) with strided slices only: a convolution becomes one batched matrix product.

Layout (transpose-free): the KH·KW shifted views of the padded input are stacked on **axis 1**,
``(N, KH·KW, C, OH, OW)``, which reshapes without a copy to ``(N, KH·KW·C, OH·OW)`` with the kernel
position outermost (row ``k·C + c``; the matching weight matrix is ``W`` permuted to ``(FN, KH, KW, C)``,
a small copy). Each kernel position then fills one contiguous block of rows (on NumPy faster than rows
interleaved by channel, whose copies write every KH·KW-th row), and ``W_col @ col`` is one
batched matmul that yields ``(N, FN, OH·OW)`` = NCHW directly: no transposed copy of the columns or of
the output.

Python loops run over the kernel window only (KH·KW slices), never over the batch or the output
pixels. No scatter: col2im accumulates overlapping windows with in-place slice adds ``dx[s] += piece``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a window sliding over ``size`` (+ padding): ``(size + 2·pad - kernel) // stride + 1``."""
    return (size + 2 * pad - kernel) // stride + 1


def window(start: int, count: int, stride: int) -> slice:
    """Indices start, start+stride, ... (count of them) as a slice."""
    # stop kept inside the array: the standard leaves out-of-bounds slice stops unspecified
    return slice(start, start + stride * (count - 1) + 1, stride)


def output_hw(h: int, w: int, kh: int, kw: int, stride: int, pad: int) -> tuple[int, int]:
    """``(OH, OW)`` of a ``kh×kw`` window; a clear error where it does not fit."""
    oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} window with stride {stride}, pad {pad} does not fit a {h}x{w} input")
    return oh, ow


def pad_nchw(xp: Any, x: Any, pad: int, pad_w: int | None = None) -> Any:
    """``x`` with ``pad`` zeros above and below and ``pad_w`` (default ``pad``) left and right; a negative
    amount crops that many rows or columns from both sides instead. ``x`` itself when both are 0."""
    ph, pw = pad, pad if pad_w is None else pad_w
    if ph < 0 or pw < 0:  # crop first, then pad what is positive
        _, _, h, w = x.shape
        x = x[:, :, max(-ph, 0) : h - max(-ph, 0), max(-pw, 0) : w - max(-pw, 0)]
        ph, pw = max(ph, 0), max(pw, 0)
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype, device=x.device)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    return padded


def regions(kh: int, kw: int, oh: int, ow: int, stride: int) -> list[tuple[slice, ...]]:
    """For each kernel position (row-major), the NCHW slice of the padded input it sees in every window."""
    return [
        (slice(None), slice(None), window(i, oh, stride), window(j, ow, stride)) for i in range(kh) for j in range(kw)
    ]


def im2col(xp: Any, x: Any, kh: int, kw: int, stride: int, pad: int, out: Any = None) -> tuple[Any, int, int]:
    """``(N, C, H, W)`` → columns ``(N, KH·KW·C, OH·OW)`` (row ``k·C + c``), and ``OH, OW``.

    ``out``: an optional ``(N, R, OH, OW)`` workspace of x's dtype and device with ``R >= KH·KW·C`` rows;
    its first ``KH·KW·C`` rows are filled in place (reusing it saves a fresh allocation, and its page
    faults, per call) and the whole workspace is returned as ``(N, R, OH·OW)`` — the rows after them are the
    caller's (the convolution keeps a row of ones there for its bias). By default a new stack.
    """
    n, c, h, w = x.shape
    oh, ow = output_hw(h, w, kh, kw, stride, pad)
    xpad = pad_nchw(xp, x, pad)
    views = [xpad[r] for r in regions(kh, kw, oh, ow, stride)]
    if out is None:
        return xp.reshape(xp.stack(views, axis=1), (n, kh * kw * c, oh * ow)), oh, ow
    for k, v in enumerate(views):
        out[:, k * c : (k + 1) * c, ...] = v  # rows k·C + c: one contiguous block per kernel position
    return xp.reshape(out, (n, out.shape[1], oh * ow)), oh, ow


def accumulate(
    xp: Any,
    piece: Callable[[int], Any],
    shape: tuple[int, ...],
    kh: int,
    kw: int,
    stride: int,
    pad: int,
    dtype: Any,
    device: Any,
) -> Any:
    """``Σ_k`` of ``piece(k)`` (an ``(N, C, OH, OW)`` array per kernel position k) slice-added into a zero
    ``(N, C, H, W)`` image at that position's windows — the routing shared by col2im and the convolution's dX."""
    n, c, h, w = shape
    oh, ow = output_hw(h, w, kh, kw, stride, pad)
    dx = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dtype, device=device)
    for k, region in enumerate(regions(kh, kw, oh, ow, stride)):
        dx[region] += piece(k)
    return dx[:, :, pad : pad + h, pad : pad + w] if pad else dx


def col2im(xp: Any, col: Any, shape: tuple[int, ...], kh: int, kw: int, stride: int, pad: int) -> Any:
    """The adjoint of :func:`im2col`: columns ``(N, KH·KW·C, OH·OW)`` back to ``(N, C, H, W)``, overlapping
    windows summed."""
    n, c, h, w = shape
    oh, ow = output_hw(h, w, kh, kw, stride, pad)
    col = xp.reshape(col, (n, kh * kw, c, oh, ow))
    return accumulate(xp, lambda k: col[:, k, ...], shape, kh, kw, stride, pad, col.dtype, col.device)

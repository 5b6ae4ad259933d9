"""im2col / col2im (the book's ch. 7) with strided slices only: a convolution becomes one matrix product.

Python loops run over the kernel window only (kh·kw slices), never over the batch or the output
pixels. Columns are laid out channels-last, ``(N·OH·OW, C·KH·KW)`` with C outermost, so both
directions are a single stack / a few slice-adds and a reshape. No scatter: col2im accumulates
overlapping windows with slice assignment ``dx[s] = dx[s] + piece``.
"""

from __future__ import annotations

from typing import Any


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a window sliding over ``size`` (+ padding): ``(size + 2·pad - kernel) // stride + 1``."""
    return (size + 2 * pad - kernel) // stride + 1


def window(start: int, count: int, stride: int) -> slice:
    """Indices start, start+stride, ... (count of them) as a slice."""
    # stop kept inside the array: the standard leaves out-of-bounds slice stops unspecified
    return slice(start, start + stride * (count - 1) + 1, stride)


def im2col(xp: Any, x: Any, kh: int, kw: int, stride: int, pad: int) -> tuple[Any, int, int]:
    """``(N, C, H, W)`` → ``(N·OH·OW, C·KH·KW)`` columns, and ``OH, OW``."""
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} window with stride {stride}, pad {pad} does not fit a {h}x{w} input")
    xt = xp.permute_dims(x, (0, 2, 3, 1))  # NHWC
    if pad:
        padded = xp.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype, device=x.device)
        padded[:, pad : pad + h, pad : pad + w, :] = xt
        xt = padded
    pieces = [xt[:, window(i, oh, stride), window(j, ow, stride), :] for i in range(kh) for j in range(kw)]
    col = xp.stack(pieces, axis=-1)  # (N, OH, OW, C, KH·KW)
    return xp.reshape(col, (n * oh * ow, c * kh * kw)), oh, ow


def col2im(xp: Any, col: Any, shape: tuple[int, ...], kh: int, kw: int, stride: int, pad: int) -> Any:
    """The adjoint of :func:`im2col`: columns back to ``(N, C, H, W)``, overlapping windows summed."""
    n, c, h, w = shape
    oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
    col = xp.reshape(col, (n, oh, ow, c, kh * kw))
    dx = xp.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=col.dtype, device=col.device)
    for i in range(kh):
        for j in range(kw):
            region = (slice(None), window(i, oh, stride), window(j, ow, stride), slice(None))
            dx[region] = dx[region] + col[..., i * kw + j]
    if pad:
        dx = dx[:, pad : pad + h, pad : pad + w, :]
    return xp.permute_dims(dx, (0, 3, 1, 2))

"""CuPy's native kernels — UNVERIFIED: written without a GPU, off by default until ``benchmarks/gpu_check.sh``
has run them on one (its ``cupy_kernels`` step compares them with the reference).

Turned on by the environment variable ``XPNET_CUPY_KERNELS=1`` (read by :meth:`CupyBackend.native_kernels`).
CuPy 14 has no cuDNN; where CuPy 13's ``cupyx.cudnn`` imports and a cuDNN library loads, the convolution is
delegated to it (forward, filter and data gradients). Otherwise the convolution is im2col/col2im as one
elementwise kernel each (after Chainer's ``im2col_gpu``/``col2im_gpu``, ``chainer/utils/conv.py``) around
cuBLAS products, and max-pooling one kernel each way: the window's first maximum in row-major order, padded
positions counting as zeros (as the reference's zero padding), the argmax kept as an int32 index (-1: padding).
"""

from __future__ import annotations

from typing import Any

from ._kernels import NativeKernels

_IM2COL = """
int c0 = i / (kh * kw * out_h * out_w);
int ky = i / (kw * out_h * out_w) % kh;
int kx = i / (out_h * out_w) % kw;
int out_y = i / out_w % out_h;
int out_x = i % out_w;
int in_y = ky + out_y * s - p;
int in_x = kx + out_x * s - p;
col = (in_y >= 0 && in_y < h && in_x >= 0 && in_x < w) ? img[in_x + w * (in_y + h * c0)] : (T)0;
"""

_COL2IM = """
int c0 = i / (h * w);
int y = i / w % h;
int x = i % w;
T val = 0;
for (int ky = 0; ky < kh; ++ky) {
  int out_y = y + p - ky;
  if (out_y < 0 || out_y >= out_h * s || out_y % s != 0) continue;
  out_y /= s;
  for (int kx = 0; kx < kw; ++kx) {
    int out_x = x + p - kx;
    if (out_x < 0 || out_x >= out_w * s || out_x % s != 0) continue;
    out_x /= s;
    val = val + col[out_x + out_w * (out_y + out_h * (kx + kw * (ky + kh * c0)))];
  }
}
img = val;
"""

_POOL = """
int c0 = i / (out_h * out_w);
int out_y = i / out_w % out_h;
int out_x = i % out_w;
T best = 0;
int where = -1;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int y = out_y * s - p + ky, x = out_x * s - p + kx;
    bool inside = y >= 0 && y < h && x >= 0 && x < w;
    T v = inside ? img[x + w * (y + h * c0)] : (T)0;
    if ((ky == 0 && kx == 0) || v > best) { best = v; where = inside ? y * w + x : -1; }
  }
}
out = best;
argmax = where;
"""

_POOL_BACKWARD = """
int c0 = i / (h * w);
int y = i / w % h;
int x = i % w;
T val = 0;
for (int ky = 0; ky < kh; ++ky) {
  int out_y = y + p - ky;
  if (out_y < 0 || out_y >= out_h * s || out_y % s != 0) continue;
  out_y /= s;
  for (int kx = 0; kx < kw; ++kx) {
    int out_x = x + p - kx;
    if (out_x < 0 || out_x >= out_w * s || out_x % s != 0) continue;
    out_x /= s;
    int k = out_x + out_w * (out_y + out_h * c0);
    if (argmax[k] == y * w + x) val = val + gy[k];
  }
}
gx = val;
"""

_SIZES = "int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, int32 s, int32 p"


class CupyKernels(NativeKernels):
    """Elementwise im2col/col2im and pooling kernels, cuDNN's convolution where CuPy 13 has it (unverified)."""

    name = "cupy-elementwise"

    def __init__(self, cupy: Any) -> None:
        self._cp = cupy
        ew = cupy.ElementwiseKernel
        self._im2col = ew(f"raw T img, {_SIZES}", "T col", _IM2COL, "xpnet_im2col")
        self._col2im = ew(f"raw T col, {_SIZES}", "T img", _COL2IM, "xpnet_col2im")
        self._pool = ew(f"raw T img, {_SIZES}", "T out, int32 argmax", _POOL, "xpnet_max_pool")
        self._unpool = ew(f"raw T gy, raw int32 argmax, {_SIZES}", "T gx", _POOL_BACKWARD, "xpnet_max_unpool")
        self._cudnn = _cudnn()
        if self._cudnn is not None:
            self.name = "cudnn"

    @staticmethod
    def _out(h: int, w: int, kh: int, kw: int, s: int, p: int) -> tuple[int, int]:
        return (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1

    def _columns(self, x: Any, kh: int, kw: int, s: int, p: int) -> Any:
        n, c, h, w = x.shape
        oh, ow = self._out(h, w, kh, kw, s, p)
        col = self._cp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
        self._im2col(self._cp.ascontiguousarray(x).reduced_view(), h, w, oh, ow, kh, kw, s, p, col)
        return col.reshape(n, c * kh * kw, oh * ow)

    def conv2d(self, x: Any, w: Any, b: Any, stride: int, pad: int) -> Any:
        f, _, kh, kw = w.shape
        n, _, h, wd = x.shape
        oh, ow = self._out(h, wd, kh, kw, stride, pad)
        if self._cudnn is not None:
            y = self._cp.empty((n, f, oh, ow), dtype=x.dtype)
            self._cudnn.convolution_forward(
                x, w, b, y, (pad, pad), (stride, stride), (1, 1), 1, auto_tune=False, tensor_core="never"
            )
            return y
        y = self._cp.matmul(w.reshape(f, -1), self._columns(x, kh, kw, stride, pad))  # (N, F, OH·OW)
        y += b.reshape(1, f, 1)
        return y.reshape(n, f, oh, ow)

    def conv2d_backward(
        self, dy: Any, x: Any, w: Any, stride: int, pad: int, need_dx: bool
    ) -> tuple[Any | None, Any, Any]:
        cp, (f, c, kh, kw), (n, _, h, wd) = self._cp, w.shape, x.shape
        db = dy.sum(axis=(0, 2, 3))
        if self._cudnn is not None:
            dw = cp.empty_like(w)
            opts = {"deterministic": True, "auto_tune": False, "tensor_core": "never"}
            self._cudnn.convolution_backward_filter(x, dy, dw, (pad, pad), (stride, stride), (1, 1), 1, **opts)
            dx = None
            if need_dx:
                dx = cp.empty_like(x)
                self._cudnn.convolution_backward_data(w, dy, None, dx, (pad, pad), (stride, stride), (1, 1), 1, **opts)
            return dx, dw, db
        oh, ow = dy.shape[2], dy.shape[3]
        dy3 = dy.reshape(n, f, oh * ow)
        col = self._columns(x, kh, kw, stride, pad)
        dw = cp.tensordot(dy3, col, axes=((0, 2), (0, 2))).reshape(w.shape)
        if not need_dx:
            return None, dw, db
        dcol = cp.ascontiguousarray(cp.matmul(w.reshape(f, -1).T, dy3))  # (N, C·KH·KW, OH·OW)
        dx = cp.empty((n, c, h, wd), dtype=dy.dtype)
        self._col2im(dcol.reduced_view(), h, wd, oh, ow, kh, kw, stride, pad, dx)
        return dx, dw, db

    def max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> tuple[Any, Any]:
        cp, (n, c, h, w), (kh, kw) = self._cp, x.shape, size
        oh, ow = self._out(h, w, kh, kw, stride, pad)
        y = cp.empty((n, c, oh, ow), dtype=x.dtype)
        argmax = cp.empty((n, c, oh, ow), dtype=cp.int32)
        self._pool(cp.ascontiguousarray(x).reduced_view(), h, w, oh, ow, kh, kw, stride, pad, y, argmax)
        return y, argmax

    def max_pool_backward(
        self, dy: Any, state: Any, x_shape: tuple[int, ...], size: tuple[int, int], stride: int, pad: int
    ) -> Any:
        cp, (n, c, h, w), (kh, kw) = self._cp, x_shape, size
        oh, ow = dy.shape[2], dy.shape[3]
        dx = cp.empty((n, c, h, w), dtype=dy.dtype)
        self._unpool(cp.ascontiguousarray(dy).reduced_view(), state, h, w, oh, ow, kh, kw, stride, pad, dx)
        return dx

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        return bool(x.dtype == w.dtype) and x.dtype.kind == "f"


def _cudnn() -> Any:
    """``cupyx.cudnn`` where it imports and a cuDNN library answers (CuPy 13 with cuDNN installed), else None."""
    try:
        import cupyx.cudnn as cudnn_module
        from cupy.cuda import cudnn  # noqa: F401  (raises where no cuDNN library loads)
    except Exception:
        return None
    return cudnn_module

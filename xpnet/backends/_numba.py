"""NumPy's native kernels (issue 25): a direct convolution (no im2col) and max pooling compiled with numba.

Imported only by :meth:`NumpyBackend.native_kernels` on the first convolution or pooling that runs on
NumPy with numba installed: ``import xpnet`` imports no numba and compiles nothing.

The convolution is computed in a "wide" layout: with the input padded to ``(Hp, Wp)``, output pixel
``(oh, ow)`` of a stride-1 convolution reads the padded plane at ``q + i·Wp + j`` for ``q = oh·Wp + ow``,
so over ``q = 0 … (OH-1)·Wp + OW - 1`` each kernel tap ``(i, j)`` is one contiguous slice of the plane
(the ``Wp - OW`` columns past each output row are computed and dropped). The innermost loop runs over
``q`` with every tap of one channel unrolled in its body and several filters per pass, so one load of the
input feeds ``taps × filters`` fused multiply-adds (the body is generated per kernel size, ``KH × KW``).

* input gradient: the same kernel on ``dy`` padded by ``K-1-pad`` with the flipped, channel-swapped weights;
* weight gradient: per (filter block, channel), sums over images and ``q`` of ``dy · input slice`` — dot
  products along contiguous memory, accumulated in registers;
* stride ``s > 1``: the padded input is split into its ``s²`` phase planes (``x[a::s, b::s]``), taken as
  ``C·s²`` channels of a stride-1 convolution with ``ceil(KH/s) × ceil(KW/s)`` kernels (zeros where a
  phase has no tap), and the gradients are mapped back.

Compiled kernels are cached on disk (numba's ``cache=True``; the generated per-size modules are written
under ``NUMBA_CACHE_DIR`` or ``~/.cache/xpnet/numba``); where nothing can be written they compile once per
process. Each is compiled at most once per process and signature; :attr:`NumbaKernels.jit_seconds` sums
the time spent compiling (or loading from the disk cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pathlib
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from ._kernels import NativeKernels

log = logging.getLogger(__name__)

#: Filters per pass of the forward kernel: one load of the input feeds this many output rows.
FORWARD_FILTERS = 4
#: Output positions per forward task and per weight-gradient partial sum (planes flattened over the batch).
FORWARD_CHUNK = 1024
WGRAD_CHUNK = 1024
#: Accumulators (filters × taps) the weight gradient keeps in registers per pass, at most.
WGRAD_ACCUMULATORS = 24
#: Kernel sizes (after stride phases) up to this many taps get a generated kernel; larger ones use the reference.
MAX_TAPS = 49
#: Convolutions with fewer im2col rows (C·KH·KW: a first layer on one or three channels) stay on im2col + BLAS,
#: which is faster there (a short product; the direct kernels' unaligned tap loads and layout copies dominate).
MIN_COLUMN_ROWS = 32
_OPTIONS: dict[str, Any] = {"nogil": True, "error_model": "numpy"}
_FASTMATH = {"reassoc", "contract", "nsz"}  # vectorised reductions and FMAs; NaN/Inf semantics kept


def jit(fn: Callable[..., Any] | None = None, *, parallel: bool = True, fastmath: bool = True) -> Any:
    """``numba.njit`` with the kernels' options, cached on disk where numba finds a writable place
    (else compiled once per process: numba refuses ``cache=True`` when it has no cache directory)."""

    def wrap(f: Callable[..., Any]) -> Any:
        opts = dict(_OPTIONS, parallel=parallel, fastmath=_FASTMATH if fastmath else False)
        try:
            return numba.njit(cache=True, **opts)(f)
        except RuntimeError as e:  # "cannot cache function ...: no locator available" (read-only install)
            log.info("numba cannot cache %s (%s); it compiles once per process", f.__name__, e)
            return numba.njit(**opts)(f)

    return wrap if fn is None else wrap(fn)


# -- generated convolution kernels -----------------------------------------------------------


def _taps(kh: int, kw: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(kh) for j in range(kw)]


def _forward_pass(kh: int, kw: int, filters: int) -> list[str]:
    """Body lines: add channel ``c``'s contribution to ``filters`` output rows from filter ``f0``, ``nq`` positions."""
    taps = _taps(kh, kw)
    lines = [f"x{k} = xr[{i} * Wp + {j}:{i} * Wp + {j} + nq]" for k, (i, j) in enumerate(taps)]
    for g in range(filters):
        lines.append(f"y{g} = y[f0 + {g}, q0:q0 + nq]")
        lines += [f"w{g}_{k} = w[f0 + {g}, c, {i}, {j}]" for k, (i, j) in enumerate(taps)]
    lines.append("for q in range(nq):")
    lines += [f"    v{k} = x{k}[q]" for k in range(len(taps))]
    for g in range(filters):
        lines.append(f"    y{g}[q] += " + " + ".join(f"w{g}_{k} * v{k}" for k in range(len(taps))))
    return lines


def _wgrad_pass(kh: int, kw: int, filters: int) -> list[str]:
    """Body lines: ``pk[f0 + g, c, i, j] = Σ_q dy[f0 + g, q0 + q] · x[c, q0 + q + i·Wp + j]`` over ``nq``
    positions, one pass per kernel row (``filters × kw`` accumulators in registers)."""
    lines = [f"d{g} = dy[f0 + {g}, q0:q0 + nq]" for g in range(filters)]
    for i in range(kh):
        lines += [f"a{g}_{j} = pk[f0 + {g}, c, {i}, {j}]" for g in range(filters) for j in range(kw)]
        lines += [f"x{j} = xr[{i} * Wp + {j}:{i} * Wp + {j} + nq]" for j in range(kw)]
        lines.append("for q in range(nq):")
        lines += [f"    v{j} = x{j}[q]" for j in range(kw)]
        lines += [f"    e{g} = d{g}[q]" for g in range(filters)]
        lines += [f"    a{g}_{j} += e{g} * v{j}" for g in range(filters) for j in range(kw)]
        lines += [f"pk[f0 + {g}, c, {i}, {j}] = a{g}_{j}" for g in range(filters) for j in range(kw)]
    return lines


def wgrad_filters(kh: int, kw: int) -> int:
    """Filters per pass of the weight gradient: at most 8, ``filters × KW`` accumulators at most 24."""
    return max(1, min(8, WGRAD_ACCUMULATORS // kw))


def _indent(lines: list[str], n: int) -> str:
    return "\n".join(" " * n + line for line in lines)


def conv_source(kh: int, kw: int) -> str:
    """The Python source of the two stride-1 kernels for a ``kh × kw`` kernel (see the module docstring).

    Both take planes flattened over the batch, ``(channels, N·Hp·Wp)``: position ``q`` of output plane ``f``
    reads ``q + i·Wp + j`` of every input plane, so each tap is one contiguous slice across all images."""
    fb, wb = FORWARD_FILTERS, wgrad_filters(kh, kw)
    return f'''"""Generated by xpnet.backends._numba for {kh}x{kw} kernels (numba {numba.__version__}); do not edit."""
from numba import prange

from xpnet.backends._numba import jit


@jit
def forward(xc, w, b, y, Wp):
    """y[f, q] = b[f] + sum over c, i, j of w[f, c, i, j] * xc[c, q + i*Wp + j]; F a multiple of {fb}."""
    C, L = xc.shape
    F = w.shape[0]
    Q = L - {kh - 1} * Wp - {kw - 1}
    chunks = (Q + {FORWARD_CHUNK} - 1) // {FORWARD_CHUNK}
    for t in prange((F // {fb}) * chunks):
        f0 = (t // chunks) * {fb}
        q0 = (t % chunks) * {FORWARD_CHUNK}
        nq = min({FORWARD_CHUNK}, Q - q0)
        for f in range(f0, f0 + {fb}):
            y[f, q0:q0 + nq] = b[f]
        for c in range(C):
            xr = xc[c, q0:]
{_indent(_forward_pass(kh, kw, fb), 12)}


@jit
def wgrad(xc, dy, part, Wp):
    """part[k, f, c, i, j] = sum over q in chunk k of dy[f, q] * xc[c, q + i*Wp + j]; F a multiple of {wb}."""
    C, L = xc.shape
    F = dy.shape[0]
    Q = L - {kh - 1} * Wp - {kw - 1}
    for k in prange(part.shape[0]):
        q0 = k * {WGRAD_CHUNK}
        nq = min({WGRAD_CHUNK}, Q - q0)
        pk = part[k]
        for f0 in range(0, F, {wb}):
            for c in range(C):
                xr = xc[c, q0:]
{_indent(_wgrad_pass(kh, kw, wb), 16)}
'''


def _kernel_dir() -> pathlib.Path:
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return pathlib.Path(base) / "xpnet-kernels"
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(home) / "xpnet" / "numba"


def _write_once(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically unless it is there already (its mtime keys numba's cache)."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _load_conv(kh: int, kw: int) -> Any:
    """The generated module for ``kh × kw`` kernels: from a file (cacheable by numba) where one can be
    written, else executed in memory (compiled once per process)."""
    source = conv_source(kh, kw)
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    name = f"xpnet_numba_conv_{kh}x{kw}_{digest}"
    path = _kernel_dir() / f"{name}.py"
    try:
        _write_once(path, source)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise OSError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's disk cache finds the kernels' module by name
        spec.loader.exec_module(module)
        return module
    except OSError as e:
        log.info("numba kernels for %dx%d: no writable cache directory (%s); compiled in memory", kh, kw, e)
        namespace: dict[str, Any] = {"__name__": name}
        exec(compile(source, f"<{name}>", "exec"), namespace)
        return type("GeneratedKernels", (), {"forward": namespace["forward"], "wgrad": namespace["wgrad"]})


# -- max pooling (generic, no generated code) --------------------------------------------------


@jit(parallel=False, fastmath=False)
def _window_with_nan(xp, n, c, h0, w0, ph, pw):  # pragma: no cover - compiled
    """``(max, index)`` of one window holding a NaN or an infinity, as the reference's running maximum:
    ``took = v > out`` then ``out = max(out, v)`` — a NaN makes the output NaN and keeps the index it had."""
    m = xp[n, c, h0, w0]
    best = 0
    for i in range(ph):
        for j in range(pw):
            v = xp[n, c, h0 + i, w0 + j]
            if v > m:
                m = v
                best = i * pw + j
            elif v != v:
                m = v
    return m, best


@jit(fastmath=False)
def _pool_forward(xp, ph, pw, s, y, arg):  # pragma: no cover - compiled
    """Window maxima of the (zero-)padded input ``xp``; ``arg``: the winner's window index ``i·pw + j``, the
    first maximum in row-major order (a later tie does not take the lead). A window with a NaN (or an
    infinity: ``v·0`` is NaN for both) is redone by :func:`_window_with_nan`."""
    N, C = xp.shape[0], xp.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for t in numba.prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                h0 = oh * s
                w0 = ow * s
                m = xp[n, c, h0, w0]
                best = 0
                finite = m * 0
                for i in range(ph):
                    for j in range(pw):
                        v = xp[n, c, h0 + i, w0 + j]
                        finite += v * 0
                        if v > m:
                            m = v
                            best = i * pw + j
                if finite != finite:
                    m, best = _window_with_nan(xp, n, c, h0, w0, ph, pw)
                y[n, c, oh, ow] = m
                arg[n, c, oh, ow] = best


@jit(fastmath=False)
def _pool_backward(dy, arg, pw, s, p, dx):  # pragma: no cover - compiled
    """``dx`` (zeros on entry) += each window's gradient at its winner (dropped where the winner is padding)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for t in numba.prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                k = arg[n, c, oh, ow]
                h = oh * s + k // pw - p
                col = ow * s + k % pw - p
                if 0 <= h < H and 0 <= col < W:
                    dx[n, c, h, col] += dy[n, c, oh, ow]


# -- the kernel set ------------------------------------------------------------------------------


def _round_up(n: int, block: int) -> int:
    return -(-n // block) * block


def _pad(x: np.ndarray, ph: int, pw: int, h_to: int | None = None, w_to: int | None = None) -> np.ndarray:
    """``x`` with ``ph``/``pw`` zeros before its rows/columns (a negative amount crops that many from both
    sides), zeros after up to ``h_to × w_to`` (default: symmetric), C-contiguous."""
    if ph < 0 or pw < 0:
        _, _, h, w = x.shape
        x = x[:, :, max(-ph, 0) : h - max(-ph, 0), max(-pw, 0) : w - max(-pw, 0)]
        ph, pw = max(ph, 0), max(pw, 0)
    n, c, h, w = x.shape
    h_to = h + 2 * ph if h_to is None else h_to
    w_to = w + 2 * pw if w_to is None else w_to
    if (ph, pw, h_to, w_to) == (0, 0, h, w):
        return np.ascontiguousarray(x)
    out = np.zeros((n, c, h_to, w_to), dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _channel_major(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """``(N, C, H, W)`` → zero-padded planes ``(C, N, H + 2·ph, W + 2·pw)`` (negative: cropped), C-contiguous:
    each channel's planes of all images one after another, as the kernels read them."""
    if ph < 0 or pw < 0:
        _, _, h, w = x.shape
        x = x[:, :, max(-ph, 0) : h - max(-ph, 0), max(-pw, 0) : w - max(-pw, 0)]
        ph, pw = max(ph, 0), max(pw, 0)
    n, c, h, w = x.shape
    out = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
    return out


def _phases(xp: np.ndarray, s: int) -> np.ndarray:
    """``(N, C, Hs·s, Ws·s)`` → its ``s²`` phase planes ``x[a::s, b::s]`` as channels ``c·s² + a·s + b``."""
    n, c, h, w = xp.shape
    split = xp.reshape(n, c, h // s, s, w // s, s).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(split).reshape(n, c * s * s, h // s, w // s)


def _unphase(xs: np.ndarray, s: int) -> np.ndarray:
    """Inverse of :func:`_phases`."""
    n, cs, hs, ws = xs.shape
    c = cs // (s * s)
    return xs.reshape(n, c, s, s, hs, ws).transpose(0, 1, 4, 2, 5, 3).reshape(n, c, hs * s, ws * s)


def _phase_weights(w: np.ndarray, s: int) -> np.ndarray:
    """``(F, C, KH, KW)`` → ``(F, C·s², ceil(KH/s), ceil(KW/s))``: tap ``(u, v)`` of phase ``(a, b)`` is
    ``w[..., u·s + a, v·s + b]`` (zero past the kernel)."""
    f, c, kh, kw = w.shape
    khs, kws = -(-kh // s), -(-kw // s)
    full = np.zeros((f, c, khs * s, kws * s), dtype=w.dtype)
    full[:, :, :kh, :kw] = w
    split = full.reshape(f, c, khs, s, kws, s).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(split).reshape(f, c * s * s, khs, kws)


def _unphase_weights(ws: np.ndarray, s: int, kh: int, kw: int) -> np.ndarray:
    """Inverse of :func:`_phase_weights` (the padding taps dropped)."""
    f, cs, khs, kws = ws.shape
    c = cs // (s * s)
    full = ws.reshape(f, c, s, s, khs, kws).transpose(0, 1, 4, 2, 5, 3).reshape(f, c, khs * s, kws * s)
    return np.ascontiguousarray(full[:, :, :kh, :kw])


class NumbaKernels(NativeKernels):
    """Convolution and max pooling for NumPy arrays, compiled with numba (float32 and float64)."""

    name = "numba"

    def __init__(self) -> None:
        self.jit_seconds = 0.0  # compiling (or loading from numba's disk cache), summed over this process
        self.compiled: list[tuple[str, str, float]] = []  # (kernel, signature, seconds)
        self._conv: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    # -- compilation bookkeeping -----------------------------------------------------------------
    def _run(self, label: str, kernel: Any, *args: Any) -> None:
        """Call a compiled kernel, adding the time of a first call per signature to :attr:`jit_seconds`."""
        known = len(kernel.signatures)
        start = time.perf_counter()
        kernel(*args)
        if len(kernel.signatures) > known:
            spent = time.perf_counter() - start
            self.jit_seconds += spent
            self.compiled.append((label, str(kernel.signatures[-1]), spent))
            log.info("numba: %s %s compiled in %.2f s", label, kernel.signatures[-1], spent)

    def _conv_kernels(self, kh: int, kw: int) -> Any:
        with self._lock:
            module = self._conv.get((kh, kw))
            if module is None:
                start = time.perf_counter()
                module = self._conv[(kh, kw)] = _load_conv(kh, kw)
                self.jit_seconds += time.perf_counter() - start
            return module

    # -- what is supported --------------------------------------------------------------------------
    @staticmethod
    def _dtype_ok(*arrays: Any) -> bool:
        return all(isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) for a in arrays) and (
            len({a.dtype for a in arrays}) == 1
        )

    def supports_conv2d(self, x: Any, w: Any, stride: int, pad: int) -> bool:
        if not (self._dtype_ok(x, w) and x.ndim == 4 and w.ndim == 4 and stride >= 1 and pad >= 0):
            return False
        c, kh, kw = w.shape[1], w.shape[2], w.shape[3]
        return c * kh * kw >= MIN_COLUMN_ROWS and -(-kh // stride) * -(-kw // stride) <= MAX_TAPS

    def supports_max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> bool:
        return self._dtype_ok(x) and x.ndim == 4 and stride >= 1 and pad >= 0

    # -- convolution -----------------------------------------------------------------------------
    def _geometry(self, x: np.ndarray, w: np.ndarray, s: int, p: int) -> tuple[int, int, int, int]:
        """``(OH, OW, Hs, Ws)``: the output size and the phase planes' size (``Hs·s × Ws·s`` padded input)."""
        _, _, h, wd = x.shape
        kh, kw = w.shape[2], w.shape[3]
        oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
        khs, kws = -(-kh // s), -(-kw // s)
        hs = max(-(-(h + 2 * p) // s), oh + khs - 1)
        ws = max(-(-(wd + 2 * p) // s), ow + kws - 1)
        return oh, ow, hs, ws

    def _planes(self, x: np.ndarray, w: np.ndarray, s: int, p: int) -> tuple[np.ndarray, np.ndarray]:
        """The stride-1 problem: the padded input as channel-major planes ``(C', N, Hp, Wp)`` (for ``s > 1``
        its phase planes, ``C' = C·s²``) and its weights ``(F, C', KH', KW')``."""
        if s == 1:
            return _channel_major(x, p, p), np.ascontiguousarray(w)
        _, _, hs, ws = self._geometry(x, w, s, p)
        planes = _phases(_pad(x, p, p, hs * s, ws * s), s)
        return np.ascontiguousarray(planes.transpose(1, 0, 2, 3)), _phase_weights(w, s)

    def _forward(self, xc: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Stride-1 convolution of channel-major padded planes ``(C, N, Hp, Wp)``: the wide output
        ``(F, N, Hp, Wp)`` (a view), valid in ``[:, :, :Hp-KH+1, :Wp-KW+1]``."""
        f, c, kh, kw = w.shape
        blocks = _round_up(f, FORWARD_FILTERS)
        if blocks != f:  # whole filter blocks: zero filters, dropped from the output
            w = np.concatenate([w, np.zeros((blocks - f, c, kh, kw), dtype=w.dtype)])
            b = np.concatenate([b, np.zeros(blocks - f, dtype=b.dtype)])
        _, n, hp, wp = xc.shape
        y = np.empty((blocks, n, hp, wp), dtype=xc.dtype)
        kernel = self._conv_kernels(kh, kw).forward
        self._run(f"conv{kh}x{kw}.forward", kernel, xc.reshape(c, -1), w, b, y.reshape(blocks, -1), wp)
        return y[:f]

    def conv2d(self, x: Any, w: Any, b: Any, stride: int, pad: int) -> Any:
        oh, ow, _, _ = self._geometry(x, w, stride, pad)
        xc, wc = self._planes(x, w, stride, pad)
        bias = np.ascontiguousarray(b, dtype=x.dtype)
        return self._forward(xc, wc, bias)[:, :, :oh, :ow].transpose(1, 0, 2, 3)

    def conv2d_backward(
        self, dy: Any, x: Any, w: Any, stride: int, pad: int, need_dx: bool
    ) -> tuple[Any | None, Any, Any]:
        s, p = stride, pad
        n, _, h, wd = x.shape
        f, _, kh, kw = w.shape
        oh, ow, _, _ = self._geometry(x, w, s, p)
        xc, wc = self._planes(x, w, s, p)
        cc, _, hp, wp = xc.shape
        khs, kws = wc.shape[2], wc.shape[3]
        blocks = _round_up(f, wgrad_filters(khs, kws))  # whole filter blocks: zero planes of dy, dropped from dw
        dyc = np.zeros((blocks, n, hp, wp), dtype=x.dtype)  # dy on the input's wide grid, zero elsewhere
        dyc[:f, :, :oh, :ow] = dy.transpose(1, 0, 2, 3)
        db = dyc.reshape(blocks, -1)[:f].sum(axis=1)
        positions = n * hp * wp - (khs - 1) * wp - (kws - 1)
        part = np.zeros((-(-positions // WGRAD_CHUNK), blocks, cc, khs, kws), dtype=x.dtype)
        kernel = self._conv_kernels(khs, kws).wgrad
        self._run(f"conv{khs}x{kws}.wgrad", kernel, xc.reshape(cc, -1), dyc.reshape(blocks, -1), part, wp)
        dwc = part.sum(axis=0)[:f]
        dw = dwc if s == 1 else _unphase_weights(dwc, s, kh, kw)
        if not need_dx:
            return None, dw, db
        # dx = correlation of dy (padded by K-1) with the flipped, channel-swapped weights
        w_t = np.ascontiguousarray(wc.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        zero = np.zeros(cc, dtype=x.dtype)
        if s == 1:  # only the unpadded input's rows and columns: dy padded by K-1-pad
            dx = self._forward(_channel_major(dy, kh - 1 - p, kw - 1 - p), w_t, zero)[:, :, :h, :wd]
            return dx.transpose(1, 0, 2, 3), dw, db
        grad = dyc[:f, :, : hp - khs + 1, : wp - kws + 1]  # the stride-1 output's gradient over the phase planes
        padded = np.zeros((f, n, hp + khs - 1, wp + kws - 1), dtype=x.dtype)
        padded[:, :, khs - 1 : khs - 1 + grad.shape[2], kws - 1 : kws - 1 + grad.shape[3]] = grad
        planes = self._forward(padded, w_t, zero)[:, :, :hp, :wp].transpose(1, 0, 2, 3)
        return _unphase(planes, s)[:, :, p : p + h, p : p + wd], dw, db

    # -- max pooling ---------------------------------------------------------------------------------
    def max_pool(self, x: Any, size: tuple[int, int], stride: int, pad: int) -> tuple[Any, Any]:
        (ph, pw), s, p = size, stride, pad
        n, c, h, w = x.shape
        oh, ow = (h + 2 * p - ph) // s + 1, (w + 2 * p - pw) // s + 1
        y = np.empty((n, c, oh, ow), dtype=x.dtype)
        arg = np.empty((n, c, oh, ow), dtype=np.int8 if ph * pw <= 127 else np.int32)
        self._run("max_pool.forward", _pool_forward, _pad(x, p, p), ph, pw, s, y, arg)  # zeros, as the reference
        return y, arg

    def max_pool_backward(
        self, dy: Any, state: Any, x_shape: tuple[int, ...], size: tuple[int, int], stride: int, pad: int
    ) -> Any:
        dx = np.zeros(x_shape, dtype=dy.dtype)
        self._run("max_pool.backward", _pool_backward, np.ascontiguousarray(dy), state, size[1], stride, pad, dx)
        return dx

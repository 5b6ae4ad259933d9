"""``xpnet bench``: xpnet's training step against PyTorch eager and the matrix products alone, per backend.

Three candidates per backend and network, timed in one run and interleaved (round-robin, with a
pause between candidates so that BLAS threads still spinning from one do not slow the next):

- ``xpnet``: one training step (forward, loss, backward, SGD update) of :func:`xpnet.network.models.mlp`,
  :func:`~xpnet.network.models.simple_cnn` or :func:`~xpnet.network.models.deep_cnn`;
- ``torch``: the same step in PyTorch eager (``nn.Linear``/``nn.Conv2d``, ``F.cross_entropy``,
  ``optim.SGD``) on the same device — the peer;
- ``gemm``: only the matrix products the step needs (forward, dW, and dX of all but the first
  layer; a convolution's as its im2col products), same shapes and dtype — the **GEMM bound**: a
  lower bound from the matrix products alone (not a physical limit: a direct convolution, as
  PyTorch's oneDNN, need not form those products at all).

Each case reports min / median / max over the rounds (per-call means) and warns when the spread
says the machine was busy; ``--kernels`` adds the per-layer kernels (convolution, pooling, ReLU,
forward and backward) beside PyTorch's. The peak memory of one training step is measured apart
from the timing. On a GPU every timed call ends with a device synchronisation.
This module also times the seed headline: one numerical gradient vs one backprop gradient.
"""

from __future__ import annotations

import gc
import itertools
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backends as B
from ..backends import kernels as K
from ..network import layers as L
from ..network.models import deep_cnn, mlp, simple_cnn
from ..optim.optimizers import SGD
from ..training.step import train_step
from ..utils.tables import markdown_table

NETWORKS: dict[str, tuple[Any, int]] = {
    "small": ((784, 100, 50, 10), 100),
    "large": ((784, 2048, 2048, 10), 1024),
    "tiny": ((64, 32, 10), 32),  # a smoke test of the runner itself
    "simplecnn": ("SimpleConvNet", 100),  # the book's CNNs on MNIST-shaped input (1, 28, 28)
    "deepcnn": ("DeepConvNet", 100),
    "tinycnn": ("TinyConvNet", 8),  # a smoke test: SimpleConvNet's layers on 1×8×8
}
CNN_SHAPE = {"SimpleConvNet": (1, 28, 28), "DeepConvNet": (1, 28, 28), "TinyConvNet": (1, 8, 8)}
SPREAD_WARNING = 1.25  # max/min over rounds above this: the machine was busy, the medians are suspect
PINNED_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _is_cnn(sizes: Any) -> bool:
    return isinstance(sizes, str)


def network_label(sizes: Any) -> str:
    return sizes if _is_cnn(sizes) else "-".join(map(str, sizes))


def build_model(sizes: Any) -> Any:
    """The xpnet model of a :data:`NETWORKS` entry (on the current backend)."""
    if not _is_cnn(sizes):
        return mlp(sizes)
    if sizes == "SimpleConvNet":
        return simple_cnn()
    if sizes == "DeepConvNet":
        return deep_cnn()
    return simple_cnn((1, 8, 8), filters=4, kernel=3, hidden=8)


def _data(sizes: Any, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = CNN_SHAPE[sizes] if _is_cnn(sizes) else (sizes[0],)
    classes = 10 if _is_cnn(sizes) else sizes[-1]
    return rng.random((batch, *shape), dtype=np.float32), rng.integers(0, classes, batch)


def _model_on(backend: B.Backend, sizes: Any, dtype: str) -> Any:
    previous = B.get_default_dtype()
    B.set_default_dtype(dtype)
    try:
        with B.use_backend(backend):
            B.seed(0)
            return build_model(sizes)
    finally:
        B.set_default_dtype(previous)


def kernel_paths(backend: B.Backend, sizes: Any = None) -> list[str]:
    """The kernel modes (:mod:`xpnet.backends.kernels`) whose paths differ on ``backend``: ``["native", "reference"]``
    where its adapter has native kernels, else ``["reference"]``. Benchmarks report one row per path. For a
    network of :data:`NETWORKS` (``sizes``), an MLP has only its ReLU to delegate: both paths only where the
    adapter lists a native ``relu`` (NumPy's compiled kernels, convolution and pooling, are not even loaded)."""
    ops = backend.native_ops if sizes is None or _is_cnn(sizes) else backend.native_ops & {"relu"}
    return ["native", "reference"] if ops and backend.native_kernels() is not None else ["reference"]


def kernels_label(backend: B.Backend, mode: str) -> str:
    """A row's kernel path: ``"native (aten)"``, ``"reference"``."""
    native = backend.native_kernels()
    return f"native ({native.name})" if mode == "native" and native is not None else "reference"


def xpnet_step(
    backend: B.Backend, sizes: Any, batch: int, dtype: str = "float32", kernels: str | None = None
) -> Callable[[], None]:
    """A closure running one xpnet training step (synchronised on a GPU), on the kernel path ``kernels``
    (``"native"``/``"reference"``; None: the mode in force when it runs)."""
    model = _model_on(backend, sizes, dtype)
    x, t = model.check_data(*_data(sizes, batch))
    opt = SGD(0.01)

    def run() -> None:
        train_step(model, opt, x, t)
        backend.synchronize()

    def step() -> None:
        if kernels is None:
            run()
        else:
            with K.using(kernels):
                run()

    step.model = model  # type: ignore[attr-defined]  # for peak_memory: its layers' buffers
    return step


def gemm_products(model: Any, batch: int) -> list[tuple[tuple[int, ...], tuple[int, ...], bool]]:
    """The matrix products of one training step of ``model``: ``(a_shape, b_shape, b_transposed)`` each.

    Affine ``(N, I)·(I, O)``: forward X·W, dW = Xᵀ·dY, dX = dY·Wᵀ (not for layer 0). Convolution in
    its im2col form, batched over N: forward ``(F, CKK)·(N, CKK, P)``, dW ``(N, F, P)·(N, P, CKK)``,
    dX ``(CKK, F)·(N, F, P)`` (not for layer 0; the correlation form a stride-1 convolution may use
    instead, ``(C, KK·F)·(N, KK·F, H·W)``, has as many multiply-adds when the output keeps the input's size).
    """
    prods: list[tuple[tuple[int, ...], tuple[int, ...], bool]] = []
    for i, (layer, (_s_in, s_out)) in enumerate(zip(model.layers, model.shapes)):
        if isinstance(layer, L.Affine):
            n_in, n_out = layer.in_features, layer.out_features
            prods += [((batch, n_in), (n_in, n_out), False), ((n_in, batch), (batch, n_out), False)]
            if i:
                prods.append(((batch, n_out), (n_in, n_out), True))
        elif isinstance(layer, L.Convolution):
            f, ckk, p = layer.out_channels, int(np.prod(layer.W.shape[1:])), int(np.prod(s_out[1:]))
            prods += [((f, ckk), (batch, ckk, p), False), ((batch, f, p), (batch, ckk, p), True)]
            if i:
                prods.append(((ckk, f), (batch, f, p), False))
    return prods


def gemm_step(backend: B.Backend, sizes: Any, batch: int, dtype: str = "float32") -> Callable[[], None]:
    """Only the matrix products of a training step (see :func:`gemm_products`): the GEMM bound."""
    xp = backend.xp
    dt = backend.dtype(dtype)

    def operand(shape: tuple[int, ...]) -> Any:  # the values do not matter to a GEMM's time (no NaN, no denormals)
        return xp.full(shape, 0.5, dtype=dt, device=backend.device)

    prods = [(operand(a), operand(b), tr) for a, b, tr in gemm_products(_model_on(backend, sizes, dtype), batch)]

    def step() -> None:
        for a, b, tr in prods:
            xp.matmul(a, xp.matrix_transpose(b) if tr else b)
        backend.synchronize()

    return step


floor_step = gemm_step  # the name before the rename: a lower bound, not a floor


def torch_model(sizes: Any) -> Any:
    """The peer network in PyTorch (default init; timing only)."""
    import torch

    nn = torch.nn
    if not _is_cnn(sizes):
        layers: list[Any] = []
        for a, b in itertools.pairwise(sizes[:-1]):  # hidden layers; the output layer follows
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        return nn.Sequential(*layers)
    if sizes == "DeepConvNet":
        layers, c = [], 1
        for i, (f, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]):
            layers += [nn.Conv2d(c, f, 3, padding=pad), nn.ReLU()]
            c = f
            if i % 2:
                layers.append(nn.MaxPool2d(2, 2))
        return nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 50),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(50, 10),
            nn.Dropout(0.5),
        )
    c, hw = CNN_SHAPE[sizes][0], CNN_SHAPE[sizes][1]
    f, k, hidden = (30, 5, 100) if sizes == "SimpleConvNet" else (4, 3, 8)
    flat = f * ((hw - k + 1) // 2) ** 2
    return nn.Sequential(
        nn.Conv2d(c, f, k),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def torch_step(device: Any, sizes: Any, batch: int, dtype: str = "float32") -> Callable[[], None]:
    """The peer: the same step written directly in PyTorch eager."""
    import torch

    dt = getattr(torch, dtype)
    net = torch_model(sizes).to(device=device, dtype=dt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x_np, t_np = _data(sizes, batch)
    x = torch.from_numpy(x_np).to(device=device, dtype=dt)
    t = torch.from_numpy(t_np).to(device)
    cuda = torch.device(device).type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), t).backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)

    return step


def interleaved(
    candidates: dict[str, Callable[[], None]], rounds: int = 7, min_time: float = 0.2, pause: float = 0.25
) -> dict[str, dict[str, float]]:
    """Min, median and max seconds per call of each candidate, timed round-robin.

    Each candidate is first warmed up for ``min_time`` seconds (at least 3 calls); then each round
    runs every candidate for about ``min_time`` seconds, after a ``pause``, and records its mean
    per-call time. On a shared machine the minimum is the figure least disturbed by others.
    """
    per_call = {}
    for name, f in candidates.items():  # warm-up (allocations, BLAS/CUDA handles, lazy init), then calibrate
        start, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - start < min_time:
            f()
            calls += 1
        start = time.perf_counter()
        f()
        per_call[name] = max(1, int(min_time / max(time.perf_counter() - start, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, f in candidates.items():
            time.sleep(pause)
            n = per_call[name]
            start = time.perf_counter()
            for _ in range(n):
                f()
            samples[name].append((time.perf_counter() - start) / n)
    return {
        name: {"min": min(s), "median": statistics.median(s), "max": max(s), "rounds": len(s)}
        for name, s in samples.items()
    }


def torch_device(backend: B.Backend) -> str | None:
    """The torch device matching a backend's device, or None where PyTorch cannot run there."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    return backend.peer_torch_device()


def peer_missing(backend: B.Backend) -> str | None:
    """Why the PyTorch peer column is empty for ``backend``, or None when it can be filled."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed (pip install torch): no peer column"
    if torch_device(backend) is None:
        return f"PyTorch has no device beside {backend}: no peer column"
    return None


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory(step: Callable[[], None], backend: B.Backend, traced: bool = True) -> dict[str, float | None]:
    """Peak memory of one call of ``step`` (after a warm-up call), in MiB.

    ``tracemalloc_mib``: the peak of host allocations traced by Python's tracemalloc (NumPy reports
    its array buffers there; torch and device memory are not seen), only for host NumPy-based backends
    and ``traced=True`` (pass False for a PyTorch step: tracemalloc would see only Python objects).
    ``rss_peak_mib``: growth of the process's resident set high-water mark (Linux ``VmHWM``, reset
    through ``/proc/self/clear_refs``) over the resident size before the call: every host allocator
    counted, but memory already resident (an allocator's cache) counts as zero. None where unavailable.
    An xpnet step's layers are cleared first (:meth:`Layer.clear`), so buffers a layer keeps from
    step to step (the convolutions' column workspaces) are allocated, and counted, inside the measured
    step; parameters and optimizer state are not counted.
    """
    step()
    gc.collect()
    result: dict[str, float | None] = {"tracemalloc_mib": None, "rss_peak_mib": None}
    if traced and backend.numpy_allocator:
        for layer in getattr(getattr(step, "model", None), "layers", []):
            layer.clear()
        gc.collect()
        tracemalloc.start()
        try:
            step()
            result["tracemalloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        before = _rss_kib("VmRSS")
        step()
        peak = _rss_kib("VmHWM")
        if before is not None and peak is not None:
            result["rss_peak_mib"] = max(0, peak - before) / 1024
    except OSError:
        pass
    return result


def blas_info() -> dict[str, Any]:
    """The BLAS libraries in this process (threadpoolctl), PyTorch's thread count, pinned-kernel variables."""
    info: dict[str, Any] = {"blas": [], "pinned": {k: os.environ[k] for k in PINNED_BLAS if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["blas_error"] = "threadpoolctl is not installed (pip install threadpoolctl)"
    else:
        info["blas"] = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
    return info


def git_commit() -> str | None:
    """The commit of the xpnet source tree running (``git rev-parse HEAD`` beside this file; ``None`` for an
    installed copy or without git), for benchmark JSON files to name the code they measured."""
    import subprocess

    try:
        run = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() or None if run.returncode == 0 else None


def run_record() -> dict[str, Any]:
    """What a benchmark JSON file names about its run: the command line, the source commit, the date,
    the machine, the Python, NumPy and xpnet versions and the BLAS (:func:`blas_info`)."""
    return {
        "command": " ".join(["python", *sys.argv]),
        "git": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xpnet": _version(),
        "blas": blas_info(),
    }


def _version() -> str:
    from .._version import __version__

    return __version__


def describe_blas(info: dict[str, Any]) -> list[str]:
    lines = [
        f"BLAS: {b['internal_api']} {b['version']}, kernel {b['architecture']}, "
        f"{b['num_threads']} threads ({b['filepath']})"
        for b in info["blas"]
    ] or [f"BLAS: unknown ({info.get('blas_error', 'no BLAS library found')})"]
    if "torch" in info:
        lines.append(f"PyTorch {info['torch']['version']}: {info['torch']['threads']} threads")
    if info["pinned"]:
        pins = " ".join(f"{k}={v}" for k, v in info["pinned"].items())
        lines.append(
            f"WARNING: {pins} pins an older OpenBLAS kernel: GEMMs run slower than on a user's machine; "
            f"benchmark with `env -u {' -u '.join(PINNED_BLAS)} xpnet bench ...`"
        )
    return lines


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def bench_backend(
    backend: B.Backend, networks: list[str], rounds: int, min_time: float, dtype: str = "float32", memory: bool = True
) -> list[dict[str, Any]]:
    rows = []
    for net in networks:
        sizes, batch = NETWORKS[net]
        paths = kernel_paths(backend, sizes)
        cands = {f"xpnet:{m}": xpnet_step(backend, sizes, batch, dtype, kernels=m) for m in paths}
        cands["gemm"] = gemm_step(backend, sizes, batch, dtype)
        device = torch_device(backend)
        if device is not None:
            cands["torch"] = torch_step(device, sizes, batch, dtype)
        all_times = interleaved(cands, rounds=rounds, min_time=min_time)  # every path and the peers, interleaved
        memory_torch = peak_memory(cands["torch"], backend, traced=False) if memory and "torch" in cands else None
        for m in paths:  # one row per kernel path, the peers' times repeated
            times = {k: v for k, v in all_times.items() if not k.startswith("xpnet:")}
            times["xpnet"] = all_times[f"xpnet:{m}"]
            row: dict[str, Any] = {
                "backend": backend.name,
                "device": str(backend.device),
                "kernels": kernels_label(backend, m),
                "network": network_label(sizes),
                "batch": batch,
                "dtype": dtype,
            }
            for k, v in times.items():
                row[f"{k}_ms"] = v["min"] * 1e3
                row[f"{k}_ms_median"], row[f"{k}_ms_max"] = v["median"] * 1e3, v["max"] * 1e3
                row[f"{k}_spread"] = _ratio(v["max"], v["min"])
            row["xpnet/gemm"] = _ratio(times["xpnet"]["min"], times["gemm"]["min"])
            if "torch" in times:
                row["xpnet/torch"] = _ratio(times["xpnet"]["min"], times["torch"]["min"])
            else:
                row["peer_missing"] = peer_missing(backend)
            row["busy"] = max(v["max"] / v["min"] for v in times.values()) > SPREAD_WARNING
            if memory:
                row["memory_xpnet"] = peak_memory(cands[f"xpnet:{m}"], backend)
                if memory_torch is not None:
                    row["memory_torch"] = memory_torch
            rows.append(row)
        del cands
        free_memory(backend)
    return rows


def kernel_cases(
    backend: B.Backend, dtype: str = "float32", quick: bool = False
) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per-layer kernels of the two CNNs, forward and backward, each with its PyTorch twin where available.

        Returns ``{case: {"xpnet:native": f, "xpnet:reference": f2, "torch": g}}`` (one xpnet entry per kernel path
    of :func:`kernel_paths`, each run in its mode); shapes are SimpleConvNet's (conv 1→30 5×5 on 28×28, ReLU and
        pool on 30×24×24) and DeepConvNet's second convolution (16→16 3×3 pad 1 on 28×28, input gradient on).
    """
    n = 8 if quick else 100
    specs = {"simple-conv": (1, 30, 5, 28, 0, False), "deep-conv2": (16, 16, 3, 28, 1, True)}
    if quick:
        specs = {"simple-conv": (1, 4, 3, 8, 0, False), "deep-conv2": (4, 4, 3, 8, 1, True)}
    act_shape = (n, 30, 24, 24) if not quick else (n, 4, 6, 6)
    rng = np.random.default_rng(0)
    device = torch_device(backend)
    torch: Any = None
    if device is not None:
        import torch as torch_module

        torch = torch_module
    cases: dict[str, dict[str, Callable[[], Any]]] = {}
    sync = backend.synchronize

    def tsync():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    paths = kernel_paths(backend)

    def add(name, xfs, tf):
        def xrun(xf, mode):
            def run():
                with K.using(mode):
                    xf()
                    sync()

            return run

        def trun():
            tf()
            tsync()

        xpnet_runs = {f"xpnet:{m}": xrun(xf, m) for m, xf in zip(paths, xfs)}
        cases[name] = {**xpnet_runs, **({"torch": trun} if tf is not None else {})}

    def per_path(make):  # one layer per kernel path, its training forward run in that mode
        layers = []
        for m in paths:
            with K.using(m):
                layers.append(make())
        return layers

    previous = B.get_default_dtype()
    B.set_default_dtype(dtype)
    try:
        with B.use_backend(backend):
            for name, (c, f, k, hw, pad, grad) in specs.items():
                layer = L.Convolution(c, f, k, pad=pad)
                layer.input_grad = grad
                x_np = rng.random((n, c, hw, hw), dtype=np.float32)
                x = backend.from_host(x_np.astype(dtype))
                dout = layer.forward(x)

                def conv_forward(layer=layer, x=x):
                    twin = L.Convolution(**layer.config())
                    twin.W, twin.input_grad = layer.W, layer.input_grad
                    twin.forward(x)
                    return twin

                convs = per_path(conv_forward)
                tx = tw = tout = tdy = None
                if torch is not None:
                    tx = torch.from_numpy(x_np).to(device).requires_grad_(grad)
                    tw = torch.from_numpy(B.to_numpy(layer.W)).to(device).requires_grad_(True)
                    tb = torch.zeros(f, device=device, requires_grad=True)
                    tout = torch.nn.functional.conv2d(tx, tw, tb, padding=pad)
                    tdy = torch.ones_like(tout)
                    inputs = (tx, tw, tb) if grad else (tw, tb)
                add(
                    f"{name} forward",
                    [lambda layer=layer, x=x: layer.forward(x) for layer in convs],
                    (
                        lambda tx=tx, tw=tw, tb=tb, pad=pad: torch.nn.functional.conv2d(
                            tx.detach(), tw.detach(), tb.detach(), padding=pad
                        )
                    )
                    if torch is not None
                    else None,
                )
                add(
                    f"{name} backward",
                    [lambda layer=layer, dout=dout: layer.backward(dout) for layer in convs],
                    (
                        lambda tout=tout, tdy=tdy, inputs=inputs: torch.autograd.grad(
                            tout, inputs, tdy, retain_graph=True
                        )
                    )
                    if torch is not None
                    else None,
                )
            a_np = rng.standard_normal(act_shape, dtype=np.float32)
            a = backend.from_host(a_np.astype(dtype))
            elementwise: tuple[tuple[str, L.Layer, str], ...] = (
                ("relu", L.ReLU(), "relu"),
                ("pool 2x2", L.Pooling(2, 2), "pool"),
            )
            for name, kernel, twin in elementwise:
                out = kernel.forward(a)

                def fresh(kernel=kernel):
                    other = type(kernel)(**kernel.config())
                    other.forward(a)
                    return other

                instances = per_path(fresh)
                ta = tout = None
                if torch is not None:
                    ta = torch.from_numpy(a_np).to(device).requires_grad_(True)
                    fn = torch.relu if twin == "relu" else (lambda v: torch.nn.functional.max_pool2d(v, 2, 2))
                    tout = fn(ta)
                add(
                    f"{name} forward",
                    [lambda kernel=kernel: kernel.forward(a) for kernel in instances],
                    (lambda fn=fn, ta=ta: fn(ta.detach())) if torch is not None else None,
                )
                add(
                    f"{name} backward",
                    [lambda kernel=kernel, out=out: kernel.backward(out) for kernel in instances],
                    (lambda tout=tout, ta=ta: torch.autograd.grad(tout, ta, tout.detach(), retain_graph=True))
                    if torch is not None
                    else None,
                )
    finally:
        B.set_default_dtype(previous)
    return cases


def bench_kernels(
    backend: B.Backend, rounds: int, min_time: float, dtype: str = "float32", quick: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for case, cands in kernel_cases(backend, dtype, quick).items():
        all_times = interleaved(cands, rounds=rounds, min_time=min_time, pause=0.05)
        for m in kernel_paths(backend):  # one row per kernel path, PyTorch's times repeated
            times = {k: v for k, v in all_times.items() if not k.startswith("xpnet:")}
            times["xpnet"] = all_times[f"xpnet:{m}"]
            row: dict[str, Any] = {"backend": backend.name, "kernels": kernels_label(backend, m), "kernel": case}
            for k, v in times.items():
                row[f"{k}_ms"], row[f"{k}_ms_median"], row[f"{k}_ms_max"] = (
                    v["min"] * 1e3,
                    v["median"] * 1e3,
                    v["max"] * 1e3,
                )
            if "torch" in times:
                row["xpnet/torch"] = _ratio(times["xpnet"]["min"], times["torch"]["min"])
            else:
                row["peer_missing"] = peer_missing(backend)
            row["busy"] = max(v["max"] / v["min"] for v in times.values()) > SPREAD_WARNING
            rows.append(row)
    return rows


def free_memory(backend: B.Backend) -> None:
    """Return cached device memory between benchmarks (CuPy's pool, torch's caching allocator)."""
    backend.free_memory()


def numgrad_vs_backprop(hidden: int = 50, batch: int = 100) -> dict[str, float]:
    """The seed headline: one numerical gradient vs one backprop gradient of the articles' digits
    network (Affine-Sigmoid-Affine-SoftmaxWithLoss), NumPy float64."""
    from ..data.datasets import load_digits
    from ..network import layers as L
    from ..network.gradient import numerical_gradient
    from ..network.model import Sequential

    (x, t), _ = load_digits()
    x, t = x[:batch], t[:batch]
    with B.use_backend("numpy"):
        previous = B.get_default_dtype()
        B.set_default_dtype("float64")
        try:
            B.seed(0)
            model = Sequential([L.Affine(64, hidden, init="xavier"), L.Sigmoid(), L.Affine(hidden, 10, init="xavier")])
            start = time.perf_counter()
            numerical_gradient(model, x, t)
            numeric = time.perf_counter() - start
            n = 200
            start = time.perf_counter()
            for _ in range(n):
                model.gradient(x, t)
            backprop = (time.perf_counter() - start) / n
        finally:
            B.set_default_dtype(previous)
    return {"numerical_s": numeric, "backprop_s": backprop, "ratio": numeric / backprop, "parameters": model.n_params()}


WIDTH = 120
"""The printed report's width: every table and line fits in it."""


def _num(ms: float) -> str:
    """A time in ms, 3 or 4 significant digits, at most 5 characters below 100 s."""
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _ms(r: dict[str, Any], k: str) -> str:
    """``min/median/max`` in ms, or "–" where the candidate was not timed."""
    if f"{k}_ms" not in r:
        return "–"
    return "/".join(_num(r[f"{k}_ms{part}"]) for part in ("", "_median", "_max"))


def _backend_cell(r: dict[str, Any]) -> str:
    """The backend and, where the row names one, its kernel path: ``torch/aten`` (native), ``torch/ref``."""
    if not r.get("kernels"):
        return r["backend"]
    path = "ref" if r["kernels"] == "reference" else r["kernels"].removeprefix("native (").removesuffix(")")
    return f"{r['backend']}/{path}"


def _mib(v: float | None) -> str:
    """Peak MiB; "–" where nothing was measured: no measurement (None) or an RSS high-water mark that
    did not grow (0: the step ran in memory already resident)."""
    if not v:
        return "–"
    return "<0.1" if v < 0.1 else f"{v:.1f}"


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The step table: times as min/median/max ms, ratios of the minima (the backend column only when the
    rows hold several; peak memory: :func:`format_memory`). Fits :data:`WIDTH` columns."""
    several = len({_backend_cell(r) for r in rows}) > 1
    head = [*(["backend"] if several else []), "network", "batch", "xpnet ms", "torch ms", "gemm ms"]
    head += ["xpnet/torch", "xpnet/gemm"]
    body = [
        [
            *([_backend_cell(r)] if several else []),
            r["network"],
            str(r["batch"]),
            _ms(r, "xpnet"),
            _ms(r, "torch"),
            _ms(r, "gemm"),
            f"{r['xpnet/torch']:.2f}" if "xpnet/torch" in r else "–",
            f"{r['xpnet/gemm']:.2f}",
        ]
        for r in rows
    ]
    return markdown_table(head, body, align="right")


MEMORY_COLUMNS = {
    "xpnet MiB (tracemalloc)": ("memory_xpnet", "tracemalloc_mib"),
    "xpnet MiB (RSS)": ("memory_xpnet", "rss_peak_mib"),
    "torch MiB (RSS)": ("memory_torch", "rss_peak_mib"),
}


def format_memory(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The peak memory of one training step (:func:`peak_memory`) per network, and one footnote per
    column that shows "–", saying why nothing was measured there. ``("", [])`` without measurements."""
    rows = [r for r in rows if "memory_xpnet" in r]
    if not rows:
        return "", []
    several = len({_backend_cell(r) for r in rows}) > 1
    head = [*(["backend"] if several else []), "network", "batch", *MEMORY_COLUMNS]
    body = [
        [
            *([_backend_cell(r)] if several else []),
            r["network"],
            str(r["batch"]),
            *(_mib(r.get(group, {}).get(key)) for group, key in MEMORY_COLUMNS.values()),
        ]
        for r in rows
    ]
    notes = []
    for column, (group, key) in MEMORY_COLUMNS.items():
        values = [r.get(group, {}).get(key) for r in rows]
        if any(v is None for v in values):
            if any(group not in r for r in rows):
                why = "no PyTorch peer ran (see the note on the peer column)"
            elif key == "tracemalloc_mib":
                why = "tracemalloc sees NumPy's host buffers only, not this backend's arrays (tensors, device memory)"
            else:
                why = "no /proc/self/status to read the resident set from (Linux only)"
            notes.append(f"{column} –: {why}")
        if any(v == 0 for v in values):
            notes.append(
                f"{column} –: the resident set's high-water mark did not grow during the step (its memory was "
                "already resident, kept by the allocator since the warm-up call): RSS measured nothing there"
            )
    return markdown_table(head, body, align="right"), notes


def format_kernels(rows: list[dict[str, Any]]) -> str:
    head = ["backend", "kernel", "xpnet ms", "torch ms", "xpnet/torch"]
    body = [
        [
            _backend_cell(r),
            r["kernel"],
            _ms(r, "xpnet"),
            _ms(r, "torch"),
            f"{r['xpnet/torch']:.2f}" if "xpnet/torch" in r else "–",
        ]
        for r in rows
    ]
    return markdown_table(head, body, align="right")


def _wrap(text: str) -> str:
    """A report line folded to :data:`WIDTH` columns (continuations indented)."""
    import textwrap

    return "\n".join(
        textwrap.fill(part, WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
        if part
        else part
        for part in text.split("\n")
    )


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    notes = list(dict.fromkeys(r["peer_missing"] for r in rows if r.get("peer_missing")))
    busy = [r.get("network", r.get("kernel")) for r in rows if r.get("busy")]
    if busy:
        notes.append(
            f"WARNING: the rounds of {', '.join(map(str, busy))} spread more than {SPREAD_WARNING:.2f}x "
            "(max/min): the machine was busy; trust the minima, or rerun on a quiet machine"
        )
    return notes


def run_bench(
    backends: list[B.Backend],
    networks: list[str],
    rounds: int,
    min_time: float,
    dtype: str = "float32",
    *,
    kernels: bool = False,
    quick: bool = False,
    memory: bool = True,
    numgrad: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Every backend's rows (:func:`bench_backend`), with ``kernels`` the per-layer kernels' (:func:`bench_kernels`),
    with ``numgrad`` the seed headline, and the machine: what ``xpnet bench --json`` writes."""
    rows, kernel_rows = [], []
    for backend in backends:
        rows += bench_backend(backend, networks, rounds, min_time, dtype, memory=memory)
        if kernels:
            kernel_rows += bench_kernels(backend, rounds, min_time, dtype, quick=quick)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": command,
        "blas": blas_info(),
        "rows": rows,
        "notes": "times: min / median / max over interleaved rounds of per-call means; ratios of the minima; "
        "gemm = the matrix products alone (a lower bound, not a physical limit); memory: see xpnet.bench.peak_memory",
    }
    if kernel_rows:
        result["kernels"] = kernel_rows
    if numgrad:
        result["numgrad_vs_backprop"] = numgrad_vs_backprop()
    return result


def report(result: dict[str, Any], rounds: int) -> list[str]:
    """:func:`run_bench`'s result as the lines ``xpnet bench`` prints: the BLAS, one table per backend (times,
    peak memory), the kernels, the warnings and the seed headline; prose folded to :data:`WIDTH` columns."""
    rows, kernels = result["rows"], result.get("kernels", [])
    lines: list[str] = describe_blas(result["blas"])
    for name in dict.fromkeys(r["backend"] for r in rows):  # one table per backend
        mine = [r for r in rows if r["backend"] == name]
        lines += [
            f"\n{name} ({mine[0]['device']}, {mine[0]['dtype']}): one training step, xpnet vs PyTorch eager vs "
            "the GEMM bound (the matrix products alone)",
            f"ms as min/median/max over {rounds} interleaved rounds; ratios of the minima",
            format_rows(mine),
        ]
        memory, memory_notes = format_memory(mine)
        if memory:
            lines += ["peak memory of one training step (xpnet.bench.peak_memory)", memory, *memory_notes]
    if kernels:
        lines += ["\nper-layer kernels, ms as min/median/max", format_kernels(kernels)]
    lines += _notes(rows + kernels)
    if "numgrad_vs_backprop" in result:
        h = result["numgrad_vs_backprop"]
        lines.append(
            f"numerical gradient {h['numerical_s'] * 1e3:.1f} ms vs backprop {h['backprop_s'] * 1e3:.3f} ms "
            f"per gradient ({h['parameters']} parameters, digits batch 100): backprop is {h['ratio']:.0f}x faster"
        )
    return [line if "\n|" in line or line.startswith("|") else _wrap(line) for line in lines]

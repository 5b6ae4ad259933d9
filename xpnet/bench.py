"""``xpnet bench``: xpnet's training step against PyTorch eager and the GEMM floor, per backend.

Three candidates per backend and network, timed in one run and interleaved (round-robin, with a
pause between candidates so that BLAS threads still spinning from one do not slow the next):

- ``xpnet``: one training step (forward, loss, backward, SGD update) of :func:`xpnet.models.mlp`;
- ``torch``: the same step in PyTorch eager (``nn.Linear``, ``F.cross_entropy``, ``optim.SGD``) on
  the same device — the peer;
- ``floor``: only the matrix products the step needs (forward, dW, and dX of all but the first
  layer), same shapes and dtype — the physical limit; everything above it is framework overhead.

On a GPU every timed call ends with a device synchronisation, so queued work is counted.
This module also times the seed headline: one numerical gradient vs one backprop gradient.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np

from . import backend as B
from .models import mlp
from .optimizers import SGD

NETWORKS = {
    "small": ((784, 100, 50, 10), 100),
    "large": ((784, 2048, 2048, 10), 1024),
    "tiny": ((64, 32, 10), 32),  # a smoke test of the runner itself
}


def _data(sizes: tuple[int, ...], batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((batch, sizes[0]), dtype=np.float32), rng.integers(0, sizes[-1], batch)


def xpnet_step(backend: B.Backend, sizes: tuple[int, ...], batch: int, dtype: str = "float32") -> Callable[[], None]:
    """A closure running one xpnet training step (synchronised on a GPU)."""
    previous = B.get_default_dtype()
    B.set_default_dtype(dtype)
    try:
        with B.use_backend(backend):
            B.seed(0)
            model = mlp(sizes)
    finally:
        B.set_default_dtype(previous)
    x, t = model.check_data(*_data(sizes, batch))
    opt, params = SGD(0.01), model.params

    def step() -> None:
        model.step_loss(x, t, value=False)
        opt.update(params, model.backward())
        backend.synchronize()

    return step


def floor_step(backend: B.Backend, sizes: tuple[int, ...], batch: int, dtype: str = "float32") -> Callable[[], None]:
    """Only the matrix products of a training step: X·W per layer, Xᵀ·dY per layer, dY·Wᵀ above the first."""
    xp = backend.xp
    rng = np.random.default_rng(0)
    ws = [backend.from_host(rng.standard_normal((a, b)).astype(dtype)) for a, b in zip(sizes[:-1], sizes[1:])]
    x = backend.from_host(_data(sizes, batch)[0].astype(dtype))

    def step() -> None:
        hs = [x]
        for w in ws:
            hs.append(xp.matmul(hs[-1], w))
        d = hs[-1]
        for i in range(len(ws) - 1, -1, -1):
            xp.matmul(xp.matrix_transpose(hs[i]), d)
            if i:
                d = xp.matmul(d, xp.matrix_transpose(ws[i]))
        backend.synchronize()

    return step


def torch_step(device: Any, sizes: tuple[int, ...], batch: int, dtype: str = "float32") -> Callable[[], None]:
    """The peer: the same step written directly in PyTorch eager."""
    import torch

    dt = getattr(torch, dtype)
    layers: list[Any] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*layers).to(device=device, dtype=dt)
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


def interleaved(candidates: dict[str, Callable[[], None]], rounds: int = 7, min_time: float = 0.2,
                pause: float = 0.25) -> dict[str, dict[str, float]]:
    """Median (and min) seconds per call of each candidate, timed round-robin.

    Each candidate is first warmed up for ``min_time`` seconds (at least 3 calls); then each round
    runs every candidate for about ``min_time`` seconds, after a ``pause``, and records its mean
    per-call time; the median over rounds is reported.
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
    return {name: {"median": statistics.median(s), "min": min(s), "rounds": len(s)} for name, s in samples.items()}


def _torch_device(backend: B.Backend) -> str | None:
    """The torch device matching a backend's device, or None where PyTorch cannot run there."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    return backend.peer_torch_device()


def bench_backend(backend: B.Backend, networks: list[str], rounds: int, min_time: float, dtype: str = "float32") -> list[dict[str, Any]]:
    rows = []
    for net in networks:
        sizes, batch = NETWORKS[net]
        cands = {"xpnet": xpnet_step(backend, sizes, batch, dtype), "floor": floor_step(backend, sizes, batch, dtype)}
        device = _torch_device(backend)
        if device is not None:
            cands["torch"] = torch_step(device, sizes, batch, dtype)
        times = interleaved(cands, rounds=rounds, min_time=min_time)
        row: dict[str, Any] = {"backend": backend.name, "device": str(backend.device), "network": "-".join(map(str, sizes)),
                               "batch": batch, "dtype": dtype}
        row.update({f"{k}_ms": v["median"] * 1e3 for k, v in times.items()})
        row["xpnet/floor"] = times["xpnet"]["median"] / times["floor"]["median"]
        if "torch" in times:
            row["xpnet/torch"] = times["xpnet"]["median"] / times["torch"]["median"]
        rows.append(row)
        del cands
        _free_memory(backend)
    return rows


def _free_memory(backend: B.Backend) -> None:
    """Return cached device memory between benchmarks (CuPy's pool, torch's caching allocator)."""
    backend.free_memory()


def numgrad_vs_backprop(hidden: int = 50, batch: int = 100) -> dict[str, float]:
    """The seed headline: one numerical gradient vs one backprop gradient of the articles' digits
    network (Affine-Sigmoid-Affine-SoftmaxWithLoss), NumPy float64."""
    from . import layers as L
    from .datasets import load_digits
    from .gradient import numerical_gradient
    from .model import Sequential

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
    return {"numerical_s": numeric, "backprop_s": backprop, "ratio": numeric / backprop,
            "parameters": model.n_params()}


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = ["backend", "network", "batch", "xpnet ms", "torch ms", "floor ms", "xpnet/torch", "xpnet/floor"]
    body = []
    for r in rows:
        body.append([r["backend"], r["network"], str(r["batch"]), f"{r['xpnet_ms']:.3f}",
                     f"{r['torch_ms']:.3f}" if "torch_ms" in r else "–", f"{r['floor_ms']:.3f}",
                     f"{r['xpnet/torch']:.2f}" if "xpnet/torch" in r else "–", f"{r['xpnet/floor']:.2f}"])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xpnet bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=None, help="comma-separated backends (default: all available but array_api_strict)")
    p.add_argument("--device", default=None, help="device for cupy/torch (e.g. 0 or cuda:0)")
    p.add_argument("--network", default="small,large", help="small (784-100-50-10, b100), large (784-2048-2048-10, b1024)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median reported)")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds per candidate per round")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--no-numgrad", action="store_true", help="skip the numerical-gradient headline")
    p.add_argument("--quick", action="store_true", help="a compact run: small network, 3 short rounds")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the results as JSON to PATH (no PATH or '-': print only the JSON)")
    args = p.parse_args(argv)
    if args.quick:
        args.network, args.rounds, args.min_time = "small", 3, 0.05
    names = args.backend.split(",") if args.backend else [b for b in B.available_backends() if not B.ADAPTERS[b].checker]
    networks = args.network.split(",")
    for n in networks:
        if n not in NETWORKS:
            raise ValueError(f"unknown network {n!r}; valid: {', '.join(NETWORKS)}")
    quiet = args.json == "-"
    rows = []
    for name in names:
        backend = B.resolve_backend(name, args.device)
        rows += bench_backend(backend, networks, args.rounds, args.min_time, args.dtype)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "processor": platform.processor(),
        "python": platform.python_version(), "numpy": np.__version__, "rows": rows,
    }
    if not args.no_numgrad:
        result["numgrad_vs_backprop"] = numgrad_vs_backprop()
    if not quiet:
        for name in dict.fromkeys(r["backend"] for r in rows):  # one table per backend
            mine = [r for r in rows if r["backend"] == name]
            print(f"\n{name} ({mine[0]['device']}, {mine[0]['dtype']}): xpnet vs PyTorch eager vs GEMM floor, medians")
            print(format_rows(mine))
        if "numgrad_vs_backprop" in result:
            h = result["numgrad_vs_backprop"]
            print(f"numerical gradient {h['numerical_s'] * 1e3:.1f} ms vs backprop {h['backprop_s'] * 1e3:.3f} ms "
                  f"per gradient ({h['parameters']} parameters, digits batch 100): backprop is {h['ratio']:.0f}x faster")
    if args.json:
        text = json.dumps(result, indent=2)
        if quiet:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    return 0

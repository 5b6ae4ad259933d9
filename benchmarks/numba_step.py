"""The book's CNNs on NumPy with numba's compiled kernels, beside the im2col reference and PyTorch eager
(issue 25): one training step (batch 100), all candidates interleaved round-robin in one process (every
thread pool loaded: OpenBLAS, numba's, torch's), minima reported.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numba_step.py \\
        --json docs/bench-2026-12-07-cpu/numba-step.json

``--cpu-time``: every library at one thread and each step timed by the CPU time of the calling thread
(``time.thread_time``), which other processes on a busy machine disturb far less than wall time.
``--threading-layer`` picks numba's layer for this process (``default``: xpnet's choice, see
``docs/backends.md``); ``--pause`` the idle time between candidates (0: back to back, as in training,
where idle pools still spinning from one library slow the next). Where ``xpnet.kernels`` exists the
native path is switched with it; otherwise (before the kernel layer is merged) the script routes the
layers through the kernel set itself, as the layers will.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import xpnet
from xpnet import bench
from xpnet import layers as L
from xpnet.backends import get_backend

_STATE: dict[str, Any] = {"native": False, "kernels": None}


def _route_layers() -> None:
    """Route Convolution and Pooling through the kernel set while ``_STATE['native']`` (what the layers do
    once the kernel layer (issue 25 item 1) is merged)."""
    conv_fwd, conv_bwd = L.Convolution.forward, L.Convolution.backward
    pool_fwd, pool_bwd = L.Pooling.forward, L.Pooling.backward

    def conv_forward(self: Any, x: Any, train: bool = True) -> Any:
        k = _STATE["kernels"]
        if not (_STATE["native"] and k.supports_conv2d(x, self.W, self.stride, self.pad)):
            self._native_x = None
            return conv_fwd(self, x, train)
        self._native_x = x if train else None
        return k.conv2d(x, self.W, self.b, self.stride, self.pad)

    def conv_backward(self: Any, dout: Any) -> Any:
        if getattr(self, "_native_x", None) is None:
            return conv_bwd(self, dout)
        dx, self.dW, self.db = _STATE["kernels"].conv2d_backward(
            dout, self._native_x, self.W, self.stride, self.pad, self.input_grad
        )
        return dx

    def pool_forward(self: Any, x: Any, train: bool = True) -> Any:
        k = _STATE["kernels"]
        if not (_STATE["native"] and k.supports_max_pool(x, self.size, self.stride, self.pad)):
            self._native_state = None
            return pool_fwd(self, x, train)
        y, state = k.max_pool(x, self.size, self.stride, self.pad)
        self._native_state, self._native_shape = (state if train else None), tuple(x.shape)
        return y

    def pool_backward(self: Any, dout: Any) -> Any:
        if getattr(self, "_native_state", None) is None:
            return pool_bwd(self, dout)
        return _STATE["kernels"].max_pool_backward(
            dout, self._native_state, self._native_shape, self.size, self.stride, self.pad
        )

    L.Convolution.forward, L.Convolution.backward = conv_forward, conv_backward  # type: ignore[method-assign]
    L.Pooling.forward, L.Pooling.backward = pool_forward, pool_backward  # type: ignore[method-assign]


@contextlib.contextmanager
def _path(native: bool) -> Iterator[None]:
    switch = getattr(xpnet, "kernels", None)
    if switch is not None and hasattr(switch, "using"):
        with switch.using("native" if native else "reference"):
            yield
        return
    _STATE["native"] = native
    try:
        yield
    finally:
        _STATE["native"] = False


def _on_path(step: Callable[[], None], native: bool) -> Callable[[], None]:
    def run() -> None:
        with _path(native):
            step()

    return run


def _cpu_time(candidates: dict[str, Callable[[], None]], rounds: int) -> dict[str, dict[str, float]]:
    """Min and median CPU seconds of the calling thread per call, round-robin (after 3 warm-up calls each)."""
    for f in candidates.values():
        for _ in range(3):
            f()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, f in candidates.items():
            start = time.thread_time()
            f()
            samples[name].append(time.thread_time() - start)
    return {
        name: {"min": min(v), "median": statistics.median(v), "max": max(v), "rounds": len(v)}
        for name, v in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default="simplecnn,deepcnn")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--threading-layer", default="default", help="numba layer: default, omp, workqueue, tbb")
    ap.add_argument("--cpu-time", action="store_true", help="one thread everywhere, CPU time of the calling thread")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args(argv)
    if args.threading_layer != "default":
        os.environ["NUMBA_THREADING_LAYER"] = args.threading_layer
    import numba
    import torch  # every pool loaded in this process (the peer's OpenMP too)

    if args.cpu_time:
        from threadpoolctl import ThreadpoolController

        numba.set_num_threads(1)
        torch.set_num_threads(1)
        _STATE["blas_limit"] = ThreadpoolController().limit(limits=1, user_api="blas")  # for the whole run
    kernels = get_backend().native_kernels()
    if kernels is None:
        print("numba is not installed: no native kernels to time", file=sys.stderr)
        return 1
    _STATE["kernels"] = kernels
    if getattr(xpnet, "kernels", None) is None:
        _route_layers()
    backend = get_backend()
    rows = []
    for net in args.networks.split(","):
        sizes, batch = bench.NETWORKS[net]
        native = bench.xpnet_step(backend, sizes, batch)
        start = time.perf_counter()
        _on_path(native, True)()  # compiles (or loads from numba's cache) here, outside the timing
        first_call = time.perf_counter() - start
        candidates = {
            "numpy reference (im2col)": _on_path(bench.xpnet_step(backend, sizes, batch), False),
            "numpy native (numba)": _on_path(native, True),
            "torch eager": bench.torch_step("cpu", sizes, batch),
        }
        if args.cpu_time:
            timing = _cpu_time(candidates, args.rounds)
        else:
            timing = bench.interleaved(candidates, rounds=args.rounds, min_time=args.min_time, pause=args.pause)
        peer = timing["torch eager"]["min"]
        for name, t in timing.items():
            row = {"network": bench.network_label(sizes), "batch": batch, "candidate": name, **t}
            row["vs_torch_min"] = t["min"] / peer
            rows.append(row)
            print(
                f"{row['network']:14} {name:26} min {t['min'] * 1e3:7.2f} ms  median {t['median'] * 1e3:7.2f} ms"
                f"  {row['vs_torch_min']:.2f}x torch"
            )
        print(f"  first native step (JIT or cache load included): {first_call:.2f} s")
    record = {
        **bench.run_record(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numba": numba.__version__,
        "numba_threading_layer": numba.threading_layer(),
        "numba_threads": numba.get_num_threads(),
        "pause_s": args.pause,
        "timer": "thread_time, 1 thread everywhere" if args.cpu_time else "perf_counter (interleaved)",
        "load_average_end": os.getloadavg(),
        "rounds": args.rounds,
        "jit_seconds": kernels.jit_seconds,  # type: ignore[attr-defined]
        "compiled": kernels.compiled,  # type: ignore[attr-defined]
        "rows": rows,
    }
    print(f"numba {numba.__version__}, layer {record['numba_threading_layer']}, JIT {record['jit_seconds']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())

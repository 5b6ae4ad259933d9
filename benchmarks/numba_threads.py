"""Thread-pool contention (issue 25): numba's compiled convolution right after an OpenBLAS product and a
PyTorch operation, back to back as in a training step, in one process with every pool loaded.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numba_threads.py --layer omp \\
        --json docs/bench-2026-12-07-cpu/numba-threads-omp.json

Times each operation alone (after a pause: the other pools asleep) and inside the back-to-back sequence
(``gemm → numba → torch → numba``); the difference is what the idle, still-spinning pools cost. Run once
per numba threading layer (``--layer``: ``omp``, ``workqueue``; ``tbb`` where installed), with
``--blas-1`` (OpenBLAS held at one thread around the numba kernels, threadpoolctl) or ``--blas-threads 1``
/ ``--torch-threads 1`` (those pools at one thread for the whole run: they never wake a second thread).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np


def _time(f: Callable[[], None], pause: float) -> float:
    if pause:
        time.sleep(pause)
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layer", default="omp")
    ap.add_argument("--blas-1", action="store_true", help="OpenBLAS at 1 thread around the numba kernels")
    ap.add_argument("--blas-threads", type=int, help="OpenBLAS held at this many threads for the whole run")
    ap.add_argument("--torch-threads", type=int, help="torch.set_num_threads for the whole run")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args(argv)
    os.environ["NUMBA_THREADING_LAYER"] = args.layer
    import numba
    import torch
    from threadpoolctl import ThreadpoolController

    from xpnet import bench
    from xpnet.backends._numba import NumbaKernels

    kernels = NumbaKernels()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 16, 28, 28)).astype(np.float32)  # DeepConvNet's second convolution
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = np.zeros(16, np.float32)
    a, m = rng.standard_normal((100, 3136)).astype(np.float32), rng.standard_normal((3136, 512)).astype(np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    blas = ThreadpoolController().select(user_api="blas")
    held = blas.limit(limits=args.blas_threads) if args.blas_threads else None  # restored at exit
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    def conv() -> None:
        if args.blas_1:
            with blas.limit(limits=1):
                kernels.conv2d(x, w, b, 1, 1)
        else:
            kernels.conv2d(x, w, b, 1, 1)

    ops: dict[str, Callable[[], None]] = {
        "numba conv": conv,
        "openblas gemm": lambda: a @ m,
        "torch conv": lambda: torch.nn.functional.conv2d(xt, wt, padding=1),
    }
    for f in ops.values():  # compile, warm up
        for _ in range(3):
            f()
    alone: dict[str, list[float]] = {k: [] for k in ops}
    sequence: dict[str, list[float]] = {"numba conv after gemm": [], "numba conv after torch": [], "whole sequence": []}
    for _ in range(args.rounds):
        for k, f in ops.items():
            alone[k].append(_time(f, 0.05))
        time.sleep(0.05)
        start = time.perf_counter()
        ops["openblas gemm"]()
        sequence["numba conv after gemm"].append(_time(conv, 0))
        ops["torch conv"]()
        sequence["numba conv after torch"].append(_time(conv, 0))
        sequence["whole sequence"].append(time.perf_counter() - start)

    def summary(s: list[float]) -> dict[str, float]:
        return {"min_ms": min(s) * 1e3, "median_ms": statistics.median(s) * 1e3}

    rows = {**{f"{k} alone": summary(v) for k, v in alone.items()}, **{k: summary(v) for k, v in sequence.items()}}
    for k, v in rows.items():
        print(f"{k:28} min {v['min_ms']:7.2f} ms  median {v['median_ms']:7.2f} ms")
    record = {
        **bench.run_record(),
        "numba": numba.__version__,
        "numba_threading_layer": numba.threading_layer(),
        "numba_threads": numba.get_num_threads(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_1_around_numba": args.blas_1,
        "blas_threads_held": args.blas_threads,
        "blas_limit_active": held is not None,
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    print(f"layer {record['numba_threading_layer']}, load average {record['load_average']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

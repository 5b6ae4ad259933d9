"""Data-parallel scaling on this machine: step time and allreduce time for 1 and 2 MPI processes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/distributed_scaling.py --out FILE.json

The driver runs one worker per configuration — ``python THIS --worker`` for one process (no MPI) and
``mpiexec -n 2 python THIS --worker`` for two — and writes every worker's figures, the commands, the machine,
the versions and the load average into one raw JSON file (docs/distributed.md quotes it). Each worker pins its
BLAS threads with threadpoolctl (``--threads``), so that two ranks do not fight over two cores, and times
``Trainer.train_epoch`` on random MNIST-shaped data (the content does not change the timing): the step time is
an epoch's wall time over its steps (median over epochs); the allreduce time is measured around
``comm.allreduce`` inside those steps (it includes waiting for the slower rank); "allreduce alone" is the same
call on a parameter-sized float32 buffer after a barrier (the transfer alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("mlp", "simple-cnn")
CONFIGS = ((1, 1), (1, 2), (2, 1))  # (processes, BLAS threads per process)


def build(name: str):
    import xpnet
    from xpnet.models import mlp, simple_cnn

    xpnet.seed(0)
    if name == "mlp":
        return mlp([784, 100, 50, 10]), (784,), 4000
    return simple_cnn((1, 28, 28), 10), (1, 28, 28), 1000


def worker(threads: int, epochs: int, batch: int) -> None:
    from threadpoolctl import threadpool_limits

    import xpnet
    from xpnet import distributed

    threadpool_limits(limits=threads)
    comm = distributed.init()
    reduce_times: list[float] = []
    if comm.size > 1:
        inner = comm.allreduce

        def timed(buf, backend):
            start = time.perf_counter()
            out = inner(buf, backend)
            reduce_times.append(time.perf_counter() - start)
            return out

        comm.allreduce = timed  # type: ignore[method-assign]
    rows = []
    for name in MODELS:
        model, shape, n = build(name)
        rng = np.random.default_rng(1)
        x = rng.random((n, *shape), dtype=np.float32)
        t = rng.integers(0, 10, n)
        trainer = xpnet.Trainer(model, xpnet.optimizers.SGD(lr=0.01), batch_size=batch, verbose=False, comm=comm)
        xd, td = model.check_data(x, t)
        comm.bcast_data(model.params, model.backend)
        steps = -(-n // batch)
        step_ms, in_step = [], []
        for epoch in range(epochs + 1):  # epoch 0 warms up
            reduce_times.clear()
            start = time.perf_counter()
            trainer.train_epoch(xd, td, np.random.default_rng(epoch).permutation(n))
            if epoch:
                step_ms.append(1e3 * (time.perf_counter() - start) / steps)
                in_step += [1e3 * v for v in reduce_times]
        alone: list[float] = []
        if comm.size > 1:
            flat = np.zeros(model.n_params(), dtype=np.float32)
            for i in range(220):
                comm.comm.Barrier()
                start = time.perf_counter()
                comm.allreduce(flat, model.backend)
                if i >= 20:
                    alone.append(1e3 * (time.perf_counter() - start))
        step = statistics.median(step_ms)
        rows.append(
            {
                "model": name,
                "parameters": model.n_params(),
                "parameter_bytes": 4 * model.n_params(),
                "processes": comm.size,
                "blas_threads_per_process": threads,
                "global_batch": batch,
                "samples": n,
                "epochs_timed": epochs,
                "step_ms_median": step,
                "step_ms_min": min(step_ms),
                "step_ms_all": step_ms,
                "samples_per_s": batch / step * 1e3,
                **_stats("allreduce_in_step_ms", in_step),
                **_stats("allreduce_alone_ms", alone),
            }
        )
    if comm.is_root:
        print(json.dumps(rows), flush=True)


def _stats(name: str, values: list[float]) -> dict[str, float | None]:
    """min, 10th percentile and median (None for one process: no allreduce)."""
    if not values:
        return {f"{name}_min": None, f"{name}_p10": None, f"{name}_median": None}
    v = np.sort(values)
    return {f"{name}_min": float(v[0]), f"{name}_p10": float(v[len(v) // 10]), f"{name}_median": float(np.median(v))}


def driver(out: Path, epochs: int, batch: int, repeats: int) -> None:
    import mpi4py
    from mpi4py import MPI

    here = Path(__file__).resolve()
    rows, commands = [], []
    load_before = os.getloadavg()
    for repeat in range(repeats):  # configurations interleaved, so that a change of load hits them all
        for procs, threads in CONFIGS:
            cmd = [
                sys.executable,
                str(here),
                "--worker",
                "--threads",
                str(threads),
                "--epochs",
                str(epochs),
                "--batch",
                str(batch),
            ]
            if procs > 1:
                cmd = ["mpiexec", "-n", str(procs), *cmd]
            if repeat == 0:
                commands.append(" ".join(cmd))
            run = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows += [
                {**row, "repeat": repeat, "load_average_1min": os.getloadavg()[0]}
                for row in json.loads(run.stdout.strip().splitlines()[-1])
            ]
            print(f"repeat {repeat}: {procs} process(es) x {threads} thread(s) done", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, cwd=here.parent
    ).stdout.strip()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python " + " ".join(sys.argv),
        "worker_commands": commands,
        "machine": platform.platform(),
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "note": "shared machine: other sessions ran tests and benchmarks at the same time (see load average)",
        "load_average_1_5_15_before": load_before,
        "load_average_1_5_15_after": os.getloadavg(),
        "openblas_env_unset": not any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mpi4py": mpi4py.__version__,
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
        "xpnet_commit": commit,
        "backend": "numpy",
        "dtype": "float32",
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="raw JSON to write (driver)")
    p.add_argument("--worker", action="store_true", help="time one configuration (run by the driver)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads per process")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per model")
    p.add_argument("--batch", type=int, default=100, help="global batch size")
    p.add_argument("--repeats", type=int, default=3, help="runs of every configuration (driver)")
    args = p.parse_args()
    if args.worker:
        worker(args.threads, args.epochs, args.batch)
    elif args.out is None:
        p.error("--out FILE.json is needed (or --worker)")
    else:
        driver(args.out, args.epochs, args.batch, args.repeats)


if __name__ == "__main__":
    main()

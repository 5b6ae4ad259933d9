"""The book's CNNs' training steps on each kernel path against PyTorch eager, interleaved in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/cnn_paths.py --json out.json

For each network (``--networks``, default simplecnn,deepcnn; batch 100, float32) and each backend of
``--backends`` (default torch), every kernel path of the backend (native kernels where its adapter has
them, and the array-API reference) and PyTorch eager's step run round-robin (:func:`xpnet.bench.interleaved`);
minima, medians and maxima per path, and the ratios of the minima to PyTorch's. ``--repeat`` repeats the
whole interleaved run (each repeat is recorded). The JSON names the machine, versions, BLAS and command.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import xpnet
from xpnet import bench


def cpu_interleaved(cands: dict[str, Callable[[], None]], rounds: int, calls: int = 3) -> dict[str, dict[str, float]]:
    """As :func:`xpnet.bench.interleaved`, but in this process's CPU time (``time.process_time``): on a machine
    shared with other work, the work a step does rather than the wall time it waited. Meaningful at one thread
    (``--threads 1``; at more, spinning worker threads count too)."""
    for f in cands.values():  # warm-up
        f()
    samples: dict[str, list[float]] = {name: [] for name in cands}
    for _ in range(rounds):
        for name, f in cands.items():
            start = time.process_time()
            for _ in range(calls):
                f()
            samples[name].append((time.process_time() - start) / calls)
    return {
        name: {"min": min(v), "median": sorted(v)[len(v) // 2], "max": max(v), "rounds": len(v)}
        for name, v in samples.items()
    }


def measure(backend_name: str, network: str, rounds: int, min_time: float, clock: str = "wall") -> dict[str, Any]:
    backend = xpnet.set_backend(backend_name)
    sizes, batch = bench.NETWORKS[network]
    paths = bench.kernel_paths(backend)
    cands = {bench.kernels_label(backend, m): bench.xpnet_step(backend, sizes, batch, kernels=m) for m in paths}
    cands["pytorch eager"] = bench.torch_step(backend.peer_torch_device() or "cpu", sizes, batch)
    if clock == "cpu":
        times = interleaved = cpu_interleaved(cands, rounds)
    else:
        times = interleaved = bench.interleaved(cands, rounds=rounds, min_time=min_time)
    peer = times["pytorch eager"]["min"]
    rows = [
        {
            "backend": backend_name,
            "kernels": name,
            "network": bench.network_label(sizes),
            "batch": batch,
            "min_ms": t["min"] * 1e3,
            "median_ms": t["median"] * 1e3,
            "max_ms": t["max"] * 1e3,
            "rounds": t["rounds"],
            "vs_pytorch_eager": t["min"] / peer,
        }
        for name, t in interleaved.items()
    ]
    return {"network": bench.network_label(sizes), "backend": backend_name, "clock": clock, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="torch")
    p.add_argument("--networks", default="simplecnn,deepcnn")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--min-time", type=float, default=0.3)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="wall time, or process CPU time")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's own)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    runs = []
    for r in range(args.repeat):
        for net in args.networks.split(","):
            for b in args.backends.split(","):
                result = measure(b, net, args.rounds, args.min_time, args.clock)
                result["repeat"] = r
                runs.append(result)
                for row in result["rows"]:
                    print(
                        f"[{r}] {row['network']:>13s} {row['backend']:>6s} {row['kernels']:>15s}: "
                        f"{row['min_ms']:8.2f} / {row['median_ms']:8.2f} / {row['max_ms']:8.2f} ms "
                        f"(min / median / max)  {row['vs_pytorch_eager']:.3f}x PyTorch eager",
                        flush=True,
                    )
    if args.json:
        import torch

        doc = {
            **bench.run_record(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "min_time_s": args.min_time,
            "notes": "interleaved round-robin in one process; ratios are of the minima; other sessions shared "
            "this 2-core machine during the run (see max/median)",
            "runs": runs,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

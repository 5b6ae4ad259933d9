"""Where a CNN training step's time goes: each layer's forward and backward alone, per backend and kernel path.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/layer_profile.py --json out.json

Each backend of ``--backends`` (default numpy,torch) runs on each of its kernel paths (native kernels where
its adapter has them, and the array-API reference: one result each); PyTorch eager's whole step is timed
beside them.

For ``simple`` (SimpleConvNet) and ``deep`` (DeepConvNet), batch 100 of 1×28×28 float32: the whole
training step (``model.gradient``), then every layer's ``forward(x, train=True)`` on the input it sees in
the model, and its ``backward`` of a gradient of its output's shape, each the minimum over ``--rounds``
calls. The per-layer minima need not add up to the step (caches, page faults, the loss): they show which
layers bound it. The JSON names the machine, versions, BLAS kernel and command.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import xpnet
from xpnet import bench, kernels

BUILDERS = {"simple": xpnet.models.simple_cnn, "deep": xpnet.models.deep_cnn}


def minimum_ms(f: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def profile(
    name: str, rounds: int, batch: int = 100, backend: str = "numpy", path: str = "reference"
) -> dict[str, Any]:
    with kernels.using(path):
        return _profile(name, rounds, batch, backend, path)


def _profile(name: str, rounds: int, batch: int, backend: str, path: str) -> dict[str, Any]:
    b = xpnet.set_backend(backend)
    xpnet.seed(0)
    model = BUILDERS[name]()
    rng = np.random.default_rng(0)
    x = xpnet.asarray(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    t = xpnet.asarray(rng.integers(0, 10, batch))
    step = minimum_ms(lambda: model.gradient(x, t), rounds)
    inputs, h = [], x
    for layer in model.layers:  # each layer's input as the model feeds it
        inputs.append(h)
        h = layer.forward(h, train=True)
    rows = []
    for layer, xin in zip(model.layers, inputs):
        out = layer.forward(xin, train=True)
        dout = xpnet.asarray(np.full(tuple(out.shape), 1e-3, np.float32))
        fwd = minimum_ms(lambda layer=layer, xin=xin: layer.forward(xin, train=True), rounds)
        layer.forward(xin, train=True)
        bwd = minimum_ms(lambda layer=layer, dout=dout: layer.backward(dout), rounds)
        rows.append({"layer": layer.describe(), "input": list(xin.shape), "forward_ms": fwd, "backward_ms": bwd})
    label = bench.kernels_label(b, path)
    return {"model": name, "backend": backend, "kernels": label, "batch": batch, "step_ms": step, "layers": rows}


def torch_eager_ms(name: str, rounds: int, batch: int = 100) -> float:
    """PyTorch eager's whole training step (forward, loss, backward, SGD) on the CPU, the peer."""
    step = bench.torch_step("cpu", {"simple": "SimpleConvNet", "deep": "DeepConvNet"}[name], batch)
    return minimum_ms(step, rounds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="simple,deep", help="comma list of: simple, deep")
    p.add_argument("--backends", default="numpy,torch", help="comma list of xpnet backends")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    results = [
        profile(m, args.rounds, backend=b, path=path)
        for m in args.models.split(",")
        for b in args.backends.split(",")
        for path in bench.kernel_paths(xpnet.set_backend(b))
    ]
    eager = {m: torch_eager_ms(m, args.rounds) for m in args.models.split(",")}
    for m, ms in eager.items():
        print(f"{m}: PyTorch eager training step {ms:.2f} ms (minimum of {args.rounds})")
    for r in results:
        print(
            f"{r['model']} on {r['backend']} [{r['kernels']}]: training step {r['step_ms']:.2f} ms "
            f"(minimum of {args.rounds})"
        )
        for i, row in enumerate(r["layers"]):
            print(
                f"  {i:2d} {row['layer'][:48]:48s} {'x'.join(map(str, row['input'])):>14s}"
                f"  forward {row['forward_ms']:7.2f} ms  backward {row['backward_ms']:7.2f} ms"
            )
    if args.json:
        doc = {
            **bench.run_record(),
            "rounds": args.rounds,
            "torch_eager_step_ms": eager,
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast can an im2col convolution get on this machine? The matrix products alone, in the best layout.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_gemm_bound.py --json out.json

For every convolution of a CNN (default DeepConvNet, batch 100, float32, NumPy), each of the three matrix
products of its training step — forward ``W·col``, ``dW = dY·colᵀ`` and the input gradient's product
(none for the first layer) — is timed in three layouts of the same multiply-adds:

- ``per-image``: batched over the N images, ``(F, CKK)·(N, CKK, P)`` (xpnet's layout);
- ``channel-major``: one product over the whole batch, ``(F, CKK)·(CKK, N·P)``;
- ``pixel-major``: one product with the pixels as rows, ``(N·P, CKK)·(CKK, F)``.

The minimum over the layouts, summed over the layers, is a lower bound for any im2col convolution on this
BLAS: no layout choice (and no copy-free im2col) brings the products below it. PyTorch's whole training
step is timed in the same run for comparison (its oneDNN convolutions form no im2col matrix). Each figure
is the minimum of ``--rounds`` calls; the JSON names the machine, versions, BLAS kernel and command.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
from layer_profile import minimum_ms

import xpnet
from xpnet import bench

LAYOUTS = ("per-image", "channel-major", "pixel-major")


def operands(product: str, layout: str, n: int, f: int, ckk: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The two operands of one product (``forward``, ``dW`` or ``dX``) in one layout, as contiguous arrays
    (a transposed operand as the transposed view BLAS takes without a copy)."""
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    if layout == "per-image":
        return {
            "forward": (r(f, ckk), r(n, ckk, p)),
            "dW": (r(n, f, p), r(n, ckk, p).transpose(0, 2, 1)),
            "dX": (r(ckk, f), r(n, f, p)),
        }[product]
    if layout == "channel-major":
        return {
            "forward": (r(f, ckk), r(ckk, n * p)),
            "dW": (r(f, n * p), r(ckk, n * p).T),
            "dX": (r(ckk, f), r(f, n * p)),
        }[product]
    return {
        "forward": (r(n * p, ckk), r(ckk, f)),
        "dW": (r(n * p, ckk).T, r(n * p, f)),
        "dX": (r(n * p, f), r(f, ckk)),
    }[product]


def bound(model_name: str, rounds: int, batch: int = 100) -> dict:
    xpnet.set_backend("numpy")
    model = {"simple": xpnet.models.simple_cnn, "deep": xpnet.models.deep_cnn}[model_name]()
    rows, total = [], 0.0
    for i, (layer, (_, out_shape)) in enumerate(zip(model.layers, model.shapes)):
        if not isinstance(layer, xpnet.layers.Convolution):
            continue
        f, ckk, p = layer.out_channels, int(np.prod(layer.W.shape[1:])), int(np.prod(out_shape[1:]))
        products = ("forward", "dW", "dX") if i else ("forward", "dW")
        row: dict = {"layer": layer.describe(), "F": f, "CKK": ckk, "P": p, "ms": {}}
        for product in products:
            times = {}
            for layout in LAYOUTS:
                a, b = operands(product, layout, batch, f, ckk, p)
                times[layout] = minimum_ms(lambda a=a, b=b: a @ b, rounds)
            row["ms"][product] = times
            total += min(times.values())
        row["best_ms"] = sum(min(t.values()) for t in row["ms"].values())
        rows.append(row)
    result = {"model": model_name, "batch": batch, "layers": rows, "best_layout_products_ms": total}
    try:
        torch_step = bench.torch_step("cpu", "DeepConvNet" if model_name == "deep" else "SimpleConvNet", batch)
    except ImportError:
        result["torch_step_ms"] = None
    else:
        result["torch_step_ms"] = minimum_ms(torch_step, rounds)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="deep", help="comma list of: simple, deep")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    results = [bound(m, args.rounds) for m in args.models.split(",")]
    for r in results:
        print(f"{r['model']} (batch {r['batch']}): matrix products per layer, best of {', '.join(LAYOUTS)}")
        for row in r["layers"]:
            cells = "  ".join(f"{k} {min(v.values()):6.2f} ms ({min(v, key=v.get)})" for k, v in row["ms"].items())
            print(f"  {row['layer'][:44]:44s} {cells}")
        torch_ms = r["torch_step_ms"]
        print(f"  sum of the best layouts: {r['best_layout_products_ms']:.1f} ms;", end=" ")
        print(f"PyTorch's whole step: {torch_ms:.1f} ms" if torch_ms is not None else "PyTorch: not installed")
    if args.json:
        doc = {
            "command": " ".join(["python", *sys.argv]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "xpnet": xpnet.__version__,
            "blas": bench.blas_info(),
            "rounds": args.rounds,
            "results": results,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

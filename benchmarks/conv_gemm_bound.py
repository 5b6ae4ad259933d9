"""How fast can an im2col convolution get on this machine? Its matrix products alone, in the best layout.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_gemm_bound.py --json out.json

For every convolution of a CNN (default DeepConvNet, batch 100, float32, NumPy), each matrix product of
its training step — forward ``W·col``, ``dW = dY·colᵀ`` and the input gradient's (none for the first
layer) — is timed in three layouts of the same multiply-adds:

- ``per-image``: batched over the N images, ``(F, CKK)·(N, CKK, P)`` (xpnet's layout);
- ``channel-major``: one product over the whole batch, ``(F, CKK)·(CKK, N·P)``;
- ``pixel-major``: one product with the pixels as rows, ``(N·P, CKK)·(CKK, F)``.

The input gradient is timed in both of its forms, routed ``(CKK, F)·(N, F, OH·OW)`` and, for stride 1,
correlated ``(C, KK·F)·(N, KK·F, H·W)`` (fewer multiply-adds where the output is the larger), six
candidates in all. The fastest candidate of each product, summed over the layers, is what no layout
measured here brings the products below; PyTorch's whole training step is timed in the same run for
comparison (its oneDNN convolutions form no im2col matrix). Each figure is the minimum of ``--rounds``
calls; the JSON names the machine, versions, BLAS kernel, git commit and command.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from layer_profile import minimum_ms

import xpnet
from xpnet import bench

LAYOUTS = ("per-image", "channel-major", "pixel-major")


def _r(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def batched(layout: str, n: int, a: int, k: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, k)`` times the N images' ``(k, p)`` columns, in one layout: a forward-like product."""
    if layout == "per-image":
        return _r(a, k), _r(n, k, p)
    if layout == "channel-major":
        return _r(a, k), _r(k, n * p)
    return _r(n * p, k), _r(k, a)


def reduced(layout: str, n: int, f: int, k: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``Σ_n dY_n·col_nᵀ`` (``dW``) in one layout; a transposed operand as the view BLAS takes uncopied."""
    if layout == "per-image":
        return _r(n, f, p), _r(n, k, p).transpose(0, 2, 1)
    if layout == "channel-major":
        return _r(f, n * p), _r(k, n * p).T
    return _r(n * p, k).T, _r(n * p, f)


def candidates(layer: Any, i: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], n: int) -> dict:
    """For each product of the layer's step, ``{candidate name: operands}``."""
    f, c = layer.out_channels, layer.in_channels
    kk = layer.kernel_size[0] * layer.kernel_size[1]
    p, hw = int(np.prod(out_shape[1:])), int(np.prod(in_shape[1:]))
    out = {
        "forward": {lay: batched(lay, n, f, c * kk, p) for lay in LAYOUTS},
        "dW": {lay: reduced(lay, n, f, c * kk, p) for lay in LAYOUTS},
    }
    if i:
        out["dX"] = {f"routed {lay}": batched(lay, n, c * kk, f, p) for lay in LAYOUTS}
        if layer.stride == 1:
            out["dX"].update({f"correlated {lay}": batched(lay, n, c, kk * f, hw) for lay in LAYOUTS})
    return out


def bound(model_name: str, rounds: int, batch: int = 100) -> dict:
    xpnet.set_backend("numpy")
    model = {"simple": xpnet.models.simple_cnn, "deep": xpnet.models.deep_cnn}[model_name]()
    rows, total = [], 0.0
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(model.layers, model.shapes)):
        if not isinstance(layer, xpnet.layers.Convolution):
            continue
        row: dict = {"layer": layer.describe(), "ms": {}}
        for product, cands in candidates(layer, i, in_shape, out_shape, batch).items():
            row["ms"][product] = {name: minimum_ms(lambda a=a, b=b: a @ b, rounds) for name, (a, b) in cands.items()}
        row["best_ms"] = sum(min(t.values()) for t in row["ms"].values())
        total += row["best_ms"]
        rows.append(row)
    result = {"model": model_name, "batch": batch, "layers": rows, "best_layout_products_ms": total}
    result["per_image_products_ms"] = sum(  # xpnet's layout, with the faster form of dX
        min(v for k, v in t.items() if k.endswith("per-image")) for r in rows for t in r["ms"].values()
    )
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
        print(f"{r['model']} (batch {r['batch']}): each matrix product's fastest candidate (layout, and form for dX)")
        for row in r["layers"]:
            cells = "  ".join(f"{k} {min(v.values()):6.2f} ms ({min(v, key=v.get)})" for k, v in row["ms"].items())
            print(f"  {row['layer'][:44]:44s} {cells}")
        torch_ms = r["torch_step_ms"]
        print(f"  sum of the fastest: {r['best_layout_products_ms']:.1f} ms (all per image:", end=" ")
        print(f"{r['per_image_products_ms']:.1f} ms);", end=" ")
        print(f"PyTorch's whole step: {torch_ms:.1f} ms" if torch_ms is not None else "PyTorch: not installed")
    if args.json:
        doc = {
            **bench.run_record(),
            "rounds": args.rounds,
            "results": results,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The convolution's two ways to the input gradient, timed on the backend at hand: which should "auto" pick?

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_input_gradient.py --json out.json

For each convolution of DeepConvNet that computes an input gradient (``--batch`` 100, float32), the whole
``backward`` (``dW``, ``db`` and ``dX``; only ``dX`` differs) with ``input_gradient_method`` set to
``"route"`` (``W_kᵀ·dY`` slice-added at each kernel position's windows) and to ``"correlate"`` (``dY``
padded and correlated with the flipped kernels, one batched im2col product), each the minimum of
``--rounds`` calls (each ending with a device synchronisation, for GPU backends) after one forward,
alternated ``--repeats`` times; and which one ``"auto"`` picks. The JSON names the machine, versions,
BLAS kernel, git commit and command.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from layer_profile import minimum_ms

import xpnet
from xpnet import bench


def compare(backend_name: str, rounds: int, repeats: int, batch: int = 100) -> list[dict]:
    backend = xpnet.set_backend(backend_name)
    xpnet.kernels.use("reference")  # input_gradient_method is the reference path's: time that path
    xpnet.seed(0)
    model = xpnet.models.deep_cnn()
    rng = np.random.default_rng(0)
    rows = []
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(model.layers, model.shapes)):
        if not isinstance(layer, xpnet.layers.Convolution) or i == 0:
            continue
        x = xpnet.asarray(rng.standard_normal((batch, *in_shape), dtype=np.float32))
        dout = xpnet.asarray(rng.standard_normal((batch, *out_shape), dtype=np.float32))
        layer.input_grad = True
        best = {"route": float("inf"), "correlate": float("inf")}
        for _ in range(repeats):
            for method in best:
                layer.input_gradient_method = method
                layer.forward(x)
                best[method] = min(
                    best[method],
                    minimum_ms(lambda layer=layer, dout=dout: (layer.backward(dout), backend.synchronize()), rounds),
                )
        layer.input_gradient_method = "auto"
        layer.clear()
        layer.forward(x)
        layer.backward(dout)  # auto's pick, seen from outside: only the correlation fills grad_workspace
        rows.append(
            {
                "layer": layer.describe(),
                "input": [batch, *in_shape],
                "backward_ms": best,
                "auto": "route" if layer.grad_workspace is None else "correlate",
                "faster": min(best, key=best.get),
            }
        )
        layer.clear()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    rows = compare(args.backend, args.rounds, args.repeats, args.batch)
    print(f"DeepConvNet convolutions, backward on {args.backend} (ms, minima): route / correlate; auto's pick")
    for r in rows:
        ms = r["backward_ms"]
        mark = "" if r["auto"] == r["faster"] else "   <- auto picks the slower"
        print(f"  {r['layer'][:52]:52s} {ms['route']:7.2f} / {ms['correlate']:7.2f}  auto: {r['auto']}{mark}")
    if args.json:
        doc = {
            **bench.run_record(),
            "backend": args.backend,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "batch": args.batch,
            "results": rows,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

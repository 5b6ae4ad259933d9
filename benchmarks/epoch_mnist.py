"""One SimpleConvNet epoch on MNIST — 600 SGD steps of batch 100, then evaluation on the 10 000 test
images — in xpnet (NumPy backend) and in PyTorch eager, alternated ``--repeats`` times; writes JSON.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/epoch_mnist.py [MNIST_DIR] --json out.json

Both loops are written the same way: the data is on the device before the clock starts, one fixed
shuffle, SGD lr 0.01, evaluation in batches of 1000 (argmax of the scores).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

import xpnet
from xpnet import bench
from xpnet.training.step import train_step


def xpnet_epoch(x, t, xt, tt, order, batch: int) -> tuple[float, float]:
    backend = xpnet.set_backend("numpy")
    xpnet.seed(0)
    model = xpnet.models.simple_cnn()
    opt = xpnet.optimizers.SGD(0.01)
    xd, td = model.check_data(x, t)
    xtd = xpnet.asarray(xt)
    start = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = xpnet.asarray(order[i : i + batch])
        train_step(model, opt, backend.xp.take(xd, idx, axis=0), backend.xp.take(td, idx, axis=0))
    correct = 0
    for i in range(0, xt.shape[0], 1000):
        correct += int(
            xpnet.to_numpy(
                backend.xp.argmax(model.forward(xtd[i : i + 1000], train=False), axis=1)
                == xpnet.asarray(tt[i : i + 1000])
            ).sum()
        )
    return time.perf_counter() - start, correct / xt.shape[0]


def torch_epoch(x, t, xt, tt, order, batch: int) -> tuple[float, float]:
    import torch

    torch.manual_seed(0)
    net = bench.torch_model("SimpleConvNet")
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    xd, td, xtd, ttd = (torch.from_numpy(a) for a in (x, t.astype(np.int64), xt, tt.astype(np.int64)))
    order_t = torch.from_numpy(order)
    start = time.perf_counter()
    net.train()
    for i in range(0, len(order), batch):
        idx = order_t[i : i + batch]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xd[idx]), td[idx]).backward()
        opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, xt.shape[0], 1000):
            correct += int((net(xtd[i : i + 1000]).argmax(1) == ttd[i : i + 1000]).sum())
    return time.perf_counter() - start, correct / xt.shape[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "mnist", nargs="?", default=None, help="folder of the MNIST IDX files (default: xpnet's search path)"
    )
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    xpnet.set_default_dtype("float32")
    (x, t), (xt, tt) = xpnet.datasets.load_mnist(args.mnist, flatten=False)
    x, xt = x.astype(np.float32), xt.astype(np.float32)
    order = np.random.default_rng(0).permutation(x.shape[0])
    runs: dict[str, list[dict[str, float]]] = {"xpnet": [], "torch": []}
    for _ in range(args.repeats):
        for name, f in (("xpnet", xpnet_epoch), ("torch", torch_epoch)):
            seconds, acc = f(x, t, xt, tt, order, args.batch)
            runs[name].append({"seconds": seconds, "test_accuracy": acc})
            print(f"{name}: {seconds:.2f} s, test accuracy {acc:.4f}", flush=True)
    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": bench.blas_info(),
        "command": " ".join(["python benchmarks/epoch_mnist.py", *(argv if argv is not None else sys.argv[1:])]),
        "steps": len(range(0, x.shape[0], args.batch)),
        "runs": runs,
        "min_seconds": best,
        "xpnet/torch": best["xpnet"] / best["torch"],
    }
    print(f"min: xpnet {best['xpnet']:.2f} s, torch {best['torch']:.2f} s, xpnet/torch {result['xpnet/torch']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``xpnet bench``: its options, checked before the first timing, then :func:`xpnet.experiments.bench.run_bench`
and its report (or its JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .. import backends as B
from ..experiments import bench
from . import checks as C


def bench_parser() -> argparse.ArgumentParser:
    """``xpnet bench``'s options."""
    p = C.Parser(prog="xpnet bench", description=(bench.__doc__ or "").split("\n\n")[0].replace("``", ""))
    p.add_argument(
        "--backend", default=None, help="comma-separated backends (default: all available but array_api_strict)"
    )
    p.add_argument("--device", default=None, help="device for cupy/torch (e.g. 0 or cuda:0)")
    p.add_argument(
        "--network",
        default=None,
        help="comma-separated: "
        + ", ".join(f"{k} ({bench.network_label(v[0])}, b{v[1]})" for k, v in bench.NETWORKS.items())
        + " (default: small,large,simplecnn,deepcnn)",
    )
    C.add_checked(p, "--rounds", "interleaved rounds (min / median / max reported; default 7)")
    C.add_checked(p, "--min-time", "seconds per candidate per round (default 0.2)")
    C.add_checked(p, "--dtype", "float32 | float64 (default float32)", default="float32")
    p.add_argument(
        "--kernels", action="store_true", help="also time the CNN layers' kernels (conv, pool, ReLU) vs PyTorch"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement of each step")
    p.add_argument("--no-numgrad", action="store_true", help="skip the numerical-gradient headline")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a compact run: small network, 3 short rounds, small kernels (explicit options win)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write the results as JSON to PATH (no PATH or '-': print only the JSON)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``xpnet bench [options]``: every option checked before the first timing; the report, or (``--json``)
    the results as JSON."""
    args = bench_parser().parse_args(argv)
    quick = ("small", 3, 0.05) if args.quick else ("small,large,simplecnn,deepcnn", 7, 0.2)
    args.network = args.network if args.network is not None else quick[0]
    args.rounds = args.rounds if args.rounds is not None else quick[1]
    args.min_time = args.min_time if args.min_time is not None else quick[2]
    names = (
        args.backend.split(",") if args.backend else [b for b in B.available_backends() if not B.ADAPTERS[b].checker]
    )
    networks = C.names("network", args.network, bench.NETWORKS)
    backends = [C.resolve(name, args.device) for name in names]  # every option checked before the first timing
    for backend in backends:
        C.check_dtype(backend, args.dtype)
    quiet = args.json == "-"
    if not quiet:
        C.check_output("json", args.json, (".json",))
    result = bench.run_bench(
        backends,
        networks,
        args.rounds,
        args.min_time,
        args.dtype,
        kernels=args.kernels,
        quick=args.quick,
        memory=not args.no_memory,
        numgrad=not args.no_numgrad,
        command=" ".join(["xpnet bench", *(argv if argv is not None else sys.argv[1:])]),
    )
    if not quiet:
        for line in bench.report(result, args.rounds):
            print(line)
    if args.json:
        text = json.dumps(result, indent=2)
        if quiet:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    return 0

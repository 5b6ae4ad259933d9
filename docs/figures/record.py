"""Run one ``xpnet train|compare`` command and keep its raw per-epoch history with the machine, versions
and command that made it (the raw file every figure in the docs traces to).

    python docs/figures/record.py OUT.json xpnet compare --gradient numerical,backprop ...

Writes ``OUT.json``: ``{"command", "machine", "versions", "runs": [History JSON, ...]}``. Add ``--plot
PNG`` to the xpnet arguments for the curves.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from importlib import metadata


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "torch", "array-api-compat", "array-api-strict", "matplotlib"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    import xpnet

    out["xpnet"] = xpnet.__version__
    return out


def machine() -> dict[str, str | int | None]:
    info = pathlib.Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS") if k in os.environ}
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "blas_env": blas or None}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "xpnet" or argv[2] not in ("train", "compare"):
        print(__doc__)
        return 2
    out, args = pathlib.Path(argv[0]), argv[2:]
    from xpnet.cli import main as xpnet_main

    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "history.json"
        code = xpnet_main([*args, "--history", str(raw)])
        if code:
            return code
        runs = json.loads(raw.read_text())
    record = {
        "command": "xpnet " + " ".join(args),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "versions": versions(),
        "runs": runs if isinstance(runs, list) else [runs],
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"raw history written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

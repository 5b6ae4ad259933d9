"""``python -m xpnet.reproduce list | run TABLE… | render TABLE…``: the command of
:mod:`xpnet.experiments.reproduce` (the articles' tables rerun over seeds).

``xpnet.reproduce``, the old name, imports this module; the library's names are found here too.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from ..experiments import reproduce as library
from ..experiments.reproduce import TABLES, Table, assemble, plan, provenance, render, run, select, utc_now
from ..utils import atomic


def __getattr__(name: str) -> Any:
    """The library's other names (``run_task``, ``verdict``, ...), for code that imports ``xpnet.reproduce``."""
    return getattr(library, name)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C (not "one failed run" among others): the command stops,
    says how to resume and exits 143. Runs already handed to the worker processes may still finish, and are
    kept, before it exits."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def reproduce_parser() -> argparse.ArgumentParser:
    """The command's subcommands and options."""
    p = argparse.ArgumentParser(prog="python -m xpnet.reproduce", description=(library.__doc__ or "").split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the tables, their rows, seeds and runs")
    r = sub.add_parser("run", help="run (or resume) tables; each finished table is assembled and rendered")
    r.add_argument("tables", nargs="+", help=f"all | {' | '.join(TABLES)}")
    r.add_argument("--jobs", "-j", type=int, default=1, help="runs at once, one process each, BLAS pinned to 1 thread")
    r.add_argument(
        "--out",
        default=None,
        help="folder of the JSON/PNG/Markdown (default docs/results; with --quick a temporary folder)",
    )
    r.add_argument("--seeds", type=int, default=None, help="seeds per row (default: the table's, 5 or 3; --quick 2)")
    r.add_argument("--seed", type=int, default=None, help="first seed (default 10, as xpnet train)")
    r.add_argument("--epochs", type=int, default=None, help="override every table's epochs")
    r.add_argument("--backend", default=None, help="numpy (default) | cupy | torch | array_api_strict")
    r.add_argument("--dtype", default=None, help="float32 (default) | float64")
    r.add_argument("--device", default=None, help="device of the backend (cupy: GPU index)")
    r.add_argument("--data-path", default=None, help="folder holding the MNIST IDX files")
    r.add_argument("--quick", action="store_true", help="dry run: digits, 2 epochs, 2 seeds")
    r.add_argument(
        "--partial",
        action="store_true",
        help="assemble and render a table from the runs that exist "
        "(missing rows: 'not run'); with --jobs 0 nothing new is run",
    )
    d = sub.add_parser("render", help="print (and write OUT/TABLE.md) the Markdown of assembled tables")
    d.add_argument("tables", nargs="+", help=f"all | {' | '.join(TABLES)}")
    d.add_argument("--out", default="docs/results", help="folder of the table JSON files (default docs/results)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m xpnet.reproduce ...``; returns the exit status (1 a failed run or a bad value, 130 Ctrl-C,
    143 SIGTERM; finished runs are kept either way)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = reproduce_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)  # not one failed run among others: the end of all
    try:
        if args.command == "list":
            for t in TABLES.values():
                print(
                    f"{t.name:15s} {len(t.rows):2d} rows × {t.seeds} seeds, "
                    f"{t.common.get('epochs', 50)} epochs — {t.title}"
                )
            return 0
        tables = select(args.tables)
        if args.command == "render":
            return render_tables(tables, pathlib.Path(args.out))
        if args.jobs < (0 if args.partial else 1):
            raise ValueError(f"--jobs must be >= 1 (0 only with --partial), got {args.jobs}")
        out = pathlib.Path(
            args.out or (pathlib.Path(tempfile.gettempdir()) / "xpnet-quick" if args.quick else "docs/results")
        )
        out.mkdir(parents=True, exist_ok=True)
        tasks = plan(
            tables,
            out,
            seeds=args.seeds,
            seed=args.seed,
            quick=args.quick,
            epochs=args.epochs,
            backend=args.backend,
            dtype=args.dtype,
        )
        meta = provenance(argv, args.jobs, args.backend)
        start, started = time.perf_counter(), utc_now()
        print(f"{len(tasks)} runs in {len(tables)} table(s), {args.jobs} at a time, into {out}", flush=True)
        ran, skipped, errors = (
            run(tasks, args.jobs, args.data_path, args.device, meta, log=lambda s: print(s, flush=True))
            if args.jobs
            else (0, 0, [])
        )
        wall = time.perf_counter() - start
        with open(out / "invocations.jsonl", "a") as f:
            f.write(
                json.dumps(
                    {
                        **meta,
                        "started": started,
                        "wall_s": round(wall, 1),
                        "tables": [t.name for t in tables],
                        "ran": ran,
                        "skipped": skipped,
                        "failed": len(errors),
                    }
                )
                + "\n"
            )
        for table in tables:
            path = assemble(table, tasks, out, meta, partial=args.partial)
            if path is None:
                print(f"{table.name}: incomplete, not assembled (rerun the same command to resume)")
                continue
            md = render(path)
            atomic.write_text(path.with_suffix(".md"), md)
            print(f"\n{md}")
        print(f"{ran} runs in {wall:.1f} s wall ({skipped} skipped, {len(errors)} failed)")
        for e in errors:
            print(e, file=sys.stderr)
        return 1 if errors else 0
    except (ValueError, FileNotFoundError) as e:
        print(f"xpnet.reproduce: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        why = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"xpnet.reproduce: {why}; finished runs are kept, rerun the same command to resume", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def render_tables(tables: Sequence[Table], out: pathlib.Path) -> int:
    """``render``: each assembled table's Markdown, printed and written beside its JSON; 1 when one is missing."""
    missing = [t.name for t in tables if not (out / f"{t.name}.json").exists()]
    for t in tables:
        path = out / f"{t.name}.json"
        if path.exists():
            md = render(path)
            atomic.write_text(path.with_suffix(".md"), md)
            print(md)
    if missing:
        print(f"xpnet.reproduce: not yet assembled in {out}: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

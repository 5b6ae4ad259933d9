"""The figures of a ``benchmarks/gpu_check.sh`` run as Markdown, for docs/benchmarks.md.

    python benchmarks/gpu_figures.py OUT_DIR      # writes OUT_DIR/figures.md

Every number comes from a raw file in OUT_DIR (``bench_*.json`` from ``xpnet bench``, ``train_*.json``
histories), and the page names them, with the machine (``env.txt``) and the command (``command.txt``).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

from xpnet.tables import markdown_table

FIXED = ("backend", "device", "kernels", "network", "batch", "dtype")


def _cell(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def bench_table(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown table: the fixed columns, then every timing (``*_ms``) and ratio (``a/b``) found."""
    extra: list[str] = []
    for r in rows:
        extra += [k for k in r if k not in FIXED and k not in extra and (k.endswith("_ms") or "/" in k)]
    cols = [c for c in FIXED if any(c in r for r in rows)] + extra
    return markdown_table(cols, [[_cell(r.get(c, "–")) for c in cols] for r in rows]).splitlines()


def figures(out: pathlib.Path) -> str:
    """The Markdown page for the run in ``out``."""
    text = ["# GPU check figures", ""]
    command = out / "command.txt"
    if command.exists():
        text += [f"Command: `{command.read_text().strip()}`", ""]
    env = out / "env.txt"
    if env.exists():
        text += ["Machine and versions (env.txt):", "", "```", env.read_text().strip(), "```", ""]
    for path in sorted(out.glob("bench_*.json")):
        data = json.loads(path.read_text())
        text += [
            f"## {path.stem} (raw: {path.name})",
            "",
            f"{data.get('date', '?')}, {data.get('machine', '?')}, Python {data.get('python', '?')}, "
            f"NumPy {data.get('numpy', '?')}; medians in ms",
            "",
        ]
        text += bench_table(data.get("rows", []))
        head = data.get("numgrad_vs_backprop")
        if head:
            text += [
                "",
                f"Numerical gradient {head['numerical_s'] * 1e3:.1f} ms vs backprop "
                f"{head['backprop_s'] * 1e3:.3f} ms ({head['ratio']:.0f}x)",
            ]
        text.append("")
    trains = sorted(out.glob("train_*.json"))
    if trains:
        body = []
        for path in trains:
            h = json.loads(path.read_text())
            records = h.get("records", [])
            accs = [r["test_acc"] for r in records if r.get("test_acc") is not None]
            backend = h.get("config", {}).get("backend", "?")
            seconds = f"{sum(r['seconds'] for r in records):.1f}"
            scores = [f"{100 * accs[-1]:.2f}", f"{100 * max(accs):.2f}"] if accs else ["–", "–"]
            body.append([path.name, backend if accs else "?", str(len(records)), *scores, seconds if accs else "–"])
        header = ["run", "backend", "epochs", "final test acc", "best test acc", "seconds"]
        text += ["## Training runs", "", markdown_table(header, body)]
        text.append("")
    return "\n".join(text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/gpu_figures.py OUT_DIR", file=sys.stderr)
        return 2
    out = pathlib.Path(argv[0])
    (out / "figures.md").write_text(figures(out))
    print(f"figures written to {out / 'figures.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

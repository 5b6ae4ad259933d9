"""Every code block of README.md and docs/*.md runs as written on a CPU machine.

- ```python blocks: each page's blocks run in order in one fresh interpreter (later blocks use earlier
  ones' names), in a temporary folder. Shortened where they would run for minutes: ``epochs=N`` →
  ``epochs=1``, loops over ``range(N ≥ 1000)`` → ``range(20)``.
- shell blocks (```sh, ```bash, ```console): every ``xpnet ...`` command runs as a real command line,
  shortened: ``--epochs 1``; ``compare`` lists cut to two values; the CNNs on the digits; ``xpnet
  bench`` on numpy's tiny network.
  Other lines (``pip install``, ``python -m pytest ...``) are not run here.
- Blocks that need MNIST get it from ``../shared/data`` (``$XPNET_DATA``; skipped, saying so, where
  it is absent); ``xpnet data`` finds the files there already (no network: mirrors point nowhere).
- A block or command skipped for what it needs skips the page's later ones too (they may use its
  names or files).
- Marks, on the line before a block: ``<!-- gpu -->`` (or the info string ``python gpu``): not run;
  ``<!-- requires: torch, ... -->``: skipped where a module is missing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest
from shared_data import NO_MNIST, ROOT, shared_data

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)
MARK = re.compile(r"<!--\s*(gpu|requires:\s*([\w\s,.]+?))\s*-->")
SHELL = {"sh", "bash", "shell", "console"}
NEEDS_DATA = re.compile(r"load_(fashion_)?mnist|--dataset[ =](fashion-)?mnist|^xpnet data ", re.MULTILINE)


@dataclasses.dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    gpu: bool
    requires: list[str]


def blocks(path) -> list[Block]:
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        info = m.group("info").strip().split()
        indent = len(m.group("indent"))
        code = "\n".join(line[indent:] for line in m.group("body").splitlines())
        out.append(
            Block(
                page=path.name,
                line=text.count("\n", 0, m.start()) + 1,
                lang=info[0] if info else "",
                code=code,
                gpu="gpu" in info[1:] or bool(mark and mark.group(1) == "gpu"),
                requires=[r.strip() for r in (mark.group(2) or "").split(",") if r.strip()] if mark else [],
            )
        )
    return out


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XPNET_BACKEND", "XPNET_MIRRORS")}
    data = shared_data()
    env.update(MPLBACKEND="Agg", HOME=str(tmp_path / "home"), XPNET_MIRRORS="http://127.0.0.1:9/")  # no network
    if data is not None:
        env["XPNET_DATA"] = str(data)
    return env


def _skip_reason(block: Block) -> str | None:
    missing = [m for m in block.requires if importlib.util.find_spec(m) is None]
    if missing:
        return f"{block.page}:{block.line} needs {', '.join(missing)}"
    if NEEDS_DATA.search(block.code):
        if "fashion" in block.code and shared_data("fashion-mnist") is None:
            return f"{block.page}:{block.line} needs Fashion-MNIST, which is not in the shared data"
        if shared_data("mnist") is None:
            return f"{block.page}:{block.line}: {NO_MNIST}"
    return None


def shorten_python(code: str) -> str:
    code = re.sub(r"\bepochs=\d+", "epochs=1", code)
    return re.sub(r"\brange\(\d{4,}\)", "range(20)", code)


def _set(argv: list[str], option: str, value: str | None) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (``None``: removed with its values)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == option or argv[i].startswith(option + "="):
            i += 1
            while "=" not in argv[i - 1] and i < len(argv) and not argv[i].startswith("--"):
                i += 1  # its value(s): compare takes space-separated lists
            continue
        out.append(argv[i])
        i += 1
    return out + ([option, value] if value is not None else [])


def _two_values(argv: list[str]) -> list[str]:
    """``compare``'s lists cut to their first two values (``relu,swish,mish`` → ``relu,swish``)."""
    out, count = [], 0
    for a in argv:
        count = 0 if a.startswith("-") else count + 1
        if count <= 2:
            out.append(",".join(a.split(",")[:2]) if count else a)
    return out


def shorten_command(argv: list[str]) -> list[str]:
    """A documented ``xpnet`` command line, made to finish in seconds."""
    command = argv[1] if len(argv) > 1 else ""
    if command == "compare":
        argv = argv[:2] + _two_values(argv[2:])
    if command in ("train", "compare"):
        argv = _set(argv, "--epochs", "1")
        if any(m in argv for m in ("simple-cnn", "deep-cnn")):
            argv = _set(argv, "--dataset", "digits")
    if command == "bench":
        for option in ("--backend", "--device", "--network", "--rounds", "--min-time"):
            argv = _set(argv, option, None)
        argv = [a for a in argv if a != "--quick"] + [
            "--backend",
            "numpy",
            "--network",
            "tiny",
            "--rounds",
            "1",
            "--min-time",
            "0.01",
            "--no-numgrad",
        ]
    return argv


def commands(block: Block) -> list[list[str]]:
    """The ``xpnet`` command lines of a shell block (continuations joined, comments and ``$ `` dropped)."""
    out = []
    for line in block.code.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("$ ")
        argv = shlex.split(line, comments=True) if line else []
        if argv[:1] == ["xpnet"]:
            out.append(argv)
    return out


def _pages(langs):
    return [pytest.param(p, id=p.name) for p in PAGES if any(b.lang in langs for b in blocks(p))]


def _python(folder, *args):
    """``python *args`` in ``folder`` with the docs' environment, output captured."""
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=_env(folder), capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.parametrize("page", _pages({"python"}))
def test_python_blocks_run(page, tmp_path):
    chosen, skipped, after = [], [], None
    for b in blocks(page):
        if b.lang != "python":
            continue
        reason = "GPU only" if b.gpu else after or _skip_reason(b)
        if reason and not b.gpu and after is None:
            after = f"after the skipped block {b.page}:{b.line}"  # later blocks may use its names
        (skipped if reason else chosen).append((b, reason))
    if not chosen:
        pytest.skip("; ".join(dict.fromkeys(r for _, r in skipped)))
    script = (
        "import sys, traceback\nns = {'__name__': '__main__'}\n"
        f"for label, code in {[(f'{b.page}:{b.line}', shorten_python(b.code)) for b, _ in chosen]!r}:\n"
        "    try:\n        exec(compile(code, label, 'exec'), ns)\n"
        "    except BaseException:\n        traceback.print_exc()\n        sys.exit(f'FAILED: the block at {label}')\n"
    )
    run = _python(tmp_path, "-c", script)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]


@pytest.mark.parametrize("page", _pages(SHELL))
def test_shell_commands_run(page, tmp_path):
    ran, skipped, after = 0, [], None
    for b in blocks(page):
        if b.lang not in SHELL:
            continue
        for argv in commands(b):
            reason = "GPU only" if b.gpu else after or _skip_reason(dataclasses.replace(b, code=shlex.join(argv)))
            if reason and not b.gpu and after is None:
                after = f"after the skipped command at {b.page}:{b.line}"  # later ones may use its files
            if reason:
                skipped.append(reason)
                continue
            short = shorten_command(argv)
            run = _python(tmp_path, "-m", "xpnet", *short[1:])
            assert run.returncode == 0, (
                f"{b.page}:{b.line}: {shlex.join(short)}\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
            )
            ran += 1
    if not ran:
        pytest.skip("no xpnet command to run here" + (f" ({'; '.join(dict.fromkeys(skipped))})" if skipped else ""))


def test_the_extraction_sees_marks_and_indented_blocks(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "a\n\n<!-- gpu -->\n```python\nimport cupy\n```\n\n- item\n\n  ```sh\n  xpnet train \\\n"
        "      --epochs 50  # long\n  pip install x\n  ```\n<!-- requires: torch, mpi4py -->\n"
        "```python gpu\nx = 1\n```\n"
    )
    gpu, sh, req = blocks(page)
    assert (gpu.lang, gpu.gpu, gpu.line) == ("python", True, 4)
    assert commands(sh) == [["xpnet", "train", "--epochs", "50"]]
    assert shorten_command(commands(sh)[0]) == ["xpnet", "train", "--epochs", "1"]
    assert req.gpu and req.requires == ["torch", "mpi4py"]
    assert shorten_command(
        [
            "xpnet",
            "compare",
            "--model",
            "simple-cnn",
            "--dataset",
            "mnist",
            "--lr",
            "0.1",
            "0.5",
            "0.9",
            "--activation",
            "relu,swish,mish",
        ]
    ) == [
        "xpnet",
        "compare",
        "--model",
        "simple-cnn",
        "--lr",
        "0.1",
        "0.5",
        "--activation",
        "relu,swish",
        "--epochs",
        "1",
        "--dataset",
        "digits",
    ]
    assert shorten_python("fit(epochs=50)\nfor i in range(10000): pass") == "fit(epochs=1)\nfor i in range(20): pass"

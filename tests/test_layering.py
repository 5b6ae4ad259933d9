"""The folders are the layers (issue 27): no library module imports the command line, argparse lives only in
``xpnet/cli/``, and every old module name imports the very module at its new home."""

import ast
import importlib
import os
import pathlib
import subprocess
import sys

import pytest

import xpnet
from xpnet._moved import GATHERED, MOVED, new_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "xpnet"
CLI_SIDE = ("cli/", "_moved.py", "__main__.py")
"""The command line itself, the old names (``xpnet.reproduce`` is the command) and ``python -m xpnet``."""


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, anywhere in it, as an absolute name: relative
    imports resolved, ``from a import b`` giving both ``a`` and ``a.b``, and old names (``xpnet.cli_checks``)
    mapped to their new homes."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return {new_name(n) or n for n in names}


def library_modules():
    for path in sorted(PKG.rglob("*.py")):
        relative = path.relative_to(PKG).as_posix()
        if not relative.startswith(CLI_SIDE):
            yield path


def _imports_of(path: pathlib.Path) -> set[str]:
    return imported(path.read_text(), module_name(path), path.name == "__init__.py")


def test_the_import_reader_sees_each_way_to_import_the_cli():
    """The checks below would see a library module that imports the command line, however it is written."""
    cases = {
        "from ..cli import checks": "xpnet.cli",
        "from .. import cli": "xpnet.cli",
        "from ..cli.checks import Parser": "xpnet.cli.checks",
        "import xpnet.cli.main": "xpnet.cli.main",
        "from xpnet.cli import main": "xpnet.cli",
        "from .. import cli_checks": "xpnet.cli.checks",  # an old name of a CLI module
        "import xpnet.reproduce": "xpnet.cli.reproduce",
        "def f():\n    from ..cli import checks as C\n": "xpnet.cli",  # inside a function too
    }
    for source, cli_module in cases.items():
        assert cli_module in imported(source, "xpnet.experiments.bench"), source
    assert "xpnet.cli" in imported("from . import cli", "xpnet", is_package=True)
    assert "argparse" in imported("import argparse as ap", "xpnet.experiments.reproduce")
    assert "argparse" in imported("from argparse import ArgumentParser", "xpnet.experiments.reproduce")


@pytest.mark.parametrize("path", list(library_modules()), ids=lambda p: p.relative_to(PKG).as_posix())
def test_no_library_module_imports_the_command_line(path):
    cli = sorted(n for n in _imports_of(path) if n == "xpnet.cli" or n.startswith("xpnet.cli."))
    assert not cli, f"{path.relative_to(ROOT)} imports the command line ({', '.join(cli)})"


@pytest.mark.parametrize("path", list(library_modules()), ids=lambda p: p.relative_to(PKG).as_posix())
def test_argparse_only_in_the_command_line(path):
    assert "argparse" not in _imports_of(path), f"{path.relative_to(ROOT)} parses a command line (argparse)"


def test_the_checks_cover_the_library():
    """The parametrized checks above read the library's folders, and leave out only the CLI side."""
    checked = {p.relative_to(PKG).as_posix() for p in library_modules()}
    for expected in ("experiments/bench.py", "experiments/reproduce.py", "training/trainer.py", "__init__.py"):
        assert expected in checked
    assert not any(p.startswith("cli/") for p in checked)
    assert any(p.startswith("cli/") for p in (q.relative_to(PKG).as_posix() for q in PKG.rglob("*.py")))


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_name_is_the_module_at_its_new_home(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert sys.modules[old] is sys.modules[MOVED[old]]


@pytest.mark.parametrize("old", sorted(GATHERED))
def test_gathered_old_module_gives_each_name_from_its_home(old):
    """``xpnet.controls`` and ``xpnet.trainer`` held names that live in several modules now: each name is the
    very object at its home, and ``from old import *`` gives them all."""
    module = importlib.import_module(old)
    expected = {name: home for home, names in GATHERED[old].items() for name in names}
    assert sorted(module.__all__) == sorted(expected)
    for name, home in expected.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
    namespace: dict = {}
    exec(f"from {old} import *", namespace)
    assert set(expected) <= set(namespace)


def test_old_names_in_a_fresh_process_submodules_included():
    """Imported first under their old names (as old code does), the modules are still one object each; a
    submodule of a moved package follows it."""
    script = (
        "import importlib, sys\n"
        "from xpnet._moved import MOVED\n"
        "import xpnet.layers.conv as old\n"
        "import xpnet.network.layers.conv as new\n"
        "assert old is new and sys.modules['xpnet.layers.conv'] is new, (old, new)\n"
        "for name in sorted(MOVED):\n"
        "    assert importlib.import_module(name) is importlib.import_module(MOVED[name]), name\n"
        "print(len(MOVED))\n"
    )
    assert _python("-c", script).strip() == str(len(MOVED))


def test_reproduce_keeps_its_old_name_and_library():
    """``xpnet.reproduce`` is the command now; the library's names are still found on it."""
    from xpnet import reproduce as R
    from xpnet.experiments import reproduce as library

    assert R.__name__ == "xpnet.cli.reproduce"
    assert R.run_task is library.run_task and R.verdict is library.verdict and R.TABLES is library.TABLES
    assert not hasattr(library, "main")  # the library has no command of its own


def _python(*args: str) -> str:
    """``python ARGS`` in a fresh process with this checkout's xpnet: its output (a failure fails the test)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_python_m_old_reproduce_name_runs():
    out = _python("-m", "xpnet.reproduce", "list")
    assert out.startswith("act-lr0.1 ") and "rows ×" in out


def test_python_m_xpnet_version_runs():
    assert _python("-m", "xpnet", "--version") == f"xpnet {xpnet.__version__}\n"


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "docs" / "figures" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_import_circle_counting_package_faces():
    """No files import each other in a loop, counting what the packages' ``__init__.py`` re-export
    (``python docs/figures/import_graph.py`` prints the graph)."""
    assert _import_graph().measure(PKG)["circles"] == []


def test_the_graph_sees_a_circle_through_a_package_face(tmp_path):
    """The measure above finds a loop that runs through an ``__init__.py``'s re-export."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import B\n")
    (pkg / "sub" / "b.py").write_text("from ..a import A\nB = 1\n")
    (pkg / "a.py").write_text("from .sub import B\nA = 2\n")
    measured = _import_graph().measure(pkg)
    assert measured["circles"] == [["pkg.a", "pkg.sub", "pkg.sub.b"]]
    assert measured["files"] == 4


def test_an_old_name_reloads_the_module_and_keeps_its_spec():
    """``importlib.reload`` under the old name runs the module again, and the module keeps its own spec
    (``importlib.resources`` reads a moved package through it). In a fresh process: a reload makes new
    classes, which the rest of this session's modules would not know."""
    script = (
        "import importlib, importlib.resources, sys\n"
        "import xpnet.layers, xpnet.losses\n"
        "import xpnet.network.losses as losses\n"
        "assert losses.__spec__.name == 'xpnet.network.losses', losses.__spec__\n"
        "assert xpnet.layers.__spec__.submodule_search_locations  # still a package\n"
        "assert importlib.resources.files('xpnet.network.layers').is_dir()\n"
        "before = losses.SoftmaxCrossEntropy\n"
        "importlib.reload(xpnet.losses)\n"
        "assert losses.SoftmaxCrossEntropy is not before  # ran again, in the one module object\n"
        "assert sys.modules['xpnet.losses'] is losses\n"
        "print('ok')\n"
    )
    assert _python("-c", script).strip() == "ok"


@pytest.mark.parametrize("old", sorted(n.removeprefix("xpnet.") for n in (*MOVED, *GATHERED) if n.count(".") == 1))
def test_an_old_name_is_an_attribute_of_the_package(old):
    """``import xpnet; xpnet.kernels.use(...)`` works as it did when every module sat in ``xpnet/``."""
    assert getattr(xpnet, old) is importlib.import_module(f"xpnet.{old}")


def test_names_the_old_modules_gave_are_still_there():
    import xpnet.checkpoint
    import xpnet.cli
    import xpnet.datasets
    import xpnet.experiments

    for module, names in {
        xpnet.checkpoint: ("SIGNALS", "Interrupted", "Run", "info", "CheckpointInUse", "lock_path"),
        xpnet.datasets: ("DOWNLOADS", "DEADLINE_TIMEOUTS", "TRANSPORT_ERRORS", "download", "cache_dir", "mirrors"),
        xpnet.experiments: ("SETTINGS", "run_config", "run_seeds", "load_runs", "default_config"),
        xpnet.cli: ("main", "cmd_train", "cmd_compare", "cmd_data", "COMMANDS", "run_config"),
    }.items():
        missing = [name for name in names if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)


def test_the_old_controls_module_loads_no_command_line():
    """``from xpnet.controls import train_step`` imports the step's home, not the CLI (``timed_rows``, the
    one CLI name it gives, is imported when it is first used)."""
    script = (
        "import sys\n"
        "from xpnet.controls import train_step, cli_options\n"
        "import xpnet.controls as c\n"
        "assert not [m for m in sys.modules if m.startswith('xpnet.cli')], sorted(sys.modules)\n"
        "assert c.timed_rows.__module__ == 'xpnet.cli.compare'\n"
        "print('ok')\n"
    )
    assert _python("-c", script).strip() == "ok"

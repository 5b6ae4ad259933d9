"""Layers, losses, optimizers and the model never name an array library: only the backend does."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "xpnet"
FORBIDDEN = {"numpy", "cupy", "torch", "array_api_strict", "cupyx", "jax"}
PURE = ["layers", "losses.py", "optimizers.py", "model.py", "ops.py", "models.py", "clipping.py", "schedules.py"]


def _modules():
    for name in PURE:
        path = PKG / name
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.exists():
            yield path


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(PKG)))
def test_no_array_library_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for n in names:
            assert n.split(".")[0] not in FORBIDDEN, f"{path.name} imports {n}"


def test_the_check_sees_the_modules():
    assert len(list(_modules())) >= 6

"""Layers, losses, optimizers and the model never name an array library: only the backend does."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "xpnet"
FORBIDDEN = {"numpy", "cupy", "torch", "array_api_strict", "cupyx", "jax"}
PURE = [
    "network/layers",
    "network/losses.py",
    "network/model.py",
    "network/ops.py",
    "network/models.py",
    "optim/optimizers.py",
    "optim/clipping.py",
    "optim/schedules.py",
]


def _modules():
    for name in PURE:
        path = PKG / name
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.exists():
            yield path


def _absolute_imports(path):
    """The modules ``path`` imports by absolute name (``import a.b``, ``from a.b import c``), anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(PKG)))
def test_no_array_library_imports(path):
    for n in _absolute_imports(path):
        assert n.split(".")[0] not in FORBIDDEN, f"{path.name} imports {n}"


def test_the_check_sees_the_modules():
    assert len(list(_modules())) >= 6


LIBRARY_NAMES = {"numpy", "cupy", "torch", "array_api_strict"}
ADAPTER_PACKAGE = PKG / "backends"


def _outside_backends():
    return [p for p in sorted(PKG.rglob("*.py")) if ADAPTER_PACKAGE not in p.parents]


@pytest.mark.parametrize("path", _outside_backends(), ids=lambda p: str(p.relative_to(PKG)))
def test_no_branch_on_a_library_name_outside_the_backends(path):
    """``if backend.name == "cupy"``-style branches belong in the library's adapter (xpnet/backends/)."""

    def is_backend_name(e: ast.expr) -> bool:  # backend.name, self.name, name, backend, b
        return (isinstance(e, ast.Attribute) and e.attr == "name") or (
            isinstance(e, ast.Name) and e.id in {"name", "backend", "b", "lib", "library"}
        )

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if not any(is_backend_name(s) for s in sides):
                continue
            for side in sides:
                names = [side] if isinstance(side, ast.Constant) else list(getattr(side, "elts", []))
                for n in names:
                    assert not (isinstance(n, ast.Constant) and n.value in LIBRARY_NAMES), (
                        f"{path.relative_to(PKG)}:{node.lineno} branches on the library name {n.value!r}"
                    )


@pytest.mark.parametrize("path", _outside_backends(), ids=lambda p: str(p.relative_to(PKG)))
def test_device_libraries_are_imported_by_their_adapters_only(path):
    """CuPy, cupyx and array-api-strict appear only in xpnet/backends/; torch only there and as the
    benchmark's peer (bench.py, which times PyTorch eager beside xpnet)."""
    allowed = {"torch"} if path.name == "bench.py" else set()
    for n in _absolute_imports(path):
        top = n.split(".")[0]
        assert top not in {"cupy", "cupyx", "torch", "array_api_strict"} - allowed, f"{path.name} imports {n}"


def test_the_backends_package_is_at_the_bottom():
    """Nothing in xpnet/backends/ imports from the rest of xpnet (the import graph points one way)."""
    for path in sorted(ADAPTER_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name} imports from outside xpnet/backends/"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("xpnet"), f"{path.name} imports {node.module}"

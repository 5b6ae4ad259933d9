"""``xpnet.__version__``, in a module of its own so that any module may import it without the package root."""


def _version() -> str:
    """The installed distribution's version; in a source checkout on ``sys.path``, pyproject.toml's."""
    from importlib import metadata

    try:
        return metadata.version("xpnet")
    except metadata.PackageNotFoundError:
        import pathlib
        import re

        pyproject = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
        found = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.M) if pyproject.exists() else None
        return found.group(1) if found else "0+unknown"


__version__ = _version()

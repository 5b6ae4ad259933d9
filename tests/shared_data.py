"""Where the tests find the real datasets: ``../shared/data`` beside the repository (or ``$XPNET_TEST_DATA``)."""

from __future__ import annotations

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def shared_data(name: str = "") -> pathlib.Path | None:
    """The folder ``<shared data>/<name>`` if it exists here, else None (the caller skips, saying why)."""
    bases = [ROOT.parent / "shared" / "data"]
    if os.environ.get("XPNET_TEST_DATA"):
        bases.insert(0, pathlib.Path(os.environ["XPNET_TEST_DATA"]))
    for base in bases:
        if (base / name).is_dir():
            return base / name
    return None


NO_MNIST = "the real MNIST files (../shared/data/mnist beside the repository, or $XPNET_TEST_DATA/mnist) are not here"

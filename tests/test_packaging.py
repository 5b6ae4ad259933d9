"""Packaging facts a release depends on: one version, a license, the typed marker."""

import pathlib
import re

import xpnet

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def test_version_comes_from_pyproject():
    declared = re.search(r'^version = "([^"]+)"', PYPROJECT, re.M)
    assert declared is not None
    assert xpnet.__version__ == declared.group(1)


def test_license_file_and_expression():
    assert re.search(r'^license = "MIT"$', PYPROJECT, re.M)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_package_is_marked_typed():
    assert (ROOT / "xpnet" / "py.typed").exists()
    assert '"py.typed"' in PYPROJECT

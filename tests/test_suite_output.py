"""The README test command's summary: failures and errors in full, skips as one count per reason (issue 24)."""

import os
import pathlib
import re
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parent


def test_addopts_report_failures_and_errors_not_every_skip():
    pyproject = (TESTS.parent / "pyproject.toml").read_text()  # tomllib is Python 3.11+; the floor is 3.10
    addopts = re.search(r'^addopts = "([^"]*)"', pyproject, re.M).group(1).split()
    assert "-rfE" in addopts and "-ra" not in addopts


def test_skips_are_counted_per_reason(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "from xptest import skip_summary\n\n\ndef pytest_terminal_summary(terminalreporter):\n"
        "    skip_summary(terminalreporter)\n"
    )
    (tmp_path / "test_some.py").write_text(
        "import pytest\n\n\n@pytest.mark.parametrize('i', range(5))\n"
        "def test_a(i):\n    pytest.skip('no GPU here')\n\n\n"
        "def test_b():\n    pytest.skip('no MPI here')\n\n\ndef test_c():\n    assert 1 == 2, 'a real failure'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rfE", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    out = run.stdout
    assert run.returncode == 1, out
    assert "FAILED test_some.py::test_c - AssertionError: a real failure" in out  # failures in full
    assert "SKIPPED [" not in out  # no line per skipped test
    assert "6 skipped, by reason" in out
    assert "    5 × no GPU here" in out and "    1 × no MPI here" in out

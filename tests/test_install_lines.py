"""Install lines that work from a clone (issue 24 item 9): xpnet is not on the package index, so the README
and the docs install its extras from the checkout (``pip install ".[mpi]"``); CI runs the README's MPI line."""

import re

from shared_data import ROOT

PAGES = [ROOT / "README.md", *(ROOT / "docs" / name for name in ("distributed.md", "backends.md", "tutorial.md"))]


def test_docs_install_extras_from_the_checkout():
    """Install commands (a code span or a shell line that starts with ``pip install``) name the checkout;
    quoted error messages may keep ``xpnet[...]``: xpnet is installed by the time they show."""
    for page in PAGES:
        text = page.read_text()
        spans = re.findall(r"`pip install [\"']?xpnet\[[^`]*`", text)
        lines = [line for line in text.splitlines() if re.match(r"\s*pip install [\"']?xpnet\[", line)]
        commands = [line for line in lines if "Install it with" not in line and not line.startswith("  pip")]
        assert not spans and not commands, (page.name, spans, commands)
    assert 'pip install ".[mpi]" mpich' in (ROOT / "README.md").read_text()
    assert 'pip install ".[mpi]" mpich' in (ROOT / "docs" / "distributed.md").read_text()


def test_ci_runs_the_readme_mpi_line_as_written():
    ci = (ROOT / ".ci" / "run").read_text()
    line = re.search(r"^README_MPI='([^']*)'", ci, re.M).group(1)
    assert line in (ROOT / "README.md").read_text()
    assert 'eval "$README_MPI"' in ci and "pip install --quiet mpi4py mpich" not in ci

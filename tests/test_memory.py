"""Memory (issue 26 item 13): the command line refuses a model that cannot fit before building it; the
Python API names the layer whose creation ran out of memory. Every run that could allocate much is a
subprocess under an address-space limit (RLIMIT_AS), so a failure can never exhaust the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from xpnet import memory

resource = pytest.importorskip("resource", reason="RLIMIT_AS is POSIX")
LIMIT = 2 * 10**9  # bytes of address space: Python, NumPy and xpnet's command line fit in ~0.2 GB of it


def limited(*args: str, limit: int = LIMIT, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ARGS`` under ``ulimit -v`` = ``limit`` (one BLAS thread: thread stacks count against it)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], preexec_fn=cap, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_cli_refuses_hidden_sizes_beyond_the_memory_it_may_use_before_building():
    run = limited("-m", "xpnet", "train", "--hidden", "30000,30000", "--epochs", "1")
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpnet train: error: --hidden: an MLP of hidden sizes 30000,30000")
    assert "needs about" in lines[0] and "ulimit -v" in lines[0]


def test_cli_still_trains_what_fits_under_the_same_limit():
    run = limited("-m", "xpnet", "train", "--epochs", "1", "--quiet")
    assert run.returncode == 0, run.stderr[-2000:]


def test_python_api_names_the_layer_that_ran_out_of_memory():
    code = textwrap.dedent(
        """
        import xpnet
        try:
            xpnet.layers.Affine(30000, 30000)
        except MemoryError as e:
            print(e)
        """
    )
    run = limited("-c", code)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("Affine(30000, 30000): out of memory creating the layer: weights of "), run.stdout
    assert "(30000, 30000) (900,000,000 values: 7.20 GB drawn as float64" in run.stdout


def test_available_memory_counts_the_address_space_limit():
    code = "from xpnet import memory; print(memory.available())"
    run = limited("-c", code)
    assert run.returncode == 0, run.stderr
    assert 0 < int(run.stdout) < LIMIT


def test_mlp_estimate_counts_parameters_gradients_and_optimizer_state():
    sizes = [784, 100, 50, 10]
    n = 784 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10
    sgd = memory.mlp_bytes(sizes, 100, itemsize=4)
    adam = memory.mlp_bytes(sizes, 100, itemsize=4, optimizer_slots=2)
    assert sgd["parameters"] == n * 4 * 2 and adam["parameters"] == n * 4 * 4
    assert memory.mlp_bytes(sizes, 100, itemsize=8)["total"] > sgd["total"]
    big = memory.mlp_bytes([784, 30000, 30000, 10], 100)
    assert big["total"] > 9e9  # 7.4 GB of parameters and gradients, 2.4 GB of an evaluation batch
    assert memory.refusal(big, 8 * 10**9, "it").startswith("it needs about 14.5 GB")
    assert memory.refusal(sgd, 8 * 10**9, "it") is None and memory.refusal(big, None, "it") is None

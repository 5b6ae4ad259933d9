"""A full training step (forward, loss, backward, SGD update): xpnet vs PyTorch eager vs the GEMM bound
(the step's matrix products alone: a lower bound, not a physical limit).

Groups ``step-small`` (784-100-50-10, batch 100), ``step-large`` (784-2048-2048-10, batch 1024),
``step-simplecnn`` (the book's SimpleConvNet, batch 100) and ``step-deepcnn`` (DeepConvNet, batch 100).
Each xpnet and PyTorch case records the peak memory of one step in ``extra_info`` (see
:func:`xpnet.bench.peak_memory`). The interleaved, ratio-taking runner is ``xpnet bench``; this suite
gives pytest-benchmark's tables and JSON. xpnet's step runs on each kernel path of the backend (native
kernels where the adapter has them, and the array-API reference), one row each.
"""

from __future__ import annotations

import pytest
from benchutil import QUICK, torch_device

from xpnet.bench import NETWORKS, gemm_step, peak_memory, torch_step, xpnet_step

STEPS = ["small", "large", "simplecnn", "deepcnn"]


def _network(backend, name, benchmark):
    sizes, batch = NETWORKS[name]
    if not benchmark.enabled and name != "small":  # the test run only exercises the code: small batches
        batch = 8
    cnn = "cnn" in name
    if QUICK:
        return NETWORKS["tinycnn"] if cnn else ((sizes[0], 16, 10), 8)
    if backend.checker and name != "small":
        if not cnn:
            pytest.skip("array_api_strict is a conformance backend: small sizes only")
        return NETWORKS["tinycnn"]
    return sizes, batch


def _run(benchmark, backend, step, traced=True):
    if benchmark.enabled:  # the memory probe runs the step twice: only in real benchmark runs
        benchmark.extra_info.update(peak_memory(step, backend, traced))
    benchmark(step)


@pytest.mark.parametrize("network", STEPS)
class TestStep:
    def test_xpnet(self, benchmark, backend, kernels_path, network):
        benchmark.group = f"step-{network}"
        _run(benchmark, backend, xpnet_step(backend, *_network(backend, network, benchmark)))

    def test_gemm_bound(self, benchmark, backend, network):
        benchmark.group = f"step-{network}"
        benchmark(gemm_step(backend, *_network(backend, network, benchmark)))

    def test_torch_peer(self, benchmark, backend, network):
        if backend.checker:
            pytest.skip("PyTorch CPU, the peer, is measured beside numpy and torch")
        benchmark.group = f"step-{network}"
        _run(
            benchmark, backend, torch_step(torch_device(backend), *_network(backend, network, benchmark)), traced=False
        )

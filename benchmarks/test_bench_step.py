"""A full training step (forward, loss, backward, SGD update): xpnet vs PyTorch eager vs the GEMM floor.

Groups ``step-small`` (784-100-50-10, batch 100) and ``step-large`` (784-2048-2048-10, batch 1024).
The interleaved, ratio-taking runner is ``xpnet bench``; this suite gives pytest-benchmark's tables.
"""

from __future__ import annotations

import pytest

from xpnet.bench import NETWORKS, floor_step, torch_step, xpnet_step

from benchutil import QUICK, torch_device


def _network(backend, name):
    sizes, batch = NETWORKS[name]
    if QUICK:
        return (sizes[0], 16, 10), 8
    if backend.checker and name == "large":
        pytest.skip("array_api_strict is a conformance backend: small sizes only")
    return sizes, batch


@pytest.mark.parametrize("network", ["small", "large"])
class TestStep:
    def test_xpnet(self, benchmark, backend, network):
        benchmark.group = f"step-{network}"
        benchmark(xpnet_step(backend, *_network(backend, network)))

    def test_floor(self, benchmark, backend, network):
        benchmark.group = f"step-{network}"
        benchmark(floor_step(backend, *_network(backend, network)))

    def test_torch_peer(self, benchmark, backend, network):
        if backend.checker:
            pytest.skip("PyTorch CPU, the peer, is measured beside numpy and torch")
        benchmark.group = f"step-{network}"
        benchmark(torch_step(torch_device(backend), *_network(backend, network)))

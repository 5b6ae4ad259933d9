"""Helpers shared by the benchmark modules (sizes, synchronised timing, the PyTorch peer's device)."""

from __future__ import annotations

import os

import pytest

QUICK = os.environ.get("XPNET_BENCH_QUICK") == "1"


def big(backend, full: int, strict: int) -> int:
    """A size: ``full`` normally, ``strict`` on array_api_strict (slow by design), tiny in quick mode."""
    if QUICK:
        return max(2, min(full, strict) // 8)
    return strict if backend.checker else full


def synced(backend, f):
    """``f`` followed by a device synchronisation (a no-op on CPU backends)."""

    def run():
        out = f()
        backend.synchronize()
        return out

    return run


def torch_device(backend):
    """The torch device beside ``backend`` for the PyTorch peer, or skip."""
    pytest.importorskip("torch", reason="the PyTorch peer needs torch")
    from xpnet import bench

    device = bench.torch_device(backend)
    if device is None:
        pytest.skip(f"no PyTorch device beside {backend}")
    return device

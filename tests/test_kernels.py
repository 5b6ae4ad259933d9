"""The kernel switch (xpnet.kernels): modes, the environment variable, the adapters' hook."""

import pytest

import xpnet
from xpnet import kernels


def test_use_current_and_using():
    kernels.use("reference")
    assert kernels.current() == "reference"
    with kernels.using("native"):
        assert kernels.current() == "native"
    assert kernels.current() == "reference"
    with pytest.raises(ValueError, match="'native' or 'reference'.*'fast'"):
        kernels.use("fast")
    assert kernels.current() == "reference"


def test_for_backend_follows_the_mode():
    for name in ("numpy", "array_api_strict", "torch"):
        try:
            backend = xpnet.set_backend(name)
        except xpnet.BackendUnavailableError:
            continue
        with kernels.using("reference"):
            assert kernels.for_backend(backend) is None
        with kernels.using("native"):
            assert kernels.for_backend(backend) is backend.native_kernels()
    assert xpnet.set_backend("array_api_strict").native_kernels() is None  # the checker never delegates


@pytest.mark.parametrize("value, mode", [("reference", "reference"), ("native", "native"), (None, "native")])
def test_the_environment_variable_sets_the_default(monkeypatch, value, mode):
    if value is None:
        monkeypatch.delenv("XPNET_KERNELS", raising=False)
    else:
        monkeypatch.setenv("XPNET_KERNELS", value)
    monkeypatch.setattr(kernels, "_mode", None)  # as in a fresh process: read on first use
    assert kernels.current() == mode


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("XPNET_KERNELS", "cudnn")
    monkeypatch.setattr(kernels, "_mode", None)
    with pytest.raises(ValueError, match=r"XPNET_KERNELS must be 'native' or 'reference', not 'cudnn'"):
        kernels.current()

import os
import subprocess
import sys

import numpy as np
import pytest

import xpnet
from xpnet.backend import BACKEND_NAMES


def test_default_is_numpy_float32():
    b = xpnet.get_backend()
    assert b.name == "numpy" and b.device == "cpu"
    assert xpnet.get_default_dtype() == "float32"
    assert xpnet.asarray([1.5]).dtype == np.float32


def test_unknown_backend_names_valid_ones():
    with pytest.raises(ValueError, match="unknown backend 'jax'.*numpy.*cupy.*torch.*array_api_strict"):
        xpnet.set_backend("jax")
    assert xpnet.get_backend().name == "numpy"


def test_unusable_backend_is_import_error_with_hint_and_keeps_previous(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(ImportError, match=r'pip install "xpnet\[cuda12\]"') as info:
        xpnet.set_backend("cupy")
    assert isinstance(info.value, xpnet.BackendUnavailableError)
    assert xpnet.get_backend().name == "numpy"
    assert "cupy" not in xpnet.available_backends()


def test_available_backends_lists_usable_ones():
    names = xpnet.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= set(BACKEND_NAMES)


def test_use_backend_restores_previous(cpu_backend):
    with xpnet.use_backend("numpy") as b:
        assert b.name == "numpy" and xpnet.get_backend().name == "numpy"
    assert xpnet.get_backend().name == cpu_backend.name


def test_use_backend_restores_after_error():
    with pytest.raises(RuntimeError), xpnet.use_backend("array_api_strict"):
        raise RuntimeError
    assert xpnet.get_backend().name == "numpy"


def test_env_var_sets_startup_backend():
    code = "import xpnet; print(xpnet.get_backend().name)"
    env = dict(os.environ, XPNET_BACKEND="array_api_strict")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "array_api_strict"


def test_set_default_dtype_rejects_unknown():
    with pytest.raises(ValueError, match="float32"):
        xpnet.set_default_dtype("int8")


def test_asarray_dtype_rules(backend):
    xp = backend.xp
    assert xpnet.asarray(np.ones(3)).dtype == xp.float32
    xpnet.set_default_dtype("float64")
    assert xpnet.asarray(np.ones(3, dtype=np.float32)).dtype == xp.float64
    assert xpnet.asarray(np.arange(3)).dtype == xp.int64
    assert xpnet.asarray(np.array([True])).dtype == xp.bool
    assert xpnet.asarray([1, 2]).dtype == xp.int64
    assert xpnet.asarray(np.ones(2), dtype="float32").dtype == xp.float32


def test_to_numpy_round_trip(backend):
    a = np.arange(6.0).reshape(2, 3)
    out = xpnet.to_numpy(xpnet.asarray(a, dtype="float64"))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, a)


def test_asarray_converts_between_backends(cpu_backend):
    with xpnet.use_backend("numpy"):
        a = xpnet.asarray(np.arange(4.0))
    b = xpnet.asarray(a)
    assert cpu_backend.owns(b)
    np.testing.assert_array_equal(xpnet.to_numpy(b), np.arange(4.0))


def test_same_seed_same_initial_weights_on_every_backend(backend):
    xpnet.seed(42)
    w = xpnet.to_numpy(xpnet.layers.Affine(4, 3).W)
    with xpnet.use_backend("numpy"):
        xpnet.seed(42)
        ref = xpnet.to_numpy(xpnet.layers.Affine(4, 3).W)
    np.testing.assert_allclose(w, ref, rtol=1e-6)


def test_seed_makes_runs_repeatable():
    xpnet.seed(3)
    a = xpnet.to_numpy(xpnet.layers.Affine(5, 5).W)
    xpnet.seed(3)
    b = xpnet.to_numpy(xpnet.layers.Affine(5, 5).W)
    np.testing.assert_array_equal(a, b)


def test_torch_device_argument():
    pytest.importorskip("torch", reason="torch not installed")
    b = xpnet.set_backend("torch", device="cpu")
    assert b.name == "torch" and str(b.device) == "cpu"
    with pytest.raises(ValueError, match="cpu"):
        xpnet.set_backend("numpy", device="cuda:0")


def test_cupy_without_a_cuda_device_is_a_clear_import_error(monkeypatch):
    """CuPy installed but no GPU answering: the error says so, with the install hint."""
    import types

    class CUDARuntimeError(RuntimeError):
        pass

    def no_device():
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(xpnet.BackendUnavailableError, match=r"no CUDA device answers.*xpnet\[cuda12\]"):
        xpnet.set_backend("cupy")
    fake.cuda.runtime.getDeviceCount = lambda: 0
    with pytest.raises(xpnet.BackendUnavailableError, match="no CUDA device was found"):
        xpnet.set_backend("cupy")
    assert xpnet.get_backend().name == "numpy"


def test_torch_missing_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails like a missing package
    with pytest.raises(xpnet.BackendUnavailableError, match=r'pip install "xpnet\[torch\]"'):
        xpnet.set_backend("torch")


@pytest.mark.parametrize(
    "spec, device_text",
    [
        ("array_api_strict:device1", "device1"),
        ("array_api_strict:CPU_DEVICE", "CPU_DEVICE"),
        ("torch:meta", "meta"),
        ("torch:cpu", "cpu"),
    ],
)
def test_devices_are_honoured(spec, device_text):
    name = spec.partition(":")[0]
    pytest.importorskip(name, reason=f"{name} not installed")
    b = xpnet.set_backend(spec)
    assert device_text in str(b.device)
    layer = xpnet.layers.Affine(3, 2)
    assert b.owns(layer.W) and device_text in str(layer.W.device)
    assert b.owns(xpnet.asarray(np.ones(2)))
    assert xpnet.set_backend(name, device=device_text) == b


@pytest.mark.parametrize(
    "name, device",
    [
        ("numpy", "cuda:0"),
        ("array_api_strict", "device3"),
        ("array_api_strict", "cpu"),
        ("torch", "gpu"),
        ("torch", "cuda:x"),
        ("torch", 3.5),
        ("cupy", "x"),
        ("cupy", -1),
    ],
)
def test_unknown_device_lists_the_valid_ones_and_keeps_the_previous_backend(name, device):
    xpnet.set_backend("array_api_strict", device="device1")
    previous = xpnet.get_backend()
    forms = xpnet.backends.ADAPTERS[name].device_forms
    with pytest.raises(ValueError, match=f"unknown device {device!r} for backend {name!r}.*valid devices"):
        xpnet.set_backend(name, device=device)
    assert forms and xpnet.get_backend() is previous


def test_spec_and_device_given_twice_is_an_error():
    with pytest.raises(ValueError, match="give one"):
        xpnet.set_backend("array_api_strict:device1", device="device2")


@pytest.mark.parametrize(
    "spec, expected", [("array_api_strict:device1", "array_api_strict device1"), ("torch:meta", "torch meta")]
)
def test_env_var_takes_a_device(spec, expected):
    pytest.importorskip(spec.partition(":")[0], reason="library not installed")
    code = (
        "import xpnet; b = xpnet.get_backend(); "
        'print(b.name, str(b.device).split("\'")[-2] if "\'" in str(b.device) else b.device)'
    )
    env = dict(os.environ, XPNET_BACKEND=spec)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_asarray_places_on_a_device():
    xpnet.set_backend("array_api_strict")
    a = xpnet.asarray([1.0, 2.0], device="device1")
    assert "device1" in str(a.device) and a.dtype == xpnet.get_backend().xp.float32
    assert xpnet.get_backend().owns(xpnet.asarray([1.0]))  # the backend's own device by default
    with pytest.raises(ValueError, match="unknown device"):
        xpnet.asarray([1.0], device="device9")


def test_host_data_enters_a_device_but_device_arrays_never_mix_implicitly():
    strict = pytest.importorskip("array_api_strict")
    with xpnet.use_backend("array_api_strict"):
        on_device1 = xpnet.asarray(np.ones((2, 4)), device="device1")
    model = xpnet.models.mlp([4, 3])
    with pytest.raises(TypeError, match="array_api_strict array on device"):
        model.predict(on_device1)
    cpu = strict.asarray(np.ones((2, 4)))  # strict's CPU device is host memory: converted
    assert model.predict(cpu).shape == (2, 3)
    np.testing.assert_array_equal(xpnet.to_numpy(on_device1), np.ones((2, 4)))  # explicit transfer home


def test_seed_also_seeds_libraries_imported_later():
    code = (
        "import sys, xpnet\n"
        "xpnet.seed(5)\n"
        "assert 'torch' not in sys.modules\n"
        "b = xpnet.set_backend('torch')\n"
        "import torch\n"
        "a = b.uniform((4,), torch.float32)\n"
        "xpnet.set_backend('torch')\n"  # loading again does not reseed: the stream goes on
        "c = b.uniform((4,), torch.float32)\n"
        "torch.manual_seed(5)\n"
        "print(torch.equal(a, torch.rand(4)), torch.equal(c, torch.rand(4)))\n"
    )
    pytest.importorskip("torch", reason="torch not installed")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_loading_data_or_a_checkpoint_switches_nothing(tmp_path):
    pytest.importorskip("array_api_strict")
    model = xpnet.models.mlp([4, 3])
    model.save(tmp_path / "m.npz")
    active = xpnet.set_backend("array_api_strict", device="device1")
    xpnet.datasets.load_digits()
    loaded = xpnet.load(tmp_path / "m.npz", backend="numpy")
    assert loaded.backend.name == "numpy" and xpnet.get_backend() is active
    here = xpnet.load(tmp_path / "m.npz")  # default: the active backend and device
    assert here.backend == active and active.owns(here.params["0.W"])
    assert xpnet.get_backend() is active


def test_adapters_share_one_interface():
    for name, cls in xpnet.backends.ADAPTERS.items():
        assert issubclass(cls, xpnet.Backend) and cls.name == name and cls.device_forms
    b = xpnet.get_backend()
    b.synchronize()
    b.free_memory()  # no-ops on the host
    with b.forbid_sync():
        pass
    assert b.host_memory and b.has_data and not b.is_gpu and b.peer_torch_device() == "cpu"

"""What must hold on a GPU: no host–device sync in the training step, low-precision dtypes, devices.

On a machine without CUDA the GPU-only tests skip with the reason; the dtype tests run on the CPU
backends too.
"""

import numpy as np
import pytest

import xpnet
from xpnet import layers as L
from xpnet.controls import train_step
from xpnet.losses import Flooding, SoftmaxCrossEntropy
from xpnet.optimizers import Adam, Nesterov


def _gpu(backend):
    if not backend.is_gpu:
        pytest.skip(f"host–device syncs exist only on CUDA backends; {backend} is a CPU backend")


@pytest.mark.parametrize("opt", [Adam, Nesterov])
def test_training_step_never_synchronises(backend, rng, opt):
    _gpu(backend)
    model = xpnet.Sequential(
        [L.Affine(20, 32), L.BatchNorm(32), L.Mish(), L.Dropout(0.2), L.Affine(32, 5)],
        loss=Flooding(SoftmaxCrossEntropy(), 0.01),
    )
    x, t = model.check_data(rng.random((64, 20)), rng.integers(0, 5, 64))
    optimizer = opt(0.01)
    train_step(model, optimizer, x, t)  # warm-up: kernels compiled, memory pooled
    with backend.forbid_sync():
        for _ in range(3):
            train_step(model, optimizer, x, t)
            model.loss_layer.forward(model.forward(x, train=False), t)  # evaluation accumulates on device too


def test_trainer_epoch_never_synchronises(backend, rng):
    _gpu(backend)
    model = xpnet.models.mlp([20, 16, 5])
    trainer = xpnet.Trainer(model, Adam(0.01), epochs=1, batch_size=16, verbose=False)
    x, t = model.check_data(rng.random((64, 20)), rng.integers(0, 5, 64))
    order = np.random.default_rng(0).permutation(64)
    trainer.train_epoch(x, t, order)
    index = model.backend.from_host(order)
    xp = model.backend.xp
    with backend.forbid_sync():
        for i in range(0, 64, 16):
            idx = index[i : i + 16]
            train_step(model, trainer.optimizer, xp.take(x, idx, axis=0), xp.take(t, idx, axis=0))


def test_cupy_device_selection():
    try:
        xpnet.set_backend("cupy")
    except xpnet.BackendUnavailableError as e:
        pytest.skip(f"no CUDA device: {e}")
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    last = xpnet.set_backend("cupy", device=count - 1)
    assert last.device.id == count - 1
    assert xpnet.layers.Affine(2, 2).W.device.id == count - 1
    with pytest.raises(ValueError, match="does not exist"):
        xpnet.set_backend("cupy", device=count)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_training(backend, rng, dtype):
    if dtype == "bfloat16" and backend.name != "torch":
        pytest.skip(f"bfloat16 is a torch dtype; {backend.name} has none")
    if backend.name == "array_api_strict" and dtype == "float16":
        pytest.skip("array_api_strict has no float16 (the standard defines float32/float64 only)")
    xpnet.set_default_dtype(dtype)
    model = xpnet.models.mlp([8, 16, 3])
    x, t = rng.random((32, 8)), rng.integers(0, 3, 32)
    opt = Adam(0.01, eps=1e-4) if dtype == "float16" else Adam(0.01)  # 1e-8 is 0 in float16
    h = xpnet.Trainer(model, opt, epochs=3, batch_size=8, verbose=False).fit(x, t)
    assert str(model.params["0.W"].dtype).endswith(dtype)
    assert np.isfinite(h.records[-1]["train_loss"])


def test_adam_default_eps_is_refused_in_float16(rng):
    xpnet.set_default_dtype("float16")
    model = xpnet.models.mlp([8, 4, 3])
    model.gradient(rng.random((4, 8)), np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="eps=1e-08 underflows"):
        Adam(0.01).step(model)


def test_bfloat16_is_refused_where_unsupported():
    xpnet.set_default_dtype("bfloat16")
    with pytest.raises(TypeError, match="bfloat16"):
        xpnet.layers.Affine(2, 2)


def test_no_python_scalar_goes_to_the_device_in_a_step(rng, monkeypatch):
    """The CPU stand-in for the sync guard's finding on an H100: array-api-compat's torch ``maximum``/
    ``minimum``/``where`` turn a Python scalar operand into ``torch.asarray(scalar, device=...)``, a
    host-to-device copy that synchronises a CUDA stream. No layer, loss or optimizer step may do it."""
    torch = pytest.importorskip("torch", reason="the scalar transfer is array-api-compat's torch wrapping")
    xpnet.set_backend("torch")
    model = xpnet.Sequential(
        [L.Affine(6, 8), *(cls() for cls in L.ACTIVATIONS.values()), L.Affine(8, 3)],
        loss=Flooding(SoftmaxCrossEntropy(), 0.01),
    )
    x, t = model.check_data(rng.random((10, 6)), rng.integers(0, 3, 10))
    seen = []
    real = torch.asarray

    def spy(obj, *args, **kwargs):
        if isinstance(obj, (bool, int, float)):
            seen.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(torch, "asarray", spy)
    optimizer = Adam(0.01)
    model.step_loss(x, t, value=False)
    optimizer.update(model.params, model.backward())
    model.loss_layer.forward(model.forward(x, train=False), t)
    assert seen == [], f"Python scalars sent to the device: {seen}"

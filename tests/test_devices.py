"""The training step on off-host devices, proven without a GPU.

``device_backend`` runs each test on array-api-strict's ``device1`` (its arrays refuse to mix with the CPU
device and to convert implicitly to NumPy, as CuPy's do) and on PyTorch's ``meta`` device (no data: every
host read raises, so a step that completes there made no host–device synchronisation), plus CuPy and
torch-CUDA where a GPU answers. Every layer, loss and optimizer comes from the registries, so a new one is
covered without editing this file. Tests that need values run on ``device1`` and skip on ``meta``, saying so.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from xptest import host, kernel_modes

import xpnet
from xpnet import kernels, losses
from xpnet import layers as L
from xpnet.optimizers import OPTIMIZERS, Adam

# Constructor and per-sample input shape for every concrete layer class (LAYERS is the registry).
LAYER_CASES = {
    "Affine": (lambda: L.Affine(12, 4), (3, 2, 2)),
    "BatchNorm": (lambda: L.BatchNorm(6), (6,)),
    "BatchNorm-images": (lambda: L.BatchNorm(2), (2, 3, 3)),
    "Dropout": (lambda: L.Dropout(0.3), (6,)),
    "Convolution": (lambda: L.Convolution(2, 3, 3, stride=1, pad=1), (2, 5, 5)),
    "Convolution-strided": (lambda: L.Convolution(2, 3, (3, 2), stride=2), (2, 7, 6)),
    "Pooling": (lambda: L.Pooling(2), (2, 4, 4)),
    "Pooling-overlapping": (lambda: L.Pooling(3, stride=1, pad=1), (2, 4, 4)),
    "AvgPooling": (lambda: L.AvgPooling(2, stride=1), (2, 4, 4)),
    "Flatten": (L.Flatten, (2, 3, 3)),
    **{cls.__name__: (cls, (6,)) for cls in L.ACTIVATIONS.values()},
}
ABSTRACT = {"Layer", "Activation", "_Pool"}


def values_needed(backend) -> None:
    if not backend.has_data:
        pytest.skip(f"reads values back, and {backend} tensors hold none (its step tests run here)")


def on_device(backend, **arrays) -> None:
    for name, a in arrays.items():
        assert a is not None and backend.owns(a), (
            f"{name} is not on {backend}: {type(a).__name__} on {getattr(a, 'device', '?')}"
        )


def test_every_layer_class_has_a_case():
    covered = {key.split("-")[0] for key in LAYER_CASES}
    ours = {name for name, cls in L.LAYERS.items() if cls.__module__.startswith("xpnet.")}  # not tests' own
    assert ours - ABSTRACT - covered == set(), "add the new layer to LAYER_CASES"


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_step_stays_on_device(device_backend, rng, case):
    factory, shape = LAYER_CASES[case]
    xp = device_backend.xp
    layer = factory()
    on_device(device_backend, **layer.params, **layer.buffers)
    x = device_backend.from_host(rng.standard_normal((4, *shape)), dtype=xp.float32)
    y = layer.forward(x, train=True)
    dx = layer.backward(xp.ones_like(y))
    on_device(device_backend, y=y, dx=dx, **{"d" + k: v for k, v in layer.grads.items()}, **layer.buffers)
    on_device(device_backend, eval_y=layer.forward(x, train=False))


@pytest.mark.parametrize("case", [c for c in LAYER_CASES if c.startswith(("Convolution", "Pooling"))])
def test_both_kernel_paths_step_on_device(device_backend, rng, case):
    """Convolution and max-pooling on each kernel path the backend has (native kernels, the reference):
    everything stays on the device, no host read (``meta``), same shapes and dtypes on both."""
    factory, shape = LAYER_CASES[case]
    xp = device_backend.xp
    x = device_backend.from_host(rng.standard_normal((4, *shape)), dtype=xp.float32)
    seen = set()
    for mode in kernel_modes(device_backend):
        with kernels.using(mode):
            layer = factory()
            y = layer.forward(x, train=True)
            dx = layer.backward(xp.ones_like(y))
            grads = {"d" + k: v for k, v in layer.grads.items()}
            on_device(device_backend, y=y, dx=dx, **grads, eval_y=layer.forward(x, train=False))
            seen.add(tuple((tuple(a.shape), str(a.dtype)) for a in (y, dx, *grads.values())))
    assert len(seen) == 1, seen


@pytest.mark.parametrize("loss", ["labels", "one-hot", "mse", "flooding"])
def test_loss_step_stays_on_device(device_backend, rng, loss):
    xp = device_backend.xp
    y = device_backend.from_host(rng.standard_normal((5, 3)), dtype=xp.float32)
    labels = rng.integers(0, 3, 5)
    layer, t = {
        "labels": (losses.SoftmaxCrossEntropy(), labels),
        "one-hot": (losses.SoftmaxCrossEntropy(), np.eye(3, dtype=np.float32)[labels]),
        "mse": (losses.MeanSquaredError(), rng.standard_normal((5, 3)).astype(np.float32)),
        "flooding": (losses.Flooding(losses.SoftmaxCrossEntropy(), 0.5), labels),
    }[loss]
    t = device_backend.from_host(t)
    layer.check_target(tuple(y.shape), t)  # shapes and dtypes only: no read on a device
    e = layer.forward(y, t)
    on_device(device_backend, loss=e, dy=layer.backward(1.0))
    assert e.ndim == 0


def _model(dropout: float = 0.2):
    return xpnet.Sequential(
        [L.Affine(6, 8), L.BatchNorm(8), L.Mish(), L.Dropout(dropout), L.Affine(8, 3)],
        loss=losses.Flooding(losses.SoftmaxCrossEntropy(), 0.01),
    )


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_book_loop_stays_on_device(device_backend, rng, name, weight_decay):
    """``model.gradient`` then ``optimizer.update``: parameters, gradients, state and buffers stay put."""
    model = _model()
    opt = OPTIMIZERS[name](lr=0.01, weight_decay=weight_decay)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    for _ in range(2):
        grads = model.gradient(x, t)
        opt.update(model.params, grads)
    on_device(device_backend, **model.params, **{"d" + k: g for k, g in grads.items()}, **model.buffers)
    for key, slots in opt.state.items():
        on_device(device_backend, **{f"{key}/{s}": a for s, a in slots.items()})
    e = model.loss(x, t)
    on_device(device_backend, loss=e)
    assert e.ndim == 0
    on_device(device_backend, penalty=device_backend.xp.asarray(opt.penalty(model.params) + e))


def test_train_epoch_stays_on_device(device_backend, rng):
    model = _model()
    trainer = xpnet.Trainer(model, Adam(0.01, weight_decay=0.01), batch_size=3, verbose=False)
    x, t = model.check_data(rng.standard_normal((10, 6)), rng.integers(0, 3, 10))  # no read on a device
    trainer.train_epoch(x, t, np.random.default_rng(0).permutation(10))
    on_device(device_backend, **model.params, **model.buffers)


def test_frozen_and_input_gradient_stay_on_device(device_backend, rng):
    model = xpnet.Sequential([L.Affine(6, 4), L.Dropout(0.5), L.Affine(4, 3)], input_grad=True)
    with model.frozen():
        model.gradient(rng.standard_normal((5, 6)), rng.integers(0, 3, 5))
    on_device(device_backend, dx=model.dx, **model.params)


def test_out_of_range_label_makes_the_loss_nan_without_a_read(device_backend, rng):
    model = _model(dropout=0.0)
    x, t = rng.standard_normal((4, 6)), np.array([0, 1, 3, 2])
    e = model.loss(x, t)  # no ValueError: checking would read the labels back
    model.gradient(x, t)
    values_needed(device_backend)
    assert math.isnan(float(e))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model.check_data(x, t, values=True)  # where data enters training, one read is made
    with pytest.raises(ValueError, match="outside"):
        model.accuracy(x, t)  # its one read checks the labels too


def test_trainer_names_out_of_range_labels_when_the_epoch_loss_is_nan(device_backend, rng, monkeypatch):
    values_needed(device_backend)
    model = _model(dropout=0.0)
    trainer = xpnet.Trainer(model, Adam(0.01), epochs=1, batch_size=4, verbose=False)
    x, t = rng.standard_normal((8, 6)), np.array([0, 1, 2, 3, 0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        trainer.fit(x, t)  # checked once where the data enters
    unchecked = xpnet.Sequential.check_data
    monkeypatch.setattr(model, "check_data", lambda x, t, values=None, **kw: unchecked(model, x, t, values=False, **kw))
    with pytest.raises(ValueError, match="non-finite train loss.*labels lie outside"):
        trainer.fit(x, t)  # had a label slipped past: the epoch's NaN loss names it


def test_full_fit_on_device1_keeps_everything_there(rng):
    backend = xpnet.set_backend("array_api_strict", device="device1")
    xpnet.seed(0)
    model = _model()
    opt = Adam(0.01)
    history = xpnet.Trainer(model, opt, epochs=2, batch_size=8, verbose=False).fit(
        rng.standard_normal((40, 6)), rng.integers(0, 3, 40), rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    )
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in history.records)
    on_device(backend, **model.params, **model.buffers)
    for key, slots in opt.state.items():
        on_device(backend, **{f"{key}/{s}": a for s, a in slots.items()})
    assert 0.0 <= model.accuracy(rng.standard_normal((5, 6)), rng.integers(0, 3, 5)) <= 1.0


def test_save_on_device1_load_on_numpy(rng, tmp_path):
    xpnet.set_backend("array_api_strict:device1")
    model = _model()
    opt = Adam(0.01)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    opt.update(model.params, model.gradient(x, t))
    model.save(tmp_path / "m.npz", optimizer=opt)
    loaded, saved_opt = xpnet.load_checkpoint(tmp_path / "m.npz", backend="numpy")
    assert loaded.backend.name == "numpy"
    assert xpnet.get_backend().device == model.backend.device  # loading switched nothing
    for k, v in model.params.items():
        np.testing.assert_array_equal(host(loaded.params[k]), host(v))
    np.testing.assert_array_equal(host(saved_opt.state["0.W"]["m"]), host(opt.state["0.W"]["m"]))


def test_model_to_device1_and_back_keeps_values(rng):
    model = _model()
    before = {k: host(v).copy() for k, v in {**model.params, **model.buffers}.items()}
    target = model.to("array_api_strict", device="device1").backend
    assert str(target.device) == str(xpnet.set_backend("array_api_strict:device1").device)
    on_device(target, **model.params, **model.buffers)
    on_device(target, y=model.predict(rng.standard_normal((4, 6))))  # usable there
    model.to("numpy")
    on_device(model.backend, **model.params, **model.buffers)
    for k, v in {**model.params, **model.buffers}.items():
        np.testing.assert_array_equal(host(v), before[k])
        assert host(v).dtype == before[k].dtype


def test_model_to_meta_keeps_shapes_and_refuses_to_come_back_silently():
    pytest.importorskip("torch", reason="the meta device is PyTorch's")
    model = _model()
    shapes = {k: tuple(v.shape) for k, v in model.params.items()}
    meta = model.to("torch", device="meta").backend
    assert not meta.has_data
    on_device(meta, **model.params)
    assert {k: tuple(v.shape) for k, v in model.params.items()} == shapes
    with pytest.raises(RuntimeError, match="meta.*no data"):
        xpnet.to_numpy(model.params["0.W"])


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_narrow_labels_are_not_taken_for_out_of_range_ones(device_backend, dtype):
    """The device-side range test compares only where the labels' dtype holds the bound (int8 < 300 wraps)."""
    model = xpnet.Sequential([L.Affine(3, 300)])
    x, t = np.ones((4, 3)), np.array([0, 5, 43, 100], dtype=dtype)
    e = model.loss(x, t)
    values_needed(device_backend)
    assert math.isfinite(float(e))
    assert model.accuracy(x, t) in (0.0, 0.25, 0.5, 0.75, 1.0)

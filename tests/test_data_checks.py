"""Data where it enters (issue 26, items 11-12): targets that are no distributions, complex data, NaN in
``accuracy``, empty sets, 0-d inputs, uint64 labels — each a clear ``ValueError`` naming what is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet.optimizers import SGD

BAD_TARGETS = {
    "negative": [[1.5, -0.5, 0.0]],
    "all-zero row": [[0.0, 0.0, 0.0]],
    "row of 5.0": [[5.0, 5.0, 5.0]],
    "NaN": [[math.nan, 0.5, 0.5]],
}


def _model():
    return xpnet.Sequential([L.Affine(4, 5), L.ReLU(), L.Affine(5, 3)])


def _data(rng, n=6):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[np.arange(n) % 3]


# -- item 11: one-hot or soft targets that are no distributions -------------------------------------------
@pytest.mark.parametrize("kind", BAD_TARGETS)
def test_targets_that_are_no_distributions_are_refused_on_the_host(cpu_backend, rng, kind):
    model = _model()
    x, t = _data(rng)
    t[2] = BAD_TARGETS[kind][0]
    for call in (model.check_data, model.loss, model.gradient, model.accuracy):
        with pytest.raises(ValueError, match=r"distributions.*rows are not \(the first is row 2\)"):
            call(x, t)
    with pytest.raises(ValueError, match="distributions"):
        xpnet.Trainer(model, SGD(0.1), epochs=1, verbose=False).fit(x, t)


def test_soft_targets_and_integer_one_hot_rows_are_accepted(cpu_backend, rng):
    model = _model()
    x, t = _data(rng)
    smooth = (0.9 * t + 0.1 / 3).astype(np.float32)  # label smoothing, rounded in float32
    xpnet.set_default_dtype("float64")
    model64 = _model()
    for m, targets in ((model, smooth), (model, t.astype(np.int64)), (model64, smooth)):
        assert math.isfinite(float(m.loss(x, targets)))
        assert 0.0 <= m.accuracy(x, targets) <= 1.0


def test_targets_that_are_no_distributions_make_the_device_loss_nan_without_a_read(device_backend, rng):
    """On a device nothing is read back: the loss is NaN instead (the trainer's non-finite stop names it);
    where data enters training (``values=True``) the one read refuses them, as labels out of range."""
    model = _model()
    x, t = _data(rng)
    t[1] = 5.0
    e = model.loss(x, t)  # torch meta: no read, no error
    model.gradient(x, t)
    if not device_backend.has_data:
        return
    assert math.isnan(float(e))
    with pytest.raises(ValueError, match="distributions"):
        model.check_data(x, t, values=True)


# -- item 11: complex data, NaN in accuracy --------------------------------------------------------------
def test_complex_inputs_and_targets_are_refused(cpu_backend, rng):
    model = _model()
    x, t = _data(rng)
    z = x + 1j * x
    for call in (model.check_data, model.loss, model.accuracy):
        with pytest.raises(ValueError, match=r"x is complex .*imaginary"):
            call(z, t)
        with pytest.raises(ValueError, match=r"t is complex"):
            call(x, t + 0j)
    with pytest.raises(ValueError, match=r"x is complex"):
        model.predict(z)
    with pytest.raises(ValueError, match=r"x is complex"):
        model.predict(z.tolist())  # host lists too
    with pytest.raises(ValueError, match=r"x_train is complex"):
        xpnet.Trainer(model, SGD(0.1), epochs=1, verbose=False).fit(z, t)


@pytest.mark.parametrize("where", ["x", "t"])
def test_accuracy_of_data_holding_nan_is_refused(backend, rng, where):
    model = _model()
    x, t = _data(rng)
    (x if where == "x" else t)[3, 0] = math.nan
    labels = np.argmax(np.nan_to_num(t), axis=1)
    with pytest.raises(ValueError, match=r"non-finite|distributions"):
        model.accuracy(x, t)
    if where == "x":
        with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf: 1 in x"):
            model.accuracy(x, labels)


# -- item 12: empty sets, 0-d inputs, uint64 labels ------------------------------------------------------------
def test_empty_training_test_and_validation_sets_name_the_argument(rng):
    model = _model()
    x, t = _data(rng)
    trainer = xpnet.Trainer(model, SGD(0.1), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="x_train and t_train hold 0 samples"):
        trainer.fit(x[:0], t[:0])
    with pytest.raises(ValueError, match="x_test and t_test hold 0 samples"):
        trainer.fit(x, t, x[:0], t[:0])
    with pytest.raises(ValueError, match="x_val and t_val hold 0 samples"):
        trainer.fit(x, t, x_val=x[:0], t_val=t[:0])
    with pytest.raises(ValueError, match=r"accuracy: x and t hold 0 samples"):
        model.accuracy(x[:0], np.argmax(t, axis=1)[:0])


@pytest.mark.parametrize("value", [np.array(3.0), 3.0, np.float32(2.0)])
def test_predict_of_a_0d_array_names_the_shape(cpu_backend, value):
    with pytest.raises(ValueError, match=r"x is a 0-d array"):
        _model().predict(value)


def test_torch_uint64_labels_train_as_int64_labels(rng):
    torch = pytest.importorskip("torch")
    x, t = _data(rng, 30)
    labels = np.argmax(t, axis=1)
    runs = []
    for dtype in (torch.int64, torch.uint64):
        xpnet.set_backend("torch")
        xpnet.seed(3)
        model = _model()
        history = xpnet.Trainer(model, SGD(0.1), epochs=2, batch_size=7, verbose=False).fit(
            x, torch.tensor(labels, dtype=dtype), x, torch.tensor(labels, dtype=dtype)
        )
        runs.append((history.records, host(model.params["0.W"]), model.accuracy(x, torch.tensor(labels, dtype=dtype))))
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in runs[0][0]] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in runs[1][0]
    ]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model.check_data(x[:2], torch.tensor([0, 2**63], dtype=torch.uint64))

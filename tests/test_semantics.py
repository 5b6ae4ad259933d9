"""Evaluation semantics and memory (issue 12, items 6-7): ``loss`` evaluates, ``gradient`` trains,
evaluation keeps nothing batch-sized and runs in batches, ``backward`` never uses stale caches."""

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet import losses


def mlp():
    return xpnet.Sequential([L.Affine(6, 8), L.BatchNorm(8), L.ReLU(), L.Dropout(0.5), L.Affine(8, 3)])


def cnn():
    return xpnet.Sequential(
        [
            L.Convolution(2, 3, 3, pad=1),
            L.BatchNorm(3),
            L.ReLU(),
            L.Pooling(2, 2),
            L.Convolution(3, 2, 3, pad=1),
            L.Tanh(),
            L.AvgPooling(2, 1),
            L.Flatten(),
            L.Affine(8, 3),
        ],
        input_shape=(2, 6, 6),
    )


def data(rng, model, n):
    shape = model.input_shape
    return rng.standard_normal((n, *shape)), rng.integers(0, 3, n)


# -- 6. loss evaluates; gradient is the training step ----------------------------------------------


def test_loss_evaluates_repeatably_and_keeps_the_running_statistics(backend, rng):
    model = mlp()
    x, t = data(rng, model, 10)
    model.gradient(x, t)  # move the running statistics away from their start
    before = {k: host(v).copy() for k, v in model.buffers.items()}
    a, b = model.loss(x, t), model.loss(x, t)
    assert backend.owns(a) and a.ndim == 0
    assert float(a) == float(b)  # Dropout is off: asking twice gives one answer
    for k, v in model.buffers.items():
        np.testing.assert_array_equal(host(v), before[k])  # BatchNorm's statistics did not move
    y = host(model.predict(x)).astype(np.float64)
    e = np.exp(y - y.max(axis=1, keepdims=True))
    ref = np.mean(-np.log(e[np.arange(10), t] / e.sum(axis=1)))
    np.testing.assert_allclose(float(a), ref, rtol=1e-5)


def test_gradient_is_the_training_step_and_does_not_go_through_loss(backend, rng, monkeypatch):
    xpnet.set_default_dtype("float64")
    model = mlp()
    x, t = data(rng, model, 10)
    monkeypatch.setattr(model, "loss", lambda *a, **k: pytest.fail("gradient() called loss()"))
    before = host(model.buffers["1.running_mean"]).copy()
    grads = model.gradient(x, t)
    monkeypatch.undo()
    assert not np.array_equal(host(model.buffers["1.running_mean"]), before)  # training mode: statistics move
    with model.frozen():
        again = {k: host(v).copy() for k, v in model.gradient(x, t).items()}
        train_loss = model.loss(x, t, train=True)  # the book's train_flg=True: same masks while frozen
        np.testing.assert_allclose(host(model.backward()["0.W"]), again["0.W"], rtol=1e-12)
    assert float(train_loss) > 0 and set(grads) == set(model.params)


def test_numerical_gradient_still_matches_backprop_with_dropout_and_batchnorm(backend, rng):
    xpnet.set_default_dtype("float64")
    # Tanh before BatchNorm: a bias right before it has an exactly-zero gradient (pure round-off)
    model = xpnet.Sequential([L.Affine(6, 8), L.Tanh(), L.BatchNorm(8), L.ReLU(), L.Dropout(0.5), L.Affine(8, 3)])
    x, t = data(rng, model, 7)
    errors = xpnet.gradient_check(model, x, t)
    assert max(errors.values()) < 1e-6, errors


# -- 7. evaluation keeps nothing, runs in batches; backward never uses stale caches ----------------


def _batch_sized(model, n):
    """Names of arrays held by the layers and the loss (besides parameters, gradients and buffers)
    that hold at least two rows' worth of a batch of n samples."""
    owned = {id(a) for a in [*model.params.values(), *model.grads.values(), *model.buffers.values()] if a is not None}
    found = []
    for obj in [*model.layers, model.loss_layer]:
        for name, value in vars(obj).items():
            for a in value if isinstance(value, (list, tuple)) else [value]:
                shape = getattr(a, "shape", None)
                if isinstance(shape, tuple) and id(a) not in owned:
                    size = int(np.prod(tuple(shape)))
                    if size >= 2 * n:
                        found.append(f"{type(obj).__name__}.{name} {tuple(shape)}")
    return found


@pytest.mark.parametrize("build", [mlp, cnn])
def test_evaluation_keeps_nothing_batch_sized(backend, rng, build):
    model = build()
    x, t = data(rng, model, 5)
    model.gradient(x, t)  # a training step leaves its caches (batch of 5)
    big_x, big_t = data(rng, model, 97)
    for evaluate in (
        lambda: model.predict(big_x),
        lambda: model.loss(big_x, big_t),
        lambda: model.accuracy(big_x, big_t),
    ):
        evaluate()
        assert _batch_sized(model, 97) == []
        assert _batch_sized(model, 5) == []  # the training batch's caches are gone too


class Spy(L.Layer):
    """Identity layer that records the batch sizes it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, train=True):
        self.seen.append(x.shape[0])
        return x

    def backward(self, dout):
        return dout


def test_predict_loss_and_accuracy_run_in_batches(backend, rng):
    xpnet.set_default_dtype("float64")
    spy = Spy()
    model = xpnet.Sequential([L.Affine(6, 8), L.Tanh(), spy, L.Affine(8, 3)])
    x, t = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    whole = (host(model.predict(x)), float(model.loss(x, t)), model.accuracy(x, t))
    spy.seen.clear()
    batched = (
        host(model.predict(x, batch_size=4)),
        float(model.loss(x, t, batch_size=4)),
        model.accuracy(x, t, batch_size=4),
    )
    assert max(spy.seen) <= 4 and sum(spy.seen) == 30
    np.testing.assert_allclose(batched[0], whole[0], rtol=1e-12)
    assert batched[1] == pytest.approx(whole[1], rel=1e-12) and batched[2] == whole[2]
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


@pytest.mark.parametrize("evaluate", ["predict", "loss", "accuracy"])
def test_backward_after_an_evaluation_is_a_clear_error(backend, rng, evaluate):
    model = cnn()
    x, t = data(rng, model, 4)
    model.gradient(x, t)
    x2, t2 = data(rng, model, 3)
    getattr(model, evaluate)(*((x2,) if evaluate == "predict" else (x2, t2)))
    with pytest.raises(RuntimeError, match=r"backward\(\).*evaluation"):
        model.backward()
    model.gradient(x2, t2)  # a training step makes backward usable again
    model.backward()


LAYER_CASES = {
    "Affine": (lambda: L.Affine(4, 3), (2, 4)),
    "ReLU": (L.ReLU, (2, 4)),
    "Dropout": (lambda: L.Dropout(0.3), (2, 4)),
    "BatchNorm": (lambda: L.BatchNorm(4), (3, 4)),
    "Convolution": (lambda: L.Convolution(2, 3, 2), (2, 2, 4, 4)),
    "Pooling": (lambda: L.Pooling(2, 2), (2, 2, 4, 4)),
    "AvgPooling": (lambda: L.AvgPooling(2, 2), (2, 2, 4, 4)),
    "Flatten": (L.Flatten, (2, 2, 4, 4)),
}


@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_layer_backward_after_an_evaluation_forward_raises(backend, rng, name):
    """Every layer (by the shared mechanism in ``Layer``): a training forward, then an evaluation
    forward of another batch: backward must not return a gradient built from the older caches."""
    build, shape = LAYER_CASES[name]
    layer = build()
    layer.forward(xpnet.asarray(rng.standard_normal(shape)), train=True)
    y = layer.forward(xpnet.asarray(rng.standard_normal(shape)), train=False)
    with pytest.raises(RuntimeError, match=r"layer .*backward\(\).*evaluation"):
        layer.backward(y)


def test_flooded_loss_evaluates_and_clears(backend, rng):
    model = xpnet.Sequential([L.Affine(6, 3)], loss=losses.Flooding(losses.SoftmaxCrossEntropy(), 0.1))
    x, t = rng.standard_normal((9, 6)), rng.integers(0, 3, 9)
    model.gradient(x, t)
    model.loss(x, t)
    assert _batch_sized(model, 9) == [] and model.loss_layer.loss.y is None

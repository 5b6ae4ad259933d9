"""Run checkpoints that were tampered with (issue 26, item 4): every field validated on load."""

import io
import math

import numpy as np
import pytest
from crafted import members_of, npy, rewrite

import xpnet
from xpnet import layers as L
from xpnet import optimizers, schedules
from xpnet.checkpoint import info


@pytest.fixture(scope="module")
def digits():
    (x, t), _ = xpnet.datasets.load_digits()
    return x[:120], t[:120]  # 4 batches of 32 (the last 24)


def build():
    xpnet.seed(3)
    return xpnet.Sequential([L.Affine(64, 16), L.BatchNorm(16), L.ReLU(), L.Affine(16, 10)]), optimizers.Adam(0.01)


def trainer(epochs=2, **options):
    model, opt = build()
    return xpnet.Trainer(model, opt, epochs=epochs, batch_size=32, seed=5, verbose=False, **options)


@pytest.fixture
def checkpoint(digits, tmp_path):
    """A run of 2 epochs with restore_best (best weights stored), to be resumed to 3."""
    path = tmp_path / "run.ckpt"
    trainer(2, checkpoint=path, restore_best=True, schedule=schedules.Exponential(0.01, 0.9)).fit(*digits)
    return path


def resume(path, digits):
    tr = xpnet.Trainer.from_checkpoint(path, epochs=3, verbose=False)
    tr.fit(*digits)
    return tr


def edit_run(**fields):
    return lambda m: m["run"].update(fields)


def edit_array(name, change):
    def edit(path):
        members = []
        for n, d in members_of(path):
            members.append((n, npy(change(np.load(io.BytesIO(d)))) if n == name else d))
        rewrite(path, members=members)

    return edit


# -- 4. every field validated on load --------------------------------------------------------
@pytest.mark.parametrize(
    "edit, words",
    [
        (edit_run(epoch=-5), "epoch=-5"),  # trained epochs -4..4 today
        (edit_run(step=10**6), "step=1000000"),  # skipped an epoch today
        (edit_run(epoch=True), "epoch=True"),
        (edit_run(elapsed=math.nan), "elapsed"),
        (edit_run(best=math.inf), "best"),
        (edit_run(since_best=-1), "since_best"),
        (edit_run(done="no"), "done"),
        (edit_run(order_rng={"bit_generator": "PCG64", "state": 5}), "RNG state"),
        (edit_run(rng=[]), "rng"),
        (edit_run(history={"records": 5}), "history"),
        (lambda m: m["run"]["trainer"].update(batch_size="32"), "batch_size"),
        (lambda m: m["run"]["trainer"].update(epochs=0), "epochs"),
        (lambda m: m["run"]["trainer"].update(clip_norm=math.inf), "clip_norm"),
        (lambda m: m["run"]["trainer"].update(bogus=1), "trainer"),
        (lambda m: m["run"]["schedule"].update({"class": "dataclass"}), "unknown schedule"),
        (lambda m: m["run"]["schedule"].update({"class": "__class__"}), "unknown schedule"),
        (lambda m: m["run"]["schedule"]["fields"].update(lr=math.inf), "lr"),
        (lambda m: m["run"]["schedule"]["fields"].update(gamma="x"), "gamma"),
        (lambda m: m["optimizer"]["config"].update(lr=math.inf), "lr=inf"),
        (lambda m: m["optimizer"]["config"].update(eps=0.0), "eps=0.0"),
        (lambda m: m["optimizer"]["config"].update(beta1=5), "beta1=5"),
        (lambda m: m["optimizer"]["config"].update(beta2=-0.1), "beta2=-0.1"),
        (
            lambda m: m.update(loss={"class": "Flooding", "b": math.nan, "inner": {"class": "SoftmaxCrossEntropy"}}),
            "flood level",
        ),
        (lambda m: m["run"]["best_weights"].update(loss=math.nan), "best_weights"),
        (lambda m: m["run"]["best_weights"].update(epoch=0), "best_weights"),
    ],
)
def test_tampered_run_state_is_refused_naming_the_field(checkpoint, digits, edit, words):
    rewrite(checkpoint, edit_meta=edit)
    with pytest.raises(ValueError) as e:
        resume(checkpoint, digits)
    assert str(e.value).startswith(f"{checkpoint}: ") and words in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "name, change, words",
    [
        ("opt/0.W/m", lambda a: a * np.nan, "not finite"),
        ("opt/0.W/v", lambda a: -a - 1.0, "negative"),
        ("opt/3.b/v", lambda a: a * np.inf, "not finite"),
        ("run/best/params/0.W", lambda a: a * np.nan, "NaN"),  # --restore-best wrote NaN weights, exit 0
        ("run/best/params/0.W", lambda a: a[:1], "shape"),  # broadcast into the model today
        ("run/best/buffers/1.running_var", lambda a: a.astype(np.float64), "float64"),
        ("param/0.W", lambda a: a.astype(np.float16), "mix dtypes"),  # loaded silently into a float32 model
        ("param/0.W", lambda a: a.astype(">f4"), "byte order"),
        ("buffer/1.running_mean", lambda a: a.astype(">f4"), "byte order"),
    ],
)
def test_tampered_arrays_are_refused_before_they_reach_the_model(checkpoint, digits, name, change, words):
    edit_array(name, change)(checkpoint)
    with pytest.raises(ValueError) as e:
        resume(checkpoint, digits)
    assert str(e.value).startswith(f"{checkpoint}: ") and words in str(e.value), str(e.value)


def test_an_untampered_checkpoint_still_resumes(checkpoint, digits):
    tr = resume(checkpoint, digits)
    assert [r["epoch"] for r in tr.history.records] == [1, 2, 3]
    assert info(checkpoint)["epoch"] == 3


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: optimizers.Adam(beta1=1.0), "beta1=1.0"),  # ZeroDivisionError at the first step today
        (lambda: optimizers.Adam(beta2=1.5), "beta2"),
        (lambda: optimizers.Adam(eps=0.0), "eps"),
        (lambda: optimizers.AdaGrad(eps=math.nan), "eps"),
        (lambda: optimizers.SGD(lr=math.inf), "lr"),
        (lambda: optimizers.SGD(lr="0.1"), "lr"),
        (lambda: optimizers.Momentum(momentum=1.0), "momentum"),
        (lambda: optimizers.RMSProp(decay_rate=1.0), "decay_rate"),
        (lambda: optimizers.SGD(weight_decay=math.nan), "weight_decay"),
        (lambda: schedules.Constant(math.inf), "lr"),
        (lambda: schedules.Exponential(0.1, math.nan), "gamma"),
        (lambda: schedules.StepDecay(0.1, math.inf), "step_size"),
        (lambda: schedules.Join((1, 2), (3,)), "schedule"),
        (lambda: schedules.from_spec("step:inf", 0.1, 10), "step_size"),  # an OverflowError traceback before
    ],
)
def test_constructors_refuse_what_loading_refuses(make, words):
    with pytest.raises(ValueError, match=words):
        make()

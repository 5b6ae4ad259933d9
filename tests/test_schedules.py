"""Learning-rate schedules: each against its formula, their composition, the command-line spec, and the
trainer applying them per epoch or per step."""

import math

import numpy as np
import pytest

import xpnet
from xpnet import layers as L
from xpnet import schedules as S
from xpnet.optimizers import SGD, Adam

N = range(40)


def test_constant_and_step_decay_formulas():
    assert S.values(S.Constant(0.3), 5) == [0.3] * 5
    s = S.StepDecay(0.5, step_size=3, gamma=0.2)
    assert [s(n) for n in N] == pytest.approx([0.5 * 0.2 ** (n // 3) for n in N], rel=1e-15)
    assert s(0) == s(2) == 0.5 and s(3) == pytest.approx(0.1)


def test_exponential_formula():
    s = S.Exponential(0.1, gamma=0.9)
    assert [s(n) for n in N] == pytest.approx([0.1 * 0.9**n for n in N], rel=1e-15)


def test_cosine_formula_and_floor():
    s = S.Cosine(0.2, total=10, min_lr=0.01)
    expected = [0.01 + 0.5 * (0.2 - 0.01) * (1 + math.cos(math.pi * min(n, 10) / 10)) for n in N]
    assert [s(n) for n in N] == pytest.approx(expected, rel=1e-15)
    assert s(0) == pytest.approx(0.2) and s(5) == pytest.approx(0.105) and s(10) == s(25) == pytest.approx(0.01)


def test_linear_warmup_formula():
    s = S.LinearWarmup(0.4, warmup=4)
    assert S.values(s, 7) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4])
    assert all(s(n) > 0 for n in N)  # the first epoch learns too


def test_warmup_then_cosine_is_the_join_of_the_two():
    lr, warmup, total = 0.1, 3, 20
    s = S.warmup_cosine(lr, warmup, total, min_lr=0.001)
    cos = S.Cosine(lr, total - warmup, 0.001)
    expected = [lr * (n + 1) / warmup if n < warmup else cos(n - warmup) for n in N]
    assert [s(n) for n in N] == pytest.approx(expected, rel=1e-15)
    assert s(warmup) == pytest.approx(lr) and s(total) == pytest.approx(0.001)


def test_join_of_three():
    s = S.Join((S.Constant(1.0), S.Constant(0.5), S.Exponential(0.1, 0.5)), (2, 5))
    assert S.values(s, 8) == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.05, 0.025])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: S.StepDecay(0.1, 0), "step_size"),
        (lambda: S.StepDecay(0.1, 2.5), "step_size"),
        (lambda: S.Exponential(0.1, 0.0), "gamma"),
        (lambda: S.Cosine(0.1, 0), "total"),
        (lambda: S.Cosine(0.1, 10, min_lr=0.5), "min_lr"),
        (lambda: S.LinearWarmup(-0.1, 3), "lr"),
        (lambda: S.Constant(0.1, unit="batch"), "unit"),
        (lambda: S.Join((S.Constant(0.1),), (3,)), "boundaries"),
        (lambda: S.Join((S.Constant(0.1), S.Constant(0.2)), (0,)), "boundaries"),
        (lambda: S.warmup_cosine(0.1, 10, 10), "warmup"),
    ],
)
def test_invalid_arguments_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_negative_count_is_an_error():
    with pytest.raises(ValueError, match="count"):
        S.Exponential(0.1, 0.9)(-1)


def test_command_line_specs():
    assert S.from_spec(None, 0.1, 10) is None
    assert S.from_spec("constant", 0.1, 10)(7) == 0.1
    assert S.from_spec("step", 0.1, 9) == S.StepDecay(0.1, 3, 0.1)
    assert S.from_spec("step:4:0.5", 0.1, 9) == S.StepDecay(0.1, 4, 0.5)
    assert S.from_spec("exponential:0.8", 0.1, 9) == S.Exponential(0.1, 0.8)
    assert S.from_spec("cosine", 0.1, 10) == S.Cosine(0.1, 10)
    s = S.from_spec("cosine:0.01", 0.1, 10, warmup=2)
    assert s == S.Join((S.LinearWarmup(0.1, 2), S.Cosine(0.1, 8, 0.01)), (2,))
    assert S.from_spec(None, 0.1, 10, warmup=2)(5) == 0.1  # warm-up alone, then constant
    for spec, match in [
        ("cos", "--schedule: unknown schedule 'cos'"),
        ("step:0", "--schedule step:0"),
        ("exponential:x", "--schedule exponential:x"),
        ("constant:3", "at most 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            S.from_spec(spec, 0.1, 10)
    with pytest.raises(ValueError, match="--warmup"):
        S.from_spec("cosine", 0.1, 10, warmup=10)
    with pytest.raises(ValueError, match="--warmup"):
        S.from_spec("cosine", 0.1, 10, warmup=-1)


def _data(rng, n=64):
    centers = rng.standard_normal((3, 4)) * 3
    t = rng.integers(0, 3, n)
    return (centers[t] + rng.standard_normal((n, 4))).astype(np.float32), t


def _model():
    xpnet.seed(0)
    return xpnet.Sequential([L.Affine(4, 6), L.ReLU(), L.Affine(6, 3)])


def test_trainer_sets_the_rate_per_epoch_and_records_it(rng):
    x, t = _data(rng)
    schedule = S.warmup_cosine(0.2, 2, 6)
    seen = []
    opt = SGD(0.2)
    h = xpnet.Trainer(
        _model(),
        opt,
        epochs=6,
        batch_size=16,
        verbose=False,
        schedule=schedule,
        callbacks=[lambda tr, r: seen.append(tr.optimizer.lr)],
    ).fit(x, t)
    expected = S.values(schedule, 6)
    assert h["lr"] == expected and seen == expected
    assert all(type(v) is float for v in h["lr"])  # a host float: nothing to sync, nothing to recompile
    assert "lr" in h.to_csv().splitlines()[0]


def test_trainer_sets_the_rate_per_step_from_the_step_count(rng):
    x, t = _data(rng)  # 64 samples, batch 16: 4 steps an epoch
    counts = []

    class Recording(S.Exponential):
        def __call__(self, count):
            counts.append(count)
            return super().__call__(count)

    schedule = Recording(0.1, 0.9, unit="step")
    h = xpnet.Trainer(_model(), Adam(0.1), epochs=3, batch_size=16, verbose=False, schedule=schedule).fit(x, t)
    assert counts == list(range(12))
    assert h["lr"] == [schedule(3), schedule(7), schedule(11)]  # the rate of each epoch's last step


def test_a_scheduled_run_equals_a_hand_written_loop(rng):
    """The rate the trainer sets is the one the update uses: SGD with batch = all data, by hand."""
    x, t = _data(rng)
    xpnet.set_default_dtype("float64")
    schedule = S.StepDecay(0.5, 2, 0.1)
    model = _model()
    xpnet.Trainer(model, SGD(1.0), epochs=4, batch_size=64, verbose=False, schedule=schedule).fit(x, t)
    ref = _model()
    for epoch in range(4):
        grads = ref.gradient(x, t)  # one full batch per epoch: the order does not matter
        for k, p in ref.params.items():
            p -= schedule(epoch) * grads[k]
    for k in ref.params:
        np.testing.assert_allclose(xpnet.to_numpy(model.params[k]), xpnet.to_numpy(ref.params[k]), rtol=1e-10)


def test_scheduled_updates_read_nothing_from_the_device():
    """Meta tensors have no data: any host read raises. The optimizer's rate is set from the schedule
    (a host float) and the update runs on the meta device."""
    torch = pytest.importorskip("torch", reason="the meta device is PyTorch's")
    params = {"0.W": torch.zeros(4, 3, device="meta"), "0.b": torch.zeros(3, device="meta")}
    grads = {k: torch.ones_like(v) for k, v in params.items()}
    opt, schedule = Adam(0.1, clip_norm=1.0), S.warmup_cosine(0.1, 2, 5, unit="step")
    for _ in range(4):
        opt.lr = schedule(opt.t)
        opt.update(params, grads)
    assert params["0.W"].device.type == "meta" and opt.lr == schedule(3)

"""Training controls: gradient clipping, the validation split, best-weights restore, numerical-gradient
training, and their command-line options."""

import json
import subprocess
import sys

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet.clipping import clip_by_global_norm, global_norm
from xpnet.controls import stratified_split
from xpnet.optimizers import SGD, Momentum


def blobs(rng, n=90, classes=3, features=4):
    centers = rng.standard_normal((classes, features)) * 2
    t = rng.integers(0, classes, n)
    return (centers[t] + rng.standard_normal((n, features))).astype(np.float32), t


def make(seed=0, hidden=8, batchnorm=False):
    xpnet.seed(seed)
    mid = [L.BatchNorm(hidden)] if batchnorm else []
    return xpnet.Sequential([L.Affine(4, hidden), *mid, L.Sigmoid(), L.Affine(hidden, 3)])


# -- clipping ------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clipping_equals_torch_clip_grad_norm(cpu_backend, rng, max_norm):
    torch = pytest.importorskip("torch", reason="the reference is torch.nn.utils.clip_grad_norm_")
    host_grads = {"0.W": rng.standard_normal((4, 5)), "0.b": rng.standard_normal(5), "1.W": rng.standard_normal((5, 2))}
    tensors = [torch.tensor(g, requires_grad=True) for g in host_grads.values()]
    for tensor, g in zip(tensors, host_grads.values()):
        tensor.grad = torch.tensor(g)
    norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    xpnet.set_default_dtype("float64")
    grads = {k: xpnet.asarray(g) for k, g in host_grads.items()}
    clipped = clip_by_global_norm(grads, max_norm)
    assert float(global_norm(grads)) == pytest.approx(float(norm), rel=1e-12)
    for tensor, key in zip(tensors, host_grads):
        np.testing.assert_allclose(host(clipped[key]), tensor.grad.numpy(), rtol=1e-12, atol=0)
        np.testing.assert_array_equal(host(grads[key]), host_grads[key])  # the input is left alone


def test_clipping_makes_no_host_read():
    """On the meta device every read of a value raises: the scale is computed and applied on the device."""
    torch = pytest.importorskip("torch", reason="the meta device is PyTorch's")
    grads = {"W": torch.ones(3, 4, device="meta"), "b": torch.ones(4, device="meta")}
    out = clip_by_global_norm(grads, 1.0)
    assert out["W"].device.type == "meta" and tuple(out["W"].shape) == (3, 4)
    params = {k: torch.zeros_like(v) for k, v in grads.items()}
    Momentum(0.1, clip_norm=1.0).update(params, grads)  # the optimizer-level option, the same way


def test_clipping_stays_on_the_arrays_device():
    xp = pytest.importorskip("array_api_strict", reason="array-api-strict's emulated devices")
    device = xp.Device("device1")
    grads = {"W": xp.ones((3, 4), device=device, dtype=xp.float32)}
    out = clip_by_global_norm(grads, 1.0)
    assert out["W"].device == device and out["W"].dtype == xp.float32
    np.testing.assert_allclose(
        np.asarray(xp.asarray(out["W"], device=xp.Device("CPU_DEVICE"))),
        np.full((3, 4), 1 / (12**0.5 + 1e-6)),
        rtol=1e-6,
    )


def test_trainer_and_optimizer_clipping_agree_with_a_hand_loop(rng):
    x, t = blobs(rng)
    xpnet.set_default_dtype("float64")
    a, b, ref = make(), make(), make()
    xpnet.Trainer(a, SGD(0.5), epochs=2, batch_size=90, verbose=False, clip_norm=0.1).fit(x, t)
    xpnet.Trainer(b, SGD(0.5, clip_norm=0.1), epochs=2, batch_size=90, verbose=False).fit(x, t)
    for _ in range(2):
        grads = {k: host(v) for k, v in ref.gradient(x, t).items()}
        scale = min(1.0, 0.1 / (np.sqrt(sum((g * g).sum() for g in grads.values())) + 1e-6))
        assert scale < 1  # the test exercises clipping
        for k, p in ref.params.items():
            p -= 0.5 * scale * xpnet.asarray(grads[k])
    for k in ref.params:
        np.testing.assert_allclose(host(a.params[k]), host(ref.params[k]), rtol=1e-10)
        np.testing.assert_allclose(host(b.params[k]), host(ref.params[k]), rtol=1e-10)


def test_clip_norm_is_checked():
    for bad in (0, -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="clip_norm"):
            xpnet.Trainer(make(), SGD(0.1), clip_norm=bad)
        with pytest.raises(ValueError, match="clip_norm"):
            SGD(0.1, clip_norm=bad)
    with pytest.raises(ValueError, match="both"):
        xpnet.Trainer(make(), SGD(0.1, clip_norm=1.0), clip_norm=1.0)
    assert SGD(0.1, clip_norm=2.0).config()["clip_norm"] == 2.0 and "clip_norm" not in SGD(0.1).config()


# -- validation split and best weights -----------------------------------------------------------
def test_split_is_stratified_reproducible_and_disjoint():
    t = np.repeat(np.arange(4), [50, 30, 20, 10])
    train, val = stratified_split(t, 0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(t.size))
    assert np.bincount(t[val]).tolist() == [10, 6, 4, 2]  # 20 % of each class
    again, other = stratified_split(t, 0.2, seed=3), stratified_split(t, 0.2, seed=4)
    assert np.array_equal(again[1], val) and not np.array_equal(other[1], val)
    one_hot = np.eye(4, dtype=np.float32)[t]
    assert np.array_equal(stratified_split(one_hot, 0.2, seed=3)[1], val)
    for bad in (0, 1, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="validation_split"):
            stratified_split(t, bad)


def test_fit_with_a_validation_split(backend, rng):
    x, t = blobs(rng)
    h = xpnet.Trainer(make(), SGD(0.5), epochs=3, batch_size=16, verbose=False, seed=2).fit(
        x, t, x[:30], t[:30], validation_split=0.2
    )
    assert all({"val_acc", "val_loss"} <= set(r) for r in h.records) and h.config["validation_samples"] == 18
    _, val = stratified_split(t, 0.2, seed=2)
    model = make()
    xpnet.Trainer(model, SGD(0.5), epochs=3, batch_size=16, verbose=False, seed=2).fit(
        np.delete(x, val, axis=0), np.delete(t, val), x_val=x[val], t_val=t[val]
    )
    assert h.records[-1]["val_loss"] == pytest.approx(float(model.loss(x[val], t[val], train=False)), rel=1e-5)
    s = h.summary()
    assert s["val_epoch"] == h.best_val_epoch() and s["test@val"] == round(100 * h["test_acc"][s["val_epoch"] - 1], 2)
    with pytest.raises(ValueError, match="not both"):
        xpnet.Trainer(make(), SGD(0.1), verbose=False).fit(x, t, validation_split=0.2, x_val=x, t_val=t)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_restore_best_gives_the_best_validation_epoch_exactly(cpu_backend, rng, batchnorm):
    x, t = blobs(rng, 120)
    x[:, 0] += rng.standard_normal(120).astype(np.float32) * 3  # noisy: validation loss goes up and down
    snapshots = {}

    def snap(trainer, record):
        snapshots[record["epoch"]] = (
            {k: host(v).copy() for k, v in trainer.model.params.items()},
            {k: host(v).copy() for k, v in trainer.model.buffers.items()},
        )

    model = make(batchnorm=batchnorm)
    h = xpnet.Trainer(model, SGD(3.0), epochs=8, batch_size=8, verbose=False, restore_best=True, callbacks=[snap]).fit(
        x, t, validation_split=0.25
    )
    best = h.best_val_epoch()
    assert best != len(h)  # the last epoch is not the best, so restoring matters
    params, buffers = snapshots[best]
    for k, v in model.params.items():
        np.testing.assert_array_equal(host(v), params[k])
    for k, v in model.buffers.items():
        np.testing.assert_array_equal(host(v), buffers[k])
    assert float(model.loss(x[:1], t[:1])) == float(model.loss(x[:1], t[:1]))  # layers still bound to the arrays


def test_patience_watches_the_validation_loss(rng):
    x, t = blobs(rng, 120)
    x[:, 0] += rng.standard_normal(120).astype(np.float32) * 3
    h = xpnet.Trainer(make(), SGD(3.0), epochs=30, batch_size=8, verbose=False).fit(
        x, t, x, t, validation_split=0.25, patience=2
    )
    losses = h["val_loss"]
    stop = next(e for e in range(2, len(losses) + 1) if min(losses[:e]) < min(losses[e - 2 : e]))
    assert len(h) == stop < 30  # stopped when the validation loss had not improved for 2 epochs


# -- numerical gradients -----------------------------------------------------------------------
@pytest.mark.parametrize("batchnorm", [False, True])
def test_a_numerical_step_equals_a_backprop_step(cpu_backend, rng, batchnorm):
    x, t = blobs(rng, 12)
    xpnet.set_default_dtype("float64")
    models = {}
    for mode in ("numerical", "backprop"):
        models[mode] = make(hidden=3, batchnorm=batchnorm)
        xpnet.Trainer(models[mode], SGD(1.0), epochs=1, batch_size=12, verbose=False, gradient=mode).fit(x, t)
    for k, p in models["backprop"].params.items():
        np.testing.assert_allclose(host(models["numerical"].params[k]), host(p), atol=1e-6, rtol=0, err_msg=k)
    for k, b in models["backprop"].buffers.items():  # running statistics moved once in both modes
        np.testing.assert_allclose(host(models["numerical"].buffers[k]), host(b), rtol=1e-12, err_msg=k)


def test_unknown_gradient_mode_is_refused_at_construction():
    with pytest.raises(ValueError, match="gradient must be one of backprop, numerical, got 'symbolic'"):
        xpnet.Trainer(make(), SGD(0.1), gradient="symbolic")


# -- the command line -------------------------------------------------------------------------------
def test_cli_controls_end_to_end(tmp_path, capsys):
    from xpnet.cli import main

    argv = [
        "train",
        "--epochs",
        "4",
        "--hidden",
        "20",
        "--schedule",
        "cosine",
        "--warmup",
        "1",
        "--clip-norm",
        "5",
        "--validation-split",
        "0.2",
        "--patience",
        "3",
        "--restore-best",
        "--quiet",
        "--history",
        str(tmp_path / "h.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| val_epoch | test@val |" in out
    h = xpnet.History.load(tmp_path / "h.json")
    assert h["lr"] == xpnet.schedules.values(xpnet.schedules.warmup_cosine(0.1, 1, 4), 4)
    assert h.config["clip_norm"] == 5 and h.config["validation_split"] == 0.2 and h["val_loss"][0] is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gradient", "symbolic"], "--gradient: unknown value 'symbolic'; valid: backprop, numerical"),
        (["--schedule", "cos"], "--schedule: unknown value 'cos'; valid: constant, step, exponential, cosine"),
        (["--schedule", "step:2:x"], "--schedule: step:2:x: could not convert"),
        (["--warmup", "5"], "--warmup: (5) must be fewer than --epochs (2)"),
        (["--clip-norm", "0"], "--clip-norm: '0' is not a number > 0"),
        (["--validation-split", "1.5"], "--validation-split: '1.5' is not a number in (0, 1)"),
        (["--validation-split", "0.2", "--patience", "0"], "--patience: '0' is not an integer >= 1"),
        (["--restore-best"], "--restore-best: needs --validation-split"),
    ],
)
def test_cli_options_are_checked_before_training(args, message):
    run = subprocess.run(
        [sys.executable, "-m", "xpnet", "train", "--epochs", "2", *args], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"xpnet train: error: {message}"), run.stderr


def test_cli_compare_numerical_and_backprop(tmp_path, capsys):
    from xpnet.cli import main

    argv = [
        "compare",
        "--gradient",
        "numerical,backprop",
        "--hidden",
        "3",
        "--activation",
        "sigmoid",
        "--epochs",
        "1",
        "--batch-size",
        "500",
        "--quiet",
        "--history",
        str(tmp_path / "h.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    header, _, numerical, backprop = out.split("| gradient")[1].splitlines()[:4]
    assert "| wall " in header and header.rstrip().endswith("| ratio |")
    assert numerical.startswith("| numerical") and backprop.startswith("| backprop") and "| 1.00× |" in backprop
    runs = json.loads((tmp_path / "h.json").read_text())
    assert [r["config"]["dtype"] for r in runs] == ["float64", "float64"]  # both float64: only the gradient differs
    assert [r["config"]["gradient"] for r in runs] == ["numerical", "backprop"]
    losses = [r["records"][0]["train_loss"] for r in runs]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)  # same seed, same order: the same training


def test_cli_resume_keeps_the_schedule_clipping_and_validation(tmp_path):
    """A run stopped after 2 epochs and resumed to 4 ends where a straight 4-epoch run does."""
    from xpnet.cli import main

    opts = [
        "--hidden",
        "16",
        "--schedule",
        "exponential:0.8",
        "--clip-norm",
        "0.5",
        "--validation-split",
        "0.2",
        "--quiet",
    ]
    assert main(["train", "--epochs", "4", *opts, "--save", str(tmp_path / "straight.npz")]) == 0
    assert main(["train", "--epochs", "2", *opts, "--checkpoint", str(tmp_path / "run.ckpt")]) == 0
    assert (
        main(
            [
                "train",
                "--resume",
                str(tmp_path / "run.ckpt"),
                "--epochs",
                "4",
                "--quiet",
                "--save",
                str(tmp_path / "resumed.npz"),
                "--history",
                str(tmp_path / "h.json"),
            ]
        )
        == 0
    )
    with np.load(tmp_path / "resumed.npz") as a, np.load(tmp_path / "straight.npz") as b:
        for key in b.files:
            if key.startswith("param"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    h = xpnet.History.load(tmp_path / "h.json")
    assert h["lr"] == pytest.approx([0.1 * 0.8**e for e in range(4)]) and None not in h["val_loss"]


@pytest.mark.parametrize("dtype_args, expected", [([], "float64"), (["--dtype", "float32"], "float32")])
def test_cli_numerical_training_is_float64_unless_told(tmp_path, dtype_args, expected):
    from xpnet.cli import main

    argv = [
        "train",
        "--gradient",
        "numerical",
        "--hidden",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "1000",
        "--quiet",
        "--history",
        str(tmp_path / "h.json"),
        *dtype_args,
    ]
    assert main(argv) == 0
    config = xpnet.History.load(tmp_path / "h.json").config
    assert config["dtype"] == expected and config["gradient"] == "numerical"


def test_training_steps_with_clipping_and_a_schedule_read_nothing_on_the_meta_device():
    """PyTorch's meta tensors hold no values: any host read in the step (a norm read back to clip, a
    rate computed from an array) would raise. Dropout and BatchNorm included."""
    torch = pytest.importorskip("torch", reason="the meta device is PyTorch's")
    try:
        xpnet.set_backend("torch", device="meta")
    except (xpnet.BackendUnavailableError, ValueError) as e:
        pytest.skip(f"this torch backend has no meta device: {e}")
    model = xpnet.Sequential([L.Affine(4, 8), L.BatchNorm(8), L.ReLU(), L.Dropout(0.2), L.Affine(8, 3)])
    x, t = torch.zeros(40, 4, device="meta"), torch.zeros(40, dtype=torch.int64, device="meta")
    schedule = xpnet.schedules.warmup_cosine(0.1, 2, 10, unit="step")
    trainer = xpnet.Trainer(model, Momentum(0.1), batch_size=16, verbose=False, schedule=schedule, clip_norm=1.0)
    trainer.train_epoch(x, t, np.arange(40))
    assert trainer.optimizer.t == 3 and trainer.optimizer.lr == schedule(2)
    assert model.params["0.W"].device.type == "meta"

"""Run checkpoints: exact resume, interrupts that save, refusals (xpnet/training/checkpoint.py, run.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_distributed import mpiexec, needs_mpi
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet.checkpoint import Interrupted, info
from xpnet.cli import main
from xpnet.optimizers import SGD, Adam


@pytest.fixture(scope="module")
def digits():
    (x, t), (xt, tt) = xpnet.datasets.load_digits()
    return (x[:250], t[:250]), (xt[:90], tt[:90])  # 250 = 7 batches of 32 and an uneven 26


def build(seed=3):
    xpnet.seed(seed)
    model = xpnet.Sequential([L.Affine(64, 24), L.BatchNorm(24), L.ReLU(), L.Dropout(0.3), L.Affine(24, 10)])
    return model, Adam(0.01)


def trainer(epochs, **options):
    model, opt = build()
    return xpnet.Trainer(model, opt, epochs=epochs, batch_size=32, seed=5, verbose=False, **options)


def strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def records(history):
    return strip(history.records)


def assert_same_run(a, b):
    """Bitwise the same parameters, buffers, optimizer state and history (times aside)."""
    for kind in ("params", "buffers"):
        mine, theirs = getattr(a.model, kind), getattr(b.model, kind)
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert np.array_equal(host(mine[k]), host(theirs[k])), f"{kind} {k}"
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["t"] == sb["t"] and sa["state"].keys() == sb["state"].keys()
    for k, slots in sa["state"].items():
        for slot, value in slots.items():
            assert np.array_equal(host(value), host(sb["state"][k][slot])), f"optimizer {k}/{slot}"
    assert records(a.history) == records(b.history)
    assert a.history.config == b.history.config


def test_two_plus_two_epochs_equal_four(cpu_backend, digits, tmp_path):
    """Dropout, BatchNorm, Adam, shuffled batches with an uneven last one: resuming changes no bit."""
    (x, t), (xt, tt) = digits
    straight = trainer(4)
    straight.fit(x, t, xt, tt)
    path = tmp_path / "run.ckpt"
    trainer(2, checkpoint=path).fit(x, t, xt, tt)
    assert info(path)["epoch"] == 2 and info(path)["done"]
    xpnet.seed(123)  # another process would start with other random states
    resumed = xpnet.Trainer.from_checkpoint(path, epochs=4, verbose=False)
    assert resumed.model.backend == xpnet.get_backend() and resumed.checkpoint == path
    resumed.fit(x, t, xt, tt)
    assert_same_run(straight, resumed)
    assert info(path)["epoch"] == 4  # it kept writing to the same file


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_finishes_the_step_saves_and_resumes_exactly(digits, tmp_path, signum):
    (x, t), (xt, tt) = digits
    straight = trainer(3)
    straight.fit(x, t, xt, tt)
    path = tmp_path / "run.ckpt"
    stopped = trainer(3, checkpoint=path)
    update, calls = stopped.optimizer.update, []

    def update_then_signal(params, grads):  # a signal arriving during step 11 (epoch 2, step 3)
        update(params, grads)
        calls.append(1)
        if len(calls) == 11:
            os.kill(os.getpid(), signum)

    stopped.optimizer.update = update_then_signal
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)  # SIG_IGN when run in the background
    with pytest.raises(Interrupted) as e:
        stopped.fit(x, t, xt, tt)
    assert isinstance(e.value, KeyboardInterrupt) and e.value.exit_code == 128 + signum
    assert e.value.path == path and e.value.epoch == 2 and 0 < e.value.step < 8
    saved = info(path)
    assert (saved["epoch"], saved["step"], saved["done"]) == (1, e.value.step, False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    resumed = xpnet.Trainer.from_checkpoint(path, verbose=False)
    resumed.fit(x, t, xt, tt)
    assert_same_run(straight, resumed)


def test_checkpoint_every_k_epochs_and_at_the_end(digits, tmp_path):
    (x, t), _ = digits
    path = tmp_path / "run.ckpt"
    seen = []
    tr = trainer(5, checkpoint=path, checkpoint_every=2, callbacks=[lambda tr, r: seen.append(info(path)["epoch"])])
    tr.fit(x, t)
    assert seen == [0, 0, 2, 2, 4]  # epoch 0: written as training starts
    assert info(path)["epoch"] == 5 and info(path)["done"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_checkpoint_is_a_model_file(digits, tmp_path):
    (x, t), _ = digits
    path = tmp_path / "run.ckpt"
    tr = trainer(1, checkpoint=path)
    tr.fit(x, t)
    model, opt = xpnet.load_checkpoint(path)
    assert np.array_equal(host(model.predict(x)), host(tr.model.predict(x)))
    assert type(opt) is Adam and opt.t == tr.optimizer.t
    tr.model.save(tmp_path / "model.npz", optimizer=tr.optimizer)
    with pytest.raises(ValueError, match="without a training run"):
        xpnet.Trainer.from_checkpoint(tmp_path / "model.npz")


def test_a_finished_or_stopped_run_trains_no_further(digits, tmp_path):
    (x, t), _ = digits
    path = tmp_path / "run.ckpt"
    tr = trainer(5, checkpoint=path, callbacks=[lambda tr, r: r["epoch"] == 2])  # stops after epoch 2
    tr.fit(x, t)
    again = xpnet.Trainer.from_checkpoint(path, verbose=False)
    assert len(again.fit(x, t)) == 2
    assert_same_run(tr, again)
    longer = xpnet.Trainer.from_checkpoint(path, epochs=6, verbose=False)
    assert longer.fit(x, t).epoch == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="already reached epoch 6"):
        xpnet.Trainer.from_checkpoint(path, epochs=3)


def test_mismatched_checkpoints_and_data_are_refused(digits, tmp_path):
    (x, t), (xt, tt) = digits
    path = tmp_path / "run.ckpt"
    trainer(1, checkpoint=path).fit(x, t, xt, tt)
    xpnet.seed(0)
    other = xpnet.Sequential([L.Affine(64, 16), L.ReLU(), L.Affine(16, 10)])
    with pytest.raises(ValueError, match="another architecture"):
        xpnet.Trainer(other, Adam(0.01), batch_size=32, seed=5).restore(path)
    with pytest.raises(ValueError, match="optimizer"):
        xpnet.Trainer(build()[0], SGD(0.1), batch_size=32, seed=5).restore(path)
    with pytest.raises(ValueError, match="batch_size=50"):
        xpnet.Trainer(*build(), batch_size=50, seed=5).restore(path)
    with pytest.raises(ValueError, match="batch_size comes from the checkpoint"):
        xpnet.Trainer.from_checkpoint(path, batch_size=10)
    for args, match in [
        ((x[:200], t[:200], xt, tt), "shape"),
        ((x[::-1], t[::-1], xt, tt), "differ"),
        ((x, t), "with test data"),
    ]:
        with pytest.raises(ValueError, match=match):
            xpnet.Trainer.from_checkpoint(path, epochs=2, verbose=False).fit(*args)


def test_bad_checkpoint_options(tmp_path):
    model, opt = build()
    with pytest.raises(ValueError, match="does not exist"):
        xpnet.Trainer(model, opt, checkpoint=tmp_path / "missing" / "run.ckpt")
    with pytest.raises(ValueError, match="is a folder"):
        xpnet.Trainer(model, opt, checkpoint=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_every"):
        xpnet.Trainer(model, opt, checkpoint_every=0)


# -- the command line -------------------------------------------------------------------------
def _train(*args):
    return [
        "train",
        "--quiet",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--dropout",
        "0.2",
        "--batchnorm",
        "--hidden",
        "32",
        *args,
    ]


def _start(path):
    """``xpnet train`` in a subprocess, endless, once it has written its first checkpoint."""
    p = subprocess.Popen(
        [sys.executable, "-m", "xpnet", *_train("--epochs", "100000", "--checkpoint", str(path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start = time.monotonic()
    while not path.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - start < 120, "no checkpoint written"
        time.sleep(0.005)
    return p


def test_sigint_exits_130_with_the_resume_command(tmp_path):
    path = tmp_path / "run.ckpt"
    p = _start(path)
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"xpnet train --resume {path}" in err
    saved = info(path)
    assert not saved["done"]
    assert main(["train", "--resume", str(path), "--epochs", str(saved["epoch"] + 1), "--quiet"]) == 0
    assert info(path)["done"] and len(info(path)["history"]["records"]) == saved["epoch"] + 1


def test_sigkill_leaves_a_checkpoint_that_resume_finishes(tmp_path):
    path = tmp_path / "run.ckpt"
    p = _start(path)
    time.sleep(0.05)
    p.kill()  # SIGKILL: no handler runs, perhaps in the middle of a write
    p.communicate()
    assert xpnet.load(path).n_params() > 0  # the last complete checkpoint
    epochs = str(info(path)["epoch"] + 2)
    assert main(["train", "--resume", str(path), "--epochs", epochs, "--save", str(tmp_path / "resumed.npz")]) == 0
    assert info(path)["done"] and info(path)["epoch"] == int(epochs)
    assert main([*_train("--epochs", epochs, "--save", str(tmp_path / "straight.npz"))]) == 0
    with np.load(tmp_path / "resumed.npz") as a, np.load(tmp_path / "straight.npz") as b:
        assert a.files == b.files
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k


def test_resume_refuses_options_that_change_the_run(tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    assert main(["train", "--epochs", "1", "--quiet", "--checkpoint", str(path)]) == 0
    assert main(["train", "--epochs", "2", "--checkpoint", str(path)]) == 2  # a bad command line: status 2
    assert "xpnet train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing.ckpt")]) == 2
    assert capsys.readouterr().err.startswith("xpnet train: error: --resume: ")
    for option in (["--hidden", "10"], ["--lr", "0.5"], ["--dataset", "mnist"], ["--batchnorm"]):
        assert main(["train", "--resume", str(path), *option]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xpnet train: error: --") and "differs from the run's" in err
        assert len(err.strip().splitlines()) == 1
    assert main(["train", "--resume", str(path), "--quiet"]) == 0  # finished: nothing left to train
    assert main(["train", "--resume", str(path), "--lr", "0.1", "--epochs", "2", "--quiet"]) == 0  # same value: fine
    assert info(path)["epoch"] == 2 and info(path)["info"]["cli"]["epochs"] == 2


def test_compare_rows_resume_per_run(tmp_path, capsys):
    folder = tmp_path / "runs"
    argv = [
        "compare",
        "--lr",
        "0.1,0.2",
        "--epochs",
        "2",
        "--quiet",
        "--checkpoint",
        str(folder),
        "--history",
        str(tmp_path / "h.json"),
    ]
    assert main(argv) == 0
    files = sorted(folder.glob("*.ckpt"))
    assert len(files) == 2 and all(info(f)["done"] for f in files)
    first = (tmp_path / "h.json").read_text()
    files[0].unlink()
    assert main(argv) == 0  # one row retrained, the other read back (its recorded seconds unchanged)
    old, new = json.loads(first), json.loads((tmp_path / "h.json").read_text())
    assert sorted(o["records"] == n["records"] for o, n in zip(old, new)) == [False, True]
    assert [strip(h["records"]) for h in old] == [strip(h["records"]) for h in new]  # retrained the same


@needs_mpi
def test_mpi_rank_0_writes_and_every_rank_resumes_exactly(tmp_path):
    """Two ranks, each with its own dropout stream: 2 epochs + resume 2 equals 4 epochs, bit for bit."""
    common = [
        "-m",
        "xpnet",
        "train",
        "--distributed",
        "--quiet",
        "--dropout",
        "0.3",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--hidden",
        "24",
    ]
    path = tmp_path / "run.ckpt"
    runs = [
        [*common, "--epochs", "2", "--checkpoint", str(path)],
        [
            "-m",
            "xpnet",
            "train",
            "--distributed",
            "--resume",
            str(path),
            "--epochs",
            "4",
            "--quiet",
            "--save",
            str(tmp_path / "resumed.npz"),
        ],
        [*common, "--epochs", "4", "--save", str(tmp_path / "straight.npz")],
    ]
    for argv in runs:
        p = mpiexec(*argv, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    assert len(info(path)["rng"]) == 2 and info(path)["rng"][0] != info(path)["rng"][1]
    with np.load(tmp_path / "resumed.npz") as a, np.load(tmp_path / "straight.npz") as b:
        for k in b.files:
            assert np.array_equal(a[k], b[k]), k


def test_controls_resume_exactly(digits, tmp_path):
    """A schedule (joined), clipping, a validation split with patience and restore_best: from_checkpoint
    rebuilds them, the best weights so far included, and 2 + 2 epochs equal 4."""
    from xpnet import schedules

    (x, t), (xt, tt) = digits
    jump = schedules.Join((schedules.Constant(0.05), schedules.Constant(0.3)), (2,))  # epochs 3-4 get worse
    options = dict(schedule=jump, clip_norm=0.5, restore_best=True)
    fit = dict(validation_split=0.2, patience=10)
    straight = trainer(4, **options)
    val = straight.fit(x, t, xt, tt, **fit)["val_loss"]
    assert min(val) == val[1]  # the best epoch is before the checkpoint: only a saved copy can restore it
    path = tmp_path / "run.ckpt"
    first = trainer(2, checkpoint=path, **options)
    first.fit(x, t, xt, tt, **fit)
    resumed = xpnet.Trainer.from_checkpoint(path, epochs=4, verbose=False)
    assert resumed.schedule == options["schedule"] and resumed.clip_norm == 0.5 and resumed.restore_best
    resumed.fit(x, t, xt, tt, **fit)
    assert_same_run(straight, resumed)
    custom = trainer(1, checkpoint=tmp_path / "custom.ckpt", schedule=lambda n: 0.01)
    custom.fit(x, t)
    with pytest.raises(ValueError, match="pass it again"):
        xpnet.Trainer.from_checkpoint(tmp_path / "custom.ckpt")
    assert (
        len(
            xpnet.Trainer.from_checkpoint(
                tmp_path / "custom.ckpt", schedule=lambda n: 0.01, epochs=2, verbose=False
            ).fit(x, t)
        )
        == 2
    )

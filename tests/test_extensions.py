"""The trainer's extension protocol (xpnet.training.extension): hooks, stops, order, and state that
travels with a run checkpoint so that a resumed run is exact."""

import numpy as np
import pytest
from test_trainer import blobs

import xpnet
from xpnet import layers as L
from xpnet.checkpoint import Interrupted, info
from xpnet.optimizers import SGD
from xpnet.training import Extension
from xpnet.training.extensions import Checkpoint, EarlyStopping, PrintEpoch, RecordHistory


def make(seed=0):
    xpnet.seed(seed)
    return xpnet.Sequential([L.Affine(4, 8), L.ReLU(), L.Dropout(0.2), L.Affine(8, 3)])


class Log(Extension):
    """Every hook call, in order, into a shared list."""

    def __init__(self, name, calls, stop_at=None):
        self.name, self.calls, self.stop_at = name, calls, stop_at or {}

    def on_fit_start(self, trainer):
        self.calls.append((self.name, "fit_start"))
        return self.stop_at.get("fit_start")

    def on_epoch_start(self, trainer, epoch):
        self.calls.append((self.name, "epoch_start", epoch))

    def on_step(self, trainer, step):
        self.calls.append((self.name, "step", trainer.epoch, step))
        return self.stop_at.get("step") == (trainer.epoch, step)

    def on_epoch_end(self, trainer, record):
        self.calls.append((self.name, "epoch_end", record["epoch"]))

    def on_fit_end(self, trainer):
        self.calls.append((self.name, "fit_end"))


class Counter(Extension):
    """State that must survive a resume: steps seen, and a running sum of the train loss."""

    def on_fit_start(self, trainer):
        self.steps, self.loss_sum = 0, 0.0

    def on_step(self, trainer, step):
        self.steps += 1

    def on_epoch_end(self, trainer, record):
        self.loss_sum += record["train_loss"]
        record["steps_so_far"] = self.steps

    def state_dict(self):
        return {"counter_steps": self.steps, "counter_loss": self.loss_sum, "counter_array": np.arange(3.0)}

    def load_state_dict(self, state):
        self.steps, self.loss_sum = state.get("counter_steps", 0), state.get("counter_loss", 0.0)
        np.testing.assert_array_equal(state["counter_array"], np.arange(3.0))  # host arrays come back too


def test_hooks_run_in_order_around_the_loop(rng):
    x, t = blobs(rng, 40)
    calls = []
    trainer = xpnet.Trainer(
        make(), SGD(0.1), epochs=2, batch_size=20, verbose=False, callbacks=[Log("a", calls), Log("b", calls)]
    )
    trainer.fit(x, t)
    assert calls == [
        ("a", "fit_start"),
        ("b", "fit_start"),
        *[
            call
            for epoch in (1, 2)
            for call in [
                ("a", "epoch_start", epoch),
                ("b", "epoch_start", epoch),
                ("a", "step", epoch, 1),
                ("b", "step", epoch, 1),
                ("a", "step", epoch, 2),
                ("b", "step", epoch, 2),
                ("a", "epoch_end", epoch),
                ("b", "epoch_end", epoch),
            ]
        ],
        ("b", "fit_end"),  # fit end: reversed, the last one closes first
        ("a", "fit_end"),
    ]


def test_default_extensions_come_from_the_keywords(tmp_path):
    mine = Log("mine", [])
    trainer = xpnet.Trainer(make(), SGD(0.1), patience=2, checkpoint=tmp_path / "run.ckpt", callbacks=[mine])
    kinds = [type(e) for e in trainer.extensions]
    assert kinds[-1] is Checkpoint and trainer.extensions[-2] is mine  # user extensions before the checkpoint
    assert {RecordHistory, PrintEpoch, EarlyStopping} <= set(kinds)
    assert next(e for e in trainer.extensions if isinstance(e, EarlyStopping)).patience == 2


def test_a_step_hook_stops_the_run_after_that_epochs_evaluation(rng):
    x, t = blobs(rng, 60)
    calls = []
    h = xpnet.Trainer(
        make(), SGD(0.1), epochs=5, batch_size=10, verbose=False, callbacks=[Log("a", calls, {"step": (2, 3)})]
    ).fit(x, t)
    assert len(h) == 2  # epoch 2 ended after its step 3, was evaluated and recorded; no epoch 3
    assert [c for c in calls if c[1] == "step" and c[2] == 2][-1] == ("a", "step", 2, 3)


def test_a_fit_start_hook_stops_before_any_epoch(rng):
    x, t = blobs(rng)
    calls = []
    h = xpnet.Trainer(make(), SGD(0.1), epochs=3, verbose=False, callbacks=[Log("a", calls, {"fit_start": True})]).fit(
        x, t
    )
    assert len(h) == 0 and calls == [("a", "fit_start"), ("a", "fit_end")]


def test_trainer_stop_set_by_a_callback_stops_the_run(rng):
    x, t = blobs(rng)

    def stop_at_2(trainer, record):
        trainer.stop = record["epoch"] == 2

    trainer = xpnet.Trainer(make(), SGD(0.1), epochs=5, batch_size=10, verbose=False, callbacks=[stop_at_2])
    assert len(trainer.fit(x, t)) == 2
    assert trainer.train_epoch(*trainer.model.check_data(x, t), np.arange(60)) == 6  # a later epoch: every step


def test_a_callback_that_is_no_function_is_refused():
    with pytest.raises(TypeError, match="callbacks: 3 is neither an Extension nor a function"):
        xpnet.Trainer(make(), SGD(0.1), callbacks=[3])


def test_extension_state_is_saved_and_a_resumed_run_is_exact(cpu_backend, rng, tmp_path):
    """An extension's state goes into the checkpoint and comes back: 2 + 2 epochs (stopped mid-epoch by a
    signal, too) equal 4, the extension's counts included."""
    x, t = blobs(rng, 50)
    xpnet.set_default_dtype("float64")

    def trainer(epochs, **kw):
        return xpnet.Trainer(make(), SGD(0.1), epochs=epochs, batch_size=8, seed=3, verbose=False, **kw)

    ref_counter = Counter()
    ref = trainer(4, callbacks=[ref_counter])
    ref.fit(x, t, x[:20], t[:20])

    path = tmp_path / "run.ckpt"
    trainer(2, checkpoint=path, callbacks=[Counter()]).fit(x, t, x[:20], t[:20])
    saved = info(path)
    assert saved["counter_steps"] == 14 and saved["counter_loss"] > 0  # 2 epochs of 7 steps

    counter = Counter()
    resumed = xpnet.Trainer.from_checkpoint(path, 4, verbose=False, callbacks=[counter])
    resumed.fit(x, t, x[:20], t[:20])
    assert counter.steps == ref_counter.steps == 28 and counter.loss_sum == ref_counter.loss_sum
    timeless = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in h.records] for h in (ref.history, resumed.history)
    ]
    assert timeless[0] == timeless[1] and timeless[0][-1]["steps_so_far"] == 28
    for k, p in ref.model.params.items():
        np.testing.assert_array_equal(xpnet.to_numpy(resumed.model.params[k]), xpnet.to_numpy(p))


def test_a_signal_mid_epoch_saves_the_extension_state_of_that_step(rng, tmp_path):
    import signal

    x, t = blobs(rng, 50)
    path = tmp_path / "run.ckpt"

    class SignalAt(Extension):
        def on_step(self, trainer, step):
            if (trainer.epoch, step) == (2, 3):
                signal.raise_signal(signal.SIGINT)

    tr = xpnet.Trainer(make(), SGD(0.1), epochs=4, batch_size=8, verbose=False, checkpoint=path)
    tr.callbacks = [Counter(), SignalAt()]
    with pytest.raises(Interrupted):
        tr.fit(x, t)
    saved = info(path)
    assert (saved["epoch"], saved["step"], saved["counter_steps"]) == (1, 3, 10)


def test_a_state_key_taken_by_the_run_is_refused(rng, tmp_path):
    class Clash(Extension):
        def state_dict(self):
            return {"epoch": 3}

    x, t = blobs(rng)
    with pytest.raises(ValueError, match=r"Clash.state_dict\(\): 'epoch' is taken in the run's state"):
        xpnet.Trainer(make(), SGD(0.1), epochs=2, verbose=False, checkpoint=tmp_path / "c", callbacks=[Clash()]).fit(
            x, t
        )


def test_the_run_state_keeps_its_format(rng, tmp_path):
    """The checkpoint's run state has today's fields, whatever extension now owns them."""
    x, t = blobs(rng)
    path = tmp_path / "run.ckpt"
    xpnet.Trainer(make(), SGD(0.1), epochs=2, verbose=False, checkpoint=path, restore_best=True).fit(
        x, t, validation_split=0.25
    )
    run = info(path)
    assert set(run) >= {
        "version",
        "epoch",
        "step",
        "elapsed",
        "done",
        "trainer",
        "history",
        "best",
        "since_best",
        "order_rng",
        "rng",
        "backend",
        "data",
        "info",
        "schedule",
        "best_weights",
    }
    assert run["best_weights"]["epoch"] in (1, 2) and isinstance(run["since_best"], int)
    _, arrays = xpnet.checkpoint.read(path)
    assert {k for k in arrays if k.startswith("run/")} == {
        f"run/best/{kind}/{k}"
        for kind, keys in (("params", ("0.W", "0.b", "3.W", "3.b")), ("buffers", ()))
        for k in keys
    }


def test_the_docs_gradient_norm_extension_resumes_exactly(rng, tmp_path):
    """docs/training-loop.md's worked example (run as written by test_docs.py): its GradientNorm, stopped by a
    signal in the middle of epoch 2 and resumed, gives the grad_norm column of the uninterrupted run."""
    import pathlib
    import re
    import signal

    page = (pathlib.Path(__file__).parents[1] / "docs" / "training-loop.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "class GradientNorm" in b)
    names: dict = {}
    exec(compile(code, "docs/training-loop.md", "exec"), names)
    GradientNorm = names["GradientNorm"]
    x, t = blobs(rng, 50)

    def trainer(**kw):
        return xpnet.Trainer(make(), SGD(0.1), epochs=3, batch_size=8, verbose=False, **kw)

    ref = trainer(callbacks=[GradientNorm()]).fit(x, t)

    class SignalAt(Extension):
        def on_step(self, trainer, step):
            if (trainer.epoch, step) == (2, 4):
                signal.raise_signal(signal.SIGINT)

    path = tmp_path / "run.ckpt"
    with pytest.raises(Interrupted):
        trainer(checkpoint=path, callbacks=[GradientNorm(), SignalAt()]).fit(x, t)
    assert info(path)["grad_norm_steps"] == 4
    resumed = xpnet.Trainer.from_checkpoint(path, verbose=False, callbacks=[GradientNorm()]).fit(x, t)
    assert len(ref) == 3 and resumed["grad_norm"] == ref["grad_norm"]

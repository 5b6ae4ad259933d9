import io
import json

import numpy as np
import pytest

import xpnet
from xpnet import layers as L
from xpnet.optimizers import SGD


def blobs(rng, n=60, classes=3, features=4):
    centers = rng.standard_normal((classes, features)) * 4
    t = rng.integers(0, classes, n)
    return (centers[t] + rng.standard_normal((n, features))).astype(np.float32), t


def make(seed=0):
    xpnet.seed(seed)
    return xpnet.Sequential([L.Affine(4, 8), L.ReLU(), L.Affine(8, 3)])


def test_history_bookkeeping(backend, rng):
    x, t = blobs(rng)
    xt, tt = blobs(rng, 30)
    h = xpnet.Trainer(make(), SGD(0.1), epochs=4, batch_size=16, verbose=False).fit(x, t, xt, tt)
    assert len(h) == 4 and h["epoch"] == [1, 2, 3, 4]
    for r in h.records:
        assert set(r) == {"epoch", "train_acc", "train_loss", "test_acc", "test_loss", "seconds"}
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1 and r["seconds"] >= 0
        assert isinstance(r["train_loss"], float)
    assert h.records[-1]["train_loss"] < h.records[0]["train_loss"]


def test_metrics_match_a_direct_evaluation(rng):
    x, t = blobs(rng)
    model = make()
    h = xpnet.Trainer(model, SGD(0.1), epochs=2, batch_size=7, verbose=False, eval_batch_size=11).fit(x, t)
    r = h.records[-1]
    assert r["train_acc"] == pytest.approx(model.accuracy(x, t))
    assert r["train_loss"] == pytest.approx(float(model.loss(x, t, train=False)), rel=1e-5)
    assert r["test_acc"] is None


def test_same_seed_same_run_on_every_backend(backend, rng):
    x, t = blobs(rng)
    xpnet.set_default_dtype("float64")
    h = xpnet.Trainer(make(3), SGD(0.1), epochs=3, batch_size=16, seed=5, verbose=False).fit(x, t)
    with xpnet.use_backend("numpy"):
        ref = xpnet.Trainer(make(3), SGD(0.1), epochs=3, batch_size=16, seed=5, verbose=False).fit(x, t)
    np.testing.assert_allclose(h["train_loss"], ref["train_loss"], rtol=1e-9)


def test_epochs_to_and_summary():
    h = xpnet.History()
    for e, acc in enumerate([0.9, 0.951, 0.97, 0.965, 0.981], start=1):
        h.append({"epoch": e, "train_acc": 1.0, "train_loss": 0.1, "test_acc": acc, "test_loss": 0.2, "seconds": 1.0})
    assert h.epochs_to(0.95) == 2 and h.epochs_to(0.97) == 3 and h.epochs_to(0.98) == 5 and h.epochs_to(0.99) is None
    s = h.summary()
    assert s == {"train": 100.0, "test": 98.1, "best": 98.1, "TS95": 2, "TS97": 3, "TS98": 5, "time": 5.0}


def test_history_files_and_plot(tmp_path, rng):
    x, t = blobs(rng)
    h = xpnet.Trainer(make(), SGD(0.1), epochs=2, verbose=False).fit(x, t, x, t)
    h.save(tmp_path / "h.json")
    h.save(tmp_path / "h.csv")
    back = xpnet.History.load(tmp_path / "h.json")
    assert back.records == json.loads(json.dumps(h.records))
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_acc,train_loss,test_acc,test_loss,seconds" and len(lines) == 3
    pytest.importorskip("matplotlib", reason="plotting is the optional extra xpnet[plot]")
    h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=".json or .csv"):
        h.save(tmp_path / "h.txt")


def test_log_lines_and_summary_first(rng):
    x, t = blobs(rng)
    out = io.StringIO()
    xpnet.Trainer(make(), SGD(0.1), epochs=2, out=out).fit(x, t, x, t)
    text = out.getvalue()
    assert text.startswith("layer")
    lines = [line for line in text.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "train acc" in lines[0] and "test loss" in lines[0]
    assert "\r" not in text and "step/s" not in text  # not a terminal: no progress bar


def test_progress_bar_when_asked(rng):
    x, t = blobs(rng)
    out = io.StringIO()
    xpnet.Trainer(make(), SGD(0.1), epochs=1, batch_size=10, out=out, progress=True).fit(x, t)
    assert "0/6 [" in out.getvalue() and "step/s" in out.getvalue()  # tqdm's bar, written despite no terminal


def test_silent_when_asked(rng, capsys):
    x, t = blobs(rng)
    xpnet.Trainer(make(), SGD(0.1), epochs=1, verbose=False).fit(x, t)
    assert capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point of the test
def test_diverging_learning_rate_stops_with_the_epoch(rng):
    x, t = blobs(rng)
    with pytest.raises(ValueError, match=r"non-finite train loss \(nan\) at epoch \d"):
        xpnet.Trainer(make(), SGD(1e6), epochs=3, verbose=False).fit(x * 1e3, t)


def test_nan_in_data_is_reported(backend, rng):
    x, t = blobs(rng)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="epoch 1"):
        xpnet.Trainer(make(), SGD(0.1), epochs=2, verbose=False).fit(x, t)


def test_labels_checked_once_before_training(rng):
    x, t = blobs(rng)
    t[5] = 7
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        xpnet.Trainer(make(), SGD(0.1), epochs=1, verbose=False).fit(x, t)


def test_early_stopping_and_callbacks(rng):
    x, t = blobs(rng)
    seen = []
    h = xpnet.Trainer(
        make(), SGD(0.1), epochs=10, verbose=False, callbacks=[lambda tr, r: seen.append(r["epoch"]) or r["epoch"] == 3]
    ).fit(x, t)
    assert len(h) == 3 and seen == [1, 2, 3]
    h = xpnet.Trainer(make(), SGD(1e-12), epochs=10, verbose=False, patience=2).fit(x, t)
    assert len(h) < 10  # a learning rate too small to improve the loss: stops after 2 flat epochs


def test_weight_decay_adds_the_penalty_to_the_reported_loss(rng):
    x, t = blobs(rng)
    a = xpnet.Trainer(make(), SGD(1e-12), epochs=1, verbose=False).fit(x, t)
    model = make()
    b = xpnet.Trainer(model, SGD(1e-12, weight_decay=0.1), epochs=1, verbose=False).fit(x, t)
    penalty = 0.05 * sum(float(np.sum(xpnet.to_numpy(model.params[k]) ** 2)) for k in ("0.W", "2.W"))
    assert b.records[0]["train_loss"] == pytest.approx(a.records[0]["train_loss"] + penalty, rel=1e-5)


def test_history_columns_as_attributes(tmp_path, rng):
    x, t = blobs(rng)
    h = xpnet.Trainer(make(), SGD(0.1), epochs=2, verbose=False).fit(x, t, x, t)
    assert h.test_acc == h["test_acc"] and len(h.seconds) == 2 and h.total_seconds == pytest.approx(sum(h.seconds))
    h.to_json(tmp_path / "a.json")
    h.to_csv(tmp_path / "a.csv")
    assert xpnet.History.load(tmp_path / "a.json").train_loss == h.train_loss
    assert (tmp_path / "a.csv").read_text() == h.to_csv()

"""Issue 11's library side: history files, checkpoint errors, label checks, units, warnings, builders."""

import math
import warnings

import numpy as np
import pytest

import xpnet
from xpnet import datasets, models
from xpnet.history import History, load_histories, plot_histories, save_histories


def _history(n=3, offset=0.0):
    h = History(config={"activation": "relu", "lr": 0.1})
    for e in range(1, n + 1):
        h.append(
            {
                "epoch": e,
                "train_acc": 0.5 + e / 10 + offset,
                "train_loss": 1 / e,
                "test_acc": 0.4 + e / 10 + offset,
                "test_loss": 1.1 / e,
                "seconds": 0.125 * e,
            }
        )
    return h


@pytest.mark.parametrize("suffix", [".json", ".csv", ".CSV"])
def test_history_save_load_round_trip(tmp_path, suffix):
    h = _history()
    h.records[1]["test_acc"] = None  # an epoch without test data
    h.records[2]["lr"] = 0.05  # a column beyond the standard ones
    h.save(tmp_path / f"h{suffix}")
    back = History.load(tmp_path / f"h{suffix}")
    assert back.records == h.records
    assert back.summary() == h.summary()
    if suffix == ".json":
        assert back.config == h.config


def test_history_files_refuse_other_suffixes_and_contents(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        _history().save(tmp_path / "h.txt")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="bad.json: not an xpnet history file"):
        History.load(tmp_path / "bad.json")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv: not an xpnet history file"):
        History.load(tmp_path / "bad.csv")


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_several_runs_in_one_file(tmp_path, suffix):
    runs = {"activation=relu": _history(), "activation=tanh": _history(2, 0.05)}
    save_histories(runs, tmp_path / f"runs{suffix}")
    back = load_histories(tmp_path / f"runs{suffix}")
    assert list(back) == list(runs)
    assert all(back[k].records == runs[k].records for k in runs)
    with pytest.raises(ValueError, match="holds 2 runs"):
        History.load(tmp_path / f"runs{suffix}")


def test_units_fractions_and_percent():
    h = _history()
    assert h.epochs_to(0.65) == 3 and h.summary()["TS95"] is None
    assert math.isclose(h.best(), 0.7) and h.summary()["best"] == 70.0
    with pytest.raises(ValueError, match="fraction"):
        h.epochs_to(97)
    for doc in (History.epochs_to.__doc__, History.summary.__doc__, xpnet.Sequential.accuracy.__doc__):
        assert "fraction" in doc or "percent" in doc


def test_plot_is_readable(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the optional matplotlib")
    runs = {f"run {i}": _history(3, i / 100) for i in range(12)}
    fig = plot_histories(runs, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    loss, acc = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    test_colours = [line.get_color() for line in loss.lines if line.get_linestyle() == "-"]
    assert len(test_colours) == 12 and len(set(map(str, test_colours))) == 12  # a colour per run
    assert {line.get_linestyle() for line in acc.lines} == {"-", "--"}  # test solid, train dashed
    (legend,) = fig.legends
    assert len(legend.get_texts()) == 12 + 2  # runs by colour, splits by style: not 24 entries
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    assert legend.get_window_extent(renderer).x0 >= acc.get_window_extent(renderer).x1  # outside the axes


def _model(rng, dtype=None):
    xpnet.seed(0)
    return models.mlp([4, 5, 3])


def test_accuracy_checks_labels_like_loss(rng):
    model = _model(rng)
    x = rng.standard_normal((4, 4))
    for t in (np.array([0, 1, 2, 3]), np.array([0, 1, -1, 2])):
        with pytest.raises(ValueError, match=r"\[0, 2\]"):
            model.accuracy(x, t)
    with pytest.raises(ValueError, match="4 inputs but 3 targets"):
        model.accuracy(x, np.array([0, 1, 2]))
    acc = model.accuracy(x, np.array([0, 1, 2, 0]))
    assert 0.0 <= acc <= 1.0


def test_gradient_check_warns_below_float64(rng):
    x, t = rng.standard_normal((3, 4)), np.array([0, 1, 2])
    with pytest.warns(RuntimeWarning, match="float64"):
        xpnet.gradient_check(_model(rng), x, t)
    previous = xpnet.get_default_dtype()
    xpnet.set_default_dtype("float64")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert max(xpnet.gradient_check(_model(rng), x, t).values()) < 1e-6
    finally:
        xpnet.set_default_dtype(previous)


def test_cnn_builders_take_the_shape_from_the_data_or_name_the_argument():
    (x, t), _ = datasets.load_digits(flatten=False)
    xpnet.seed(0)
    model = models.simple_cnn(x)  # (N, 1, 8, 8) → input_shape (1, 8, 8)
    assert model.input_shape == (1, 8, 8) and 0 <= model.accuracy(x[:20], t[:20]) <= 1
    assert models.deep_cnn(np.zeros((2, 1, 16, 16), np.float32)).input_shape == (1, 16, 16)
    with pytest.raises(ValueError, match=r"input_shape=x.shape\[1:\]"):
        models.simple_cnn().loss(x[:4], t[:4])  # built for MNIST's 28×28, given 8×8
    for use in (lambda m: m.predict(x[:4]), lambda m: m.accuracy(x[:4], t[:4])):  # the same error everywhere
        with pytest.raises(ValueError, match=r"input_shape=x.shape\[1:\]"):
            use(models.simple_cnn())
    with pytest.raises(ValueError, match=r"simple_cnn: input_shape .*flatten=False"):
        models.simple_cnn(np.zeros((2, 64)))


@pytest.fixture
def checkpoint(tmp_path):
    xpnet.seed(0)
    path = tmp_path / "m.npz"
    models.mlp([4, 5, 3]).save(path)
    return path


def _refused(path, words):
    with pytest.raises(ValueError) as info:
        xpnet.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {words} (") and "allow_pickle" not in message
    return message


def test_checkpoint_errors_name_the_file_and_never_numpys_pickle_advice(tmp_path, checkpoint):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x80\x04garbage" * 20)  # starts like a pickle: NumPy would advise allow_pickle=True
    _refused(garbage, "not an xpnet checkpoint")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    assert "'meta'" in _refused(foreign, "not an xpnet checkpoint")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "xpnet"}], dtype=object))
    _refused(pickled, "not an xpnet checkpoint")
    data = checkpoint.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    _refused(truncated, "corrupt or truncated")
    flipped = bytearray(data)
    for i in range(200, 260):
        flipped[i] ^= 0xFF
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(bytes(flipped))
    _refused(corrupt, "corrupt or truncated")


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        models.mlp([4, 3]).save(tmp_path / "no" / "m.npz")
    assert ".tmp" not in str(info.value)


def test_missing_dataset_error_names_command_and_option(tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist()
    assert "xpnet data mnist" in str(info.value) and "--data-path" in str(info.value)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--hswish-n", "3"], "--hswish-n"),  # relu: n would be ignored
        (["train", "--model", "simple-cnn", "--hswish-n", "3"], "--hswish-n"),
        (["compare", "--activation", "relu,swish", "--hswish-n", "3"], "--hswish-n"),
        (["train", "--data-path", "/nonexistent"], "--data-path"),  # the embedded digits read no files
    ],
)
def test_options_no_run_would_use_are_refused_not_ignored(argv, option, capsys):
    from xpnet.cli import main

    assert main([*argv, "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xpnet {argv[0]}: error: {option}: ") and len(err.strip().splitlines()) == 1


def test_hswish_n_is_taken_where_a_run_uses_hswish(capsys):
    from xpnet.cli import main

    assert main(["compare", "--activation", "relu,hswish", "--hswish-n", "3", "--epochs", "1", "--quiet"]) == 0

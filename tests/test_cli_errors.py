"""The command line answers every mistake the same way (issue 24): one line on stderr naming the option
and what is valid, exit status 2, before any training, and no file written; names are case-insensitive
everywhere."""

import gzip
import struct

import numpy as np
import pytest

from xpnet import cli
from xpnet.cli import main

WRONG = [
    # type and choice errors: argparse's own checks, once a usage block
    (["train", "--lr", "abc"], "--lr"),
    (["train", "--epochs", "1.5"], "--epochs"),
    (["compare", "--epochs", "1.5"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--lr"], "--lr"),
    (["train", "--dataset", "imagenet"], "--dataset"),
    (["train", "--activation", "gelu"], "--activation"),
    (["train", "--optimizer", "lbfgs"], "--optimizer"),
    (["train", "--gradient", "finite"], "--gradient"),
    (["train", "--schedule", "warp"], "--schedule"),
    (["train", "--schedule", "cosine:x"], "--schedule"),
    (["train", "--hswish-n", "2"], "--hswish-n"),
    (["train", "--patience", "0", "--validation-split", "0.2"], "--patience"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["compare", "--seeds", "two"], "--seeds"),
    (["train", "--dataset", "mnist", "--data-path", "."], "--data-path"),  # the folder lacks the files
    (["compare", "--dataset", "mnist", "--data-path", "."], "--data-path"),
    # abbreviations are refused, not taken for the option they begin
    (["train", "--epoch", "5"], "--epoch"),
    (["compare", "--activ", "relu"], "--activ"),
    (["train", "--checkpoint-ev", "2"], "--checkpoint-ev"),
    (["bench", "--round", "1"], "--round"),
    (["data", "mnist", "--mir", "http://example.org"], "--mir"),
    # --checkpoint-every: refused up front, by its flag
    (["train", "--checkpoint-every", "0"], "--checkpoint-every"),
    (["train", "--checkpoint", "/nonexistent/run.ckpt"], "--checkpoint"),
    (["train", "--checkpoint-every", "-2"], "--checkpoint-every"),
    (["compare", "--checkpoint-every", "0"], "--checkpoint-every"),
    # xpnet bench: exit 2 as train
    (["bench", "--backend", "numpyy"], "--backend"),
    (["bench", "--network", "huge"], "--network"),
    (["bench", "--dtype", "float8"], "--dtype"),
    (["bench", "--rounds", "0"], "--rounds"),
    (["bench", "--min-time", "0"], "--min-time"),
    (["bench", "--json", "out.txt"], "--json"),
    # xpnet data
    (["data", "imagenet"], "NAME"),
    (["data"], "NAME"),
]


def _refused(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


@pytest.mark.parametrize("argv, option", WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_every_mistake_gets_one_line_and_exit_2(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a command would write lands here
    status, out, lines = _refused(argv, capsys)
    assert status == 2, lines
    assert len(lines) == 1 and lines[0].startswith(f"xpnet {argv[0]}: error: {option}: "), lines
    assert "usage:" not in lines[0] and "_" not in lines[0].split(": ")[2].split(" ")[0]  # a flag, not a name
    assert out == ""  # nothing trained, no data loaded
    assert not list(tmp_path.iterdir())  # no file written


def test_abbreviations_name_the_option_meant(capsys):
    assert main(["train", "--epoch", "5"]) == 2
    assert "did you mean --epochs?" in capsys.readouterr().err


def test_a_stray_argument_and_an_unknown_command_are_one_line(capsys):
    assert main(["train", "foo"]) == 2
    assert (
        capsys.readouterr().err
        == "xpnet train: error: unexpected argument 'foo' (xpnet train --help lists what it takes)\n"
    )
    assert main(["frobnicate"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_the_real_command_line_prints_no_usage_block(tmp_path):
    from test_cli import xpnet_cli

    for argv in (["train", "--lr", "abc"], ["train", "--epoch", "5"], ["bench", "--backend", "numpyy"]):
        run = xpnet_cli(*argv, cwd=tmp_path)
        assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
        assert "usage" not in run.stderr and run.stdout == ""
    assert not list(tmp_path.iterdir())


def test_names_are_case_insensitive_everywhere(capsys):
    argv = ["train", "--epochs", "1", "--hidden", "8", "--quiet", "--activation", "ReLU", "--optimizer", "SGD"]
    argv += ["--dtype", "Float32", "--gradient", "Backprop", "--init", "He", "--model", "MLP", "--schedule", "Cosine"]
    assert main([*argv, "--dataset", "Digits", "--backend", "NumPy"]) == 0
    assert "| relu " in capsys.readouterr().out  # shown by the name xpnet lists
    assert main(["compare", "--activation", "ReLU,TANH", "--hidden", "8", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| relu " in out and "| tanh " in out
    assert cli._data_parser().parse_args(["MNIST"]).name == "mnist"


def test_an_uppercase_dataset_is_looked_for_not_refused(tmp_path, capsys):
    """``--dataset MNIST`` is mnist: without its files it fails as mnist does (data not found in the
    ``--data-path`` given: a bad command line, exit 2)."""
    assert main(["train", "--dataset", "MNIST", "--data-path", str(tmp_path), "--epochs", "1"]) == 2
    assert "--data-path: mnist not found" in capsys.readouterr().err


# -- what the main job says: its data, its time, a diverging loss -----------------------------------
def _idx(path, array):
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    """Four IDX files of MNIST's format with 30 train and 20 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 30), ("t10k", 20)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def test_the_data_line_before_epoch_1(capsys, fake_mnist):
    assert main(["train", "--epochs", "1", "--hidden", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "data: digits (8×8, 10 classes, embedded in xpnet), 1438 train / 359 test"
    assert out[1].startswith("layer")
    for name in ("mnist", "fashion-mnist"):
        argv = ["train", "--dataset", name, "--data-path", str(fake_mnist), "--epochs", "1", "--quiet"]
        assert main([*argv, "--hidden", "8"]) == 0
        line = capsys.readouterr().out.splitlines()[0]
        assert line == f"data: {name} (28×28, 10 classes, IDX files from {fake_mnist}), 30 train / 20 test"
    assert main(["train", "--model", "simple-cnn", "--epochs", "1", "--quiet", "--validation-split", "0.2"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("data: digits (8×8, 10 classes, embedded in xpnet), 1438 train (")
    assert "held out for validation) / 359 test" in line


def test_a_resumed_run_says_which_invocation_each_time_covers(tmp_path, capsys):
    ckpt = str(tmp_path / "run.ckpt")
    assert main(["train", "--epochs", "2", "--hidden", "8", "--quiet", "--checkpoint", ckpt]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert first.startswith("wall time ")
    assert main(["train", "--resume", ckpt, "--epochs", "3", "--quiet"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("wall time of this invocation ") and "(epochs 3–3: " in line
    assert "the whole run, 3 epochs over all invocations: " in line


def test_wall_time_line_parts_are_within_their_wholes():
    class History:
        def __init__(self):
            self.records = [{"epoch": e, "seconds": 10.0} for e in (1, 2, 3, 4)]
            self.total_seconds = 40.0

    fresh = cli.wall_time_line(41.0, History())
    assert fresh == "wall time 41.0 s (training and per-epoch evaluation: 40.0 s)"
    resumed = cli.wall_time_line(21.0, History(), done_before=2)
    assert "this invocation 21.0 s (epochs 3–4: training and per-epoch evaluation 20.0 s)" in resumed
    assert "the whole run, 4 epochs over all invocations: 40.0 s" in resumed


def test_a_diverging_loss_is_warned_once_and_the_run_goes_on(capsys):
    assert main(["train", "--lr", "10", "--epochs", "3", "--hidden", "20", "--quiet"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpnet train: warning: epoch 1 ended with a training loss of ")
    assert "above ln(10) = 2.3026" in lines[0] and "the run goes on" in lines[0]
    assert "| relu " in out  # the run finished and printed its row
    assert (
        main(["compare", "--activation", "relu,tanh", "--lr", "10", "--epochs", "2", "--hidden", "20", "--quiet"]) == 0
    )
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[2] for line in lines] == ["activation=relu", "activation=tanh"]
    assert main(["train", "--epochs", "2", "--hidden", "20", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # a healthy run: no warning


def test_the_python_api_stays_silent_when_the_loss_diverges(capsys):
    import xpnet
    from xpnet.datasets import load_digits

    (x, t), (xt, tt) = load_digits()
    xpnet.seed(10)
    model = xpnet.models.mlp([64, 20, 10])
    history = xpnet.Trainer(model, xpnet.optimizers.SGD(lr=10), epochs=2, verbose=False, seed=10).fit(x, t, xt, tt)
    assert history.train_loss[0] > np.log(10)  # the same divergence as above
    assert capsys.readouterr().err == ""

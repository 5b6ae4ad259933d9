import json
import os
import re
import subprocess
import sys

import pytest

import xpnet
from xpnet.cli import main
from xpnet.history import load_histories


def xpnet_cli(*argv, env=None, **kwargs):
    """The real command line, ``python -m xpnet ...``, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "xpnet", *argv],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
        **kwargs,
    )


def test_train_defaults_on_digits(capsys, tmp_path):
    assert (
        main(["train", "--epochs", "3", "--save", str(tmp_path / "m.npz"), "--history", str(tmp_path / "h.json")]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("data: digits (8×8, 10 classes, embedded in xpnet), 1438 train / 359 test\nlayer")
    assert "epoch   3" in out
    assert "| activation | train | test" in out and "TS95 | TS97 | TS98 | time" in out
    assert (tmp_path / "m.npz").exists()
    assert len(json.loads((tmp_path / "h.json").read_text())["records"]) == 3


def test_train_options(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib")
    argv = [
        "train",
        "--epochs",
        "2",
        "--hidden",
        "30",
        "--activation",
        "hswish",
        "--hswish-n",
        "4",
        "--optimizer",
        "nesterov",
        "--lr",
        "0.05",
        "--momentum",
        "0.8",
        "--batch-size",
        "50",
        "--flooding",
        "0.01",
        "--weight-decay",
        "1e-4",
        "--dropout",
        "0.1",
        "--batchnorm",
        "--dtype",
        "float64",
        "--quiet",
        "--plot",
        str(tmp_path / "c.png"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("epoch") for line in out.splitlines()) and "| hswish" in out
    assert (tmp_path / "c.png").exists()


def test_compare_prints_one_table(capsys):
    assert main(["compare", "--activation", "relu,tanhexp", "--lr", "0.1", "0.2", "--epochs", "2", "--quiet"]) == 0
    table = capsys.readouterr().out.split("| activation | lr")[1].splitlines()
    assert len([line for line in table if line.startswith("| ")]) == 4


def test_errors_are_reported_not_raised(capsys):
    assert main(["train", "--backend", "jax", "--epochs", "1"]) == 2
    assert "--backend: unknown backend 'jax'" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-path", "/nonexistent", "--epochs", "1"]) == 2  # --data-path
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "xpnet", "train", "--epochs", "1", "--quiet"], capture_output=True, text=True, check=True
    )
    assert "| relu" in out.stdout


TINY_BENCH = ["bench", "--backend", "numpy", "--network", "tiny", "--rounds", "1", "--min-time", "0.01"]


def test_bench_runs_and_reports_ratios(capsys, tmp_path):
    assert main([*TINY_BENCH, "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "xpnet/torch" in out and "xpnet/gemm" in out and "backprop is" in out and "BLAS:" in out
    assert all(len(line) <= 120 for line in out.splitlines() if line.startswith("|"))
    result = json.loads((tmp_path / "b.json").read_text())
    row = result["rows"][0]
    assert row["backend"] == "numpy" and row["xpnet_ms"] > 0 and row["gemm_ms"] > 0
    assert row["xpnet_ms"] <= row["xpnet_ms_median"] <= row["xpnet_ms_max"]
    assert result["numgrad_vs_backprop"]["ratio"] > 10


@pytest.mark.parametrize("model", ["simple-cnn", "deep-cnn"])
def test_train_the_book_cnns(capsys, model):
    assert main(["train", "--model", model, "--optimizer", "adam", "--lr", "0.001", "--epochs", "1", "--quiet"]) == 0
    assert f"| {model}" in capsys.readouterr().out


def test_gpu_check_script_dry_run(tmp_path):
    """The GPU acceptance script runs end to end on the CPU (its --dry-run) and writes its results."""
    import pathlib

    pytest.importorskip("torch", reason="the GPU check script's dry run times the PyTorch peer (optional torch)")

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    run = subprocess.run(["bash", str(script), "--dry-run", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in (
        "env.txt",
        "command.txt",
        "summary.txt",
        "tests.xml",
        "train_mlp.json",
        "train_cnn.json",
        "benchmarks.json",
        "bench_numpy.json",
        "figures.md",
    ):
        assert (tmp_path / name).exists(), name
    assert "all steps passed" in (tmp_path / "summary.txt").read_text()
    figures = (tmp_path / "figures.md").read_text()
    assert "bench_numpy.json" in figures and re.search(r"\| numpy +\|", figures) and "train_mlp.json" in figures
    tests = (tmp_path / "tests.log").read_text()
    assert "passed" in tests and "failed" not in tests  # the step tests ran on the emulated devices


def test_gpu_check_script_refuses_unknown_options(tmp_path):
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    run = subprocess.run(["bash", str(script), "--frobnicate", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown option --frobnicate" in run.stderr


def test_bench_json_to_stdout(capsys):
    assert main([*TINY_BENCH, "--no-numgrad", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"][0]["network"] == "64-32-10" and "xpnet/gemm" in result["rows"][0]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["compare", "--activation", "relu,gelu"], "--activation"),
        (["compare", "--backend", "numpy,jax"], "--backend"),
        (["compare", "--lr", "0.1,abc"], "--lr"),
        (["compare", "--history", "x.txt"], "--history"),
        (["train", "--save", "/nonexistent/dir/m.npz"], "--save"),
        (["train", "--save", "m.txt"], "--save"),
        (["train", "--history", "out.txt"], "--history"),
        (["train", "--plot", "x.jpg"], "--plot"),
        (["train", "--dtype", "bfloat16"], "--dtype"),
        (["train", "--dtype", "float8"], "--dtype"),
        (["train", "--hidden", ""], "--hidden"),
        (["train", "--hidden", "100,abc"], "--hidden"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--dropout", "1.5"], "--dropout"),
        (["train", "--optimizer", "lbfgs"], "--optimizer"),
        (["train", "--init", "glorot"], "--init"),
        (["train", "--model", "simple-cnn", "--dropout", "0.2"], "--dropout"),
        (["train", "--model", "simple-cnn", "--hidden", "50"], "--hidden"),
        (["train", "--model", "simple-cnn", "--batchnorm"], "--batchnorm"),
        (["train", "--model", "simple-cnn", "--flooding", "0.1"], "--flooding"),
        (["train", "--model", "deep-cnn", "--init", "xavier"], "--init"),
        (["compare", "--model", "mlp,simple-cnn", "--dropout", "0.1"], "--dropout"),
    ],
)
def test_bad_values_are_refused_before_training(argv, option, tmp_path, capsys, monkeypatch):
    """One line naming the option and what is valid, exit status 2, before any training step."""
    monkeypatch.chdir(tmp_path)
    assert main([*argv, *([] if "--epochs" in argv else ["--epochs", "1"])]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"xpnet {argv[0]}: error: {option}: "), err
    assert "epoch" not in out and "| relu" not in out  # nothing trained
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--activation", "relu,gelu"],
        ["train", "--history", "out.txt"],
        ["train", "--model", "simple-cnn", "--dropout", "0.2"],
    ],
)
def test_bad_values_on_the_real_command_line(argv):
    run = xpnet_cli(*argv, "--epochs", "1")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "epoch" not in run.stdout


def test_plot_without_matplotlib_is_refused_first(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "matplotlib.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}
    run = xpnet_cli("compare", "--activation", "relu,tanh", "--epochs", "1", "--plot", str(tmp_path / "c.png"), env=env)
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        == 'xpnet compare: error: --plot: needs matplotlib, which is not installed: pip install "xpnet[plot]"'
    )
    assert "[1/2]" not in run.stdout


def test_unknown_command_and_version():
    run = xpnet_cli("foo")
    assert run.returncode == 2
    assert run.stderr == "xpnet: error: unknown command 'foo'; valid: train, compare, bench, data (xpnet --help)\n"
    run = xpnet_cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"xpnet {xpnet.cli.version()}"
    assert xpnet.cli.version().split(".")[0].isdigit()


def test_broken_pipe_ends_quietly():
    """``xpnet train | head -1``: no BrokenPipeError traceback; the status of a process ended by SIGPIPE."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpnet", "train", "--epochs", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("data: digits")
    assert proc.stdout.readline().startswith("layer")
    proc.stdout.close()
    assert proc.wait(timeout=300) == 141
    assert proc.stderr.read() == ""


@pytest.mark.parametrize("value", ["array_api_strict", "numpy:cpu"])
def test_xpnet_backend_is_honoured(value):
    run = xpnet_cli("train", "--epochs", "1", "--hidden", "10", env={"XPNET_BACKEND": value})
    assert run.returncode == 0, run.stderr
    assert f"backend: {value.split(':')[0]} (" in run.stdout
    bad = xpnet_cli("train", "--epochs", "1", env={"XPNET_BACKEND": "jax"})
    assert bad.returncode == 2 and bad.stderr.startswith("xpnet train: error: XPNET_BACKEND: unknown backend 'jax'")


def test_compare_prints_a_line_per_run_and_history_csv_json(tmp_path):
    two_runs = ("compare", "--activation", "relu,tanh", "--hidden", "10", "--epochs", "2")
    run = xpnet_cli(*two_runs, "--history", str(tmp_path / "runs.csv"))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines if line.startswith("[")] == ["[1/2]", "[2/2]"]
    assert not any(line.startswith(("epoch", "layer")) for line in lines)
    assert lines[0].startswith("data: digits")
    assert len(lines) == 1 + 2 + 4  # the data, two progress lines, the table (header, rule, two rows)
    runs = load_histories(tmp_path / "runs.csv")
    assert list(runs) == ["activation=relu", "activation=tanh"] and len(runs["activation=tanh"]) == 2
    verbose = xpnet_cli(*two_runs, "--verbose", "--history", str(tmp_path / "runs.json"))
    assert sum(line.startswith("epoch") for line in verbose.stdout.splitlines()) == 4
    saved = load_histories(tmp_path / "runs.json")
    assert saved["activation=relu"].test_acc == runs["activation=relu"].test_acc  # same seed, same numbers
    assert saved["activation=relu"].config["activation"] == "relu"


def test_train_history_csv_round_trip(tmp_path):
    run = xpnet_cli(
        "train",
        "--epochs",
        "2",
        "--hidden",
        "10",
        "--quiet",
        "--history",
        str(tmp_path / "h.csv"),
        "--save",
        str(tmp_path / "m.npz"),
    )
    assert run.returncode == 0, run.stderr
    h = xpnet.History.load(tmp_path / "h.csv")
    assert h.epoch == [1, 2] and all(0 <= a <= 1 for a in h.test_acc)


def test_simple_cnn_takes_its_options_and_the_data_shape():
    run = xpnet_cli(
        "train",
        "--model",
        "simple-cnn",
        "--activation",
        "tanh",
        "--init",
        "xavier",
        "--epochs",
        "1",
        "--quiet",
        "--batch-size",
        "200",
    )
    assert run.returncode == 0, run.stderr
    assert "| simple-cnn" in run.stdout


def test_help_texts():
    assert "Train a model" in xpnet_cli("train", "--help").stdout
    bench = xpnet_cli("bench", "--help").stdout
    assert "``" not in bench and "tiny" in bench and "float32 | float64" in bench

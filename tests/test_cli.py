import json
import subprocess
import sys

import pytest

from xpnet.cli import main


def test_train_defaults_on_digits(capsys, tmp_path):
    assert main(["train", "--epochs", "3", "--save", str(tmp_path / "m.npz"), "--history", str(tmp_path / "h.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("layer") and "epoch   3" in out
    assert "| activation | train | test" in out and "TS95 | TS97 | TS98 | time" in out
    assert (tmp_path / "m.npz").exists()
    assert len(json.loads((tmp_path / "h.json").read_text())["records"]) == 3


def test_train_options(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib")
    argv = ["train", "--epochs", "2", "--hidden", "30", "--activation", "hswish", "--hswish-n", "4",
            "--optimizer", "nesterov", "--lr", "0.05", "--momentum", "0.8", "--batch-size", "50", "--flooding", "0.01",
            "--weight-decay", "1e-4", "--dropout", "0.1", "--batchnorm", "--dtype", "float64", "--quiet",
            "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("epoch") for line in out.splitlines()) and "| hswish" in out
    assert (tmp_path / "c.png").exists()


def test_compare_prints_one_table(capsys):
    assert main(["compare", "--activation", "relu,tanhexp", "--lr", "0.1", "0.2", "--epochs", "2", "--quiet"]) == 0
    table = capsys.readouterr().out.split("| activation | lr")[1].splitlines()
    assert len([line for line in table if line.startswith("| ")]) == 4


def test_errors_are_reported_not_raised(capsys):
    assert main(["train", "--backend", "jax", "--epochs", "1"]) == 1
    assert "unknown backend 'jax'" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-path", "/nonexistent", "--epochs", "1"]) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "xpnet", "train", "--epochs", "1", "--quiet"], capture_output=True,
                         text=True, check=True)
    assert "| relu" in out.stdout


def test_bench_runs_and_reports_ratios(capsys, tmp_path):
    argv = ["bench", "--backend", "numpy", "--network", "tiny", "--rounds", "1", "--min-time", "0.01",
            "--json", str(tmp_path / "b.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "xpnet/torch" in out and "xpnet/gemm" in out and "backprop is" in out and "BLAS:" in out
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

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    run = subprocess.run(["bash", str(script), "--dry-run", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("env.txt", "summary.txt", "tests.xml", "train_mlp.json", "train_cnn.json", "benchmarks.json",
                 "bench_numpy.json"):
        assert (tmp_path / name).exists(), name
    assert "all steps passed" in (tmp_path / "summary.txt").read_text()


def test_bench_json_to_stdout(capsys):
    assert main(["bench", "--backend", "numpy", "--network", "tiny", "--rounds", "1", "--min-time", "0.01",
                 "--no-numgrad", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"][0]["network"] == "64-32-10" and "xpnet/gemm" in result["rows"][0]

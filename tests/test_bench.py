"""``xpnet bench`` internals: the CNN steps, the GEMM bound's products, kernels, memory, BLAS report.

Correctness only (never timing). Parts that need PyTorch skip without it (the README's test command
installs no torch)."""

import importlib.util
import json

import pytest

import xpnet
from xpnet import bench
from xpnet.cli import main


def test_gemm_products_follow_the_layers():
    """SimpleConvNet: conv (fwd, dW; no dX for layer 0), then two Affines (fwd, dW, dX)."""
    xpnet.set_backend("numpy")
    prods = bench.gemm_products(xpnet.models.simple_cnn(), 100)
    assert prods[:2] == [((30, 25), (100, 25, 576), False), ((100, 30, 576), (100, 25, 576), True)]
    assert len(prods) == 2 + 3 + 3
    assert prods[2] == ((100, 4320), (4320, 100), False)
    mlp = bench.gemm_products(xpnet.models.mlp((8, 4, 2)), 5)
    assert mlp == [
        ((5, 8), (8, 4), False),
        ((8, 5), (5, 4), False),
        ((5, 4), (4, 2), False),
        ((4, 5), (5, 2), False),
        ((5, 2), (4, 2), True),
    ]


@pytest.mark.parametrize("network", ["tinycnn", "tiny"])
def test_steps_run_on_numpy(network):
    sizes, batch = bench.NETWORKS[network]
    backend = xpnet.set_backend("numpy")
    bench.xpnet_step(backend, sizes, batch)()
    bench.gemm_step(backend, sizes, batch)()


def test_peak_memory_reports_mib():
    backend = xpnet.set_backend("numpy")
    mem = bench.peak_memory(bench.xpnet_step(backend, *bench.NETWORKS["tinycnn"]), backend)
    assert mem["tracemalloc_mib"] is not None and mem["tracemalloc_mib"] > 0
    assert mem["rss_peak_mib"] is None or mem["rss_peak_mib"] >= 0


def test_blas_report_warns_about_a_pinned_kernel(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    lines = bench.describe_blas(bench.blas_info())
    assert lines[0].startswith("BLAS:") and any("WARNING" in x and "OPENBLAS_CORETYPE=Haswell" in x for x in lines)
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert not any("WARNING" in x for x in bench.describe_blas(bench.blas_info()))


def test_busy_machine_and_missing_peer_are_reported(monkeypatch):
    rows = [
        {"network": "a", "busy": True, "peer_missing": "PyTorch is not installed (pip install torch): no peer column"},
        {"network": "b", "busy": False},
    ]
    notes = bench._notes(rows)
    assert notes[0].startswith("PyTorch is not installed") and "busy" in notes[1] and "a" in notes[1]
    table = bench.format_rows(
        [
            {
                "backend": "numpy",
                "network": "n",
                "batch": 1,
                "xpnet_ms": 1.0,
                "xpnet_ms_median": 2.0,
                "xpnet_ms_max": 3.0,
                "gemm_ms": 0.5,
                "gemm_ms_median": 0.6,
                "gemm_ms_max": 0.7,
                "xpnet/gemm": 2.0,
            }
        ]
    )
    row = table.splitlines()[2]
    assert "1.00/2.00/3.00" in row and row.split("|")[4].strip() == "–"  # xpnet ms; torch ms not timed


def test_peer_missing_without_torch(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_torch(name, *a, **k):
        if name == "torch":
            raise ImportError("no torch here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    backend = xpnet.set_backend("numpy")
    assert "not installed" in bench.peer_missing(backend)
    assert bench.torch_device(backend) is None


def test_bench_cnn_and_kernels_cli(capsys, tmp_path):
    argv = [
        "bench",
        "--backend",
        "numpy",
        "--network",
        "tinycnn",
        "--rounds",
        "1",
        "--min-time",
        "0.005",
        "--kernels",
        "--quick",
        "--no-numgrad",
        "--json",
        str(tmp_path / "b.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "GEMM bound" in out and "per-layer kernels" in out
    result = json.loads((tmp_path / "b.json").read_text())
    kernels = {k["kernel"] for k in result["kernels"]}
    assert {"simple-conv forward", "deep-conv2 backward", "relu forward", "pool 2x2 backward"} <= kernels
    assert "command" in result
    if importlib.util.find_spec("threadpoolctl") is not None:  # optional: the README's test extra lacks it
        assert result["blas"]["blas"]
    else:
        assert "threadpoolctl is not installed" in result["blas"]["blas_error"]


def test_bench_rejects_unknown_network(capsys):
    assert main(["bench", "--backend", "numpy", "--network", "huge"]) == 2
    assert capsys.readouterr().err.startswith("xpnet bench: error: --network: unknown value 'huge'; valid: small")


def test_torch_peer_cnns_match_xpnet_shapes():
    torch = pytest.importorskip("torch", reason="the PyTorch peer needs torch")
    for name in ("SimpleConvNet", "DeepConvNet", "TinyConvNet"):
        x, _ = bench._data(name, 2)
        assert tuple(bench.torch_model(name)(torch.from_numpy(x)).shape) == (2, 10)
    bench.torch_step("cpu", "TinyConvNet", 4)()


def test_conv_gemm_bound_script_writes_its_report(tmp_path):
    """benchmarks/conv_gemm_bound.py times each convolution product in three layouts and sums the best."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "conv_gemm_bound.py"
    out = tmp_path / "bound.json"
    run = subprocess.run(
        [sys.executable, str(script), "--models", "simple", "--rounds", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(out.read_text())
    (result,) = doc["results"]
    (conv,) = result["layers"]  # SimpleConvNet's one convolution: no input gradient, so forward and dW only
    assert set(conv["ms"]) == {"forward", "dW"}
    assert all(set(t) == {"per-image", "channel-major", "pixel-major"} for t in conv["ms"].values())
    assert result["best_layout_products_ms"] == pytest.approx(sum(min(t.values()) for t in conv["ms"].values()))
    assert "blas" in doc and doc["command"].startswith("python") and "git" in doc


def test_conv_input_gradient_script_compares_both_methods(tmp_path):
    """benchmarks/conv_input_gradient.py times route and correlate on DeepConvNet's convolutions."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "conv_input_gradient.py"
    out = tmp_path / "dx.json"
    args = ["--batch", "2", "--rounds", "1", "--repeats", "1", "--json", str(out)]
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 5  # DeepConvNet's convolutions after the first
    assert [r["auto"] for r in rows] == ["correlate", "route", "correlate", "route", "correlate"]
    assert all(set(r["backward_ms"]) == {"route", "correlate"} for r in rows)


def test_git_commit_names_the_checkout_or_nothing():
    commit = bench.git_commit()
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)


def _measured_row(**memory):
    row = {"backend": "numpy", "device": "cpu", "dtype": "float32", "network": "784-2048-2048-10", "batch": 1024}
    for k, (lo, med, hi) in {"xpnet": (2274.3, 2728.8, 3096.4), "torch": (1234.5, 1500.2, 99999.0)}.items():
        row.update({f"{k}_ms": lo, f"{k}_ms_median": med, f"{k}_ms_max": hi})
    row.update({"gemm_ms": 0.0123, "gemm_ms_median": 0.0456, "gemm_ms_max": 0.789, "xpnet/torch": 1.84})
    row.update({"xpnet/gemm": 184000.0, **memory})
    return row


def test_bench_tables_fit_120_columns():
    row = _measured_row(memory_xpnet={"tracemalloc_mib": 54.3, "rss_peak_mib": 8.0})
    for table in (
        bench.format_rows([row]),
        bench.format_memory([row])[0],
        bench.format_rows([row, {**row, "backend": "torch"}]),
    ):
        assert max(map(len, table.splitlines())) <= 120, table
    assert "2274/2729/3096" in bench.format_rows([row])


def test_bench_memory_says_why_nothing_was_measured():
    """An RSS high-water mark that did not grow reads '–' with a footnote, not 0.0 MiB."""
    row = _measured_row(
        memory_xpnet={"tracemalloc_mib": 0.7, "rss_peak_mib": 0.0},
        memory_torch={"tracemalloc_mib": None, "rss_peak_mib": 0.0},
    )
    table, notes = bench.format_memory([row])
    cells = [c.strip() for c in table.splitlines()[2].split("|")[1:-1]]
    assert cells == ["784-2048-2048-10", "1024", "0.7", "–", "–"]
    assert "0.0" not in table
    assert [n.split(" –: ")[0] for n in notes] == ["xpnet MiB (RSS)", "torch MiB (RSS)"]
    assert all("did not grow" in n for n in notes)
    torch_row = {**row, "backend": "torch", "memory_xpnet": {"tracemalloc_mib": None, "rss_peak_mib": 3.2}}
    del torch_row["memory_torch"]
    _, notes = bench.format_memory([torch_row])
    assert notes[0].startswith("xpnet MiB (tracemalloc) –: tracemalloc sees NumPy's host buffers only")
    assert notes[1].startswith("torch MiB (RSS) –: no PyTorch peer ran")
    assert bench.format_memory([{**row, "memory_xpnet": None}][:0]) == ("", [])

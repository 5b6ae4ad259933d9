"""Data-parallel training: the size-1 communicator here, two MPI processes under ``mpiexec`` (skipped, with
the reason, where mpiexec or mpi4py is missing; CI installs both)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import mpi_script
import numpy as np
import pytest

import xpnet
from xpnet import distributed

HERE = pathlib.Path(__file__).resolve().parent
MPIEXEC = shutil.which("mpiexec")
MPI_MISSING = MPIEXEC is None or importlib.util.find_spec("mpi4py") is None
REQUIRED = bool(os.environ.get("XPNET_REQUIRE_MPI"))  # set by .ci/run, which installs MPI: never skip there
needs_mpi = pytest.mark.skipif(
    MPI_MISSING and not REQUIRED, reason="needs mpiexec and mpi4py (pip install mpi4py mpich), as CI installs them"
)


@pytest.fixture
def no_launcher(monkeypatch):
    for name in distributed.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def mpiexec(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``mpiexec -n 2 python ARGS``; a run that hangs fails the test instead of the suite."""
    if MPI_MISSING:
        pytest.fail("XPNET_REQUIRE_MPI is set but mpiexec or mpi4py is missing: pip install mpi4py mpich")
    try:
        return subprocess.run(
            [MPIEXEC, "-n", "2", sys.executable, *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"mpiexec -n 2 {' '.join(args)} hung for {timeout} s:\n{e.stdout}\n{e.stderr}")


# -- one process -----------------------------------------------------------------------------------------
def test_init_without_mpiexec_is_a_single_process(no_launcher):
    comm = distributed.init()
    assert isinstance(comm, distributed.SingleCommunicator)
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    assert comm.share(100, 130) == (100, 130)


def test_size_1_communicator_trains_exactly_as_no_communicator(no_launcher):
    runs = [mpi_script.train("numpy-b36-decay", comm) for comm in (None, distributed.init())]
    for key in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][key], runs[1][0][key])
    assert runs[0][1] == runs[1][1]


def test_launcher_without_mpi4py_warns_and_runs_alone(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.warns(RuntimeWarning, match=r"mpi4py is not installed.*xpnet\[mpi\]"):
        comm = distributed.init()
    assert comm.size == 1


def test_mpi_required_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"xpnet\[mpi\].*mpich"):
        distributed.init(mpi=True)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shares_split_each_batch_contiguously(size):
    comm = distributed.SingleCommunicator()
    for m in range(12):
        shares = []
        for rank in range(size):
            comm.rank, comm.size = rank, size
            shares.append(comm.share(7, 7 + m))
        assert shares[0][0] == 7 and shares[-1][1] == 7 + m
        assert all(a[1] == b[0] for a, b in itertools.pairwise(shares))  # contiguous, in rank order
        counts = [hi - lo for lo, hi in shares]
        assert max(counts) - min(counts) <= 1 and sum(counts) == m


def test_single_process_rejects_a_missing_gradient():
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([xpnet.layers.Affine(3, 2)])
    with pytest.raises(ValueError, match="every batch"):
        distributed.SingleCommunicator().allreduce_grad(None, model.params, model.backend, 1.0)


# -- two processes -----------------------------------------------------------------------------------------
@needs_mpi
def test_two_processes_train_the_same_parameters_as_one(tmp_path, no_launcher):
    """Momentum, float64, uneven last batches (one leaves rank 0 without a sample), weight decay, three
    backends; rank 1 starts from other weights (the broadcast must fix them). BatchNorm: ranks agree."""
    run = mpiexec(str(HERE / "mpi_script.py"), "train", str(tmp_path))
    assert run.returncode == 0, run.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert [list(r["local"]) for r in ranks] == [[0, 2], [1, 2]]  # ranks on this one host
    cases = {k.split("/")[0] for k in ranks[0] if k != "local"}
    assert {"numpy-b25", "numpy-b36-decay", "strict-b36", "numpy-batchnorm"} <= cases  # torch where installed
    for case in sorted(cases):
        backend, *_rest, batchnorm = mpi_script.CASES[case]
        keys = [k.split("/", 1)[1] for k in ranks[0] if k.startswith(case + "/")]
        for key in keys:  # identical on every rank (parameters, BatchNorm statistics, combined metrics)
            np.testing.assert_array_equal(ranks[0][f"{case}/{key}"], ranks[1][f"{case}/{key}"], err_msg=case)
        if batchnorm:
            continue  # per-rank batch statistics: not the single-process run (docs/distributed.md)
        try:
            params, metrics = mpi_script.train(case)
        except xpnet.BackendUnavailableError as e:
            pytest.fail(f"{backend} ran under mpiexec but not here: {e}")
        for key, value in params.items():
            np.testing.assert_allclose(ranks[0][f"{case}/{key}"], value, rtol=0, atol=1e-8, err_msg=f"{case} {key}")
        np.testing.assert_allclose(ranks[0][f"{case}/metrics"], metrics, rtol=0, atol=1e-8, err_msg=case)


@needs_mpi
def test_an_error_on_one_rank_stops_every_rank(tmp_path, no_launcher):
    run = mpiexec(str(HERE / "mpi_script.py"), "fail-on-rank-1", str(tmp_path), timeout=120)
    assert run.returncode != 0
    assert "deliberate failure on rank 1" in run.stderr
    assert "uncaught exception on rank 1" in run.stderr and "stopping all 2 ranks" in run.stderr
    assert "finished without noticing" not in run.stdout


@needs_mpi
def test_a_stop_on_one_rank_stops_every_rank(tmp_path, no_launcher):
    run = mpiexec(str(HERE / "mpi_script.py"), "stop-on-rank-1", str(tmp_path), timeout=120)
    assert run.returncode == 0, run.stderr
    # the two ranks' lines reach mpiexec's stdout independently: one may land before the other's newline
    runs = sorted((r["rank"], r["epochs"]) for r in map(json.loads, re.findall(r"\{[^{}]*\}", run.stdout)))
    assert runs == [(0, 2), (1, 2)]  # rank 0's callback never asked to stop


@needs_mpi
def test_ranks_with_different_data_stop_with_a_clear_error(tmp_path, no_launcher):
    run = mpiexec(str(HERE / "mpi_script.py"), "mismatch", str(tmp_path), timeout=120)
    assert run.returncode != 0
    assert "the 2 ranks disagree on samples" in run.stderr and "stopping all 2 ranks" in run.stderr


@needs_mpi
def test_ranks_that_differ_in_anything_the_run_depends_on_raise_on_every_rank_before_training(tmp_path, no_launcher):
    """Issue 26 item 14: another seed, shuffled data, shifted labels, an edited test set, validation data or a
    checkpoint on one rank only, another checkpoint_every, learning rate, sample count or dtype: a ValueError
    on every rank before epoch 1 (caught there: no hang, no MPI abort), naming the field and the ranks."""
    run = mpiexec(str(HERE / "mpi_script.py"), "fingerprint", str(tmp_path), timeout=150)
    assert run.returncode == 0, run.stderr
    results = [json.loads((tmp_path / f"fingerprint-rank{rank}.json").read_text()) for rank in (0, 1)]
    for case, fields in mpi_script.FINGERPRINT_CASES.items():
        for rank in (0, 1):
            got = results[rank][case]
            if not fields:
                assert got == {"trained": 1}, (case, rank, got)
                continue
            message = got.get("error", "")
            named = re.match(r"the 2 ranks disagree on (.*?) \(", message)
            assert named, (case, rank, got)
            names = set(named.group(1).split(", "))
            assert set(fields) <= names, (case, message)  # and what follows from them (a shorter copy's checksum)
            assert case not in ("seed", "lr", "shifted-labels") or names == set(fields), (case, message)
            for field in fields:
                assert re.search(rf"{re.escape(field)}: rank 0: .*, rank 1: ", message), (case, field, message)
    assert not (tmp_path / "checkpoint-on-rank-0.ckpt").exists()  # refused before anything was written


def test_fit_fingerprint_compares_exact_integers_and_checksums(rng):
    """10**9 and 10**9 + 1 samples differ (float64 sums of squares could not tell them apart); the
    checksum sees order and single values; one process computes nothing."""
    comm = distributed.SingleCommunicator()
    comm.size = 3
    gathered = [{"samples": 10**9}, {"samples": 10**9 + 1}, {"samples": 10**9}]
    comm.gather = lambda value: gathered  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"on samples \(samples: ranks 0, 2: 1000000000, rank 1: 1000000001\)"):
        comm.check_same({"samples": 10**9})
    xpnet.set_default_dtype("float64")
    model = xpnet.Sequential([xpnet.layers.Affine(3, 2)])
    trainer = xpnet.Trainer(model, xpnet.optimizers.SGD(0.1), verbose=False)
    x, t = model.check_data(rng.standard_normal((5, 3)), np.array([0, 1, 0, 1, 1]))
    base = distributed.fit_fingerprint(trainer, {"train": (x, t), "test": None})
    swapped = distributed.fit_fingerprint(trainer, {"train": (x[::-1, ...], t), "test": None})
    assert base["x_train checksum"] != swapped["x_train checksum"] and base["test data"] is False
    assert {k for k in base if base[k] != swapped[k]} == {"x_train checksum"}
    schedules = [lambda count: 0.1 / (1 + count) for _ in range(2)]  # one per "rank": two addresses
    prints = [
        distributed.fit_fingerprint(xpnet.Trainer(model, xpnet.optimizers.SGD(0.1), schedule=s), {}) for s in schedules
    ]
    assert prints[0] == prints[1] and "0x" not in prints[0]["schedule"]
    trainer.seed = None  # a random data order on each rank: two fingerprints never agree on it
    assert distributed.fit_fingerprint(trainer, {})["seed"] != distributed.fit_fingerprint(trainer, {})["seed"]

    calls = []
    single = distributed.SingleCommunicator()
    single.gather = lambda value: calls.append(value) or [value]  # type: ignore[method-assign]
    single.check_fit(trainer, {"train": (x, t)})
    assert calls == []


@needs_mpi
def test_cli_distributed_logs_each_epoch_once_from_any_directory(tmp_path, no_launcher):
    run = mpiexec("-m", "xpnet", "train", "--distributed", "--epochs", "2", "--save", "m.npz", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for epoch in (1, 2):
        assert run.stdout.count(f"epoch {epoch:3d} |") == 1, run.stdout
    assert run.stdout.count("| relu ") == 1 and run.stdout.count("model saved") == 1
    single = subprocess.run(
        [sys.executable, "-m", "xpnet", "train", "--epochs", "2", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    row = next(line for line in single.stdout.splitlines() if line.startswith("| relu"))
    assert row.rsplit("|", 2)[0] in run.stdout  # same accuracies (the time column differs)


@needs_mpi
def test_cli_error_on_every_rank_exits_instead_of_hanging(tmp_path, no_launcher):
    run = mpiexec(
        "-m",
        "xpnet",
        "train",
        "--distributed",
        "--dataset",
        "mnist",
        "--data-path",
        str(tmp_path / "missing"),
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode != 0
    assert "xpnet train: error: --data-path: mnist not found" in run.stderr and "stopping all 2 ranks" in run.stderr

"""One run per checkpoint path (issue 26, item 6): an OS-level lock for the run's life; a writer removes
only its own temporary file; names are never glob patterns."""

import re

import filelock
import pytest
from test_checkpoint_safety import trainer
from test_distributed import mpiexec, needs_mpi

import xpnet
from xpnet.checkpoint import CheckpointInUse, info, lock_path
from xpnet.cli import main


@pytest.fixture(scope="module")
def digits():
    (x, t), _ = xpnet.datasets.load_digits()
    return x[:120], t[:120]


def test_a_second_run_on_a_checkpoint_path_stops_at_its_start(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    second: list[BaseException] = []

    def start_another(tr, record):
        if record["epoch"] == 1:
            other = trainer(2, checkpoint=path)
            with pytest.raises(CheckpointInUse) as e:
                other.fit(*digits)
            second.append(e.value)
            assert other.history.records == []  # it never trained

    first = trainer(2, checkpoint=path, callbacks=[start_another])
    first.fit(*digits)
    assert len(second) == 1 and "in use by another run" in str(second[0]) and isinstance(second[0], ValueError)
    assert info(path)["epoch"] == 2
    again = trainer(3, checkpoint=path)  # the lock went with the run
    again.fit(*digits)
    assert lock_path(path).exists() and lock_path(path).stat().st_size == 0


def test_a_writer_removes_only_its_own_temporary_file(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    dead = tmp_path / ".run.ckpt.abcd1234.tmp"  # left by a writer killed before this run
    dead.write_bytes(b"partial")
    neighbour = tmp_path / ".run1.ckpt.abcd1234.tmp"  # another path's writer, in flight
    neighbour.write_bytes(b"partial")
    inflight = tmp_path / ".run.ckpt.zzzz9999.tmp"

    def create_inflight(tr, record):  # as if another (unlocked) writer of this path were writing now
        if record["epoch"] == 1:
            inflight.write_bytes(b"partial")

    trainer(3, checkpoint=path, callbacks=[create_inflight]).fit(*digits)
    assert not dead.exists()  # the lock holder cleaned what killed writers left
    assert inflight.exists() and neighbour.exists()  # saves later in the run did not touch them
    star = tmp_path / "run*.ckpt"  # a name that is a glob pattern
    trainer(1, checkpoint=star).fit(*digits)
    assert neighbour.exists() and star.exists()


def test_the_cli_stops_a_second_run_in_one_line(tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    other = filelock.FileLock(str(lock_path(path)))  # another run holds the path (flock: per open file)
    other.acquire(timeout=0)
    try:
        assert main(["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--checkpoint", str(path)]) == 1
    finally:
        other.release()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is in use by another run" in err, err
    assert not path.exists()


MPI_SCRIPT = """
import sys
import filelock
import xpnet
from xpnet import distributed, layers as L
from xpnet.checkpoint import CheckpointInUse, lock_path

comm = distributed.init()
path = sys.argv[1]
if comm.rank == 0:  # another run holds the path (only rank 0, the writer, takes the lock)
    held = filelock.FileLock(str(lock_path(path)))  # kept referenced: a collected lock is released
    held.acquire(timeout=0)
(x, t), _ = xpnet.datasets.load_digits()
model = xpnet.Sequential([L.Affine(64, 10)])
trainer = xpnet.Trainer(model, xpnet.optimizers.SGD(0.1), epochs=1, verbose=False, comm=comm, checkpoint=path)
try:
    trainer.fit(x[:64], t[:64])
    print(f"rank {comm.rank}: trained")
except CheckpointInUse as e:
    print(f"rank {comm.rank}: refused: {e}")
"""


@needs_mpi
def test_under_mpi_every_rank_stops_when_the_path_is_in_use(tmp_path):
    out = mpiexec("-c", MPI_SCRIPT, str(tmp_path / "run.ckpt"), timeout=120)
    # the ranks' lines reach mpiexec's stdout separately and may be interleaved: read them by their prefixes
    parts = sorted(re.split(r"(?=rank [01]: )", out.stdout.replace("\n", ""))[1:])
    assert [p[:16] for p in parts] == ["rank 0: refused:", "rank 1: refused:"], out.stdout + out.stderr
    assert "is in use by another run" in parts[0] and "rank 0 could not lock" in parts[1]

"""One atomic writer for every file (issue 26 item 7; issue 24 item 8: permissions 0666 & ~umask)."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from crafted import ROOT

import xpnet
from xpnet import layers as L
from xpnet.atomic import atomic_write, leftovers, write_text
from xpnet.history import History, save_histories


@pytest.fixture
def umask():
    """Set a umask for the test; the previous one is restored."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def history(epochs):
    return History(records=[{"epoch": e, "train_acc": 0.5, "train_loss": 1.0, "seconds": 0.1} for e in range(epochs)])


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_files_get_the_usual_permissions(tmp_path, umask, mask):
    umask(mask)
    (x, t), _ = xpnet.datasets.load_digits()
    xpnet.seed(0)
    model = xpnet.Sequential([L.Affine(64, 10)])
    model.save(tmp_path / "model.npz")  # 0600 today (mkstemp)
    xpnet.save(model, tmp_path / "model2.npz")
    trainer = xpnet.Trainer(model, xpnet.optimizers.SGD(0.1), epochs=1, verbose=False, checkpoint=tmp_path / "r.ckpt")
    h = trainer.fit(x[:50], t[:50])
    h.save(tmp_path / "h.json")
    h.save(tmp_path / "h.csv")
    save_histories({"a": h}, tmp_path / "runs.json")
    write_text(tmp_path / "result.txt", "done\n")
    for name in ("model.npz", "model2.npz", "r.ckpt", "h.json", "h.csv", "runs.json", "result.txt"):
        assert mode(tmp_path / name) == 0o666 & ~mask, name


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="checksum"), atomic_write(path) as f:
        f.write(b"new, half")
        raise RuntimeError("checksum mismatch")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(ValueError, match="mode"), atomic_write(path, "ab"):
        pass


def test_history_save_on_a_full_disk_keeps_the_valid_history(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands in for a full disk: the write fails part-way."""
    path = tmp_path / "h.json"
    history(1).save(path)
    before = path.read_text()
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_atomic import history
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write raises instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 100}, resource.RLIM_INFINITY))
        try:
            history(50).save({str(path)!r})
            print("SAVED")
        except OSError as e:
            print("OSError", e.errno)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.startswith("OSError"), out.stdout + out.stderr
    assert path.read_text() == before and json.loads(before)["records"]
    assert os.listdir(tmp_path) == ["h.json"]


def test_leftovers_match_exactly_the_writers_names(tmp_path):
    target = tmp_path / "run*.ckpt"
    mine = tmp_path / ".run*.ckpt.a1b2c3d4.tmp"
    others = [tmp_path / ".run1.ckpt.a1b2c3d4.tmp", tmp_path / ".run*.ckpt.notours.tmp", tmp_path / "run*.ckpt"]
    for p in [mine, *others]:
        p.write_bytes(b"")
    assert leftovers(target) == [mine]

import gzip
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from shared_data import NO_MNIST, shared_data

from xpnet import datasets

SHARED_MNIST = shared_data("mnist")


def test_digits_like_load_mnist():
    (x, t), (xt, _tt) = datasets.load_digits()
    assert x.shape == (1438, 64) and xt.shape == (359, 64)
    assert x.dtype == np.float32 and t.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(t)) == set(range(10))
    (x1, t1), _ = datasets.load_digits(one_hot=True, flatten=False)
    assert x1.shape == (1438, 1, 8, 8) and t1.shape == (1438, 10) and t1.dtype == np.float32
    np.testing.assert_array_equal(t1.argmax(axis=1), t)


def _write_idx(folder, n=5, rows=4, cols=3, gz=True, magic_images=0x803, truncate=0, labels=None, test_image=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    for split in ("train", "t10k"):
        r, c = test_image if split == "t10k" and test_image else (rows, cols)
        img = struct.pack(">4I", magic_images, n, r, c) + images.tobytes()
        lab = struct.pack(">2I", 0x801, n) + labels.tobytes()
        for name, raw in (
            (f"{split}-images-idx3-ubyte", img[: len(img) - truncate]),
            (f"{split}-labels-idx1-ubyte", lab),
        ):
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_gz_or_raw(tmp_path, gz):
    images, labels = _write_idx(tmp_path / "mnist", gz=gz)
    (x, t), (_xt, _tt) = datasets.load_mnist(tmp_path / "mnist")
    assert x.shape == (5, 12) and x.dtype == np.float32
    np.testing.assert_allclose(x, images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(t, labels)
    (x, t), _ = datasets.load_mnist(tmp_path / "mnist", normalize=False, flatten=False, one_hot=True)
    assert x.shape == (5, 1, 4, 3) and x.max() > 1 and t.shape == (5, 10)


def test_search_order_uses_xpnet_data(tmp_path, monkeypatch):
    _write_idx(tmp_path / "mnist")
    _write_idx(tmp_path / "fashion-mnist", n=7)
    monkeypatch.setenv("XPNET_DATA", str(tmp_path))
    assert datasets.load_mnist()[0][0].shape[0] == 5
    assert datasets.load_fashion_mnist()[0][0].shape[0] == 7


def test_missing_files_name_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist()
    msg = str(info.value)
    assert str(tmp_path / "mnist") in msg
    for name in datasets.MNIST_FILES.values():
        assert name in msg
    with pytest.raises(FileNotFoundError, match="/usr/share/datasets/fashion-mnist"):
        datasets.load_fashion_mnist()


def test_bad_magic_names_the_file(tmp_path):
    _write_idx(tmp_path / "m", magic_images=0x1234)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: bad IDX magic"):
        datasets.load_mnist(tmp_path / "m")


def test_truncated_file_names_the_file(tmp_path):
    _write_idx(tmp_path / "m", truncate=7)
    with pytest.raises(ValueError, match=r"images-idx3-ubyte.gz: .*bytes"):
        datasets.load_mnist(tmp_path / "m")


def test_corrupt_gzip_names_the_file(tmp_path):
    _write_idx(tmp_path / "m")
    p = tmp_path / "m" / "t10k-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        datasets.load_mnist(tmp_path / "m")


def test_corrupt_deflate_stream_is_a_value_error_naming_the_file(tmp_path):
    """A reserved deflate block type raises zlib.error inside gzip: one ValueError, not a traceback."""
    bad = tmp_path / "x-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"")[:10] + bytes([0x07]) + bytes(20))
    with pytest.raises(ValueError, match="x-idx1-ubyte.gz: cannot read IDX file"):
        datasets.read_idx(bad, 1)


def test_header_is_checked_before_the_body_is_read(tmp_path):
    """A header declaring more than the file can hold is refused at once (raw: its size; gzip: deflate's
    1032:1 limit); a declared size that fits but a body that runs on stops one byte after it."""
    raw = tmp_path / "raw-idx3-ubyte"
    raw.write_bytes(struct.pack(">4I", 0x803, 60000, 28, 28) + bytes(100))
    with pytest.raises(ValueError, match=r"116 bytes, but its header \(60000, 28, 28\) needs 47040016"):
        datasets.read_idx(raw, 3)
    small = tmp_path / "small-idx3-ubyte.gz"
    small.write_bytes(gzip.compress(struct.pack(">4I", 0x803, 60000, 28, 28) + bytes(100)))
    with pytest.raises(ValueError, match="more than a gzip file of"):
        datasets.read_idx(small, 3)
    longer = tmp_path / "long-idx1-ubyte.gz"
    longer.write_bytes(gzip.compress(struct.pack(">2I", 0x801, 3) + bytes(4)))
    with pytest.raises(ValueError, match=r"more bytes than its header \(3,\) declares"):
        datasets.read_idx(longer, 1)


BOMB = """
import gzip, resource, sys
import numpy as np
from xpnet import datasets
path = sys.argv[1]
zeros = gzip.compress(bytes(1 << 20))  # one gzip member: 1 MiB of zeros
with open(path, "wb") as f:  # header (1000, 28, 28): 784 KB declared; body: 256 MiB
    f.write(gzip.compress(b"\\x00\\x00\\x08\\x03" + (1000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2))
    for _ in range(256):
        f.write(zeros)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    datasets.read_idx(path, 3)
    print("read")
except ValueError as e:
    print(e)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, "MiB")
"""


def test_a_gzip_body_longer_than_its_header_is_not_decompressed(tmp_path):
    """A 280 KB .gz whose header says 1000×28×28 but whose body is 256 MiB: refused after the declared size
    plus one byte, with the peak memory of the declared size (a subprocess, its memory capped at 2 GiB)."""

    def cap():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BOMB), str(tmp_path / "bomb-idx3-ubyte.gz")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=cap,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr
    message, grown = run.stdout.strip().splitlines()
    assert int(grown.split()[0]) < 32, grown  # reading the whole body: 504 MiB
    assert "more bytes than its header (1000, 28, 28) declares" in message


def test_train_and_test_images_must_have_one_size(tmp_path):
    _write_idx(tmp_path / "m", n=4, rows=28, cols=28, test_image=(14, 56))
    with pytest.raises(ValueError, match="test images of 14×56 pixels beside training images of 28×28"):
        datasets.load_mnist(tmp_path / "m")


def test_no_images_is_refused(tmp_path):
    _write_idx(tmp_path / "m", n=0)
    with pytest.raises(ValueError, match="no train images"):
        datasets.load_mnist(tmp_path / "m")


def test_normalisations():
    x = np.array([[0.0, 5.0], [10.0, 20.0]])
    np.testing.assert_allclose(datasets.minmax_normalize(x), x / 20)
    a, b = datasets.standardize(x, x + 1)
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(a.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(b - a, np.broadcast_to(1 / (x.std(axis=0) + 1e-8), x.shape), rtol=1e-5)
    with pytest.raises(ValueError):
        datasets.minmax_normalize(np.ones(3))


@pytest.mark.skipif(SHARED_MNIST is None, reason=NO_MNIST)
def test_real_mnist():
    (x, t), (xt, tt) = datasets.load_mnist(SHARED_MNIST)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert np.bincount(tt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(t)[1] == 6742

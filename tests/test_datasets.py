import gzip
import struct

import numpy as np
import pytest
from shared_data import NO_MNIST, shared_data

from xpnet import datasets

SHARED_MNIST = shared_data("mnist")


def test_digits_like_load_mnist():
    (x, t), (xt, tt) = datasets.load_digits()
    assert x.shape == (1438, 64) and xt.shape == (359, 64)
    assert x.dtype == np.float32 and t.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(t)) == set(range(10))
    (x1, t1), _ = datasets.load_digits(one_hot=True, flatten=False)
    assert x1.shape == (1438, 1, 8, 8) and t1.shape == (1438, 10) and t1.dtype == np.float32
    np.testing.assert_array_equal(t1.argmax(axis=1), t)


def _write_idx(folder, n=5, rows=4, cols=3, gz=True, magic_images=0x803, truncate=0, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    for split in ("train", "t10k"):
        img = struct.pack(">4I", magic_images, n, rows, cols) + images.tobytes()
        lab = struct.pack(">2I", 0x801, n) + labels.tobytes()
        for name, raw in ((f"{split}-images-idx3-ubyte", img[: len(img) - truncate]), (f"{split}-labels-idx1-ubyte", lab)):
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_gz_or_raw(tmp_path, gz):
    images, labels = _write_idx(tmp_path / "mnist", gz=gz)
    (x, t), (xt, tt) = datasets.load_mnist(tmp_path / "mnist")
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

"""Datasets as host NumPy arrays ``(x_train, t_train), (x_test, t_test)``, like the book's ``load_mnist``.

Images are float32 in [0, 1] when ``normalize`` (min-max, as the articles), raw integer pixels
otherwise (uint8 for the IDX files, as the book); labels are int64, or
float32 one-hot rows with ``one_hot=True``. ``flatten=False`` gives ``(N, 1, H, W)`` images.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
from importlib import resources

import numpy as np

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {3: 0x803, 1: 0x801}  # IDX: unsigned bytes, 3-D images or 1-D labels

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def minmax_normalize(x: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """``(x - min) / (max - min)`` as float32 (the articles' normalisation); bounds default to x's."""
    lo = float(np.min(x)) if lo is None else lo
    hi = float(np.max(x)) if hi is None else hi
    if hi <= lo:
        raise ValueError(f"min-max normalisation needs max > min, got [{lo}, {hi}]")
    return ((np.asarray(x, dtype=np.float32) - lo) / (hi - lo)).astype(np.float32)


def standardize(x_train: np.ndarray, x_test: np.ndarray | None = None, eps: float = 1e-8):
    """Zero mean, unit variance per feature, with the statistics of ``x_train`` applied to both."""
    x_train = np.asarray(x_train, dtype=np.float32)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + eps
    out = ((x_train - mean) / std).astype(np.float32)
    if x_test is None:
        return out
    return out, ((np.asarray(x_test, dtype=np.float32) - mean) / std).astype(np.float32)


def to_one_hot(t: np.ndarray, classes: int = 10) -> np.ndarray:
    """Integer labels → float32 one-hot rows."""
    return np.eye(classes, dtype=np.float32)[t]


def _finish(x: np.ndarray, t: np.ndarray, image: tuple[int, int], scale: float, normalize: bool, one_hot: bool, flatten: bool):
    x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, *image)
    x = minmax_normalize(x, 0.0, scale) if normalize else x  # raw pixels keep their integer dtype, as the book
    t = t.astype(np.int64)
    return x, (to_one_hot(t) if one_hot else t)


def load_digits(normalize: bool = True, one_hot: bool = False, flatten: bool = True, test_size: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8×8 digits (1,797 images, embedded: works offline), split train/test.

    Pixel values 0-16 become [0, 1] with ``normalize``. The train/test split is random (not stratified) and fixed by ``seed``.
    """
    with resources.files("xpnet").joinpath("data/digits.csv.gz").open("rb") as f:
        data = np.loadtxt(gzip.open(f, "rt"), delimiter=",", dtype=np.int64)
    x, t = data[:, :-1], data[:, -1]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_size))
    test, train = order[:n_test], order[n_test:]
    return (
        _finish(x[train], t[train], (8, 8), 16.0, normalize, one_hot, flatten),
        _finish(x[test], t[test], (8, 8), 16.0, normalize, one_hot, flatten),
    )


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """One IDX file (``.gz`` or raw) of unsigned bytes; magic number and size are verified."""
    path = pathlib.Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # truncated or corrupt gzip
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic, *dims = struct.unpack(f">{1 + ndim}I", raw[:header])
    if magic != _MAGIC[ndim]:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:x}, expected 0x{_MAGIC[ndim]:x}")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, but its header {tuple(dims)} needs {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(path: str | os.PathLike | None, name: str, extra: tuple[str, ...] = ()) -> pathlib.Path:
    if path is not None:
        candidates = [pathlib.Path(path)]
    else:
        candidates = [pathlib.Path.home() / ".xpnet" / "data" / name, *map(pathlib.Path, extra)]
        if os.environ.get("XPNET_DATA"):
            candidates.insert(0, pathlib.Path(os.environ["XPNET_DATA"]) / name)
    for folder in candidates:
        if all(_file(folder, f) for f in MNIST_FILES.values()):
            return folder
    raise FileNotFoundError(
        f"{name} not found: looked in {', '.join(map(str, candidates))} for the four files "
        f"{', '.join(f + '[.gz]' for f in MNIST_FILES.values())}. Put them in one of those folders, "
        f"set XPNET_DATA to a folder holding {name}/, or pass path=..."
    )


def _file(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_set(folder: pathlib.Path, normalize: bool, one_hot: bool, flatten: bool) -> Split:
    arrays = {}
    for key, stem in MNIST_FILES.items():
        path = _file(folder, stem)
        if path is None:
            raise FileNotFoundError(f"{folder}: {stem}[.gz] is missing")
        arrays[key] = read_idx(path, 3 if key.endswith("images") else 1)
    for split in ("train", "test"):
        x, t = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(x) != len(t):
            raise ValueError(f"{folder}: {len(x)} {split} images but {len(t)} labels")
        if t.max(initial=0) > 9:
            raise ValueError(f"{folder}: {split} labels outside 0-9")
    image = arrays["train_images"].shape[1:]
    return (
        _finish(arrays["train_images"], arrays["train_labels"], image, 255.0, normalize, one_hot, flatten),
        _finish(arrays["test_images"], arrays["test_labels"], image, 255.0, normalize, one_hot, flatten),
    )


def load_mnist(path: str | os.PathLike | None = None, normalize: bool = True, one_hot: bool = False, flatten: bool = True) -> Split:
    """MNIST from the four standard IDX files (``*-ubyte.gz`` or uncompressed).

    Looked for in ``path``, else ``$XPNET_DATA/mnist``, then ``~/.xpnet/data/mnist``.
    """
    return _load_idx_set(_find(path, "mnist"), normalize, one_hot, flatten)


def load_fashion_mnist(path: str | os.PathLike | None = None, normalize: bool = True, one_hot: bool = False, flatten: bool = True) -> Split:
    """Fashion-MNIST (same IDX format as MNIST).

    Looked for in ``path``, else ``$XPNET_DATA/fashion-mnist``, ``~/.xpnet/data/fashion-mnist``, then
    ``/usr/share/datasets/fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).
    """
    folder = _find(path, "fashion-mnist", ("/usr/share/datasets/fashion-mnist",))
    return _load_idx_set(folder, normalize, one_hot, flatten)


DATASETS = {"digits": load_digits, "mnist": load_mnist, "fashion-mnist": load_fashion_mnist}

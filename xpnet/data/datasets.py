"""Datasets as host NumPy arrays ``(x_train, t_train), (x_test, t_test)``, like the book's ``load_mnist``.

Images are float32 in [0, 1] when ``normalize`` (min-max, as the articles), raw integer pixels
otherwise (uint8 for the IDX files, as the book); labels are int64, or
float32 one-hot rows with ``one_hot=True``. ``flatten=False`` gives ``(N, 1, H, W)`` images.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import stat
import struct
import zlib
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from .download import (  # noqa: F401 -- the downloader's names are also found here, as before
    DEADLINE_TIMEOUTS,
    DOWNLOADS,
    TRANSPORT_ERRORS,
    DownloadError,
    Published,
    cache_dir,
    data_command,
    download,
    mirrors,
)

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


def _finish(
    x: np.ndarray, t: np.ndarray, image: tuple[int, int], scale: float, normalize: bool, one_hot: bool, flatten: bool
):
    x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, *image)
    x = minmax_normalize(x, 0.0, scale) if normalize else x  # raw pixels keep their integer dtype, as the book
    t = t.astype(np.int64)
    return x, (to_one_hot(t) if one_hot else t)


def load_digits(
    normalize: bool = True, one_hot: bool = False, flatten: bool = True, test_size: float = 0.2, seed: int = 0
) -> Split:
    """scikit-learn's 8×8 digits (1,797 images, embedded: works offline), split train/test.

    Pixel values 0-16 become [0, 1] with ``normalize``. The train/test split is random (not stratified)
    and fixed by ``seed``.
    """
    with resources.files("xpnet").joinpath("data/digits.csv.gz").open("rb") as f, gzip.open(f, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    x, t = data[:, :-1], data[:, -1]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * test_size)
    test, train = order[:n_test], order[n_test:]
    return (
        _finish(x[train], t[train], (8, 8), 16.0, normalize, one_hot, flatten),
        _finish(x[test], t[test], (8, 8), 16.0, normalize, one_hot, flatten),
    )


_GZIP_MAX_RATIO = 1032  # deflate expands by at most this factor: a gzip file holds no more than this


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """One IDX file (``.gz`` or raw) of unsigned bytes: header first, then exactly the size it declares.

    The header (magic number, shape) is checked before the body is read, and at most the declared size plus
    one byte is decompressed: a file whose body is shorter or longer than its header says is refused, with
    memory bounded by what the file really holds. Any damage raises a ``ValueError`` naming the file.
    """
    path = pathlib.Path(path)
    header = 4 + 4 * ndim
    dims: list[int] = []
    try:
        stored = os.stat(path)
        if not stat.S_ISREG(stored.st_mode):
            raise ValueError(f"{path}: not a regular file")
        gz = path.suffix == ".gz"
        with (gzip.open if gz else open)(path, "rb") as f:
            head = f.read(header)
            if len(head) < header:
                raise ValueError(f"{path}: too short for an IDX header ({len(head)} bytes)")
            magic, *dims = struct.unpack(f">{1 + ndim}I", head)
            if magic != _MAGIC[ndim]:
                raise ValueError(f"{path}: bad IDX magic number 0x{magic:x}, expected 0x{_MAGIC[ndim]:x}")
            size = math.prod(dims)
            if not gz and stored.st_size != header + size:
                raise ValueError(f"{path}: {stored.st_size} bytes, but its header {tuple(dims)} needs {header + size}")
            if gz and size > _GZIP_MAX_RATIO * stored.st_size:
                raise ValueError(
                    f"{path}: its header declares {tuple(dims)} ({size} bytes), more than a gzip file of "
                    f"{stored.st_size} bytes can hold"
                )
            data = np.empty(size, dtype=np.uint8)  # pages are committed only as the body fills them
            got = _read_into(f, data.data)
            if got < size:
                raise ValueError(f"{path}: {header + got} bytes, but its header {tuple(dims)} needs {header + size}")
            if f.read(1):
                raise ValueError(f"{path}: more bytes than its header {tuple(dims)} declares ({header + size})")
    except (OSError, EOFError, zlib.error) as e:  # unreadable, or a truncated or corrupt gzip stream
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    except MemoryError as e:
        raise ValueError(f"{path}: its header declares {tuple(dims)}, more than fits in memory") from e
    return data.reshape(dims)


def _read_into(f: Any, out: memoryview) -> int:
    """Fill ``out`` from ``f`` in 1 MiB steps; the number of bytes read (fewer at the end of ``f``)."""
    got = 0
    while got < len(out):
        n = f.readinto(out[got : got + (1 << 20)])
        if not n:
            break
        got += n
    return got


def _find(path: str | os.PathLike | None, name: str, extra: tuple[str, ...] = (), fetch: bool = False) -> pathlib.Path:
    if path is not None:
        candidates = [pathlib.Path(path)]
        if candidates[0].exists() and not candidates[0].is_dir():
            raise NotADirectoryError(
                f"{path}: not a folder; give the folder that holds the {name} IDX files "
                f"(path=... in Python, --data-path on the command line)"
            )
    else:
        candidates = [pathlib.Path.home() / ".xpnet" / "data" / name, cache_dir(name), *map(pathlib.Path, extra)]
        if os.environ.get("XPNET_DATA"):  # then cache_dir is $XPNET_DATA/<name>: first
            candidates.insert(0, candidates.pop(1))
    for folder in candidates:
        if all(_file(folder, f) for f in MNIST_FILES.values()):
            return folder
    if fetch:
        return download(name, path)
    raise FileNotFoundError(
        f"{name} not found: looked in {', '.join(map(str, candidates))} for the four files "
        f"{', '.join(f + '[.gz]' for f in MNIST_FILES.values())}. Download them with `{data_command(name, path)}` "
        f"(or download=True) into {cache_dir(name) if path is None else path}, put them in one of those folders, "
        f"set XPNET_DATA to a folder holding {name}/, or pass the folder (path=... in Python, --data-path on "
        f"the command line)."
    )


def _file(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_set(folder: pathlib.Path, name: str, normalize: bool, one_hot: bool, flatten: bool) -> Split:
    arrays = {}
    for key, stem in MNIST_FILES.items():
        path = _file(folder, stem)
        if path is None:
            raise FileNotFoundError(f"{folder}: {stem}[.gz] is missing")
        try:
            arrays[key] = read_idx(path, 3 if key.endswith("images") else 1)
        except ValueError as e:  # damaged or incomplete: the downloader replaces what is not the published file
            raise ValueError(f"{e}; to fetch it again, run `{data_command(name, folder)}`") from e
    for split in ("train", "test"):
        x, t = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(x) != len(t):
            raise ValueError(f"{folder}: {len(x)} {split} images but {len(t)} labels")
        if x.size == 0:
            raise ValueError(f"{folder}: no {split} images (their IDX header declares {x.shape})")
        if t.max(initial=0) > 9:
            raise ValueError(f"{folder}: {split} labels outside 0-9")
    image, test_image = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if image != test_image:
        raise ValueError(
            f"{folder}: test images of {'×'.join(map(str, test_image))} pixels beside training images of "
            f"{'×'.join(map(str, image))}; both sets must have one image size"
        )
    return (
        _finish(arrays["train_images"], arrays["train_labels"], image, 255.0, normalize, one_hot, flatten),
        _finish(arrays["test_images"], arrays["test_labels"], image, 255.0, normalize, one_hot, flatten),
    )


def load_mnist(
    path: str | os.PathLike | None = None,
    normalize: bool = True,
    one_hot: bool = False,
    flatten: bool = True,
    download: bool = False,
) -> Split:
    """MNIST from the four standard IDX files (``*-ubyte.gz`` or uncompressed).

    Looked for in ``path``, else ``$XPNET_DATA/mnist``, ``~/.xpnet/data/mnist``, then
    ``~/.cache/xpnet/mnist``. ``download=True`` fetches missing files (see :func:`download`) into
    ``path`` or the cache folder (:func:`cache_dir`).
    """
    return _load_idx_set(_find(path, "mnist", fetch=download), "mnist", normalize, one_hot, flatten)


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
    normalize: bool = True,
    one_hot: bool = False,
    flatten: bool = True,
    download: bool = False,
) -> Split:
    """Fashion-MNIST (same IDX format as MNIST).

    Looked for in ``path``, else ``$XPNET_DATA/fashion-mnist``, ``~/.xpnet/data/fashion-mnist``,
    ``~/.cache/xpnet/fashion-mnist``, then ``/usr/share/datasets/fashion-mnist`` (Debian:
    ``apt-get install dataset-fashion-mnist``). ``download=True``: as :func:`load_mnist`.
    """
    folder = _find(path, "fashion-mnist", ("/usr/share/datasets/fashion-mnist",), fetch=download)
    return _load_idx_set(folder, "fashion-mnist", normalize, one_hot, flatten)


DATASETS: dict[str, Callable[..., Any]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
}

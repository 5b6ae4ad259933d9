"""Datasets as host NumPy arrays ``(x_train, t_train), (x_test, t_test)``, like the book's ``load_mnist``.

Images are float32 in [0, 1] when ``normalize`` (min-max, as the articles), raw integer pixels
otherwise (uint8 for the IDX files, as the book); labels are int64, or
float32 one-hot rows with ``one_hot=True``. ``flatten=False`` gives ``(N, 1, H, W)`` images.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import struct
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from importlib import resources

import numpy as np

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {3: 0x803, 1: 0x801}  # IDX: unsigned bytes, 3-D images or 1-D labels

DOWNLOADS: dict[str, dict[str, tuple[str, ...] | dict[str, str]]] = {
    # SHA-256 of the published .gz files. MNIST: of the originals (their MD5s are the published ones:
    # f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...). Fashion-MNIST: as listed by the Fuel/batchup
    # dataset downloaders for Zalando's files (whose published MD5s are 8d4fb7e6..., 25c81989...,
    # bef4ecab..., bb300cfd...).
    "mnist": {
        "files": {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    },
    "fashion-mnist": {
        "files": {
            "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        },
        "mirrors": (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    },
}
"""Per downloadable dataset: its files with their published SHA-256, and the mirrors tried in order."""


class DownloadError(OSError):
    """No mirror delivered a file with the published checksum (offline, or every mirror failed)."""

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


def cache_dir(name: str) -> pathlib.Path:
    """Where downloads go and are looked for: ``$XPNET_DATA/<name>``, else ``~/.cache/xpnet/<name>``."""
    base = os.environ.get("XPNET_DATA")
    return pathlib.Path(base) / name if base else pathlib.Path.home() / ".cache" / "xpnet" / name


def mirrors(name: str, override: Sequence[str] | None = None) -> list[str]:
    """Base URLs tried in order: ``override``, else ``$XPNET_MIRRORS`` (comma separated), else the built-in list."""
    if name not in DOWNLOADS:
        raise ValueError(f"no download for dataset {name!r}; valid: {', '.join(DOWNLOADS)}")
    env = [m.strip() for m in os.environ.get("XPNET_MIRRORS", "").split(",") if m.strip()]
    chosen = list(override) if override else env or list(DOWNLOADS[name]["mirrors"])
    return [m if m.endswith("/") else m + "/" for m in chosen]


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, target: pathlib.Path, sha256: str, timeout: float) -> None:
    """``url`` → ``target`` atomically (a temporary file beside it, verified, then renamed)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if digest.hexdigest() != sha256:
            raise ValueError(f"SHA-256 {digest.hexdigest()[:16]}... is not the published {sha256[:16]}...")
        os.replace(tmp, target)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)


def download(name: str, folder: str | os.PathLike | None = None, mirror: Sequence[str] | None = None,
             log: Callable[[str], None] | None = None, timeout: float = 30.0) -> pathlib.Path:
    """Fetch the IDX files of ``name`` (``"mnist"``, ``"fashion-mnist"``) into ``folder`` and return it.

    ``folder`` defaults to :func:`cache_dir` (where the loaders and the CLI look). Files already
    there with the published SHA-256 are kept; others are fetched from the :func:`mirrors` in
    order, verified, and written atomically. Raises :class:`DownloadError` (one paragraph: which
    files to place where) when no mirror delivers a file.
    """
    urls = mirrors(name, mirror)
    target = pathlib.Path(folder) if folder is not None else cache_dir(name)
    target.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: None)
    files: dict[str, str] = DOWNLOADS[name]["files"]  # type: ignore[assignment]
    for fname, sha256 in files.items():
        path = target / fname
        if path.is_file() and _sha256(path) == sha256:
            log(f"{fname}: already there, SHA-256 verified")
            continue
        errors = []
        for base in urls:
            try:
                _fetch(base + fname, path, sha256, timeout)
            except (OSError, ValueError) as e:  # URLError, timeouts, HTTP errors are OSErrors
                errors.append(f"{base + fname}: {getattr(e, 'reason', None) or e}")
                continue
            log(f"{fname}: downloaded from {base}, SHA-256 verified")
            break
        else:
            missing = [f for f, h in files.items() if not ((target / f).is_file() and _sha256(target / f) == h)]
            raise DownloadError(
                f"could not download {name}: no mirror delivered {fname} ({'; '.join(errors)}). "
                f"If this machine is offline, fetch {', '.join(missing)} elsewhere (from {urls[0]} or any mirror), "
                f"check their SHA-256 (xpnet.datasets.DOWNLOADS[{name!r}]) and place them in {target}; "
                f"xpnet finds them there. Or point XPNET_MIRRORS (or --mirror) to a reachable copy."
            )
    return target


def _find(path: str | os.PathLike | None, name: str, extra: tuple[str, ...] = (), fetch: bool = False) -> pathlib.Path:
    if path is not None:
        candidates = [pathlib.Path(path)]
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
        f"{', '.join(f + '[.gz]' for f in MNIST_FILES.values())}. Download them with `xpnet data {name}` "
        f"(or download=True) into {cache_dir(name) if path is None else path}, put them in one of those folders, "
        f"set XPNET_DATA to a folder holding {name}/, or pass the folder (path=... in Python, --data-path on "
        f"the command line)."
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


def load_mnist(path: str | os.PathLike | None = None, normalize: bool = True, one_hot: bool = False, flatten: bool = True,
               download: bool = False) -> Split:
    """MNIST from the four standard IDX files (``*-ubyte.gz`` or uncompressed).

    Looked for in ``path``, else ``$XPNET_DATA/mnist``, ``~/.xpnet/data/mnist``, then
    ``~/.cache/xpnet/mnist``. ``download=True`` fetches missing files (see :func:`download`) into
    ``path`` or the cache folder (:func:`cache_dir`).
    """
    return _load_idx_set(_find(path, "mnist", fetch=download), normalize, one_hot, flatten)


def load_fashion_mnist(path: str | os.PathLike | None = None, normalize: bool = True, one_hot: bool = False,
                       flatten: bool = True, download: bool = False) -> Split:
    """Fashion-MNIST (same IDX format as MNIST).

    Looked for in ``path``, else ``$XPNET_DATA/fashion-mnist``, ``~/.xpnet/data/fashion-mnist``,
    ``~/.cache/xpnet/fashion-mnist``, then ``/usr/share/datasets/fashion-mnist`` (Debian:
    ``apt-get install dataset-fashion-mnist``). ``download=True``: as :func:`load_mnist`.
    """
    folder = _find(path, "fashion-mnist", ("/usr/share/datasets/fashion-mnist",), fetch=download)
    return _load_idx_set(folder, normalize, one_hot, flatten)


DATASETS = {"digits": load_digits, "mnist": load_mnist, "fashion-mnist": load_fashion_mnist}

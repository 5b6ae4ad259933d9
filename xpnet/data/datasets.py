"""Datasets as host NumPy arrays ``(x_train, t_train), (x_test, t_test)``, like the book's ``load_mnist``.

Images are float32 in [0, 1] when ``normalize`` (min-max, as the articles), raw integer pixels
otherwise (uint8 for the IDX files, as the book); labels are int64, or
float32 one-hot rows with ``one_hot=True``. ``flatten=False`` gives ``(N, 1, H, W)`` images.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import http.client
import math
import os
import pathlib
import shlex
import stat
import struct
import threading
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import IO, Any, NamedTuple

import numpy as np

from ..utils import atomic

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {3: 0x803, 1: 0x801}  # IDX: unsigned bytes, 3-D images or 1-D labels


class Published(NamedTuple):
    """A downloadable file as its authors published it: SHA-256 and size in bytes."""

    sha256: str
    size: int


DOWNLOADS: dict[str, dict[str, Any]] = {
    # SHA-256 and sizes of the published .gz files. MNIST: of the originals (their MD5s are the published
    # ones: f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...; sizes as the files in tests' shared data).
    # Fashion-MNIST: SHA-256 as listed by the Fuel/batchup dataset downloaders for Zalando's files (whose
    # published MD5s are 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...); the README gives the sizes
    # rounded (26 MB, 29 KB, 4.3 MB, 5.1 KB), the byte counts are the Content-Length that Zalando's S3
    # bucket and Keras's copy serve (as torchvision's and Keras's download logs show them).
    "mnist": {
        "files": {
            "train-images-idx3-ubyte.gz": Published(
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422
            ),
            "train-labels-idx1-ubyte.gz": Published(
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881
            ),
            "t10k-images-idx3-ubyte.gz": Published(
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877
            ),
            "t10k-labels-idx1-ubyte.gz": Published(
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542
            ),
        },
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    },
    "fashion-mnist": {
        "files": {
            "train-images-idx3-ubyte.gz": Published(
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc", 26421880
            ),
            "train-labels-idx1-ubyte.gz": Published(
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc", 29515
            ),
            "t10k-images-idx3-ubyte.gz": Published(
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229", 4422102
            ),
            "t10k-labels-idx1-ubyte.gz": Published(
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf", 5148
            ),
        },
        "mirrors": (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    },
}
"""Per downloadable dataset: ``files`` (name → :class:`Published`) and the ``mirrors`` tried in order."""


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


def cache_dir(name: str) -> pathlib.Path:
    """Where downloads go and are looked for: ``$XPNET_DATA/<name>``, else ``~/.cache/xpnet/<name>``."""
    base = os.environ.get("XPNET_DATA")
    return pathlib.Path(base) / name if base else pathlib.Path.home() / ".cache" / "xpnet" / name


def mirrors(name: str, override: Sequence[str] | None = None) -> list[str]:
    """Base URLs tried in order: ``override`` (a list, or one URL), else ``$XPNET_MIRRORS`` (comma separated),
    else the built-in list."""
    if name not in DOWNLOADS:
        raise ValueError(f"no download for dataset {name!r}; valid: {', '.join(DOWNLOADS)}")
    if isinstance(override, str):  # one URL, not a sequence of one-letter mirrors
        override = [override]
    if override and not all(isinstance(m, str) for m in override):
        raise TypeError(f"mirror must be a list of base URLs (str), got {override!r}")
    env = [m.strip() for m in os.environ.get("XPNET_MIRRORS", "").split(",") if m.strip()]
    chosen = list(override) if override else env or list(DOWNLOADS[name]["mirrors"])
    return [m if m.endswith("/") else m + "/" for m in chosen]


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_published(path: pathlib.Path, published: Published) -> bool:
    return path.is_file() and path.stat().st_size == published.size and _sha256(path) == published.sha256


@contextlib.contextmanager
def _folder_lock(folder: pathlib.Path, log: Callable[[str], None]) -> Iterator[bool]:
    """Hold an exclusive OS lock on ``folder`` itself (no lock file is left behind); yields whether it is held.

    Two downloads into one folder take turns. Where folders cannot be locked (no ``fcntl``, some network
    file systems) the download goes on unlocked (and leaves other writers' temporary files alone).
    """
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            log(f"waiting for another download into {folder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        except OSError:
            held = False
        yield held
    finally:
        os.close(fd)  # releases the lock


# -- one file from one mirror, within a deadline -------------------------------------------------------
DEADLINE_TIMEOUTS = 5
"""``download(timeout=T)`` abandons a mirror's file after ``DEADLINE_TIMEOUTS · T`` seconds in all."""

TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ValueError)
"""What a mirror's failure raises: URLError, HTTPError, timeouts, resets, a bad status line, oversized
headers, an invalid URL. Each one moves on to the next mirror."""


class _NotPublished(ValueError):
    """The mirror answered, but with other bytes than the published file (size or SHA-256)."""


class _Transfer:
    """A GET of ``url`` into ``out`` in a worker thread, at most ``published.size`` bytes, that the caller
    can abandon at a deadline: once :meth:`stop` returns, the worker never writes again."""

    def __init__(self, url: str, out: IO[bytes], published: Published, timeout: float):
        self.url, self.out, self.published, self.timeout = url, out, published, timeout
        self.digest = hashlib.sha256()
        self.received = 0
        self.error: BaseException | None = None
        self.stopped = False
        self.lock = threading.Lock()

    def run(self, seconds: float) -> None:
        """Transfer within ``seconds`` or raise: the transfer's error, or ``TimeoutError``."""
        worker = threading.Thread(target=self._work, name=f"xpnet download {self.url}", daemon=True)
        worker.start()
        try:
            worker.join(seconds)
        finally:
            if worker.is_alive():  # too slow (or Ctrl-C): abandoned; a blocked read ends by its own timeout
                self.stop()
        if self.stopped:  # whatever the worker does now, its file is incomplete
            raise TimeoutError(f"no complete answer within {seconds:g} s ({DEADLINE_TIMEOUTS} × timeout)")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        with self.lock:
            self.stopped = True

    def _work(self) -> None:
        try:
            self._get()
        except BaseException as e:  # handed to the caller's thread
            self.error = e

    def _get(self) -> None:
        size = self.published.size
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) != size:
                raise _NotPublished(f"it announces {int(length)} bytes, the published file has {size}")
            read = getattr(response, "read1", response.read)  # read1: returns what has arrived
            while self.received <= size:
                chunk = read(min(1 << 16, size + 1 - self.received))
                if not chunk:
                    break
                with self.lock:
                    if self.stopped:
                        return
                    self.out.write(chunk)
                    self.digest.update(chunk)
                    self.received += len(chunk)
        if self.received > size:
            raise _NotPublished(f"more than the published {size} bytes")
        if self.received < size:
            raise ConnectionError(f"the answer ended after {self.received} of {size} bytes")
        if self.digest.hexdigest() != self.published.sha256:
            raise _NotPublished(
                f"SHA-256 {self.digest.hexdigest()[:16]}... is not the published {self.published.sha256[:16]}..."
            )


def _old_partial_files(target: pathlib.Path) -> list[pathlib.Path]:
    """Partial files of earlier xpnet downloaders (``mkstemp(prefix=".NAME.", suffix=".part")``); the name is
    escaped, never a glob pattern. Today's downloads write through :func:`xpnet.atomic.atomic_write`."""
    return list(target.parent.glob(f".{glob.escape(target.name)}.*.part"))


def _fetch(url: str, target: pathlib.Path, published: Published, timeout: float) -> None:
    """``url`` → ``target`` atomically: at most the published size, within ``5·timeout`` s, SHA-256 verified."""
    with atomic.atomic_write(target) as f:
        _Transfer(url, f, published, timeout).run(DEADLINE_TIMEOUTS * timeout)


def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def download(
    name: str,
    folder: str | os.PathLike | None = None,
    mirror: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    timeout: float = 30.0,
) -> pathlib.Path:
    """Fetch the IDX files of ``name`` (``"mnist"``, ``"fashion-mnist"``) into ``folder`` and return it.

    ``folder`` defaults to :func:`cache_dir` (where the loaders and the CLI look). Files already
    there with the published size and SHA-256 are kept; others are fetched from the :func:`mirrors`
    in order, verified, and written atomically (mode ``0666 & ~umask``). A mirror's file is abandoned
    after ``5·timeout`` seconds in all (``timeout`` bounds each wait for data) or once it exceeds the
    published size; any failure moves on to the next mirror. Temporary files of killed downloads are
    removed: afterwards the folder holds only the data files. Raises :class:`DownloadError` (one
    paragraph: which files to place where) when no mirror delivers a file.

    Not pooch: it has no mirror list (one URL per file), no size cap and no deadline for a whole file
    (requests' timeout bounds each read), and its files end 0600 (``NamedTemporaryFile`` moved into
    place); serving those would need a downloader of our own, i.e. this code.
    """
    timeout = _check_timeout(timeout)
    urls = mirrors(name, mirror)
    target = pathlib.Path(folder) if folder is not None else cache_dir(name)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target}: not a folder (the files are downloaded into a folder, made if missing)")
    target.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: None)
    files: dict[str, Published] = DOWNLOADS[name]["files"]
    with _folder_lock(target, log) as locked:
        if locked:  # leftovers of killed downloads; unlocked, they might be another writer's
            for fname in files:
                atomic.remove_leftovers(target / fname)
                for old in _old_partial_files(target / fname):  # left by xpnet's earlier downloader
                    old.unlink(missing_ok=True)
        for fname, published in files.items():
            path = target / fname
            if _is_published(path, published):
                log(f"{fname}: already there, SHA-256 verified")
                continue
            errors, answered = [], 0
            for base in urls:
                try:
                    _fetch(base + fname, path, published, timeout)
                except TRANSPORT_ERRORS as e:
                    errors.append(f"{base + fname}: {_reason(e)}")
                    answered += isinstance(e, _NotPublished)
                    continue
                log(f"{fname}: downloaded from {base}, SHA-256 verified")
                break
            else:
                raise DownloadError(
                    _no_mirror(name, fname, target, urls, errors, every_answer_wrong=answered == len(urls))
                )
    return target


def _reason(e: BaseException) -> str:
    """A failure in a few words on one line (a mirror's garbage is cut, not printed whole)."""
    text = " ".join(str(getattr(e, "reason", None) or e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _no_mirror(
    name: str, fname: str, target: pathlib.Path, urls: list[str], errors: list[str], every_answer_wrong: bool
) -> str:
    """The :class:`DownloadError` paragraph: what failed, and what to do (offline advice only if it may help)."""
    files: dict[str, Published] = DOWNLOADS[name]["files"]
    missing = [f for f, published in files.items() if not _is_published(target / f, published)]
    failed = f"could not download {name}: no mirror delivered {fname} ({'; '.join(errors)}). "
    if every_answer_wrong:  # every mirror is reachable: being offline is not the cause
        return failed + (
            f"Every mirror answered with a file other than the published one (size and SHA-256 in "
            f"xpnet.datasets.DOWNLOADS[{name!r}]): a mirror or a proxy on the way changed it. Fetch "
            f"{', '.join(missing)} from a source you trust, check their SHA-256 and place them in {target}, or "
            f"point XPNET_MIRRORS (or --mirror) to a faithful copy."
        )
    return failed + (
        f"If this machine is offline, fetch {', '.join(missing)} elsewhere (from {urls[0]} or any mirror), "
        f"check their SHA-256 (xpnet.datasets.DOWNLOADS[{name!r}]) and place them in {target}; "
        f"xpnet finds them there. Or point XPNET_MIRRORS (or --mirror) to a reachable copy."
    )


def _data_command(name: str, folder: str | os.PathLike | None) -> str:
    """The ``xpnet data`` command that fills ``folder`` (the cache folder where None)."""
    if folder is None or pathlib.Path(folder).resolve() == cache_dir(name).resolve():
        return f"xpnet data {name}"
    return f"xpnet data {name} --dir {shlex.quote(str(folder))}"


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
        f"{', '.join(f + '[.gz]' for f in MNIST_FILES.values())}. Download them with `{_data_command(name, path)}` "
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
            raise ValueError(f"{e}; to fetch it again, run `{_data_command(name, folder)}`") from e
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

"""Checked downloads of the IDX data sets (``xpnet data NAME``, ``load_mnist(download=True)``): each file's
published SHA-256 and size (:data:`DOWNLOADS`), a list of mirrors tried in turn, a deadline per file,
atomic writes into the cache folder (:func:`cache_dir`), and one downloader per folder at a time."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import math
import os
import pathlib
import shlex
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, NamedTuple

from ..utils import atomic


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
    escaped, never a glob pattern. Today's downloads write through :func:`xpnet.utils.atomic.atomic_write`."""
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


def data_command(name: str, folder: str | os.PathLike | None) -> str:
    """The ``xpnet data`` command that fills ``folder`` (the cache folder where None)."""
    if folder is None or pathlib.Path(folder).resolve() == cache_dir(name).resolve():
        return f"xpnet data {name}"
    return f"xpnet data {name} --dir {shlex.quote(str(folder))}"

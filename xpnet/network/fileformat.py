"""The xpnet file format: one ``.npz`` holding a JSON description (``meta``) and host arrays.

Below the model: it writes a model's layers, loss, parameters, buffers and optimizer state, and reads a
file back into ``(meta, arrays)``; rebuilding a model from them is :mod:`xpnet.network.io`'s job (above the model).

Files are written atomically by :func:`xpnet.utils.atomic.atomic_write` (a temporary file in the same folder,
fsync, ``os.replace``, permissions ``0666 & ~umask``): a failed save leaves the previous file untouched
and no temporary behind.

Reading checks first and allocates last (:func:`open_file`): only a regular file is opened; the archive's
member list and each ``.npy`` header (shape, dtype) are read without reading any array, and an unknown,
duplicate, encrypted or oversized member (its size must be its header's shape × itemsize) is refused
before its data are decompressed; the JSON description has a size cap and a nesting cap. Any corrupt,
truncated or crafted file is one :class:`CorruptFile` (a ``ValueError``) naming the file and the fault.

bfloat16 arrays (torch), which NumPy cannot hold, are stored as their raw 16-bit patterns (uint16)
and named in the metadata's ``"dtypes"``: saved and loaded bit for bit. Loaded on a backend without
bfloat16 they become float32, which holds every bfloat16 value exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np

from ..backends import Backend, to_numpy
from ..utils import atomic
from . import losses

FORMAT, VERSION = "xpnet", 1


def layer_specs(model: Any) -> list[dict[str, Any]]:
    """Each layer's class name and constructor arguments, as stored in a file."""
    return [{"class": type(layer).__name__, "config": layer.config()} for layer in model.layers]


def loss_config(loss: losses.Loss) -> dict[str, Any]:
    if isinstance(loss, losses.Flooding):
        return {"class": "Flooding", "b": loss.b, "inner": loss_config(loss.loss)}
    return {"class": type(loss).__name__}


def make_loss(cfg: Any, nested: int = 0) -> losses.Loss:
    """The loss a file describes (a ``ValueError`` for anything else: unknown class, bad flood level)."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class"), str):
        raise ValueError(f"a loss is described by {{'class': name, ...}}, got {cfg!r:.80}")
    if cfg["class"] == "Flooding":
        b = cfg.get("b")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or nested >= 4:
            raise ValueError(f"Flooding: flood level b must be a number (and Flooding nest at most 4 deep), got {b!r}")
        return losses.Flooding(make_loss(cfg.get("inner"), nested + 1), b)  # its constructor checks b
    if cfg["class"] not in losses.LOSSES:
        raise ValueError(f"unknown loss {cfg['class']!r}; valid: {', '.join(losses.LOSSES)}, Flooding")
    return losses.LOSSES[cfg["class"]]()


def save(
    model: Any,
    path: str | os.PathLike,
    optimizer: Any = None,
    run: dict[str, Any] | None = None,
    run_arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``model`` (a :class:`~xpnet.Sequential`; and ``optimizer``'s state, if given) to ``path`` atomically.

    ``run``, ``run_arrays``: a training run's state (JSON-able, host arrays) stored beside the model: a
    run checkpoint, see :mod:`xpnet.training.checkpoint`; :func:`xpnet.load` reads the model out of such a file too."""
    path = atomic.check_writable(path)  # before the arrays are gathered: a bad path costs nothing
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "layers": layer_specs(model),
        "loss": loss_config(model.loss_layer),
        "input_shape": list(model.input_shape) if model.input_shape else None,
        "input_grad": model.input_grad,
    }
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    arrays.update({f"buffer/{k}": v for k, v in model.buffers.items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"class": type(optimizer).__name__, "config": optimizer.config(), "t": state["t"]}
        for key, slots in state["state"].items():
            arrays.update({f"opt/{key}/{slot}": a for slot, a in slots.items()})
    if run is not None:
        meta["run"] = run
        arrays.update({f"run/{k}": a for k, a in (run_arrays or {}).items()})
    arrays = to_host(arrays, meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic.atomic_write(path) as f:
        np.savez(f, **cast(dict[str, Any], arrays))  # (the stubs read a key as allow_pickle)


def to_host(arrays: dict[str, Any], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Host copies; bfloat16 ones as raw bits (the upper half of their exact float32), named in
    ``meta["dtypes"]``."""
    out, dtypes = {}, {}
    for name, a in arrays.items():
        h = to_numpy(a)
        if str(a.dtype).endswith("bfloat16"):
            h, dtypes[name] = (np.asarray(h, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16), "bfloat16"
        out[name] = h
    if dtypes:
        meta["dtypes"] = dtypes
    return out


def on_backend(backend: Backend, a: np.ndarray, kind: str | None) -> Any:
    """A host array onto ``backend``, as bfloat16 where it was saved so and the backend has it."""
    if kind is not None:
        try:
            return backend.from_host(a, dtype=backend.dtype(kind))
        except TypeError:  # no bfloat16 here: float32 holds its values exactly
            pass
    return backend.from_host(a)


# -- reading: check first, allocate last --------------------------------------------------------
MAX_META_BYTES = 16 << 20
"""The largest description (JSON) read: a run of many epochs stays far below it."""
MAX_DEPTH = 32
"""The deepest nesting of lists and objects in a description (xpnet writes about 6)."""
MAX_ENTRIES = 100_000
MAX_RATIO = 1100
"""A compressed entry may expand at most this much (deflate's own limit is about 1032)."""
_NAME = re.compile(r"(meta|(param|buffer|opt|run)/[A-Za-z0-9_./]+)\.npy")
_KINDS = "fiu"  # floating data, integers (labels, raw bfloat16 bits, the description's bytes)


class CorruptFile(ValueError):
    """A file that is not a valid xpnet file (corrupt, truncated, crafted); the message names it."""


@dataclass(frozen=True)
class Entry:
    """One array of a file, as its ``.npy`` header declares it (checked against the entry's size)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    info: zipfile.ZipInfo
    offset: int  # where the data start inside the entry

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class Archive:
    """An open xpnet file: its description (``meta``) and each entry's header, read and checked
    without reading any array; :meth:`array` then reads one entry's data (its size already known).

    Use as a context manager (:func:`open_file`); every failure is a :class:`CorruptFile` (a
    ``ValueError``) naming the file."""

    def __init__(self, path: pathlib.Path, f: IO[bytes]) -> None:
        self.path, self._file = path, f
        size = os.fstat(f.fileno()).st_size
        if f.read(4) != b"PK\x03\x04":
            raise CorruptFile(f"{path}: not an xpnet checkpoint (not an .npz archive)")
        f.seek(0)
        self._zip = zipfile.ZipFile(f)
        infos = self._zip.infolist()
        if "meta.npy" not in {info.filename for info in infos}:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (an .npz without xpnet's 'meta' entry)")
        if len(infos) > MAX_ENTRIES:
            raise CorruptFile(f"{path}: not an xpnet checkpoint ({len(infos)} entries, at most {MAX_ENTRIES})")
        self.entries: dict[str, Entry] = {}
        for info in infos:
            name = self._check_info(info, size)
            self.entries[name] = self._header(name, info)
        meta = self.entries.pop("meta", None)
        if meta is None:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (an .npz without xpnet's 'meta' entry)")
        self.meta = self._description(meta)
        self.dtypes = self._dtype_table()

    def _check_info(self, info: zipfile.ZipInfo, size: int) -> str:
        path = self.path
        if not _NAME.fullmatch(info.filename) or ".." in info.filename:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (unexpected entry {info.filename!r:.80})")
        name = info.filename[: -len(".npy")]
        if name in self.entries:
            raise CorruptFile(f"{path}: corrupt or truncated (entry {name!r} appears twice)")
        if info.flag_bits & 0x1:
            raise CorruptFile(f"{path}: corrupt or truncated (entry {name!r} is encrypted)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CorruptFile(f"{path}: corrupt or truncated (entry {name!r}: compression method {info.compress_type})")
        if info.header_offset + info.compress_size > size:
            raise CorruptFile(f"{path}: corrupt or truncated (entry {name!r} runs past the end of the file)")
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and info.file_size != info.compress_size) or info.file_size > MAX_RATIO * info.compress_size + 4096:
            raise CorruptFile(
                f"{path}: corrupt or truncated (entry {name!r} claims {info.file_size} bytes from "
                f"{info.compress_size} stored ones)"
            )
        return name

    def _header(self, name: str, info: zipfile.ZipInfo) -> Entry:
        with self._zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise CorruptFile(f"{self.path}: corrupt or truncated (entry {name!r}: .npy version {version})")
            offset = f.tell()
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise CorruptFile(f"{self.path}: not an xpnet checkpoint (entry {name!r} holds pickled Python objects)")
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise CorruptFile(f"{self.path}: not an xpnet checkpoint (entry {name!r} has dtype {dtype})")
        if dtype.byteorder not in ("=", "|"):
            raise CorruptFile(
                f"{self.path}: entry {name!r} is stored in non-native byte order ({dtype.str}); xpnet writes "
                f"{np.dtype(dtype.name).str}"
            )
        entry = Entry(tuple(int(s) for s in shape), dtype, bool(fortran), info, offset)
        if offset + entry.nbytes != info.file_size:
            raise CorruptFile(
                f"{self.path}: corrupt or truncated (entry {name!r} declares shape {entry.shape} of {dtype}, "
                f"{entry.nbytes} bytes, but holds {info.file_size - offset})"
            )
        return entry

    def _description(self, entry: Entry) -> dict[str, Any]:
        path = self.path
        if entry.dtype != np.uint8 or len(entry.shape) != 1:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (its 'meta' entry is not text)")
        if entry.nbytes > MAX_META_BYTES:
            raise CorruptFile(
                f"{path}: not an xpnet checkpoint (a description of {entry.nbytes} bytes; at most {MAX_META_BYTES})"
            )
        try:
            meta = json.loads(self._read(entry).tobytes().decode())
        except RecursionError:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (its description nests too deeply)") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptFile(f"{path}: not an xpnet checkpoint ({e})") from None
        if depth(meta, MAX_DEPTH) > MAX_DEPTH:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (its description nests deeper than {MAX_DEPTH})")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CorruptFile(f"{path}: not an xpnet checkpoint (no xpnet format marker)")
        if meta.get("version") != VERSION:
            raise CorruptFile(
                f"{path}: not an xpnet checkpoint (format version {meta.get('version')!r}; this xpnet reads {VERSION})"
            )
        return meta

    def _dtype_table(self) -> dict[str, str]:
        """``{entry: "bfloat16"}`` for the entries stored as raw bits (checked: uint16 entries)."""
        table = self.meta.get("dtypes", {})
        if not isinstance(table, dict):
            raise CorruptFile(f"{self.path}: invalid dtype table")
        for name, kind in table.items():
            entry = self.entries.get(name)
            if kind != "bfloat16" or entry is None or entry.dtype != np.uint16:
                raise CorruptFile(f"{self.path}: entry {name!r} is not stored as {kind!r} raw bits (uint16)")
        return dict(table)

    def _read(self, entry: Entry) -> np.ndarray:
        """The entry's data, read in chunks into one array of the size its header declared."""
        out = np.empty(entry.nbytes, dtype=np.uint8)
        with self._zip.open(entry.info) as f:
            f.read(entry.offset)  # the header, read before (at most a few KB)
            pos = 0
            while pos < entry.nbytes:
                chunk = f.read(min(1 << 22, entry.nbytes - pos))
                if not chunk:
                    raise CorruptFile(f"{self.path}: corrupt or truncated (entry {entry.info.filename!r} ends early)")
                out[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                pos += len(chunk)
            if f.read(1):  # also checks the CRC
                raise CorruptFile(f"{self.path}: corrupt or truncated (entry {entry.info.filename!r} is too long)")
        return out

    def array(self, name: str) -> np.ndarray:
        """Entry ``name``'s array (bfloat16 raw bits become their exact float32 values)."""
        entry = self.entries[name]
        try:
            data = self._read(entry).view(entry.dtype)
        except CorruptFile:
            raise
        except Exception as e:  # zlib, CRC, I/O: one kind of error
            if isinstance(e, MemoryError):
                raise
            raise CorruptFile(f"{self.path}: corrupt or truncated ({type(e).__name__}: {e})") from e
        a = data.reshape(entry.shape, order="F" if entry.fortran else "C")
        if self.dtypes.get(name) == "bfloat16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def dtype(self, name: str) -> np.dtype:
        """The dtype the entry loads as (bfloat16 raw bits: float32)."""
        return np.dtype(np.float32) if self.dtypes.get(name) == "bfloat16" else self.entries[name].dtype

    def close(self) -> None:
        self._zip.close()
        self._file.close()


def depth(value: Any, limit: int) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar 0, ``[]`` 1; counting stops past ``limit``)."""
    level, todo = 0, [value]
    while level <= limit:
        containers = [c for c in todo if isinstance(c, (list, dict))]
        if not containers:
            break
        level += 1
        todo = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]
    return level


@contextlib.contextmanager
def open_file(path: str | os.PathLike) -> Iterator[Archive]:
    """An open, checked :class:`Archive`; anything wrong with the file is a :class:`CorruptFile`
    naming it (``FileNotFoundError`` as it is; only regular files are read)."""
    path = pathlib.Path(path)
    f = atomic.open_regular(path)
    try:
        archive = Archive(path, f)
    except CorruptFile:
        f.close()
        raise
    except MemoryError:
        f.close()
        raise
    except Exception as e:  # zipfile, NotImplementedError, RuntimeError("encrypted"), tokenize, struct, ...
        f.close()
        raise CorruptFile(f"{path}: corrupt or truncated ({type(e).__name__}: {e})") from e
    try:
        yield archive
    finally:
        archive.close()


def read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The description and every array of an xpnet file (checked as :func:`open_file` checks it)."""
    with open_file(path) as archive:
        return archive.meta, {name: archive.array(name) for name in archive.entries}

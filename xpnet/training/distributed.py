"""Data-parallel training over processes and hosts: a tiny communicator around an existing engine (MPI).

``xpnet.distributed.init()`` returns the communicator of this run: an :class:`MPICommunicator` when the
script was started by ``mpiexec`` (or ``srun``) and mpi4py is installed, else the :class:`SingleCommunicator`
of size 1, so the same script runs both ways. :class:`~xpnet.Trainer` takes it as ``comm=``.

The transport is the small interface of :class:`Communicator`: ``rank``, ``size``, ``allreduce`` of one flat
buffer, ``bcast`` of one flat buffer, ``sum_values`` of a few host numbers and ``abort``. The data-parallel
logic on top (:meth:`Communicator.share`, :meth:`~Communicator.allreduce_grad`,
:meth:`~Communicator.bcast_data`) is written once against it, as ChainerMN's ``CommunicatorBase``: an NCCL
communicator (CuPy's ``cupy.cuda.nccl``, the unique id broadcast over MPI, ``ncclAllReduce`` of the flat
buffer on the compute stream) is a subclass that overrides ``allreduce`` and ``bcast``. None ships here:
it is not tested on this project's machines.

Device arrays: by default the flat buffer is staged through a host NumPy buffer (one device→host copy,
MPI on the host copy, one host→device copy: a synchronisation per training step on a GPU). With
``device_buffers=True`` the device array goes to MPI directly (mpi4py accepts CuPy arrays and CUDA torch
tensors through ``__cuda_array_interface__``/DLPack); this needs a CUDA-aware MPI build. This module is a
transport adapter: like the backends it may use NumPy, for the host staging buffers only.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import traceback
import warnings
import zlib
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ..backends import resolve_backend, to_numpy

if TYPE_CHECKING:
    from ..backends import Backend

__all__ = ["Communicator", "MPICommunicator", "SingleCommunicator", "init", "launched_by_mpi", "stop_all"]

LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
"""Environment variables that MPI launchers set (MPICH/Intel MPI/Slurm PMI, Open MPI, PMIx, MVAPICH)."""

_world: dict[str, Communicator] = {}


class Communicator:
    """The processes of one data-parallel run: ``rank`` in ``0 .. size-1``.

    Subclasses give the transport (``allreduce``, ``bcast``, ``sum_values``, ``abort``); the data-parallel
    helpers below are shared. Every method is a collective: all ranks call it, in the same order.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    """Rank among the processes on this host (pick this rank's GPU with it)."""
    local_size: int = 1

    # -- transport ---------------------------------------------------------------------------
    def allreduce(self, buf: Any, backend: Backend) -> Any:
        """Elementwise sum over ranks of a 1-D array of ``backend`` (a new array on the same device)."""
        raise NotImplementedError

    def bcast(self, buf: Any, backend: Backend, root: int = 0) -> Any:
        """Rank ``root``'s 1-D array on every rank (same shape and dtype on all ranks)."""
        raise NotImplementedError

    def sum_values(self, *values: Any) -> tuple[Any, ...]:
        """Host numbers (or 0-d device arrays) summed over ranks, as floats, in one call."""
        raise NotImplementedError

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``message`` and stop every rank of the run (no rank is left waiting in a collective)."""
        raise NotImplementedError

    @property
    def is_root(self) -> bool:
        """True on rank 0: the rank that prints, plots and saves."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a stop decision all ranks must share)."""
        if self.size == 1:
            return bool(flag)
        return self.sum_values(bool(flag))[0] > 0

    def check_equal(self, **values: Any) -> None:
        """Raise ``ValueError`` on every rank when the ranks disagree on any of these values (compared
        exactly): they would otherwise run different numbers of collectives and wait forever."""
        self.check_same(values)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's JSON-able ``value``, in rank order, on every rank (two allreduces of host buffers)."""
        if self.size == 1:
            return [value]
        host = resolve_backend("numpy")
        mine = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
        sizes = np.zeros(self.size)
        sizes[self.rank] = mine.size
        sizes = to_numpy(self.allreduce(sizes, host)).astype(np.int64)
        rows = np.zeros((self.size, int(sizes.max())))
        rows[self.rank, : mine.size] = mine  # bytes as float64: a sum with one non-zero term is exact
        rows = to_numpy(self.allreduce(rows.reshape(-1), host)).reshape(self.size, -1)
        return [json.loads(rows[r, : sizes[r]].astype(np.uint8).tobytes()) for r in range(self.size)]

    def check_same(self, fields: dict[str, Any]) -> None:
        """Raise ``ValueError`` on every rank, naming each field and the ranks' values, unless every rank
        gave the same JSON-able ``fields`` (one exchange; exact: integers stay integers)."""
        if self.size == 1 or not fields:
            return
        ranks = self.gather({k: _plain(v) for k, v in fields.items()})
        common = [k for k in ranks[0] if all(k in r for r in ranks)]  # e.g. a data set's checksums: where given
        differ = [k for k in common if any(r[k] != ranks[0][k] for r in ranks[1:])]
        if not differ and any(r.keys() != ranks[0].keys() for r in ranks):
            differ = [k for r in ranks for k in r if k not in common]
            ranks = [{k: k in r for k in differ} for r in ranks]  # which ranks have the field
        if differ:
            details = "; ".join(f"{k}: {_by_rank(ranks, k)}" for k in differ)
            raise ValueError(
                f"the {self.size} ranks disagree on {', '.join(differ)} ({details}): every rank must load the "
                f"same data and build the same model and trainer with the same settings"
            )

    def check_fit(self, trainer: Any, data: dict[str, tuple[Any, Any] | None]) -> None:
        """At the start of a data-parallel ``fit``: :meth:`check_same` on :func:`fit_fingerprint` (nothing to
        compare, and nothing computed, for one process)."""
        if self.size > 1:
            self.check_same(fit_fingerprint(trainer, data))

    # -- data parallelism ----------------------------------------------------------------------
    def share(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's contiguous share ``[lo, hi)`` of the samples ``[start, stop)`` of a global batch.

        Shares differ by at most one sample (rank r gets ``[start + ⌊r·m/P⌋, start + ⌊(r+1)·m/P⌋)``,
        ``m = stop − start``); a rank gets none when ``m < P``."""
        m = stop - start
        return start + self.rank * m // self.size, start + (self.rank + 1) * m // self.size

    def allreduce_grad(
        self, grads: dict[str, Any] | None, params: dict[str, Any], backend: Backend, weight: float
    ) -> dict[str, Any]:
        """``Σ_r weight_r · grads_r`` over ranks, through ONE allreduce of one flat buffer.

        With ``weight = n_r / n`` (this rank's share of a global batch of ``n`` samples) and each rank's
        gradients the mean over its share, the result is the mean gradient of the global batch: the
        single-process update, up to rounding. ``grads=None``: this rank has no sample of this batch and
        contributes zeros. Size 1: ``grads`` unchanged."""
        if self.size == 1:
            if grads is None:
                raise ValueError("allreduce_grad: a single process must compute the gradients of every batch")
            return grads
        xp = backend.xp
        if grads is None:  # zeros_like keeps each backend's device (a rare path: a last batch smaller than P)
            flat = xp.concat([xp.reshape(xp.zeros_like(p), (-1,)) for p in params.values()])
        else:
            flat = xp.concat([xp.reshape(grads[k], (-1,)) for k in params]) * weight
        return _unflatten(xp, self.allreduce(flat, backend), params)

    def bcast_data(self, arrays: dict[str, Any], backend: Backend, root: int = 0) -> None:
        """Overwrite ``arrays`` (parameters, BatchNorm statistics) in place with rank ``root``'s values, in one
        broadcast of one flat buffer. Size 1: nothing to do."""
        if self.size == 1 or not arrays:
            return
        xp = backend.xp
        flat = self.bcast(xp.concat([xp.reshape(a, (-1,)) for a in arrays.values()]), backend, root)
        for a, value in zip(arrays.values(), _unflatten(xp, flat, arrays).values()):
            a[...] = xp.astype(value, a.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleCommunicator(Communicator):
    """One process, no MPI: every collective is the identity."""

    def allreduce(self, buf: Any, backend: Backend) -> Any:
        return buf

    def bcast(self, buf: Any, backend: Backend, root: int = 0) -> Any:
        return buf

    def sum_values(self, *values: Any) -> tuple[Any, ...]:
        return values  # left on the device: the caller reads them once

    def abort(self, message: str, code: int = 1) -> NoReturn:
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(code)


class MPICommunicator(Communicator):
    """A communicator on MPI through mpi4py (``MPI.COMM_WORLD`` unless ``mpi_comm`` is given).

    Args:
        mpi_comm: an mpi4py communicator (a sub-communicator for several runs in one job).
        device_buffers: hand device arrays to MPI directly (needs a CUDA-aware MPI on a GPU); default:
            stage them through host buffers. CPU arrays go to MPI without a copy either way.
        abort_on_error: with more than one rank, an uncaught exception on any rank prints its traceback
            and calls ``MPI_Abort`` so that the other ranks do not wait forever in a collective
            (ChainerMN's ``global_except_hook``).
    """

    def __init__(self, mpi_comm: Any = None, device_buffers: bool = False, abort_on_error: bool = True) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = mpi_comm if mpi_comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        host = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)  # the ranks sharing this host's memory
        self.local_rank, self.local_size = host.Get_rank(), host.Get_size()
        host.Free()
        self.device_buffers = bool(device_buffers)
        if abort_on_error and self.size > 1:
            _install_except_hook(self)

    def _to_wire(self, buf: Any, backend: Backend) -> tuple[Any, Any]:
        """(send buffer, receive buffer) for MPI: device arrays as they are (``device_buffers``) or on the host."""
        xp = backend.xp
        if xp.finfo(buf.dtype).bits < 32:  # float16/bfloat16: summed in float32 (bfloat16 has no NumPy dtype)
            buf = xp.astype(buf, xp.float32)
        if self.device_buffers or not backend.is_gpu:
            if self.device_buffers and backend.is_gpu:
                backend.synchronize()  # MPI reads device memory outside the compute stream
            if backend.exports_buffers:
                return buf, xp.empty_like(buf)
        host = to_numpy(buf)  # the documented per-step device→host copy on a GPU
        return host, np.empty_like(host)

    def _from_wire(self, out: Any, like: Any, backend: Backend) -> Any:
        if not backend.owns(out):
            out = backend.from_host(out)
        return out if out.dtype == like.dtype else backend.xp.astype(out, like.dtype)

    def allreduce(self, buf: Any, backend: Backend) -> Any:
        send, recv = self._to_wire(buf, backend)
        self.comm.Allreduce(send, recv, op=self.MPI.SUM)
        return self._from_wire(recv, buf, backend)

    def bcast(self, buf: Any, backend: Backend, root: int = 0) -> Any:
        send, recv = self._to_wire(buf, backend)
        if self.rank == root:
            recv[...] = send
        self.comm.Bcast(recv, root=root)
        return self._from_wire(recv, buf, backend)

    def sum_values(self, *values: Any) -> tuple[Any, ...]:
        local = np.array([float(v) for v in values], dtype=np.float64)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=self.MPI.SUM)
        return tuple(float(v) for v in total)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        # one write: print() writes its parts one by one, and another rank's MPI_Abort can kill this process
        # between them (seen in CI: the message came out without the "stopping" line)
        sys.stderr.write(
            (f"{message}\n" if message else "")
            + f"xpnet: stopping all {self.size} ranks (MPI_Abort from rank {self.rank})\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(0.5)  # let the launcher forward these lines before MPI_Abort tears the job down
        self.comm.Abort(code)
        raise SystemExit(code)  # not reached: MPI_Abort ends the process


def fit_fingerprint(trainer: Any, data: dict[str, tuple[Any, Any] | None]) -> dict[str, Any]:
    """What every rank of a data-parallel ``fit`` must agree on, as exact JSON-able values: the counts and
    per-sample shapes of the data sets given (``data``: ``{"train": (x, t), "test": ..., "validation":
    ...}``, ``None`` where not given) and a CRC-32 of each array's bytes (a shuffled, shifted or edited copy
    differs; one host copy of each array, once per fit), the model's architecture, dtype and parameter
    count, the Trainer's seed (the data order; not the backend RNG, which differs per rank by design), its
    and the optimizer's settings, whether a checkpoint is given and ``checkpoint_every`` (not the path),
    and whether the run resumes one."""
    model, opt = trainer.model, trainer.optimizer
    fields: dict[str, Any] = {}
    for name, pair in data.items():
        fields[f"{name} data"] = pair is not None
        suffix = {"train": "_train", "test": "_test", "validation": "_val"}.get(name, f"_{name}")
        if pair is None:
            continue
        fields["samples" if name == "train" else f"{name} samples"] = int(pair[0].shape[0])
        for prefix, a in zip("xt", pair):
            fields[f"{prefix}{suffix}"] = f"{tuple(a.shape[1:])} per sample, {a.dtype}"
            fields[f"{prefix}{suffix} checksum"] = _checksum(model.backend, a)
    fields.update(
        architecture=[layer.describe() for layer in model.layers],
        loss=repr(model.loss_layer),
        parameters=int(model.n_params()),
        dtype=str(model.dtype),
        seed=trainer.seed if trainer.seed is not None else f"None (a random data order: {_random_tag()})",
        epochs=trainer.epochs,
        batch_size=trainer.batch_size,
        eval_batch_size=trainer.eval_batch_size,
        optimizer=_described(opt),
        optimizer_step=int(getattr(opt, "t", 0)),
        gradient=trainer.gradient,
        clip_norm=trainer.clip_norm,
        schedule=_described(trainer.schedule) if trainer.schedule is not None else None,
        patience=trainer.patience,
        restore_best=trainer.restore_best,
        checkpoint=trainer.checkpoint is not None,
        checkpoint_every=trainer.checkpoint_every,
        resumed=getattr(trainer, "_resume", None) is not None,
    )
    return fields


def _described(obj: Any) -> str:
    """``repr(obj)`` without memory addresses (``<function <lambda> at 0x7f...>`` differs on every rank)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _random_tag() -> str:
    """A random number: ``seed=None`` shuffles each rank differently, so the ranks never agree on it."""
    return f"{np.random.default_rng().integers(2**62):x}"


def _checksum(backend: Backend, a: Any) -> str | None:
    """CRC-32 of an array's bytes in C order (``None`` on a device that holds no values)."""
    if not backend.has_data:
        return None
    return f"{zlib.crc32(np.ascontiguousarray(backend.to_host(a)).data):08x}"


def _plain(value: Any) -> Any:
    """``value`` as JSON holds it exactly (integers as integers; anything else JSON lacks as its repr)."""
    return json.loads(json.dumps(value, default=repr))


def _by_rank(ranks: list[dict[str, Any]], key: str) -> str:
    """``"rank 0: 11; ranks 1, 2: 12"`` — the ranks grouped by their value of ``key``."""
    groups: dict[str, list[int]] = {}
    for r, fields in enumerate(ranks):
        groups.setdefault(json.dumps(fields.get(key)), []).append(r)
    return ", ".join(
        f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: {_shown(json.loads(value))}"
        for value, rs in groups.items()
    )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def launched_by_mpi() -> bool:
    """True when an MPI launcher (``mpiexec``, ``mpirun``, ``srun``) started this process."""
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def init(device_buffers: bool = False, mpi: bool | None = None) -> Communicator:
    """The communicator of this run.

    ``mpi=None`` (default): MPI when the process was started by an MPI launcher and mpi4py is installed,
    else a :class:`SingleCommunicator` (size 1; a warning when a launcher asked for several processes but
    mpi4py is missing: ``pip install "xpnet[mpi]"``). ``mpi=True`` requires mpi4py; ``mpi=False`` never
    uses it. ``device_buffers``: see :class:`MPICommunicator`. The result is kept: :func:`stop_all` uses it.
    """
    if mpi is None:
        mpi = launched_by_mpi()
        if mpi and not _have_mpi4py():
            size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "?"
            if size != "1":
                warnings.warn(
                    f"started by an MPI launcher ({size} processes) but mpi4py is not installed: each "
                    f'process trains alone. Install it with: pip install "xpnet[mpi]" (and an MPI: '
                    f"pip install mpich, or the cluster's)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            mpi = False
    elif mpi and not _have_mpi4py():
        raise ImportError(
            'xpnet.distributed.init(mpi=True) needs mpi4py: pip install "xpnet[mpi]" '
            "(and an MPI: pip install mpich, or the cluster's)"
        )
    comm: Communicator = MPICommunicator(device_buffers=device_buffers) if mpi else SingleCommunicator()
    _world["comm"] = comm
    return comm


def stop_all(message: str = "", code: int = 1) -> None:
    """After an error on this rank (already reported, or ``message``): stop every rank of the communicator
    made by :func:`init` when it has several, since the others would wait forever in the next collective.
    A no-op for a single process."""
    comm = _world.get("comm")
    if comm is not None and comm.size > 1:
        comm.abort(message, code)


def _have_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _install_except_hook(comm: MPICommunicator) -> None:
    previous = sys.excepthook
    if getattr(previous, "_xpnet_abort", False):
        return

    def hook(kind: Any, value: Any, tb: Any) -> None:
        text = "".join(traceback.format_exception(kind, value, tb)).rstrip()
        comm.abort(f"xpnet: uncaught exception on rank {comm.rank}:\n{text}")

    hook._xpnet_abort = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _unflatten(xp: Any, flat: Any, like: dict[str, Any]) -> dict[str, Any]:
    """Views of ``flat`` shaped like ``like``'s arrays, under the same keys."""
    out, offset = {}, 0
    for key, a in like.items():
        n = math.prod(a.shape)
        out[key] = xp.reshape(flat[offset : offset + n], a.shape)
        offset += n
    return out

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

import math
import os
import sys
import time
import traceback
import warnings
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from .backend import to_numpy

if TYPE_CHECKING:
    from .backend import Backend

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

    def check_equal(self, **values: int) -> None:
        """Raise ``ValueError`` on every rank when the ranks disagree on any of these integers (sample count,
        parameter count, ...): they would otherwise run different numbers of collectives and wait forever."""
        if self.size == 1 or not values:
            return
        sums = self.sum_values(*values.values(), *(float(v) ** 2 for v in values.values()))
        k = len(values)
        differ = [name for i, name in enumerate(values) if sums[i] ** 2 != self.size * sums[k + i]]  # Σv² = P·mean²
        if differ:
            raise ValueError(
                f"the {self.size} ranks disagree on {', '.join(differ)} (rank {self.rank}: "
                f"{', '.join(f'{n}={values[n]}' for n in differ)}): every rank must load the same "
                f"data and build the same model with the same settings"
            )

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

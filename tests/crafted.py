"""Crafted xpnet files for the untrusted-file tests: zip archives built member by member, and a child
process that loads one under a memory limit and reports its peak memory."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def meta(layers, **extra):
    """A model description (the ``meta`` entry's JSON)."""
    return {
        "format": "xpnet",
        "version": 1,
        "layers": layers,
        "loss": {"class": "SoftmaxCrossEntropy"},
        "input_shape": None,
        "input_grad": False,
        **extra,
    }


def affine(n_in, n_out):
    return {"class": "Affine", "config": {"in_features": n_in, "out_features": n_out, "init": "he"}}


def npy(a):
    """The bytes ``np.save`` writes for ``a``."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_header(shape, dtype="<f4", fortran=False):
    """Only the header of an ``.npy`` claiming ``shape`` (append any data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": fortran, "shape": tuple(shape)})
    return buf.getvalue()


def meta_bytes(description):
    return npy(np.frombuffer(json.dumps(description).encode(), dtype=np.uint8))


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """``members``: ``[(name without .npy, bytes)]``, in order (a name may repeat)."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            with zf.open(name + ".npy", "w", force_zip64=len(data) > 1 << 30) as f:
                f.write(data)
    return pathlib.Path(path)


def members_of(path):
    """``[(name without .npy, bytes)]`` of an existing file."""
    with zipfile.ZipFile(path) as zf:
        return [(i.filename[:-4], zf.read(i)) for i in zf.infolist()]


def description_of(path):
    return json.loads(np.load(io.BytesIO(dict(members_of(path))["meta"])).tobytes().decode())


def rewrite(path, edit_meta=None, members=None):
    """Rewrite a saved file with its description edited, or its members replaced (as given)."""
    if members is None:
        description = description_of(path)
        edit_meta(description)
        members = [(n, meta_bytes(description) if n == "meta" else d) for n, d in members_of(path)]
    path.unlink()
    write_zip(path, members)


CHILD = r"""
import resource, sys
def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
import xpnet
from xpnet.history import History
xpnet.set_backend("numpy")
try:  # reset the peak-RSS mark (Linux >= 4.0), so that the peak is the load's own
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = status("VmRSS")
resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + (1 << 30), resource.RLIM_INFINITY))
kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "checkpoint":
        xpnet.Trainer.from_checkpoint(path, verbose=False)
    elif kind == "history":
        History.load(path)
    else:
        xpnet.load(path)
    print("RESULT loaded")
except ValueError as e:
    print("RESULT ValueError", e)
except BaseException as e:
    print("RESULT", type(e).__name__, e)
print("PEAK_MB", max(0, status("VmHWM") - base) / 2**20)
"""


def load_in_child(path, kind="model", timeout=60):
    """``(result line, peak resident MB above the child's state before the load)`` of loading ``path``
    in a child process whose address space may grow by at most 1 GiB (a failure cannot exhaust the machine)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return "RESULT timeout (the load hung)", None
    lines = {line.split(" ", 1)[0]: line for line in out.stdout.splitlines() if line.startswith(("RESULT", "PEAK_MB"))}
    assert "RESULT" in lines, out.stdout + out.stderr
    return lines["RESULT"].removeprefix("RESULT "), float(lines["PEAK_MB"].split()[1])

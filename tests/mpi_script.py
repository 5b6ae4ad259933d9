"""Run by tests/test_distributed.py as ``mpiexec -n 2 python tests/mpi_script.py MODE OUT_DIR``.

``train(case)`` is also called in the test process (one process, no MPI) for the reference.
Modes: ``train`` (every case in CASES, each rank saves its parameters and history to OUT_DIR/rank<r>.npz),
``fail-on-rank-1`` (rank 1 raises in its first epoch; the run must stop, not hang), ``stop-on-rank-1`` (a
callback on rank 1 stops training after epoch 2: every rank stops), ``mismatch`` (rank 1 has one sample less),
``fingerprint`` (each of FINGERPRINT_CASES: rank 1 differs from rank 0 in one way; each rank prints what it got).
"""

from __future__ import annotations

import json
import sys

import numpy as np

import xpnet
from xpnet import distributed
from xpnet import layers as L

CASES = {
    # name: (backend, batch size, weight decay, batchnorm); 181 samples
    "numpy-b25": ("numpy", 25, 0.0, False),  # last batch 6; shares 12/13 and 3/3
    "numpy-b36-decay": ("numpy", 36, 0.01, False),  # last batch of 1 sample: rank 0 has none
    "torch-b25": ("torch", 25, 0.0, False),
    "strict-b36": ("array_api_strict", 36, 0.0, False),  # arrays staged through host buffers
    "numpy-batchnorm": ("numpy", 25, 0.0, True),  # per-rank batch statistics: not compared with one process
}
EPOCHS = 4


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(181, 12))
    t = np.argmax(x[:, :3] + 0.5 * x[:, 3:6], axis=1)
    return x, t


def train(case: str, comm: distributed.Communicator | None = None) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train CASES[case] in float64 with Momentum; (parameters on the host, per-epoch train losses + accs)."""
    name, batch, decay, batchnorm = CASES[case]
    x, t = data()
    xpnet.set_default_dtype("float64")
    with xpnet.use_backend(name):
        xpnet.seed(5)
        layers: list[L.Layer] = [L.Affine(12, 16)]
        layers += [L.BatchNorm(16)] if batchnorm else []
        model = xpnet.Sequential([*layers, L.ReLU(), L.Affine(16, 8), L.ReLU(), L.Affine(8, 3)])
    if comm is not None and comm.rank == 1:
        xpnet.seed(99)  # rank 1 starts from other weights: the broadcast from rank 0 must fix that
        with xpnet.use_backend(name):
            other = [L.Affine(12, 16)]
        model.params["0.W"][...] = other[0].W
    opt = xpnet.optimizers.Momentum(lr=0.05, momentum=0.9, weight_decay=decay)
    history = xpnet.Trainer(model, opt, epochs=EPOCHS, batch_size=batch, seed=11, verbose=False, comm=comm).fit(
        x, t, x[:50], t[:50]
    )
    params = {k: np.asarray(xpnet.to_numpy(v)) for k, v in {**model.params, **model.buffers}.items()}
    metrics = [r[k] for r in history.records for k in ("train_loss", "train_acc", "test_loss", "test_acc")]
    return params, metrics


def main(mode: str, out: str) -> None:
    comm = distributed.init()
    if comm.size != 2:
        raise SystemExit(f"expected 2 MPI ranks, got {comm.size}: is mpiexec from the MPI that mpi4py was built with?")
    if mode == "train":
        saved: dict[str, np.ndarray] = {}
        available = xpnet.available_backends()
        for case in [c for c in CASES if CASES[c][0] in available]:  # torch may be missing
            params, metrics = train(case, comm)
            saved.update({f"{case}/{k}": v for k, v in params.items()})
            saved[f"{case}/metrics"] = np.asarray(metrics)
        saved["local"] = np.asarray([comm.local_rank, comm.local_size])  # one host: local rank = rank
        np.savez(f"{out}/rank{comm.rank}.npz", **saved)
        print(json.dumps({"rank": comm.rank, "cases": sorted({k.split("/")[0] for k in saved})}), flush=True)
    elif mode == "fail-on-rank-1":

        def fail(trainer, record):
            if trainer.comm.rank == 1:
                raise RuntimeError("deliberate failure on rank 1")

        x, t = data()
        model = xpnet.Sequential([L.Affine(12, 3)])
        xpnet.Trainer(
            model, xpnet.optimizers.SGD(lr=0.1), epochs=50, batch_size=10, verbose=False, callbacks=[fail], comm=comm
        ).fit(x, t)
        print("rank 0 finished without noticing", flush=True)
    elif mode in ("stop-on-rank-1", "mismatch"):
        x, t = data()
        if mode == "mismatch" and comm.rank == 1:
            x, t = x[:-1], t[:-1]  # another copy of the data set on this host
        model = xpnet.Sequential([L.Affine(12, 3)])
        history = xpnet.Trainer(
            model,
            xpnet.optimizers.SGD(lr=0.1),
            epochs=50,
            batch_size=10,
            verbose=False,
            callbacks=[lambda trainer, record: trainer.comm.rank == 1 and record["epoch"] == 2],
            comm=comm,
        ).fit(x, t)
        print(json.dumps({"rank": comm.rank, "epochs": len(history)}), flush=True)
    elif mode == "fingerprint":
        results = {}
        for case in FINGERPRINT_CASES:
            try:
                results[case] = {"trained": len(fingerprint_case(case, comm, out))}
            except ValueError as e:  # raised on every rank: no rank waits in a collective, no MPI abort
                results[case] = {"error": str(e)}
        with open(f"{out}/fingerprint-rank{comm.rank}.json", "w") as f:
            json.dump(results, f)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


FINGERPRINT_CASES = {
    # case: the fields the ranks must be told they disagree on (empty: they agree and train); a shorter or
    # float32 copy of the data also differs in its checksums
    "same": [],
    "seed": ["seed"],
    "shuffled": ["x_train checksum", "t_train checksum"],
    "shifted-labels": ["t_train checksum"],
    "edited-test": ["x_test checksum"],
    "validation-on-rank-0": ["validation data"],
    "checkpoint-on-rank-0": ["checkpoint"],
    "checkpoint-every": ["checkpoint_every"],
    "other-checkpoint-paths": [],  # the path string is not compared
    "lr": ["optimizer"],
    "one-sample-less": ["samples"],
    "float32-on-rank-1": ["x_train", "dtype"],
}


def fingerprint_case(case: str, comm: distributed.Communicator, out: str) -> xpnet.History:
    """One short ``fit`` where rank 1 differs from rank 0 as ``case`` says (see FINGERPRINT_CASES)."""
    x, t = data()
    other = comm.rank == 1
    xpnet.set_default_dtype("float32" if case == "float32-on-rank-1" and other else "float64")
    xt, tt = x[:40].copy(), t[:40]
    fit: dict = {}
    options: dict = {"seed": 11, "epochs": 1, "batch_size": 30, "verbose": False, "comm": comm}
    lr = 0.1
    if other:
        if case == "seed":
            options["seed"] = 12
        elif case == "shuffled":
            order = np.random.default_rng(0).permutation(len(x))
            x, t = x[order], t[order]
        elif case == "shifted-labels":
            t = np.roll(t, 1)
        elif case == "edited-test":
            xt[7, 3] += 1e-9
        elif case == "lr":
            lr = 0.2
        elif case == "one-sample-less":
            x, t = x[:-1], t[:-1]
    if case == "validation-on-rank-0" and not other:
        fit = {"x_val": x[:20], "t_val": t[:20]}
    if case == "checkpoint-on-rank-0" and not other:
        options["checkpoint"] = f"{out}/{case}.ckpt"
    if case in ("checkpoint-every", "other-checkpoint-paths"):
        options["checkpoint"] = f"{out}/{case}-rank{comm.rank}.ckpt"
        options["checkpoint_every"] = 2 if other and case == "checkpoint-every" else 1
    model = xpnet.Sequential([L.Affine(12, 3)])
    return xpnet.Trainer(model, xpnet.optimizers.SGD(lr=lr), **options).fit(x, t, xt, tt, **fit)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

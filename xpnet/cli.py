"""``xpnet train | compare | bench`` — the articles' experiments from the command line."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Any, Sequence

import numpy as np

from . import backend as B
from . import distributed
from .datasets import DATASETS
from .history import plot_histories
from .models import deep_cnn, mlp, simple_cnn
from .optimizers import OPTIMIZERS
from .trainer import Trainer

TABLE_COLUMNS = ("train", "test", "best", "TS95", "TS97", "TS98", "time")


def _add_training_options(p: argparse.ArgumentParser, many: bool) -> None:
    """The options of ``train``; with ``many`` (``compare``) each takes a list of values."""
    def opt(flag: str, typ: Any, default: Any, help: str) -> None:
        if many:
            p.add_argument(flag, type=str, nargs="+", default=None, metavar="V", help=help + f" (default {default})")
        else:
            p.add_argument(flag, type=typ, default=default, help=help + f" (default {default})")

    opt("--dataset", str, "digits", "digits | mnist | fashion-mnist")
    opt("--model", str, "mlp", "mlp (--hidden, --activation, ...) | simple-cnn | deep-cnn (the book's CNNs)")
    opt("--backend", str, "numpy", "numpy | cupy | torch | array_api_strict")
    opt("--hidden", str, "100,50", "hidden layer sizes, comma separated")
    opt("--activation", str, "relu", "relu | sigmoid | tanh | leakyrelu | relu6 | swish | mish | hswish | tanhexp")
    opt("--hswish-n", float, 6.0, "n of the generalised h-swish")
    opt("--optimizer", str, "sgd", " | ".join(OPTIMIZERS))
    opt("--lr", float, 0.1, "learning rate")
    opt("--momentum", float, 0.9, "momentum of momentum/nesterov")
    opt("--batch-size", int, 100, "mini-batch size")
    opt("--epochs", int, 50, "epochs")
    opt("--seed", int, 10, "seed of the initial weights and of the shuffling")
    opt("--flooding", float, None, "flood level b (off by default)")
    opt("--weight-decay", float, 0.0, "L2 weight decay λ")
    opt("--dropout", float, 0.0, "dropout probability after each hidden activation")
    opt("--dtype", str, "float32", "float32 | float64")
    opt("--init", str, "auto", "he | xavier | <std> | auto (xavier for sigmoid/tanh, else he)")
    p.add_argument("--batchnorm", action="store_true", help="BatchNorm after each hidden Affine")
    p.add_argument("--device", default=None, help="device of the backend (cupy: GPU index; torch: 'cuda:0')")
    p.add_argument("--data-path", default=None, help="folder holding the IDX files (mnist, fashion-mnist)")
    p.add_argument("--plot", default=None, help="write loss/accuracy curves to this PNG")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")


CONVERT = {"hswish_n": float, "lr": float, "momentum": float, "batch_size": int, "epochs": int, "seed": int,
           "flooding": float, "weight_decay": float, "dropout": float}
SETTINGS = (*CONVERT, "dataset", "model", "backend", "hidden", "activation", "optimizer", "dtype", "init")
"""The options that describe one run (``compare`` takes a list for each)."""


MODELS = ("mlp", "simple-cnn", "deep-cnn")


def _load_data(name: str, path: str | None, images: bool = False):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name](flatten=not images) if name == "digits" else DATASETS[name](path, flatten=not images)


def _build(cfg: dict[str, Any], x: np.ndarray, t: np.ndarray):
    classes = int(t.max()) + 1 if t.ndim == 1 else t.shape[1]
    if cfg["model"] == "simple-cnn":
        return simple_cnn(tuple(x.shape[1:]), classes, activation_name=cfg["activation"])
    if cfg["model"] == "deep-cnn":
        return deep_cnn(tuple(x.shape[1:]), classes)
    if cfg["model"] != "mlp":
        raise ValueError(f"unknown model {cfg['model']!r}; valid: {', '.join(MODELS)}")
    hidden = [int(h) for h in str(cfg["hidden"]).split(",") if h.strip()]
    return mlp([int(np.prod(x.shape[1:])), *hidden, classes], cfg["activation"], dropout=cfg["dropout"],
               batchnorm=cfg["batchnorm"], init=_init(cfg["init"]), flooding=cfg["flooding"], hswish_n=cfg["hswish_n"])


def _init(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def run_config(cfg: dict[str, Any], data: Any, device: Any = None, verbose: bool = True, out=None, comm=None):
    """Build the model and optimizer that ``cfg`` describes, train them, return (model, optimizer, history).

    ``comm``: train data-parallel on this communicator (:func:`xpnet.distributed.init`)."""
    (x, t), (xt, tt) = data
    backend = B.resolve_backend(cfg["backend"], device)
    B.set_default_dtype(cfg["dtype"])
    with B.use_backend(backend):
        B.seed(cfg["seed"])
        model = _build(cfg, x, t)
        if comm is not None and comm.size > 1:
            B.seed(cfg["seed"] + comm.rank)  # dropout masks per rank (weights come from rank 0)
    name = cfg["optimizer"].lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    kwargs: dict[str, Any] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = cfg["momentum"]
    optimizer = OPTIMIZERS[name](**kwargs)
    trainer = Trainer(model, optimizer, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                      verbose=verbose, out=out, comm=comm)
    history = trainer.fit(x, t, xt, tt)
    history.config.update({k: v for k, v in cfg.items()})
    return model, optimizer, history


def format_table(rows: list[tuple[dict[str, Any], dict[str, Any]]], keys: Sequence[str]) -> str:
    """The articles' result table: the varied settings, then train/test/best %, TS95/97/98, time."""
    header = [*keys, *TABLE_COLUMNS]

    def cell(v: Any, col: str) -> str:
        if v is None:
            return "–"
        if col in ("train", "test", "best"):
            return f"{v:.2f}"
        if col == "time":
            return f"{v:.1f} s"
        return str(v)

    body = [[str(cfg[k]) for k in keys] + [cell(summary[c], c) for c in TABLE_COLUMNS] for cfg, summary in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def cmd_train(args: argparse.Namespace) -> int:
    comm = distributed.init() if args.distributed else None
    cfg = {k: getattr(args, k) for k in (*SETTINGS, "batchnorm")}
    data = _load_data(args.dataset, args.data_path, images=args.model != "mlp")
    start = time.perf_counter()
    model, optimizer, history = run_config(cfg, data, args.device, verbose=not args.quiet, comm=comm)
    wall = time.perf_counter() - start
    if comm is not None and not comm.is_root:
        return 0  # rank 0 prints the table, saves and plots
    print(format_table([(cfg, history.summary())], ["model" if args.model != "mlp" else "activation"]))
    print(f"wall time {wall:.1f} s (training and per-epoch evaluation: {history.total_seconds:.1f} s)")
    if args.save:
        model.save(args.save, optimizer=optimizer)
        print(f"model saved to {args.save}")
    if args.history:
        history.save(args.history)
    if args.plot:
        history.plot(args.plot, label=cfg["activation"])
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    defaults = {a.dest: a.default for a in _train_parser()._actions if a.dest in SETTINGS}
    grid: dict[str, list[Any]] = {}
    for key, default in defaults.items():
        given = getattr(args, key)
        values = [v for item in given for v in (item.split(",") if key != "hidden" else [item])] if given else [default]
        grid[key] = [CONVERT[key](v) if key in CONVERT and v is not None else v for v in values]
    varied = [k for k, v in grid.items() if len(v) > 1] or ["activation"]
    rows, histories, datasets = [], {}, {}
    for combo in itertools.product(*grid.values()):
        cfg = dict(zip(grid, combo), batchnorm=args.batchnorm)
        label = ", ".join(f"{k}={cfg[k]}" for k in varied)
        print(f"== {label}", flush=True)
        images = cfg["model"] != "mlp"
        if (cfg["dataset"], images) not in datasets:
            datasets[cfg["dataset"], images] = _load_data(cfg["dataset"], args.data_path, images)
        _, _, history = run_config(cfg, datasets[cfg["dataset"], images], args.device, verbose=not args.quiet)
        rows.append((cfg, history.summary()))
        histories[label] = history
    print(format_table(rows, varied))
    if args.plot:
        plot_histories(histories, args.plot)
    if args.history:
        with open(args.history, "w") as f:
            f.write("[" + ",\n".join(h.to_json() for h in histories.values()) + "]\n")
    return 0


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xpnet train", description="Train an MLP and print the articles' table row.")
    _add_training_options(p, many=False)
    p.add_argument("--save", default=None, help="save model + optimizer state to this .npz")
    p.add_argument("--history", default=None, help="write per-epoch records to this .json or .csv")
    p.add_argument("--distributed", action="store_true", help="data-parallel over the processes of "
                   "`mpiexec -n P xpnet train --distributed ...` (--batch-size is the global batch; docs/distributed.md)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": "train a model (default: the digits MLP, offline, seconds)",
                "compare": "train several configurations and print one comparison table",
                "bench": "time xpnet against PyTorch and the GEMM floor on each backend"}
    if not argv or argv[0] not in commands:
        print("usage: xpnet {train,compare,bench} [options]   (xpnet <command> --help)")
        for name, text in commands.items():
            print(f"  {name:8s} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return cmd_train(_train_parser().parse_args(rest))
        if command == "compare":
            p = argparse.ArgumentParser(prog="xpnet compare", description="Run every combination of the given "
                                        "values and print one table (lists: --activation relu,swish --lr 0.1 0.5).")
            _add_training_options(p, many=True)
            p.add_argument("--history", default=None, help="write all runs' records to this .json")
            return cmd_compare(p.parse_args(rest))
        from .bench import main as bench_main

        return bench_main(rest)
    except (B.BackendUnavailableError, FileNotFoundError, ValueError) as e:
        print(f"xpnet {command}: error: {e}", file=sys.stderr)
        distributed.stop_all()  # under MPI: the other ranks must not wait for this one
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

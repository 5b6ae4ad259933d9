"""Rerun the articles' tables over several seeds, in parallel processes, and render them for docs/results.md.

The command (:mod:`xpnet.cli.reproduce`; ``xpnet.reproduce`` is its old name):

    python -m xpnet.reproduce list
    python -m xpnet.reproduce run act-lr0.1 --jobs 8 --out docs/results --data-path ../shared/data/mnist
    python -m xpnet.reproduce run all --quick --jobs 2          # dry run of every table on digits, minutes
    python -m xpnet.reproduce render all --out docs/results     # Markdown beside the JSON, printed too

Each run (one row, one seed) is one task; ``--jobs J`` runs J of them at once in fresh processes with
the BLAS pinned to one thread each (``OMP/OPENBLAS/MKL_NUM_THREADS=1``, and threadpoolctl when installed).
Every finished run is written at once to ``OUT/TABLE/ROW-seedS.json`` (config, per-epoch records, summary,
machine, versions, commit, wall time), so an interrupted ``run`` resumes where it stopped: runs whose file
exists are skipped (their configuration must match, else the run stops with an error), and a run stopped
midway continues from its checkpoint ``OUT/TABLE/ROW-seedS.ckpt`` (written after every epoch, removed
when the run is done). When a table's
runs are all there, ``OUT/TABLE.json`` (every run, readable by :func:`xpnet.experiments.load_runs`),
``OUT/TABLE.png`` (mean curves ± 1 sd) and ``OUT/TABLE.md`` (the rendered table) are written.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime
import json
import multiprocessing
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..training.history import History
from ..utils import atomic
from .runs import aggregate, default_config, format_stat, load_runs, markdown_table, plot_bands, seeds_from, within

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ACCURACIES = ("train", "test", "best")


# -- the tables ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One configuration of a table: its label, its settings (``xpnet train`` option names with ``_``)
    and the article's figures (``test``, and where published ``train``/``best``/``TS95``..., in %)."""

    label: str
    settings: dict[str, Any]
    published: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.label).strip("-").lower()


@dataclass(frozen=True)
class Table:
    """A published table: rows sharing ``common`` settings, each run with ``seeds`` seeds."""

    name: str
    title: str
    rows: tuple[Row, ...]
    common: dict[str, Any]
    seeds: int = 3
    source: str = ""

    def config(self, row: Row, **overrides: Any) -> dict[str, Any]:
        return default_config(**{**self.common, **row.settings, **overrides})


MLP = {"dataset": "mnist", "model": "mlp", "hidden": "100,50", "batch_size": 100, "epochs": 50, "optimizer": "sgd"}
ACTS = ("relu", "swish", "hswish", "mish", "tanhexp")
NAMES = {"relu": "ReLU", "swish": "Swish", "hswish": "h-swish (n=6)", "mish": "Mish", "tanhexp": "TanhExp"}


def _acts(published: Sequence[Any], lr: float | None = None) -> tuple[Row, ...]:
    rows = []
    for act, pub in zip(ACTS, published):
        pub = pub if isinstance(pub, dict) else {"test": pub}
        label = NAMES[act] + (f", lr {lr}" if lr is not None else "")
        rows.append(Row(label, {"activation": act, **({"lr": lr} if lr is not None else {})}, pub))
    return tuple(rows)


def _pub(train, test, best, ts95, ts97, ts98) -> dict[str, Any]:
    return {"train": train, "test": test, "best": best, "TS95": ts95, "TS97": ts97, "TS98": ts98}


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "act-lr0.1",
            "Activations, 784-100-50-10, SGD lr 0.1",
            _acts(
                [
                    _pub(100.00, 97.85, 97.88, 2, 5, None),
                    _pub(100.00, 98.01, 98.05, 3, 7, 33),
                    _pub(100.00, 97.88, 97.96, 4, 7, None),
                    _pub(100.00, 97.89, 97.99, 3, 7, None),
                    _pub(100.00, 97.88, 97.89, 2, 6, None),
                ]
            ),
            {**MLP, "lr": 0.1},
            seeds=5,
            source="SEEDS.md, the main MNIST table (seed 10, one run each)",
        ),
        Table(
            "act-lr0.5",
            "Activations, 784-100-50-10, SGD lr 0.5",
            _acts([98.07, 98.07, 98.30, 98.24, 98.25]),
            {**MLP, "lr": 0.5},
        ),
        Table(
            "act-200-100",
            "Activations, 784-200-100-10, SGD lr 0.1 and 0.5",
            _acts([98.01, 98.10, 98.01, 98.15, 98.10], 0.1)
            + _acts([98.29, 98.30, 98.36, 98.26, {"test": 98.45, "best": 98.49}], 0.5),
            {**MLP, "hidden": "200,100"},
        ),
        Table(
            "hswish-n",
            "h-swish with n = 1…10, 784-100-50-10, SGD lr 0.1",
            tuple(
                Row(f"n={n}", {"hswish_n": float(n)}, {"test": pub})
                for n, pub in zip(range(1, 11), [98.01, 97.93, 97.88, 98.03, 98.01, 97.88, 97.87, 97.78, 97.73, 97.71])
            ),
            {**MLP, "lr": 0.1, "activation": "hswish"},
        ),
        Table(
            "optimizers",
            "Optimizers, ReLU 784-100-50-10 (SGD family at lr 0.1 and 0.01, μ 0.9; adaptive at their defaults)",
            (
                Row("SGD, lr 0.1", {"optimizer": "sgd", "lr": 0.1}, {"test": 97.85}),
                Row("SGD, lr 0.01", {"optimizer": "sgd", "lr": 0.01}),
                Row("Momentum, lr 0.1", {"optimizer": "momentum", "lr": 0.1}, {"test": 96.97}),
                Row("Nesterov, lr 0.1", {"optimizer": "nesterov", "lr": 0.1}, {"test": 97.31}),
                Row("Momentum, lr 0.01", {"optimizer": "momentum", "lr": 0.01}, {"test": 98.05}),
                Row("Nesterov, lr 0.01", {"optimizer": "nesterov", "lr": 0.01}, {"test": 98.07}),
                Row("AdaGrad, lr 0.01", {"optimizer": "adagrad", "lr": 0.01}),
                Row("RMSProp, lr 0.01", {"optimizer": "rmsprop", "lr": 0.01}),
                Row("Adam, lr 0.001", {"optimizer": "adam", "lr": 0.001}),
                Row("AdamW, lr 0.001, wd 0.01", {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.01}),
            ),
            {**MLP, "momentum": 0.9},
        ),
        Table(
            "momentum-sweep",
            "Momentum and Nesterov, μ = 0.8…0.5 at lr 0.1, ReLU 784-100-50-10",
            tuple(
                Row(f"{opt.capitalize()}, μ {mu}", {"optimizer": opt, "momentum": mu}, {"test": pub})
                for opt, pubs in (
                    ("momentum", [98.19, 98.18, 97.99, 97.94]),
                    ("nesterov", [98.13, 97.84, 97.97, 98.03]),
                )
                for mu, pub in zip((0.8, 0.7, 0.6, 0.5), pubs)
            ),
            {**MLP, "lr": 0.1},
            source="SEEDS.md: the μ sweep is at lr 0.1 (an earlier version said 0.01)",
        ),
        Table(
            "flooding",
            "Flooding, ReLU 784-100-50-10, SGD lr 0.1, 500 epochs",
            (
                Row("b=0 (none)", {"flooding": None}, {"test": 97.85}),
                Row("b=0.1", {"flooding": 0.1}, {"train": 98.69, "test": 97.21, "best": 98.05}),
                Row("b=0.05", {"flooding": 0.05}, {"train": 99.26, "test": 97.67, "best": 98.01}),
                Row("b=0.01", {"flooding": 0.01}, {"train": 99.90, "test": 97.60, "best": 97.90}),
                Row("b=0.005", {"flooding": 0.005}, {"test": 97.77}),
                Row("b=0.001", {"flooding": 0.001}, {"test": 97.83}),
            ),
            {**MLP, "lr": 0.1, "epochs": 500},
        ),
        Table(
            "simple-cnn",
            "SimpleConvNet (the book's chapter 7), Adam lr 0.001, 20 epochs",
            (Row("SimpleConvNet", {}, {"test": 98.9, "approx": True}),),
            {"dataset": "mnist", "model": "simple-cnn", "optimizer": "adam", "lr": 0.001, "epochs": 20},
            source="the book reports ≈ 98.9 % test accuracy",
        ),
        Table(
            "deep-cnn",
            "DeepConvNet (the book's chapter 8), Adam lr 0.001, 20 epochs",
            (Row("DeepConvNet", {}, {"test": 99.4, "approx": True}),),
            {"dataset": "mnist", "model": "deep-cnn", "optimizer": "adam", "lr": 0.001, "epochs": 20},
            source="the book reports ≈ 99.4 % test accuracy",
        ),
    ]
}
QUICK = {"dataset": "digits", "epochs": 2}
"""What ``--quick`` changes: the embedded digits, 2 epochs (and 2 seeds)."""


def select(names: Sequence[str]) -> list[Table]:
    """Tables by name; ``all`` is every table."""
    if "all" in names:
        return list(TABLES.values())
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}; valid: all, {', '.join(TABLES)}")
    return [TABLES[n] for n in dict.fromkeys(names)]


# -- planning and running ------------------------------------------------------------------------
@dataclass
class Task:
    table: str
    row: str
    seed: int
    cfg: dict[str, Any]
    path: pathlib.Path
    cost: float
    keys: tuple[str, ...] = ()  # the settings the table (and the command) fix: a stored run must match them


def plan(
    tables: Sequence[Table],
    out: pathlib.Path,
    seeds: int | None = None,
    seed: int | None = None,
    quick: bool = False,
    **overrides: Any,
) -> list[Task]:
    """Every (table, row, seed) run, longest first; ``overrides`` (epochs, backend, ...) apply to all."""
    tasks = []
    for table in tables:
        extra = {**(QUICK if quick else {}), **{k: v for k, v in overrides.items() if v is not None}}
        n = seeds if seeds is not None else (2 if quick else table.seeds)
        for row in table.rows:
            cfg = table.config(row, **extra)
            for s in seeds_from(cfg["seed"] if seed is None else seed, n):
                cost = cfg["epochs"] * {"mlp": 1, "simple-cnn": 30, "deep-cnn": 60}.get(cfg["model"], 1)
                keys = (*table.common, *row.settings, *extra, "seed", "row")
                tasks.append(
                    Task(
                        table.name,
                        row.label,
                        s,
                        {**cfg, "seed": s, "row": row.label},
                        out / table.name / f"{row.slug}-seed{s}.json",
                        cost,
                        tuple(dict.fromkeys(keys)),
                    )
                )
    return sorted(tasks, key=lambda t: -t.cost)


def _norm(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _differ(stored: dict[str, Any], cfg: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """Settings where a stored run differs from the planned one: those in ``keys``, and every other one the
    stored run records (a setting added to xpnet later, absent from older files, does not count)."""
    return [k for k in cfg if (k in keys or k in stored) and _norm(stored.get(k)) != _norm(cfg[k])]


def done(task: Task) -> bool:
    """Whether the task's run file exists (raises when it holds another configuration)."""
    if not task.path.exists():
        return False
    stored = json.loads(task.path.read_text()).get("config", {})
    differ = _differ(stored, task.cfg, task.keys)
    if differ:
        raise ValueError(
            f"{task.path} holds another run "
            f"({', '.join(f'{k}={stored.get(k)!r} not {task.cfg[k]!r}' for k in differ)}); "
            f"use another --out or delete the file to rerun it"
        )
    return True


_DATA: dict[tuple, Any] = {}


def _init_worker() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # the environment variables set by the parent pin the threads already
        pass


def run_task(task: Task, data_path: str | None, device: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Run one task in this process and write its JSON file atomically; the written object."""
    from .config import load_data, run_config

    cfg = task.cfg
    images = cfg["model"] != "mlp"
    key = (cfg["dataset"], images, data_path)
    if key not in _DATA:
        _DATA[key] = load_data(cfg["dataset"], data_path, images)
    start = time.perf_counter()
    ckpt = task.path.with_suffix(".ckpt")  # a run stopped midway (Ctrl-C, kill, crash) resumes from it
    task.path.parent.mkdir(parents=True, exist_ok=True)
    _, _, history = run_config(
        cfg, _DATA[key], device, verbose=False, checkpoint=ckpt, resume=ckpt if ckpt.exists() else None
    )
    wall = time.perf_counter() - start
    run = json.loads(history.to_json())
    run["meta"] = {
        **meta,
        "table": task.table,
        "row": task.row,
        "wall_s": round(wall, 2),
        "finished": utc_now(),
        "blas": _blas(),
    }
    atomic.write_text(task.path, json.dumps(run) + "\n")
    ckpt.unlink(missing_ok=True)
    return run


def _blas() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: i.get(k) for k in keep} for i in threadpool_info()]


def run(
    tasks: Sequence[Task],
    jobs: int,
    data_path: str | None = None,
    device: Any = None,
    meta: dict[str, Any] | None = None,
    log=print,
) -> tuple[int, int, list[str]]:
    """Run the tasks whose file is missing, ``jobs`` at a time; (ran, skipped, errors)."""
    todo = [t for t in tasks if not done(t)]
    skipped = len(tasks) - len(todo)
    meta = meta or {}
    if skipped:
        log(f"{skipped} of {len(tasks)} runs already done (skipped)")
    errors: list[str] = []
    if not todo:
        return 0, skipped, errors

    def report(k: int, task: Task, result: dict[str, Any] | None, err: BaseException | None) -> None:
        head = f"[{k}/{len(todo)}] {task.table}: {task.row}, seed {task.seed}"
        if err is not None or result is None:
            errors.append(f"{head}: {type(err).__name__}: {err}")
            log(f"{head}: FAILED {type(err).__name__}: {err}")
        else:
            s = result["summary"]
            log(f"{head}: test {s['test']:.2f} best {s['best']:.2f} ({result['meta']['wall_s']:.1f} s)")

    if jobs <= 1:
        for k, task in enumerate(todo, 1):
            try:
                report(k, task, run_task(task, data_path, device, meta), None)
            except Exception as e:
                report(k, task, None, e)
        return len(todo), skipped, errors
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: "1" for v in THREAD_VARS})  # read by each spawned worker's BLAS at import
    try:
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker)
        try:
            futures = {pool.submit(run_task, t, data_path, device, meta): t for t in todo}
            for k, fut in enumerate(cf.as_completed(futures), 1):
                err = fut.exception()
                report(k, futures[fut], None if err else fut.result(), err)
        except KeyboardInterrupt:  # finished runs are on disk; the same command resumes
            # runs already handed to the workers may still finish (and are kept) before the process exits
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old
    return len(todo), skipped, errors


# -- assembling and rendering --------------------------------------------------------------------
def run_provenance(runs: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Where the runs were made, from the runs themselves (not from the invocation that assembles them,
    which may be another machine): each of command, commit, jobs, machine, versions, BLAS, with the
    distinct values in order when the runs disagree."""
    out = dict(meta)
    for key in ("command", "commit", "dirty", "jobs", "machine", "versions", "blas"):
        seen: list[Any] = []
        for r in runs:
            v = r.get("meta", {}).get(key)
            if v is not None and v not in seen:
                seen.append(v)
        if seen:
            out[key] = seen[0] if len(seen) == 1 else seen
    return out


def assemble(
    table: Table, tasks: Sequence[Task], out: pathlib.Path, meta: dict[str, Any], partial: bool = False
) -> pathlib.Path | None:
    """Write ``OUT/TABLE.json`` (and the PNG) once every run of the table exists (with ``partial``, from
    the runs that exist: missing rows render as "not run"); its path, or None."""
    mine = [t for t in tasks if t.table == table.name]
    if not all(t.path.exists() for t in mine):
        if not partial or not any(t.path.exists() for t in mine):
            return None
        mine = [t for t in mine if t.path.exists()]
    runs = [json.loads(t.path.read_text()) for t in sorted(mine, key=lambda t: (_row_index(table, t.row), t.seed))]
    meta = {**run_provenance(runs, meta), "complete": len(mine) == len([t for t in tasks if t.table == table.name])}
    walls = [r.get("meta", {}).get("wall_s", 0.0) for r in runs]
    first = runs[0]["config"]
    doc = {
        "table": table.name,
        "title": table.title,
        "source": table.source,
        "settings": {k: v for k, v in first.items() if k in table.common or k in QUICK},
        "seeds": sorted({t.seed for t in mine}),
        "rows": [{"label": r.label, "settings": r.settings, "published": r.published} for r in table.rows],
        "meta": {**meta, "assembled": utc_now(), "runs_wall_s": round(sum(walls), 1)},
        "runs": runs,
    }
    path = out / f"{table.name}.json"
    atomic.write_text(path, json.dumps(doc, separators=(",", ":")).replace(',{"config"', ',\n{"config"') + "\n")
    try:
        plot_bands(
            _by_row([r.label for r in table.rows], load_runs(path)), out / f"{table.name}.png", title=table.title
        )
    except ImportError as e:
        print(f"{table.name}: no PNG ({e})", file=sys.stderr)
    return path


def _row_index(table: Table, label: str) -> int:
    return [r.label for r in table.rows].index(label)


def _by_row(labels: Sequence[str], histories: Sequence[History]) -> dict[str, list[History]]:
    """The runs of a table file by row label, in the table's order (each run's config carries its label)."""
    out: dict[str, list[History]] = {label: [] for label in labels}
    for h in histories:
        out[h.config["row"]].append(h)
    return {k: v for k, v in out.items() if v}


def verdict(published: float, s: dict[str, Any]) -> str:
    """``yes`` when the published figure lies within two sd of our mean (:func:`~xpnet.experiments.seedstats.within`),
    else ``no``; with the difference and that distance in sd. With no spread (one seed, or every seed gave
    the same value) the distance in sd is undefined and the text says why instead."""
    if s["mean"] is None:
        return "–"
    diff = published - s["mean"]
    if s["sd"] > 0:
        far = f"{abs(diff) / s['sd']:.1f} sd"
    else:
        far = "one seed, no spread" if s.get("n", 0) <= 1 else f"all {s['n']} seeds equal"
    return f"{'yes' if within(published, s) else 'no'} ({diff:+.2f}, {far})"


def render(path: str | os.PathLike, link_base: str | os.PathLike | None = None) -> str:
    """The Markdown section of one table file: command, settings, machine, then one row per configuration
    with the published figure, our mean ± sd (min–max) and the verdict (published within two sd of ours)."""
    path = pathlib.Path(path)
    doc = json.loads(path.read_text())
    base = pathlib.Path(link_base) if link_base is not None else path.parent.parent
    groups = _by_row([r["label"] for r in doc["rows"]], load_runs(path))

    def rel(p: pathlib.Path) -> str:
        return os.path.relpath(p, base)

    meta = doc["meta"]
    n = len(doc["seeds"])
    lines = [f"### {doc['title']}", ""]
    if doc["settings"].get("dataset") != "mnist":
        dry = f"dataset {doc['settings'].get('dataset')}, {doc['settings'].get('epochs')} epochs"
        lines += [f"**Dry run only** ({dry}): not a reproduction.", ""]
    if meta.get("complete") is False:
        lines += ['**Incomplete**: rows marked "not run" did not finish (rerun the command to resume).', ""]

    def each(v: Any) -> list[Any]:
        return v if isinstance(v, list) else [v]

    machines = each(meta.get("machine", {}))
    commits = ", ".join(str(c)[:10] for c in each(meta.get("commit")))
    lines += [
        f"Command: {' then '.join(f'`{c}`' for c in each(meta.get('command')))} — {n} seeds "
        f"({_span(doc['seeds'])}) per row, {'/'.join(str(j) for j in each(meta.get('jobs')))} run(s) at a time, "
        f"commit {commits}{' (dirty)' if meta.get('dirty') is True else ''}, "
        + "; ".join(
            f"{m.get('cpu')} ({m.get('cores')} cores)" + (f", GPU {m['gpu']}" if m.get("gpu") else "") for m in machines
        )
        + f", backend {doc['runs'][0]['config'].get('backend')}, {doc['runs'][0]['config'].get('dtype')}. "
        f"Sum of run times {meta.get('runs_wall_s')} s. Raw runs: [{rel(path)}]({rel(path)}).",
        "",
    ]
    if doc.get("source"):
        lines += [f"Published figures: {doc['source']}.", ""]
    header = ["row", "published", "test (ours)", "test within 2 sd", "best", "train", "TS95", "TS97", "TS98", "time"]
    body = []
    for row in doc["rows"]:
        hs = groups.get(row["label"])
        if not hs:
            body.append([row["label"], _published(row["published"])] + ["not run"] * (len(header) - 2))
            continue
        st = aggregate(hs)
        pub = row["published"]
        others = [f"{c} {verdict(pub[c], st[c])}" for c in ("best", "train") if pub.get(c) is not None]
        test_verdict = verdict(pub["test"], st["test"]) if pub.get("test") is not None else "– (no published figure)"
        body.append(
            [
                row["label"],
                _published(pub),
                format_stat("test", st["test"]),
                test_verdict + "".join(f"; {o}" for o in others),
                format_stat("best", st["best"], spread=False),
                format_stat("train", st["train"], spread=False),
                *(format_stat(c, st[c]) for c in ("TS95", "TS97", "TS98")),
                format_stat("time", st["time"]),
            ]
        )
    lines += [markdown_table(header, body), ""]
    png = path.with_suffix(".png")
    if png.exists():
        lines += [f"![{doc['title']}]({rel(png)})", ""]
    return "\n".join(lines)


def _published(pub: dict[str, Any]) -> str:
    if not pub:
        return "–"

    def fmt(k: str, v: Any) -> str:
        if v is None:
            return "–"
        if k in ACCURACIES:
            return f"≈ {v}" if pub.get("approx") else f"{v:.2f}"
        return str(v)

    return " · ".join(f"{k} {fmt(k, v)}" for k, v in pub.items() if k != "approx")


def _span(seeds: Sequence[int]) -> str:
    return (
        f"{seeds[0]}–{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        else ", ".join(map(str, seeds))
    )


# -- provenance ----------------------------------------------------------------------------------
def utc_now() -> str:
    """Now, in UTC, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_name() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def provenance(argv: Sequence[str], jobs: int, backend: str | None) -> dict[str, Any]:
    """Machine, versions, command and commit of this invocation (stored in every run and table file)."""
    from .._version import __version__

    root = pathlib.Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    return {
        "command": shlex.join(["python", "-m", "xpnet.reproduce", *argv]),
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "xpnet")),
        "jobs": jobs,
        "machine": {
            "host": platform.node(),
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "os": platform.platform(),
            "gpu": _gpu_name(),
        },
        "versions": {
            "python": platform.python_version(),
            "xpnet": __version__,
            **{
                p: _version(p)
                for p in ("numpy", "array-api-compat", "cupy-cuda12x", "cupy-cuda13x", "torch")
                if _version(p)
            },
        },
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
    }

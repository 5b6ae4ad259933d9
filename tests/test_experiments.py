"""Runs over seeds: aggregation (checked against NumPy), ``compare --seeds``, runs files, the reproduction runner."""

import json
import subprocess
import sys

import numpy as np
import pytest

from xpnet import History
from xpnet import reproduce as R
from xpnet.cli import main
from xpnet.experiments import (
    aggregate,
    compare_seeds,
    curve_stats,
    default_config,
    format_stat,
    group_runs,
    load_runs,
    run_seeds,
    save_runs,
    seeds_from,
)

# five hand-made runs: final/best test accuracy, train accuracy, epochs and times differ
TEST = [[0.90, 0.955, 0.972], [0.94, 0.962, 0.968], [0.93, 0.975, 0.981], [0.91, 0.949, 0.960], [0.96, 0.97, 0.985]]


def _history(test, seed, seconds=1.5):
    records = [
        {
            "epoch": e + 1,
            "train_acc": min(1.0, a + 0.01),
            "train_loss": 1 - a,
            "test_acc": a,
            "test_loss": 1.2 - a,
            "seconds": seconds + 0.1 * e,
        }
        for e, a in enumerate(test)
    ]
    return History(records=records, config={"activation": "relu", "seed": seed})


@pytest.fixture
def runs():
    return [_history(t, 10 + i, seconds=1.0 + i) for i, t in enumerate(TEST)]


def test_aggregate_matches_numpy(runs):
    stats = aggregate(runs)
    last = np.array([100 * t[-1] for t in TEST])
    best = np.array([100 * max(t) for t in TEST])
    train = np.array([100 * min(1.0, t[-1] + 0.01) for t in TEST])
    for col, ref in (("test", last), ("best", best), ("train", train)):
        ref = np.round(ref, 2)  # summary() rounds to 0.01 %
        assert stats[col]["mean"] == pytest.approx(ref.mean())
        assert stats[col]["sd"] == pytest.approx(ref.std(ddof=1))
        assert (stats[col]["min"], stats[col]["max"], stats[col]["n"]) == pytest.approx((ref.min(), ref.max(), 5))
    times = np.round([sum(1.0 + i + 0.1 * e for e in range(3)) for i in range(5)], 1)
    assert stats["time"]["mean"] == pytest.approx(times.mean()) and stats["time"]["sd"] == pytest.approx(
        times.std(ddof=1)
    )
    col = np.array(TEST)
    for name, target in (("TS95", 0.95), ("TS97", 0.97), ("TS98", 0.98)):
        hit = col >= target
        epochs = (np.argmax(hit, axis=1) + 1)[hit.any(axis=1)]  # first epoch reaching the target, where one does
        assert stats[name]["reached"] == len(epochs) and stats[name]["n"] == 5
        assert stats[name]["mean"] == pytest.approx(epochs.mean())
        assert stats[name]["sd"] == pytest.approx(epochs.std(ddof=1) if len(epochs) > 1 else 0.0)
    assert (stats["TS95"]["reached"], stats["TS97"]["reached"], stats["TS98"]["reached"]) == (5, 3, 2)  # by hand
    assert format_stat("TS97", stats["TS97"]) == "2.3 (3/5)"
    assert format_stat("test", stats["test"]) == f"{last.mean():.2f} ± {last.std(ddof=1):.2f} (96.00–98.50)"


def test_aggregate_edge_cases(runs):
    one = aggregate(runs[:1])
    assert one["test"]["sd"] == 0.0 and one["test"]["mean"] == pytest.approx(97.2)
    never = aggregate([_history([0.5, 0.6], 1), _history([0.4, 0.7], 2)])
    assert never["TS95"]["mean"] is None and format_stat("TS95", never["TS95"]) == "– (0/2)"
    with pytest.raises(ValueError, match="at least one history"):
        aggregate([])


def test_curve_stats_per_epoch(runs):
    runs.append(_history([0.5], 99))  # a run that stopped after one epoch counts only there
    epochs, mean, sd = curve_stats(runs, "test_acc")
    col = np.array(TEST)
    assert epochs == [1, 2, 3]
    assert mean[0] == pytest.approx(np.mean([*col[:, 0], 0.5])) and sd[0] == pytest.approx(
        np.std([*col[:, 0], 0.5], ddof=1)
    )
    assert mean[1:] == pytest.approx(col[:, 1:].mean(axis=0)) and sd[1:] == pytest.approx(
        col[:, 1:].std(axis=0, ddof=1)
    )


def test_seed_lists():
    assert seeds_from(10, 3) == [10, 11, 12]
    assert compare_seeds([4], 2) == [4, 5] and compare_seeds([3, 1], None) == [3, 1]
    with pytest.raises(ValueError, match="--seeds"):
        compare_seeds([1, 2], 3)
    with pytest.raises(ValueError, match="twice"):
        compare_seeds([1, 1], None)
    with pytest.raises(ValueError, match="--seeds must be"):
        seeds_from(1, 0)
    with pytest.raises(ValueError, match="unknown setting.*activaton"):
        default_config(activaton="relu")


def test_runs_file_round_trip(runs, tmp_path):
    save_runs(tmp_path / "r.json", runs, meta={"command": "test"})
    back = load_runs(tmp_path / "r.json")
    assert [h.records for h in back] == [h.records for h in runs] and [h.config for h in back] == [
        h.config for h in runs
    ]
    save_runs(tmp_path / "list.json", runs)  # no extra keys: a plain list, as compare --history always wrote
    assert isinstance(json.loads((tmp_path / "list.json").read_text()), list)
    assert len(load_runs(tmp_path / "list.json")) == 5
    runs[0].save(tmp_path / "one.json")
    assert load_runs(tmp_path / "one.json")[0].records == runs[0].records
    (tmp_path / "bad.json").write_text('{"rows": []}')
    with pytest.raises(ValueError, match="not a runs file"):
        load_runs(tmp_path / "bad.json")
    other = _history([0.1], 10)
    other.config["activation"] = "swish"
    assert {k: len(v) for k, v in group_runs([*runs, other]).items()} == {"activation=relu": 5, "activation=swish": 1}


def test_run_seeds_differ_by_seed_only():
    a, b = run_seeds({"epochs": 1, "hidden": "20"}, seeds=[3, 4])
    again = run_seeds({"epochs": 1, "hidden": "20"}, seeds=[3])[0]
    assert (a.config["seed"], b.config["seed"]) == (3, 4) and a.records[0]["test_acc"] != b.records[0]["test_acc"]
    assert again.records[0]["test_acc"] == a.records[0]["test_acc"]


def test_compare_seeds_prints_mean_sd_and_writes_runs(tmp_path):
    path = tmp_path / "runs.json"
    out = subprocess.run(
        [sys.executable, "-m", "xpnet", "compare", "--seeds", "3", "--epochs", "2", "--quiet", "--history", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, _, row = [line for line in out.splitlines() if line.startswith("|")]
    cells = dict(zip([c.strip() for c in header.split("|")[1:-1]], [c.strip() for c in row.split("|")[1:-1]]))
    histories = load_runs(path)
    assert [h.config["seed"] for h in histories] == [10, 11, 12]
    stats = aggregate(histories)
    assert cells["seeds"] == "10–12"
    for col in ("train", "test", "best", "TS95", "time"):
        assert cells[col] == format_stat(col, stats[col])
    assert "±" in cells["test"] and cells["TS95"].endswith("/3)")


def test_compare_seed_list_aggregates_one_row(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib")
    argv = [
        "compare",
        "--seed",
        "1",
        "5",
        "--epochs",
        "1",
        "--hidden",
        "20",
        "--lr",
        "0.1",
        "0.2",
        "--quiet",
        "--plot",
        str(tmp_path / "bands.png"),
    ]
    assert main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.")]
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows]
    assert len(rows) == 2 and all(c[1] == "1,5" and " ± " in c[3] for c in cells)
    assert (tmp_path / "bands.png").stat().st_size > 0
    assert main(["compare", "--seed", "1", "2", "--seeds", "2", "--epochs", "1"]) == 2  # a bad command line
    assert "error: --seeds: 2 runs seeds S..S+2-1 from one --seed S" in capsys.readouterr().err


# -- the reproduction runner ------------------------------------------------------------------------
def test_tables_plan():
    tasks = R.plan(R.select(["act-lr0.1", "flooding"]), R.pathlib.Path("out"))
    assert len(tasks) == 5 * 5 + 6 * 3 and tasks[0].cfg["epochs"] == 500  # longest first
    assert {t.cfg["lr"] for t in tasks} == {0.1} and sorted({t.seed for t in tasks}) == [10, 11, 12, 13, 14]
    sweep = R.plan(R.select(["momentum-sweep"]), R.pathlib.Path("out"), seeds=1)
    assert {(t.cfg["optimizer"], t.cfg["lr"], t.cfg["momentum"]) for t in sweep} == {
        (o, 0.1, m) for o in ("momentum", "nesterov") for m in (0.8, 0.7, 0.6, 0.5)
    }
    quick = R.plan(R.select(["deep-cnn"]), R.pathlib.Path("q"), quick=True, backend="cupy")
    assert [(t.cfg["dataset"], t.cfg["epochs"], t.cfg["backend"], t.seed) for t in quick] == [
        ("digits", 2, "cupy", 10),
        ("digits", 2, "cupy", 11),
    ]
    with pytest.raises(ValueError, match="unknown table.*valid: all, act-lr0.1"):
        R.select(["act"])


def test_verdict():
    s = {"mean": 97.8, "sd": 0.1}
    assert R.verdict(97.95, s) == "yes (+0.15, 1.5 sd)" and R.verdict(97.55, s) == "no (-0.25, 2.5 sd)"
    assert R.verdict(97.8, {"mean": 97.8, "sd": 0.0}).startswith("yes")
    # no spread: the distance in sd is undefined, and the text says why (never "inf sd")
    assert R.verdict(98.3, {"mean": 98.18, "sd": 0.0, "n": 1}) == "no (+0.12, one seed, no spread)"
    assert R.verdict(100.0, {"mean": 99.0, "sd": 0.0, "n": 3}) == "no (+1.00, all 3 seeds equal)"


def test_runner_quick_resumes_and_renders(tmp_path, capsys):
    argv = ["run", "simple-cnn", "--quick", "--epochs", "1", "--out", str(tmp_path)]
    assert R.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 runs in 1 table(s)" in out and "| SimpleConvNet | test ≈ 98.9 |" in out
    doc = json.loads((tmp_path / "simple-cnn.json").read_text())
    assert doc["meta"]["command"].endswith(" ".join(argv)) and doc["meta"]["machine"]["cores"] >= 1
    assert [h.config["seed"] for h in load_runs(tmp_path / "simple-cnn.json")] == [10, 11]
    assert (tmp_path / "simple-cnn.md").read_text().count("Dry run only") == 1
    older = tmp_path / "simple-cnn" / "simpleconvnet-seed11.json"
    run = json.loads(older.read_text())
    del run["config"]["init"]  # a file written before a setting existed still counts as done
    older.write_text(json.dumps(run))
    assert R.main(argv) == 0  # resumed: nothing left to run
    assert "2 of 2 runs already done (skipped)" in capsys.readouterr().out
    assert R.main([*argv[:-4], "--epochs", "2", "--out", str(tmp_path)]) == 1  # another configuration, same files
    assert "holds another run (epochs=1 not 2)" in capsys.readouterr().err
    (tmp_path / "simple-cnn.md").unlink()
    assert R.main(["render", "simple-cnn", "--out", str(tmp_path)]) == 0
    assert "test within 2 sd" in (tmp_path / "simple-cnn.md").read_text()


def test_runner_parallel_workers_pin_blas(tmp_path, capsys):
    assert R.main(["run", "act-lr0.5", "--quick", "--epochs", "1", "--jobs", "2", "--out", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "act-lr0.5.json").read_text())["runs"]
    assert len(runs) == 10 and {r["config"]["row"] for r in runs} == {r.label for r in R.TABLES["act-lr0.5"].rows}
    threads = {b["num_threads"] for r in runs for b in r["meta"]["blas"]}
    assert threads <= {1}  # empty where threadpoolctl is not installed
    assert (tmp_path / "act-lr0.5.png").exists() or "no PNG" in capsys.readouterr().err


def test_runner_resumes_a_run_from_its_checkpoint(tmp_path):
    from xpnet.cli import _load_data, run_config

    (task,) = R.plan(R.select(["simple-cnn"]), tmp_path, seeds=1, quick=True)
    first = {**task.cfg, "epochs": 1}  # a run stopped after its first epoch left this checkpoint
    task.path.parent.mkdir(parents=True)
    ckpt = task.path.with_suffix(".ckpt")
    done = run_config(first, _load_data("digits", None, images=True), verbose=False, checkpoint=ckpt)[2]
    run = R.run_task(task, None, None, {})
    # epoch 1 comes from the checkpoint (its measured seconds too: a fresh run would time it anew)
    assert len(run["records"]) == 2 and run["records"][0] == done.records[0]
    assert not ckpt.exists() and load_runs(task.path)[0].config["epochs"] == 2

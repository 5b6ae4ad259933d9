"""Plot each learning-rate schedule of xpnet.schedules over 50 epochs (docs/training.md).

    python docs/figures/plot_schedules.py      # writes schedules.png and schedules.json beside this file

The values come from the schedules themselves (pure functions of the epoch); the JSON keeps them with
the command, machine and versions that made the figure.
"""

from __future__ import annotations

import json
import pathlib
import platform
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import xpnet
from xpnet import schedules as S

LR, EPOCHS = 0.1, 50
SCHEDULES = {
    "Constant(0.1)": S.Constant(LR),
    "StepDecay(0.1, step_size=15, gamma=0.5)": S.StepDecay(LR, 15, 0.5),
    "Exponential(0.1, gamma=0.95)": S.Exponential(LR, 0.95),
    "Cosine(0.1, total=50)": S.Cosine(LR, EPOCHS),
    "LinearWarmup(0.1, warmup=5)": S.LinearWarmup(LR, 5),
    "warmup_cosine(0.1, warmup=5, total=50)": S.warmup_cosine(LR, 5, EPOCHS),
}


def main() -> None:
    here = pathlib.Path(__file__).resolve().parent
    values = {name: S.values(s, EPOCHS) for name, s in SCHEDULES.items()}
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)
    for ax, (name, v) in zip(axes.flat, values.items()):
        ax.plot(range(1, EPOCHS + 1), v, ".-", ms=3)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("learning rate")
    fig.tight_layout()
    fig.savefig(here / "schedules.png", dpi=80)
    record = {
        "command": "python docs/figures/plot_schedules.py",
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "xpnet": xpnet.__version__,
        "matplotlib": matplotlib.__version__,
        "epochs": EPOCHS,
        "values": values,
    }
    (here / "schedules.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

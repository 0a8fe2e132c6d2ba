"""PNG plots made from what runs wrote (logs, weights), never from inside a model."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402

from rnnlab.training.log import read_log  # noqa: E402


def plot_training_curves(run_dir: Path, out: Path | None = None) -> Path | None:
    """Training loss per step and each dev metric per evaluation, from log.jsonl."""
    records = read_log(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    if not train and not evals:
        return None
    out = Path(out or Path(run_dir) / "loss.png")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss",
                lw=1)
    if evals and "loss" in evals[0]:
        ax.plot([r["step"] for r in evals], [r["loss"] for r in evals], "o-", label="dev loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    extra = [k for k in ("accuracy", "f1", "bleu") if evals and k in evals[0]]
    if extra:
        twin = ax.twinx()
        for key in extra:
            twin.plot([r["step"] for r in evals], [r[key] for r in evals], "s--",
                      label=f"dev {key}")
        twin.set_ylabel(", ".join(extra))
        twin.legend(loc="center right")
    ax.set_title(Path(run_dir).name)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out

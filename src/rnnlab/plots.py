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


# -- classification ---------------------------------------------------------------------------


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], out: Path,
                          title: str = "") -> Path:
    """Gold classes as rows, predictions as columns; each cell shows its count, shaded by the
    share of its row (so a rare class's errors show as clearly as a frequent one's)."""
    counts = [list(map(int, row)) for row in matrix]
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    size = 1.2 + 0.9 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=100)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for g, row in enumerate(counts):
        for p, count in enumerate(row):
            ax.text(p, g, str(count), ha="center", va="center",
                    color="white" if shares[g][p] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the gold row")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_attention_strip(rows: list[tuple[list[str], list[float], str]], out: Path) -> Path:
    """One heat strip per sentence: its words shaded by their attention weight, with the
    predicted label on the left. `rows` = [(tokens, weights, label), ...]."""
    width = max(len(tokens) for tokens, _, _ in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(min(2 + 0.9 * width, 40), 0.9 * len(rows)),
                             dpi=100, squeeze=False)
    for ax, (tokens, weights, label) in zip(axes[:, 0], rows, strict=True):
        ax.imshow([weights], cmap="Reds", vmin=0.0, vmax=max(weights), aspect="auto")
        for t, (token, weight) in enumerate(zip(tokens, weights, strict=True)):
            ax.text(t, 0, token, ha="center", va="center", fontsize=9,
                    color="white" if weight > 0.6 * max(weights) else "black")
        ax.set_xticks([])
        ax.set_yticks([0], [label])
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out

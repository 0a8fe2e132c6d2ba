"""PNG plots made from what runs wrote (logs, weights), never from inside a model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402

from rnnlab.errors import RnnlabError  # noqa: E402
from rnnlab.training.log import LOG_FILE, read_log  # noqa: E402


def plot_training_curves(run_dir: Path, out: Path | None = None) -> Path | None:
    """Training loss per step and each dev metric per evaluation, from log.jsonl."""
    records = read_log(run_dir)
    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    evals = [r for r in records if r.get("kind") == "eval"]
    evals = [r for r in evals if r.keys() >= evals[0].keys()]  # a damaged line drops out
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
    if ax.get_lines():  # a run evaluated but never logged a training step has nothing here
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


def read_run_logs(run_dirs: Sequence[str | Path]) -> dict[str, list[dict[str, Any]]]:
    """Each run's log records, keyed by a label that tells the runs apart (the folder name, or
    the path where two folders share a name); a folder that is not a run with a log is refused."""
    paths = [Path(d) for d in run_dirs]
    if not paths:
        raise RnnlabError("name at least one run folder")
    names = [p.name for p in paths]
    logs: dict[str, list[dict[str, Any]]] = {}
    for path, name in zip(paths, names, strict=True):
        if not path.is_dir():
            raise RnnlabError(f"{path} is not a folder (expected a run folder from rnnlab train)")
        if not (path / LOG_FILE).is_file():
            raise RnnlabError(f"{path} is not a training run: it has no {LOG_FILE}")
        records = read_log(path)
        if not records:
            raise RnnlabError(f"{path}/{LOG_FILE} holds no records (the run logged nothing yet)")
        logs[name if names.count(name) == 1 else str(path)] = records
    return logs


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path,
              metrics: Sequence[str] | None = None) -> Path:
    """Several runs' curves on one PNG: the training loss per step, and one panel per dev
    metric (default: the metric each run picked its checkpoint by, as its log says)."""
    logs = read_run_logs(run_dirs)
    evals = {label: [r for r in records if r.get("kind") == "eval"]
             for label, records in logs.items()}
    out = Path(out)
    if not out.parent.is_dir():
        raise RnnlabError(f"--out {out}: the folder {out.parent} does not exist")
    metrics = list(metrics or _default_metrics(logs, evals))
    for metric in metrics:
        if not any(metric in r for records in evals.values() for r in records):
            logged = sorted({k for records in evals.values() for r in records for k, v in
                             r.items() if isinstance(v, float) and k != "time"})
            raise RnnlabError(f"no run logged a dev {metric!r}; the dev metrics logged are: "
                              f"{', '.join(logged) or 'none (no evaluation yet)'}")
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(6 * (1 + len(metrics)), 4), dpi=100,
                             squeeze=False)
    loss_ax, metric_axes = axes[0, 0], axes[0, 1:]
    for index, (label, records) in enumerate(logs.items()):
        color = f"C{index % 10}"
        train = [r for r in records if r.get("kind") == "train" and "loss" in r]
        loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], color=color,
                     lw=1, label=label)
        for ax, metric in zip(metric_axes, metrics, strict=True):
            points = [r for r in evals[label] if metric in r]
            ax.plot([r["step"] for r in points], [r[metric] for r in points], "o-",
                    color=color, ms=3, label=label)
    for ax, title in zip(axes[0], ["training loss", *(f"dev {m}" for m in metrics)],
                         strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _default_metrics(logs: dict[str, list[dict[str, Any]]],
                     evals: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The metrics the finished runs were selected by; for runs still training, the dev loss
    (or their first dev metric); none while no run has been evaluated yet."""
    chosen = [r["metric"] for records in logs.values() for r in records
              if r.get("kind") == "end" and isinstance(r.get("metric"), str)]
    if chosen:
        return list(dict.fromkeys(chosen))
    logged = [k for records in evals.values() for r in records for k, v in r.items()
              if isinstance(v, float) and k != "time"]
    return ["loss"] if "loss" in logged else logged[:1]


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
        ax.set_xlim(-0.5, width - 0.5)  # one cell per word, aligned across sentences
        ax.set_xticks([])
        ax.set_yticks([0], [label])
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_document_attention(documents: list[tuple[list[list[str]], list[float],
                                                   list[list[float]], str]], out: Path) -> Path:
    """Both levels of a hierarchical attention network, one row per sentence: on the left the
    sentence's weight (Reds), on the right its words shaded by their weight inside the
    sentence relative to the sentence's largest (Blues), as `explain_html` does.
    `documents` = [(sentences, sentence weights, word weights, label)]."""
    import numpy as np

    rows = [(words, sw, ww, label if i == 0 else "")
            for sentences, sws, wws, label in documents
            for i, (words, sw, ww) in enumerate(zip(sentences, sws, wws, strict=True))]
    width = max(len(words) for words, _, _, _ in rows)
    words_grid = np.full((len(rows), width), np.nan)
    for r, (_, _, ww, _) in enumerate(rows):  # shaded relative to the sentence's largest
        words_grid[r, : len(ww)] = np.asarray(ww) / max(max(ww), 1e-12)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(min(3 + 0.8 * width, 40), 0.45 * len(rows) + 1), dpi=100,
        gridspec_kw={"width_ratios": [1, max(width, 1)]}, squeeze=True)
    sentence_w = np.array([[sw] for _, sw, _, _ in rows])
    left.imshow(sentence_w, cmap="Reds", vmin=0.0, vmax=float(sentence_w.max()), aspect="auto")
    right.imshow(np.ma.masked_invalid(words_grid), cmap="Blues", vmin=0.0, vmax=1.0,
                 aspect="auto")
    for r, (words, sw, _, _) in enumerate(rows):
        left.text(0, r, f"{sw:.2f}", ha="center", va="center", fontsize=8,
                  color="white" if sw > 0.6 * sentence_w.max() else "black")
        for t, word in enumerate(words):
            right.text(t, r, word, ha="center", va="center", fontsize=8,
                       color="white" if words_grid[r, t] > 0.6 else "black")
    left.set_xticks([])
    left.set_yticks(range(len(rows)), [label for *_, label in rows])
    left.set_title("sentence", fontsize=9)
    right.set_xticks([])
    right.set_yticks([])
    right.set_title("words (weight inside the sentence, relative to its largest)", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


# -- diagnostics ---------------------------------------------------------------------------------


def plot_gradient_norms(curves: list[dict], out: Path, title: str = "") -> Path:
    """||∂L/∂h_t|| against t for several layers on one log-scale plot (diagnostics.gradients)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for c in curves:
        steps = range(1, len(c["norms"]) + 1)
        norms = [max(n, 1e-300) for n in c["norms"]]  # an exact 0 cannot sit on a log axis
        ax.plot(steps, norms, lw=1.5, label=f"{c['label']}  (ratio {c['ratio']:.2g})")
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss is on the last step)")
    ax.set_ylabel("mean ||∂L/∂h_t||")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "gradient reaching each step")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def plot_memory(study: dict, out: Path) -> Path:
    """Held-out score against T per cell, with the threshold (diagnostics.memory)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for cell in study["cells"]:
        runs = [r for r in study["results"] if r["cell"] == cell]
        longest = study["longest_solved"][cell]
        ax.plot([r["length"] for r in runs], [r["score"] for r in runs], "o-",
                label=f"{cell} (longest T solved: {longest if longest is not None else 'none'})")
    ax.axhline(study["threshold"], color="k", ls="--", lw=1, label="solved threshold")
    ax.axhline(study["baseline"], color="gray", ls=":", lw=1, label="no memory")
    ax.set_xscale("log")
    ax.set_xlabel("T (gap to bridge)")
    ax.set_ylabel(f"held-out {study['metric']}")
    if study["metric"] == "mse":
        ax.set_yscale("log")
    config = study["config"]
    ax.set_title(f"{config['task']}: {config['steps']} steps × batch {config['batch']}, "
                 f"~{config['parameters']} parameters each", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def plot_text_activation(text: str, values, out: Path, title: str = "", width: int = 80,  # noqa: ANN001
                         max_lines: int = 20) -> Path:
    """The text as a character grid, each cell coloured by a unit's value (blue -, red +),
    as in Karpathy, Johnson & Fei-Fei 2015; values are scaled by their largest magnitude."""
    import numpy as np

    rows: list[list[tuple[str, float]]] = [[]]
    scale = float(np.abs(values).max()) or 1.0
    for ch, v in zip(text, values, strict=True):
        if len(rows[-1]) == width:
            rows.append([])
        rows[-1].append(("↵" if ch == "\n" else ch, float(v) / scale))
        if ch == "\n":
            rows.append([])
        if len(rows) > max_lines:
            break
    rows = rows[:max_lines]
    grid = np.full((len(rows), width), np.nan)
    for y, row in enumerate(rows):
        grid[y, : len(row)] = [v for _, v in row]
    fig, ax = plt.subplots(figsize=(width * 0.11, len(rows) * 0.2 + 0.5), dpi=90)
    ax.imshow(grid, cmap="bwr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    for y, row in enumerate(rows):
        for x, (ch, _) in enumerate(row):
            ax.text(x, y, ch, ha="center", va="center", family="monospace", fontsize=8)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def plot_gate_saturation(stats: dict, out: Path) -> Path:
    """Per unit: fraction of time a gate is < 0.1 (x) and > 0.9 (y), one panel per gate, one
    colour per layer (the layout of Karpathy et al. 2015, Figure 3)."""
    gates = sorted({name.split(".")[1] for name in stats}, key="ifozr".index)
    fig, axes = plt.subplots(1, len(gates), figsize=(3 * len(gates), 3.2), dpi=100,
                             squeeze=False)
    for ax, gate in zip(axes[0], gates, strict=True):
        for name, s in stats.items():
            layer, g = name.split(".")
            if g == gate:
                ax.scatter(s["low_per_unit"], s["high_per_unit"], s=8, alpha=0.6, label=layer)
        ax.plot([0, 1], [1, 0], color="gray", lw=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"gate {gate}")
        ax.set_xlabel("fraction < 0.1")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fraction > 0.9")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


# -- translation ---------------------------------------------------------------------------------


def plot_attention(weights, source: list[str], target: list[str], out: Path,  # noqa: ANN001
                   title: str = "") -> Path:
    """Alignment heatmap as in Bahdanau et al. 2015, Figure 3: source words on x, target words
    on y, cell (t, s) = the attention weight a_t(s) (grey scale, white 0, black 1)."""
    values = [[float(v) for v in row] for row in weights]
    size = (max(3.0, 0.35 * len(source) + 1.5), max(2.5, 0.35 * len(target) + 1.2))
    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.imshow(values, cmap="gray_r", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels(source, rotation=90, fontsize=8)
    ax.set_yticks(range(len(target)))
    ax.set_yticklabels(target, fontsize=8)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize=9, pad=40)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


# -- comparisons -------------------------------------------------------------------------------


def plot_metric_against_minutes(curves: dict[str, list[tuple[float, float]]], out: Path,
                                metric: str, title: str = "") -> Path:
    """One line per model: a dev metric against wall-clock training minutes (the comparison
    at a fixed CPU budget that benchmarks/rnn_vs_transformer.py draws)."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for name, points in curves.items():
        if points:
            ax.plot([m for m, _ in points], [v for _, v in points], "o-", ms=3, lw=1.5,
                    label=name)
    ax.set_xlabel("training minutes (evaluations included)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out

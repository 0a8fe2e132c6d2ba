"""Run a diagnosis end to end and write its files (JSON, markdown, PNG, HTML) to a folder.

These are the public functions behind `rnnlab diagnose ...`: each returns what it measured as a
dict and writes the files, so the CLI only parses flags and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rnnlab.errors import RnnlabError


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def run_ids(lm, text_file: str | None, data_dir: str | None = None) -> torch.Tensor:  # noqa: ANN001
    """Token ids of `text_file` under the run's tokenizer, else the run's own valid split."""
    from rnnlab.data.io import read_text

    if text_file is not None:
        return torch.tensor(lm.encode(read_text(text_file)), dtype=torch.long)
    return lm.load_corpus(data_dir).valid


def gradients_report(cells: list[str], out: Path, *, run_dirs: tuple[str, ...] = (),
                     text_file: str | None = None, data_dir: str | None = None,
                     **study_options: object) -> dict:
    """`gradient_study` of the cells (and of trained runs) -> gradients.json and two PNGs."""
    from rnnlab.diagnostics.gradients import gradient_study, lm_gradient_curve
    from rnnlab.plots import plot_gradient_norms
    from rnnlab.tasks.lm.run import LMRun

    study = gradient_study(cells, **study_options)
    result = study.to_dict()
    for run_dir in run_dirs:
        lm = LMRun(run_dir, "cpu")
        if lm.task != "lm":
            raise RnnlabError(f"{run_dir} is an n-gram run: it has no recurrent layer")
        curve = lm_gradient_curve(lm.model, run_ids(lm, text_file, data_dir),
                                  length=study.settings["length"],
                                  batch=study.settings["batch"], seed=study.settings["seed"],
                                  label=f"{Path(run_dir).name} (trained)")
        result["curves"].append(curve.to_dict())
    out.mkdir(parents=True, exist_ok=True)
    length = study.settings["length"]
    result["files"] = [str(p) for p in (
        _write_json(out / "gradients.json", result),
        plot_gradient_norms(result["curves"], out / "gradients.png",
                            f"gradient of a loss at step {length}, back through time"),
        plot_gradient_norms(result["variants"], out / "gradients_variants.png",
                            "initialisation and the forget-gate bias"),
    )]
    return result


def memory_report(cells: list[str], lengths: list[int], out: Path, config, progress=None) -> dict:  # noqa: ANN001
    """`memory_study` -> memory_<task>.json, .md (the table) and .png."""
    from rnnlab.diagnostics.memory import memory_study, memory_table
    from rnnlab.plots import plot_memory

    study = memory_study(cells, lengths, config, progress)
    result = study.to_dict()
    out.mkdir(parents=True, exist_ok=True)
    name = f"memory_{config.task}"
    table = memory_table(study)
    (out / f"{name}.md").write_text(table, encoding="utf-8")
    result["table"] = table
    result["files"] = [str(out / f"{name}.md"), str(_write_json(out / f"{name}.json", result)),
                       str(plot_memory(result, out / f"{name}.png"))]
    return result


def cells_report(run_dir: str, text_file: str, out: Path, *, unit: int | None = None,
                 quantity: str | None = None, max_chars: int = 20000, top: int = 3) -> dict:
    """Record a char LM over a text; best unit per feature, gate saturation, coloured text."""
    from rnnlab.data.io import read_text
    from rnnlab.diagnostics.cells import (
        best_units,
        record_activations,
        render_html,
        saturation,
        text_features,
    )
    from rnnlab.plots import plot_gate_saturation, plot_text_activation
    from rnnlab.tasks.lm.run import LMRun

    lm = LMRun(run_dir, "cpu")
    if lm.task != "lm" or not lm.char_level:
        raise RnnlabError(f"{run_dir} is not a character-level neural language model")
    if max_chars < 1:
        raise RnnlabError(f"--max-chars must be at least 1, got {max_chars}")
    text = read_text(text_file)[:max_chars]
    if not text:
        raise RnnlabError(f"{text_file} is empty")
    acts = record_activations(lm.model, lm.encode(text))
    found = best_units(acts, text_features(text), top)
    stats = saturation(acts)
    if quantity is not None and quantity not in acts:
        raise RnnlabError(f"unknown quantity {quantity!r}; choose one of {', '.join(acts)}")
    matches = sorted((m for ms in found.values() for m in ms), key=lambda m: -abs(m.r))
    if unit is None and matches:
        quantity, unit = quantity or matches[0].quantity, matches[0].unit
    top_layer = f"l{lm.model.rnn.num_layers - 1}"
    quantity = quantity or (f"{top_layer}.c" if f"{top_layer}.c" in acts else f"{top_layer}.h")
    unit = 0 if unit is None else unit
    if not 0 <= unit < acts[quantity].shape[1]:
        raise RnnlabError(f"--unit must be in 0..{acts[quantity].shape[1] - 1}")
    out.mkdir(parents=True, exist_ok=True)
    values = acts[quantity][:, unit]
    title = f"{Path(run_dir).name}: {quantity} unit {unit}"
    files = [out / "unit.html", out / "unit.png", out / "saturation.png"]
    files[0].write_text(render_html(text, values, title), encoding="utf-8")
    plot_text_activation(text, values, files[1], title)
    plot_gate_saturation(stats, files[2])
    for feature, ms in found.items():  # the best unit of each feature, as a page of its own
        best = ms[0]
        page = out / f"feature_{feature}.html"
        page.write_text(render_html(text, acts[best.quantity][:, best.unit],
                                    f"{feature}: {best.quantity} unit {best.unit}, "
                                    f"r = {best.r:.3f}"), encoding="utf-8")
        files.append(page)
    result = {
        "run_dir": str(run_dir), "text": str(text_file), "chars": len(text),
        "shown": {"quantity": quantity, "unit": unit},
        "best_units": {f: [m.to_dict() for m in ms] for f, ms in found.items()},
        "saturation": stats,
    }
    result["files"] = [str(p) for p in files] + [str(out / "cells.json")]
    _write_json(out / "cells.json", result)
    return result

"""`rnnlab export RUN_DIR --format onnx --out DIR`: a trained run as ONNX graphs, the files a
client needs beside them (vocabularies, labels, CRF scores, a standalone tag decoder), and a
model card; optionally int8.

Exporter: torch's dynamo-based `torch.onnx.export(..., dynamo=True)`. The TorchScript exporter
(`dynamo=False`) is deprecated in torch 2.13 and cannot express a time loop of the textbook cells
for any length; the dynamo exporter writes `scan` (see `scan.py`) as an ONNX `Scan` node, so
every cell, peephole LSTM and minimal GRU included, runs through one path with dynamic batch and
length axes. Transformer models export with the same exporter, their position embeddings as
lookups (`positions.py`) and their key/value caches as state in and out of the step graphs
(`transformer_graphs.py`); ConvS2S's decoder step carries each layer's last k-1 inputs
(`conv_graphs.py`). Every graph is checked in onnxruntime against the PyTorch model on the example
inputs before the export is reported done (max abs difference in meta.json).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.export import graphs
from rnnlab.export.positions import positions_form
from rnnlab.export.scan import scan_form

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
TOLERANCE = 1e-4  # max abs difference allowed between onnxruntime and PyTorch (fp32 graphs)
META_FILE, CARD_FILE = "meta.json", "README.md"
# The models each task's graphs are written for (export/graphs.py)
EXPORTABLE = {"classify": ("rnn", "cnn", "transformer", "han", "nbsvm"),
              "tag": ("rnn", "transformer"), "lm": ("rnn", "transformer"),
              "translate": ("rnn", "transformer", "conv")}
OPSET = 18


@dataclass
class ExportResult:
    out_dir: Path
    task: str
    graphs: list[str]  # file names of the .onnx graphs, in the order a client uses them
    files: list[str] = field(default_factory=list)  # everything written, graphs included
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # per fp32 graph
    quantize: str | None = None


def export_run(run_dir: str | Path, out_dir: str | Path, *, fmt: str = "onnx",
               quantize: str | None = None, force: bool = False) -> ExportResult:
    """Export the run in `run_dir` into the empty (or, with `force`, emptied) `out_dir`."""
    if fmt not in FORMATS:
        raise RnnlabError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise RnnlabError(f"unknown quantization {quantize!r}; choose one of "
                          f"{', '.join(QUANTIZATIONS)}")
    _require_onnx()
    run = load_run_for_export(run_dir)
    out = _prepare_out_dir(Path(out_dir), force)
    from rnnlab.export import bundle

    specs, extras = bundle.task_bundle(run)
    result = ExportResult(out, run.info["task"], [f"{s.name}.onnx" for s in specs],
                          quantize=quantize)
    with torch.no_grad(), scan_form(run.model), positions_form(run.model):
        for spec in specs:
            path = out / f"{spec.name}.onnx"
            export_graph(spec, path)
            result.max_abs_diff[path.name] = check_parity(spec, path)
    if quantize == "int8":
        from rnnlab.export.quantize import quantize_int8

        for name in result.graphs:
            quantize_int8(out / name, out / name)
    written = bundle.write_side_files(run, out, extras)
    meta = {**extras["meta"], "task": result.task, "graphs": result.graphs,
            "inputs": {f"{s.name}.onnx": s.inputs for s in specs},
            "outputs": {f"{s.name}.onnx": s.outputs for s in specs},
            "dynamic_axes": {f"{s.name}.onnx": s.axes for s in specs},  # input -> axis -> name
            "quantize": quantize, "fp32_max_abs_diff": result.max_abs_diff,
            "onnx_opset": OPSET, "torch": torch.__version__}
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
    from rnnlab.export.card import model_card

    (out / CARD_FILE).write_text(model_card(run, meta, Path(run_dir)), "utf-8")
    result.files = sorted([*result.graphs, *written, META_FILE, CARD_FILE])
    return result


def load_run_for_export(run_dir: str | Path) -> Any:  # noqa: ANN401 - one of the run classes
    """The run on the CPU in eval mode, through the task's own run class."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RnnlabError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise RnnlabError(f"{run_dir} is a file, not a run directory")
    from rnnlab.tasks.registry import load_predictor, run_task

    task = run_task(run_dir)  # config.json read and checked where every run is read
    if task == "ngram":
        raise RnnlabError(f"{run_dir} holds an n-gram model, which has no neural graph to "
                          "export; ONNX export supports lm, classify, tag and translate runs")
    if task not in EXPORTABLE:
        raise RnnlabError(f"{run_dir} holds a {task!r} run; ONNX export supports lm, classify, "
                          "tag and translate runs")
    run = load_predictor(run_dir, device="cpu")
    model = getattr(run.config, "model", "rnn")
    if model not in EXPORTABLE[task]:
        raise RnnlabError(f"ONNX export of a {task} run with --model {model} is not supported "
                          f"yet (it exports --model {' and '.join(EXPORTABLE[task])})")
    run.model.eval()
    return run


def _prepare_out_dir(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise RnnlabError(f"--out {out} is not empty; give --force to replace its contents")
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise RnnlabError(f"ONNX export needs the [export] extra ({err.name} is missing): "
                          "pip install 'rnnlab[export]'") from err


def export_graph(spec: graphs.GraphSpec, path: Path) -> None:
    """Write `spec.module` as an ONNX graph (weights inside the file) at `path`."""
    quiet = contextlib.redirect_stdout(io.StringIO())  # the exporter reports its progress
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with quiet, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                spec.module, spec.example, dynamo=True, input_names=spec.inputs,
                output_names=spec.outputs, dynamic_shapes=spec.dynamic_shapes(),
                opset_version=OPSET, verbose=False)
    except Exception as err:  # noqa: BLE001 - any exporter failure is "cannot export this"
        raise RnnlabError(f"cannot export {spec.name}: {type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}") from err
    finally:
        logger.setLevel(level)
    program.save(str(path), external_data=False)
    _check_dynamic_axes(spec, path)


def _check_dynamic_axes(spec: graphs.GraphSpec, path: Path) -> None:
    """Refuse a graph whose batch or length axis came out as a constant: the exporter can fall
    back to the example's sizes when model code turns a size into a Python int (`len(x)`), and
    such a graph still matches PyTorch on the example, but on nothing else."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {value.name: value.type.tensor_type.shape.dim for value in graph.input}
    for name, axes in spec.axes.items():
        for axis, axis_name in axes.items():
            dims = shapes.get(name)
            if dims is not None and axis < len(dims) and dims[axis].HasField("dim_value"):
                raise RnnlabError(f"cannot export {spec.name}: its {axis_name} axis (input "
                                  f"{name!r}) came out fixed at {dims[axis].dim_value}")


def run_graph(path: Path, inputs: dict[str, Any]) -> list[Any]:
    """Outputs of the graph at `path` in onnxruntime (CPU) for numpy `inputs`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def torch_outputs(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = module(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def max_abs_diff(got: Any, want: Any) -> float:  # noqa: ANN401 - numpy arrays
    """Max |got - want| where equal values (masks' -inf included) count as 0; NaN if one side is
    NaN where the other is not."""
    import numpy as np

    if not want.size:
        return 0.0
    with np.errstate(invalid="ignore"):  # -inf - -inf: equal, and np.where keeps the 0
        diff = np.where(got == want, 0.0, np.abs(got - want))
    return float(np.nan if np.isnan(diff).any() else diff.max())


def check_parity(spec: graphs.GraphSpec, path: Path,
                 inputs: tuple[torch.Tensor, ...] | None = None) -> float:
    """Max abs difference between onnxruntime and PyTorch on `inputs` (default: the example);
    raises if above TOLERANCE."""
    inputs = spec.example if inputs is None else inputs
    got = run_graph(path, {n: t.numpy() for n, t in zip(spec.inputs, inputs, strict=True)})
    want = torch_outputs(spec.module, inputs)
    worst = 0.0
    for name, g, w in zip(spec.outputs, got, want, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            raise RnnlabError(f"{path.name}: output {name} has shape {g.shape} in onnxruntime, "
                              f"{tuple(w.shape)} in PyTorch")
        if w.dtype == torch.bool:
            if not (g == w.numpy()).all():
                raise RnnlabError(f"{path.name}: output {name} differs from PyTorch")
            continue
        worst = max(worst, max_abs_diff(g, w.numpy()))
    if not worst <= TOLERANCE:
        raise RnnlabError(f"{path.name}: onnxruntime differs from PyTorch by {worst:.2e} "
                          f"(> {TOLERANCE:g})")
    return worst

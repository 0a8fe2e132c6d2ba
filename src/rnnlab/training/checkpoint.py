"""Checkpoints that a crash never half-writes, and that load without unpickling anything.

Run directory layout:

    run_dir/
      config.json            task name, task config, training config
      vocab.json             (written by the task)
      model.safetensors      the best weights so far (what sample/score/eval use)
      checkpoints/
        step-00001200/       model.safetensors + trainer_state.pt (optimizer, schedule, RNG, ...)
        LATEST               the name of the newest complete checkpoint directory

A checkpoint directory is written under a temporary name and renamed when complete; LATEST is
replaced atomically only afterwards. Single files are written to a temporary name and
`os.replace`d. `trainer_state.pt` holds only tensors and plain Python values and is read with
`torch.load(weights_only=True)`; weights are safetensors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from rnnlab.errors import RnnlabError

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "config.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_permissions(path: str | Path) -> None:
    """Give a temp file (mkstemp: 0600) or folder (mkdtemp: 0700) the permissions an ordinary
    open() or mkdir() would, so every file of a run folder has the same ones."""
    mode = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, mode & ~_umask())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        ordinary_permissions(tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError as err:
        raise RnnlabError(f"{path} not found: is this a run directory?") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise RnnlabError(f"{path} is corrupt (not valid JSON): {err}") from err


def save_weights(model: nn.Module, path: Path) -> None:
    """safetensors refuses shared storage, so tied weights are saved once (see `load_weights`)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: dict[int, str] = {}
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel() > 0:
            continue  # a tied parameter: restored by the module itself
        seen[key] = name
        tensors[name] = tensor.detach().contiguous().cpu()
    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=".model.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp)
        ordinary_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(model: nn.Module, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except FileNotFoundError as err:
        raise RnnlabError(f"model weights {path} not found") from err
    except (SafetensorError, OSError, ValueError) as err:
        raise RnnlabError(f"model weights {path} are corrupt: {err}") from err
    device = next(model.parameters()).device
    missing = model.load_state_dict(
        {k: v.to(device) for k, v in tensors.items()}, strict=False
    ).missing_keys
    tied = set(getattr(model, "tied_parameter_names", ()))
    really_missing = [k for k in missing if k not in tied]
    if really_missing:
        raise RnnlabError(f"model weights {path} lack {', '.join(really_missing[:5])}")


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write checkpoints/step-N atomically, point LATEST at it, keep the newest `keep`."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        ordinary_permissions(tmp)
        save_weights(model, tmp / MODEL_FILE)
        buffer_path = tmp / STATE_FILE
        torch.save(state, buffer_path)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "LATEST", name + "\n")
    complete = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "LATEST"
    if not pointer.exists():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not path.is_dir():
        raise RnnlabError(f"{pointer} names {path.name}, which does not exist")
    return path


def load_checkpoint(path: Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into `model` and return the trainer state (weights_only: no pickles)."""
    load_weights(model, path / MODEL_FILE)
    try:
        return torch.load(path / STATE_FILE, weights_only=True, map_location="cpu")
    except FileNotFoundError as err:
        raise RnnlabError(f"checkpoint {path} has no {STATE_FILE}") from err
    except Exception as err:  # torch raises several types for a damaged file
        raise RnnlabError(f"checkpoint {path / STATE_FILE} is corrupt: {err}") from err

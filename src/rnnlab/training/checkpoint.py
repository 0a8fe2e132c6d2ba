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

Crash consistency, whatever moment a process dies at:
- every `step-*` directory is complete (it appears by one rename), so the newest one is what a
  resumed run continues from; LATEST names it too, for people and tools, but a LATEST that names
  a missing directory (a kill inside a re-save of the same step) only falls back to it;
- re-saving a step renames the old copy aside before the new one comes in, and removes it only
  afterwards, so the only complete copy is never deleted first;
- a folder becomes a run only with its first complete checkpoint (`holds_run`): a failed or
  killed first start may be started again in the same folder;
- weights carry the sha256 of their tensors in the safetensors header (`rnnlab.sha256`), checked
  on load, so a flipped byte inside tensor data is an error rather than silently wrong weights;
- leftovers of killed writers (`.model.*.tmp`, `.step-*` directories) are removed by the next
  writer (`remove_orphans`), which holds the run's lock (`training/lock.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from rnnlab.errors import RnnlabError

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
MANIFEST_FILE = "manifest.json"  # sha256 of each file of a checkpoint directory
DIGEST_KEY = "rnnlab.sha256"


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
    _write_replacing(path, data, prefix=f".{path.name}.")


def _write_replacing(path: Path, data: bytes, prefix: str) -> None:
    """Write `data` to a temporary file beside `path`, fsync, and rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
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


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes, in name order: independent of how the
    file lays the tensors out, so it can be stored inside the very file it checks."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
    # Serialised in memory and written by Python, so a full disk is an OSError (ENOSPC/EFBIG)
    # that the CLI reports in one line, not a library's own error type.
    data = save(tensors, metadata={DIGEST_KEY: tensor_digest(tensors)})
    _write_replacing(Path(path), data, prefix=".model.")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, checked against the digest its header carries (files
    written before digests existed load unchecked)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            expected = (handle.metadata() or {}).get(DIGEST_KEY)
        tensors = load_file(str(path))
    except FileNotFoundError as err:
        raise RnnlabError(f"model weights {path} not found") from err
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise RnnlabError(f"model weights {path} are corrupt: {err}") from err
    if expected is not None and tensor_digest(tensors) != expected:
        raise RnnlabError(f"model weights {path} are corrupt: their sha256 does not match the "
                          "one recorded when they were saved")
    return tensors


def load_weights(model: nn.Module, path: Path) -> None:
    tensors = read_weights(path)
    device = next(model.parameters()).device
    try:
        missing = model.load_state_dict(
            {k: v.to(device) for k, v in tensors.items()}, strict=False
        ).missing_keys
    except RuntimeError as err:  # a size mismatch: weights of another model
        first = str(err).strip().splitlines()[-1].strip()
        raise RnnlabError(f"model weights {path} do not fit this run's model: {first}") from err
    tied = set(getattr(model, "tied_parameter_names", ()))
    really_missing = [k for k in missing if k not in tied]
    if really_missing:
        raise RnnlabError(f"model weights {path} lack {', '.join(really_missing[:5])}")


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write checkpoints/step-N atomically, point LATEST at it, keep the newest `keep`."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    final, aside = root / name, None
    try:
        ordinary_permissions(tmp)
        save_weights(model, tmp / MODEL_FILE)
        buffer = io.BytesIO()  # torch.save on a full disk raises RuntimeError, not OSError
        torch.save(state, buffer)
        atomic_write_bytes(tmp / STATE_FILE, buffer.getvalue())
        write_json(tmp / MANIFEST_FILE, {name: file_sha256(tmp / name)
                                         for name in (MODEL_FILE, STATE_FILE)})
        if final.exists():  # a re-save of this step: never delete the only complete copy first
            aside = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.old."))
            os.replace(final, aside)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and not final.exists():
            os.replace(aside, final)
        raise
    atomic_write_text(root / "LATEST", name + "\n")
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The `step-*` directories holding both files, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*")
                  if (p / MODEL_FILE).is_file() and (p / STATE_FILE).is_file())


def checkpoint_step(path: Path) -> int:
    return int(Path(path).name.removeprefix("step-"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint. LATEST normally names it; when LATEST is missing, names
    a directory that does not exist or an older one (a process killed between the rename and
    the pointer), the newest complete directory wins."""
    complete = complete_checkpoints(run_dir)
    return complete[-1] if complete else None


def holds_run(run_dir: Path) -> bool:
    """True when `run_dir` holds a run that a new start must not overwrite: one with a complete
    checkpoint, or a finished run that keeps no checkpoints (an n-gram model, a folder whose
    checkpoints were deleted). A start that died before its first checkpoint left `checkpoints/`
    without one: that folder may be started again."""
    run_dir = Path(run_dir)
    if latest_checkpoint(run_dir) is not None:
        return True
    return (run_dir / CONFIG_FILE).exists() and not (run_dir / CHECKPOINTS).is_dir()


def remove_orphans(run_dir: Path) -> list[Path]:
    """Delete what killed writers left behind: temporary files and half-written checkpoint
    directories. Call it only while holding the run's lock (another writer's temporaries
    would look the same)."""
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    found = [*run_dir.glob(".*.tmp"), *(root.glob(".*") if root.is_dir() else [])]
    for path in found:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def finite_weights(path: Path) -> bool:
    """True when every floating-point weight of a checkpoint is finite."""
    tensors = read_weights(Path(path) / MODEL_FILE)
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def set_aside_bad_checkpoints(run_dir: Path, first_bad_step: int) -> Path | None:
    """After a non-finite loss, rename the checkpoints from `first_bad_step` on, and any whose
    weights are not finite, to `nonfinite-step-N` (kept for inspection, never resumed), and
    return the newest good one: the checkpoint `--resume` will continue from."""
    good = None
    for path in reversed(complete_checkpoints(run_dir)):
        if checkpoint_step(path) < first_bad_step and _readable_and_finite(path):
            good = path
            break
        os.replace(path, path.with_name(f"nonfinite-{path.name}"))
    if good is not None:
        atomic_write_text(Path(run_dir) / CHECKPOINTS / "LATEST", good.name + "\n")
    return good


def _readable_and_finite(path: Path) -> bool:
    try:
        return finite_weights(path)
    except RnnlabError:
        return False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_manifest(path: Path) -> None:
    """Check a checkpoint's files against the sha256 its manifest recorded (a zip such as
    trainer_state.pt can load with a flipped byte inside a tensor). Checkpoints written before
    manifests existed are not checked."""
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.exists():
        return
    recorded = read_json(manifest)
    if not isinstance(recorded, dict):
        raise RnnlabError(f"{manifest} is corrupt: not a JSON object")
    for name, expected in recorded.items():
        file = Path(path) / name
        if not file.is_file():
            raise RnnlabError(f"checkpoint {path} lacks {name}")
        if file_sha256(file) != expected:
            raise RnnlabError(f"checkpoint file {file} is corrupt: its sha256 does not match "
                              "the one recorded when it was saved")


def load_checkpoint(path: Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into `model` and return the trainer state (weights_only: no pickles)."""
    verify_manifest(path)
    load_weights(model, path / MODEL_FILE)
    try:
        return torch.load(path / STATE_FILE, weights_only=True, map_location="cpu")
    except FileNotFoundError as err:
        raise RnnlabError(f"checkpoint {path} has no {STATE_FILE}") from err
    except Exception as err:  # torch raises several types for a damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RnnlabError(f"checkpoint {path / STATE_FILE} is corrupt: {first}") from err

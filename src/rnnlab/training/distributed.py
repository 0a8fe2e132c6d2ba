"""Data-parallel training with torch.distributed: the world, the process group, the few
collectives the Trainer needs, and how a global batch is shared between processes.

Started by `torchrun --nproc-per-node N -m rnnlab train ...`, every process runs the same
command; torchrun tells each its place in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). One process alone (no WORLD_SIZE, or 1) never starts a group, and
every function here is then the identity or a constant, so single-process training runs the
very same code.

The method stays right: `--batch-size` is the global batch and each process takes its part of
it (`rank_columns` for TBPTT language models, `share` for sentence batches); each process's
mean loss is weighted by its share of the batch's items (`weigh`), so the gradient that
DistributedDataParallel averages equals the gradient of the global batch's mean loss, whatever
the lengths of the sentences each process got. Only rank 0 writes the run folder; it also
alone evaluates on dev and tells the others the numbers (`from_main`), so every process makes
the same early-stopping and schedule decisions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rnnlab.errors import RnnlabError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (torchrun's environment)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """The world torchrun describes in the environment; one process when it describes none."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise RnnlabError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {err}") from None


def is_distributed() -> bool:
    return world().size > 1


def is_main() -> bool:
    """True in the process that writes the run folder (rank 0), and in a process alone."""
    return world().main


def restarted() -> bool:
    """True in a group that torchrun restarted after a failure (`--max-restarts`)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA tensors, gloo for CPU ones (PyTorch's own advice)."""
    return "nccl" if device.type == "cuda" else "gloo"


def init(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun (once per process); the device this
    process trains on: with CUDA, the GPU of its local rank."""
    here = world()
    if here.size <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", here.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        store = _attempt_store(here)
        if store is None:
            dist.init_process_group(backend_for(device))
        else:
            dist.init_process_group(backend_for(device), store=store, rank=here.rank,
                                    world_size=here.size)
    return device


def _attempt_store(here: World) -> dist.Store | None:
    """The agent's store under a prefix of this attempt, where torchrun shares its rendezvous
    store with the workers (the c10d rendezvous does); None elsewhere (torch's own env://).

    torch 2.13 gives the workers that store without a per-attempt prefix (it assumes a new
    store each retry), so a group restarted by --max-restarts could read the dead workers'
    gloo addresses and fail with "Connection refused" (4 of 5 runs of the killed-worker test
    here); with the prefix each attempt meets only itself.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    from torch.distributed.constants import default_pg_timeout

    agent = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          here.size, is_master=False, timeout=default_pg_timeout)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"rnnlab/attempt_{attempt}", agent)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: list[float]) -> list[float]:
    """The sums over processes of `values` (float64, so counts stay exact)."""
    if not _active():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_signal(signum: int | None) -> int | None:
    """A stop signal one process received, for all of them: a stop on one rank stops every
    rank after the same step (the largest signal number wins when several arrived)."""
    if not _active():
        return signum
    tensor = torch.tensor([signum or 0], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item()) or None


def broadcast(value: T) -> T:
    """Rank 0's `value`, in every process."""
    if not _active():
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def from_main(compute: Callable[[], T]) -> T:
    """`compute()` run by rank 0 only (dev evaluation), its result given to every process."""
    if not _active():
        return compute()
    return broadcast(compute() if dist.get_rank() == 0 else None)


def gather_to_main(value: T) -> list[T] | None:
    """Every process's `value`, in rank order, at rank 0 (None elsewhere)."""
    if not _active():
        return [value]
    rank = dist.get_rank()
    found: list[Any] | None = [None] * dist.get_world_size() if rank == 0 else None
    dist.gather_object(value, found, dst=0)
    return found


# -- sharing a global batch -------------------------------------------------------------------


def rank_columns(batch_size: int, here: World | None = None) -> slice:
    """The contiguous streams (columns) of a global LM batch this process trains on.

    A TBPTT batch is B parallel streams, each carrying its hidden state into the next window;
    each process keeps the same streams for the whole run, so its carried states stay
    meaningful, and the global batch is the processes' batches side by side. Uneven splits
    (B not a multiple of N) are fine: `weigh` counts tokens.
    """
    here = here or world()
    if batch_size < here.size:
        raise RnnlabError(f"--batch-size {batch_size} cannot be shared by {here.size} "
                          "processes: the global batch needs at least one stream per process")
    base, extra = divmod(batch_size, here.size)
    start = here.rank * base + min(here.rank, extra)
    return slice(start, start + base + (here.rank < extra))


class Borrowed(list):
    """A process's share of a sentence batch smaller than the world: it had no item of its
    own, so it borrows the batch's first one to take part in the gradient all-reduce, which
    counts it with weight zero (`weigh`)."""


def share(batch: list[int], here: World | None = None) -> list[int]:
    """This process's contiguous part of a global batch of example indices (sentence tasks);
    a part that would be empty is the batch's first item, `Borrowed` (weight zero)."""
    here = here or world()
    if here.size <= 1:
        return batch
    columns = (rank_columns(len(batch), here) if len(batch) >= here.size
               else slice(here.rank, here.rank + 1))
    part = batch[columns]
    return part if part else Borrowed(batch[:1])


def share_batches(batches: list[list[int]]) -> list[list[int]]:
    """`share` of every batch of an epoch (the epoch's batches are the same in every process:
    they are a function of the seed and the epoch)."""
    here = world()
    return batches if here.size <= 1 else [share(b, here) for b in batches]


def shares(batch_size: int) -> dict[str, Any]:
    """What the summary reports about the split: nothing for one process."""
    here = world()
    if here.size <= 1:
        return {}
    sizes = [rank_columns(batch_size, World(r, here.size)).stop
             - rank_columns(batch_size, World(r, here.size)).start for r in range(here.size)]
    return {"processes": here.size, "batch_per_process": sizes}


# -- the gradient -----------------------------------------------------------------------------


def weigh(loss: Tensor, items: int) -> tuple[Tensor, float, int]:
    """The loss to back-propagate, the global batch's mean loss and its item count.

    DDP averages gradients over the N processes; a process whose mean loss covers n of the
    batch's M items scales it by N * n / M, so the average is the gradient of the global
    mean, sum_r n_r L_r / M, as one process would compute it (exactly so in float64).
    """
    if not _active():
        return loss, float(loss.detach()), items
    weighted, total = all_sum([float(loss.detach()) * items if items else 0.0, float(items)])
    size = dist.get_world_size()
    return loss * (size * items / total), weighted / total, int(total)


class _TaskStep(nn.Module):
    """Lets DDP's forward run a task's own `train_loss` (models compute their loss in a method
    of their own, which DDP would not see): DDP hooks the gradients of the same parameters."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.model = task.model
        self._train_loss = task.train_loss

    def forward(self, batch: Any) -> Any:
        return self._train_loss(batch)


def data_parallel(task: Any, device: torch.device) -> nn.Module | None:
    """The task's loss behind DistributedDataParallel, or None for one process. Building it
    copies rank 0's weights to every process."""
    if not _active():
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # Buffers are not trained (position tables): copied once at the start, not every step.
    return DistributedDataParallel(_TaskStep(task), device_ids=ids, forward_sync_buffers=False)


class SilentLog:
    """The run log of a process other than rank 0: it writes nothing."""

    def write(self, kind: str, **values: Any) -> None:
        """Rank 0 alone logs."""

    def truncate_after(self, step: int) -> None:
        """Rank 0 alone keeps the log."""

    def close(self) -> None:
        """Nothing was opened."""

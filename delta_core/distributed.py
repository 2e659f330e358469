"""Data-parallel training on PyTorch's distributed engine (one process per CPU group or GPU).

Started by ``torchrun`` (or Slurm's ``srun`` with the same environment variables: ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), every process draws the same
global batch from the same seeded generator and simulates its own contiguous share of the batch's
basins. The losses are sums over basins combined at the end (:class:`delta_core.losses.Loss`), so
the processes add their sums with a differentiable all-reduce before combining: every process then
holds the loss of the whole batch, and DistributedDataParallel's gradient average equals the
single-process gradient up to the order of floating-point additions. Process 0 writes logs,
checkpoints and the bundle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

#: Valid values of ``training.device``.
DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Context:
    """Where this process runs: rank, world size and torch device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This process's contiguous share of ``n`` items (shares differ by at most one)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def all_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable sum of ``x`` over the processes (identity for one process)."""
        if not self.enabled:
            return x
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(x, op=dist.ReduceOp.SUM)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` (error without a GPU) or ``auto`` (cuda when available)."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; valid: {list(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("training.device is cuda but torch sees no CUDA device "
                             f"(torch {torch.__version__}); use cpu or auto")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: str) -> Context:
    """The context of this process; joins the process group when started by torchrun
    (``WORLD_SIZE`` > 1): gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(0, 1, resolve_device(device))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Context(rank, world, dev)


def teardown(ctx: Context) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()

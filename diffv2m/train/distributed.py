"""torchrun / DDP plumbing: one process or many, the same training loop.

Under ``torchrun`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK; we join a process
group (gloo on CPU, nccl on CUDA) and wrap the trained module in DistributedDataParallel.
Each rank draws a disjoint share of every step's batch from the same seeded generator, so a
run's data order does not depend on the number of processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local, device=dev)


def wrap(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    if info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        return DDP(module, device_ids=[info.device.index] if info.device.type == "cuda" else None,
                   find_unused_parameters=True)
    return module


def share(batch_size: int, info: DistInfo) -> slice:
    """This rank's part of a global batch of ``batch_size`` drawn the same on every rank."""
    per_rank = batch_size // info.world
    return slice(info.rank * per_rank, (info.rank + 1) * per_rank)


def all_mean(x: float, info: DistInfo) -> float:
    """Mean of a float over ranks (for logging the same loss on every rank)."""
    if info.world == 1:
        return float(x)
    t = torch.tensor([float(x)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / info.world)


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()

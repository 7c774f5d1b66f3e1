"""One code path for one process and for ``torchrun`` (one node or many).

``torchrun`` tells each process who it is through the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, plus ``MASTER_ADDR``/``MASTER_PORT`` for the rendezvous, also across nodes). ``setup``
reads it and joins the process group (NCCL on GPUs, gloo on CPUs). Every helper below is the identity
(or the obvious single-process equivalent) when there is only one process, so the training code never
branches on "distributed or not".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistEnv:
    """Who this process is: global rank, number of processes, rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def env_from_torchrun(environ: dict | None = None) -> DistEnv:
    """The ``DistEnv`` described by torchrun's variables (one process when they are absent)."""
    environ = os.environ if environ is None else environ
    try:
        env = DistEnv(
            rank=int(environ.get("RANK", 0)),
            world_size=int(environ.get("WORLD_SIZE", 1)),
            local_rank=int(environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as e:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {e}") from e
    if not 0 <= env.rank < env.world_size:
        raise ValueError(f"RANK={env.rank} is not in [0, WORLD_SIZE={env.world_size})")
    return env


def setup(device: str = "auto") -> tuple[DistEnv, torch.device]:
    """Join the process group if torchrun started several processes; return (env, this process's device).

    ``device`` is ``"auto"`` (the local GPU when there is one), ``"cpu"`` or ``"cuda"``.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    env = env_from_torchrun()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU")
        torch.cuda.set_device(env.local_rank)
        this_device = torch.device("cuda", env.local_rank)
    else:
        this_device = torch.device("cpu")
    if env.is_distributed and not td.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        td.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size,
                              device_id=this_device if use_cuda else None)
    return env, this_device


def cleanup() -> None:
    if td.is_initialized():
        td.destroy_process_group()


def world_size() -> int:
    return td.get_world_size() if td.is_initialized() else 1


def rank() -> int:
    return td.get_rank() if td.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes logs, checkpoints and progress bars."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        td.barrier()


@torch.no_grad()
def all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0, in rank order (no gradient flows back)."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    td.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over processes (a new tensor; ``x`` itself is left alone)."""
    if world_size() == 1:
        return x
    out = x.detach().clone()
    td.all_reduce(out, op=td.ReduceOp.SUM)
    return out / world_size()


@torch.no_grad()
def average_batchnorm_stats(module: torch.nn.Module) -> None:
    """Average BN running statistics over processes, so every rank holds the same model.

    DDP keeps parameters in sync; running statistics drift apart because each rank sees its own data.
    Averaging them (instead of broadcasting every buffer each step) keeps the queue, identical by
    construction, out of the per-step traffic.
    """
    if world_size() == 1:
        return
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(all_reduce_mean(m.running_mean))
            m.running_var.copy_(all_reduce_mean(m.running_var))


@torch.no_grad()
def batch_shuffle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A random slice of the globally permuted batch for this process, and the index that undoes it.

    As MoCo's ``_batch_shuffle_ddp``: gather all processes' batches, permute with rank 0's random
    permutation, and give each process one equal slice. With one process it is a permutation within
    the batch (which is what split BN needs).
    """
    gathered = all_gather(x)
    perm = torch.randperm(gathered.shape[0], device=x.device)
    if world_size() > 1:
        td.broadcast(perm, src=0)
    unshuffle = torch.argsort(perm)
    mine = perm.view(world_size(), -1)[rank()]
    return gathered[mine], unshuffle


@torch.no_grad()
def batch_unshuffle(x: torch.Tensor, unshuffle: torch.Tensor) -> torch.Tensor:
    """Undo ``batch_shuffle``: this process gets back the rows of its own original samples."""
    gathered = all_gather(x)
    mine = unshuffle.view(world_size(), -1)[rank()]
    return gathered[mine]


def make_sampler(dataset: Dataset, shuffle: bool, seed: int, drop_last: bool) -> DistributedSampler:
    """A ``DistributedSampler`` for this process (also with one process: its order is ``seed + epoch``)."""
    return DistributedSampler(
        dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed, drop_last=drop_last
    )

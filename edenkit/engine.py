"""One epoch of contrastive pretraining, and a validation pass that changes nothing.

A training step, as in MoCo: embed (the model EMA-updates its key encoder first), InfoNCE against
the queue with the purposive pruner when asked, one optimizer step, then enqueue this step's keys.
The same loop runs on a CPU, one GPU, or under ``torchrun`` (``model`` is then wrapped in
``DistributedDataParallel``); the numbers it returns are averaged over processes.

A loader with an ``augment_batch(batch, device)`` hook (the device path, ``data.augment``:
``edenkit.anatomy_anchors.AnchorBatches``) yields anchors; the hook moves them to the device and
makes the views there, before anything else touches the batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

from edenkit import dist
from edenkit.moco import MoCo
from edenkit.pruner import info_nce

STAT_KEYS = ("loss", "acc", "pos_sim", "neg_sim", "frac_pruned")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops rather than writing a broken checkpoint."""


def unwrap(model: torch.nn.Module) -> MoCo:
    """The MoCo module inside a (possibly DDP-wrapped or compiled) model."""
    return model.module if hasattr(model, "module") else model


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision context for ``device`` (a no-op when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _views(batch: dict, device: torch.device, channels_last: bool, make_views=None) -> tuple[torch.Tensor, torch.Tensor]:
    if make_views is not None:  # the device path: views made on the device from the anchors
        batch = make_views(batch, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return tuple(
        batch[key].to(device, non_blocking=True).contiguous(memory_format=memory_format) for key in ("view1", "view2")
    )


class _Mean:
    """Running means of the step statistics, weighted by batch size, averaged over processes."""

    def __init__(self):
        self.sums = dict.fromkeys(STAT_KEYS, 0.0)
        self.count = 0

    def add(self, loss: torch.Tensor, stats: dict, n: int) -> None:
        values = {"loss": loss, **stats}
        for key in STAT_KEYS:
            self.sums[key] += float(values[key]) * n
        self.count += n

    def result(self, device: torch.device) -> dict:
        totals = torch.tensor([*self.sums.values(), self.count], dtype=torch.float64, device=device)
        totals = dist.all_reduce_mean(totals)
        count = max(totals[-1].item(), 1e-12)
        return {key: totals[i].item() / count for i, key in enumerate(STAT_KEYS)}


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[dict],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    prune_threshold: float | None = None,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    epoch: int = 0,
    log: Callable[[dict], None] | None = None,
    log_every: int = 0,
    progress: bool = False,
    desc: str = "train",
) -> dict:
    """Train ``model`` (MoCo, maybe DDP-wrapped) for one pass over ``loader``; return the epoch means.

    ``loader`` yields dicts with ``view1`` and ``view2`` ([B, 1, s, s] in [0, 1]), or anchors that its
    ``augment_batch`` hook turns into them on ``device`` (see the module's docstring). ``prune_threshold``
    turns on the purposive pruner; ``autocast_dtype`` (``torch.bfloat16`` or ``torch.float16``) turns on
    mixed precision, with ``scaler`` for float16. ``log`` receives a record every ``log_every`` steps.
    Returns ``loss, acc, pos_sim, neg_sim, frac_pruned, images_per_s, images, lr``.
    """
    moco = unwrap(model)
    model.train()
    mean = _Mean()
    images = 0
    start = time.perf_counter()
    make_views = getattr(loader, "augment_batch", None)
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, mininterval=2.0, disable=not (progress and dist.is_main()))
    for step, batch in enumerate(bar):
        view1, view2 = _views(batch, device, channels_last, make_views)
        with autocast(device, autocast_dtype):
            q, k = model(view1, view2)
        # The loss in float32: K logits per anchor, and the pruner compares similarities with a threshold.
        bank, in_batch = moco.negatives_for(k)
        loss, stats = info_nce(q, k, bank, moco.temperature, prune_threshold, in_batch)
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step} ({desc})")

        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if moco.negatives == "queue":
            moco.enqueue(k)  # after the loss: this step's keys are not their own negatives

        n = view1.shape[0]
        mean.add(loss.detach(), stats, n)
        images += n * dist.world_size()
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{float(stats['acc']):.2f}")
        if log is not None and log_every and (step + 1) % log_every == 0:
            log({"epoch": epoch, "step": step + 1, "loss": loss.item(),
                 **{key: float(value) for key, value in stats.items()}, "lr": optimizer.param_groups[0]["lr"]})
    if images == 0:
        raise ValueError("the training loader yielded no batch (fewer images than one global batch?)")
    seconds = time.perf_counter() - start
    return {**mean.result(device), "images_per_s": images / seconds, "images": images,
            "lr": optimizer.param_groups[0]["lr"]}


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict],
    *,
    device: torch.device,
    prune_threshold: float | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict:
    """The contrastive loss on ``loader`` against the current queue (or, with ``negatives="batch"``, the
    batch's other keys), with no side effect at all.

    ``MoCo.embed_pair`` computes what a training step computes (batch statistics, split BN, shuffled
    keys) but with no EMA update, no enqueue, no BN running-statistics update and the RNG restored, so
    the teacher and the queue are exactly as before; the released Adam code updated both in validation.
    """
    moco = unwrap(model)
    mean = _Mean()
    make_views = getattr(loader, "augment_batch", None)  # deterministic: the views' parameters come with the batch
    for batch in loader:
        view1, view2 = _views(batch, device, channels_last, make_views)
        with autocast(device, autocast_dtype):
            q, k = moco.embed_pair(view1, view2)
        bank, in_batch = moco.negatives_for(k)
        loss, stats = info_nce(q, k, bank, moco.temperature, prune_threshold, in_batch)
        mean.add(loss, stats, view1.shape[0])
    return mean.result(device)

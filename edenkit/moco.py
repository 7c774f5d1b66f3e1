"""MoCo-v2 student/teacher with a key queue: the model behind Adam and the MoCo-v2 baseline.

In the spirit of facebookresearch/moco's ``builder.py``: a query encoder (student) trained by SGD, a
key encoder (teacher) that is an exponential moving average of it, and a FIFO queue of past keys that
serves as negatives. Adam is this model fed with anatomy-decomposed anchors and trained with the
purposive pruner; the loss lives in ``edenkit.pruner`` and the training step in ``edenkit.engine``, so
this module only embeds and keeps the teacher and the queue.

Per step the engine calls ``q, k = model(view1, view2)`` (EMA update first, then keys), computes the
loss against ``model.queue``, steps the optimizer, and then calls ``model.enqueue(k)``.
``model.embed_pair`` is the validation forward: same embeddings, nothing changes.

Shuffle-BN. Batch norm lets a network "cheat" at contrastive learning: a query and its positive key
computed in the same batch share that batch's statistics, a signature that the negatives in the
queue (older batches) lack. MoCo breaks this with shuffle-BN: keys are computed on a random
permutation of the global batch spread over the processes, so a sample's key and its query are
normalized with statistics from different sub-batches. ``bn_splits`` is the single-process
equivalent ("split BN", as in the MoCo authors' one-GPU CIFAR demo): both encoders normalize each of
``bn_splits`` chunks of the per-process batch separately, and the key batch is permuted before it is
chunked. One process with ``bn_splits = G`` is then the same computation as ``G`` processes with
shuffle-BN, up to the random permutation. We run the whole encoder per chunk rather than swapping in a
custom BatchNorm layer so that the encoder stays a plain torchvision ResNet (its ``state_dict`` is the
exported encoder) and the running statistics keep their usual meaning.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from edenkit import dist
from edenkit.models.backbones import GreyEncoder

NEGATIVES = ("queue", "batch")  # MoCo.negatives


class ProjectionEncoder(nn.Module):
    """GreyEncoder trunk + MLP head Linear(d, hidden)-ReLU-Linear(hidden, dim), as in MoCo-v2."""

    def __init__(self, arch: str, dim: int = 128, mlp_hidden: int | None = None):
        super().__init__()
        self.backbone = GreyEncoder(arch)
        feature_dim = self.backbone.dim
        hidden = mlp_hidden or feature_dim
        self.head = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class MoCo(nn.Module):
    """Query encoder, EMA key encoder, and a queue of ``queue_size`` L2-normalized keys.

    Args:
        arch: torchvision ResNet name (``resnet18``, ``resnet34``, ``resnet50``).
        dim: embedding size (128 in MoCo-v2 and Adam).
        queue_size: number of negatives K; must be a multiple of the global batch (checked at enqueue).
        momentum: EMA coefficient m of the key encoder, ``k <- m k + (1 - m) q``.
        temperature: softmax temperature tau, kept here so that a checkpoint carries it.
        mlp_hidden: hidden width of the head (default: the trunk's feature size, 2048 for resnet50).
        bn_splits: BN chunks per process batch (see the module docstring); 1 disables split BN.
        negatives: ``"queue"`` (MoCo: the last K keys) or ``"batch"``: this step's other keys only, from
            every process, and no queue. With a queue the positive is always one EMA step newer than
            every negative; at CPU scale the student learns that age instead of content and collapses
            (research/moco_dynamics). In-batch negatives remove that shortcut by construction.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        dim: int = 128,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        mlp_hidden: int | None = None,
        bn_splits: int = 1,
        negatives: str = "queue",
    ):
        super().__init__()
        if queue_size < 1 or bn_splits < 1:
            raise ValueError(f"queue_size and bn_splits must be positive, got {queue_size} and {bn_splits}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives: expected one of {list(NEGATIVES)}, got {negatives!r}")
        self.negatives = negatives
        self.arch, self.dim, self.queue_size = arch, dim, queue_size
        self.momentum, self.temperature, self.bn_splits = momentum, temperature, bn_splits

        self.encoder_q = ProjectionEncoder(arch, dim, mlp_hidden)
        self.encoder_k = copy.deepcopy(self.encoder_q)  # starts as an exact copy of the student
        for param in self.encoder_k.parameters():
            param.requires_grad = False  # updated by EMA only; DDP ignores parameters without grad

        # Random unit vectors until real keys arrive, as in MoCo. Persistent: checkpoints carry them.
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @property
    def backbone(self) -> nn.Module:
        """The query trunk as a plain torchvision ResNet (what ``export_encoder`` writes)."""
        return self.encoder_q.backbone.net

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` for every parameter (buffers are the key encoder's own)."""
        for param_k, param_q in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            param_k.mul_(self.momentum).add_(param_q.detach(), alpha=1.0 - self.momentum)

    def _embed(self, encoder: nn.Module, x: torch.Tensor, keep_buffers: bool = False) -> torch.Tensor:
        """L2-normalized embeddings, BN per chunk in training (split BN), computed in float32 at the end.

        ``keep_buffers``: run on copies of the BN running statistics, so that nothing is updated.
        """
        forward = encoder
        if keep_buffers:
            state = {**dict(encoder.named_parameters()), **{k: b.clone() for k, b in encoder.named_buffers()}}
            forward = functools.partial(functional_call, encoder, state)
        if self.training and self.bn_splits > 1:
            if x.shape[0] % self.bn_splits:
                raise ValueError(f"batch of {x.shape[0]} is not divisible by bn_splits={self.bn_splits}")
            z = torch.cat([forward(chunk) for chunk in x.chunk(self.bn_splits)])
        else:
            z = forward(x)
        return F.normalize(z.float(), dim=1)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor, keep_buffers: bool = False) -> torch.Tensor:
        """Keys with shuffle-BN: permute the (global) batch, embed per chunk, restore the order."""
        shuffled, unshuffle = dist.batch_shuffle(x)
        return dist.batch_unshuffle(self._embed(self.encoder_k, shuffled, keep_buffers), unshuffle)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward: EMA-update the key encoder, then ``(q, k)``, both [B, dim] unit vectors.

        The caller computes the loss against ``self.queue`` and then calls ``enqueue(k)``.
        """
        q = self._embed(self.encoder_q, view1)
        with torch.no_grad():
            self.momentum_update()  # before the keys, as in MoCo
            k = self._keys(view2)
        return q, k

    @torch.no_grad()
    def embed_pair(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation forward: the training computation without any of its side effects.

        The same batch statistics as in training (split BN, shuffled keys), because the negatives in
        the queue were made that way: keys normalized with running statistics (eval mode) would be a
        different population from the negatives they are compared with. The statistics are computed
        on copies of the BN buffers; there is no EMA update, no enqueue, and the global random state
        (the key shuffle) is restored, so weights, buffers and RNG are bit-identical afterwards.
        Needs at least two samples per BN chunk.
        """
        was_training = self.training
        self.train()
        try:
            with torch.random.fork_rng(devices=_cuda_devices(view1)):
                return self._embed(self.encoder_q, view1, keep_buffers=True), self._keys(view2, keep_buffers=True)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def negatives_for(self, keys: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``(bank, in_batch)`` for ``info_nce``: the queue, or the other processes' ``keys`` of this step
        with the batch's own keys as in-batch negatives (``negatives="batch"``)."""
        if self.negatives == "queue":
            return self.queue, False
        everyone = dist.all_gather(keys.detach().float())
        mine = torch.arange(len(everyone), device=everyone.device) // len(keys) == dist.rank()
        return everyone[~mine], True

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Gather the keys of all processes and write them over the oldest entries of the queue."""
        keys = dist.all_gather(keys.detach().float())
        batch = keys.shape[0]
        if self.queue_size % batch:
            raise ValueError(
                f"queue_size {self.queue_size} must be a multiple of the global batch size {batch} "
                "(batch per process x processes); change model.queue_size or batch_size"
            )
        ptr = int(self.queue_ptr)
        self.queue[ptr : ptr + batch] = keys
        self.queue_ptr[0] = (ptr + batch) % self.queue_size


def _cuda_devices(x: torch.Tensor) -> list[int]:
    return [x.device.index if x.device.index is not None else torch.cuda.current_device()] if x.is_cuda else []

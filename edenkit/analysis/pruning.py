"""The purposive pruner measured: what each threshold removes, collisions versus genuine negatives.

``pruning_profile`` summarizes cosines against thresholds. ``collision_study`` is notebook 03's study:
queries and a queue cut from images whose anatomy is known (every part of a few patients), embedded by
each stage of a pretraining run (and a random initialization), then, per encoder, the cosines to
collisions (the query's own part in another patient) and to genuine negatives, what each threshold
prunes and what it does to the InfoNCE loss. The result keeps the views, so that figures can show the
actual negatives the pruner removes (``edenkit.viz.pruner``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from edenkit.checkpoint import load_checkpoint
from edenkit.config import from_dict
from edenkit.decomposer import part_boxes
from edenkit.moco import MoCo
from edenkit.pretrain import build_model
from edenkit.pretrain_config import PretrainConfig
from edenkit.pretrain_data import anatomy_pairs
from edenkit.pruner import info_nce
from edenkit.run_folder import RunPaths


def pruning_profile(
    sims: torch.Tensor, thresholds: list[float], same: torch.Tensor | None = None
) -> dict[str, list[float]]:
    """What each pruning threshold removes, from the query-negative cosines ``sims`` [B, K].

    ``same`` [B, K] (bool, optional) marks the negatives that show the query's own anatomy (a semantic
    collision). Per threshold: ``pruned`` fraction of all negatives; with ``same`` also
    ``pruned_same`` (fraction of the collisions removed), ``pruned_other`` (fraction of genuine
    negatives lost) and ``same_among_pruned`` (share of collisions among what is pruned; NaN when
    nothing is).
    """
    if same is not None and same.shape != sims.shape:
        raise ValueError(f"pruning_profile: same {tuple(same.shape)} must match sims {tuple(sims.shape)}")
    profile: dict[str, list[float]] = {"threshold": [float(t) for t in thresholds], "pruned": []}
    if same is not None:
        profile.update(pruned_same=[], pruned_other=[], same_among_pruned=[])
    for threshold in thresholds:
        pruned = sims >= threshold
        profile["pruned"].append(pruned.float().mean().item())
        if same is not None:
            profile["pruned_same"].append(pruned[same].float().mean().item())
            profile["pruned_other"].append(pruned[~same].float().mean().item())
            profile["same_among_pruned"].append(same[pruned].float().mean().item())
    return profile


@dataclasses.dataclass
class EncoderEmbeddings:
    """One encoder's embeddings of the study's queries (``q``), their positives (``k``) and the queue."""

    q: torch.Tensor
    k: torch.Tensor
    queue: torch.Tensor

    @property
    def sims(self) -> torch.Tensor:
        """Cosines [B, K] between each query and each queue negative (all embeddings are unit vectors)."""
        return self.q @ self.queue.T


@dataclasses.dataclass
class CollisionStudy:
    """Queries and a queue with known anatomy, embedded by several encoders (see ``collision_study``)."""

    level: int
    tau: float
    threshold: float  # the threshold the study is read at (the paper's 0.8)
    thresholds: list[float]
    query_views: torch.Tensor  # [B, 1, s, s]: the query view of every (patient, part)
    queue_views: torch.Tensor  # [K, 1, s, s]: the view each queue key was embedded from
    query_parts: torch.Tensor  # [B]
    queue_parts: torch.Tensor  # [K]
    query_patients: torch.Tensor  # [B]
    queue_patients: torch.Tensor  # [K]
    encoders: dict[str, EncoderEmbeddings]

    @property
    def same_part(self) -> torch.Tensor:
        """[B, K] True where the queue key shows the query's own part in another patient (a collision)."""
        return self.query_parts[:, None] == self.queue_parts[None, :]

    def profile(self, name: str) -> dict[str, list[float]]:
        """``pruning_profile`` of encoder ``name`` over the study's thresholds."""
        return pruning_profile(self.encoders[name].sims, self.thresholds, self.same_part)

    def losses(self, name: str, thresholds: list[float] | None = None) -> dict:
        """InfoNCE of encoder ``name`` without the pruner and with it at each threshold."""
        e = self.encoders[name]
        plain, plain_stats = info_nce(e.q, e.k, e.queue, self.tau)
        pruned = [info_nce(e.q, e.k, e.queue, self.tau, t) for t in (thresholds or self.thresholds)]
        return {"plain_loss": plain.item(), "plain_acc": plain_stats["acc"].item(),
                "loss": [loss.item() for loss, _ in pruned], "acc": [stats["acc"].item() for _, stats in pruned]}

    def summary(self) -> list[dict]:
        """One row per encoder: mean cosines, what the study's threshold prunes, the loss with and without it."""
        same = self.same_part
        rows = []
        for name, e in self.encoders.items():
            sims, at = e.sims, self.losses(name, [self.threshold])
            pruned = sims >= self.threshold
            rows.append({
                "encoder": name,
                "cos to positive": (e.q * e.k).sum(1).mean().item(),
                "cos to collisions": sims[same].mean().item(),
                "cos to genuine negatives": sims[~same].mean().item(),
                "pruned": pruned.float().mean().item(),
                "collisions pruned": pruned[same].float().mean().item(),
                "genuine pruned": pruned[~same].float().mean().item(),
                "plain loss": at["plain_loss"],
                "loss with pruner": at["loss"][0],
            })
        return rows

    def summary_rows(self) -> list[dict]:
        """``summary`` formatted for a table: cosines to 3 decimals, fractions in percent."""
        percent = ("pruned", "collisions pruned", "genuine pruned")
        return [{key: value if key == "encoder" else format_percent(value) if key in percent else f"{value:.3f}"
                 for key, value in row.items()} for row in self.summary()]

    def nearest_negatives(self, name: str, query: int, count: int) -> list[dict]:
        """The ``count`` queue keys most similar to query ``query`` under encoder ``name``, most similar first:
        ``{"key", "cos", "part", "patient", "collision", "pruned"}`` (pruned at the study's threshold)."""
        sims = self.encoders[name].sims[query]
        order = torch.argsort(sims, descending=True)[:count].tolist()
        return [{"key": j, "cos": sims[j].item(), "part": int(self.queue_parts[j]), "patient": int(self.queue_patients[j]),
                 "collision": bool(self.queue_parts[j] == self.query_parts[query]),
                 "pruned": bool(sims[j] >= self.threshold)} for j in order]

    def most_pruned_queries(self, name: str, count: int, threshold: float | None = None) -> list[int]:
        """The queries that lose the most negatives at ``threshold`` (the study's by default); ties go to
        the query whose nearest negative is closest, so the list is meaningful when nothing is pruned."""
        sims = self.encoders[name].sims
        threshold = self.threshold if threshold is None else threshold
        score = (sims >= threshold).sum(1).double() + sims.max(1).values.double().clamp(-1, 1) / 4
        return torch.argsort(score, descending=True)[:count].tolist()

    def to_json(self) -> dict:
        """The numbers (no tensors): per encoder the summary, the profile and the loss by threshold."""
        summary = {row["encoder"]: row for row in self.summary()}
        return {"level": self.level, "tau": self.tau, "threshold": self.threshold,
                "queries": len(self.query_parts), "queue": len(self.queue_parts),
                "collision_share": self.same_part.float().mean().item(),
                "encoders": {name: {**summary[name], **self.losses(name), **self.profile(name)}
                             for name in self.encoders}}


def run_config(run_folder: str | Path) -> PretrainConfig:
    """The resolved config of a pretraining run (from its last checkpoint)."""
    return from_dict(PretrainConfig, load_checkpoint(RunPaths(run_folder).last)["config"])


def stage_encoders(run_folder: str | Path) -> dict[str, MoCo]:
    """A random initialization and the best checkpoint (by validation loss) of every stage of a run."""
    paths, cfg = RunPaths(run_folder), run_config(run_folder)
    models = {"random init": build_model(cfg)}
    for stage, (n, epochs) in enumerate(zip(cfg.curriculum.stages, cfg.curriculum.epochs)):
        pruner = f"pruner at {cfg.prune_threshold}" if n > 0 and cfg.prune_threshold is not None else "no pruner"
        model = build_model(cfg)
        model.load_state_dict(load_checkpoint(paths.best(stage, n))["model"])
        models[f"after stage n={n} ({epochs} ep., {pruner})"] = model
    return models


def collision_study(run: str | Path | PretrainConfig, images, level: int, n_query_patients: int,
                    thresholds: list[float], threshold: float = 0.8, seed: int = 0,
                    encoders: dict[str, MoCo] | None = None) -> CollisionStudy:
    """Notebook 03's study of the purposive pruner on the stages of a pretraining run.

    ``images`` is a list (or dataset) of items with an ``image``; the first ``n_query_patients`` give the
    queries, one pair of views for every part at ``level``; the others give the queue, a key for every
    part. ``run`` is a pretraining run folder (or its config): the views are drawn as the run draws them
    (``anatomy_pairs``), and ``encoders`` defaults to ``stage_encoders(run)``. Embeddings are computed as in a training step on copies of the
    batch-norm statistics (``MoCo.embed_pair``): the models do not change.
    """
    cfg = run if isinstance(run, PretrainConfig) else run_config(run)
    if encoders is None:
        encoders = stage_encoders(run)
    if not 0 < n_query_patients < len(images):
        raise ValueError(f"collision_study: n_query_patients must be in 1..{len(images) - 1}, got {n_query_patients}")
    size = images[0]["image"].shape[-2:]
    n_parts = len(part_boxes(size[0], size[1], level))
    pairs = anatomy_pairs(images, level, cfg, seed)
    items = {"query": [pairs.pair(i, p) for i in range(n_query_patients) for p in range(n_parts)],
             "queue": [pairs.pair(i, p) for i in range(n_query_patients, len(images)) for p in range(n_parts)]}
    query, queue = items["query"], items["queue"]
    view1, view2 = torch.stack([x["view1"] for x in query]), torch.stack([x["view2"] for x in query])
    keys = torch.stack([x["view1"] for x in queue])
    embedded = {}
    for name, model in encoders.items():
        q, k = model.embed_pair(view1, view2)
        _, queue_keys = model.embed_pair(keys, keys)  # the queue holds key-encoder embeddings
        embedded[name] = EncoderEmbeddings(q.detach(), k.detach(), queue_keys.detach())
    return CollisionStudy(
        level=level, tau=cfg.model.temperature, threshold=float(threshold), thresholds=[float(t) for t in thresholds],
        query_views=view1, queue_views=keys,
        query_parts=torch.tensor([x["part"] for x in query]), queue_parts=torch.tensor([x["part"] for x in queue]),
        query_patients=torch.tensor([x["index"] for x in query]),
        queue_patients=torch.tensor([x["index"] for x in queue]), encoders=embedded,
    )


def format_percent(value: float, digits: int = 1) -> str:
    """``"12.3%"``; ``"–"`` for NaN (a share of nothing, e.g. collisions among no pruned negative)."""
    return "–" if math.isnan(value) else f"{100 * value:.{digits}f}%"


def profile_rows(profile: dict[str, list[float]]) -> list[dict]:
    """``pruning_profile`` (with ``same``) as table rows of percentages, one per threshold."""
    labels = {"pruned": "pruned", "pruned_same": "of collisions", "pruned_other": "of genuine negatives",
              "same_among_pruned": "collisions among pruned"}
    return [{"threshold": f"{t:.2f}", **{label: format_percent(profile[key][i]) for key, label in labels.items()}}
            for i, t in enumerate(profile["threshold"])]

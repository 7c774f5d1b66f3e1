"""Figures and the threshold explorer for the purposive pruner: cosines, what a threshold prunes, collisions.

Every function returns its figure (or widget) so that a notebook shows it and a test can check it. The
study-level figures take an ``edenkit.analysis.pruning.CollisionStudy`` (notebook 03).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from edenkit.analysis.pruning import CollisionStudy, format_percent
from edenkit.viz.common import figure_png, show_grey
from edenkit.viz.pretrain import keep_full_canvas

SAME_COLOUR = "tab:red"  # negatives that show the query's own anatomy (semantic collisions)
OTHER_COLOUR = "tab:blue"  # genuine negatives: other anatomy


def plot_negative_similarities(
    sims: torch.Tensor, same: torch.Tensor, thresholds=(0.8,), title: str | None = None, ax=None
) -> Figure:
    """Histogram of query-negative cosines, collisions (same part, other patient) vs other anatomy."""
    sims, same = sims.flatten().cpu().numpy(), same.flatten().cpu().numpy()
    fig, ax = _figure(ax, (7, 3.2))
    bins = np.linspace(min([float(sims.min()), *thresholds]) - 0.05, 1.0, 61)
    ax.hist(sims[~same], bins=bins, density=True, alpha=0.6, color=OTHER_COLOUR, label="other part (genuine negative)")
    ax.hist(sims[same], bins=bins, density=True, alpha=0.6, color=SAME_COLOUR, label="same part, other patient (collision)")
    for threshold in thresholds:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.text(threshold, 0.5, f"threshold {threshold:g} ", transform=ax.get_xaxis_transform(), rotation=90,
                fontsize=8, ha="right", va="center")
    ax.set_xlabel("cosine similarity between a query and a queue negative")
    ax.set_ylabel("density")
    ax.set_title(title or "Negatives in the queue", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_prune_mask(mask: torch.Tensor, query_parts, queue_parts, title: str | None = None, ax=None) -> Figure:
    """The B x K pruning mask with queries and negatives sorted by part: pruned collisions fill the
    diagonal blocks (same part), pruned genuine negatives the rest."""
    query_parts, queue_parts = torch.as_tensor(query_parts), torch.as_tensor(queue_parts)
    rows, cols = torch.argsort(query_parts, stable=True), torch.argsort(queue_parts, stable=True)
    fig, ax = _figure(ax, (6, 3.4))
    ax.imshow(mask[rows][:, cols].cpu().numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for edges, line in ((torch.unique_consecutive(query_parts[rows], return_counts=True)[1], ax.axhline),
                        (torch.unique_consecutive(queue_parts[cols], return_counts=True)[1], ax.axvline)):
        for edge in torch.cumsum(edges, 0)[:-1].tolist():
            line(edge - 0.5, color=SAME_COLOUR, linewidth=0.8)
    ax.set_xlabel("queue negatives, sorted by part")
    ax.set_ylabel("queries, sorted by part")
    ax.set_title(title or f"pruned (black): {mask.float().mean().item():.1%} of the negatives", fontsize=10)
    fig.tight_layout()
    return fig


def plot_pruning_profile(
    profile: dict[str, list[float]], paper_threshold: float = 0.8, title: str | None = None, ax=None
) -> Figure:
    """Fraction pruned against the threshold: all negatives, collisions and genuine negatives
    (``profile`` from ``edenkit.analysis.pruning.pruning_profile`` with ``same`` given)."""
    t = profile["threshold"]
    fig, ax = _figure(ax, (6.5, 3.2))
    ax.plot(t, profile["pruned"], "k-o", markersize=3, label="all negatives")
    ax.plot(t, profile["pruned_same"], "-o", color=SAME_COLOUR, markersize=3, label="collisions (same part)")
    ax.plot(t, profile["pruned_other"], "-o", color=OTHER_COLOUR, markersize=3, label="genuine negatives (other part)")
    ax.axvline(paper_threshold, color="gray", linestyle="--", linewidth=1, label=f"paper: {paper_threshold:g}")
    ax.set_xlabel("pruning threshold (cosine)")
    ax.set_ylabel("fraction pruned")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")  # high thresholds prune little: the corner the curves leave free
    fig.tight_layout()
    return fig


def plot_loss_by_threshold(curves: dict[str, tuple[list[float], list[float], float]], ax=None) -> Figure:
    """InfoNCE loss against the pruning threshold, one colour per encoder: ``{name: (thresholds, losses,
    plain_loss)}``; solid with the pruner, dashed plain InfoNCE (no pruning). The legend names each
    encoder once and sits outside the axes, so that it never covers the curves."""
    from matplotlib.lines import Line2D  # only this figure needs proxy artists

    fig, ax = _figure(ax, (9.5, 3.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for (name, (thresholds, losses, plain)), colour in zip(curves.items(), colours):
        ax.plot(thresholds, losses, "-o", color=colour, markersize=3)
        ax.axhline(plain, color=colour, linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color=colour, label=name))
    handles += [Line2D([], [], color="black", marker="o", markersize=3, label="with the pruner"),
                Line2D([], [], color="black", linestyle="--", linewidth=1, label="plain InfoNCE")]
    ax.set_xlabel("pruning threshold (cosine)")
    ax.set_ylabel("loss")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def panels(count: int, columns: int = 2, size: tuple[float, float] = (6.5, 3.4)) -> tuple[Figure, list]:
    """A figure with ``count`` axes in rows of ``columns``, for one panel per encoder."""
    rows = math.ceil(count / columns)
    columns = min(columns, count)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    axes = list(axes.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _figure(ax, size):
    """(figure, axes): the given axes, or a new figure of ``size``."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=size)




# ---------------------------------------------------------------------------------------- the study (notebook 03)
def similarity_panels(study: CollisionStudy) -> Figure:
    """One histogram of query-negative cosines per encoder, collisions against genuine negatives."""
    fig, axes = panels(len(study.encoders))
    for ax, (name, e) in zip(axes, study.encoders.items()):
        plot_negative_similarities(e.sims, study.same_part, thresholds=(study.threshold,), title=name, ax=ax)
    fig.tight_layout()
    return fig


def profile_panels(study: CollisionStudy) -> Figure:
    """One panel per encoder: the fraction of all negatives, collisions and genuine negatives pruned."""
    fig, axes = panels(len(study.encoders))
    for ax, name in zip(axes, study.encoders):
        plot_pruning_profile(study.profile(name), study.threshold, title=name, ax=ax)
    fig.tight_layout()
    return fig


def mask_panels(study: CollisionStudy) -> Figure:
    """One pruning mask per encoder at the study's threshold, queries and negatives sorted by part."""
    fig, axes = panels(len(study.encoders), size=(6.5, 3.6))
    for ax, (name, e) in zip(axes, study.encoders.items()):
        mask = e.sims >= study.threshold
        plot_prune_mask(mask, study.query_parts, study.queue_parts,
                        title=f"{name}: {mask.float().mean():.1%} pruned", ax=ax)
    fig.tight_layout()
    return fig


def loss_panel(study: CollisionStudy) -> Figure:
    """The InfoNCE loss by threshold for every encoder of the study (``plot_loss_by_threshold``)."""
    curves = {}
    for name in study.encoders:
        losses = study.losses(name)
        curves[name] = (study.thresholds, losses["loss"], losses["plain_loss"])
    return plot_loss_by_threshold(curves)


def _framed_view(ax, view: torch.Tensor, colour: str, title: str, pruned: bool) -> None:
    """A view with a coloured frame: thick and solid when pruned, thin and dashed when kept."""
    show_grey(ax, view, title)
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3.0 if pruned else 1.0)
        spine.set_linestyle("-" if pruned else "--")
        spine.set_visible(True)


def _negatives_row(row, study: CollisionStudy, name: str, query: int, threshold: float) -> None:
    """Row of axes: the query's view, then its nearest queue negatives marked pruned or kept at ``threshold``."""
    part = int(study.query_parts[query])
    show_grey(row[0], study.query_views[query], f"query: part {part}\npatient {int(study.query_patients[query])}")
    for ax, neg in zip(row[1:], study.nearest_negatives(name, query, len(row) - 1)):
        pruned = neg["cos"] >= threshold
        kind = "collision" if neg["collision"] else "genuine"
        _framed_view(ax, study.queue_views[neg["key"]], SAME_COLOUR if neg["collision"] else OTHER_COLOUR,
                     f"cos {neg['cos']:.2f} {'PRUNED' if pruned else 'kept'}\npart {neg['part']} ({kind})", pruned)


def collision_gallery(study: CollisionStudy, name: str, queries: int = 3, negatives: int = 6,
                      threshold: float | None = None) -> Figure:
    """Semantic collisions found by the pruner: per row a query part beside its most similar negatives.

    The queries are those that lose the most negatives at ``threshold`` (the study's by default).
    Red frames are collisions (the query's own part in another patient), blue ones other anatomy; a
    thick solid frame means pruned, a thin dashed one kept. When nothing lies above the threshold the
    rows show the nearest negatives anyway, all kept.
    """
    threshold = study.threshold if threshold is None else threshold
    chosen = study.most_pruned_queries(name, queries, threshold)
    fig, axes = plt.subplots(len(chosen), negatives + 1, figsize=(1.6 * (negatives + 1), 2.0 * len(chosen)),
                             squeeze=False)
    for row, query in zip(axes, chosen):
        _negatives_row(row, study, name, query, threshold)
    pruned = (study.encoders[name].sims >= threshold)
    same = study.same_part
    fig.suptitle(f"{name}: nearest negatives of {len(chosen)} queries at threshold {threshold:g} "
                 f"({format_percent(pruned.float().mean().item())} of all negatives pruned, "
                 f"{format_percent(same[pruned].float().mean().item() if pruned.any() else math.nan)} of them "
                 f"collisions)", fontsize=9)
    fig.tight_layout()
    return fig


def threshold_figure(study: CollisionStudy, name: str, threshold: float, query: int, negatives: int = 5) -> Figure:
    """The explorer's picture: the cosine histogram with what ``threshold`` prunes shaded and counted,
    and one query's nearest negatives, pruned or kept. Fixed size and layout, whatever the state."""
    e, same = study.encoders[name], study.same_part
    sims = e.sims
    pruned = sims >= threshold
    fig = plt.figure(figsize=(10.0, 5.4))
    hist = fig.add_axes((0.07, 0.5, 0.55, 0.4))
    low = cosine_floor(study)
    bins = np.linspace(low, 1.0, 61)
    values = sims.flatten().numpy()
    hist.hist(values[~same.flatten().numpy()], bins=bins, density=True, alpha=0.6, color=OTHER_COLOUR,
              label="genuine negatives")
    hist.hist(values[same.flatten().numpy()], bins=bins, density=True, alpha=0.6, color=SAME_COLOUR,
              label="collisions")
    hist.axvspan(threshold, 1.0, color="black", alpha=0.12, label="pruned")
    hist.axvline(threshold, color="black", linestyle="--", linewidth=1)
    hist.set_xlim(low, 1.0)  # the same axis for every encoder and threshold
    hist.set_xlabel("cosine between a query and a queue negative")
    hist.set_title(f"{name}", fontsize=10)
    hist.legend(fontsize=8, loc="upper left")
    kept = (~pruned).sum(1)
    loss = info_nce_at(study, name, threshold)
    lines = [f"threshold {threshold:.2f}",
             f"pruned: {format_percent(pruned.float().mean().item())} of all negatives",
             f"  {format_percent(pruned[same].float().mean().item())} of the collisions",
             f"  {format_percent(pruned[~same].float().mean().item())} of the genuine negatives",
             f"collisions among pruned: {format_percent(same[pruned].float().mean().item() if pruned.any() else math.nan)}",
             f"negatives kept per query: {int(kept.min())} to {int(kept.max())} of {sims.shape[1]}",
             f"InfoNCE: {loss['loss']:.3f} (plain {loss['plain_loss']:.3f})"]
    fig.text(0.66, 0.88, "\n".join(lines), fontsize=9, va="top", family="monospace")
    width = 0.88 / (negatives + 1)
    row = [fig.add_axes((0.06 + i * width, 0.04, width * 0.86, 0.3)) for i in range(negatives + 1)]
    _negatives_row(row, study, name, query, threshold)
    return keep_full_canvas(fig)


def cosine_floor(study: CollisionStudy) -> float:
    """A round lower bound (0.05 steps) of every encoder's cosines and the study's threshold."""
    lowest = min([study.threshold, *(e.sims.min().item() for e in study.encoders.values())])
    return max(-1.0, math.floor((lowest - 0.02) * 20) / 20)


def info_nce_at(study: CollisionStudy, name: str, threshold: float) -> dict[str, float]:
    """The study's InfoNCE for encoder ``name`` with the pruner at ``threshold`` and without it."""
    losses = study.losses(name, [threshold])
    return {"loss": losses["loss"][0], "plain_loss": losses["plain_loss"]}


def threshold_explorer(study: CollisionStudy, name: str | None = None, negatives: int = 5):
    """An ipywidgets explorer: move the threshold and see what it prunes, overall and for one query.

    The picture is an ``ipywidgets.Image`` (see ``edenkit.viz.common``); the figure keeps its size and
    layout in every state, so the page does not jump.
    """
    import ipywidgets as widgets  # the library imports without ipywidgets; only explorers need it

    names = list(study.encoders)
    encoder = widgets.Dropdown(options=names, value=name or names[-1], description="encoder",
                               layout=widgets.Layout(width="480px"))
    threshold = widgets.FloatSlider(value=study.threshold, min=cosine_floor(study), max=1.0, step=0.01, description="threshold",
                                    continuous_update=False, readout_format=".2f")
    query = widgets.IntSlider(value=0, min=0, max=len(study.query_parts) - 1, description="query",
                              continuous_update=False)
    picture = widgets.Image(format="png")

    def redraw(_change=None) -> None:
        picture.value = figure_png(threshold_figure(study, encoder.value, threshold.value, query.value, negatives))

    for control in (encoder, threshold, query):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.VBox([encoder, threshold, query]), picture])

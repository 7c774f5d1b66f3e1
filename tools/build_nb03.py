from nbbuild import build

build("notebooks/03_purposive_pruner.ipynb", [
("md", r"""
# 03 · The purposive pruner

MoCo-v2 learns by contrast: the query embedding $q_i$ of one view must be closer to the key $k_i$ of the
other view of the same anchor than to the $K$ keys $m_j$ in the queue, which come from other images and
serve as **negatives**. For whole images (level $n=0$) that is sensible: two radiographs are two patients.

For parts ($n>0$) it is not. Part 0 at $n=2$ is the upper zone of the right lung in *every* patient, so
the queue is full of keys that show the same anatomy as the anchor, in other patients. Pushing them away
contradicts **locality** (the same structure should embed close together, notebook 05). The paper calls
these *semantic collisions*, and the **purposive pruner** removes them: for each anchor, negatives whose
cosine similarity with the query is at least a threshold (0.8) are dropped from the softmax denominator,
and the positive is always kept:

$$
\mathcal{L}_i = -\log \frac{\exp(q_i \cdot k_i / \tau)}{\exp(q_i \cdot k_i / \tau) + \sum_{j:\ q_i \cdot m_j < 0.8} \exp(q_i \cdot m_j / \tau)}, \qquad \tau = 0.2 .
$$

In edenkit this is one boolean mask over the $B \times K$ logits (`edenkit.pruner.purposive_prune_mask`);
pruned logits become $-\infty$ before the cross-entropy, which gives exactly the value of the authors'
per-sample loop (a unit test checks it; `benchmarks/bench_pruner.py` times both).

The phantom knows its anatomy, so we can check what the pruner actually removes: for every query we
know which queue keys show the same part (a collision) and which show another part (a genuine negative).
"""),
("params", r"""
profile = "ci"
seed = 0
out_dir = "../runs/ci"
data = "phantom"
data_root = ""
level = 2
n_query_patients = 8
n_queue_patients = 32
thresholds = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
paper_threshold = 0.8
"""),
("code", r"""
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from edenkit import zoo
from edenkit.checkpoint import load_checkpoint
from edenkit.config import from_dict
from edenkit.decomposer import part_boxes
from edenkit.analysis.pruning import pruning_profile
from edenkit.pruner import info_nce, purposive_prune_mask
from edenkit.pretrain import PretrainConfig, RunPaths, anatomy_pairs, build_model
from edenkit.viz import pretrain as viz

torch.manual_seed(seed)
out = Path(out_dir)
figures = out / "figures"
figures.mkdir(parents=True, exist_ok=True)

# Adam for this profile, trained once by the kit and shared with notebooks 04-08 (cached under out_dir/models).
zoo.get_encoder("adam", profile, out_dir, seed, data_root=data_root or None)
run = RunPaths(zoo.run_folder("adam", profile, out_dir, seed, data_root=data_root or None))
cfg = from_dict(PretrainConfig, load_checkpoint(run.last)["config"])
image_size, view_size, tau = cfg.data.image_size, cfg.data.view_size, cfg.model.temperature
n_parts = len(part_boxes(image_size, image_size, level))
print(f"Adam run: {run.root.name}, {cfg.model.arch}, stages n = {cfg.curriculum.stages}, epochs {cfg.curriculum.epochs}")
print(f"images {image_size} px, views {view_size} px; analysis at level n = {level} ({n_parts} parts), tau = {tau}")
"""),
("md", r"""
## Queries and a queue with known anatomy

Queries come from a few patients, one pair of views for **every** part of each image; the queue holds keys
of every part of other patients (in training the queue holds random parts of past batches, the same mix
on average). These patients are not among the pretraining images.
"""),
("code", r"""
if data == "phantom":
    from edenkit.phantom import PhantomDataset

    source = PhantomDataset(n_query_patients + n_queue_patients, size=image_size, seed=seed)
else:
    from edenkit.data.datasets import open_image_dataset

    source = open_image_dataset(data, data_root, "val", image_size)
images = [source[i] for i in range(n_query_patients + n_queue_patients)]  # decoded once, reused per part
pairs = anatomy_pairs(images, level, cfg, seed)  # the run's decomposition and augmentation

query_items = [pairs.pair(i, part) for i in range(n_query_patients) for part in range(n_parts)]
queue_items = [pairs.pair(i, part) for i in range(n_query_patients, len(images)) for part in range(n_parts)]
query_parts = torch.tensor([item["part"] for item in query_items])
queue_parts = torch.tensor([item["part"] for item in queue_items])
same_part = query_parts[:, None] == queue_parts[None, :]  # [B, K]: True = a semantic collision
print(f"{len(query_items)} queries, {len(queue_items)} queue keys, {same_part.float().mean():.1%} of the pairs are collisions")
"""),
("md", r"""
## The encoders

The curriculum switches the pruner on when it moves from $n=0$ to $n=2$, so the encoder that meets the
pruner first is the one trained by the $n=0$ stage, which is plain MoCo-v2. We compare the network at
random initialization, at the end of each stage of the curriculum (the stage's best checkpoint by
validation loss), all on the same queries and queue.
"""),
("code", r"""
def stage_model(stage, n):
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(run.best(stage, n))["model"])
    return model


encoders = {"random init": build_model(cfg)}
for stage, (n, epochs) in enumerate(zip(cfg.curriculum.stages, cfg.curriculum.epochs)):
    pruner = f"pruner at {cfg.prune_threshold}" if n > 0 and cfg.prune_threshold is not None else "no pruner"
    encoders[f"after stage n={n} ({epochs} ep., {pruner})"] = stage_model(stage, n)

view1 = torch.stack([item["view1"] for item in query_items])
view2 = torch.stack([item["view2"] for item in query_items])
keys = torch.stack([item["view1"] for item in queue_items])
embeddings = {}
for name, model in encoders.items():
    q, k = model.embed_pair(view1, view2)  # computed as in training, but nothing in the model changes
    _, queue = model.embed_pair(keys, keys)  # the queue holds key-encoder embeddings
    embeddings[name] = (q, k, queue)
    sims = q @ queue.T
    print(f"{name:>42}: mean cosine to collisions {sims[same_part].mean():.3f}, to genuine negatives "
          f"{sims[~same_part].mean():.3f}, to the positive {(q * k).sum(1).mean():.3f}")
"""),
("md", r"""
## How similar are the negatives?

Red: queue keys that show the query's own part in another patient (collisions). Blue: keys of other
parts (genuine negatives). The dashed line is the paper's threshold; everything to its right is pruned.
"""),
("code", r"""
fig, axes = viz.panels(len(embeddings))
for ax, (name, (q, _, queue)) in zip(axes, embeddings.items()):
    viz.plot_negative_similarities(q @ queue.T, same_part, thresholds=(paper_threshold,), title=name, ax=ax)
fig.savefig(figures / "03_negative_similarities.png", dpi=120)
plt.show()
"""),
("md", r"""
## What each threshold prunes

For each threshold: the fraction of all negatives pruned, of the collisions (we want these gone) and of
the genuine negatives (we want to keep these: they carry the contrast). A threshold that removes nearly
everything leaves the loss with no negatives at all.
"""),
("code", r"""
profiles = {}
fig, axes = viz.panels(len(embeddings))
for ax, (name, (q, _, queue)) in zip(axes, embeddings.items()):
    profiles[name] = pruning_profile(q @ queue.T, thresholds, same_part)
    viz.plot_pruning_profile(profiles[name], paper_threshold, title=name, ax=ax)
fig.savefig(figures / "03_pruning_by_threshold.png", dpi=120)
plt.show()

for name, profile in profiles.items():
    print(name)
    print("  threshold   pruned   of collisions   of genuine negatives   collisions among pruned")
    for row in zip(*(profile[key] for key in ("threshold", "pruned", "pruned_same", "pruned_other", "same_among_pruned"))):
        print("  {:9.2f} {:8.1%} {:15.1%} {:22.1%} {:25.1%}".format(*row))
"""),
("md", r"""
## The pruner is one mask

The mask over queries x negatives at the paper's threshold, rows and columns sorted by part. Black cells
are pruned. Pruned collisions fill the diagonal blocks (query and key show the same part); black cells
elsewhere are genuine negatives that the pruner removes as well.
"""),
("code", r"""
fig, axes = viz.panels(len(embeddings), size=(6.5, 3.6))
for ax, (name, (q, _, queue)) in zip(axes, embeddings.items()):
    mask = purposive_prune_mask(q, queue, paper_threshold)
    viz.plot_prune_mask(mask, query_parts, queue_parts, title=f"{name}: {mask.float().mean():.1%} pruned", ax=ax)
fig.savefig(figures / "03_prune_mask.png", dpi=120)
plt.show()
"""),
("md", r"""
## The effect on the loss

Pruning removes terms from each denominator, so the loss can only go down. How far it goes down at a
given threshold depends on how many negatives lie above it; when every negative is pruned the loss is
exactly 0 and the encoder receives no gradient from it.
"""),
("code", r"""
curves, results = {}, {}
for name, (q, k, queue) in embeddings.items():
    plain, plain_stats = info_nce(q, k, queue, tau)
    pruned = [info_nce(q, k, queue, tau, t) for t in thresholds]
    curves[name] = (thresholds, [loss.item() for loss, _ in pruned], plain.item())
    results[name] = {
        "plain_loss": plain.item(),
        "plain_acc": plain_stats["acc"].item(),
        "loss": curves[name][1],
        "acc": [stats["acc"].item() for _, stats in pruned],
        **profiles[name],
    }
    at_paper = info_nce(q, k, queue, tau, paper_threshold)
    print(f"{name:>42}: plain InfoNCE {plain.item():.3f}; with the pruner at {paper_threshold}: "
          f"{at_paper[0].item():.3f} ({at_paper[1]['frac_pruned'].item():.1%} of negatives pruned)")
fig = viz.plot_loss_by_threshold(curves)
fig.savefig(figures / "03_loss_by_threshold.png", dpi=120)
plt.show()
(out / "03_purposive_pruner.json").write_text(json.dumps({"level": level, "tau": tau, "encoders": results}, indent=2))
"""),
("md", r"""
## What to take away

* The pruner does not know anatomy; it only sees cosine similarity. It removes collisions rather than
  genuine negatives only to the extent that the same part in another patient already embeds closer to
  the query than other parts do. The column "collisions among pruned" says how well it does: a value
  equal to the share of collisions in the queue (printed above) is what pruning blindly would give.
* An untrained network maps every part to nearly the same direction (the random-init panel), so any
  threshold below those cosines prunes every negative and the loss is exactly 0: nothing to learn from.
  The pruner can only help once training has spread the embeddings, which is why the curriculum starts
  with plain InfoNCE at $n=0$.
* The paper's 0.8 was chosen for ResNet-50 trained on ChestX-ray14 for 200 epochs per stage. How much
  it prunes depends on how spread the embeddings are: with the `ci` profile's few steps collisions and
  genuine negatives overlap, and a threshold prunes both alike. After the `demo` stages very few
  negatives lie above 0.8 (in our run 0.2-2% of them), and nearly all of those are collisions: the
  pruner is precise but removes only a small share of the collisions. Check the threshold against your
  own stage-0 model before relying on it.
* The embeddings here are computed as in a training step (batch statistics, split BN) on copies of the
  batch-norm statistics, as in validation, but on a batch made of every part of a few patients rather
  than of random parts; the fraction that the training log records at each epoch (`frac_pruned`,
  plotted in notebook 04) can therefore differ somewhat from what this notebook measures.
"""),
])

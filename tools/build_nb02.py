from nbbuild import build

build("notebooks/02_anatomy_decomposer.ipynb", [
("md", r"""
# 02 · The anatomy decomposer

Human anatomy is a **hierarchy**: the chest contains two lungs and a mediastinum, a lung contains lobes
and zones, a zone is crossed by ribs and vessels. Adam learns this hierarchy from coarse to fine by
contrasting *parts* of radiographs rather than whole images. The **anatomy decomposer** supplies those parts.

At granularity level $n$ the image is cut into $2^n$ non-overlapping parts by recursive binary splits that
alternate direction, starting with a vertical cut:

| $n$ | parts | layout |
|---|---|---|
| 0 | 1 | the whole image (plain MoCo-v2) |
| 1 | 2 | left and right halves |
| 2 | 4 | 2 x 2 |
| 3 | 8 | 2 rows x 4 columns |
| 4 | 16 | 4 x 4 |

One part is drawn uniformly at random as the **anchor**, and the two positive views that MoCo contrasts
are two independent augmentations of that anchor. Because chest radiographs are acquired in a standard
pose, a given part shows roughly the same anatomy in every patient: part 0 at $n=2$ is always the upper
zone of the patient's right lung (which appears on the image's *left*, radiological convention).

This notebook shows the parts at each level, the paper's rule against the authors' released code, what an
anchor and its two views look like, and an explorer to try it yourself.
"""),
("params", r"""
profile = "ci"
seed = 0
out_dir = "../runs/ci"
data = "phantom"
data_root = ""
image_size = 64
view_size = 48
n_images = 6
draws = 800
"""),
("code", r"""
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from edenkit.decomposer import AnatomyPairs, part_boxes
from edenkit.augmentation import TwoViewAugment
from edenkit.viz import pretrain as viz

torch.manual_seed(seed)
figures = Path(out_dir) / "figures"
figures.mkdir(parents=True, exist_ok=True)

if data == "phantom":
    from edenkit.phantom import PhantomDataset

    images = PhantomDataset(n_images, size=image_size, seed=seed)
else:  # a real dataset on disk, e.g. data = "chestxray14" with data_root set (the paper profile)
    from edenkit.data.datasets import open_image_dataset

    images = open_image_dataset(data, data_root, "train", image_size)
first = images[0]["image"]
print(f"{len(images)} {data} images of {tuple(first.shape)}, views of {view_size} px, profile {profile}")
"""),
("md", r"""
## The parts at each level

The cuts are numbered row by row. At $n=1$ the single vertical cut separates the patient's right half
(image left) from the left half; $n=2$ adds a horizontal cut, $n=3$ another vertical one, and so on. The
parts tile the image exactly: every pixel belongs to one part at every level.
"""),
("code", r"""
fig = viz.show_parts(first, levels=(0, 1, 2, 3, 4), mode="paper")
fig.savefig(figures / "02_parts_per_level.png", dpi=120)
plt.show()
"""),
("md", r"""
## The paper's rule and the released code

The paper describes alternating binary cuts ($2^n$ parts). The authors' released training code
(`Adam-v1/data_loader.py`) instead tiles an $n \times n$ grid: at $n=1$ that is one cell (the whole image),
at $n=3$ nine cells. The two agree at $n = 0, 2, 4$, the levels of the paper's curriculum
($0 \rightarrow 2 \rightarrow 4$), so both reproduce the published training. edenkit defaults to the
paper's rule and offers the grid as `mode="grid"`. (When $n$ does not divide the image size, the
released grid's cells are rounded down and the last rows and columns are never sampled; `grid` mode
keeps that behaviour on purpose.)
"""),
("code", r"""
fig = viz.compare_modes(first, levels=(1, 2, 3, 4))
fig.savefig(figures / "02_paper_vs_grid.png", dpi=120)
plt.show()
for n in range(5):
    print(f"n = {n}: paper {len(part_boxes(image_size, image_size, n, 'paper')):2d} parts, "
          f"grid {len(part_boxes(image_size, image_size, n, 'grid')):2d} parts")
"""),
("md", r"""
## The same part in different patients

This is what makes parts useful. The same cell cut from different patients shows the same anatomy with
each patient's own shape, size, exposure and noise. Contrastive learning pushes an anchor's embedding
away from every other image in the queue, *including* these look-alikes: the "semantic collisions" that
the purposive pruner (notebook 03) removes.
"""),
("code", r"""
patients = [images[i]["image"] for i in range(min(n_images, len(images)))]
fig = viz.show_part_across_patients(patients, n=2, part=0)
fig.savefig(figures / "02_part0_across_patients.png", dpi=120)
plt.show()
"""),
("md", r"""
## An anchor and its two views

`AnatomyPairs` wraps any image dataset and yields training pairs: it draws the anchor, then two views
with the paper's augmentation (random resized crop of 20-100% of the anchor, colour jitter with
p = 0.8, Gaussian blur with p = 0.5, rotation up to 30 degrees). There is **no horizontal flip**: a flipped
chest puts the heart on the wrong side, and anatomy is exactly what Adam should learn. On grey images
only the brightness and contrast of the jitter change anything. Below, the box on the image is the anchor.
"""),
("code", r"""
pairs = AnatomyPairs(images, n=4, view_size=view_size, seed=seed)
fig = viz.show_anchor_views(pairs, indices=range(3))
fig.savefig(figures / "02_anchor_views.png", dpi=120)
plt.show()
"""),
("md", r"""
Eight views of one anchor show the range of the augmentation: scale and position of the crop, contrast,
blur and rotation. The two views of a training pair are two such draws.
"""),
("code", r"""
anchor = pairs.pair(0, part=5)
y0, x0, y1, x1 = anchor["box"].tolist()
fig = viz.show_views(first[:, y0:y1, x0:x1], TwoViewAugment(view_size), count=8, seed=seed)
plt.show()
"""),
("md", r"""
## Randomness you can reproduce

The anchor is drawn uniformly: over many draws every part is chosen about equally often. Every random
choice for item $i$ comes from a `torch.Generator` seeded by (seed, $n$, epoch, $i$), never from a global
random state, so a run gives the same pairs with any number of DataLoader workers, and a run resumed at
epoch $e$ sees exactly the pairs it would have seen. `set_epoch` draws new anchors for a new epoch.
"""),
("code", r"""
fig = viz.part_frequencies(first, n=4, draws=draws, seed=seed)
plt.show()

again = AnatomyPairs(images, n=4, view_size=view_size, seed=seed)
same = torch.equal(pairs[1]["view1"], again[1]["view1"])
print("same seed, same epoch -> identical pair:", same)
again.set_epoch(1)
print("epoch 0 anchor part:", pairs[1]["part"], "| epoch 1 anchor part:", again[1]["part"])
"""),
("md", r"""
## Explore

Pick an image, a level $n$, the anchor part, the mode and the epoch (the epoch changes the augmentation
draws). In a live Jupyter session the figure updates as you move the sliders.
"""),
("code", r"""
viz.decomposer_explorer(images, view_size=view_size, seed=seed)
"""),
("md", r"""
## What to take away

* The decomposer turns one radiograph into $2^n$ anatomical parts; the curriculum $n = 0 \rightarrow 2
  \rightarrow 4$ moves Adam from whole chests to quarter-lung zones.
* Two views of the same part are a positive pair; the same part in *other* patients ends up in the queue
  as a negative, which is the problem notebook 03 addresses.
* In the training code this is `AnatomyPairs(dataset, n, view_size, mode, seed)`; notebook 04 runs it.
"""),
])

"""Writes notebooks/01_anatomy_phantom.ipynb (no outputs): `python tools/build_nb01.py` from the repo root."""

from nbbuild import build

build("notebooks/01_anatomy_phantom.ipynb", [
("md", r"""
# 01 · The anatomy phantom: chest radiographs that know their anatomy

Adam learns from **anatomy**, and to see whether it did we need images whose anatomy we *know*: where the
heart is, which pixels are the sixth right rib, where the azygos arch lies. Real chest X-rays cannot ship
with the kit (every dataset needs a download, most a registration), and even when you have them they tell
you little: ChestX-ray14 has labels, SCR has five masks on 247 images, nobody has all of it at once.

So the kit draws its own radiographs. `edenkit.phantom` is a procedural **phantom**: each image is one
made-up patient whose body, lungs, heart, spine, ribs and clavicles are drawn from a seeded random
generator, turned into an X-ray-like picture, and returned *with* everything the generator knows:

* **masks**: right and left lung, heart, right and left clavicle, and every posterior rib on its own;
* the **ten landmarks** of the paper's locality experiment, as pixel coordinates;
* **findings** (cardiomegaly, pleural effusion, nodule, pneumothorax) with a prevalence you choose, and
  masks for the focal ones.

One convention to keep in mind all along: radiographs are shown as if you faced the patient, so the
patient's **right** lung is on the image's **left**.
"""),
("params", r"""
profile = "ci"
seed = 0
out_dir = "../runs/ci"
size = 128
n_gallery = 4
n_variation = 12
explorer_size = 128
gallery_prevalence = 0.25
"""),
("code", r"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from edenkit.phantom import FINDINGS, LANDMARKS, PhantomConfig, PhantomDataset, generate
from edenkit.viz import phantom as viz

figures = Path(out_dir) / "figures"
figures.mkdir(parents=True, exist_ok=True)
gallery_config = PhantomConfig(size=size, prevalence=dict.fromkeys(FINDINGS, gallery_prevalence))
print(f"profile {profile}: {size} px images, {n_gallery} in the gallery, {n_variation} to measure variation")
"""),
("md", r"""
## How a phantom radiograph is made

A radiograph is a shadow: X-rays cross the body and each tissue absorbs some of them, in proportion to its
density and to the length of the path through it. The film is bright where much was absorbed (bone, heart,
the abdomen) and dark where little was (the air-filled lungs). The phantom follows that physics, simplified:

1. **Shapes.** A patient is a few dozen numbers (body width, lung height, dome heights, heart size and tilt,
   rib spacing, ...) drawn in a *canonical* frame where the midline is at the centre. Lungs are ellipses cut
   by the diaphragm domes and the mediastinum; ribs are elliptic arcs from each vertebra out to the chest wall;
   clavicles are S-shaped curves. The masks and landmarks come straight from these shapes.
2. **Attenuation.** Soft-tissue thickness across the trunk, minus the air in each lung (deepest at its
   centre), plus heart, spine and bones (with a bright cortex), a branching tree of lung vessels from each
   hilum, and the findings.
3. **Exposure.** Attenuation becomes grey through an exposure curve with per-image exposure, contrast and
   gamma, then a slight blur and detector noise.

A small rotation, shift and scale per image (the patient never stands exactly the same way) moves everything
together, masks and landmarks included. Here is one patient, with its ground truth:
"""),
("code", r"""
patient = generate(seed, PhantomConfig(size=max(size, 192)))
fig = viz.anatomy_overlay(patient)
fig.savefig(figures / "01_one_patient.png", dpi=110, bbox_inches="tight")
plt.show()
"""),
("code", r"""
print(f"cardiothoracic ratio (heart width / thorax width, from the masks): {patient.info['cardiothoracic_ratio']:.2f}")
print(f"{len(patient.masks)} masks: {', '.join(list(patient.masks)[:7])}, ...")
for name in LANDMARKS:
    x, y = patient.landmarks[name]
    print(f"  {name:<22} x = {x:6.1f}  y = {y:6.1f}")
"""),
("md", r"""
The ten landmarks are the ones the paper embeds to test **locality** (notebook 05): each sits on its
structure, e.g. *right rib 6* on the mask of the sixth right posterior rib, the *hemidiaphragms* on the top of
each dome (outside the heart shadow), the *spinous process* on the spine, the *azygos arch* at the right
border of the mediastinum just above the right main bronchus, the *pulmonary artery* at the left border
below the aortic knob. Because the phantom knows where they are, no one has to click on 1,000 images.

## A gallery of patients

Every seed is a new patient. Each radiograph below is followed by its ground truth: lungs blue and green,
heart red, clavicles orange, ribs violet, findings in cyan (effusion), magenta (nodule) and yellow
(pneumothorax), landmarks as red dots. The figure is also written to `figures/01_gallery.png`.
"""),
("code", r"""
gallery_set = PhantomDataset(n_gallery, size=size, seed=seed, config=gallery_config)
patients = [gallery_set.sample(i) for i in range(n_gallery)]
fig = viz.gallery(patients, ncols=4)
fig.savefig(figures / "01_gallery.png", dpi=110, bbox_inches="tight")
plt.show()
"""),
("md", r"""
## Variation across patients

Locality is only interesting if patients differ: the same structure must be recognised in a body that is
wider, a heart that is larger, a dome that is higher, an image taken slightly rotated. Below: the mean of many
patients, where they differ most (the per-pixel standard deviation is high at organ borders, which move from
patient to patient), the outlines of every heart and pair of lungs, and where each landmark falls.
"""),
("code", r"""
cohort = PhantomDataset(n_variation, size=size, seed=seed + 1)
crowd = [cohort.sample(i) for i in range(len(cohort))]
fig = viz.variation(crowd)
fig.savefig(figures / "01_variation.png", dpi=110, bbox_inches="tight")
plt.show()
for name, value in viz.variation_numbers(crowd).items():
    print(f"{name:<48} {value:.3f}")
"""),
("md", r"""
Each landmark forms a tight cloud of its own, and the clouds do not overlap: in pixel space the ten
landmarks are already separable *by position*. What notebook 05 asks is harder: is a landmark recognisable
from the **patch around it alone**, without knowing where the patch came from? That is what an anatomy-aware
embedding should give, and what plain contrastive learning on whole images does not.

## Anatomy is a part-whole hierarchy

The chest holds two hemithoraces and the mediastinum between them; a hemithorax holds a lung, a rib cage and
a clavicle; the rib cage holds ribs. The phantom's masks make this concrete: every whole below is exactly
the union of its parts' masks. Adam's decomposer (notebook 02) walks down such a hierarchy without masks,
by cutting the image into ever smaller parts, and compositionality (notebook 06) asks whether the embedding
of a whole is the sum of the embeddings of its parts.
"""),
("code", r"""
fig = viz.hierarchy(patient)
fig.savefig(figures / "01_hierarchy.png", dpi=110, bbox_inches="tight")
plt.show()
"""),
("md", r"""
## Findings

Each finding is drawn with a prevalence you set in `PhantomConfig(prevalence=...)`, independently of the
others (multi-label, like ChestX-ray14). Turning a finding on does not redraw the patient: the same seed keeps
its anatomy, pose and exposure, so the pictures below differ *only* by the finding:

* **cardiomegaly**: the heart is drawn with a cardiothoracic ratio above 0.5 (normal hearts stay below);
* **effusion**: fluid fills one costophrenic angle and climbs along the chest wall (a meniscus), hiding the dome;
* **nodule**: a small round density inside a lung;
* **pneumothorax**: air between lung and chest wall at the apex and side, darker and without vessel
  markings, bounded by the thin white line of the collapsed lung's pleura.
"""),
("code", r"""
fig = viz.findings(seed, size=max(size, 160))
fig.savefig(figures / "01_findings.png", dpi=110, bbox_inches="tight")
plt.show()
"""),
("md", r"""
## Explore

Move the seed to meet new patients, change the size, tick findings on and off, hide the overlay to see the
radiograph alone. (The explorer needs a live Jupyter kernel: in a saved or headless notebook the controls
do nothing.)
"""),
("code", r"""
viz.explorer(size=explorer_size, seed=seed)
"""),
("md", r"""
## What the rest of the kit does with it

* `PhantomDataset(n, size, seed)` is a torch `Dataset`: item *i* is always the same patient, in every worker
  and every epoch. Pretraining (notebook 04) draws thousands of them at 64 to 128 px.
* `python -m edenkit phantom export --layout chestxray14` (or `jsrt_scr`) writes phantoms in the real
  datasets' on-disk layouts, so the real loaders (notebook 09) can be run end to end without any download.
* `python -m edenkit phantom bench` prints how many phantoms per second one core draws.

The phantom is a laboratory, not a substitute: its anatomy is simpler and more regular than a real chest,
so numbers measured on it show *whether* an idea works and how methods compare, not what they would score on
real radiographs. The `paper` profile of the later notebooks runs on the real datasets.
"""),
])

from nbbuild import build

build("notebooks/00_welcome.ipynb", [
("md", r"""
# 00 · Welcome to edenkit

**edenkit** teaches, reproduces and extends **Adam** (*autodidactic dense anatomical model*) and its dense
embeddings **Eve** (*embedding vectors*): self-supervised learning for chest X-rays that learns from
*anatomy* (Hosseinzadeh Taher, Gotway & Liang, MICCAI DART 2023; extended as Adam-v2 at CVPR 2024).

Human anatomy is a hierarchy, and a good embedding of it should show two properties:

* **locality**: every anatomical structure is morphologically distinct, so the same structure in two
  patients should embed close together and two different structures far apart;
* **compositionality**: every structure is part of a larger whole, so the embedding of a whole should be
  close to the aggregate of the embeddings of its parts.

Adam gets there with a plain MoCo-v2 student/teacher and three additions, each taught in its own notebook:
an **anatomy decomposer** that cuts the image into ever finer parts, a **purposive pruner** that stops the
contrastive loss from pushing away the same anatomy seen in another patient, and a **coarse-to-fine
curriculum** (whole image, then 2x2 parts, then 4x4 parts).
"""),
("md", r"""
## The map

| notebook | what you learn | what it reproduces from the paper |
|---|---|---|
| `01_anatomy_phantom` | the kit's procedural chest radiographs with ground-truth anatomy; anatomy as a part-whole hierarchy | (the data every other notebook runs on) |
| `02_anatomy_decomposer` | granularity levels n = 0..4, anchors and their two augmented views | Fig. 1 (the decomposer) |
| `03_purposive_pruner` | semantic collisions among queue negatives; what a similarity threshold removes | the pruner and its ablation |
| `04_pretraining` | the coarse-to-fine curriculum, run end to end, and its training log | the pretraining recipe (and the torchrun command for GPUs) |
| `05_locality` | t-SNE of landmark embeddings, kNN landmark identification | the locality figure (10 landmarks) |
| `06_compositionality` | cosine between E(whole) and the sum of E(parts) | the compositionality density plot |
| `07_fewshot_segmentation` | heart and clavicle segmentation from 3 to 24 labelled images | the few-shot table |
| `08_finetuning` | full fine-tuning for segmentation and classification | the 9-task transfer figure (on the tasks available) |
| `09_real_data` | the real datasets, their formats, the cache, and how to start the `paper` profile | (data preparation) |

Every notebook takes a **profile**:

* `ci`: seconds per notebook on two CPU cores, tiny phantom images (it exists so the tests can run every notebook);
* `demo`: a CPU laptop, tens of minutes for all notebooks, with honest Adam vs MoCo-v2 vs random-init comparisons on the phantom;
* `paper`: GPU servers, the real datasets and the paper's hyper-parameters.

Run them all headless with `python -m edenkit notebooks --profile demo` (that is `make demo`), or open
them one by one in JupyterLab. Every number the notebooks show comes from a run the kit performs; the
paper's numbers come from `edenkit.paper` and are labelled as the paper's.
"""),
("params", r"""
profile = "ci"
seed = 0
out_dir = "../runs/ci"
"""),
("code", r"""
import json
from pathlib import Path

import edenkit
from edenkit.doctor import format_report, report

out_path = Path(out_dir)
out_path.mkdir(parents=True, exist_ok=True)
print(edenkit.__version__, "| profile:", profile, "| outputs under", out_path)
"""),
("md", r"""
## What this machine offers

`python -m edenkit doctor` prints the same report. `device` tells where training will run: a usable GPU
makes the `paper` profile practical; on a CPU the `ci` and `demo` profiles are the ones to run.
"""),
("code", r"""
info = report()
print(format_report(info))
(out_path / "doctor.json").write_text(json.dumps(info, indent=2))
"""),
])

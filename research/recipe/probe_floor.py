"""Landmark-probe reference points on the probe set of each phantom version (no training): predict the mean,
pixel kNN (k=5, cosine on 64-px images), as harness.monitors computes lm_err (first 384 bank, last 128 test)."""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))
from common import phantom_u8  # noqa: E402

for version in (1, 2):
    pr = phantom_u8(512, 128, 777, version, with_landmarks=True)
    y = pr["landmarks"].float()
    n = len(y) * 3 // 4
    mean_err = (y[:n].mean(0, keepdim=True) - y[n:]).norm(dim=-1).mean().item()
    x = F.interpolate(pr["images"].float() / 255, size=(64, 64), mode="bilinear", antialias=True).flatten(1)
    f = F.normalize(x, dim=1)
    idx = (f[n:] @ f[:n].T).topk(5, dim=1).indices
    knn_err = (y[:n][idx].mean(1) - y[n:]).norm(dim=-1).mean().item()
    print(f"v{version}: predict-the-mean {mean_err:.2f} px, pixel kNN {knn_err:.2f} px")

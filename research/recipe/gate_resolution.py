"""Does a larger view keep more of a phantom-v2 patient through the paper's augmentation? (no training)

gate.py's measure (partner retrieval among 256 held-out images, view1 -> nearest view2, chance 1/256; pixels by
centred cosine and a random-init ResNet-18 with eval BN) at n = 0 and 2 under the paper's crop (0.2-1) and
rotation (30), for three (image, view) sizes: the demo's 128 -> 64, and 256 -> 64, 256 -> 128.
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))
from common import phantom_u8  # noqa: E402
from gate import feats, top1, views  # noqa: E402

from edenkit.moco import MoCo  # noqa: E402


def main():
    torch.manual_seed(0)
    net = MoCo("resnet18", 128, 1024, 0.99, 0.2, None, 2).encoder_q.backbone.to(memory_format=torch.channels_last)
    net.eval()
    print("| image -> view | n | pixel ret | random-R18 ret |\n|---|---|---|---|")
    for image, view in ((128, 64), (256, 64), (256, 128)):
        u8 = phantom_u8(256, image, 1001, 2)
        for n in (0, 2):
            px, rn = [], []
            for seed in (5, 6, 7):
                a, b = views(u8, n, (0.2, 1.0), 30.0, seed, view)
                fa, fb = a.flatten(1), b.flatten(1)
                px.append(top1(F.normalize(fa - fa.mean(0), dim=1), F.normalize(fb - fb.mean(0), dim=1)))
                rn.append(top1(feats(net, a), feats(net, b)))
            f = lambda v: f"{sum(v) / len(v):.3f} ({min(v):.3f}-{max(v):.3f})"  # noqa: E731
            print(f"| {image} -> {view} | {n} | {f(px)} | {f(rn)} |", flush=True)


if __name__ == "__main__":
    main()

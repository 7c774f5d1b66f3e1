"""Question 1, no training: does instance content survive the paper's augmentation on phantom v1 / v2?

Partner retrieval among 256 held-out images (view1 -> nearest view2, chance 1/256) by (a) pixels (centred
cosine) and (b) a random-init ResNet-18 (the kit's MoCo backbone, eval BN, global-pool features), at
granularity n = 0, 2, 4 (anchors = one part of each image, as AnatomyPairs draws them), 64-px views from
128-px images. Three seeds of the augmentation draw; mean (min-max).
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "moco_dynamics"))
from common import phantom_u8  # noqa: E402
from harness import AMP, CPU  # noqa: E402

from edenkit import engine  # noqa: E402
from edenkit.augmentation import TwoViewAugment  # noqa: E402
from edenkit.decomposer import AnatomyPairs  # noqa: E402
from edenkit.moco import MoCo  # noqa: E402
from edenkit.pretrain_data import ImageTensor  # noqa: E402

AUGS = {"paper crop0.2-1 rot30": ((0.2, 1.0), 30.0), "mild crop1 rot5 (demo_cpu)": ((1.0, 1.0), 5.0)}


def views(u8, n, scale, rot, seed, view=64):
    p = AnatomyPairs(ImageTensor(u8), n, view, seed=seed, augment=TwoViewAugment(view, scale=scale, degrees=rot))
    it = [p[i] for i in range(len(p))]
    return torch.stack([i["view1"] for i in it]), torch.stack([i["view2"] for i in it])


def top1(a, b):
    return ((a @ b.T).argmax(1) == torch.arange(len(a))).float().mean().item()


@torch.no_grad()
def feats(net, x):
    with engine.autocast(CPU, AMP):
        return F.normalize(net(x.contiguous(memory_format=torch.channels_last)).float(), dim=1)


def main():
    torch.manual_seed(0)
    net = MoCo("resnet18", 128, 1024, 0.99, 0.2, None, 2).encoder_q.backbone.to(memory_format=torch.channels_last)
    net.eval()
    print("| phantom | augmentation | n | pixel ret | random-R18 ret |\n|---|---|---|---|---|")
    for version in (1, 2):
        u8 = phantom_u8(256, 128, 1001, version)
        for aug, (scale, rot) in AUGS.items():
            for n in (0, 2, 4):
                px, rn = [], []
                for seed in (5, 6, 7):
                    a, b = views(u8, n, scale, rot, seed)
                    fa, fb = a.flatten(1), b.flatten(1)
                    px.append(top1(F.normalize(fa - fa.mean(0), dim=1), F.normalize(fb - fb.mean(0), dim=1)))
                    rn.append(top1(feats(net, a), feats(net, b)))
                f = lambda v: f"{sum(v) / len(v):.3f} ({min(v):.3f}-{max(v):.3f})"  # noqa: E731
                print(f"| v{version} | {aug} | {n} | {f(px)} | {f(rn)} |", flush=True)


if __name__ == "__main__":
    main()

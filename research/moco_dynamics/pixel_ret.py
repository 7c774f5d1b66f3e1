"""Instance retrieval by pixels (view1 -> nearest view2 among N, centered cosine): how much instance content
survives the augmentation, independent of any network."""
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
from edenkit.decomposer import AnatomyPairs
from edenkit.augmentation import TwoViewAugment
from harness import digits_images

from edenkit.pretrain_data import ImageTensor, phantom_images


def ret(u8, view, scale, rot):
    p = AnatomyPairs(ImageTensor(u8), 0, view, seed=5, augment=TwoViewAugment(view, scale=scale, degrees=rot))
    it = [p[i] for i in range(len(p))]
    a = torch.stack([i["view1"] for i in it]).flatten(1); b = torch.stack([i["view2"] for i in it]).flatten(1)
    a = F.normalize(a - a.mean(0), dim=1); b = F.normalize(b - b.mean(0), dim=1)
    return ((a @ b.T).argmax(1) == torch.arange(len(a))).float().mean().item()
ph = phantom_images(256, 128, 1001, "cache"); dg = digits_images(32)[0][1297:1297 + 256]
for name, u8, view in (("phantom", ph, 64), ("digits", dg, 32)):
    for scale, rot in (((1.0, 1.0), 5), ((0.6, 1.0), 15), ((0.2, 1.0), 30)):
        print(f"{name} crop {scale} rot {rot}: pixel retrieval top-1 among 256 = {ret(u8, view, scale, rot):.3f} (chance 0.004)")

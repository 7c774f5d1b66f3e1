"""Two-view augmentation for single-channel anchors (MoCo-v2 / Adam positives).

Each view, independently, as in the paper and the released code (same order):
RandomResizedCrop(size, scale 0.2-1.0) -> ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8 -> Gaussian blur
(sigma 0.1-2.0) with p=0.5 -> RandomRotation(30 degrees). No horizontal flip (anatomy is not left-right
symmetric) and no random grayscale (the images are grey already). Normalization is not done here:
every model calls ``to_backbone_input``, so views stay in [0, 1].

On a single-channel image only brightness and contrast of the colour jitter do anything; torchvision
returns the image unchanged for saturation and hue (as PIL does). They are kept so the draws match the
paper's settings, and cost nothing.

The blur's sigma range is given in pixels of a 224-px view (the paper's size) and scaled to ``size``,
with a kernel of about 10% of the view (as in SimCLR), so a small demo view is blurred as much,
relative to its content, as a 224-px one. The blur runs as two 1-D passes of torchvision's
``gaussian_blur`` (the same result as its 2-D kernel, about 4x faster at 224 px on one CPU thread).
Rotation uses bilinear interpolation with black corners.

Randomness: torchvision's random transforms draw from the global torch RNG. ``TwoViewAugment`` runs them
inside ``torch.random.fork_rng`` seeded from the caller's ``torch.Generator``, so that generator is the
only source of randomness and the global RNG state is left untouched.

Threads: the views are small tensors, for which intra-op threads cost more than they save (on a busy
2-core machine a 2-thread blur stalls for milliseconds). DataLoader workers already run with one thread;
the augmentation also runs on one thread in the main process (``num_workers=0``, notebooks), which
made it 5-10x faster there on our 2-core machine under load.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

PAPER_VIEW_SIZE = 224


class TwoViewAugment:
    """``TwoViewAugment(size)(anchor [1, h, w], generator) -> (view1, view2)``, each [1, size, size]."""

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.2, 1.0),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_p: float = 0.5,
        degrees: float = 30.0,
    ):
        if size < 8:
            raise ValueError(f"TwoViewAugment: view size must be >= 8 pixels, got {size}")
        self.size = size
        relative = size / PAPER_VIEW_SIZE
        sigma = (blur_sigma[0] * relative, blur_sigma[1] * relative)
        kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # odd, about 10% of the view
        brightness, contrast, saturation, hue = jitter
        self.view = v2.Compose(
            [
                v2.RandomResizedCrop(size, scale=scale, antialias=True),
                v2.RandomApply([v2.ColorJitter(brightness, contrast, saturation, hue)], p=jitter_p),
                v2.RandomApply([SeparableGaussianBlur(kernel, sigma)], p=blur_p),
                v2.RandomRotation(degrees, interpolation=InterpolationMode.BILINEAR),
            ]
        )

    def __call__(self, anchor: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if anchor.ndim != 3 or anchor.shape[0] != 1 or not anchor.is_floating_point():
            raise ValueError(
                f"TwoViewAugment expects a float anchor [1, h, w] in [0, 1], got {anchor.dtype} {tuple(anchor.shape)}"
            )
        seed = int(torch.randint(2**62, (), generator=generator))
        with torch.random.fork_rng(devices=[]), one_thread():
            torch.manual_seed(seed)
            return self.view(anchor), self.view(anchor)

    def __repr__(self) -> str:
        return f"TwoViewAugment({self.view})"


@contextlib.contextmanager
def one_thread():
    """Run the block with one intra-op thread, then restore the previous setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class SeparableGaussianBlur(nn.Module):
    """``v2.GaussianBlur(kernel, sigma)`` computed as a horizontal then a vertical 1-D pass.

    A Gaussian kernel is the outer product of two 1-D kernels and reflect padding commutes with a
    per-row (or per-column) convolution, so the result equals the 2-D blur up to float rounding.
    Sigma is drawn like torchvision does, from the global torch RNG (seeded by ``TwoViewAugment``).
    """

    def __init__(self, kernel_size: int, sigma: tuple[float, float]):
        super().__init__()
        self.kernel_size = kernel_size
        self.sigma = sigma

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        s = torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item()
        image = F.gaussian_blur(image, [self.kernel_size, 1], [s, s])
        return F.gaussian_blur(image, [1, self.kernel_size], [s, s])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}"

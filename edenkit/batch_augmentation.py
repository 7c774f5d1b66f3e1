"""Two-view augmentation of a whole batch on its device: ``TwoViewAugment``'s recipe as batched tensor ops.

The CPU path (``edenkit.augmentation.TwoViewAugment``) augments one anchor at a time in DataLoader
workers; at the paper's settings (1024-px images, 224-px views) that caps a GPU at the CPU's pace. Here
the workers only read and decompose (``edenkit.anatomy_anchors``) and ``BatchTwoViewAugment`` makes
both views of every anchor of a batch in a few operations on the batch's device (CPU or GPU):

1. crop, resize and rotation as one per-view sampling grid and ``grid_sample`` (bilinear); views that
   shrink their crop sample an image pyramid of 2x2 averages, blended between the two levels around
   the shrink factor (trilinear mip-mapping, as GPU textures do), in place of torchvision's antialiased
   resize;
2. brightness and contrast jitter (per view, in the drawn order), with probability ``jitter_p``;
3. Gaussian blur with a per-view sigma, with probability ``blur_p``: two 1-D passes of one grouped
   convolution over all views (reflect padding, torchvision's kernel);
4. the rotation's black corners, with the same soft bilinear edge as ``F.rotate``.

Same distributions as the CPU path: ``sample_params`` draws what ``TwoViewAugment``'s torchvision
transforms draw (``RandomResizedCrop``'s ten attempts and central fallback, with Python's rounding;
``RandomApply``'s coin; ``ColorJitter``'s factors and the order of brightness and contrast from its
random permutation; the blur's sigma; the rotation angle), from the given generator. Saturation and
hue are not drawn: on a grey image torchvision (like PIL) returns the image unchanged for both, so the
CPU path draws them for nothing. Normalization is left to ``to_backbone_input`` as on the CPU path:
views are float32 in [0, 1].

What differs at the pixel level, by construction: the CPU path resizes the crop and then rotates the
resized view (two interpolations), here the anchor is sampled once at the composed coordinates
(slightly sharper); the jitter and the blur act on the rotated view with its corners filled by the
view's edge, and the corners are blackened last (the CPU path blurs before rotating, reflecting at the
crop's border); the contrast jitter's mean is taken over a quarter-resolution sample of the unrotated
crop (the CPU path: over the whole crop).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edenkit.augmentation import PAPER_VIEW_SIZE

VIEWS = 2  # views per anchor
CROP_ATTEMPTS = 10  # RandomResizedCrop's attempts before its central fallback
RATIO = (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop's default aspect-ratio range
#: Keys of a parameter dict; each value has a leading shape (e.g. [views] or [B, views]).
PARAM_KEYS = ("top", "left", "height", "width", "angle", "jitter", "brightness", "contrast", "brightness_first",
              "blur", "sigma")
_UNIFORMS = 2 * CROP_ATTEMPTS + 2 + 7  # uniforms drawn per view, in one block
_DTYPES = {"top": torch.long, "left": torch.long, "height": torch.long, "width": torch.long, "jitter": torch.bool,
           "brightness_first": torch.bool, "blur": torch.bool}


class BatchTwoViewAugment:
    """``BatchTwoViewAugment(size)(anchors [B, 1, h, w], generator) -> (view1, view2)``, each [B, 1, size, size].

    The arguments are ``TwoViewAugment``'s (the paper's values by default), with ``jitter`` as
    (brightness, contrast, saturation, hue) of which only the first two act on a grey image. The blur's
    sigma range is for a 224-px view and scaled to ``size``, with a kernel of about 10% of the view.

    Anchors are uint8 (divided by 255) or float in [0, 1], on any device; the views come out on it.
    ``sample_params(heights, widths, generator)`` draws the parameters of views of anchors of those
    sizes on the CPU, and ``apply(anchors, params)`` makes them; ``__call__`` does both for a batch.
    """

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
            raise ValueError(f"BatchTwoViewAugment: view size must be >= 8 pixels, got {size}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"BatchTwoViewAugment: scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.size = size
        self.scale = (float(scale[0]), float(scale[1]))
        brightness, contrast = float(jitter[0]), float(jitter[1])
        self.brightness = (max(0.0, 1.0 - brightness), 1.0 + brightness)  # as ColorJitter's ranges
        self.contrast = (max(0.0, 1.0 - contrast), 1.0 + contrast)
        self.jitter_p, self.blur_p, self.degrees = float(jitter_p), float(blur_p), float(degrees)
        relative = size / PAPER_VIEW_SIZE
        self.sigma = (blur_sigma[0] * relative, blur_sigma[1] * relative)
        self.kernel_size = max(3, int(0.1 * size) // 2 * 2 + 1)  # odd, about 10% of the view (as TwoViewAugment)
        self.mean_size = max(8, size // 4)  # the unrotated crop sample that the contrast mean is taken over

    def __repr__(self) -> str:
        return (f"BatchTwoViewAugment(size={self.size}, scale={self.scale}, brightness={self.brightness}, "
                f"contrast={self.contrast}, jitter_p={self.jitter_p}, sigma={self.sigma}, "
                f"kernel_size={self.kernel_size}, blur_p={self.blur_p}, degrees={self.degrees})")

    # --------------------------------------------------------------------------------------- parameters
    def sample_params(self, heights, widths, generator: torch.Generator, views: int = VIEWS) -> dict[str, torch.Tensor]:
        """Parameters of ``views`` views of each of ``len(heights)`` anchors, drawn from ``generator``.

        The same as ``unpack_params(sample_param_table(...))``.

        ``heights``, ``widths``: the anchors' sizes in pixels (sequences of ints). Returns
        ``PARAM_KEYS`` -> CPU tensors [len(heights), views]: the crop box in anchor pixels (``top``,
        ``left``, ``height``, ``width``, as ``RandomResizedCrop``), ``angle`` in degrees
        (counter-clockwise, as ``F.rotate``), ``jitter`` / ``blur`` (applied or not), ``brightness``
        and ``contrast`` factors, ``brightness_first`` (its order in ``ColorJitter``'s permutation)
        and ``sigma`` (pixels of this view size). Factors and sigma are drawn whether applied or not.
        """
        return unpack_params(self.sample_param_table(heights, widths, generator, views))

    def sample_param_table(self, heights, widths, generator: torch.Generator, views: int = VIEWS) -> torch.Tensor:
        """``sample_params`` packed into one float64 tensor [len(heights), views, len(PARAM_KEYS)].

        What a worker returns per sample: one small tensor (a dict of eleven costs more to make).
        """
        # Plain Python per view: a worker draws two views per sample, where the per-call overhead of
        # tensor ops would cost more than reading the image. The uniforms come from the torch generator.
        heights, widths = [int(h) for h in heights], [int(w) for w in widths]
        if len(heights) != len(widths):
            raise ValueError(f"sample_params: {len(heights)} heights but {len(widths)} widths")
        u = torch.rand(len(heights), views, _UNIFORMS, generator=generator, dtype=torch.float64).tolist()
        rows = [self._view(u_view, height, width) for u_anchor, height, width in zip(u, heights, widths)
                for u_view in u_anchor]
        return torch.tensor(rows, dtype=torch.float64).view(len(heights), views, len(PARAM_KEYS))

    def _view(self, u: list[float], height: int, width: int) -> tuple:
        """One view's parameters (``PARAM_KEYS`` order) from its ``_UNIFORMS`` uniforms."""
        top, left, h, w = _resized_crop_box(height, width, u[: 2 * CROP_ATTEMPTS + 2], self.scale)
        u = u[2 * CROP_ATTEMPTS + 2 :]
        return (top, left, h, w,
                _uniform(u[0], -self.degrees, self.degrees),
                u[1] < self.jitter_p,  # RandomApply skips when rand >= p
                _uniform(u[2], *self.brightness),
                _uniform(u[3], *self.contrast),
                u[4] < 0.5,  # brightness before contrast: where 0 precedes 1 in a random permutation of 4
                u[5] < self.blur_p,
                _uniform(u[6], *self.sigma))

    # ----------------------------------------------------------------------------------------- the views
    def __call__(self, anchors: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        _check_anchors(anchors)
        batch, _, height, width = anchors.shape
        params = self.sample_params([height] * batch, [width] * batch, generator)
        views = self.apply(anchors, params)
        return views[:, 0], views[:, 1]

    @torch.no_grad()
    def apply(self, anchors: torch.Tensor, params: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """The views [B, V, 1, size, size] (float32 in [0, 1]) of ``anchors`` [B, 1, h, w] with ``params``
        (a dict of [B, V] tensors, or their packed table [B, V, len(PARAM_KEYS)]).

        Crop boxes are in pixels of the anchor tensor; an anchor padded at its bottom or right (see
        ``AnatomyAnchors``) is sampled only inside its boxes.
        """
        _check_anchors(anchors)
        device = anchors.device
        if isinstance(params, torch.Tensor):
            p = unpack_params(params.to(device, non_blocking=True))
        else:
            p = {key: params[key].to(device, non_blocking=True) for key in PARAM_KEYS}
        batch, views = p["angle"].shape
        if batch != anchors.shape[0]:
            raise ValueError(f"BatchTwoViewAugment.apply: {anchors.shape[0]} anchors but params for {batch}")
        size, mean_size = self.size, self.mean_size
        image = anchors.float().div_(255.0) if anchors.dtype == torch.uint8 else anchors.float()

        # 1. Crop, rotate and resize: one grid over all views (and the contrast-mean samples).
        view_grid, coverage = self._view_grid(p, image.shape[-2:], rotate=True, points=size)
        mean_grid, _ = self._view_grid(p, image.shape[-2:], rotate=False, points=mean_size)
        grid = torch.cat([view_grid.flatten(1, 3), mean_grid.flatten(1, 3)], dim=1)  # [B, P, 2]
        samples = _sample_pyramid(image, grid, self._levels(p, image.shape[-2:]), size * size, mean_size**2)
        x = samples[:, : views * size * size].reshape(batch, views, size, size)
        crop_sample = samples[:, views * size * size :].reshape(batch, views, -1)

        # 2. Brightness and contrast, in the drawn order; factors of 1 where the jitter is not applied.
        on = p["jitter"]
        b = torch.where(on, p["brightness"], 1.0).float()[..., None, None]
        c = torch.where(on, p["contrast"], 1.0).float()[..., None, None]
        first = p["brightness_first"][..., None, None]
        mean_raw = crop_sample.mean(-1)[..., None, None]
        mean_bright = (b[..., 0] * crop_sample).clamp(0, 1).mean(-1)[..., None, None]
        f1, r1 = torch.where(first, b, c), torch.where(first, 0.0, mean_raw)
        f2, r2 = torch.where(first, c, b), torch.where(first, mean_bright, 0.0)
        x = (f1 * x + (1 - f1) * r1).clamp_(0, 1)
        x = (f2 * x + (1 - f2) * r2).clamp_(0, 1)

        # 3. Gaussian blur, one kernel per view (a unit impulse where the blur is not applied).
        x = _blur(x.reshape(1, batch * views, size, size), self._kernels(p).reshape(batch * views, -1))

        # 4. The rotation's black corners.
        return (x.reshape(batch, views, size, size) * coverage).unsqueeze(2)

    def _view_grid(self, p: dict, shape, rotate: bool, points: int) -> tuple[torch.Tensor, torch.Tensor]:
        """grid_sample coordinates [B, V, points, points, 2] of the views in the anchor, and the coverage
        [B, V, points, points] of the rotated view square (1 inside, falling to 0 over one pixel)."""
        height, width = shape
        device = p["angle"].device
        axis = (torch.arange(points, device=device, dtype=torch.float32) + 0.5) * (2.0 / points) - 1.0
        yo, xo = axis.view(points, 1), axis.view(1, points)
        if rotate:  # as F.rotate: content turns counter-clockwise, so each pixel samples its position turned clockwise (y down)
            theta = torch.deg2rad(p["angle"].float())[..., None, None]
            cos, sin = theta.cos(), theta.sin()
            xv = cos * xo - sin * yo
            yv = sin * xo + cos * yo
        else:
            xv, yv = xo.expand(points, points), yo.expand(points, points)
            xv, yv = xv.expand(*p["angle"].shape, -1, -1), yv.expand(*p["angle"].shape, -1, -1)
        half_pixel = 1.0 / points
        coverage = _edge_coverage(xv, points) * _edge_coverage(yv, points)
        # The view's edge pixels extend past its square (no anchor content outside the crop is sampled).
        xv = xv.clamp(-1 + half_pixel, 1 - half_pixel)
        yv = yv.clamp(-1 + half_pixel, 1 - half_pixel)
        top, left = p["top"].float()[..., None, None], p["left"].float()[..., None, None]
        h, w = p["height"].float()[..., None, None], p["width"].float()[..., None, None]
        xa = (left + (xv + 1) * 0.5 * w) * (2.0 / width) - 1  # align_corners=False, as F.resize
        ya = (top + (yv + 1) * 0.5 * h) * (2.0 / height) - 1
        return torch.stack([xa, ya], dim=-1), coverage

    def _levels(self, p: dict, shape) -> torch.Tensor:
        """Fractional pyramid level of each view [B, V]: log2 of how many anchor pixels a view pixel spans
        along the crop's shorter side (0 when the crop is enlarged)."""
        shrink = torch.minimum(p["height"], p["width"]).float() / self.size
        return torch.log2(shrink.clamp(min=1.0))

    def _kernels(self, p: dict) -> torch.Tensor:
        """1-D Gaussian kernels [B, V, k] as torchvision's ``_get_gaussian_kernel1d``; an impulse if no blur."""
        k = self.kernel_size
        lim = (k - 1) / (2.0 * math.sqrt(2.0))
        x = torch.linspace(-lim, lim, k, device=p["sigma"].device)
        kernels = torch.softmax(-(x / p["sigma"].float()[..., None]).pow(2), dim=-1)
        impulse = torch.zeros(k, device=x.device)
        impulse[k // 2] = 1.0
        return torch.where(p["blur"][..., None], kernels, impulse)


def unpack_params(table: torch.Tensor) -> dict[str, torch.Tensor]:
    """A packed parameter table [..., len(PARAM_KEYS)] -> ``PARAM_KEYS`` -> tensors [...] (on its device)."""
    if table.shape[-1] != len(PARAM_KEYS):
        raise ValueError(f"a parameter table has {len(PARAM_KEYS)} columns, got shape {tuple(table.shape)}")
    return {key: table[..., i].to(_DTYPES.get(key, table.dtype)) for i, key in enumerate(PARAM_KEYS)}


def _uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * u


def _resized_crop_box(height: int, width: int, u: list[float], scale) -> tuple[int, int, int, int]:
    """``v2.RandomResizedCrop.make_params`` (top, left, height, width) from uniforms [2 * attempts + 2]."""
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for attempt in range(CROP_ATTEMPTS):
        target_area = area * _uniform(u[attempt], *scale)
        aspect = math.exp(_uniform(u[CROP_ATTEMPTS + attempt], *log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = math.floor(u[-2] * (height - h + 1))  # uniform integers in [0, height - h]
            left = math.floor(u[-1] * (width - w + 1))
            return top, left, h, w
    in_ratio = width / height  # no attempt fits: the central crop, its aspect ratio clamped to RATIO
    if in_ratio < RATIO[0]:
        w, h = width, round(width / RATIO[0])
    elif in_ratio > RATIO[1]:
        w, h = round(height * RATIO[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _edge_coverage(coordinate: torch.Tensor, points: int) -> torch.Tensor:
    """Bilinear weight that a view pixel at normalized ``coordinate`` puts on pixels inside the view."""
    pixel = (coordinate + 1) * (points / 2.0) - 0.5  # pixel centres at 0 .. points - 1
    return torch.minimum(pixel + 1, points - pixel).clamp_(0, 1)


def _sample_pyramid(image: torch.Tensor, grid: torch.Tensor, levels: torch.Tensor, view_points: int,
                    mean_points: int) -> torch.Tensor:
    """Bilinear samples [B, P] of ``image`` [B, 1, H, W] at ``grid`` [B, P, 2], blended between the two
    pyramid levels around each view's (fractional) level [B, V], as trilinear mip-mapping does. Each
    view has ``view_points`` points in the first part of P and ``mean_points`` in the second."""
    pyramid = [image]
    while len(pyramid) <= int(levels.max().ceil()) and all(s % 2 == 0 and s >= 4 for s in pyramid[-1].shape[-2:]):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))  # exact halves: normalized coordinates stay the same
    point_level = torch.cat([levels.repeat_interleave(view_points, dim=1),
                             levels.repeat_interleave(mean_points, dim=1)], dim=1).clamp(max=len(pyramid) - 1)
    samples = torch.zeros(grid.shape[:2], device=image.device)
    for level, level_image in enumerate(pyramid):
        weight = (1 - (point_level - level).abs()).clamp_(min=0)
        if bool((weight > 0).any()):
            sampled = F.grid_sample(level_image, grid.unsqueeze(1), mode="bilinear", padding_mode="border",
                                    align_corners=False)[:, 0, 0]
            samples += weight * sampled
    return samples


def _blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Separable blur of ``x`` [1, N, s, s] with one 1-D kernel per channel ``kernels`` [N, k] (reflect padding)."""
    channels, k = kernels.shape
    pad = k // 2
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), kernels.view(channels, 1, 1, k), groups=channels)
    return F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), kernels.view(channels, 1, k, 1), groups=channels)


def _check_anchors(anchors: torch.Tensor) -> None:
    if anchors.ndim != 4 or anchors.shape[1] != 1:
        raise ValueError(f"BatchTwoViewAugment expects anchors [B, 1, h, w], got shape {tuple(anchors.shape)}")
    if anchors.dtype != torch.uint8 and not anchors.is_floating_point():
        raise ValueError(f"BatchTwoViewAugment expects uint8 or float anchors, got {anchors.dtype}")

"""Batched on-device augmentation: the CPU path's distributions, its pixels for given parameters, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

import edenkit.augmentation as augmentation
from edenkit.augmentation import SeparableGaussianBlur, TwoViewAugment
from edenkit.batch_augmentation import PARAM_KEYS, BatchTwoViewAugment, unpack_params
from edenkit.phantom import generate


def phantom(size=96, seed=3):
    return torch.from_numpy(generate(seed, size=size).image)[None].float()


def record_cpu_params(augment: TwoViewAugment, anchor: torch.Tensor, calls: int, seed: int = 0) -> list[dict]:
    """What ``TwoViewAugment``'s torchvision transforms draw, view by view (spies on their draws)."""
    crop, jitter_apply, blur_apply, rotation = augment.view.transforms
    jitter, blur = jitter_apply.transforms[0], blur_apply.transforms[0]
    records: list[dict] = []

    def spy(transform, name):
        make_params = transform.make_params

        def recorded(flat_inputs):
            params = make_params(flat_inputs)
            records[-1][name] = params
            return params

        transform.make_params = recorded

    for transform, name in ((crop, "crop"), (jitter, "jitter"), (rotation, "rotation")):
        spy(transform, name)
    compose = augment.view

    def view(anchor):
        records.append({})
        return compose(anchor)

    augment.view = view
    gaussian_blur = augmentation.F.gaussian_blur

    def recorded_blur(image, kernel_size, sigma):
        records[-1].setdefault("sigma", sigma[0])
        return gaussian_blur(image, kernel_size, sigma)

    generator = torch.Generator().manual_seed(seed)
    try:
        augmentation.F.gaussian_blur = recorded_blur
        for _ in range(calls):
            augment(anchor, generator)
    finally:
        augmentation.F.gaussian_blur = gaussian_blur
    assert isinstance(blur, SeparableGaussianBlur)
    return records


def cpu_params_as_batch(records: list[dict]) -> dict[str, torch.Tensor]:
    """The recorded draws in ``sample_params``' layout (NaN where the CPU path drew nothing)."""
    nan = math.nan
    rows = []
    for r in records:
        jitter = r.get("jitter")
        order = list(jitter["fn_idx"]) if jitter else None
        rows.append([r["crop"]["top"], r["crop"]["left"], r["crop"]["height"], r["crop"]["width"],
                     r["rotation"]["angle"], jitter is not None,
                     jitter["brightness_factor"] if jitter else nan, jitter["contrast_factor"] if jitter else nan,
                     order.index(0) < order.index(1) if jitter else nan, "sigma" in r, r.get("sigma", nan)])
    table = torch.tensor(rows, dtype=torch.float64)
    return {key: table[:, i] for i, key in enumerate(PARAM_KEYS)}


def assert_same_distribution(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    a, b = a[~a.isnan()].numpy(), b[~b.isnan()].numpy()
    result = stats.ks_2samp(a, b)
    assert result.pvalue > 1e-3, f"{what}: KS p = {result.pvalue:.2g} (CPU mean {a.mean():.4f}, batch {b.mean():.4f})"


def assert_rate(flags: torch.Tensor, p: float, what: str) -> None:
    n = flags.numel()
    rate = flags.double().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n), f"{what}: rate {rate:.4f}, expected {p}"


@pytest.mark.parametrize("height,width", [(48, 40), (60, 20)])  # 60 x 20: the central fallback is common
def test_parameters_follow_the_cpu_paths_distributions(height, width):
    size, calls = 16, 1200
    cpu = cpu_params_as_batch(record_cpu_params(TwoViewAugment(size), torch.rand(1, height, width), calls))
    batch = BatchTwoViewAugment(size)
    drawn = batch.sample_params([height] * calls, [width] * calls, torch.Generator().manual_seed(1))
    drawn = {key: value.reshape(-1).double() for key, value in drawn.items()}
    assert drawn["angle"].numel() == cpu["angle"].numel() == 2 * calls

    for params in (cpu, drawn):
        params["area"] = params["height"] * params["width"] / (height * width)
        params["aspect"] = params["width"] / params["height"]
        params["top_frac"] = params["top"] / (height - params["height"] + 1)
        params["left_frac"] = params["left"] / (width - params["width"] + 1)
    for key in ("area", "aspect", "height", "width", "top_frac", "left_frac", "angle"):
        assert_same_distribution(cpu[key], drawn[key], key)
    # Jitter factors and sigma: the CPU path draws them only when applied (they are independent of it).
    for key, applied in (("brightness", "jitter"), ("contrast", "jitter"), ("sigma", "blur")):
        assert_same_distribution(cpu[key], drawn[key][drawn[applied] > 0], key)
    for params in (cpu, drawn):
        assert_rate(params["jitter"], 0.8, "jitter applied")
        assert_rate(params["blur"], 0.5, "blur applied")
        assert_rate(params["brightness_first"][~params["brightness_first"].isnan()], 0.5, "brightness first")
    if width * 4 < height * 3:  # tall anchor: the fallback is the central 4:3 crop
        fallback_h = round(width / 0.75)
        cpu_rate = ((cpu["height"] == fallback_h) & (cpu["width"] == width)).double().mean()
        batch_rate = ((drawn["height"] == fallback_h) & (drawn["width"] == width)).double().mean()
        assert cpu_rate > 0.05 and abs(cpu_rate - batch_rate) < 0.03
    assert drawn["sigma"].min() >= 0.1 * size / 224 and drawn["sigma"].max() <= 2.0 * size / 224
    assert drawn["angle"].abs().max() <= 30


def cpu_views_from_params(anchor: torch.Tensor, p: dict, augment: BatchTwoViewAugment) -> torch.Tensor:
    """The CPU path's operations (``TwoViewAugment``, in its order) with the given parameters of one view."""
    view = F.resized_crop(anchor, int(p["top"]), int(p["left"]), int(p["height"]), int(p["width"]),
                          [augment.size, augment.size], antialias=True)
    if p["jitter"]:
        order = [("brightness", F.adjust_brightness), ("contrast", F.adjust_contrast)]
        for key, adjust in order if p["brightness_first"] else order[::-1]:
            view = adjust(view, float(p[key]))
    if p["blur"]:
        view = SeparableGaussianBlur(augment.kernel_size, (float(p["sigma"]),) * 2)(view)
    return F.rotate(view, float(p["angle"]), interpolation=InterpolationMode.BILINEAR)


@pytest.mark.parametrize("anchor_size,view_size", [(96, 32), (256, 64), (48, 64)])
def test_given_parameters_make_the_cpu_paths_pixels(anchor_size, view_size):
    anchor = phantom(anchor_size)
    augment = BatchTwoViewAugment(view_size)
    params = augment.sample_params([anchor_size] * 6, [anchor_size] * 6, torch.Generator().manual_seed(0))
    views = augment.apply(anchor[None].expand(6, -1, -1, -1), params)
    assert views.shape == (6, 2, 1, view_size, view_size) and views.dtype == torch.float32
    assert views.min() >= 0 and views.max() <= 1
    for b in range(6):
        for v in range(2):
            reference = cpu_views_from_params(anchor, {key: params[key][b, v] for key in PARAM_KEYS}, augment)
            difference = (views[b, v] - reference).abs()
            # Grey levels in [0, 1]: a sharper single interpolation, jitter/blur before the corners (docstring).
            assert difference.mean() < 0.02 and difference.quantile(0.99) < 0.15, (b, v, difference.mean())


def identity_params(augment, size, batch=1, **changes):
    params = augment.sample_params([size] * batch, [size] * batch, torch.Generator().manual_seed(0))
    params.update(top=torch.zeros_like(params["top"]), left=torch.zeros_like(params["left"]),
                  height=torch.full_like(params["height"], size), width=torch.full_like(params["width"], size),
                  angle=torch.zeros_like(params["angle"]), jitter=torch.zeros_like(params["jitter"]),
                  blur=torch.zeros_like(params["blur"]))
    params.update({key: torch.full_like(params[key], value) for key, value in changes.items()})
    return params


def test_the_whole_anchor_at_its_own_size_comes_back_unchanged():
    anchor = phantom(32)
    augment = BatchTwoViewAugment(32)
    views = augment.apply(anchor[None], identity_params(augment, 32))
    torch.testing.assert_close(views[0, 0], anchor, atol=1e-5, rtol=0)


def test_uint8_anchors_are_scaled_to_the_unit_range():
    anchor = (phantom(32) * 255).round().to(torch.uint8)
    augment = BatchTwoViewAugment(32)
    params = augment.sample_params([32] * 3, [32] * 3, torch.Generator().manual_seed(5))
    expected = augment.apply(anchor[None].expand(3, -1, -1, -1).float() / 255, params)
    torch.testing.assert_close(augment.apply(anchor[None].expand(3, -1, -1, -1), params), expected)


def test_blur_and_jitter_match_torchvision_exactly_without_geometry():
    anchor = phantom(40)
    augment = BatchTwoViewAugment(40)
    blurred = augment.apply(anchor[None], identity_params(augment, 40, blur=True, sigma=0.3))[0, 0]
    reference = SeparableGaussianBlur(augment.kernel_size, (0.3, 0.3))(anchor)
    torch.testing.assert_close(blurred, reference, atol=1e-5, rtol=0)

    for first in (True, False):
        params = identity_params(augment, 40, jitter=True, brightness=1.3, contrast=0.7, brightness_first=first)
        jittered = augment.apply(anchor[None], params)[0, 0]
        steps = [lambda x: F.adjust_brightness(x, 1.3), lambda x: F.adjust_contrast(x, 0.7)]
        reference = anchor
        for step in steps if first else steps[::-1]:
            reference = step(reference)
        # The contrast mean comes from a quarter-resolution sample of the crop.
        assert (jittered - reference).abs().max() < 0.01


def test_rotation_blackens_the_corners_and_keeps_the_centre():
    augment = BatchTwoViewAugment(32)
    anchor = torch.ones(1, 1, 32, 32)
    view = augment.apply(anchor, identity_params(augment, 32, angle=30.0))[0, 0, 0]
    assert view[0, 0] == 0 and view[-1, -1] == 0 and view[16, 16] == 1
    reference = F.rotate(anchor[0], 30.0, interpolation=InterpolationMode.BILINEAR)[0]
    torch.testing.assert_close(view, reference, atol=1e-5, rtol=0)


def test_a_fixed_generator_gives_identical_views_and_leaves_the_global_rng_alone():
    anchors = phantom(64)[None].repeat(4, 1, 1, 1)
    augment = BatchTwoViewAugment(24)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = augment(anchors, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)
    again = augment(anchors, torch.Generator().manual_seed(7))
    other = augment(anchors, torch.Generator().manual_seed(8))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[0], first[1])
    assert first[0].shape == (4, 1, 24, 24)


def test_settings_follow_two_view_augment():
    cpu, batch = TwoViewAugment(64), BatchTwoViewAugment(64)
    blur = cpu.view.transforms[2].transforms[0]
    assert batch.kernel_size == blur.kernel_size and batch.sigma == pytest.approx(blur.sigma)
    jitter = cpu.view.transforms[1].transforms[0]
    assert batch.brightness == pytest.approx(jitter.brightness) and batch.contrast == pytest.approx(jitter.contrast)
    assert cpu.view.transforms[0].scale == batch.scale and tuple(cpu.view.transforms[3].degrees) == (-30.0, 30.0)


def test_bad_inputs_are_rejected():
    augment = BatchTwoViewAugment(16)
    with pytest.raises(ValueError, match=r"\[B, 1, h, w\]"):
        augment(torch.rand(2, 3, 20, 20), torch.Generator())
    with pytest.raises(ValueError, match="uint8 or float"):
        augment(torch.zeros(2, 1, 20, 20, dtype=torch.int32), torch.Generator())
    with pytest.raises(ValueError, match="view size"):
        BatchTwoViewAugment(4)
    with pytest.raises(ValueError, match="params for"):
        augment.apply(torch.rand(3, 1, 20, 20), augment.sample_params([20] * 2, [20] * 2, torch.Generator()))


def test_a_packed_parameter_table_is_the_same_as_the_dict():
    augment = BatchTwoViewAugment(16)
    table = augment.sample_param_table([40, 30], [20, 30], torch.Generator().manual_seed(2))
    params = augment.sample_params([40, 30], [20, 30], torch.Generator().manual_seed(2))
    assert table.shape == (2, 2, len(PARAM_KEYS))
    assert all(torch.equal(unpack_params(table)[key], params[key]) for key in PARAM_KEYS)
    assert params["top"].dtype == torch.long and params["blur"].dtype == torch.bool
    anchors = torch.rand(2, 1, 40, 30)
    torch.testing.assert_close(augment.apply(anchors, table), augment.apply(anchors, params))

"""Two-view augmentation: the paper's recipe for grey tensors, driven only by the given generator."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from edenkit.augmentation import SeparableGaussianBlur, TwoViewAugment


def anchor(height=40, width=30, seed=0):
    return torch.rand(1, height, width, generator=torch.Generator().manual_seed(seed))


def test_views_are_grey_squares_in_unit_range():
    views = TwoViewAugment(24)(anchor(), torch.Generator().manual_seed(0))
    for view in views:
        assert view.shape == (1, 24, 24) and view.dtype == torch.float32
        assert view.min() >= 0.0 and view.max() <= 1.0
    assert not torch.equal(*views)


def test_the_generator_is_the_only_source_of_randomness():
    augment = TwoViewAugment(24)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    first = augment(anchor(), torch.Generator().manual_seed(11))
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    torch.manual_seed(999)
    again = augment(anchor(), torch.Generator().manual_seed(11))
    other = augment(anchor(), torch.Generator().manual_seed(12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_recipe_has_no_flip_and_no_grayscale():
    kinds = {type(t) for t in TwoViewAugment(224).view.transforms}
    kinds |= {type(inner) for t in TwoViewAugment(224).view.transforms if isinstance(t, v2.RandomApply) for inner in t.transforms}
    assert v2.RandomResizedCrop in kinds and v2.ColorJitter in kinds and v2.RandomRotation in kinds
    assert SeparableGaussianBlur in kinds
    assert not kinds & {v2.RandomHorizontalFlip, v2.RandomVerticalFlip, v2.RandomGrayscale, v2.Normalize}


def test_blur_scales_with_the_view():
    def blur(size):
        return next(
            inner for t in TwoViewAugment(size).view.transforms if isinstance(t, v2.RandomApply)
            for inner in t.transforms if isinstance(inner, SeparableGaussianBlur)
        )

    assert blur(224).kernel_size == 23 and blur(224).sigma == pytest.approx((0.1, 2.0))
    assert blur(64).kernel_size == 7 and blur(64).sigma == pytest.approx((0.1 * 64 / 224, 2.0 * 64 / 224))


def test_separable_blur_equals_torchvisions_2d_blur():
    image = anchor(50, 41)
    blur = SeparableGaussianBlur(9, (1.3, 1.3))
    torch.testing.assert_close(blur(image), F.gaussian_blur(image, [9, 9], [1.3, 1.3]), atol=1e-6, rtol=0)


def test_saturation_and_hue_do_nothing_on_grey():
    image = anchor()
    assert torch.equal(F.adjust_saturation(image, 0.6), image)
    assert torch.equal(F.adjust_hue(image, 0.1), image)
    assert not torch.equal(F.adjust_contrast(image, 0.6), image)


def test_bad_anchors_are_rejected():
    augment = TwoViewAugment(16)
    with pytest.raises(ValueError, match=r"\[1, h, w\]"):
        augment(torch.rand(3, 20, 20), torch.Generator())
    with pytest.raises(ValueError, match="float"):
        augment(torch.zeros(1, 20, 20, dtype=torch.uint8), torch.Generator())
    with pytest.raises(ValueError, match="view size"):
        TwoViewAugment(4)


def test_the_thread_setting_is_restored():
    threads = torch.get_num_threads()
    TwoViewAugment(16)(anchor(), torch.Generator())
    assert torch.get_num_threads() == threads

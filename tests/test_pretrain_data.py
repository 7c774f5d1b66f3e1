"""Pretraining data: the view pairs use the run's augmentation, on the CPU path or the device path."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches
from edenkit.data.cache import CachedImages, CacheInfo
from edenkit.decomposer import AnatomyPairs
from edenkit.pretrain_config import load_pretrain_config
from edenkit.pretrain_data import ImageTensor, augments_on_device, pair_loader, set_epoch


def uint8_images(count=16, size=64):
    return torch.randint(0, 256, (count, 1, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_pair_loader_uses_the_configured_augmentation():
    cfg = load_pretrain_config("ci", ["data.crop_scale=[0.5,0.9]", "data.rotation=12", "data.jitter_p=0.25",
                                      "data.blur_p=0"])
    loader = pair_loader([{"image": torch.rand(1, 64, 64)}] * 16, 0, cfg, seed=0, train=True)
    assert isinstance(loader, DataLoader) and isinstance(loader.dataset, AnatomyPairs)
    crop, jitter, blur, rotation = loader.dataset.augment.view.transforms
    assert crop.scale == (0.5, 0.9) and list(rotation.degrees) == [-12.0, 12.0]
    assert (jitter.p, blur.p) == (0.25, 0.0)


def test_the_device_path_gathers_anchors_of_images_in_memory_and_makes_views_on_the_device():
    cfg = load_pretrain_config("ci", ["data.augment=device", "data.crop_scale=[0.5,0.9]", "data.rotation=12",
                                      "data.jitter_p=0.25", "data.blur_p=0"])
    images = ImageTensor(uint8_images())
    loader = pair_loader(images, 2, cfg, seed=0, train=True)
    assert isinstance(loader, AnchorBatches) and isinstance(loader.dataset, AnatomyAnchors)
    assert not loader.dataset.pixels  # bytes in memory: the main process gathers the anchors
    augment = loader.dataset.augment
    assert augment.scale == (0.5, 0.9) and augment.degrees == 12.0 and augment.size == cfg.data.view_size
    assert (augment.jitter_p, augment.blur_p) == (0.25, 0.0)
    set_epoch(loader, 3)
    assert loader.dataset.epoch == 3 and len(loader) == 1
    batch = next(iter(loader))
    for anchor, index, (y0, x0, y1, x1) in zip(batch["anchor"], batch["index"], batch["box"].tolist()):
        assert torch.equal(anchor, images.images[index][:, y0:y1, x0:x1])
    views = loader.augment_batch(batch, torch.device("cpu"))
    assert views["view1"].shape == views["view2"].shape == (16, 1, 32, 32)
    assert "anchor" not in views and "params" not in views
    # Images that are not bytes in memory: the workers send the anchors.
    floats = pair_loader([{"image": torch.rand(1, 64, 64)}] * 16, 2, cfg, seed=0, train=False)
    assert isinstance(floats, AnchorBatches) and floats.dataset.pixels


@pytest.mark.parametrize("augment, device, cuda, on_device", [
    ("auto", "auto", False, False), ("auto", "auto", True, True), ("auto", "cpu", True, False),
    ("auto", "cuda", True, True), ("cpu", "auto", True, False), ("device", "cpu", False, True),
])
def test_auto_augments_on_the_device_when_training_on_cuda(monkeypatch, augment, device, cuda, on_device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = load_pretrain_config("ci", [f"data.augment={augment}", f"device={device}"])
    assert augments_on_device(cfg) == on_device


def test_cached_images_read_uint8_is_the_memmap_row(tmp_path):
    pixels = uint8_images(5, 16)[:, 0].numpy()
    np.save(tmp_path / "images.npy", pixels)
    info = CacheInfo(tmp_path, 16, [f"im{i}" for i in range(5)], [f"p{i}" for i in range(5)], [])
    cached = CachedImages(info, rows=[4, 1, 2])
    image = cached.read_uint8(0)
    assert image.dtype == torch.uint8 and image.shape == (1, 16, 16)
    assert torch.equal(image[0], torch.from_numpy(pixels[4]))
    assert torch.equal(image.float() / 255, cached[0]["image"])
    smaller = CachedImages(info, rows=[1], size=8)  # resized on reading, then back to uint8
    assert smaller.read_uint8(0).shape == (1, 8, 8)
    assert torch.allclose(smaller.read_uint8(0).float() / 255, smaller[0]["image"], atol=0.5 / 255 + 1e-6)


def test_phantom_images_are_of_the_configured_version_and_cached_under_it(tmp_path):
    from edenkit.phantom import PhantomConfig, PhantomDataset
    from edenkit.pretrain_data import phantom_images

    v2 = phantom_images(2, 64, 5, str(tmp_path), version=2)
    expected = PhantomDataset(2, size=64, seed=5, config=PhantomConfig(version=2))[1]["image"]
    assert torch.equal(v2[1].float(), (expected.clamp(0, 1) * 255).round())
    assert not torch.equal(v2, phantom_images(2, 64, 5, str(tmp_path), version=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom_v1_2x64px_seed5.pt", "phantom_v2_2x64px_seed5.pt"]


def test_generating_the_phantoms_leaves_the_global_rng_as_reading_them_from_the_cache_does(tmp_path):
    """A run that generates its images and a run that finds them cached must train alike: generation
    (a DataLoader draws its base seed from the global RNG) must not move the global RNG."""
    from edenkit.pretrain_data import phantom_images

    state = torch.get_rng_state()
    generated = phantom_images(4, 32, seed=3, cache_dir=str(tmp_path), version=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(phantom_images(4, 32, seed=3, cache_dir=str(tmp_path), version=1), generated)
    assert torch.equal(torch.get_rng_state(), state)

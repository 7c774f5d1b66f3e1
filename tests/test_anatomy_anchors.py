"""The worker side of on-device augmentation: AnatomyPairs' anchors, per-sample parameters, resumable batches."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader, DistributedSampler

from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches, anchor_shape, augment_batch
from edenkit.augmentation import TwoViewAugment
from edenkit.batch_augmentation import BatchTwoViewAugment, unpack_params
from edenkit.decomposer import AnatomyPairs
from edenkit.phantom import generate


class Uint8Images:
    """Images kept as uint8, read without a float round trip (the ``read_uint8`` protocol)."""

    def __init__(self, images: torch.Tensor):
        self.images = images
        self.raw_reads = 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return {"image": self.images[index].float() / 255, "index": index}

    def read_uint8(self, index):
        self.raw_reads += 1
        return self.images[index]


def phantoms(count=8, size=64):
    return torch.stack([(torch.from_numpy(generate(100 + i, size=size).image)[None] * 255).round().to(torch.uint8)
                        for i in range(count)])


@pytest.mark.parametrize("mode", ["paper", "grid"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_the_same_anchor_as_anatomy_pairs(n, mode):
    images = Uint8Images(phantoms(6))
    pairs = AnatomyPairs(images, n, 16, mode=mode, seed=3)
    anchors = AnatomyAnchors(images, n, BatchTwoViewAugment(16), mode=mode, seed=3)
    for epoch in (0, 5):
        pairs.set_epoch(epoch)
        anchors.set_epoch(epoch)
        for i in range(len(images)):
            item, pair = anchors[i], pairs[i]
            assert torch.equal(item["box"], pair["box"]) and item["part"] == pair["part"]
            y0, x0, y1, x1 = item["box"].tolist()
            assert torch.equal(item["anchor"], images.images[i][:, y0:y1, x0:x1])
            assert item["anchor"].dtype == torch.uint8
    assert images.raw_reads > 0


def test_items_depend_only_on_seed_level_epoch_and_index():
    images = Uint8Images(phantoms(4))
    first = AnatomyAnchors(images, 2, BatchTwoViewAugment(16), seed=1)
    first.set_epoch(3)
    reference = [first[i] for i in range(4)]
    resumed = AnatomyAnchors(images, 2, BatchTwoViewAugment(16), seed=1)  # a fresh process after a resume
    resumed.set_epoch(3)
    for i in reversed(range(4)):
        item = resumed[i]
        assert torch.equal(item["anchor"], reference[i]["anchor"])
        assert torch.equal(item["params"], reference[i]["params"]) and item["params"].shape == (2, 11)
    resumed.set_epoch(4)
    assert not torch.equal(resumed[0]["params"], reference[0]["params"])


def test_parts_that_differ_by_a_pixel_are_padded_and_boxes_stay_inside():
    image = torch.arange(50 * 45, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 50, 45)
    dataset = AnatomyAnchors([{"image": image}], 2, BatchTwoViewAugment(8), seed=0)
    assert anchor_shape(50, 45, 2) == (25, 23)
    for epoch in range(12):
        dataset.set_epoch(epoch)
        item = dataset[0]
        y0, x0, y1, x1 = item["box"].tolist()
        assert item["anchor"].shape == (1, 25, 23)
        assert torch.equal(item["anchor"][:, : y1 - y0, : x1 - x0], image[:, y0:y1, x0:x1])
        if x1 - x0 < 23:  # the padding repeats the last column
            assert torch.equal(item["anchor"][:, : y1 - y0, -1], image[:, y0:y1, x1 - 1])
        p = unpack_params(item["params"])
        assert bool(((p["top"] + p["height"] <= y1 - y0) & (p["left"] + p["width"] <= x1 - x0)).all())


def test_float_images_are_read_back_exactly_as_uint8():
    images = phantoms(2)
    dataset = AnatomyAnchors([{"image": im.float() / 255} for im in images], 0, BatchTwoViewAugment(8))
    assert torch.equal(dataset[1]["anchor"], images[1])


def epoch_batches(dataset, epoch, workers=0, batch_size=4):
    """The augmented batches of one epoch, as pretraining makes them (sampler and dataset at ``epoch``)."""
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    sampler.set_epoch(epoch)
    dataset.set_epoch(epoch)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True)
    return [augment_batch(batch, dataset.augment, torch.device("cpu")) for batch in loader]


def test_a_resumed_run_sees_the_same_batches_with_any_worker_count():
    images = Uint8Images(phantoms(8))
    augment = BatchTwoViewAugment(16)
    uninterrupted = [epoch_batches(AnatomyAnchors(images, 4, augment, seed=2), epoch) for epoch in range(3)]
    resumed = epoch_batches(AnatomyAnchors(images, 4, augment, seed=2), 2, workers=2)  # a new process at epoch 2
    assert len(resumed) == 2
    for a, b in zip(uninterrupted[2], resumed):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["view1"], b["view1"])
        assert torch.equal(a["view2"], b["view2"]) and a["view1"].shape == (4, 1, 16, 16)
    assert not torch.equal(uninterrupted[1][0]["view1"], uninterrupted[2][0]["view1"])


def test_views_have_the_cpu_paths_pixel_statistics():
    """End to end, over many draws: the views' mean grey level and contrast, CPU path vs device path."""
    images = Uint8Images(phantoms(16, size=64))
    pairs = AnatomyPairs(images, 2, 24, augment=TwoViewAugment(24), seed=0)
    anchors = AnatomyAnchors(images, 2, BatchTwoViewAugment(24), seed=0)
    cpu, device = [], []
    for epoch in range(25):
        pairs.set_epoch(epoch)
        for batch in DataLoader(pairs, batch_size=16):
            cpu.append(torch.cat([batch["view1"], batch["view2"]]))
        device.extend(torch.cat([b["view1"], b["view2"]]) for b in epoch_batches(anchors, epoch, batch_size=16))
    cpu, device = torch.cat(cpu).flatten(1), torch.cat(device).flatten(1)
    assert cpu.shape == device.shape == (800, 24 * 24)
    for what, cpu_stat, device_stat in (("mean", cpu.mean(1), device.mean(1)), ("std", cpu.std(1), device.std(1))):
        result = stats.ks_2samp(cpu_stat.numpy(), device_stat.numpy())
        assert result.pvalue > 1e-3, f"{what}: KS p = {result.pvalue:.2g}"


@pytest.mark.parametrize("n", [0, 2, 3])
def test_anchors_gathered_in_the_main_process_are_the_workers_anchors(n):
    images = Uint8Images(phantoms(8, size=50))  # 50 px: parts that differ by a pixel at n = 2, 3
    augment = BatchTwoViewAugment(16)
    sent = epoch_batches(AnatomyAnchors(images, n, augment, seed=1), epoch=2)
    gathered_dataset = AnatomyAnchors(images, n, augment, seed=1, pixels=False)
    assert "anchor" not in gathered_dataset[0]
    sampler = DistributedSampler(gathered_dataset, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    sampler.set_epoch(2)
    gathered_dataset.set_epoch(2)
    loader = AnchorBatches(DataLoader(gathered_dataset, batch_size=4, sampler=sampler, drop_last=True))
    batches = list(loader)
    assert len(batches) == len(sent) == 2
    # Two reused buffers: the anchors of a batch stay valid until the batch after next is drawn.
    assert batches[0]["anchor"].data_ptr() != batches[1]["anchor"].data_ptr()
    for batch, reference in zip(batches, sent):
        views = loader.augment_batch(batch, torch.device("cpu"))
        assert torch.equal(views["view1"], reference["view1"]) and torch.equal(views["view2"], reference["view2"])
    third = next(iter(loader))
    assert third["anchor"].data_ptr() in {b["anchor"].data_ptr() for b in batches}


def test_anchor_batches_need_anatomy_anchors():
    with pytest.raises(TypeError, match="AnatomyAnchors"):
        AnchorBatches(DataLoader([{"image": torch.zeros(1, 4, 4)}]))

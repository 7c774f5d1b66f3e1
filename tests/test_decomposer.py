"""The anatomy decomposer: part layout per level and mode, uniform anchors, reproducible pairs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from edenkit.decomposer import AnatomyPairs, decompose, grid_shape, part_boxes, sample_seed


class TinyImages(Dataset):
    """Images whose every pixel holds its own (row, column) code, so a crop reveals where it came from."""

    def __init__(self, count=6, height=32, width=48):
        rows = torch.arange(height, dtype=torch.float32).view(-1, 1)
        cols = torch.arange(width, dtype=torch.float32).view(1, -1)
        self.code = (rows * width + cols) / (height * width)
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        return {"image": ((self.code + i / self.count) % 1.0).unsqueeze(0), "labels": torch.zeros(2)}


def coverage(height, width, boxes):
    counts = torch.zeros(height, width, dtype=torch.long)
    for y0, x0, y1, x1 in boxes:
        counts[y0:y1, x0:x1] += 1
    return counts


@pytest.mark.parametrize("n, rows, cols", [(0, 1, 1), (1, 1, 2), (2, 2, 2), (3, 2, 4), (4, 4, 4)])
def test_paper_rule_alternates_cuts_starting_vertically(n, rows, cols):
    assert grid_shape(n, "paper") == (rows, cols)
    boxes = part_boxes(256, 256, n)
    assert len(boxes) == 2**n
    assert {(y1 - y0, x1 - x0) for y0, x0, y1, x1 in boxes} == {(256 // rows, 256 // cols)}


def test_level_one_is_left_and_right_halves():
    assert part_boxes(100, 60, 1) == [(0, 0, 100, 30), (0, 30, 100, 60)]


@pytest.mark.parametrize("n", range(5))
def test_paper_parts_tile_odd_sized_images_exactly(n):
    boxes = part_boxes(37, 53, n)
    assert torch.equal(coverage(37, 53, boxes), torch.ones(37, 53, dtype=torch.long))


def test_parts_are_row_major():
    boxes = part_boxes(64, 64, 3)
    assert boxes[0] == (0, 0, 32, 16) and boxes[3] == (0, 48, 32, 64) and boxes[4] == (32, 0, 64, 16)


def test_grid_mode_is_the_released_n_by_n_grid():
    assert part_boxes(256, 256, 0, "grid") == part_boxes(256, 256, 1, "grid") == [(0, 0, 256, 256)]
    for n in (0, 2, 4):
        assert part_boxes(256, 256, n, "grid") == part_boxes(256, 256, n, "paper")
    boxes = part_boxes(256, 256, 3, "grid")
    assert len(boxes) == 9 and boxes[-1] == (170, 170, 255, 255)
    # Like the released code, floor-sized cells leave the last row and column unsampled.
    counts = coverage(256, 256, boxes)
    assert counts[:255, :255].eq(1).all() and counts[255].eq(0).all() and counts[:, 255].eq(0).all()


def test_decompose_returns_the_boxed_part():
    image = TinyImages()[0]["image"]
    anchor, box = decompose(image, 2, generator=torch.Generator().manual_seed(0))
    y0, x0, y1, x1 = box
    assert box in part_boxes(32, 48, 2)
    assert torch.equal(anchor, image[:, y0:y1, x0:x1])


def test_anchor_is_uniform_over_parts_and_follows_the_generator():
    image = torch.zeros(1, 64, 64)
    g = torch.Generator().manual_seed(1)
    boxes = part_boxes(64, 64, 4)
    counts = torch.zeros(16)
    for _ in range(3200):
        counts[boxes.index(decompose(image, 4, generator=g)[1])] += 1
    assert counts.min() > 140 and counts.max() < 260  # expected 200 each, sd ~14
    draw = [decompose(image, 4, generator=torch.Generator().manual_seed(7))[1] for _ in range(2)]
    assert draw[0] == draw[1]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="granularity level n"):
        part_boxes(64, 64, 5)
    with pytest.raises(ValueError, match="mode"):
        part_boxes(64, 64, 2, "quadtree")
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        decompose(torch.zeros(64, 64), 2)
    with pytest.raises(ValueError, match="cannot be cut"):
        part_boxes(3, 64, 4)


def identity_views(anchor, generator):
    return anchor, anchor


def test_pairs_items_hold_two_views_of_the_boxed_part():
    base = TinyImages()
    pairs = AnatomyPairs(base, n=3, view_size=16, seed=0)
    item = pairs[2]
    assert set(item) == {"view1", "view2", "box", "part", "index"}
    assert item["view1"].shape == item["view2"].shape == (1, 16, 16)
    assert item["box"].dtype == torch.long and item["index"] == 2
    assert tuple(item["box"].tolist()) == part_boxes(32, 48, 3)[item["part"]]
    assert not torch.equal(item["view1"], item["view2"])

    raw = AnatomyPairs(base, n=3, view_size=16, seed=0, augment=identity_views)[2]
    y0, x0, y1, x1 = raw["box"].tolist()
    assert torch.equal(raw["view1"], base[2]["image"][:, y0:y1, x0:x1])


def test_pairs_are_reproducible_per_seed_epoch_and_index():
    base = TinyImages()
    a, b = AnatomyPairs(base, 2, 16, seed=3), AnatomyPairs(base, 2, 16, seed=3)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a[4]["view1"], b[4]["view1"]) and torch.equal(a[4]["view2"], b[4]["view2"])
    first = a[4]["view1"]
    a.set_epoch(1)
    assert a.epoch == 1 and not torch.equal(a[4]["view1"], first)
    assert not torch.equal(AnatomyPairs(base, 2, 16, seed=4)[4]["view1"], first)
    assert len({sample_seed(0, 2, e, i) for e in range(20) for i in range(50)}) == 1000


def collect(loader, dataset, epochs):
    out = []
    for epoch in epochs:
        dataset.set_epoch(epoch)
        out += [torch.cat([batch["view1"], batch["view2"]]) for batch in loader]
    return out


def test_workers_and_resumption_see_the_same_items():
    base = TinyImages(count=8)
    plain = AnatomyPairs(base, 4, 16, seed=5)
    expected = collect(DataLoader(plain, batch_size=4), plain, epochs=[0, 1])

    parallel = AnatomyPairs(base, 4, 16, seed=5)
    loader = DataLoader(parallel, batch_size=4, num_workers=2, persistent_workers=True)
    assert all(torch.equal(x, y) for x, y in zip(collect(loader, parallel, [0, 1]), expected))

    resumed = AnatomyPairs(base, 4, 16, seed=5)  # a fresh process resuming at epoch 1
    assert all(torch.equal(x, y) for x, y in zip(collect(DataLoader(resumed, batch_size=4), resumed, [1]), expected[2:]))


def test_pairs_reject_items_without_an_image():
    class Tensors(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return torch.zeros(1, 8, 8)

    with pytest.raises(TypeError, match="'image'"):
        AnatomyPairs(Tensors(), 1, 8)[0]
    with pytest.raises(ValueError, match="granularity"):
        AnatomyPairs(Tensors(), 7, 8)


def test_a_forced_part_keeps_the_augmentation_draws():
    base = TinyImages()
    pairs = AnatomyPairs(base, 2, 16, seed=1, augment=identity_views)
    drawn = pairs[3]
    assert torch.equal(pairs.pair(3, part=drawn["part"])["view1"], drawn["view1"])
    other = (drawn["part"] + 1) % 4
    forced = pairs.pair(3, part=other)
    assert forced["part"] == other and tuple(forced["box"].tolist()) == part_boxes(32, 48, 2)[other]
    with pytest.raises(IndexError, match="part 4"):
        pairs.pair(3, part=4)

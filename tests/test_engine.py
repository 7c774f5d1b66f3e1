import math

import pytest
import torch
from torch.utils.data import DataLoader

from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches
from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.engine import NonFiniteLossError, evaluate, train_one_epoch
from edenkit.moco import MoCo

STATS = {"loss", "acc", "pos_sim", "neg_sim", "frac_pruned"}


def make_model(queue_size=32) -> MoCo:
    torch.manual_seed(0)
    return MoCo("resnet18", queue_size=queue_size, momentum=0.9, bn_splits=2)


def batches(steps=3, batch=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"view1": torch.rand(batch, 1, size, size, generator=g),
             "view2": torch.rand(batch, 1, size, size, generator=g)} for _ in range(steps)]


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_one_epoch_steps_the_student_the_teacher_and_the_queue():
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1, momentum=0.9)
    before = state(model)
    records = []
    result = train_one_epoch(model, batches(3), optimizer, device=torch.device("cpu"), log=records.append,
                             log_every=2, epoch=7)
    assert STATS | {"images_per_s", "images", "lr"} <= set(result)
    assert result["images"] == 24 and result["lr"] == 0.1 and result["frac_pruned"] == 0.0
    assert all(math.isfinite(result[k]) for k in STATS)
    after = model.state_dict()
    assert int(after["queue_ptr"]) == 24 % 32
    assert not torch.equal(after["queue"], before["queue"])
    for prefix in ("encoder_q.head.0.weight", "encoder_k.head.0.weight"):
        assert not torch.equal(after[prefix], before[prefix])
    assert [(r["epoch"], r["step"]) for r in records] == [(7, 2)]


def test_in_batch_negatives_leave_the_queue_alone_and_chance_is_one_in_the_batch():
    torch.manual_seed(0)
    model = MoCo("resnet18", queue_size=32, momentum=0.9, bn_splits=2, negatives="batch")
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.0)
    before = state(model)
    result = train_one_epoch(model, batches(2), optimizer, device=torch.device("cpu"))
    assert torch.equal(model.queue, before["queue"]) and int(model.queue_ptr) == 0
    # untrained, the loss sits near ln(8): the positive against the batch's 7 other keys
    assert abs(result["loss"] - math.log(8)) < 0.5
    assert abs(evaluate(model, batches(1), device=torch.device("cpu"))["loss"] - math.log(8)) < 0.5


def test_pruner_threshold_reaches_the_loss():
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.0)
    result = train_one_epoch(model, batches(2), optimizer, device=torch.device("cpu"), prune_threshold=-1.0)
    # Every negative has cosine >= -1, so all are pruned and the positive is always the argmax.
    assert result["frac_pruned"] == 1.0 and result["acc"] == 1.0 and result["loss"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_has_no_side_effects():
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1)
    train_one_epoch(model, batches(2), optimizer, device=torch.device("cpu"))
    before = state(model)
    result = evaluate(model, batches(2, seed=1), device=torch.device("cpu"), prune_threshold=0.8)
    assert STATS == set(result) and math.isfinite(result["loss"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_bf16_autocast_and_channels_last_on_cpu():
    model = make_model().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1)
    result = train_one_epoch(model, batches(1), optimizer, device=torch.device("cpu"),
                             autocast_dtype=torch.bfloat16, channels_last=True)
    assert math.isfinite(result["loss"])
    assert model.encoder_q.backbone.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_non_finite_loss_stops_with_epoch_and_step():
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1)
    data = batches(3)
    data[1]["view1"][0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="epoch 4, step 1"):
        train_one_epoch(model, data, optimizer, device=torch.device("cpu"), epoch=4)
    assert int(model.queue_ptr) == 8  # the bad step did not enqueue


def test_an_empty_loader_is_an_error():
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="yielded no batch"):
        train_one_epoch(model, [], optimizer, device=torch.device("cpu"))


def test_the_device_path_makes_views_with_the_loaders_hook_and_evaluates_deterministically():
    images = [{"image": torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(i))} for i in range(16)]
    anchors = AnatomyAnchors(images, 2, BatchTwoViewAugment(32), seed=5)
    loader = AnchorBatches(DataLoader(anchors, batch_size=8, drop_last=True))
    model = make_model()
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1)
    train_one_epoch(model, loader, optimizer, device=torch.device("cpu"))
    before = state(model)
    results = []
    for _ in range(2):  # iterating a DataLoader draws its base seed from the global RNG: the same for both
        torch.manual_seed(1)
        results.append(evaluate(model, loader, device=torch.device("cpu"), prune_threshold=0.8))
    first, second = results
    assert first == second and math.isfinite(first["loss"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    # The views came from the hook: the same views as augmenting the batches by hand.
    by_hand = [loader.augment_batch(batch, torch.device("cpu")) for batch in loader]
    again = make_model()
    torch.empty((), dtype=torch.int64).random_()  # the draw that iterating the DataLoader made in the first run
    train_one_epoch(again, by_hand, torch.optim.SGD(again.encoder_q.parameters(), lr=0.1), device=torch.device("cpu"))
    assert all(torch.equal(v, before[k]) for k, v in again.state_dict().items())

import pytest
import torch
import torchvision

from edenkit.moco import MoCo


def tiny_moco(**kwargs) -> MoCo:
    torch.manual_seed(0)
    defaults = {"arch": "resnet18", "queue_size": 32, "momentum": 0.9, "bn_splits": 1}
    return MoCo(**{**defaults, **kwargs})


def views(batch=8, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, size, size, generator=g), torch.rand(batch, 1, size, size, generator=g)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_key_encoder_starts_as_a_copy_and_takes_no_gradient():
    model = tiny_moco()
    for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
        assert torch.equal(pq, pk)
        assert not pk.requires_grad
    q, k = model(*views())
    assert q.requires_grad and not k.requires_grad


def test_head_is_the_mocov2_mlp_and_queue_is_persistent():
    model = MoCo("resnet50", queue_size=64)
    head = model.encoder_q.head
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (2048, 2048, 128)
    state = model.state_dict()
    assert state["queue"].shape == (64, 128) and state["queue_ptr"].dtype == torch.long
    assert torch.allclose(state["queue"].norm(dim=1), torch.ones(64))


def test_ema_update_happens_before_the_keys():
    model = tiny_moco(momentum=0.9)
    with torch.no_grad():  # make the encoders differ so that the update is visible
        for p in model.encoder_q.parameters():
            p.add_(0.01)
    before_k = [p.clone() for p in model.encoder_k.parameters()]
    q_params = [p.clone() for p in model.encoder_q.parameters()]
    model(*views())
    for old_k, pq, pk in zip(before_k, q_params, model.encoder_k.parameters()):
        torch.testing.assert_close(pk, 0.9 * old_k + 0.1 * pq)


def test_outputs_are_unit_vectors_in_float32():
    model = tiny_moco()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q, k = model(*views())
    assert q.dtype == k.dtype == torch.float32 and q.shape == (8, 128)
    torch.testing.assert_close(q.norm(dim=1), torch.ones(8))
    torch.testing.assert_close(k.norm(dim=1), torch.ones(8))


def test_enqueue_overwrites_the_oldest_keys_and_wraps():
    model = tiny_moco(queue_size=24)
    keys = [torch.nn.functional.normalize(torch.randn(8, 128), dim=1) for _ in range(4)]
    for k in keys:
        model.enqueue(k)
    assert int(model.queue_ptr) == 8  # 4 x 8 = 32 = 24 + 8
    assert torch.equal(model.queue[:8], keys[3])
    assert torch.equal(model.queue[8:16], keys[1]) and torch.equal(model.queue[16:], keys[2])


def test_queue_must_be_a_multiple_of_the_global_batch():
    model = tiny_moco(queue_size=20)
    with pytest.raises(ValueError, match="queue_size 20 must be a multiple of the global batch size 8"):
        model.enqueue(torch.randn(8, 128))


def test_validation_forward_changes_nothing():
    model = tiny_moco(bn_splits=2)
    model.train()
    model(*views(seed=3))  # give BN running stats and the key encoder some history
    before = snapshot(model)
    rng = torch.get_rng_state()
    q, k = model.embed_pair(*views(seed=4))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert torch.equal(value, after[name]), name
    assert torch.equal(torch.get_rng_state(), rng)  # the key shuffle's draw is undone
    assert model.training  # mode restored
    assert q.shape == k.shape == (8, 128)


def test_validation_computes_what_training_computes():
    """Same batch statistics, shuffle and split as a training forward whose EMA is a no-op (m = 1)."""
    model = tiny_moco(bn_splits=2, momentum=1.0)
    model.eval()  # embed_pair does not depend on the mode it finds
    v1, v2 = views(seed=5)
    torch.manual_seed(7)
    q_val, k_val = model.embed_pair(v1, v2)
    model.train()
    torch.manual_seed(7)
    q_train, k_train = model(v1, v2)
    torch.testing.assert_close(q_val, q_train)
    torch.testing.assert_close(k_val, k_train)


def test_training_forward_updates_bn_stats_and_key_encoder():
    """The counterpart of the test above: it would fail if embed_pair were the training forward."""
    model = tiny_moco()
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(0.01)
    before = snapshot(model)
    model(*views())
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("encoder_k.") and "running_mean" in k for k in changed)
    assert any(k.startswith("encoder_k.") and k.endswith("weight") for k in changed)


def test_split_bn_normalizes_each_chunk_separately():
    model = tiny_moco(bn_splits=2)
    x, _ = views(batch=8)
    split = model._embed(model.encoder_q, x)
    expected = torch.cat([model.encoder_q(c) for c in x.chunk(2)])
    torch.testing.assert_close(split, torch.nn.functional.normalize(expected, dim=1))
    whole = torch.nn.functional.normalize(model.encoder_q(x), dim=1)
    assert not torch.allclose(split, whole, atol=1e-4)  # chunk statistics differ from batch statistics
    with pytest.raises(ValueError, match="not divisible by bn_splits=2"):
        model._embed(model.encoder_q, x[:7])


def test_shuffled_keys_come_back_in_sample_order():
    """With one BN chunk the permutation cannot change the keys, so they must match an unshuffled pass."""
    model = tiny_moco(bn_splits=1)
    x, _ = views(batch=8)
    torch.manual_seed(5)
    keys = model._keys(x)
    direct = torch.nn.functional.normalize(model.encoder_k(x), dim=1)
    torch.testing.assert_close(keys, direct, atol=1e-5, rtol=1e-4)


def test_backbone_is_a_plain_torchvision_resnet():
    model = tiny_moco()
    resnet = torchvision.models.resnet18(weights=None)
    result = resnet.load_state_dict(model.backbone.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys

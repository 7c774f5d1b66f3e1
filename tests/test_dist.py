import socket

import pytest
import torch
import torch.multiprocessing as mp

from edenkit import dist


def test_env_from_torchrun():
    assert dist.env_from_torchrun({}) == dist.DistEnv(0, 1, 0)
    env = dist.env_from_torchrun({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert env == dist.DistEnv(5, 8, 1) and env.is_distributed
    with pytest.raises(ValueError, match="RANK=8 is not in"):
        dist.env_from_torchrun({"RANK": "8", "WORLD_SIZE": "8"})
    with pytest.raises(ValueError, match="must be integers"):
        dist.env_from_torchrun({"WORLD_SIZE": "two"})


def test_single_process_helpers_are_identities():
    x = torch.randn(6, 3)
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.is_main()
    assert dist.all_gather(x) is x
    assert dist.all_reduce_mean(x) is x
    dist.barrier()


def test_single_process_shuffle_is_a_permutation_that_unshuffles():
    x = torch.arange(16.0).view(8, 2)
    torch.manual_seed(0)
    shuffled, unshuffle = dist.batch_shuffle(x)
    assert not torch.equal(shuffled, x) and sorted(shuffled[:, 0].tolist()) == x[:, 0].tolist()
    assert torch.equal(dist.batch_unshuffle(shuffled, unshuffle), x)


def test_sampler_covers_the_dataset_in_a_seeded_order():
    data = list(range(10))
    sampler = dist.make_sampler(data, shuffle=True, seed=3, drop_last=False)
    sampler.set_epoch(1)
    first = list(sampler)
    assert sorted(first) == data
    sampler.set_epoch(1)
    assert list(sampler) == first
    sampler.set_epoch(2)
    assert list(sampler) != first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One rank: shuffle helpers, then the real ci pretraining with DDP; dump what the parent compares."""
    import os

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    from edenkit.pretrain import load_pretrain_config, pretrain

    env, _ = dist.setup("cpu")
    assert env.world_size == 2 and dist.world_size() == 2
    x = torch.arange(4.0).view(4, 1) + 100 * rank  # rank r holds 100r .. 100r + 3
    shuffled, unshuffle = dist.batch_shuffle(x)
    gathered_shuffled = dist.all_gather(shuffled)
    restored = dist.batch_unshuffle(shuffled, unshuffle)
    from edenkit.moco import MoCo

    keys = torch.full((2, 128), float(rank + 1))
    others, in_batch = MoCo("resnet18", queue_size=4, negatives="batch").negatives_for(keys)

    cfg = load_pretrain_config("ci", ["curriculum.stages=[2]", "curriculum.epochs=[1]", "data.phantom_train=32",
                                      "data.phantom_val=16"])
    result = pretrain(cfg, os.path.join(out, "run"), resume=None)
    torch.save({"state": result.model.state_dict(), "x": x, "restored": restored,
                "gathered_shuffled": gathered_shuffled, "others": others, "in_batch": in_batch},
               os.path.join(out, f"rank{rank}.pt"))
    dist.cleanup()


@pytest.mark.slow
def test_two_gloo_processes_keep_queue_and_weights_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    # Shuffle-BN helpers: every global sample lands on exactly one rank and comes back home.
    assert sorted(r0["gathered_shuffled"].flatten().tolist()) == [0, 1, 2, 3, 100, 101, 102, 103]
    assert torch.equal(r0["restored"], r0["x"]) and torch.equal(r1["restored"], r1["x"])
    # In-batch negatives: each rank's bank is the other rank's keys of this step (its own come in_batch).
    assert r0["in_batch"] and torch.equal(r0["others"], torch.full((2, 128), 2.0))
    assert torch.equal(r1["others"], torch.full((2, 128), 1.0))

    # Training: parameters (DDP), BN statistics (averaged per epoch) and the queue (all-gathered keys).
    s0, s1 = r0["state"], r1["state"]
    assert s0.keys() == s1.keys()
    for name in s0:
        assert torch.equal(s0[name], s1[name]), name
    # Each step enqueued the global batch of 16 (8 per rank): 32 images = 2 steps -> pointer at 32.
    assert int(s0["queue_ptr"]) == 32
    assert (tmp_path / "run" / "encoder.pt").is_file()

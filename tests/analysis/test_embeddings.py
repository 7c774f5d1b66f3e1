"""Embeddings, and the projection head read from a pretraining checkpoint (exported encoders have none)."""

import pytest
import torch

from edenkit.analysis.embeddings import embed, head_checkpoint, load_encoder, load_projection_head
from edenkit.checkpoint import encoder_state_dict, export_encoder
from edenkit.moco import ProjectionEncoder


def _training_checkpoint(seed=0, dim=16):
    torch.manual_seed(seed)
    model = ProjectionEncoder("resnet18", dim=dim)
    return model, {"model": {f"encoder_q.{k}": v for k, v in model.state_dict().items()}, "stage": 2}


def test_projection_head_from_a_kit_checkpoint_matches_the_model():
    model, checkpoint = _training_checkpoint()
    trunk = encoder_state_dict(checkpoint)
    head = load_projection_head(checkpoint, trunk)
    x = torch.rand(3, 1, 32, 32)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        got = head(load_encoder(trunk)(x))
    torch.testing.assert_close(got, expected)
    assert load_projection_head(trunk) is None  # an exported encoder carries no head


def test_a_head_must_belong_to_its_backbone():
    _, checkpoint = _training_checkpoint(seed=0)
    _, other = _training_checkpoint(seed=1)
    with pytest.raises(ValueError, match="different backbone"):
        load_projection_head(checkpoint, encoder_state_dict(other))


def test_head_checkpoint_finds_the_final_stage_beside_an_exported_encoder(tmp_path):
    _, checkpoint = _training_checkpoint()
    encoder = export_encoder(encoder_state_dict(checkpoint), tmp_path / "encoder_best.pt")
    assert head_checkpoint(encoder) is None
    (tmp_path / "checkpoints").mkdir()
    for stage in (0, 2, 10):
        torch.save(checkpoint, tmp_path / "checkpoints" / f"best_stage{stage}_n{2 * stage}.pt")
    assert head_checkpoint(encoder).name == "best_stage10_n20.pt"
    assert head_checkpoint(tmp_path / "checkpoints" / "best_stage0_n0.pt").name == "best_stage0_n0.pt"
    # a stage's own encoder (a curriculum cut short) takes that stage's head, not the final one's
    stage0 = export_encoder(encoder_state_dict(checkpoint), tmp_path / "encoder_best_stage0_n0.pt")
    assert head_checkpoint(stage0).name == "best_stage0_n0.pt"
    stage1 = export_encoder(encoder_state_dict(checkpoint), tmp_path / "encoder_stage1_n2.pt")
    assert head_checkpoint(stage1) is None  # no best_stage1_n2.pt: no head rather than another stage's


def test_embed_shapes():
    encoder = load_encoder(encoder_state_dict(_training_checkpoint()[1]))
    assert embed(encoder, torch.rand(5, 1, 20, 20), input_size=32, batch_size=2).shape == (5, 512)
